// Envoy's filter chain selection (FilterChainMatch): a pure function from a listener's filter
// chains and one connection's attributes to the chain that takes it.
//
// The chains are pruned criterion by criterion, in Envoy's order: destination port,
// destination IP (prefix_ranges), server name (SNI), transport protocol, application
// protocols (ALPN), directly connected source IP, source type, source IP, source port. At each
// step only the chains that match *most specifically* go on (an exact SNI beats `*.example.com`,
// which beats `*.com`, which beats no server_names; a /32 beats a /24 beats none); a chain
// that is pruned is never reconsidered, even if the more specific survivors fail a later
// criterion. When nothing survives, the listener's default_filter_chain is used; when there
// is none, the connection is closed (listener.<addr>.no_filter_chain_match).
//
// `checkFilterChainMatches` rejects what Envoy rejects: invalid ports and CIDRs, partial
// wildcards in server_names, and two chains whose criteria overlap (so that selection could
// not be unambiguous).
import type { ConnectionSourceType, FilterChain, FilterChainMatch, Listener } from '@trellis/envoy';
import {
  cidrContains,
  cidrKey,
  isLoopback,
  parseCidr,
  parseIp,
  type Cidr,
  type IpValue,
} from './ip.js';

/** What filter chain matching looks at for one connection. */
export interface ConnectionAttributes {
  /** Local (original destination, once restored) address and port. */
  readonly destinationAddress: string;
  readonly destinationPort: number;
  readonly sourceAddress: string;
  readonly sourcePort: number;
  /** The directly connected peer; differs from the source only behind the PROXY protocol. */
  readonly directSourceAddress?: string;
  /** SNI (tls_inspector); absent or empty when the client sent none. */
  readonly serverName?: string | undefined;
  /** `raw_buffer` (the default) or `tls`. */
  readonly transportProtocol: string;
  /** ALPN offered by the client, or the protocol http_inspector detected, in order. */
  readonly applicationProtocols: readonly string[];
}

interface CompiledMatch {
  readonly chain: FilterChain;
  readonly port: number;
  readonly prefixes: readonly Cidr[] | undefined;
  readonly exactNames: ReadonlySet<string> | undefined;
  /** Wildcard server names as suffixes with their dot: `*.example.com` → `.example.com`. */
  readonly wildcardSuffixes: readonly string[];
  readonly transportProtocol: string;
  readonly alpn: ReadonlySet<string> | undefined;
  readonly directSources: readonly Cidr[] | undefined;
  readonly sourceType: ConnectionSourceType;
  readonly sources: readonly Cidr[] | undefined;
  readonly sourcePorts: ReadonlySet<number> | undefined;
}

interface MatchContext {
  readonly attrs: ConnectionAttributes;
  readonly dst: IpValue | undefined;
  readonly src: IpValue | undefined;
  readonly directSrc: IpValue | undefined;
  readonly sni: string;
  local: boolean | undefined;
}

/** Score of a chain on one criterion: < 0 no match, higher is more specific. */
type Step = (m: CompiledMatch, ctx: MatchContext) => number;

const EXACT_NAME_SCORE = 1 << 30;

function prefixScore(ranges: readonly Cidr[] | undefined, ip: IpValue | undefined): number {
  // No ranges is Envoy's 0.0.0.0/0 and ::/0: matches anything, least specifically.
  if (ranges === undefined) return 0;
  if (ip === undefined) return -1;
  let best = -1;
  for (const r of ranges) if (r.len > best && cidrContains(r, ip)) best = r.len;
  return best;
}

function isLocalConnection(ctx: MatchContext): boolean {
  if (ctx.local === undefined) {
    const { src, dst } = ctx;
    ctx.local =
      src !== undefined &&
      (isLoopback(src) || (dst !== undefined && dst.v6 === src.v6 && dst.value === src.value));
  }
  return ctx.local;
}

