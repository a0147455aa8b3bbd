// The route's hash_policy (Envoy's HashPolicyImpl): the request hash that RING_HASH and MAGLEV
// clusters choose by. Each policy hashes one input with xxHash64 — a header (every value,
// sorted, optionally regex-rewritten; pseudo-headers too), a cookie (generated with Set-Cookie
// when absent and a ttl is given), the downstream source IP, or a query parameter — and the
// results are combined as Envoy does (the hash so far rotated left by one, XOR the new one);
// a `terminal` policy that produced a hash ends the evaluation.
import type { HashPolicy } from '@trellis/envoy';
import { durationMs } from '../duration.js';
import { xxHash64 } from '../upstream/lb/xxhash64.js';
import { compileRe2, translateRe2Substitution } from '../xds/re2.js';
import type { HeaderMap, RequestHeaders } from './headers.js';

/** A cookie to set on the response (Envoy's downstream_set_cookies). */
export interface HashCookie {
  readonly name: string;
  readonly value: string;
  /** Max-Age in seconds; 0 = a session cookie. */
  readonly ttlSeconds: number;
  readonly path: string;
  readonly attributes: readonly { readonly name: string; readonly value: string }[];
}

type Method =
  | {
      readonly kind: 'header';
      readonly name: string;
      readonly rewrite: { readonly re: RegExp; readonly substitution: string } | undefined;
    }
  | {
      readonly kind: 'cookie';
      readonly name: string;
      readonly ttlSeconds: number | undefined;
      readonly path: string;
      readonly attributes: HashCookie['attributes'];
    }
  | { readonly kind: 'source_ip' }
  | { readonly kind: 'query_parameter'; readonly name: string }
  | { readonly kind: 'none' };

interface CompiledPolicy {
  readonly method: Method;
  readonly terminal: boolean;
}

const MASK64 = (1n << 64n) - 1n;

const cache = new WeakMap<readonly HashPolicy[], readonly CompiledPolicy[]>();

function compileOne(p: HashPolicy): Method {
  if (p.header) {
    let rewrite: { re: RegExp; substitution: string } | undefined;
    const rr = p.header.regexRewrite;
    if (rr?.pattern?.regex) {
      const re = compileRe2(rr.pattern.regex, { anchored: false, global: true });
      const sub = translateRe2Substitution(rr.substitution ?? '');
      if (re.ok && sub.ok) rewrite = { re: re.value, substitution: sub.value };
    }
    return { kind: 'header', name: (p.header.headerName ?? '').toLowerCase(), rewrite };
  }
  if (p.cookie) {
    const ttl = p.cookie.ttl !== undefined ? durationMs(p.cookie.ttl) : undefined;
    return {
      kind: 'cookie',
      name: p.cookie.name ?? '',
      ttlSeconds: ttl === undefined ? undefined : Math.floor(ttl / 1000),
      path: p.cookie.path ?? '',
      attributes: (p.cookie.attributes ?? []).map((a) => ({
        name: a.name ?? '',
        value: a.value ?? '',
      })),
    };
  }
  if (p.connectionProperties?.sourceIp) return { kind: 'source_ip' };
  if (p.queryParameter) return { kind: 'query_parameter', name: p.queryParameter.name ?? '' };
  return { kind: 'none' };
}

function compile(policies: readonly HashPolicy[]): readonly CompiledPolicy[] {
  let c = cache.get(policies);
  if (!c) {
    c = policies.map((p) => ({ method: compileOne(p), terminal: p.terminal === true }));
    cache.set(policies, c);
  }
  return c;
}

/** What the hash may depend on. */
export interface HashInput {
  readonly headers: RequestHeaders;
  /** The downstream remote address (`ip:port` or `[ip]:port`). */
  readonly remoteAddress: string | undefined;
}

/**
 * The request's hash under `policies`, or undefined when none produced one (the balancer then
 * picks at random). `addCookie` is told of every cookie to generate (for Set-Cookie).
 */
