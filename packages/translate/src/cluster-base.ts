// The parts every generated cluster shares (Istio's ClusterBuilder.buildCluster and
// maybeApplyEdsConfig):
// - name, discovery type, `alt_stat_name` (`NAME;`), an empty common LB config;
// - DNS clusters: lookup family from the proxy's addresses (IPv4 only → V4_ONLY, IPv6 only →
//   V6_ONLY, both → V4_ONLY), the mesh refresh rate, respecting DNS TTLs;
// - the upstream protocol from the port: HTTP/2 for http2 / grpc ports, the downstream protocol
//   for sidecars on ports whose protocol is sniffed;
// - `istio` metadata: the services the cluster serves (telemetry), the DestinationRule it came
//   from, its subset;
// - EDS clusters read their endpoints over ADS (`eds_cluster_config`, no initial fetch timeout).
import type { ClusterLoadAssignment, DiscoveryType, Struct } from '@trellis/envoy';
import type { ConsolidatedDestinationRule, Protocol, Service } from '@trellis/registry';
import { isAutoProtocol, isHttp2Protocol } from '@trellis/registry';
import type { ClusterContext } from './cluster-context.js';
import { draftOf, setHttp2, setUseDownstreamProtocol, type ClusterDraft } from './cluster-draft.js';
import { durationFromIstio } from './http-duration.js';

/** The inputs of a base cluster. */
export interface BaseClusterInput {
  readonly name: string;
  readonly type: DiscoveryType;
  /** The endpoints of a STATIC or DNS cluster. */
  readonly loadAssignment?: ClusterLoadAssignment;
  /** The port's protocol (drives the upstream HTTP protocol). */
  readonly protocol: Protocol;
  /** Services reported in the `istio.services` telemetry metadata. */
  readonly services: readonly Service[];
}

/** The DNS family for the proxy's addresses. */
function dnsLookupFamily(ips: readonly string[]): 'V4_ONLY' | 'V6_ONLY' {
  if (ips.length > 0 && ips.every((ip) => ip.includes(':'))) return 'V6_ONLY';
  return 'V4_ONLY';
}

/** A new cluster with the shared settings applied. */
export function baseCluster(ctx: ClusterContext, input: BaseClusterInput): ClusterDraft {
  const d = draftOf({
    name: input.name,
    type: input.type,
    altStatName: `${input.name};`,
    commonLbConfig: {},
  });
  const c = d.cluster;
  if (input.type === 'STRICT_DNS' || input.type === 'LOGICAL_DNS') {
    c.dnsLookupFamily = dnsLookupFamily(ctx.proxy.ipAddresses);
    const refresh = durationFromIstio(ctx.mesh.dnsRefreshRate);
    if (refresh !== undefined) c.dnsRefreshRate = refresh;
    c.respectDnsTtl = true;
  }
  if (
    input.loadAssignment &&
    (input.type === 'STATIC' || input.type === 'STRICT_DNS' || input.type === 'LOGICAL_DNS')
  )
    c.loadAssignment = input.loadAssignment;
  if (isHttp2Protocol(input.protocol)) setHttp2(d);
  else if (ctx.sidecar && isAutoProtocol(input.protocol)) setUseDownstreamProtocol(d);
  if (input.services.length > 0)
    setIstioMetadata(
      d,
      'services',
      input.services.map((s) => serviceMetadata(s)),
    );
  return d;
}

function serviceMetadata(s: Service): Struct {
  return { host: s.hostname, name: s.name, namespace: s.namespace };
}

/** Sets one field of the cluster's `istio` filter metadata. */
export function setIstioMetadata(d: ClusterDraft, key: string, value: unknown): void {
  const c = d.cluster;
  const fm = { ...c.metadata?.filterMetadata };
  fm.istio = { ...fm.istio, [key]: value };
  c.metadata = { ...c.metadata, filterMetadata: fm };
}

/** `/apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME`: where a rule lives. */
export function configPath(rule: ConsolidatedDestinationRule): string {
  const r = rule.rule;
  const version = r.apiVersion.includes('/')
    ? r.apiVersion.slice(r.apiVersion.indexOf('/') + 1)
    : r.apiVersion;
  return `/apis/${r.group}/${version}/namespaces/${r.namespace}/destination-rule/${r.name}`;
}

/** EDS clusters read their endpoints (named like the cluster) over ADS. */
export function applyEdsConfig(d: ClusterDraft): void {
  if (d.cluster.type !== 'EDS') return;
  d.cluster.edsClusterConfig = {
    serviceName: d.cluster.name ?? '',
    edsConfig: { ads: {}, initialFetchTimeout: '0s', resourceApiVersion: 'V3' },
  };
}
