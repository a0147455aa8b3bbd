// The route side of consistent-hash load balancing: Envoy hashes a request key chosen on the
// route (RouteAction.hash_policy), the cluster only says RING_HASH or MAGLEV. Istio's
// route.go consistentHashToHashPolicy / hashForHTTPDestination:
// - httpHeaderName → a header hash; httpCookie → a cookie hash (Envoy generates the cookie when a
//   ttl is given, with its path and attributes); useSourceIp → the connection's source IP;
//   httpQueryParameterName → a query parameter;
// - for a route destination the key comes from the DestinationRule of its host, most specific
//   first: the subset's port-level setting, the subset's policy, the rule's port-level setting,
//   then the rule's top-level policy.
import type { LoadBalancerSettings } from '@trellis/api';
import type { HashPolicy } from '@trellis/envoy';
import type { Snapshot } from '@trellis/registry';
import type { Proxy } from './proxy.js';
import { consistentHashForDestination, hashPolicyOf } from './route-hash.js';
import { destinationRuleForProxy } from './traffic-policy-lookup.js';

/** Anything with a load balancer: a TrafficPolicy, a merged policy, a port-level setting. */
export interface WithLoadBalancer {
  readonly loadBalancer?: LoadBalancerSettings;
}

/**
 * The route hash policy for a policy's consistent hash; undefined when it does not hash
 * (simple load balancing). The mapping itself lives with the routes (route-hash.ts).
 */
export function hashPolicyFor(policy: WithLoadBalancer | undefined): HashPolicy | undefined {
  return hashPolicyOf(policy?.loadBalancer?.consistentHash);
}

/**
 * The hash policy for a route destination (`host`, its port when the route names or implies one,
 * its subset), looked up in the DestinationRule the proxy sees for the host.
 */
export function hashPolicyForDestination(
  snapshot: Snapshot,
  proxy: Proxy,
  host: string,
  port: number | undefined,
  subset?: string,
): HashPolicy | undefined {
  const rule = destinationRuleForProxy(snapshot, proxy, host);
  return hashPolicyOf(
    consistentHashForDestination(rule?.spec, {
      host,
      ...(port !== undefined ? { port: { number: port } } : {}),
      ...(subset !== undefined ? { subset } : {}),
    }),
  );
}
