// RouteConfiguration matching, compiled once per configuration object: the virtual host by
// :authority (exact, `*.suffix`, `prefix*`, then `*`, longest wildcard first; the port ignored
// only with ignore_port_in_host_matching, as in Envoy), then the first route whose match holds
// (prefix / path / safe_regex / path_separated_prefix / connect_matcher, case_sensitive,
// headers, query_parameters, runtime_fraction, grpc), with its action compiled
// (cluster / cluster_header / weighted_clusters, rewrites, timeouts, upgrades, redirect,
// direct_response) and its header mutations.
//
// Not compiled here (issue 6 / later): retry_policy, hash_policy, request_mirror_policies,
// typed_per_filter_config (fault, CORS...), max_stream_duration.max_stream_duration,
// metadata_match. The router reads the Route's config for those where it grows hooks.
import { readFileSync } from 'node:fs';
import type {
  ClusterWeight,
  HeaderMatcher,
  QueryParameterMatcher,
  RedirectAction,
  Route,
  RouteAction,
  RouteConfiguration,
  RouteMatch,
  VirtualHost,
} from '@trellis/envoy';
import { compileRe2, translateRe2Substitution } from '../xds/re2.js';
import { durationMs } from '../duration.js';
import { HeaderMutation } from './header-mutation.js';
import type { RequestHeaders } from './headers.js';
import { compileStringMatcher, type StringPredicate } from './string-matcher.js';

/** Envoy's route timeout when a route sets none. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

/** What route matching looks at. */
export interface RouteRequest {
  readonly headers: RequestHeaders;
  /** A CONNECT request (matches only connect_matcher routes). */
  readonly isConnect: boolean;
  readonly isGrpc: boolean;
  /** Downstream TLS: a client certificate was presented / validated. */
  readonly tlsPresented?: boolean;
  readonly tlsValidated?: boolean;
  /** Parsed query parameters, filled on first use. */
  queryParams?: Map<string, string>;
  /** A value in [0, 1) for runtime_fraction and weighted clusters (Math.random() by default). */
  readonly random?: () => number;
}

/** A regex rewrite (RE2 GlobalReplace semantics). */
export interface CompiledRegexRewrite {
  readonly re: RegExp;
  readonly substitution: string;
}

export interface CompiledWeightedCluster {
  readonly name: string;
  readonly clusterHeader: string | undefined;
  readonly weight: number;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly hostRewriteLiteral: string | undefined;
  readonly config: ClusterWeight;
}

export interface CompiledRouteAction {
  readonly kind: 'route';
  readonly config: RouteAction;
  readonly cluster: string | undefined;
  readonly clusterHeader: string | undefined;
  readonly weighted: readonly CompiledWeightedCluster[] | undefined;
  readonly totalWeight: number;
  /** WeightedCluster.header_name: the random value comes from this header when it holds one. */
  readonly weightHeader: string | undefined;
  /** HTTP status when the cluster is unknown (503 by default). */
  readonly clusterNotFoundStatus: number;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: CompiledRegexRewrite | undefined;
  readonly hostRewriteLiteral: string | undefined;
  readonly autoHostRewrite: boolean;
  readonly hostRewriteHeader: string | undefined;
  readonly hostRewritePathRegex: CompiledRegexRewrite | undefined;
  readonly appendXForwardedHost: boolean;
  /** Route timeout in ms; 0 = none. */
  readonly timeoutMs: number;
  /** Stream idle timeout override in ms; undefined = the connection manager's. */
  readonly idleTimeoutMs: number | undefined;
  /**
   * max_stream_duration.grpc_timeout_header_max: undefined = ignore grpc-timeout; 0 = use it
   * uncapped; else the cap in ms.
   */
  readonly grpcTimeoutHeaderMaxMs: number | undefined;
  /** Route-level upgrade overrides (lower-case type → enabled). */
  readonly upgrades: ReadonlyMap<string, boolean>;
}

export interface CompiledRedirect {
  readonly kind: 'redirect';
  readonly config: RedirectAction;
  readonly status: number;
  readonly regexRewrite: CompiledRegexRewrite | undefined;
}

export interface CompiledDirectResponse {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: Buffer | undefined;
}

export interface CompiledNonForwarding {
  readonly kind: 'non_forwarding';
}

