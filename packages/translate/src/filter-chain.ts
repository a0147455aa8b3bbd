// Filter chains before they become Envoy FilterChains (Istio listener.go filterChainOpts): match
// criteria (SNI, destination CIDRs, application and transport protocol), an optional TLS context
// and either network filters or an HTTP connection manager. Also the listener filters a set of
// chains needs (TLS inspector for SNI or ALPN, HTTP inspector for application protocols).
import { CONFIG_TYPE_URL, toAny } from '@trellis/envoy';
import type {
  DownstreamTlsContext,
  Filter,
  FilterChain,
  FilterChainMatch,
  ListenerFilter,
  Metadata,
} from '@trellis/envoy';
import { WELLKNOWN } from './listener-names.js';

/** A filter chain under construction. */
export interface FilterChainOpts {
  sniHosts?: readonly string[];
  destinationCidrs?: readonly string[];
  applicationProtocols?: readonly string[];
  transportProtocol?: string;
  destinationPort?: number;
  metadata?: Metadata;
  name?: string;
  tlsContext?: DownstreamTlsContext;
  /** The network filters (for an HTTP chain: those before the connection manager). */
  networkFilters: Filter[];
  /** The HTTP connection manager, for HTTP chains. */
  http?: Filter;
}

/** Istio isMatchAll: the chain matches every connection. */
export function isMatchAll(c: FilterChainOpts): boolean {
  return (
    ((c.sniHosts?.length ?? 0) === 0 || (c.sniHosts ?? []).includes('*')) &&
    (c.applicationProtocols?.length ?? 0) === 0 &&
    (c.transportProtocol ?? '') === '' &&
    (c.destinationCidrs?.length ?? 0) === 0 &&
    c.destinationPort === undefined
  );
}

/** `10.0.0.0/8` or a bare address (a /32 or /128). */
export function cidrRange(cidr: string): { addressPrefix: string; prefixLen: number } {
  const slash = cidr.indexOf('/');
  if (slash < 0) return { addressPrefix: cidr, prefixLen: cidr.includes(':') ? 128 : 32 };
  return { addressPrefix: cidr.slice(0, slash), prefixLen: Number(cidr.slice(slash + 1)) };
}

/** Istio toFilterChainMatch: undefined for a match-all chain. */
export function toFilterChainMatch(c: FilterChainOpts): FilterChainMatch | undefined {
  if (isMatchAll(c)) return undefined;
  const m: FilterChainMatch = {};
  if (c.destinationPort !== undefined) m.destinationPort = c.destinationPort;
  if ((c.applicationProtocols?.length ?? 0) > 0)
    m.applicationProtocols = [...(c.applicationProtocols ?? [])];
  if (c.transportProtocol) m.transportProtocol = c.transportProtocol;
  const sni = c.sniHosts ?? [];
  if (sni.length > 0 && !sni.includes('*')) m.serverNames = [...sni].sort();
  const ranges = [...(c.destinationCidrs ?? [])]
    .sort()
    .map(cidrRange)
    .filter((r) => r.addressPrefix !== '0.0.0.0' && r.addressPrefix !== '::');
  if (ranges.length > 0) m.prefixRanges = ranges;
  return m;
}

function setOf(list: readonly string[] | undefined, skip: (s: string) => boolean): string {
  return [...new Set((list ?? []).filter((s) => !skip(s)))].sort().join(',');
}

/** Istio conflictsWith: two chains would match the same connections. */
export function chainsConflict(a: FilterChainOpts, b: FilterChainOpts): boolean {
  if ((a.transportProtocol ?? '') !== (b.transportProtocol ?? '')) return false;
  if ((a.applicationProtocols ?? []).join(',') !== (b.applicationProtocols ?? []).join(','))
    return false;
  if (setOf(a.sniHosts, (s) => s === '*') !== setOf(b.sniHosts, (s) => s === '*')) return false;
  const cidrs = (l: readonly string[] | undefined): string =>
    setOf(
      (l ?? []).map((c) => {
        const r = cidrRange(c);
        return `${r.addressPrefix}/${r.prefixLen}`;
      }),
      (s) => s.startsWith('0.0.0.0/') || s === '*',
    );
  return cidrs(a.destinationCidrs) === cidrs(b.destinationCidrs);
}

/** The Envoy filter chain. */
export function buildFilterChain(c: FilterChainOpts, withMatch: boolean): FilterChain {
  const out: FilterChain = {};
  if (withMatch) {
    const m = toFilterChainMatch(c);
    if (m) out.filterChainMatch = m;
  }
  out.filters = c.http ? [...c.networkFilters, c.http] : [...c.networkFilters];
  if (c.tlsContext)
    out.transportSocket = {
      name: WELLKNOWN.tlsTransportSocket,
      typedConfig: toAny(CONFIG_TYPE_URL.DownstreamTlsContext, c.tlsContext),
    };
  if (c.name) out.name = c.name;
  if (c.metadata) out.metadata = c.metadata;
  return out;
}

/** The TLS inspector listener filter. */
export function tlsInspector(): ListenerFilter {
  return { name: WELLKNOWN.tlsInspector, typedConfig: toAny(CONFIG_TYPE_URL.TlsInspector, {}) };
}

/** The HTTP inspector listener filter. */
export function httpInspector(): ListenerFilter {
  return { name: WELLKNOWN.httpInspector, typedConfig: toAny(CONFIG_TYPE_URL.HttpInspector, {}) };
}

/** The original destination listener filter. */
export function originalDst(): ListenerFilter {
  return { name: WELLKNOWN.originalDst, typedConfig: toAny(CONFIG_TYPE_URL.OriginalDst, {}) };
}

/** Istio's inspector rule for outbound and gateway listeners. */
export function inspectorsFor(chains: readonly FilterChainOpts[]): { tls: boolean; http: boolean } {
  let tls = false;
  let http = false;
  for (const c of chains) {
    const alpn = (c.tlsContext?.commonTlsContext?.alpnProtocols?.length ?? 0) > 0;
    if ((c.sniHosts?.length ?? 0) > 0 || alpn) tls = true;
    if ((c.applicationProtocols?.length ?? 0) > 0) http = true;
  }
  return { tls, http };
}
