// @trellis/envoy: Envoy xDS v3 types, protos, and resource encoding.
export * from './protos.js';
export * from './type-urls.js';
export * from './codec.js';
export * from './discovery-codec.js';
export * from './ads-service.js';
export * from './node.js';
export type * from './core.js';
export type * from './matcher.js';
export type * from './listener.js';
export type * from './route.js';
export type * from './cluster.js';
export type * from './endpoint.js';
export type * from './tls.js';
export type * from './http-filters.js';
export type * from './discovery.js';