export type CompiledAction =
  CompiledRouteAction | CompiledRedirect | CompiledDirectResponse | CompiledNonForwarding;

export interface CompiledRoute {
  readonly name: string | undefined;
  readonly config: Route;
  readonly vhost: CompiledVirtualHost;
  readonly match: RouteMatch;
  readonly action: CompiledAction;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  /** The prefix / path the route matched on (for prefix_rewrite). */
  readonly matchedPrefix: string | undefined;
  readonly caseSensitive: boolean;
  matches(req: RouteRequest): boolean;
}

export interface CompiledVirtualHost {
  readonly name: string;
  readonly config: VirtualHost;
  readonly routes: readonly CompiledRoute[];
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly includeRequestAttemptCount: boolean;
  readonly includeAttemptCountInResponse: boolean;
  readonly routeConfig: CompiledRouteConfig;
}

export interface CompiledRouteConfig {
  readonly name: string;
  readonly config: RouteConfiguration;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly internalOnlyHeaders: readonly string[];
  readonly mostSpecificHeaderMutationsWins: boolean;
  findVirtualHost(authority: string): CompiledVirtualHost | undefined;
}

const REDIRECT_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

const CLUSTER_NOT_FOUND_CODES: Readonly<Record<string, number>> = {
  SERVICE_UNAVAILABLE: 503,
  NOT_FOUND: 404,
  INTERNAL_SERVER_ERROR: 500,
};

type Check = (req: RouteRequest) => boolean;

const cache = new WeakMap<RouteConfiguration, CompiledRouteConfig>();

/** The compiled form of `config` (cached per configuration object). */
export function compileRouteConfig(config: RouteConfiguration): CompiledRouteConfig {
  let compiled = cache.get(config);
  if (!compiled) {
    compiled = new RouteConfigImpl(config);
    cache.set(config, compiled);
  }
  return compiled;
}

/** The virtual host and route a request selects: no vhost → NR; a vhost without route → NR. */
export function findRoute(
  config: CompiledRouteConfig,
  req: RouteRequest,
): { vhost: CompiledVirtualHost | undefined; route: CompiledRoute | undefined } {
  const vhost = config.findVirtualHost(req.headers.authority);
  if (!vhost) return { vhost, route: undefined };
  for (const r of vhost.routes) if (r.matches(req)) return { vhost, route: r };
  return { vhost, route: undefined };
}

class RouteConfigImpl implements CompiledRouteConfig {
  readonly name: string;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly internalOnlyHeaders: readonly string[];
  readonly mostSpecificHeaderMutationsWins: boolean;
  private readonly exact = new Map<string, CompiledVirtualHost>();
  /** Suffix wildcards (`*.foo.com` → `.foo.com`) by suffix length, longest first. */
  private readonly suffixes: [number, Map<string, CompiledVirtualHost>][] = [];
  /** Prefix wildcards (`foo.*` → `foo.`) by prefix length, longest first. */
  private readonly prefixes: [number, Map<string, CompiledVirtualHost>][] = [];
  private defaultVhost: CompiledVirtualHost | undefined;
  private readonly ignorePort: boolean;

  constructor(readonly config: RouteConfiguration) {
    this.name = config.name ?? '';
    this.requestHeaders = HeaderMutation.compile(
      config.requestHeadersToAdd,
      config.requestHeadersToRemove,
    );
    this.responseHeaders = HeaderMutation.compile(
      config.responseHeadersToAdd,
      config.responseHeadersToRemove,
    );
    this.internalOnlyHeaders = (config.internalOnlyHeaders ?? []).map((h) => h.toLowerCase());
    this.mostSpecificHeaderMutationsWins = config.mostSpecificHeaderMutationsWins === true;
    this.ignorePort = config.ignorePortInHostMatching === true;
    const suffixes = new Map<number, Map<string, CompiledVirtualHost>>();
    const prefixes = new Map<number, Map<string, CompiledVirtualHost>>();
    for (const vh of config.virtualHosts ?? []) {
      const compiled = compileVirtualHost(vh, this);
      for (const d of vh.domains ?? []) {
        const domain = d.toLowerCase();
        if (domain === '*') {
          this.defaultVhost ??= compiled;
        } else if (domain.startsWith('*')) {
          const s = domain.slice(1);
          let m = suffixes.get(s.length);
          if (!m) suffixes.set(s.length, (m = new Map<string, CompiledVirtualHost>()));
          if (!m.has(s)) m.set(s, compiled);
        } else if (domain.endsWith('*')) {
          const p = domain.slice(0, -1);
          let m = prefixes.get(p.length);
          if (!m) prefixes.set(p.length, (m = new Map<string, CompiledVirtualHost>()));
          if (!m.has(p)) m.set(p, compiled);
        } else if (!this.exact.has(domain)) {
          this.exact.set(domain, compiled);
        }
      }
    }
    this.suffixes = [...suffixes.entries()].sort((a, b) => b[0] - a[0]);
    this.prefixes = [...prefixes.entries()].sort((a, b) => b[0] - a[0]);
  }

