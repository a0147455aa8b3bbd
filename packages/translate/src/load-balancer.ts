// DestinationRule loadBalancer → the cluster's balancing algorithm, as Istio maps it
// (cluster_traffic_policy.go applyLoadBalancer, ApplyRingHashLoadBalancer, setWarmup):
// - simple LEAST_REQUEST / LEAST_CONN → LEAST_REQUEST, ROUND_ROBIN, RANDOM; unset → LEAST_REQUEST
//   (Istio's default); PASSTHROUGH → an ORIGINAL_DST cluster (CLUSTER_PROVIDED);
// - warmup (or the deprecated warmupDurationSecs) → slow start for ROUND_ROBIN / LEAST_REQUEST;
// - consistentHash → MAGLEV (with its table size), RING_HASH with ringHash.minimumRingSize, or
//   RING_HASH with the deprecated minimumRingSize (default 1024); the hash key itself goes on the
//   route (`hashPolicyFor`);
// - ORIGINAL_DST clusters always use CLUSTER_PROVIDED;
// - locality: locality-weighted balancing is switched on for `distribute`, or for failover when
//   the cluster has outlier detection; STATIC and DNS clusters get their endpoint priorities here
//   (EDS clusters get them in EDS).
import type { LoadBalancerSettings } from '@trellis/api';
import type { ClusterDraft } from './cluster-draft.js';
import type { ClusterMeshConfig } from './cluster-mesh-config.js';
import type { SlowStartConfig } from './cluster-types.js';
import { durationFromIstio } from './http-duration.js';
import {
  applyLocalityLbSetting,
  effectiveLocalityLbSetting,
  type LocalityGroup,
  type LocalityParts,
} from './load-balancer-locality.js';
import type { Labels } from '@trellis/registry';
import { envoyLocality } from './load-balancer-locality.js';

/** The proxy side of locality balancing. */
export interface ProxyLocalityView {
  readonly locality: LocalityParts;
  /** Proxy labels with topology labels. */
  readonly labels: Labels;
}

/** Applies load balancing to a cluster (after outlier detection, which failover depends on). */
export function applyLoadBalancer(
  d: ClusterDraft,
  lb: LoadBalancerSettings | undefined,
  mesh: ClusterMeshConfig,
  proxy: ProxyLocalityView,
): void {
  applyLocality(d, lb, mesh, proxy);
  const c = d.cluster;
  if (c.type === 'ORIGINAL_DST') {
    c.lbPolicy = 'CLUSTER_PROVIDED';
    return;
  }
  switch (lb?.simple) {
    case 'LEAST_CONN':
    case 'LEAST_REQUEST':
      c.lbPolicy = 'LEAST_REQUEST';
      applySlowStart(d, lb, 'leastRequest');
      break;
    case 'RANDOM':
      c.lbPolicy = 'RANDOM';
      break;
    case 'ROUND_ROBIN':
      c.lbPolicy = 'ROUND_ROBIN';
      applySlowStart(d, lb, 'roundRobin');
      break;
    case 'PASSTHROUGH':
      c.lbPolicy = 'CLUSTER_PROVIDED';
      c.type = 'ORIGINAL_DST';
      delete c.loadAssignment;
      delete c.edsClusterConfig;
      break;
    default:
      c.lbPolicy = 'LEAST_REQUEST';
      applySlowStart(d, lb, 'leastRequest');
  }
  applyConsistentHash(d, lb);
}

function applySlowStart(
  d: ClusterDraft,
  lb: LoadBalancerSettings | undefined,
  kind: 'leastRequest' | 'roundRobin',
): void {
  let config: SlowStartConfig | undefined;
  if (lb?.warmup) {
    const window = durationFromIstio(lb.warmup.duration);
    config = {
      ...(window !== undefined ? { slowStartWindow: window } : {}),
      aggression: { defaultValue: lb.warmup.aggression ?? 1, runtimeKey: '(' },
      minWeightPercent: { value: lb.warmup.minimumPercent ?? 10 },
    };
  } else if (lb?.warmupDurationSecs !== undefined) {
    const window = durationFromIstio(lb.warmupDurationSecs);
    if (window !== undefined) config = { slowStartWindow: window };
  }
  if (!config) return;
  if (kind === 'leastRequest') d.cluster.leastRequestLbConfig = { slowStartConfig: config };
  else d.cluster.roundRobinLbConfig = { slowStartConfig: config };
}

/** RING_HASH / MAGLEV for a consistent-hash policy (the hash key is set on routes). */
export function applyConsistentHash(d: ClusterDraft, lb: LoadBalancerSettings | undefined): void {
  const hash = lb?.consistentHash;
  if (!hash) return;
  const c = d.cluster;
  delete c.leastRequestLbConfig;
  delete c.roundRobinLbConfig;
  if (hash.maglev) {
    c.lbPolicy = 'MAGLEV';
    const size = hash.maglev.tableSize ?? 0;
    if (size !== 0) c.maglevLbConfig = { tableSize: String(size) };
  } else if (hash.ringHash) {
    c.lbPolicy = 'RING_HASH';
    const size = hash.ringHash.minimumRingSize ?? 0;
    if (size !== 0) c.ringHashLbConfig = { minimumRingSize: String(size) };
  } else {
    c.lbPolicy = 'RING_HASH';
    const size = hash.minimumRingSize ?? 0;
    c.ringHashLbConfig = { minimumRingSize: String(size !== 0 ? size : 1024) };
  }
}

function applyLocality(
  d: ClusterDraft,
  lb: LoadBalancerSettings | undefined,
  mesh: ClusterMeshConfig,
  proxy: ProxyLocalityView,
): void {
  const setting = effectiveLocalityLbSetting(mesh.localityLbSetting, lb?.localityLbSetting);
  const c = d.cluster;
  const enableFailover = c.outlierDetection !== undefined;
  if (
    (enableFailover &&
      ((setting?.failover ?? []).length > 0 || (setting?.failoverPriority ?? []).length > 0)) ||
    (setting?.distribute ?? []).length > 0
  )
    c.commonLbConfig = { ...c.commonLbConfig, localityWeightedLbConfig: {} };
  const la = c.loadAssignment;
  if (!setting || !la) return;
  // STATIC / DNS clusters carry their endpoints: give them the proxy-relative priorities now.
  const groups: LocalityGroup[] = (la.endpoints ?? []).map((e) => ({
    locality: [e.locality?.region ?? '', e.locality?.zone ?? '', e.locality?.subZone ?? '']
      .join('/')
      .replace(/\/+$/, ''),
    endpoints: (e.lbEndpoints ?? []).map((lbe) => ({ lb: lbe, labels: {} })),
    weight: e.loadBalancingWeight ?? 0,
    priority: e.priority ?? 0,
  }));
  const out = applyLocalityLbSetting(groups, {
    proxyLocality: proxy.locality,
    proxyLabels: proxy.labels,
    setting,
    enableFailover,
    useLabels: false,
  });
  c.loadAssignment = {
    ...la,
    endpoints: out.map((g) => ({
      locality: envoyLocality(g.locality),
      lbEndpoints: g.endpoints.map((e) => e.lb),
      loadBalancingWeight: g.weight,
      ...(g.priority > 0 ? { priority: g.priority } : {}),
    })),
  };
}
