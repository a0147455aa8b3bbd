// The proxy's bootstrap: who it is (the xDS Node, in Istio's format) and where it gets its
// configuration (the xDS server) — everything it knows before the first xDS response.
//
// The node id is Istio's `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local` (`sidecar` for a
// workload's proxy, `router` for a gateway), and the metadata carries what an Istio sidecar
// sends (pilot-agent's `ISTIO_META_*`, Istio's model.NodeMetadata): NAMESPACE, LABELS,
// SERVICE_ACCOUNT, WORKLOAD_NAME, CLUSTER_ID, INTERCEPTION_MODE, ... as strings, LABELS and
// ANNOTATIONS as string maps. The control plane reads them (translate/src/proxy.ts).
import { isIP } from 'node:net';
import { InvalidError } from '@trellis/core';
import {
  NODE_METADATA,
  formatNodeId,
  parseNodeId,
  type Locality,
  type Node,
  type NodeType,
} from '@trellis/envoy';

/** Istio's default ports (ARCHITECTURE.md "Ports"). */
export const DEFAULT_PROXY_PORTS = {
  admin: 15000,
  outbound: 15001,
  inbound: 15006,
  xds: 15010,
  status: 15021,
  prometheus: 15090,
} as const;

/** How the sidecar receives traffic (metadata INTERCEPTION_MODE). */
export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** What the proxy is told at start (CLI flags, environment). */
export interface BootstrapOptions {
  /** `sidecar` (default) for a workload's proxy, `router` for a gateway. */
  readonly type?: 'sidecar' | 'router';
  /** The proxy's (workload's) IP address. */
  readonly ip: string;
  /** Pod (or workload instance) name. */
  readonly podName: string;
  readonly namespace: string;
  /** DNS domain (default `NAMESPACE.svc.cluster.local`). */
  readonly dnsDomain?: string;
  /** node.cluster (Istio's service cluster); default `APP.NAMESPACE` from labels `app` or `WORKLOAD_NAME`. */
  readonly serviceCluster?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  /** Deployment (workload) name; default the pod name. */
  readonly workloadName?: string;
  /** Istio cluster id (default `Kubernetes`). */
  readonly clusterId?: string;
  readonly meshId?: string;
  readonly network?: string;
  /** All the workload's IPs (metadata INSTANCE_IPS); default `[ip]`. */
  readonly instanceIps?: readonly string[];
  /** Default REDIRECT (Istio's). */
  readonly interceptionMode?: InterceptionMode;
  /** Port of the explicit HTTP proxy listener (metadata HTTP_PROXY_PORT), local mode. */
  readonly httpProxyPort?: number;
  /** Istio version to announce (metadata ISTIO_VERSION); omitted when not given. */
  readonly istioVersion?: string;
  /** Locality, as an object or Istio's `region/zone/subzone` form. */
  readonly locality?: Locality | string;
  /** Workload owner (metadata OWNER), e.g. `kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v1`. */
  readonly owner?: string;
  /** xDS server address: `host:port` or `unix:/path` (default `localhost:15010`). */
  readonly xdsAddress?: string;
  readonly adminPort?: number;
  readonly statusPort?: number;
  readonly prometheusPort?: number;
  /** More metadata (pilot-agent's `ISTIO_META_*` without the prefix); the options above win. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** The proxy's own version (node.user_agent_version). */
  readonly proxyVersion?: string;
}

/** The proxy's bootstrap: immutable. */
export interface Bootstrap {
  /** The Node sent on every ADS stream. */
  readonly node: Node;
  readonly nodeType: NodeType;
  readonly ip: string;
  readonly namespace: string;
  readonly podName: string;
  /** xDS server address for grpc-js (`host:port`, `unix:/path`). */
  readonly xdsAddress: string;
  readonly adminPort: number;
  readonly statusPort: number;
  readonly prometheusPort: number;
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 65535;
}

/** Istio's `region/zone/subzone` locality string as a Locality. */
export function parseLocality(s: string): Locality {
  const [region = '', zone = '', subZone = ''] = s.split('/');
  const l: Locality = {};
  if (region !== '') l.region = region;
  if (zone !== '') l.zone = zone;
  if (subZone !== '') l.subZone = subZone;
  return l;
}

/** Istio's service cluster default: `APP.NAMESPACE` (label `app`, else the workload name). */
function defaultServiceCluster(o: BootstrapOptions, workloadName: string): string {
  const app = o.labels?.app ?? o.labels?.['app.kubernetes.io/name'] ?? workloadName;
  return app !== '' ? `${app}.${o.namespace}` : 'istio-proxy';
}

/**
 * Builds the bootstrap. Throws InvalidError listing every problem (bad IP, empty namespace,
 * port out of range, ...).
 */