  findVirtualHost(authority: string): CompiledVirtualHost | undefined {
    if (this.exact.size === 0 && this.suffixes.length === 0 && this.prefixes.length === 0)
      return this.defaultVhost;
    let host = authority.toLowerCase();
    if (this.ignorePort) host = stripPort(host);
    const exact = this.exact.get(host);
    if (exact) return exact;
    for (const [len, m] of this.suffixes) {
      if (host.length <= len) continue;
      const v = m.get(host.slice(host.length - len));
      if (v) return v;
    }
    for (const [len, m] of this.prefixes) {
      if (host.length <= len) continue;
      const v = m.get(host.slice(0, len));
      if (v) return v;
    }
    return this.defaultVhost;
  }
}

/** `host:port` → `host` (IPv6 `[::1]:80` → `[::1]`). */
export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const i = host.lastIndexOf(':');
  if (i < 0 || host.indexOf(':') !== i) return host;
  return /^\d+$/.test(host.slice(i + 1)) ? host.slice(0, i) : host;
}

function compileVirtualHost(vh: VirtualHost, rc: CompiledRouteConfig): CompiledVirtualHost {
  const routes: CompiledRoute[] = [];
  const compiled: CompiledVirtualHost = {
    name: vh.name ?? '',
    config: vh,
    routes,
    requestHeaders: HeaderMutation.compile(vh.requestHeadersToAdd, vh.requestHeadersToRemove),
    responseHeaders: HeaderMutation.compile(vh.responseHeadersToAdd, vh.responseHeadersToRemove),
    includeRequestAttemptCount: vh.includeRequestAttemptCount === true,
    includeAttemptCountInResponse: vh.includeAttemptCountInResponse === true,
    routeConfig: rc,
  };
  for (const r of vh.routes ?? []) routes.push(compileRoute(r, compiled, rc.config));
  return compiled;
}

