// The DestinationRule a proxy uses for a host (Istio's SidecarScope.DestinationRule): looked up
// from the proxy's namespace (its own namespace's rules, then those the service's namespace
// exports, then the root namespace's), the most specific host first, and among rules for that
// host the one whose workloadSelector selects the proxy wins over the catch-all one.
import type { ConsolidatedDestinationRule, Snapshot } from '@trellis/registry';
import type { Proxy } from './proxy.js';
import { mergeTrafficPolicy, type EffectiveTrafficPolicy } from './traffic-policy-merge.js';

/** The DestinationRule the proxy applies to traffic for `hostname`. */
export function destinationRuleForProxy(
  snapshot: Snapshot,
  proxy: Pick<Proxy, 'namespace' | 'labels'>,
  hostname: string,
  serviceNamespace?: string,
): ConsolidatedDestinationRule | undefined {
  return snapshot.destinationRule(proxy.namespace, hostname, {
    ...(serviceNamespace !== undefined ? { serviceNamespace } : {}),
    clientLabels: proxy.labels,
  });
}

/**
 * The effective policy of cluster (`port`, `subset`) under a rule: the rule's policy for the
 * port, with the subset's merged over it. `subset` '' for the service cluster.
 */
export function clusterTrafficPolicy(
  rule: ConsolidatedDestinationRule | undefined,
  port: number,
  subset: string,
): EffectiveTrafficPolicy | undefined {
  if (!rule) return undefined;
  const top = rule.spec.trafficPolicy;
  if (subset === '') return mergeTrafficPolicy(top, undefined, port);
  const s = rule.spec.subsets?.find((x) => x.name === subset);
  return mergeTrafficPolicy(top, s?.trafficPolicy, port);
}
