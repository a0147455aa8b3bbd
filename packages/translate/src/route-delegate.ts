// Delegate VirtualServices (Istio pilot/pkg/model virtualservice.go mergeHTTPRoutes): a rule of a
// root VirtualService with `delegate` is replaced by the delegate's rules, each restricted to the
// root rule's matches. A delegate match must be a subset of some root match (a root exact path
// accepts only the same path; a root prefix accepts longer prefixes and exact paths under it; a
// regex on either side conflicts with any other path condition); a rule whose matches all
// conflict is dropped. Unset fields of a delegate rule (rewrite, timeout, retries, fault, mirror,
// CORS, headers...) come from the root rule. A delegate that is missing, or not exported to the
// root's namespace, contributes nothing. Destination hosts of the merged rules are resolved
// relative to the root's namespace, as Istio resolves them after merging.
import type {
  Destination,
  HTTPMatchRequest,
  HTTPRoute,
  StringMatch,
  VirtualServiceSpec,
} from '@trellis/api';
import { resolveShortName } from '@trellis/registry';
import type { VirtualServiceLike } from './route.js';

/** A delegate VirtualService: its namespace, name, spec as written and exportTo visibility. */
export interface DelegateLike {
  readonly namespace: string;
  readonly name: string;
  /** The spec as written (hosts empty). */
  readonly raw: VirtualServiceSpec;
}

/** Finds a delegate; returns undefined when it does not exist. */
export type DelegateLookup = (namespace: string, name: string) => DelegateLike | undefined;

/** Whether the VirtualService has a rule that delegates. */
export function isRootVirtualService(spec: VirtualServiceSpec): boolean {
  return (spec.http ?? []).some((r) => r.delegate != null);
}

function stringMatchConflict(
  root: StringMatch | undefined,
  leaf: StringMatch | undefined,
): boolean {
  if (!root || !leaf) return false;
  if (root.regex) return !!(leaf.regex || leaf.prefix || leaf.exact);
  if (leaf.regex) return !!(root.regex || root.prefix || root.exact);
  if (root.exact) {
    if (leaf.prefix) return true;
    return leaf.exact !== root.exact;
  }
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function hasConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  const fields = ['uri', 'scheme', 'method', 'authority'] as const;
  for (const f of fields) if (stringMatchConflict(root[f], leaf[f])) return true;
  for (const [k, v] of Object.entries(leaf.headers ?? {}))
    if (stringMatchConflict(root.headers?.[k], v)) return true;
  for (const [k, v] of Object.entries(leaf.withoutHeaders ?? {}))
    if (stringMatchConflict(root.withoutHeaders?.[k], v)) return true;
  for (const [k, v] of Object.entries(leaf.queryParams ?? {}))
    if (stringMatchConflict(root.queryParams?.[k], v)) return true;
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if ((root.port ?? 0) > 0 && (leaf.port ?? 0) > 0 && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    const rv = root.sourceLabels?.[k];
    if (rv !== undefined && rv !== v) return true;
  }
  const rg = root.gateways ?? [];
  const lg = leaf.gateways ?? [];
  if (rg.length > 0 && lg.length > 0) {
    if (rg.length < lg.length) return true;
    if (lg.some((g) => !rg.includes(g))) return true;
  }
  return false;
}

function mergeMap<V>(
  a: Readonly<Record<string, V>> | undefined,
  b: Readonly<Record<string, V>> | undefined,
): Readonly<Record<string, V>> | undefined {
  if (!a && !b) return undefined;
  return { ...(a ?? {}), ...(b ?? {}) };
}

function mergeMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: Record<string, unknown> = { ...leaf };
  const name = leaf.name ? (root.name ? `${root.name}-${leaf.name}` : leaf.name) : root.name;
  if (name) out.name = name;
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const)
    if (leaf[f] === undefined && root[f] !== undefined) out[f] = root[f];
  for (const f of ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels'] as const) {
    const m = mergeMap<unknown>(root[f], leaf[f]);
    if (m) out[f] = m;
  }
  if ((leaf.port ?? 0) === 0 && root.port !== undefined) out.port = root.port;
  if (!leaf.sourceNamespace && root.sourceNamespace) out.sourceNamespace = root.sourceNamespace;
  if ((leaf.gateways?.length ?? 0) === 0 && root.gateways) out.gateways = root.gateways;
  if (!leaf.statPrefix && root.statPrefix) out.statPrefix = root.statPrefix;
  return out;
}

function mergeMatches(
  root: readonly HTTPMatchRequest[] | undefined,
  leaf: readonly HTTPMatchRequest[] | undefined,
): HTTPMatchRequest[] | undefined | 'conflict' {
  if ((root?.length ?? 0) === 0) return leaf ? [...leaf] : undefined;
  if ((leaf?.length ?? 0) === 0) return root ? [...root] : undefined;
  const out: HTTPMatchRequest[] = [];
  for (const sub of leaf ?? []) {
    let found = false;
    for (const r of root ?? []) {
      if (hasConflict(r, sub)) continue;
      out.push(mergeMatch(r, sub));
      found = true;
    }
    if (!found) return 'conflict';
  }
  return out.length > 0 ? out : 'conflict';
}

function mergeRule(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match, leaf.match);
  if (match === 'conflict') return undefined;
  const out: Record<string, unknown> = { ...leaf };
  if (match) out.match = match;
  else delete out.match;
  const name = leaf.name ? (root.name ? `${root.name}-${leaf.name}` : leaf.name) : root.name;
  if (name) out.name = name;
  const inherited = [
    'rewrite',
    'directResponse',
    'timeout',
    'retries',
    'fault',
    'mirror',
    'mirrorPercent',
    'mirror_percent',
    'mirrorPercentage',
    'corsPolicy',
    'mirrors',
    'headers',
  ] as const;
  for (const f of inherited) if (leaf[f] === undefined && root[f] !== undefined) out[f] = root[f];
  return out;
}

function resolveDestination(d: Destination, namespace: string, domainSuffix: string): Destination {
  return { ...d, host: resolveShortName(d.host, namespace, domainSuffix) };
}

function resolveRule(r: HTTPRoute, namespace: string, domainSuffix: string): HTTPRoute {
  const out: Record<string, unknown> = { ...r };
  if (r.route)
    out.route = r.route.map((d) => ({
      ...d,
      destination: resolveDestination(d.destination, namespace, domainSuffix),
    }));
  if (r.mirror) out.mirror = resolveDestination(r.mirror, namespace, domainSuffix);
  if (r.mirrors)
    out.mirrors = r.mirrors.map((m) => ({
      ...m,
      destination: resolveDestination(m.destination, namespace, domainSuffix),
    }));
  return out;
}

/**
 * The root VirtualService with its delegating rules replaced by the merged delegate rules
 * (unchanged when nothing delegates). `visibleToRoot` says whether a delegate is exported to
 * the root's namespace.
 */
export function mergeDelegates(
  root: VirtualServiceLike,
  lookup: DelegateLookup,
  visibleToRoot: (delegate: DelegateLike, rootNamespace: string) => boolean,
  domainSuffix: string,
): VirtualServiceLike {
  if (!isRootVirtualService(root.spec)) return root;
  const http: HTTPRoute[] = [];
  for (const rule of root.spec.http ?? []) {
    const ref = rule.delegate;
    if (!ref) {
      http.push(rule);
      continue;
    }
    const ns = ref.namespace || root.namespace;
    const delegate = lookup(ns, ref.name ?? '');
    if (!delegate || !visibleToRoot(delegate, root.namespace)) continue;
    const { delegate: _d, ...rootRule } = rule;
    for (const sub of delegate.raw.http ?? []) {
      const merged = mergeRule(rootRule, sub);
      if (merged) http.push(resolveRule(merged, root.namespace, domainSuffix));
    }
  }
  return { name: root.name, namespace: root.namespace, spec: { ...root.spec, http } };
}