export function generateHash(
  policies: readonly HashPolicy[] | undefined,
  input: HashInput,
  addCookie: (cookie: HashCookie) => void,
): bigint | undefined {
  if (!policies || policies.length === 0) return undefined;
  let hash: bigint | undefined;
  for (const p of compile(policies)) {
    const h = evaluate(p.method, input, addCookie);
    if (h !== undefined) {
      const old = hash === undefined ? 0n : ((hash << 1n) | (hash >> 63n)) & MASK64;
      hash = old ^ h;
    }
    if (p.terminal && hash !== undefined) break;
  }
  return hash;
}

function evaluate(
  m: Method,
  input: HashInput,
  addCookie: (cookie: HashCookie) => void,
): bigint | undefined {
  switch (m.kind) {
    case 'header': {
      let values = headerValues(input.headers, m.name);
      if (values.length === 0) return undefined;
      const rw = m.rewrite;
      if (rw) {
        values = values.map((v) => {
          rw.re.lastIndex = 0;
          return v.replace(rw.re, rw.substitution);
        });
      }
      // The same hash whatever the order of repeated values.
      values.sort();
      let h = 0n;
      for (const v of values) h = xxHash64(v, h);
      return h;
    }
    case 'cookie': {
      const value = cookieValue(input.headers.map, m.name);
      if (value !== undefined && value !== '') return xxHash64(value);
      if (m.ttlSeconds === undefined) return undefined;
      // Envoy derives the new cookie from the downstream address.
      const generated = xxHash64(input.remoteAddress ?? '')
        .toString(16)
        .padStart(16, '0');
      addCookie({
        name: m.name,
        value: generated,
        ttlSeconds: m.ttlSeconds,
        path: m.path,
        attributes: m.attributes,
      });
      return xxHash64(generated);
    }
    case 'source_ip': {
      const ip = addressIp(input.remoteAddress);
      return ip ? xxHash64(ip) : undefined;
    }
    case 'query_parameter': {
      const v = queryParameter(input.headers.path, m.name);
      return v === undefined ? undefined : xxHash64(v);
    }
    case 'none':
      return undefined;
  }
}

function headerValues(headers: RequestHeaders, name: string): string[] {
  if (name.startsWith(':') || name === 'host') {
    const v = headers.get(name);
    return v === undefined ? [] : [v];
  }
  const v = headers.map[name];
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : [...v];
}

/** The first value of cookie `name` in the request's Cookie headers (quotes removed). */
export function cookieValue(map: HeaderMap, name: string): string | undefined {
  const raw = map.cookie;
  if (raw === undefined) return undefined;
  for (const header of typeof raw === 'string' ? [raw] : raw) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() !== name) continue;
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

/** The first value of query parameter `name` in `path` (not decoded, as in Envoy). */
export function queryParameter(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const end = path.indexOf('#', q);
  const query = path.slice(q + 1, end < 0 ? undefined : end);
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === name) return eq < 0 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

/** The IP of `ip:port` / `[ip]:port` (or a bare IP). */
function addressIp(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (v6) return v6[1];
  const colon = address.lastIndexOf(':');
  if (colon > 0 && address.indexOf(':') === colon) return address.slice(0, colon);
  return address;
}

/** Envoy's makeSetCookieValue for a hash policy cookie (always HttpOnly). */
export function setCookieValue(c: HashCookie): string {
  let out = `${c.name}="${c.value}"`;
  if (c.ttlSeconds > 0) out += `; Max-Age=${c.ttlSeconds}`;
  if (c.path !== '') out += `; Path=${c.path}`;
  for (const a of c.attributes) out += a.value === '' ? `; ${a.name}` : `; ${a.name}=${a.value}`;
  return `${out}; HttpOnly`;
}

/** Adds the Set-Cookie headers of generated cookies to a response. */
export function appendSetCookies(headers: HeaderMap, cookies: readonly HashCookie[]): void {
  if (cookies.length === 0) return;
  const existing = headers['set-cookie'];
  const list = existing === undefined ? [] : typeof existing === 'string' ? [existing] : existing;
  headers['set-cookie'] = [...list, ...cookies.map(setCookieValue)];
}
