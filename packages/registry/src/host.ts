// Istio's host-name rules: short names resolved relative to a config's namespace, wildcard
// matching, "most specific wins" ordering, and gateway references (`ns/name`).
// Semantics: istio/istio pkg/config/host (Name.Matches, SubsetOf, MoreSpecific) and
// pilot/pkg/model (ResolveShortnameToFQDN, resolveGatewayName, MostSpecificHostMatch).
import { isIP } from 'node:net';
import { MESH_GATEWAY } from '@trellis/api';

/** The default DNS domain of a cluster (mesh `domainSuffix`). */
export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

/** `NAME.NAMESPACE.svc.DOMAIN`: the host name of a Kubernetes Service. */
export function kubeServiceHostname(
  name: string,
  namespace: string,
  domainSuffix = DEFAULT_DOMAIN_SUFFIX,
): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/**
 * Resolves a host as written in a config of `namespace`, exactly as Istio does:
 * - `*`, an IP address and any name containing a dot are kept as written (so `reviews.bookinfo`
 *   stays `reviews.bookinfo`: Istio does not complete partial names);
 * - a name without a dot is a Kubernetes Service of the config's namespace:
 *   `reviews` in `default` → `reviews.default.svc.cluster.local`;
 * - '' stays ''.
 * An empty namespace or domain suffix leaves its part out, as Istio does.
 */
export function resolveShortName(
  host: string,
  namespace: string,
  domainSuffix = DEFAULT_DOMAIN_SUFFIX,
): string {
  if (host === '' || host === '*' || isIP(host) !== 0 || host.includes('.')) return host;
  let out = host;
  if (namespace !== '') out += `.${namespace}`;
  if (domainSuffix !== '') out += `.svc.${domainSuffix}`;
  return out;
}

/**
 * Resolves a gateway reference in a VirtualService of `namespace` to `namespace/name`:
 * `mesh` stays; `gw` → `ns/gw`; `./gw` → `ns/gw`; `other/gw` stays; the legacy
 * `gw.other.svc.cluster.local` (or `gw.other`) → `other/gw`.
 */
export function resolveGatewayName(gateway: string, namespace: string): string {
  if (gateway === MESH_GATEWAY) return gateway;
  const slash = gateway.indexOf('/');
  if (slash < 0) {
    const dot = gateway.indexOf('.');
    if (dot < 0) return `${namespace}/${gateway}`;
    const rest = gateway.slice(dot + 1);
    const next = rest.indexOf('.');
    return `${next < 0 ? rest : rest.slice(0, next)}/${gateway.slice(0, dot)}`;
  }
  if (gateway.slice(0, slash) === '.') return `${namespace}/${gateway.slice(slash + 1)}`;
  return gateway;
}

/** Whether a host name starts with the wildcard `*`. */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/**
 * Istio's `Name.Matches`: the names overlap. Equal names match; a wildcard covers the names
 * ending in its suffix (`*.com` matches `foo.com`, `*` matches everything), in either direction.
 */
export function hostMatches(a: string, b: string): boolean {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw) {
    if (bw)
      return a.length < b.length
        ? b.slice(1).endsWith(a.slice(1))
        : a.slice(1).endsWith(b.slice(1));
    return b.endsWith(a.slice(1));
  }
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Istio's `Name.SubsetOf`: every name `a` covers is also covered by `b`. */
export function hostSubsetOf(a: string, b: string): boolean {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw) return bw && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * Istio's `MoreSpecific`, the order of hosts in routes: non-wildcards before wildcards, then
 * longer before shorter, then alphabetical.
 */
export function moreSpecific(a: string, b: string): boolean {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw !== bw) return !aw;
  if (a.length !== b.length) return a.length > b.length;
  return a < b;
}

/** Sorts host names most specific first (a comparator for `Array.prototype.sort`). */
export function compareHostSpecificity(a: string, b: string): number {
  if (a === b) return 0;
  return moreSpecific(a, b) ? -1 : 1;
}

/**
 * Istio's `MostSpecificHostMatch`: the entry whose host covers `needle` most specifically.
 * An exact entry wins; otherwise the most specific wildcard whose suffix `needle` ends with.
 * A wildcard needle matches only wildcard entries (itself exactly, or a broader wildcard).
 */
export function mostSpecificHostMatch<V>(
  needle: string,
  specific: ReadonlyMap<string, V>,
  wildcard: ReadonlyMap<string, V>,
): { readonly host: string; readonly value: V } | undefined {
  if (isWildcardHost(needle)) {
    const exact = wildcard.get(needle);
    if (exact !== undefined) return { host: needle, value: exact };
    return bestWildcard(needle.slice(1), wildcard);
  }
  const exact = specific.get(needle);
  if (exact !== undefined) return { host: needle, value: exact };
  return bestWildcard(needle, wildcard);
}

function bestWildcard<V>(
  needle: string,
  wildcard: ReadonlyMap<string, V>,
): { readonly host: string; readonly value: V } | undefined {
  let best: { host: string; value: V } | undefined;
  for (const [h, v] of wildcard) {
    if (!needle.endsWith(h.slice(1))) continue;
    if (best === undefined || moreSpecific(h, best.host)) best = { host: h, value: v };
  }
  return best;
}
