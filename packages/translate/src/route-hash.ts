// A DestinationRule consistent-hash setting → the hash policy on the route that sends to it
// (Istio route.go consistentHashToHashPolicy and hashForHTTPDestination): header, cookie
// (generated when a ttl is set), source IP or query parameter. The most specific setting wins:
// the subset's port-level setting, the subset's, the port-level setting, the rule's.
import type {
  ConsistentHashLB,
  Destination,
  DestinationRuleSpec,
  PortTrafficPolicy,
} from '@trellis/api';
import type { HashPolicy } from '@trellis/envoy';
import { durationFromIstio } from './http-duration.js';

/** The hash policy of a consistent-hash setting; undefined for none. */
export function hashPolicyOf(c: ConsistentHashLB | undefined): HashPolicy | undefined {
  if (!c) return undefined;
  if (c.httpHeaderName !== undefined) return { header: { headerName: c.httpHeaderName } };
  if (c.httpCookie !== undefined) {
    const ttl = durationFromIstio(c.httpCookie.ttl);
    return {
      cookie: {
        name: c.httpCookie.name,
        ...(ttl !== undefined ? { ttl } : {}),
        ...(c.httpCookie.path ? { path: c.httpCookie.path } : {}),
        ...((c.httpCookie.attributes?.length ?? 0) > 0
          ? {
              attributes: (c.httpCookie.attributes ?? []).map((a) => ({
                name: a.name,
                ...(a.value ? { value: a.value } : {}),
              })),
            }
          : {}),
      },
    };
  }
  if (c.useSourceIp !== undefined) return { connectionProperties: { sourceIp: c.useSourceIp } };
  if (c.httpQueryParameterName !== undefined)
    return { queryParameter: { name: c.httpQueryParameterName } };
  return undefined;
}

function portLevelHash(
  port: number | undefined,
  settings: readonly PortTrafficPolicy[] | undefined,
): ConsistentHashLB | undefined {
  if (port === undefined) return undefined;
  for (const s of settings ?? [])
    if (s.port?.number === port) return s.loadBalancer?.consistentHash;
  return undefined;
}

/** The consistent-hash setting a DestinationRule applies to a route destination. */
export function consistentHashForDestination(
  rule: DestinationRuleSpec | undefined,
  dest: Destination,
): ConsistentHashLB | undefined {
  if (!rule) return undefined;
  const port = dest.port?.number;
  let hash = rule.trafficPolicy?.loadBalancer?.consistentHash;
  const pls = portLevelHash(port, rule.trafficPolicy?.portLevelSettings);
  let subsetHash: ConsistentHashLB | undefined;
  let subsetPls: ConsistentHashLB | undefined;
  for (const s of rule.subsets ?? []) {
    if (s.name !== (dest.subset ?? '')) continue;
    subsetHash = s.trafficPolicy?.loadBalancer?.consistentHash;
    subsetPls = portLevelHash(port, s.trafficPolicy?.portLevelSettings);
    break;
  }
  if (subsetPls) hash = subsetPls;
  else if (subsetHash) hash = subsetHash;
  else if (pls) hash = pls;
  return hash;
}

/** The consistent-hash setting for the default route of a service port (no VirtualService). */
export function consistentHashForServicePort(
  rule: DestinationRuleSpec | undefined,
  port: number,
): ConsistentHashLB | undefined {
  if (!rule) return undefined;
  let hash = rule.trafficPolicy?.loadBalancer?.consistentHash;
  for (const s of rule.trafficPolicy?.portLevelSettings ?? []) {
    if (s.port?.number === port) {
      if (s.loadBalancer?.consistentHash) hash = s.loadBalancer.consistentHash;
      break;
    }
  }
  return hash;
}
