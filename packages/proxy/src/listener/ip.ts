// IP addresses and CIDR ranges as filter chain matching needs them (prefix_ranges,
// source_prefix_ranges): parsing to integers, longest-prefix containment, and Envoy's
// `ip:port` / `[v6]:port` formatting.
import { isIPv4 } from 'node:net';

/** An IP address as an integer: 32 bits for IPv4, 128 for IPv6. */
export interface IpValue {
  readonly v6: boolean;
  readonly value: bigint;
}

/** A CIDR range with its host bits cleared. */
export interface Cidr {
  readonly v6: boolean;
  readonly prefix: bigint;
  readonly len: number;
}

const MAPPED_PREFIX = '::ffff:';

/** Unwraps IPv4-mapped IPv6 (`::ffff:10.0.0.1` → `10.0.0.1`) and drops a zone id. */
export function normalizeIp(address: string): string {
  const pct = address.indexOf('%');
  const a = pct < 0 ? address : address.slice(0, pct);
  if (
    a.length > MAPPED_PREFIX.length &&
    a.slice(0, MAPPED_PREFIX.length).toLowerCase() === MAPPED_PREFIX
  ) {
    const rest = a.slice(MAPPED_PREFIX.length);
    if (isIPv4(rest)) return rest;
  }
  return a;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string | undefined): number[] | undefined => {
    if (h === undefined || h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? '';
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  let v = 0n;
  for (const g of all) v = (v << 16n) | BigInt(g);
  return v;
}

/** Parses an IPv4 or IPv6 address (IPv4-mapped IPv6 becomes IPv4); undefined if malformed. */
export function parseIp(address: string): IpValue | undefined {
  const a = normalizeIp(address);
  if (a.includes(':')) {
    const v = parseV6(a);
    return v === undefined ? undefined : { v6: true, value: v };
  }
  const v = parseV4(a);
  return v === undefined ? undefined : { v6: false, value: v };
}

/** A CIDR from Envoy's CidrRange fields; undefined when the address or length is invalid. */
export function parseCidr(addressPrefix: string, prefixLen: number): Cidr | undefined {
  const ip = parseIp(addressPrefix);
  if (!ip) return undefined;
  const bits = ip.v6 ? 128 : 32;
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > bits) return undefined;
  const hostBits = BigInt(bits - prefixLen);
  const prefix = (ip.value >> hostBits) << hostBits;
  return { v6: ip.v6, prefix, len: prefixLen };
}

/** Whether `ip` lies in `cidr` (families must agree). */
export function cidrContains(cidr: Cidr, ip: IpValue): boolean {
  if (cidr.v6 !== ip.v6) return false;
  const hostBits = BigInt((cidr.v6 ? 128 : 32) - cidr.len);
  return (ip.value >> hostBits) << hostBits === cidr.prefix;
}

/** A canonical text form of a CIDR (for overlap checks). */
export function cidrKey(cidr: Cidr): string {
  return `${cidr.v6 ? '6' : '4'}/${cidr.prefix.toString(16)}/${cidr.len}`;
}

/** Whether an address is loopback (127.0.0.0/8 or ::1). */
export function isLoopback(ip: IpValue): boolean {
  return ip.v6 ? ip.value === 1n : ip.value >> 24n === 127n;
}

/** The port of a Unix domain socket (pipe) address: its `address` is the path. */
export const PIPE_PORT = -1;

/** Envoy's text form of a socket address: `10.0.0.1:80`, `[::1]:80`; a pipe is its path. */
export function formatAddress(address: string, port: number): string {
  if (port === PIPE_PORT) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Envoy's stat-name form of a listener address: `0.0.0.0_15001`, `[__]_80` (`:` → `_`). */
export function statAddress(address: string, port: number): string {
  return formatAddress(address, port).replace(/:/g, '_');
}
