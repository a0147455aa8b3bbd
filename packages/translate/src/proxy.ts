// The proxy a configuration is generated for: who it is (sidecar or gateway), where it runs
// (namespace, labels, workload) and how it wants its configuration (Envoy or proxyless gRPC).
// Built from the xDS Node an Envoy or gRPC client sends: Istio's node id
// (`sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local`) plus the metadata an
// Istio sidecar sends (`NAMESPACE`, `LABELS`, `SERVICE_ACCOUNT`, ...). Semantics: Istio's
// model.Proxy and model.NodeMetadata (pilot/pkg/model/context.go).
import { NODE_METADATA, parseNodeId } from '@trellis/envoy';
import type { Labels, Workload } from '@trellis/registry';
import { err, ok, type Result } from '@trellis/core';

/** `sidecar` for a workload's proxy, `router` for a gateway. */
export type ProxyType = 'sidecar' | 'router';

/** How the sidecar receives traffic (metadata `INTERCEPTION_MODE`); Istio's default is REDIRECT. */
export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** A proxy asking for configuration. Immutable. */
export interface Proxy {
  readonly type: ProxyType;
  /** The full node id. */
  readonly nodeId: string;
  /** `POD.NAMESPACE`, the third part of the node id. */
  readonly id: string;
  /** The proxy's addresses: the node id IP, then `INSTANCE_IPS` (deduplicated). */
  readonly ipAddresses: readonly string[];
  /** The config namespace (metadata `NAMESPACE`, else from the node id). */
  readonly namespace: string;
  /** The workload's labels (metadata `LABELS`, else the registry workload's). */
  readonly labels: Labels;
  /** Kubernetes service account name (metadata `SERVICE_ACCOUNT`). */
  readonly serviceAccount: string;
  /** Workload (Deployment) name (metadata `WORKLOAD_NAME`). */
  readonly workloadName: string;
  /** `grpc` for a proxyless gRPC client (metadata `GENERATOR`). */
  readonly generator?: 'grpc';
  /** The proxy's Istio version (metadata `ISTIO_VERSION`). */
  readonly istioVersion?: string;
  /** The registry's workload for this proxy, when it is known. */
  readonly workload?: Workload;
  /** Cluster the proxy runs in (metadata `CLUSTER_ID`, default `Kubernetes`). */
  readonly clusterId: string;
  /** DNS domain, `NAMESPACE.svc.cluster.local` (the fourth part of the node id). */
  readonly dnsDomain: string;
  readonly interceptionMode: InterceptionMode;
  /**
   * Port of the explicit HTTP proxy listener (metadata `HTTP_PROXY_PORT`, as Istio's
   * `proxyHttpPort`): apps send absolute-form requests there (Trellis local mode).
   */
  readonly httpProxyPort?: number;
  /**
   * Trellis local mode, explicit capture (metadata `TRELLIS_CAPTURE: explicit`): the sidecar shares
   * the host's addresses with other sidecars, so it binds only its own allocated ports (the
   * explicit HTTP proxy port, the inbound ports): no per-service outbound listeners.
   */
  readonly explicitCapture?: boolean;
  /** The metadata as sent. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * Which part of a sidecar's clusters or listeners to generate. The outbound part depends only on
 * the proxy's scope (namespace, selected labels, locality ...) and can be shared by proxies of one
 * scope; the inbound part is the workload's own. Gateways and gRPC clients have no inbound part.
 */
export type ResourcePart = 'all' | 'outbound' | 'inbound';

/** What `proxyFromNode` reads: an xDS Node in its JSON form. */
export interface NodeLike {
  readonly id?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface ProxyOptions {
  /** The registry workload of the proxy, when the caller found it. */
  readonly workload?: Workload;
}

const DEFAULT_CLUSTER_ID = 'Kubernetes';

/**
 * Builds the Proxy for a node. The node id must be in Istio's format; metadata values of the
 * wrong type are ignored (a malformed node never throws).
 */
export function proxyFromNode(node: NodeLike, opts: ProxyOptions = {}): Result<Proxy> {
  const parsed = parseNodeId(node.id ?? '');
  if (!parsed.ok) return parsed;
  const id = parsed.value;
  if (id.type !== 'sidecar' && id.type !== 'router')
    return err(`proxy type "${id.type}" is not supported; use sidecar or router`);
  const md = node.metadata ?? {};
  const str = (key: string): string | undefined => {
    const v = md[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const dot = id.id.indexOf('.');
  const namespace =
    str(NODE_METADATA.namespace) ??
    opts.workload?.namespace ??
    (dot >= 0 ? id.id.slice(dot + 1) : '');
  const ips = [id.ip];
  for (const ip of (str(NODE_METADATA.instanceIps) ?? '').split(',')) {
    const t = ip.trim();
    if (t !== '' && !ips.includes(t)) ips.push(t);
  }
  const labels = readLabels(md[NODE_METADATA.labels]) ?? opts.workload?.labels ?? {};
  const mode = str(NODE_METADATA.interceptionMode);
  const httpProxyPort = Number(str('HTTP_PROXY_PORT') ?? '');
  const generator = str(NODE_METADATA.generator);
  const istioVersion = str(NODE_METADATA.istioVersion);
  const proxy: Proxy = {
    type: id.type,
    nodeId: node.id ?? '',
    id: id.id,
    ipAddresses: ips,
    namespace,
    labels,
    serviceAccount: str(NODE_METADATA.serviceAccount) ?? opts.workload?.serviceAccount ?? '',
    workloadName: str(NODE_METADATA.workloadName) ?? '',
    ...(generator === 'grpc' ? { generator: 'grpc' as const } : {}),
    ...(istioVersion !== undefined ? { istioVersion } : {}),
    ...(opts.workload !== undefined ? { workload: opts.workload } : {}),
    clusterId: str(NODE_METADATA.clusterId) ?? DEFAULT_CLUSTER_ID,
    dnsDomain: id.domain !== '' ? id.domain : `${namespace}.svc.cluster.local`,
    interceptionMode: mode === 'TPROXY' || mode === 'NONE' ? mode : 'REDIRECT',
    ...(Number.isInteger(httpProxyPort) && httpProxyPort > 0 && httpProxyPort <= 65535
      ? { httpProxyPort }
      : {}),
    ...(str('TRELLIS_CAPTURE') === 'explicit' ? { explicitCapture: true } : {}),
    metadata: md,
  };
  return ok(Object.freeze(proxy));
}

/** Whether the proxy is a proxyless gRPC client (Istio's `IsProxylessGrpc`). */
export function isProxylessGrpc(proxy: Proxy): boolean {
  return proxy.generator === 'grpc';
}

/** The proxy's primary address (the node id IP). */
export function primaryAddress(proxy: Proxy): string {
  return proxy.ipAddresses[0] ?? '';
}

/** Whether the proxy's addresses are IPv6 only (listeners then bind `::`). */
export function isIpv6Proxy(proxy: Proxy): boolean {
  return proxy.ipAddresses.length > 0 && proxy.ipAddresses.every((ip) => ip.includes(':'));
}

/** The wildcard address listeners bind to: `0.0.0.0`, or `::` for an IPv6-only proxy. */
export function wildcardAddress(proxy: Proxy): string {
  return isIpv6Proxy(proxy) ? '::' : '0.0.0.0';
}

/** The loopback address: `127.0.0.1`, or `::1` for an IPv6-only proxy. */
export function localhostAddress(proxy: Proxy): string {
  return isIpv6Proxy(proxy) ? '::1' : '127.0.0.1';
}

function readLabels(v: unknown): Labels | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>))
    if (typeof x === 'string') out[k] = x;
  return out;
}
