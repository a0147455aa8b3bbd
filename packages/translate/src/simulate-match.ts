// Envoy's matching semantics, for the simulation: string matchers, header and query parameter
// matchers, route matches, virtual host domains and filter chain matches. Written from Envoy's
// documentation and source (route_components.proto, header_utility.cc, config_impl.cc,
// filter_chain_manager_impl.cc).
import type {
  FilterChain,
  HeaderMatcher,
  QueryParameterMatcher,
  RouteMatch,
  StringMatcher,
  VirtualHost,
} from '@trellis/envoy';

/** Full match of an RE2 regex (JavaScript syntax is close enough for the patterns Istio writes). */
export function regexFullMatch(regex: string, value: string): boolean {
  try {
    return new RegExp(`^(?:${regex})$`, 'u').test(value);
  } catch {
    return false;
  }
}

/** `envoy.type.matcher.v3.StringMatcher`. */
export function stringMatches(m: StringMatcher, value: string): boolean {
  const ic = m.ignoreCase === true;
  const v = ic ? value.toLowerCase() : value;
  const f = (s: string): string => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) return v === f(m.exact);
  if (m.prefix !== undefined) return v.startsWith(f(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(f(m.suffix));
  if (m.contains !== undefined) return v.includes(f(m.contains));
  if (m.safeRegex?.regex !== undefined) return regexFullMatch(m.safeRegex.regex, value);
  return false;
}

/** Request headers by lowercase name (several values joined with `,`, as Envoy does). */
export type HeaderBag = ReadonlyMap<string, string>;

/** Builds a header bag from plain headers (names lowercased). */
export function headerBag(headers: Readonly<Record<string, string>>): HeaderBag {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    const prev = out.get(key);
    out.set(key, prev === undefined ? v : `${prev},${v}`);
  }
  return out;
}

/** Envoy HeaderUtility::matchHeaders for one matcher. */
export function headerMatches(m: HeaderMatcher, headers: HeaderBag): boolean {
  const name = (m.name ?? '').toLowerCase();
  let value = headers.get(name);
  const invert = m.invertMatch === true;
  const present =
    m.presentMatch !== undefined || (m.stringMatch === undefined && m.rangeMatch === undefined);
  const presentValue = m.presentMatch ?? true;
  if (value === undefined) {
    if (!m.treatMissingHeaderAsEmpty) {
      if (invert) return present && presentValue;
      return present && !presentValue;
    }
    value = '';
  }
  let match: boolean;
  if (m.stringMatch) match = stringMatches(m.stringMatch, value);
  else if (m.rangeMatch) {
    const n = /^-?[0-9]+$/.test(value) ? Number(value) : NaN;
    match =
      !Number.isNaN(n) && n >= Number(m.rangeMatch.start ?? 0) && n < Number(m.rangeMatch.end ?? 0);
  } else match = presentValue;
  return match !== invert;
}

/** `?a=1&b` → `{a: '1', b: ''}` (the first value of a repeated parameter wins). */
export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  for (const part of path.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    if (!out.has(k)) out.set(k, v);
  }
  return out;
}

function queryMatches(m: QueryParameterMatcher, query: ReadonlyMap<string, string>): boolean {
  const v = query.get(m.name ?? '');
  if (m.presentMatch) return v !== undefined;
  if (v === undefined) return false;
  if (m.stringMatch) return stringMatches(m.stringMatch, v);
  return true;
}

/** The request as route matching sees it. */
export interface HttpRequestView {
  /** Path with query string. */
  readonly path: string;
  readonly headers: HeaderBag;
}

/** Envoy route matching: path specifier, headers (all), query parameters (all). */
export function routeMatches(m: RouteMatch | undefined, req: HttpRequestView): boolean {
  if (!m) return false;
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  const cs = m.caseSensitive !== false;
  const norm = (s: string): string => (cs ? s : s.toLowerCase());
  if (m.prefix !== undefined) {
    if (!norm(path).startsWith(norm(m.prefix))) return false;
  } else if (m.path !== undefined) {
    if (norm(path) !== norm(m.path)) return false;
  } else if (m.safeRegex?.regex !== undefined) {
    if (!regexFullMatch(m.safeRegex.regex, path)) return false;
  } else if (m.pathSeparatedPrefix !== undefined) {
    const p = norm(m.pathSeparatedPrefix);
    const n = norm(path);
    if (!(n === p || n.startsWith(`${p}/`))) return false;
  } else return false;
  for (const h of m.headers ?? []) if (!headerMatches(h, req.headers)) return false;
  const query = parseQuery(req.path);
  for (const qp of m.queryParameters ?? []) if (!queryMatches(qp, query)) return false;
  return true;
}

/**
 * Envoy's virtual host selection: exact domains, then suffix wildcards (`*.foo.com`, longest
 * first), then prefix wildcards (`foo.*`, longest first), then `*`. The host is compared in lower
 * case; `ignorePort` strips a `:port` first.
 */
