// Kinds of the networking.istio.io API group.
import type { KindInfo } from '../../kinds/kind.js';
import { DESTINATION_RULE } from './destination-rule.js';
import { GATEWAY } from './gateway.js';
import { SERVICE_ENTRY } from './service-entry.js';
import { SIDECAR } from './sidecar.js';
import { VIRTUAL_SERVICE } from './virtual-service.js';
import { WORKLOAD_ENTRY } from './workload-entry.js';
import { WORKLOAD_GROUP } from './workload-group.js';

export const NETWORKING_KINDS: readonly KindInfo[] = [
  GATEWAY,
  VIRTUAL_SERVICE,
  DESTINATION_RULE,
  SERVICE_ENTRY,
  WORKLOAD_ENTRY,
  WORKLOAD_GROUP,
  SIDECAR,
];

// Schemas, checks and the types of every message, for the translation layer.
export * from './gateway.js';
export * from './virtual-service.js';
export * from './destination-rule.js';
export * from './service-entry.js';
export * from './workload-entry.js';
export * from './workload-group.js';
export * from './sidecar.js';
export type {
  HeaderOperations,
  Headers,
  NetworkingWorkloadSelector,
  Percent,
  PortSelector,
  StringMatch,
  TypeWorkloadSelector,
} from '../common.js';
