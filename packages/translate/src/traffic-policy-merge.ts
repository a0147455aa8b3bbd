// Which DestinationRule policy applies to one cluster: the rule's top-level policy, its
// `portLevelSettings` for the cluster's port, and a subset's own policy, merged the way Istio
// merges them (pilot/pkg/networking/util GetPortLevelTrafficPolicy / MergeSubsetTrafficPolicy):
// - a matching port-level setting REPLACES the top-level connectionPool, loadBalancer,
//   outlierDetection and tls as a whole (fields it omits fall back to the defaults, they are not
//   inherited from the top level);
// - a subset's policy overrides the (port-resolved) rule policy field by field: each of the four
//   sections the subset sets wins; if the subset has a port-level setting for the port, all
//   four sections come from it;
// - tunnel, proxyProtocol and retryBudget of a subset override the rule's when set.
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection,
  PortTrafficPolicy,
  ProxyProtocol,
  RetryBudget,
  TrafficPolicy,
  TunnelSettings,
} from '@trellis/api';

/** The effective policy of one cluster: a TrafficPolicy without port-level settings. */
export interface EffectiveTrafficPolicy {
  readonly connectionPool?: ConnectionPoolSettings;
  readonly loadBalancer?: LoadBalancerSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTLSSettings;
  readonly tunnel?: TunnelSettings;
  readonly proxyProtocol?: ProxyProtocol;
  readonly retryBudget?: RetryBudget;
}

/** The port-level setting of `policy` for `port`, if any (the first one naming the port). */
export function portLevelSetting(
  policy: TrafficPolicy | undefined,
  port: number,
): PortTrafficPolicy | undefined {
  return policy?.portLevelSettings?.find((p) => p.port?.number === port);
}

/**
 * The policy of `policy` for `port`: its port-level setting for the port when there is one
 * (replacing the four sections as a whole), else the top-level policy. `portLevel` says which.
 */
export function portTrafficPolicy(
  policy: TrafficPolicy | undefined,
  port: number,
): { readonly policy: EffectiveTrafficPolicy | undefined; readonly portLevel: boolean } {
  if (!policy) return { policy: undefined, portLevel: false };
  const p = portLevelSetting(policy, port);
  if (!p) return { policy: withoutPortLevel(policy), portLevel: false };
  return {
    policy: compact({
      connectionPool: p.connectionPool,
      loadBalancer: p.loadBalancer,
      outlierDetection: p.outlierDetection,
      tls: p.tls,
    }),
    portLevel: true,
  };
}

/**
 * The effective policy of a cluster for `port`: the rule's policy resolved for the port, with the
 * subset's policy (also resolved for the port) merged over it. `subset` undefined for the service
 * cluster itself.
 */
export function mergeTrafficPolicy(
  rulePolicy: TrafficPolicy | undefined,
  subsetPolicy: TrafficPolicy | undefined,
  port: number,
): EffectiveTrafficPolicy | undefined {
  const base = portTrafficPolicy(rulePolicy, port).policy;
  if (!subsetPolicy) return base;
  const { policy: sub, portLevel } = portTrafficPolicy(subsetPolicy, port);
  if (!base) return sub;
  if (!sub) return base;
  return compact({
    connectionPool:
      sub.connectionPool !== undefined || portLevel ? sub.connectionPool : base.connectionPool,
    outlierDetection:
      sub.outlierDetection !== undefined || portLevel
        ? sub.outlierDetection
        : base.outlierDetection,
    loadBalancer:
      sub.loadBalancer !== undefined || portLevel ? sub.loadBalancer : base.loadBalancer,
    tls: sub.tls !== undefined || portLevel ? sub.tls : base.tls,
    tunnel: sub.tunnel ?? base.tunnel,
    proxyProtocol: sub.proxyProtocol ?? base.proxyProtocol,
    retryBudget: sub.retryBudget ?? base.retryBudget,
  });
}

function withoutPortLevel(p: TrafficPolicy): EffectiveTrafficPolicy {
  return compact({
    connectionPool: p.connectionPool,
    loadBalancer: p.loadBalancer,
    outlierDetection: p.outlierDetection,
    tls: p.tls,
    tunnel: p.tunnel,
    proxyProtocol: p.proxyProtocol,
    retryBudget: p.retryBudget,
  });
}

type Loose<T> = { [K in keyof T]?: T[K] | undefined };

/** Drops undefined (and null, which a stored object may carry) fields. */
function compact(p: Loose<EffectiveTrafficPolicy>): EffectiveTrafficPolicy {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (v != null) out[k] = v;
  return out;
}