export function buildBootstrap(o: BootstrapOptions): Bootstrap {
  const problems: string[] = [];
  const type: NodeType = o.type ?? 'sidecar';
  if (isIP(o.ip) === 0) problems.push(`ip: must be an IP address, not "${o.ip}"`);
  if (o.podName === '' || o.podName.includes('~'))
    problems.push(`podName: must be a non-empty name without "~", not "${o.podName}"`);
  if (o.namespace === '' || o.namespace.includes('~') || o.namespace.includes('.'))
    problems.push(`namespace: must be a non-empty name without "~" or ".", not "${o.namespace}"`);
  for (const ip of o.instanceIps ?? [])
    if (isIP(ip) === 0) problems.push(`instanceIps: "${ip}" is not an IP address`);
  const ports = {
    adminPort: o.adminPort ?? DEFAULT_PROXY_PORTS.admin,
    statusPort: o.statusPort ?? DEFAULT_PROXY_PORTS.status,
    prometheusPort: o.prometheusPort ?? DEFAULT_PROXY_PORTS.prometheus,
  };
  for (const [k, v] of Object.entries(ports))
    if (!validPort(v)) problems.push(`${k}: must be a port number (0-65535), not ${v}`);
  if (o.httpProxyPort !== undefined && (!validPort(o.httpProxyPort) || o.httpProxyPort === 0))
    problems.push(`httpProxyPort: must be a port number (1-65535), not ${o.httpProxyPort}`);
  const xdsAddress = o.xdsAddress ?? `localhost:${DEFAULT_PROXY_PORTS.xds}`;
  if (xdsAddress === '') problems.push('xdsAddress: is required');

  const domain = o.dnsDomain ?? `${o.namespace}.svc.cluster.local`;
  const id = formatNodeId({ type, ip: o.ip, id: `${o.podName}.${o.namespace}`, domain });
  if (problems.length === 0) {
    const parsed = parseNodeId(id);
    if (!parsed.ok) problems.push(parsed.error);
  }
  if (problems.length > 0) throw new InvalidError('invalid proxy bootstrap', problems);

  const workloadName = o.workloadName ?? o.podName;
  const instanceIps = o.instanceIps && o.instanceIps.length > 0 ? o.instanceIps : [o.ip];
  const metadata: Record<string, unknown> = { ...(o.metadata ?? {}) };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined && value !== '') metadata[key] = value;
  };
  set(NODE_METADATA.namespace, o.namespace);
  set(NODE_METADATA.podName, o.podName);
  set(NODE_METADATA.labels, { ...(o.labels ?? {}) });
  if (o.annotations) set(NODE_METADATA.annotations, { ...o.annotations });
  set(NODE_METADATA.serviceAccount, o.serviceAccount);
  set(NODE_METADATA.workloadName, workloadName);
  set(NODE_METADATA.clusterId, o.clusterId ?? 'Kubernetes');
  set(NODE_METADATA.meshId, o.meshId);
  set(NODE_METADATA.network, o.network);
  set(NODE_METADATA.instanceIps, instanceIps.join(','));
  set(NODE_METADATA.interceptionMode, o.interceptionMode ?? 'REDIRECT');
  set(NODE_METADATA.owner, o.owner);
  set(NODE_METADATA.istioVersion, o.istioVersion);
  if (o.httpProxyPort !== undefined) set('HTTP_PROXY_PORT', String(o.httpProxyPort));
  // Istio sends these ports as numbers.
  set('ENVOY_STATUS_PORT', ports.statusPort);
  set('ENVOY_PROMETHEUS_PORT', ports.prometheusPort);

  const node: Node = {
    id,
    cluster: o.serviceCluster ?? defaultServiceCluster(o, workloadName),
    metadata,
    userAgentName: 'trellis-proxy',
    userAgentVersion: o.proxyVersion ?? '0.1.0',
  };
  const locality = typeof o.locality === 'string' ? parseLocality(o.locality) : o.locality;
  if (locality && Object.keys(locality).length > 0) node.locality = { ...locality };

  return deepFrozen({
    node,
    nodeType: type,
    ip: o.ip,
    namespace: o.namespace,
    podName: o.podName,
    xdsAddress,
    ...ports,
  });
}

function deepFrozen<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFrozen(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Bootstrap options from a pilot-agent-like environment: POD_NAME, POD_NAMESPACE,
 * INSTANCE_IP, SERVICE_ACCOUNT, XDS_ADDRESS, ISTIO_META_* (metadata, e.g.
 * ISTIO_META_CLUSTER_ID), ISTIO_META_WORKLOAD_NAME, ISTIO_META_INTERCEPTION_MODE,
 * ISTIO_META_HTTP_PROXY_PORT, ISTIO_LOCALITY. Missing required values are left empty for
 * buildBootstrap to report.
 */
export function bootstrapOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  type: 'sidecar' | 'router' = 'sidecar',
): BootstrapOptions {
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(env))
    if (k.startsWith('ISTIO_META_') && v !== undefined) meta[k.slice('ISTIO_META_'.length)] = v;
  const str = (k: string): string | undefined => {
    const v = meta[k];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const num = (v: string | undefined): number | undefined =>
    v === undefined || v === '' ? undefined : Number(v);
  const mode = str('INTERCEPTION_MODE');
  const httpProxyPort = num(str('HTTP_PROXY_PORT'));
  const o: {
    -readonly [K in keyof BootstrapOptions]: BootstrapOptions[K];
  } = {
    type,
    ip: env.INSTANCE_IP ?? '',
    podName: env.POD_NAME ?? '',
    namespace: env.POD_NAMESPACE ?? '',
    metadata: meta,
  };
  if (env.SERVICE_ACCOUNT) o.serviceAccount = env.SERVICE_ACCOUNT;
  if (env.XDS_ADDRESS) o.xdsAddress = env.XDS_ADDRESS;
  if (env.ISTIO_LOCALITY) o.locality = env.ISTIO_LOCALITY;
  const workload = str('WORKLOAD_NAME');
  if (workload) o.workloadName = workload;
  const clusterId = str('CLUSTER_ID');
  if (clusterId) o.clusterId = clusterId;
  if (mode === 'REDIRECT' || mode === 'TPROXY' || mode === 'NONE') o.interceptionMode = mode;
  if (httpProxyPort !== undefined) o.httpProxyPort = httpProxyPort;
  const version = str('ISTIO_VERSION');
  if (version) o.istioVersion = version;
  return o;
}
