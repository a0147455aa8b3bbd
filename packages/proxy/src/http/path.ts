// Path handling: the connection manager's normalize_path (RFC 3986 dot-segment removal,
// backslashes as slashes, unreserved percent-escapes decoded, as Envoy's canonicalization does)
// and merge_slashes, the router's prefix_rewrite / regex_rewrite, and redirect URLs built the
// way Envoy's RouteEntryImplBase::newUri builds them.
import type { RequestHeaders } from './headers.js';
import type { CompiledRedirect, CompiledRegexRewrite, CompiledRoute } from './route-match.js';

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Splits `path?query` (a `#fragment` is dropped: Envoy strips it). */
function splitPath(full: string): [string, string] {
  const hash = full.indexOf('#');
  const noFrag = hash < 0 ? full : full.slice(0, hash);
  const q = noFrag.indexOf('?');
  return q < 0 ? [noFrag, ''] : [noFrag.slice(0, q), noFrag.slice(q)];
}

/**
 * Normalizes the path part of `full` (the query is kept as is). Returns undefined for a path
 * that cannot be normalized (does not start with `/`).
 */
export function normalizePath(full: string, mergeSlashes: boolean): string | undefined {
  const [rawPath, query] = splitPath(full);
  if (!rawPath.startsWith('/') && !rawPath.startsWith('\\')) return undefined;
  let path = rawPath.includes('\\') ? rawPath.replaceAll('\\', '/') : rawPath;
  if (path.includes('%')) {
    path = path.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) => {
      const c = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED.test(c) ? c : m.toUpperCase();
    });
  }
  if (mergeSlashes && path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  if (path.includes('/.')) path = removeDotSegments(path);
  return path + query;
}

/** RFC 3986 §5.2.4 for an absolute path. */
export function removeDotSegments(path: string): string {
  const segs = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i] as string;
    const last = i === segs.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return '/' + out.join('/');
}

/** Applies a compiled RE2 GlobalReplace to `s`. */
export function regexReplace(s: string, r: CompiledRegexRewrite): string {
  r.re.lastIndex = 0;
  return s.replace(r.re, r.substitution);
}

/**
 * The path after the route's prefix_rewrite or regex_rewrite (undefined: no rewrite).
 * `path` is the full :path with query.
 */
export function rewrittenPath(
  path: string,
  route: CompiledRoute,
  prefixRewrite: string | undefined,
  regexRewrite: CompiledRegexRewrite | undefined,
): string | undefined {
  if (prefixRewrite !== undefined && route.matchedPrefix !== undefined) {
    return prefixRewrite + path.slice(route.matchedPrefix.length);
  }
  if (regexRewrite) {
    const q = path.indexOf('?');
    const p = q < 0 ? path : path.slice(0, q);
    return regexReplace(p, regexRewrite) + (q < 0 ? '' : path.slice(q));
  }
  return undefined;
}

/** The Location of a redirect (Envoy's newUri). */
export function redirectLocation(
  headers: RequestHeaders,
  forwardedProto: string,
  route: CompiledRoute,
  redirect: CompiledRedirect,
): string {
  const cfg = redirect.config;
  const scheme = cfg.schemeRedirect
    ? cfg.schemeRedirect
    : cfg.httpsRedirect
      ? 'https'
      : forwardedProto;
  const port = cfg.portRedirect ? `:${cfg.portRedirect}` : '';
  let host: string;
  if (cfg.hostRedirect) host = cfg.hostRedirect;
  else {
    host = headers.authority;
    let end: number;
    if (host.startsWith('[')) {
      end = host.lastIndexOf(']:');
      if (end >= 0) end += 1;
    } else end = host.lastIndexOf(':');
    if (end >= 0) {
      const reqPort = host.slice(end);
      let remove = port !== '';
      if (scheme !== forwardedProto) {
        remove ||= forwardedProto === 'https' && reqPort === ':443';
        remove ||= forwardedProto === 'http' && reqPort === ':80';
      }
      if (remove) host = host.slice(0, end);
    }
  }
  const original = headers.path;
  const q = original.indexOf('?');
  const originalQuery = q < 0 ? '' : original.slice(q);
  let path: string;
  if (cfg.pathRedirect !== undefined) {
    path = cfg.pathRedirect;
    if (!path.includes('?') && !cfg.stripQuery) path += originalQuery;
  } else {
    path = rewrittenPath(original, route, cfg.prefixRewrite, redirect.regexRewrite) ?? original;
    if (cfg.stripQuery) {
      const i = path.indexOf('?');
      if (i >= 0) path = path.slice(0, i);
    }
  }
  return `${scheme}://${host}${port}${path}`;
}