const STEPS: readonly Step[] = [
  // 1. destination_port
  (m, ctx) => (m.port === 0 ? 0 : m.port === ctx.attrs.destinationPort ? 1 : -1),
  // 2. prefix_ranges (destination IP)
  (m, ctx) => prefixScore(m.prefixes, ctx.dst),
  // 3. server_names
  (m, ctx) => {
    if (m.exactNames === undefined && m.wildcardSuffixes.length === 0) return 0;
    const sni = ctx.sni;
    if (sni === '') return -1;
    if (m.exactNames?.has(sni)) return EXACT_NAME_SCORE;
    let best = -1;
    for (const s of m.wildcardSuffixes)
      if (s.length > best && sni.length > s.length && sni.endsWith(s)) best = s.length;
    return best;
  },
  // 4. transport_protocol
  (m, ctx) =>
    m.transportProtocol === '' ? 0 : m.transportProtocol === ctx.attrs.transportProtocol ? 1 : -1,
  // 5. application_protocols: the first of the client's protocols that some chain names wins.
  (m, ctx) => {
    if (m.alpn === undefined) return 0;
    const offered = ctx.attrs.applicationProtocols;
    for (let i = 0; i < offered.length; i++) {
      if (m.alpn.has(offered[i] ?? '')) return offered.length - i;
    }
    return -1;
  },
  // 6. direct_source_prefix_ranges
  (m, ctx) => prefixScore(m.directSources, ctx.directSrc),
  // 7. source_type
  (m, ctx) => {
    switch (m.sourceType) {
      case 'ANY':
        return 0;
      case 'SAME_IP_OR_LOOPBACK':
        return isLocalConnection(ctx) ? 1 : -1;
      case 'EXTERNAL':
        return isLocalConnection(ctx) ? -1 : 1;
    }
  },
  // 8. source_prefix_ranges
  (m, ctx) => prefixScore(m.sources, ctx.src),
  // 9. source_ports
  (m, ctx) => (m.sourcePorts === undefined ? 0 : m.sourcePorts.has(ctx.attrs.sourcePort) ? 1 : -1),
];

function compileCidrs(ranges: FilterChainMatch['prefixRanges']): Cidr[] | undefined {
  if (!ranges || ranges.length === 0) return undefined;
  const out: Cidr[] = [];
  for (const r of ranges) {
    const c = parseCidr(r.addressPrefix ?? '', r.prefixLen ?? 0);
    if (c) out.push(c);
  }
  return out;
}

function compileMatch(chain: FilterChain): CompiledMatch {
  const fcm = chain.filterChainMatch ?? {};
  const names = (fcm.serverNames ?? []).map((n) => n.toLowerCase());
  const exact = names.filter((n) => !n.startsWith('*.'));
  const alpn = fcm.applicationProtocols ?? [];
  const sourcePorts = fcm.sourcePorts ?? [];
  return {
    chain,
    port: fcm.destinationPort ?? 0,
    prefixes: compileCidrs(fcm.prefixRanges),
    exactNames: exact.length > 0 ? new Set(exact) : undefined,
    wildcardSuffixes: names.filter((n) => n.startsWith('*.')).map((n) => n.slice(1)),
    transportProtocol: fcm.transportProtocol ?? '',
    alpn: alpn.length > 0 ? new Set(alpn) : undefined,
    directSources: compileCidrs(fcm.directSourcePrefixRanges),
    sourceType: fcm.sourceType ?? 'ANY',
    sources: compileCidrs(fcm.sourcePrefixRanges),
    sourcePorts: sourcePorts.length > 0 ? new Set(sourcePorts) : undefined,
  };
}

/** A listener's filter chains compiled once for matching many connections. */
export class FilterChainMatcher {
  readonly #matches: readonly CompiledMatch[];
  readonly #default: FilterChain | undefined;

  constructor(filterChains: readonly FilterChain[], defaultFilterChain?: FilterChain) {
    this.#matches = filterChains.map(compileMatch);
    this.#default = defaultFilterChain;
  }

  /** The chain for a connection: the most specific match, else the default chain, else undefined. */
  select(attrs: ConnectionAttributes): FilterChain | undefined {
    const ctx: MatchContext = {
      attrs,
      dst: parseIp(attrs.destinationAddress),
      src: parseIp(attrs.sourceAddress),
      directSrc: parseIp(attrs.directSourceAddress ?? attrs.sourceAddress),
      sni: (attrs.serverName ?? '').toLowerCase(),
      local: undefined,
    };
    let candidates: readonly CompiledMatch[] = this.#matches;
    for (const step of STEPS) {
      let best = -1;
      let kept: CompiledMatch[] = [];
      for (const m of candidates) {
        const s = step(m, ctx);
        if (s < 0) continue;
        if (s > best) {
          best = s;
          kept = [m];
        } else if (s === best) {
          kept.push(m);
        }
      }
      if (kept.length === 0) return this.#default;
      candidates = kept;
    }
    // checkFilterChainMatches guarantees at most one survivor for a valid listener.
    return candidates[0]?.chain ?? this.#default;
  }
}

const cache = new WeakMap<Listener, FilterChainMatcher>();

/** Envoy's filter chain selection for one connection of `listener` (compiled once per listener object). */
export function selectFilterChain(
  listener: Listener,
  attrs: ConnectionAttributes,
): FilterChain | undefined {
  let m = cache.get(listener);
  if (!m) {
    m = new FilterChainMatcher(listener.filterChains ?? [], listener.defaultFilterChain);
    cache.set(listener, m);
  }
  return m.select(attrs);
}

