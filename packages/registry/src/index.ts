// @trellis/registry: services, workloads, endpoints and the push snapshot.
export * from './model.js';
export * from './protocol.js';
export * from './host.js';
export * from './visibility.js';
export * from './labels.js';
export * from './options.js';
export * from './well-known.js';
export { SNAPSHOT_KINDS, ENDPOINT_KINDS, kindKey, isSnapshotKind, type KindRef } from './kinds.js';
export { spiffeIdentity, parseInboundPorts, UNIX_ADDRESS_PREFIX } from './workloads.js';
export { Registry, buildRegistry, serviceKey, type RegistryObjects } from './registry.js';
export * from './config.js';
export { DestinationRuleIndex, type ConsolidatedDestinationRule } from './destination-rules.js';
export * from './snapshot.js';
export * from './diff.js';
export * from './controller.js';
