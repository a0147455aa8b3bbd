// Istio configs as the snapshot holds them: the stored object's identity and metadata next to its
// typed spec, with host names and gateway references already resolved the way Istio resolves
// them when it builds its push context (pilot/pkg/model resolveVirtualServiceShortnames).
import {
  MESH_GATEWAY,
  groupOf,
  type DestinationRuleSpec,
  type GatewaySpec,
  type KubeObject,
  type SidecarSpec,
  type VirtualServiceSpec,
} from '@trellis/api';
import { resolveGatewayName, resolveShortName } from './host.js';
import type { Labels } from './model.js';
import { asArray, asLabels, asObject, asString, type Json } from './read.js';

/** One stored config object with a typed spec. */
export interface Config<Spec> {
  readonly group: string;
  readonly kind: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  /** `group/Kind/namespace/name`, as the config store's `keyString`. */
  readonly key: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
  readonly generation?: number;
  /** The spec as stored (for VirtualServices, see `VirtualServiceConfig.spec`). */
  readonly spec: Spec;
}

/**
 * A VirtualService with Istio's resolution applied: `spec` is a copy whose top-level hosts and
 * every destination host (route, mirror, mirrors; HTTP, TLS and TCP) are resolved with
 * `resolveShortName`, and whose gateway references (top level and in matches) are
 * `namespace/name` or `mesh`. `raw` is the spec as written.
 */
export interface VirtualServiceConfig extends Config<VirtualServiceSpec> {
  readonly raw: VirtualServiceSpec;
  /** Resolved hosts (empty for a delegate VirtualService). */
  readonly hosts: readonly string[];
  /** Resolved gateways the VirtualService binds to; `['mesh']` when none are listed. */
  readonly gateways: readonly string[];
  /** A delegate (no hosts): used only through a root's `delegate`, never on its own. */
  readonly isDelegate: boolean;
}

/** A DestinationRule with its host resolved (`reviews` → `reviews.NS.svc.cluster.local`). */
export interface DestinationRuleConfig extends Config<DestinationRuleSpec> {
  readonly host: string;
}

/** A Gateway, with `ref` = `namespace/name` as VirtualServices name it after resolution. */
export interface GatewayConfig extends Config<GatewaySpec> {
  readonly ref: string;
}

export type SidecarConfig = Config<SidecarSpec>;

/** The config wrapper of a stored object. */
export function configOf<Spec>(o: KubeObject): Config<Spec> {
  const namespace = o.metadata.namespace ?? '';
  const group = groupOf(o.apiVersion);
  return {
    group,
    kind: o.kind,
    apiVersion: o.apiVersion,
    namespace,
    name: o.metadata.name,
    key: `${group}/${o.kind}/${namespace}/${o.metadata.name}`,
    labels: asLabels(o.metadata.labels),
    annotations: asLabels(o.metadata.annotations),
    ...(o.metadata.resourceVersion !== undefined
      ? { resourceVersion: o.metadata.resourceVersion }
      : {}),
    ...(o.metadata.creationTimestamp !== undefined
      ? { creationTimestamp: o.metadata.creationTimestamp }
      : {}),
    ...(o.metadata.generation !== undefined ? { generation: o.metadata.generation } : {}),
    spec: (asObject(o.spec) ?? {}) as Spec,
  };
}

/** A VirtualService with hosts, destinations and gateways resolved. */
export function virtualServiceConfig(o: KubeObject, domainSuffix: string): VirtualServiceConfig {
  const base = configOf<VirtualServiceSpec>(o);
  const ns = base.namespace;
  const host = (h: unknown): unknown =>
    typeof h === 'string' ? resolveShortName(h, ns, domainSuffix) : h;
  const gateway = (g: unknown): unknown =>
    typeof g === 'string' && g !== MESH_GATEWAY ? resolveGatewayName(g, ns) : g;
  const raw = base.spec as Json;
  const spec: Record<string, unknown> = { ...raw };
  if (Array.isArray(raw.hosts)) spec.hosts = raw.hosts.map(host);
  if (Array.isArray(raw.gateways)) spec.gateways = raw.gateways.map(gateway);
  const withDestination = (d: unknown): unknown => {
    const o2 = asObject(d);
    return o2 && typeof o2.host === 'string' ? { ...o2, host: host(o2.host) } : d;
  };
  const route = (r: unknown): unknown => {
    const o2 = asObject(r);
    return o2 && o2.destination !== undefined
      ? { ...o2, destination: withDestination(o2.destination) }
      : r;
  };
  const match = (m: unknown): unknown => {
    const o2 = asObject(m);
    return o2 && Array.isArray(o2.gateways) ? { ...o2, gateways: o2.gateways.map(gateway) } : m;
  };
  for (const field of ['http', 'tls', 'tcp'] as const) {
    if (!Array.isArray(raw[field])) continue;
    spec[field] = asArray(raw[field]).map((rule) => {
      const r = asObject(rule);
      if (!r) return rule;
      const out: Record<string, unknown> = { ...r };
      if (Array.isArray(r.match)) out.match = r.match.map(match);
      if (Array.isArray(r.route)) out.route = r.route.map(route);
      if (field === 'http') {
        if (r.mirror !== undefined) out.mirror = withDestination(r.mirror);
        if (Array.isArray(r.mirrors)) out.mirrors = r.mirrors.map(route);
      }
      return out;
    });
  }
  const hosts = asArray(spec.hosts).filter((h): h is string => typeof h === 'string');
  const listed = asArray(spec.gateways).filter((g): g is string => typeof g === 'string');
  return {
    ...base,
    spec,
    raw: base.spec,
    hosts,
    gateways: listed.length > 0 ? listed : [MESH_GATEWAY],
    isDelegate: hosts.length === 0,
  };
}

/** A DestinationRule with its host resolved. */
export function destinationRuleConfig(o: KubeObject, domainSuffix: string): DestinationRuleConfig {
  const base = configOf<DestinationRuleSpec>(o);
  const host = asString((base.spec as Json).host) ?? '';
  return { ...base, host: resolveShortName(host, base.namespace, domainSuffix) };
}

/** A Gateway with its `namespace/name` reference. */
export function gatewayConfig(o: KubeObject): GatewayConfig {
  const base = configOf<GatewaySpec>(o);
  return { ...base, ref: `${base.namespace}/${base.name}` };
}

/** Oldest first, then by name and namespace: Istio's order for configs of equal precedence. */
export function compareByCreation(
  a: { readonly creationTimestamp?: string; readonly name: string; readonly namespace: string },
  b: { readonly creationTimestamp?: string; readonly name: string; readonly namespace: string },
): number {
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return 0;
}
