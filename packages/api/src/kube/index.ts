// The Kubernetes kinds the local mode needs, and the types the registry and runtime read.
import type { KindInfo } from '../kinds/kind.js';
import { CONFIG_MAP } from './config-map.js';
import { DEPLOYMENT } from './deployment.js';
import { ENDPOINT_SLICE } from './endpoint-slice.js';
import { NAMESPACE } from './namespace.js';
import { POD } from './pod.js';
import { SECRET } from './secret.js';
import { SERVICE } from './service.js';
import { SERVICE_ACCOUNT } from './service-account.js';

export * from './config-map.js';
export * from './deployment.js';
export * from './endpoint-slice.js';
export * from './label-selector.js';
export * from './namespace.js';
export * from './pod-spec.js';
export * from './pod.js';
export * from './quantity.js';
export * from './secret.js';
export * from './service-account.js';
export * from './service.js';

export const KUBE_KINDS: readonly KindInfo[] = [
  NAMESPACE,
  SERVICE,
  DEPLOYMENT,
  POD,
  SERVICE_ACCOUNT,
  SECRET,
  CONFIG_MAP,
  ENDPOINT_SLICE,
];
