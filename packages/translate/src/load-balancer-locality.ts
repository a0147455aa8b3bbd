// Locality-aware load balancing relative to the calling proxy (Istio's
// pilot/pkg/networking/core/loadbalancer): endpoints are grouped by locality
// (`region/zone/subzone`), then
// - `distribute` rewrites the locality weights of the first rule whose `from` matches the proxy's
//   locality (localities not listed in `to` get no endpoints);
// - failover (only with outlier detection, which is what ejects failing hosts) gives each
//   locality a priority: 0 same region/zone/subzone, 1 same zone, 2 same region, 3 other regions,
//   4 other regions that a `failover` rule of the proxy's region does not name as its target;
// - `failoverPriority` labels split each locality by how many of the listed labels the endpoint
//   shares with the proxy, in order (a label may carry its own value: `label=value`), before the
//   locality failover above refines the order;
// priorities are then renumbered 0..N without gaps, as Envoy requires.
import type { LocalityLoadBalancerSetting } from '@trellis/api';
import type { LbEndpoint, Locality } from '@trellis/envoy';
import type { Labels } from '@trellis/registry';

/** Topology labels Istio adds to workload labels (so `failoverPriority` can name them). */
export const LABEL_TOPOLOGY_REGION = 'topology.kubernetes.io/region';
export const LABEL_TOPOLOGY_ZONE = 'topology.kubernetes.io/zone';
export const LABEL_TOPOLOGY_SUBZONE = 'topology.istio.io/subzone';
export const LABEL_TOPOLOGY_NETWORK = 'topology.istio.io/network';
export const LABEL_TOPOLOGY_CLUSTER = 'topology.istio.io/cluster';