export function selectVirtualHost(
  vhosts: readonly VirtualHost[],
  authority: string,
  ignorePort: boolean,
): VirtualHost | undefined {
  let host = authority.toLowerCase();
  if (ignorePort) {
    const colon = host.lastIndexOf(':');
    const bracket = host.lastIndexOf(']');
    if (colon > bracket && /^[0-9]+$/.test(host.slice(colon + 1))) host = host.slice(0, colon);
  }
  for (const v of vhosts) if ((v.domains ?? []).some((d) => d.toLowerCase() === host)) return v;
  let best: { v: VirtualHost; len: number } | undefined;
  for (const v of vhosts)
    for (const d of v.domains ?? []) {
      if (d.length < 2 || !d.startsWith('*')) continue;
      const suffix = d.slice(1).toLowerCase();
      if (
        host.length > suffix.length &&
        host.endsWith(suffix) &&
        (!best || suffix.length > best.len)
      )
        best = { v, len: suffix.length };
    }
  if (best) return best.v;
  for (const v of vhosts)
    for (const d of v.domains ?? []) {
      if (d.length < 2 || !d.endsWith('*')) continue;
      const prefix = d.slice(0, -1).toLowerCase();
      if (
        host.length > prefix.length &&
        host.startsWith(prefix) &&
        (!best || prefix.length > best.len)
      )
        best = { v, len: prefix.length };
    }
  if (best) return best.v;
  return vhosts.find((v) => (v.domains ?? []).includes('*'));
}

/** What a new connection looks like to the filter chain matcher. */
export interface ConnectionView {
  readonly destinationPort: number;
  readonly destinationIp: string;
  readonly serverName: string;
  readonly transportProtocol: string;
  readonly applicationProtocols: readonly string[];
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    const x = Number(p);
    if (!/^[0-9]+$/.test(p) || x > 255) return undefined;
    n = n * 256 + x;
  }
  return n;
}

/** The prefix length of the longest range containing `ip`; -1 when none does. */
function prefixScore(
  ranges: readonly { addressPrefix?: string; prefixLen?: number }[],
  ip: string,
): number {
  const addr = ipv4ToInt(ip);
  let best = -1;
  for (const r of ranges) {
    const len = r.prefixLen ?? 0;
    const base = ipv4ToInt(r.addressPrefix ?? '');
    if (addr === undefined || base === undefined) {
      if ((r.addressPrefix ?? '') === ip && len > best) best = len;
      continue;
    }
    const shift = Math.pow(2, 32 - len);
    if (Math.floor(addr / shift) === Math.floor(base / shift) && len > best) best = len;
  }
  return best;
}

function sniScore(names: readonly string[], sni: string): number {
  let best = -1;
  for (const n of names) {
    if (n === sni) return 1_000_000;
    if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && sni.length > n.length - 1)
      best = Math.max(best, n.length);
  }
  return best;
}

/**
 * Envoy's filter chain selection: destination port, destination IP (longest prefix), server name
 * (exact, then longest wildcard), transport protocol, application protocols; at each level the
 * most specific chains survive and chains without the criterion match anything. Undefined: the
 * listener's default chain applies.
 */
export function selectFilterChain(
  chains: readonly FilterChain[],
  c: ConnectionView,
): FilterChain | undefined {
  type Scorer = (fc: FilterChain) => number;
  const levels: Scorer[] = [
    (fc) => {
      const p = fc.filterChainMatch?.destinationPort;
      return p === undefined ? 0 : p === c.destinationPort ? 1 : -1;
    },
    (fc) => {
      const r = fc.filterChainMatch?.prefixRanges ?? [];
      if (r.length === 0) return 0;
      const s = prefixScore(r, c.destinationIp);
      return s < 0 ? -1 : s + 1;
    },
    (fc) => {
      const names = fc.filterChainMatch?.serverNames ?? [];
      if (names.length === 0) return 0;
      return c.serverName === '' ? -1 : sniScore(names, c.serverName);
    },
    (fc) => {
      const t = fc.filterChainMatch?.transportProtocol ?? '';
      return t === '' ? 0 : t === c.transportProtocol ? 1 : -1;
    },
    (fc) => {
      const a = fc.filterChainMatch?.applicationProtocols ?? [];
      if (a.length === 0) return 0;
      return a.some((x) => c.applicationProtocols.includes(x)) ? 1 : -1;
    },
  ];
  let candidates = [...chains];
  for (const score of levels) {
    const scored = candidates.map((fc) => ({ fc, s: score(fc) })).filter((x) => x.s >= 0);
    if (scored.length === 0) return undefined;
    const max = Math.max(...scored.map((x) => x.s));
    candidates = scored.filter((x) => x.s === max).map((x) => x.fc);
  }
  return candidates[0];
}