function compileRoute(r: Route, vhost: CompiledVirtualHost, rc: RouteConfiguration): CompiledRoute {
  const match = r.match ?? {};
  const caseSensitive = match.caseSensitive !== false;
  const checks: Check[] = [];
  let matchedPrefix: string | undefined;
  const connectOnly = match.connectMatcher !== undefined;
  if (match.prefix !== undefined) {
    const prefix = match.prefix;
    matchedPrefix = prefix;
    if (caseSensitive) checks.push((q) => q.headers.path.startsWith(prefix));
    else {
      const lower = prefix.toLowerCase();
      checks.push((q) => q.headers.path.toLowerCase().startsWith(lower));
    }
  } else if (match.path !== undefined) {
    const path = match.path;
    matchedPrefix = path;
    if (caseSensitive) checks.push((q) => q.headers.pathOnly() === path);
    else {
      const lower = path.toLowerCase();
      checks.push((q) => q.headers.pathOnly().toLowerCase() === lower);
    }
  } else if (match.safeRegex?.regex !== undefined) {
    const re = compileRe2(match.safeRegex.regex);
    if (re.ok) {
      const r2 = re.value;
      checks.push((q) => r2.test(q.headers.pathOnly()));
    } else checks.push(() => false);
  } else if (match.pathSeparatedPrefix !== undefined) {
    const prefix = match.pathSeparatedPrefix;
    matchedPrefix = prefix;
    const cmp = caseSensitive ? prefix : prefix.toLowerCase();
    checks.push((q) => {
      const p = caseSensitive ? q.headers.pathOnly() : q.headers.pathOnly().toLowerCase();
      return p === cmp || (p.startsWith(cmp) && p.charCodeAt(cmp.length) === 47); /* / */
    });
  } else if (!connectOnly) {
    // No path specifier: nothing the validator would accept; never matches.
    checks.push(() => false);
  }
  for (const h of match.headers ?? []) checks.push(compileHeaderMatcher(h));
  for (const qp of match.queryParameters ?? []) checks.push(compileQueryMatcher(qp));
  const fraction = match.runtimeFraction?.defaultValue;
  if (fraction) {
    const den =
      fraction.denominator === 'MILLION'
        ? 1e6
        : fraction.denominator === 'TEN_THOUSAND'
          ? 1e4
          : 100;
    const p = (fraction.numerator ?? 0) / den;
    if (p < 1) checks.push((q) => (q.random ?? Math.random)() < p);
  }
  if (match.grpc !== undefined) checks.push((q) => q.isGrpc);
  if (match.tlsContext) {
    const t = match.tlsContext;
    if (t.presented !== undefined) checks.push((q) => (q.tlsPresented === true) === t.presented);
    if (t.validated !== undefined) checks.push((q) => (q.tlsValidated === true) === t.validated);
  }
  const action = compileAction(r, rc);
  return {
    name: r.name,
    config: r,
    vhost,
    match,
    action,
    requestHeaders: HeaderMutation.compile(r.requestHeadersToAdd, r.requestHeadersToRemove),
    responseHeaders: HeaderMutation.compile(r.responseHeadersToAdd, r.responseHeadersToRemove),
    matchedPrefix,
    caseSensitive,
    matches(q: RouteRequest): boolean {
      if (q.isConnect !== connectOnly) return false;
      for (const c of checks) if (!c(q)) return false;
      return true;
    },
  };
}

function compileHeaderMatcher(h: HeaderMatcher): Check {
  const name = (h.name ?? '').toLowerCase();
  const invert = h.invertMatch === true;
  if (h.presentMatch !== undefined) {
    const want = h.presentMatch;
    return (q) => ((q.headers.get(name) !== undefined) === want) !== invert;
  }
  let test: StringPredicate;
  if (h.stringMatch) test = compileStringMatcher(h.stringMatch);
  else if (h.rangeMatch) {
    const start = BigInt(h.rangeMatch.start ?? '0');
    const end = BigInt(h.rangeMatch.end ?? '0');
    test = (v) => {
      if (!/^-?\d+$/.test(v)) return false;
      const n = BigInt(v);
      return n >= start && n < end;
    };
  } else test = () => true; // Only a name: matches when present (Envoy's deprecated form).
  const missingAsEmpty = h.treatMissingHeaderAsEmpty === true;
  return (q) => {
    const v = q.headers.get(name);
    if (v === undefined) {
      if (!missingAsEmpty) return false;
      return test('') !== invert;
    }
    return test(v) !== invert;
  };
}

/** Query parameters decoded as Envoy does (percent-decoding; `+` stays `+`); first value wins. */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!query) return out;
  const hash = query.indexOf('#');
  const q = hash < 0 ? query : query.slice(0, hash);
  for (const part of q.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = decode(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decode(part.slice(eq + 1));
    if (!out.has(k)) out.set(k, v);
  }
  return out;
}

function decode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function compileQueryMatcher(qp: QueryParameterMatcher): Check {
  const name = qp.name ?? '';
  const test = qp.stringMatch ? compileStringMatcher(qp.stringMatch) : undefined;
  const present = qp.presentMatch === true || test === undefined;
  return (q) => {
    q.queryParams ??= parseQuery(q.headers.query());
    const v = q.queryParams.get(name);
    if (v === undefined) return false;
    if (test) return test(v);
    return present;
  };
}

function compileRegexRewrite(
  r: { pattern?: { regex?: string }; substitution?: string } | undefined,
): CompiledRegexRewrite | undefined {
  if (!r?.pattern?.regex) return undefined;
  const re = compileRe2(r.pattern.regex, { anchored: false, global: true });
  const sub = translateRe2Substitution(r.substitution ?? '');
  if (!re.ok || !sub.ok) return undefined;
  return { re: re.value, substitution: sub.value };
}

