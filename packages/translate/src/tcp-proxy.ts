// The TCP proxy network filter (Istio networkfilter.go): one destination (stat prefix = cluster
// name) or weighted clusters (stat prefix `NAME.NAMESPACE` of the VirtualService), with the
// DestinationRule's idle timeout, max connection duration and source-IP hash policy.
import type { DestinationRuleSpec, RouteDestination } from '@trellis/api';
import { CONFIG_TYPE_URL, toAny } from '@trellis/envoy';
import type { Filter, TcpProxy } from '@trellis/envoy';
import { durationFromIstio } from './http-duration.js';
import { WELLKNOWN } from './listener-names.js';

/** A TcpProxy with its hash policy (not in the shared shape). */
export type TcpProxyJson = TcpProxy & { hashPolicy?: { sourceIp: Record<string, never> }[] };

/** Wraps a TcpProxy config as a network filter. */
export function tcpProxyFilter(config: TcpProxyJson): Filter {
  return {
    name: WELLKNOWN.tcpProxy,
    typedConfig: toAny(CONFIG_TYPE_URL.TcpProxy, config),
  };
}

/** Istio's maybeSetHashPolicy: source-IP hashing from the rule or the subset's load balancer. */
function sourceIpHash(rule: DestinationRuleSpec | undefined, subset: string): boolean {
  if (!rule) return false;
  let useSourceIp = rule.trafficPolicy?.loadBalancer?.consistentHash?.useSourceIp ?? false;
  for (const s of rule.subsets ?? []) {
    if (s.name !== subset) continue;
    const lb = s.trafficPolicy?.loadBalancer;
    if (lb) useSourceIp = lb.consistentHash?.useSourceIp ?? false;
    break;
  }
  return useSourceIp;
}

function applyRulePolicies(
  config: TcpProxyJson,
  rule: DestinationRuleSpec | undefined,
  subset: string,
): void {
  const tcp = rule?.trafficPolicy?.connectionPool?.tcp;
  const idle = durationFromIstio(tcp?.idleTimeout);
  if (idle !== undefined) config.idleTimeout = idle;
  const max = durationFromIstio(tcp?.maxConnectionDuration);
  if (max !== undefined) config.maxDownstreamConnectionDuration = max;
  if (sourceIpHash(rule, subset)) config.hashPolicy = [{ sourceIp: {} }];
}

/** A TCP proxy to one cluster. */
export function singleDestinationTcpProxy(
  cluster: string,
  statPrefix: string,
  subset: string,
  rule: DestinationRuleSpec | undefined,
): Filter {
  const config: TcpProxyJson = { statPrefix, cluster };
  applyRulePolicies(config, rule, subset);
  return tcpProxyFilter(config);
}

/** A TCP proxy splitting over weighted clusters (destinations with weight 0 are left out). */
export function weightedTcpProxy(
  routes: readonly RouteDestination[],
  clusterOf: (r: RouteDestination) => string,
  statPrefix: string,
  rule: DestinationRuleSpec | undefined,
): Filter {
  const clusters = routes
    .filter((r) => (r.weight ?? 0) > 0)
    .map((r) => ({ name: clusterOf(r), weight: r.weight ?? 0 }));
  const config: TcpProxyJson = { statPrefix, weightedClusters: { clusters } };
  applyRulePolicies(config, rule, '');
  return tcpProxyFilter(config);
}

/** The TCP proxy inside a network filter (for tests and simulation). */
export function tcpProxyOf(f: Filter | undefined): TcpProxyJson | undefined {
  if (!f || f.name !== WELLKNOWN.tcpProxy || !f.typedConfig) return undefined;
  return f.typedConfig as unknown as TcpProxyJson;
}
