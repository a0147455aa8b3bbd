// The kinds the registry and the push snapshot read, as (group, kind) pairs, and the keys of
// stored objects (`group/Kind/namespace/name`).
import type { KubeObject } from '@trellis/api';
import { groupOf } from '@trellis/api';

/** A kind by API group and name (the shape of the config store's GroupKind). */
export interface KindRef {
  readonly group: string;
  readonly kind: string;
}

const NETWORKING = 'networking.istio.io';
const SECURITY = 'security.istio.io';
const TELEMETRY = 'telemetry.istio.io';

export const SERVICE: KindRef = { group: '', kind: 'Service' };
export const POD: KindRef = { group: '', kind: 'Pod' };
export const NAMESPACE: KindRef = { group: '', kind: 'Namespace' };
export const SECRET: KindRef = { group: '', kind: 'Secret' };
export const ENDPOINT_SLICE: KindRef = { group: 'discovery.k8s.io', kind: 'EndpointSlice' };
export const VIRTUAL_SERVICE: KindRef = { group: NETWORKING, kind: 'VirtualService' };
export const DESTINATION_RULE: KindRef = { group: NETWORKING, kind: 'DestinationRule' };
export const GATEWAY: KindRef = { group: NETWORKING, kind: 'Gateway' };
export const SERVICE_ENTRY: KindRef = { group: NETWORKING, kind: 'ServiceEntry' };
export const WORKLOAD_ENTRY: KindRef = { group: NETWORKING, kind: 'WorkloadEntry' };
export const WORKLOAD_GROUP: KindRef = { group: NETWORKING, kind: 'WorkloadGroup' };
export const SIDECAR: KindRef = { group: NETWORKING, kind: 'Sidecar' };
export const PEER_AUTHENTICATION: KindRef = { group: SECURITY, kind: 'PeerAuthentication' };
export const AUTHORIZATION_POLICY: KindRef = { group: SECURITY, kind: 'AuthorizationPolicy' };
export const REQUEST_AUTHENTICATION: KindRef = { group: SECURITY, kind: 'RequestAuthentication' };
export const TELEMETRY_KIND: KindRef = { group: TELEMETRY, kind: 'Telemetry' };

/** Every kind a snapshot is built from; the controller watches exactly these. */
export const SNAPSHOT_KINDS: readonly KindRef[] = Object.freeze([
  NAMESPACE,
  SERVICE,
  POD,
  SECRET,
  ENDPOINT_SLICE,
  VIRTUAL_SERVICE,
  DESTINATION_RULE,
  GATEWAY,
  SERVICE_ENTRY,
  WORKLOAD_ENTRY,
  WORKLOAD_GROUP,
  SIDECAR,
  PEER_AUTHENTICATION,
  AUTHORIZATION_POLICY,
  REQUEST_AUTHENTICATION,
  TELEMETRY_KIND,
]);

/**
 * Kinds whose changes alter endpoints only (addresses, readiness, ports of workloads): a change
 * to these alone can be pushed as EDS, unless it changes a service's identities.
 */
export const ENDPOINT_KINDS: readonly KindRef[] = Object.freeze([
  POD,
  ENDPOINT_SLICE,
  WORKLOAD_ENTRY,
]);

/** `group/Kind` */
export function kindKey(k: KindRef): string {
  return `${k.group}/${k.kind}`;
}

const SNAPSHOT_KIND_KEYS: ReadonlySet<string> = new Set(SNAPSHOT_KINDS.map(kindKey));

/** Whether a snapshot reads objects of this kind. */
export function isSnapshotKind(k: KindRef): boolean {
  return SNAPSHOT_KIND_KEYS.has(kindKey(k));
}

/** `group/Kind/namespace/name`: the key of a stored object (`/Pod/default/reviews-v1-0`). */
export function objectKey(o: KubeObject): string {
  return `${groupOf(o.apiVersion)}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

/** The `group/Kind` part of an object key. */
export function kindKeyOfObjectKey(key: string): string {
  return key.slice(0, key.indexOf('/', key.indexOf('/') + 1));
}
