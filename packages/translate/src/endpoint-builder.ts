// EDS for one proxy: `generateEndpoints(snapshot, proxy, names?)`, one ClusterLoadAssignment per
// EDS cluster (Istio's EndpointBuilder.BuildClusterLoadAssignment):
// - the endpoints of the service port the cluster names, as the proxy's namespace sees the host;
//   a subset cluster keeps the endpoints whose labels include the subset's labels;
// - only healthy endpoints with an IP address (or a Unix socket), grouped by locality
//   (endpoint-lb.ts);
// - locality-aware priorities and weights relative to the proxy's locality, from the cluster's
//   effective localityLbSetting (the mesh's `enabled: true` by default); failover priorities only
//   when the cluster has outlier detection;
// - a cluster without endpoints (or whose service, port or resolution does not fit) still gets an
//   empty assignment, so the proxy does not wait for it; names that are not outbound clusters get
//   nothing;
// - without `names`, every EDS cluster of the proxy (what its CDS lists as EDS).
import type { ClusterLoadAssignment } from '@trellis/envoy';
import type { Service, Snapshot } from '@trellis/registry';
import {
  clusterContext,
  type ClusterContext,
  type ClusterGenerationOptions,
} from './cluster-context.js';
import { outboundClusterName, parseSubsetKey } from './listener-names.js';
import { discoveryTypeOf, hasOutboundClusters } from './cluster-outbound.js';
import { servicesForProxy } from './cluster-context.js';
import {
  groupByLocality,
  hasLabels,
  includeEndpoint,
  loadAssignmentOf,
  localityEndpointOf,
} from './endpoint-lb.js';
import { endpointMtlsEnabled } from './endpoint-mtls.js';
import { applyLocalityLbSetting, effectiveLocalityLbSetting } from './load-balancer-locality.js';
import type { Proxy } from './proxy.js';
import { clusterTrafficPolicy, destinationRuleForProxy } from './traffic-policy-lookup.js';

/** The EDS cluster names of the proxy, in CDS order. */
export function edsClusterNames(ctx: ClusterContext, services: readonly Service[]): string[] {
  const out: string[] = [];
  for (const service of services) {
    const type = discoveryTypeOf(ctx, service);
    if (type !== 'EDS' && !ctx.grpc) continue;
    const rule = destinationRuleForProxy(
      ctx.snapshot,
      ctx.proxy,
      service.hostname,
      service.namespace,
    );
    for (const port of service.ports) {
      if (!hasOutboundClusters(service, port)) continue;
      const top = clusterTrafficPolicy(rule, port.port, '');
      const mainPassthrough = !ctx.grpc && top?.loadBalancer?.simple === 'PASSTHROUGH';
      if (!mainPassthrough) out.push(outboundClusterName(service.hostname, port.port, ''));
      for (const s of rule?.spec.subsets ?? []) {
        const passthrough = s.trafficPolicy?.loadBalancer?.simple === 'PASSTHROUGH';
        if (ctx.grpc || (!mainPassthrough && !passthrough))
          out.push(outboundClusterName(service.hostname, port.port, s.name));
      }
    }
  }
  return out;
}

/** The load assignment of one cluster; undefined for names that are not outbound clusters. */
function loadAssignmentFor(ctx: ClusterContext, name: string): ClusterLoadAssignment | undefined {
  const parts = parseSubsetKey(name);
  if (!parts || parts.direction !== 'outbound' || parts.host === '') return undefined;
  const empty: ClusterLoadAssignment = { clusterName: name };
  const { snapshot, proxy } = ctx;
  const service = snapshot.serviceForHostname(parts.host, proxy.namespace);
  if (!service) return empty;
  const port = service.ports.find((p) => p.port === parts.port);
  if (!port) return empty;
  if (service.resolution === 'DNSLB' || service.resolution === 'DNSRoundRobinLB') return empty;
  const rule = destinationRuleForProxy(snapshot, proxy, service.hostname, service.namespace);
  const subset = parts.subset;
  const labels =
    subset === '' ? undefined : rule?.spec.subsets?.find((s) => s.name === subset)?.labels;
  const seen = new Set<string>();
  const eps = snapshot.endpoints(service, port.port).filter((e) => {
    if (e.servicePortName !== port.name) return false;
    if (!includeEndpoint(e, { ipOnly: true, grpc: ctx.grpc })) return false;
    if (labels && !hasLabels(labels, e.labels)) return false;
    const key = `${e.address}|${e.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  let groups = groupByLocality(
    eps.map((endpoint) => ({
      endpoint,
      lb: localityEndpointOf(
        endpoint,
        endpointMtlsEnabled(snapshot, rule, subset, port.port, endpoint),
        ctx.mesh.clusterId,
      ),
    })),
  );
  if (groups.length === 0) return empty;
  const policy = clusterTrafficPolicy(rule, port.port, subset);
  const setting = effectiveLocalityLbSetting(
    ctx.mesh.localityLbSetting,
    policy?.loadBalancer?.localityLbSetting,
  );
  if (setting)
    groups = applyLocalityLbSetting(groups, {
      proxyLocality: ctx.locality.locality,
      proxyLabels: ctx.locality.labels,
      setting,
      enableFailover: policy?.outlierDetection !== undefined,
      useLabels: true,
    });
  return loadAssignmentOf(name, groups);
}

/**
 * The endpoints (EDS) of `proxy`: one ClusterLoadAssignment per requested cluster name (in the
 * order asked, duplicates dropped), or per EDS cluster of the proxy when `names` is undefined.
 */
export function generateEndpoints(
  snapshot: Snapshot,
  proxy: Proxy,
  names?: readonly string[],
  opts: ClusterGenerationOptions = {},
): ClusterLoadAssignment[] {
  const ctx = clusterContext(snapshot, proxy, opts);
  const list = names ?? edsClusterNames(ctx, servicesForProxy(snapshot, proxy));
  const out: ClusterLoadAssignment[] = [];
  const done = new Set<string>();
  for (const name of list) {
    if (done.has(name)) continue;
    done.add(name);
    const cla = loadAssignmentFor(ctx, name);
    if (cla) out.push(cla);
  }
  return out;
}