function compileAction(r: Route, rc: RouteConfiguration): CompiledAction {
  if (r.directResponse) {
    const b = r.directResponse.body;
    let body: Buffer | undefined;
    if (b?.inlineString !== undefined) body = Buffer.from(b.inlineString);
    else if (b?.inlineBytes !== undefined) body = Buffer.from(b.inlineBytes, 'base64');
    else if (b?.environmentVariable !== undefined)
      body = Buffer.from(process.env[b.environmentVariable] ?? '');
    else if (b?.filename !== undefined) {
      try {
        body = readFileSync(b.filename);
      } catch {
        body = undefined;
      }
    }
    const max = rc.maxDirectResponseBodySizeBytes ?? 4096;
    if (body && body.length > max) body = body.subarray(0, max);
    return { kind: 'direct_response', status: r.directResponse.status ?? 200, body };
  }
  if (r.redirect) {
    return {
      kind: 'redirect',
      config: r.redirect,
      status: REDIRECT_CODES[r.redirect.responseCode ?? 'MOVED_PERMANENTLY'] ?? 301,
      regexRewrite: compileRegexRewrite(r.redirect.regexRewrite),
    };
  }
  if (r.nonForwardingAction !== undefined || !r.route) return { kind: 'non_forwarding' };
  const a = r.route;
  const weighted = a.weightedClusters?.clusters?.map((c): CompiledWeightedCluster => ({
    name: c.name ?? '',
    clusterHeader: c.clusterHeader?.toLowerCase(),
    weight: c.weight ?? 0,
    requestHeaders: HeaderMutation.compile(c.requestHeadersToAdd, c.requestHeadersToRemove),
    responseHeaders: HeaderMutation.compile(c.responseHeadersToAdd, c.responseHeadersToRemove),
    hostRewriteLiteral: c.hostRewriteLiteral,
    config: c,
  }));
  const upgrades = new Map<string, boolean>();
  for (const u of a.upgradeConfigs ?? [])
    if (u.upgradeType) upgrades.set(u.upgradeType.toLowerCase(), u.enabled !== false);
  const grpcMax = a.maxStreamDuration?.grpcTimeoutHeaderMax;
  return {
    kind: 'route',
    config: a,
    cluster: a.cluster,
    clusterHeader: a.clusterHeader?.toLowerCase(),
    weighted,
    totalWeight: weighted?.reduce((s, c) => s + c.weight, 0) ?? 0,
    weightHeader: a.weightedClusters?.headerName?.toLowerCase(),
    clusterNotFoundStatus:
      CLUSTER_NOT_FOUND_CODES[a.clusterNotFoundResponseCode ?? 'SERVICE_UNAVAILABLE'] ?? 503,
    prefixRewrite: a.prefixRewrite,
    regexRewrite: compileRegexRewrite(a.regexRewrite),
    hostRewriteLiteral: a.hostRewriteLiteral,
    autoHostRewrite: a.autoHostRewrite === true,
    hostRewriteHeader: a.hostRewriteHeader?.toLowerCase(),
    hostRewritePathRegex: compileRegexRewrite(a.hostRewritePathRegex),
    appendXForwardedHost: a.appendXForwardedHost === true,
    timeoutMs: durationMs(a.timeout) ?? DEFAULT_ROUTE_TIMEOUT_MS,
    idleTimeoutMs: durationMs(a.idleTimeout),
    grpcTimeoutHeaderMaxMs: grpcMax !== undefined ? (durationMs(grpcMax) ?? 0) : undefined,
    upgrades,
  };
}

/** Chooses a weighted cluster: by `random` in [0, 1), or the weight header's integer value. */
export function chooseWeightedCluster(
  action: CompiledRouteAction,
  req: RouteRequest,
): CompiledWeightedCluster | undefined {
  const clusters = action.weighted;
  if (!clusters || clusters.length === 0 || action.totalWeight <= 0) return undefined;
  let pick: number | undefined;
  if (action.weightHeader) {
    const v = req.headers.get(action.weightHeader);
    if (v !== undefined && /^\d+$/.test(v)) pick = Number(BigInt(v) % BigInt(action.totalWeight));
  }
  pick ??= Math.floor((req.random ?? Math.random)() * action.totalWeight);
  let acc = 0;
  for (const c of clusters) {
    acc += c.weight;
    if (pick < acc) return c;
  }
  return clusters[clusters.length - 1];
}
