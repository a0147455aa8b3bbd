// Request and response header handling shared by the connection manager and the router:
// the request header map (pseudo-headers as fields, the rest as Node's header record),
// hop-by-hop removal, x-forwarded-for parsing, and Envoy's internal-address test.
import { isIP } from 'node:net';

/** Headers as Node gives them: lower-case names, repeated ones as arrays. */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** The value of a header with repeated values joined by `,` (Envoy's getAllOfHeaderAsString). */
export function headerValue(map: HeaderMap, name: string): string | undefined {
  const v = map[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

/** A request's headers: `:method`, `:path`, `:authority` and `:scheme` as fields, the rest in `map`. */
export class RequestHeaders {
  constructor(
    /** Regular headers (never pseudo-headers, never `host`). */
    readonly map: HeaderMap,
    public method: string,
    /** Origin-form path with query (empty for CONNECT). */
    public path: string,
    public authority: string,
    public scheme: string,
  ) {}

  /** A header (or pseudo-header) value, repeated values joined by `,`. */
  get(name: string): string | undefined {
    if (name.charCodeAt(0) === 58 /* : */) {
      switch (name) {
        case ':method':
          return this.method;
        case ':path':
          return this.path;
        case ':authority':
          return this.authority;
        case ':scheme':
          return this.scheme;
        default:
          return undefined;
      }
    }
    if (name === 'host') return this.authority;
    return headerValue(this.map, name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Sets a header; `:authority`/`host` and `:path` update the fields. */
  set(name: string, value: string): void {
    switch (name) {
      case ':authority':
      case 'host':
        this.authority = value;
        return;
      case ':path':
        this.path = value;
        return;
      case ':method':
        this.method = value;
        return;
      case ':scheme':
        this.scheme = value;
        return;
      default:
        this.map[name] = value;
    }
  }

  /** Adds another value of a header (`:`-headers and `host` are replaced instead). */
  append(name: string, value: string): void {
    if (name.charCodeAt(0) === 58 || name === 'host') {
      this.set(name, value);
      return;
    }
    const cur = this.map[name];
    this.map[name] =
      cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
  }

  /** Removes a header (pseudo-headers cannot be removed). */
  remove(name: string): void {
    if (name.charCodeAt(0) === 58 || name === 'host') return;
    delete this.map[name];
  }

  /** The path without the query string (and without a fragment). */
  pathOnly(): string {
    const q = this.path.indexOf('?');
    return q < 0 ? this.path : this.path.slice(0, q);
  }

  /** The query string without `?` ('' when none). */
  query(): string {
    const q = this.path.indexOf('?');
    return q < 0 ? '' : this.path.slice(q + 1);
  }
}

/**
 * Removes a header by setting it to undefined, which every reader and serializer skips: a
 * `delete` would turn the (per-request) header object into a slow dictionary, and `for...in`
 * over it would lose V8's enumeration cache. Used on the per-request path.
 */
export function dropHeader(map: HeaderMap, name: string): void {
  if (map[name] !== undefined) map[name] = undefined;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
];

/**
 * Removes hop-by-hop headers, and those the `connection` header names, from `map`. `te` is kept
 * only as `te: trailers` (gRPC needs it).
 */
export function removeHopByHop(map: HeaderMap): void {
  const conn = map.connection;
  // `keep-alive` and `close` (nearly every request and response) name no other header.
  if (conn !== undefined && conn !== 'keep-alive' && conn !== 'close') {
    for (const part of (typeof conn === 'string' ? conn : conn.join(',')).split(',')) {
      const name = part.trim().toLowerCase();
      if (name && name !== 'close' && name !== 'keep-alive' && !name.startsWith(':'))
        dropHeader(map, name);
    }
  }
  for (let i = 0; i < HOP_BY_HOP.length; i++) {
    dropHeader(map, HOP_BY_HOP[i] as string);
  }
  const te = map.te;
  if (te !== undefined) {
    const v = (typeof te === 'string' ? te : te.join(',')).toLowerCase();
    if (v.split(',').some((t) => t.trim() === 'trailers')) map.te = 'trailers';
    else map.te = undefined;
  }
}

/** Appends an address to x-forwarded-for. */
export function appendXff(map: HeaderMap, ip: string): void {
  const cur = headerValue(map, 'x-forwarded-for');
  map['x-forwarded-for'] = cur ? `${cur}, ${ip}` : ip;
}

/**
 * The client address Envoy derives from x-forwarded-for when it does not use the remote
 * address: the address `trustedHops` entries from the right end (the last one with 0).
 */
export function xffClientAddress(map: HeaderMap, trustedHops: number): string | undefined {
  const v = headerValue(map, 'x-forwarded-for');
  if (!v) return undefined;
  const parts = v.split(',');
  const i = parts.length - 1 - trustedHops;
  if (i < 0) return undefined;
  const ip = parts[i]?.trim() ?? '';
  return isIP(ip) ? ip : undefined;
}

/** Envoy's internal addresses: RFC 1918, loopback, IPv6 ULA and loopback. */
export function isInternalAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  if (v === 6) {
    const lower = ip.toLowerCase();
    if (lower === '::1') return true;
    if (lower.startsWith('::ffff:')) return isInternalAddress(lower.slice(7));
    return lower.startsWith('fc') || lower.startsWith('fd');
  }
  return false;
}

/** `ip:port`, bracketing IPv6. */
export function formatAddress(ip: string | undefined, port: number | undefined): string {
  if (ip === undefined) return '';
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `${host}:${port ?? 0}`;
}

/** The IP of an `ip:port` (or `[ip6]:port`) string. */
export function addressIp(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const i = address.lastIndexOf(':');
  return i < 0 ? address : address.slice(0, i);
}

/** Whether a request is gRPC (content-type application/grpc or application/grpc+...). */
export function isGrpcContentType(ct: string | undefined): boolean {
  return (
    ct !== undefined &&
    (ct === 'application/grpc' ||
      ct.startsWith('application/grpc+') ||
      ct.startsWith('application/grpc;'))
  );
}
