// Istio's node identity: `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
//
// Every xDS client sends a Node whose id follows this format and whose metadata carries
// the workload's namespace, labels, service account and more (the `ISTIO_META_*`
// environment of an Istio sidecar, without the prefix). The proxy formats it; the control
// plane parses it.
import { type Result, ok, err } from '@trellis/core';
import { isIP } from 'node:net';

/** Proxy kinds Istio recognises in a node id. */
export const NODE_TYPES = ['sidecar', 'router', 'waypoint', 'ztunnel'] as const;
/** `sidecar` for a workload's proxy, `router` for a gateway. */
export type NodeType = (typeof NODE_TYPES)[number];

/** The four parts of an Istio node id. */
export interface IstioNodeId {
  readonly type: NodeType;
  /** The proxy's IP address. */
  readonly ip: string;
  /** `POD.NAMESPACE` (e.g. `reviews-v1-abc.default`). */
  readonly id: string;
  /** DNS domain, `NAMESPACE.svc.cluster.local`. */
  readonly domain: string;
}

/** Node metadata keys Istio's proxies send (a subset; the rest passes through as is). */
export const NODE_METADATA = {
  namespace: 'NAMESPACE',
  labels: 'LABELS',
  serviceAccount: 'SERVICE_ACCOUNT',
  workloadName: 'WORKLOAD_NAME',
  podName: 'NAME',
  generator: 'GENERATOR',
  istioVersion: 'ISTIO_VERSION',
  clusterId: 'CLUSTER_ID',
  meshId: 'MESH_ID',
  network: 'NETWORK',
  instanceIps: 'INSTANCE_IPS',
  interceptionMode: 'INTERCEPTION_MODE',
  owner: 'OWNER',
  proxyConfig: 'PROXY_CONFIG',
  annotations: 'ANNOTATIONS',
} as const;

/** Formats an Istio node id. */
export function formatNodeId(n: IstioNodeId): string {
  return `${n.type}~${n.ip}~${n.id}~${n.domain}`;
}

/** Parses an Istio node id; the error says what is wrong with it. */
export function parseNodeId(nodeId: string): Result<IstioNodeId> {
  if (nodeId === '') return err('node id is empty; expected TYPE~IP~POD.NAMESPACE~DOMAIN');
  const parts = nodeId.split('~');
  if (parts.length !== 4)
    return err(
      `node id "${nodeId}" must have 4 parts separated by "~" (TYPE~IP~POD.NAMESPACE~DOMAIN), not ${parts.length}`,
    );
  const [type = '', ip = '', id = '', domain = ''] = parts;
  if (!(NODE_TYPES as readonly string[]).includes(type))
    return err(`node id type must be one of ${NODE_TYPES.join(', ')}, not "${type}"`);
  if (isIP(ip) === 0) return err(`node id IP must be an IP address, not "${ip}"`);
  if (id === '') return err('node id must name the workload (POD.NAMESPACE) in its third part');
  return ok({ type: type as NodeType, ip, id, domain });
}