/** A locality split into its parts. */
export interface LocalityParts {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** `region/zone/subzone` (parts may be missing) as parts. */
export function parseLocality(locality: string | undefined): LocalityParts {
  const [region = '', zone = '', subZone = ''] = (locality ?? '').split('/');
  return { region, zone, subZone };
}

/** The Envoy locality of `region/zone/subzone` (empty parts left out). */
export function envoyLocality(locality: string | undefined): Locality {
  const p = parseLocality(locality);
  return {
    ...(p.region !== '' ? { region: p.region } : {}),
    ...(p.zone !== '' ? { zone: p.zone } : {}),
    ...(p.subZone !== '' ? { subZone: p.subZone } : {}),
  };
}

/**
 * Labels with Istio's topology labels added from a locality, network and cluster (Istio's
 * AugmentLabels): what `failoverPriority` compares between the proxy and an endpoint.
 */
export function withTopologyLabels(
  labels: Labels,
  locality: string | undefined,
  network: string | undefined,
  clusterId: string | undefined,
): Labels {
  const p = parseLocality(locality);
  const out: Record<string, string> = { ...labels };
  if (p.region !== '') out[LABEL_TOPOLOGY_REGION] = p.region;
  if (p.zone !== '') out[LABEL_TOPOLOGY_ZONE] = p.zone;
  if (p.subZone !== '') out[LABEL_TOPOLOGY_SUBZONE] = p.subZone;
  if (network !== undefined && network !== '') out[LABEL_TOPOLOGY_NETWORK] = network;
  if (clusterId !== undefined && clusterId !== '') out[LABEL_TOPOLOGY_CLUSTER] = clusterId;
  return out;
}

/** One endpoint with the labels failoverPriority reads. */
export interface LocalityEndpoint {
  readonly lb: LbEndpoint;
  readonly labels: Labels;
}

/** The endpoints of one locality (and, after failover, one priority). */
export interface LocalityGroup {
  /** `region/zone/subzone` as the endpoints carry it ('' when unknown). */
  readonly locality: string;
  endpoints: LocalityEndpoint[];
  /** Sum of the endpoints' weights (or the weight `distribute` gave). */
  weight: number;
  priority: number;
}

/**
 * The locality setting in force: the DestinationRule's unless it says `enabled: false` (then
 * none), else the mesh's unless disabled (Istio's GetLocalityLbSetting).
 */
export function effectiveLocalityLbSetting(
  mesh: LocalityLoadBalancerSetting | undefined,
  rule: LocalityLoadBalancerSetting | undefined,
): LocalityLoadBalancerSetting | undefined {
  if (rule) return rule.enabled === false ? undefined : rule;
  if (mesh?.enabled === false) return undefined;
  return mesh;
}

/** Whether the proxy's locality matches a rule locality with `*` wildcards (Istio's LocalityMatch). */
export function localityMatches(proxy: LocalityParts, rule: string): boolean {
  const r = parseLocality(rule);
  const region = r.region === '*' || proxy.region === r.region;
  const zone = r.zone === '*' || r.zone === '' || proxy.zone === r.zone;
  const subZone = r.subZone === '*' || r.subZone === '' || proxy.subZone === r.subZone;
  return region && zone && subZone;
}

/** 0 same locality, 1 same zone, 2 same region, 3 elsewhere (Istio's LbPriority). */
function localityPriority(proxy: LocalityParts, ep: LocalityParts): number {
  if (proxy.region !== ep.region) return 3;
  if (proxy.zone !== ep.zone) return 2;
  if (proxy.subZone !== ep.subZone) return 1;
  return 0;
}

/** How a locality setting applies to one cluster's endpoints. */
export interface LocalityLbContext {
  readonly proxyLocality: LocalityParts;
  /** The proxy's labels with topology labels (empty: failoverPriority does nothing). */
  readonly proxyLabels: Labels;
  readonly setting: LocalityLoadBalancerSetting;
  /** Failover needs outlier detection, or Envoy never drops to a lower priority. */
  readonly enableFailover: boolean;
  /** failoverPriority needs endpoint labels; Istio does not apply it to STATIC/DNS clusters. */
  readonly useLabels: boolean;
}

/** Applies a locality setting to the groups; may split groups (failoverPriority). */
export function applyLocalityLbSetting(
  groups: LocalityGroup[],
  ctx: LocalityLbContext,
): LocalityGroup[] {
  const s = ctx.setting;
  if ((s.distribute ?? []).length > 0) {
    applyLocalityWeights(groups, ctx.proxyLocality, s.distribute ?? []);
    return groups;
  }
  if (!ctx.enableFailover) return groups;
  let out = groups;
  const priorities = s.failoverPriority ?? [];
  if (priorities.length > 0) {
    if (ctx.useLabels) out = applyFailoverPriorities(groups, ctx.proxyLabels, priorities);
    if ((s.failover ?? []).length > 0)
      applyLocalityFailover(out, ctx.proxyLocality, s.failover ?? []);
  } else applyLocalityFailover(out, ctx.proxyLocality, s.failover ?? []);
  return out;
}

function applyLocalityWeights(
  groups: LocalityGroup[],
  proxy: LocalityParts,
  distribute: NonNullable<LocalityLoadBalancerSetting['distribute']>,
): void {
  const rule = distribute.find((d) => localityMatches(proxy, d.from ?? ''));
  if (!rule) return;
  const unmatched = new Set(groups.map((_, i) => i));
  const to = rule.to ?? {};
  for (const target of Object.keys(to).sort()) {
    const weight = to[target] ?? 0;
    const matched: { index: number; original: number }[] = [];
    let total = 0;
    groups.forEach((g, i) => {
      if (!unmatched.has(i) || !localityMatches(parseLocality(g.locality), target)) return;
      unmatched.delete(i);
      matched.push({ index: i, original: g.weight });
      total += g.weight;
    });
    for (const m of matched) {
      const w = total > 0 ? (m.original * weight) / total : 0;
      if (w > 0) groups[m.index]!.weight = Math.ceil(w);
    }
  }
  for (const i of unmatched) groups[i]!.endpoints = [];
}

function applyLocalityFailover(
  groups: LocalityGroup[],
  proxy: LocalityParts,
  failover: NonNullable<LocalityLoadBalancerSetting['failover']>,
): void {
  for (const g of groups) {
    const ep = parseLocality(g.locality);
    let p = localityPriority(proxy, ep);
    if (p === 3) {
      const rule = failover.find((f) => f.from === proxy.region);
      if (rule && ep.region !== rule.to) p = 4;
    }
    g.priority = g.priority * 5 + p;
  }
  compactPriorities(groups);
}

function applyFailoverPriorities(
  groups: LocalityGroup[],
  proxyLabels: Labels,
  failoverPriority: readonly string[],
): LocalityGroup[] {
  if (Object.keys(proxyLabels).length === 0 || groups.length === 0) return groups;
  const names: string[] = [];
  const overrides = new Map<string, string>();
  for (const entry of failoverPriority) {
    const parts = entry.split('=');
    names.push(parts[0] ?? '');
    if (parts.length === 2) overrides.set(parts[0] ?? '', parts[1] ?? '');
  }
  const lowest = names.length;
  const out: LocalityGroup[] = [];
  for (const g of groups) {
    const byPriority = new Map<number, LocalityEndpoint[]>();
    for (const e of g.endpoints) {
      let priority = 0;
      for (let j = 0; j < names.length; j++) {
        const label = names[j]!;
        const want = overrides.get(label) ?? proxyLabels[label];
        if (want !== e.labels[label]) {
          priority = lowest - j;
          break;
        }
      }
      const list = byPriority.get(priority);
      if (list) list.push(e);
      else byPriority.set(priority, [e]);
    }
    for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
      const endpoints = byPriority.get(priority)!;
      out.push({
        locality: g.locality,
        endpoints,
        weight: endpoints.reduce((s, e) => s + (e.lb.loadBalancingWeight ?? 0), 0),
        priority,
      });
    }
  }
  compactPriorities(out);
  return out;
}

/** Renumbers priorities to 0..N keeping their order. */
function compactPriorities(groups: LocalityGroup[]): void {
  const distinct = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  const rank = new Map(distinct.map((p, i) => [p, i]));
  for (const g of groups) g.priority = rank.get(g.priority) ?? 0;
}
