// CDS for one proxy: `generateClusters(snapshot, proxy, names?)`. Exported from
// @trellis/translate's index as `generateClusters` (and `generateEndpoints` from
// endpoint-builder.ts, `hashPolicyFor` / `hashPolicyForDestination` from
// load-balancer-hash-policy.ts; cluster names come from listener-names.ts).
//
// What a proxy gets, in Istio's order (pilot/pkg/networking/core/cluster.go buildClusters):
// - sidecar: outbound clusters of the services in its scope, BlackHoleCluster,
//   PassthroughCluster, its inbound clusters, InboundPassthroughCluster;
// - gateway (router): outbound clusters of every visible service, BlackHoleCluster;
// - proxyless gRPC client: outbound EDS clusters only, built for gRPC (cluster-grpc.ts).
// Cluster names are unique: when two services would give the same name, the first wins.
import type { Snapshot } from '@trellis/registry';
import { clusterContext, type ClusterGenerationOptions } from './cluster-context.js';
import { grpcClusters } from './cluster-grpc.js';
import { inboundClusters } from './cluster-inbound.js';
import { outboundClusters } from './cluster-outbound.js';
import { servicesForProxy } from './cluster-context.js';
import {
  blackHoleCluster,
  inboundPassthroughCluster,
  passthroughCluster,
} from './cluster-special.js';
import type { ClusterJson } from './cluster-types.js';
import type { Proxy, ResourcePart } from './proxy.js';

export type { ClusterGenerationOptions } from './cluster-context.js';

/**
 * The clusters (CDS) of `proxy`. `names`, when given, limits the answer to those clusters (gRPC
 * clients and on-demand CDS ask for names); otherwise every cluster is returned.
 */
export function generateClusters(
  snapshot: Snapshot,
  proxy: Proxy,
  names?: readonly string[],
  opts: ClusterGenerationOptions = {},
  part: ResourcePart = 'all',
): ClusterJson[] {
  const ctx = clusterContext(snapshot, proxy, opts);
  const wanted = names ? new Set(names) : undefined;
  const filter = wanted ? (name: string): boolean => wanted.has(name) : undefined;
  const services = servicesForProxy(snapshot, proxy);
  let clusters: ClusterJson[];
  if (ctx.grpc) clusters = grpcClusters(ctx, services, filter);
  else if (ctx.sidecar)
    clusters = [
      ...(part !== 'inbound'
        ? [
            ...outboundClusters(ctx, services, filter),
            blackHoleCluster(ctx),
            passthroughCluster(ctx),
          ]
        : []),
      ...(part !== 'outbound' ? [...inboundClusters(ctx), inboundPassthroughCluster(ctx)] : []),
    ];
  else clusters = [...outboundClusters(ctx, services, filter), blackHoleCluster(ctx)];
  const seen = new Set<string>();
  return clusters.filter((c) => {
    const name = c.name ?? '';
    if (seen.has(name) || (filter && !filter(name))) return false;
    seen.add(name);
    return true;
  });
}