const SOURCE_TYPES: readonly ConnectionSourceType[] = ['ANY', 'SAME_IP_OR_LOOPBACK', 'EXTERNAL'];
/** Beyond this many criteria combinations per chain the overlap check is skipped. */
const MAX_COMBINATIONS = 100_000;

function validPort(p: number, min: number): boolean {
  return Number.isInteger(p) && p >= min && p <= 65535;
}

function cidrKeys(
  ranges: FilterChainMatch['prefixRanges'],
  path: string,
  problems: string[],
): string[] {
  if (!ranges || ranges.length === 0) return ['4/0/0', '6/0/0'];
  const keys = new Set<string>();
  ranges.forEach((r, i) => {
    const c = parseCidr(r.addressPrefix ?? '', r.prefixLen ?? 0);
    if (!c) {
      problems.push(
        `${path}[${i}]: malformed CIDR range '${r.addressPrefix ?? ''}/${r.prefixLen ?? 0}'`,
      );
    } else {
      keys.add(cidrKey(c));
    }
  });
  return [...keys];
}

/**
 * Every problem with a listener's filter chain matches, each prefixed with its field path
 * (`filterChains[2].filterChainMatch.serverNames[0]: ...`). Empty when the listener is valid.
 */
export function checkFilterChainMatches(listener: Listener): string[] {
  const problems: string[] = [];
  const chains = listener.filterChains ?? [];
  const seen = new Map<string, number>();
  const whole = new Map<string, number>();
  chains.forEach((chain, ci) => {
    const path = `filterChains[${ci}].filterChainMatch`;
    const fcm = chain.filterChainMatch ?? {};
    const before = problems.length;
    if (fcm.destinationPort !== undefined && !validPort(fcm.destinationPort, 1))
      problems.push(`${path}.destinationPort: must be in [1, 65535], got ${fcm.destinationPort}`);
    if (fcm.addressSuffix !== undefined || fcm.suffixLen !== undefined)
      problems.push(
        `${path}: addressSuffix/suffixLen are not supported (not implemented by Envoy either)`,
      );
    if (fcm.sourceType !== undefined && !SOURCE_TYPES.includes(fcm.sourceType))
      problems.push(`${path}.sourceType: unknown source type '${String(fcm.sourceType)}'`);
    (fcm.sourcePorts ?? []).forEach((p, i) => {
      if (!validPort(p, 1))
        problems.push(`${path}.sourcePorts[${i}]: must be in [1, 65535], got ${p}`);
    });
    (fcm.serverNames ?? []).forEach((n, i) => {
      if (n === '') problems.push(`${path}.serverNames[${i}]: must not be empty`);
      else if (n.includes('*') && !(n.startsWith('*.') && !n.slice(1).includes('*')))
        problems.push(
          `${path}.serverNames[${i}]: partial wildcards are not supported in "server_names" ('${n}')`,
        );
    });
    const dims: string[][] = [
      [String(fcm.destinationPort ?? 0)],
      cidrKeys(fcm.prefixRanges, `${path}.prefixRanges`, problems),
      fcm.serverNames?.length ? [...new Set(fcm.serverNames.map((n) => n.toLowerCase()))] : [''],
      [fcm.transportProtocol ?? ''],
      fcm.applicationProtocols?.length ? [...new Set(fcm.applicationProtocols)] : [''],
      cidrKeys(fcm.directSourcePrefixRanges, `${path}.directSourcePrefixRanges`, problems),
      [fcm.sourceType ?? 'ANY'],
      cidrKeys(fcm.sourcePrefixRanges, `${path}.sourcePrefixRanges`, problems),
      fcm.sourcePorts?.length ? [...new Set(fcm.sourcePorts.map(String))] : ['0'],
    ];
    if (problems.length > before) return;
    const wholeKey = JSON.stringify(dims.map((d) => [...d].sort()));
    const same = whole.get(wholeKey);
    if (same !== undefined) {
      problems.push(
        `filterChains[${ci}]: multiple filter chains with the same matching rules are defined (same as filterChains[${same}])`,
      );
      return;
    }
    whole.set(wholeKey, ci);
    const combos = dims.reduce((n, d) => n * d.length, 1);
    if (combos > MAX_COMBINATIONS) return;
    let reported = false;
    const walk = (depth: number, key: string): void => {
      if (reported) return;
      if (depth === dims.length) {
        const other = seen.get(key);
        if (other !== undefined && other !== ci) {
          problems.push(
            `filterChains[${ci}]: multiple filter chains with overlapping matching rules are defined (overlaps filterChains[${other}])`,
          );
          reported = true;
        } else {
          seen.set(key, ci);
        }
        return;
      }
      for (const v of dims[depth] ?? []) walk(depth + 1, `${key}\u0000${v}`);
    };
    walk(0, '');
  });
  return problems;
}
