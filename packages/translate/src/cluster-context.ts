// What every cluster and endpoint builder of one proxy shares: the snapshot, the proxy (with its
// workload found in the registry when the node did not name it), the mesh settings, and the
// proxy's locality and topology labels (for locality-aware balancing); and the services a proxy
// gets clusters for: those of its sidecar scope (sidecar-scope.ts, the same scope its listeners
// and routes use), sorted by host name.
import { NODE_METADATA } from '@trellis/envoy';
import type { Service, Snapshot } from '@trellis/registry';
import { LABEL_LOCALITY, LABEL_NETWORK } from '@trellis/registry';
import { clusterMeshConfig, type ClusterMeshConfig } from './cluster-mesh-config.js';
import { parseLocality, withTopologyLabels } from './load-balancer-locality.js';
import type { ProxyLocalityView } from './load-balancer.js';
import { isProxylessGrpc, type Proxy } from './proxy.js';
import { findProxyWorkload } from './sidecar-scope-context.js';
import { buildSidecarScope } from './sidecar-scope.js';

/** Options of `generateClusters` / `generateEndpoints`. */
export interface ClusterGenerationOptions {
  /** Mesh-wide settings; Istio's defaults otherwise. */
  readonly mesh?: Partial<ClusterMeshConfig>;
}

/** The shared inputs of one generation. */
export interface ClusterContext {
  readonly snapshot: Snapshot;
  readonly proxy: Proxy;
  readonly mesh: ClusterMeshConfig;
  readonly sidecar: boolean;
  readonly grpc: boolean;
  readonly locality: ProxyLocalityView;
}

/**
 * The proxy's locality `region/zone/subzone`: its workload's (the `istio-locality` label or a
 * WorkloadEntry's locality), else the proxy's own `istio-locality` label; undefined when unknown.
 */
export function proxyLocality(proxy: Proxy): string | undefined {
  if (proxy.workload?.locality !== undefined) return proxy.workload.locality;
  const label = proxy.labels[LABEL_LOCALITY];
  return label !== undefined && label !== '' ? label.replaceAll('.', '/') : undefined;
}

/** The proxy's network: its workload's, else metadata `NETWORK`, else its label. */
function proxyNetwork(proxy: Proxy): string | undefined {
  const md = proxy.metadata[NODE_METADATA.network];
  return (
    proxy.workload?.network ??
    (typeof md === 'string' && md !== '' ? md : proxy.labels[LABEL_NETWORK])
  );
}

/** The context of one generation for `proxy`. */
export function clusterContext(
  snapshot: Snapshot,
  proxy: Proxy,
  opts: ClusterGenerationOptions = {},
): ClusterContext {
  const mesh = clusterMeshConfig({ clusterId: proxy.clusterId, ...opts.mesh });
  if (!proxy.workload) {
    const workload = findProxyWorkload(snapshot, proxy);
    if (workload) proxy = { ...proxy, workload };
  }
  const locality = proxyLocality(proxy);
  return {
    snapshot,
    proxy,
    mesh,
    sidecar: proxy.type === 'sidecar',
    grpc: isProxylessGrpc(proxy),
    locality: {
      locality: parseLocality(locality),
      labels: withTopologyLabels(proxy.labels, locality, proxyNetwork(proxy), proxy.clusterId),
    },
  };
}

/** The services the proxy gets outbound clusters for (its sidecar scope), sorted by host name. */
export function servicesForProxy(snapshot: Snapshot, proxy: Proxy): Service[] {
  return [...buildSidecarScope(snapshot, proxy).services].sort((a, b) =>
    a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : a.namespace < b.namespace ? -1 : 1,
  );
}
