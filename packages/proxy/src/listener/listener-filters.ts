// Listener filters (Envoy's `envoy.filters.listener.*`), compiled once per listener version:
// tls_inspector, http_inspector and original_dst, each with its `filter_disabled` predicate,
// plus the listener's listener_filters_timeout / continue_on_listener_filters_timeout.
//
// A filter inspects the bytes peeked so far and fills in the connection's attributes (SNI,
// ALPN, transport protocol, original destination); it answers `continue` when it needs more
// bytes. Running them over a socket (and handing off to another listener) is the listener
// manager's job.
import type { Listener, ListenerFilterChainMatchPredicate } from '@trellis/envoy';
import { CONFIG_TYPE_URL } from '@trellis/envoy';
import type { StatsScope } from '../observability/stats-api.js';
import { durationMs, isValidDuration } from '../duration.js';
import { detectHttp } from './http-inspector.js';
import { MAX_CLIENT_HELLO_SIZE, parseClientHello } from './tls-inspector.js';
import type { SocketAddressPort } from './types.js';

/** Envoy's default listener_filters_timeout. */
export const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000;

/** What the listener filters learn about one connection. */
export interface InspectionState {
  /** Where the connection was sent: the accepting socket's address until original_dst restores it. */
  local: SocketAddressPort;
  /** Set by original_dst when the original destination differs from the accepting address. */
  restored: boolean;
  /** `tls` once tls_inspector found a ClientHello; `raw_buffer` is the default applied at the end. */
  transportProtocol: string | undefined;
  serverName: string | undefined;
  applicationProtocols: readonly string[];
}

export type InspectResult = 'continue' | 'done' | 'reject';

/** One configured listener filter. */
export interface CompiledListenerFilter {
  /** The filter's name in Envoy (`envoy.filters.listener.tls_inspector`...). */
  readonly name: string;
  /** True when skipped for this destination port (`filter_disabled`). */
  readonly disabled: ((destinationPort: number) => boolean) | undefined;
  /**
   * Looks at the bytes peeked so far. `original` is the connection's original destination
   * (only original_dst uses it).
   */
  inspect(
    data: Buffer,
    state: InspectionState,
    original: () => SocketAddressPort | undefined,
  ): InspectResult;
}

/** A listener's listener filters, ready to run. */
export interface CompiledListenerFilters {
  readonly filters: readonly CompiledListenerFilter[];
  /** undefined: no timeout (`0s`). */
  readonly timeoutMs: number | undefined;
  readonly continueOnTimeout: boolean;
}

const TLS_INSPECTOR = 'envoy.filters.listener.tls_inspector';
const HTTP_INSPECTOR = 'envoy.filters.listener.http_inspector';
const ORIGINAL_DST = 'envoy.filters.listener.original_dst';

const BY_TYPE: Readonly<Record<string, string>> = {
  [CONFIG_TYPE_URL.TlsInspector]: TLS_INSPECTOR,
  [CONFIG_TYPE_URL.HttpInspector]: HTTP_INSPECTOR,
  [CONFIG_TYPE_URL.OriginalDst]: ORIGINAL_DST,
};
const BY_NAME: Readonly<Record<string, string>> = {
  [TLS_INSPECTOR]: TLS_INSPECTOR,
  'envoy.listener.tls_inspector': TLS_INSPECTOR,
  [HTTP_INSPECTOR]: HTTP_INSPECTOR,
  'envoy.listener.http_inspector': HTTP_INSPECTOR,
  [ORIGINAL_DST]: ORIGINAL_DST,
  'envoy.listener.original_dst': ORIGINAL_DST,
};

function tlsInspector(
  disabled: CompiledListenerFilter['disabled'],
  maxSize: number,
  stats: StatsScope,
): CompiledListenerFilter {
  const s = stats.scope('tls_inspector');
  return {
    name: TLS_INSPECTOR,
    disabled,
    inspect(data, state) {
      const r = parseClientHello(data, maxSize);
      switch (r.kind) {
        case 'need-more':
          return 'continue';
        case 'too-large':
          s.counter('client_hello_too_large').inc();
          return 'reject';
        case 'not-tls':
          s.counter('tls_not_found').inc();
          return 'done';
        case 'tls':
          s.counter('tls_found').inc();
          s.counter(r.serverName ? 'sni_found' : 'sni_not_found').inc();
          s.counter(r.alpn.length > 0 ? 'alpn_found' : 'alpn_not_found').inc();
          state.transportProtocol = 'tls';
          if (r.serverName) state.serverName = r.serverName;
          if (r.alpn.length > 0) state.applicationProtocols = r.alpn;
          return 'done';
      }
    },
  };
}

function httpInspector(
  disabled: CompiledListenerFilter['disabled'],
  stats: StatsScope,
): CompiledListenerFilter {
  const s = stats.scope('http_inspector');
  return {
    name: HTTP_INSPECTOR,
    disabled,
    inspect(data, state) {
      // Only plaintext: a TLS connection's ALPN comes from the ClientHello.
      if (state.transportProtocol !== undefined && state.transportProtocol !== 'raw_buffer')
        return 'done';
      const r = detectHttp(data);
      switch (r.kind) {
        case 'need-more':
          return 'continue';
        case 'not-http':
          s.counter('http_not_found').inc();
          return 'done';
        case 'http':
          s.counter(
            r.protocol === 'h2c'
              ? 'http2_found'
              : r.protocol === 'http/1.1'
                ? 'http11_found'
                : 'http10_found',
          ).inc();
          if (state.applicationProtocols.length === 0) state.applicationProtocols = [r.protocol];
          return 'done';
      }
    },
  };
}

function originalDst(disabled: CompiledListenerFilter['disabled']): CompiledListenerFilter {
  return {
    name: ORIGINAL_DST,
    disabled,
    inspect(_data, state, original) {
      const dst = original();
      if (dst && (dst.address !== state.local.address || dst.port !== state.local.port)) {
        state.local = dst;
        state.restored = true;
      }
      return 'done';
    },
  };
}

function compilePredicate(
  p: ListenerFilterChainMatchPredicate,
  path: string,
  problems: string[],
): (port: number) => boolean {
  const keys = Object.keys(p).filter((k) => (p as Record<string, unknown>)[k] !== undefined);
  if (keys.length !== 1) {
    problems.push(
      `${path}: exactly one rule must be set, got ${keys.length ? keys.join(', ') : 'none'}`,
    );
    return () => false;
  }
  if (p.anyMatch !== undefined) {
    const v = p.anyMatch;
    return () => v;
  }
  if (p.destinationPortRange) {
    const start = p.destinationPortRange.start ?? 0;
    const end = p.destinationPortRange.end ?? 0;
    return (port) => port >= start && port < end;
  }
  if (p.notMatch) {
    const inner = compilePredicate(p.notMatch, `${path}.notMatch`, problems);
    return (port) => !inner(port);
  }
  if (p.orMatch || p.andMatch) {
    const isOr = p.orMatch !== undefined;
    const rules = (p.orMatch ?? p.andMatch)?.rules ?? [];
    const sub = `${path}.${isOr ? 'orMatch' : 'andMatch'}.rules`;
    if (rules.length < 2) problems.push(`${sub}: at least 2 rules are required`);
    const fns = rules.map((r, i) => compilePredicate(r, `${sub}[${i}]`, problems));
    return isOr ? (port) => fns.some((f) => f(port)) : (port) => fns.every((f) => f(port));
  }
  problems.push(`${path}: unsupported predicate '${keys[0] ?? ''}'`);
  return () => false;
}

const TLS_INSPECTOR_FIELDS = new Set(['@type', 'initialReadBufferSize', 'maxClientHelloSize']);

/**
 * Compiles a listener's listener filters. `problems` collects every unsupported or invalid
 * setting with its field path; the result is only meaningful when it stays empty.
 */
export function compileListenerFilters(
  listener: Listener,
  stats: StatsScope,
  problems: string[],
): CompiledListenerFilters {
  const filters: CompiledListenerFilter[] = [];
  let sawOriginalDst = false;
  (listener.listenerFilters ?? []).forEach((lf, i) => {
    const path = `listenerFilters[${i}]`;
    const typeUrl = lf.typedConfig?.['@type'];
    const kind = typeUrl !== undefined ? BY_TYPE[typeUrl] : BY_NAME[lf.name ?? ''];
    if (kind === undefined) {
      problems.push(
        `${path}: listener filter '${lf.name ?? ''}'${typeUrl ? ` (${typeUrl})` : ''} is not supported`,
      );
      return;
    }
    const disabled = lf.filterDisabled
      ? compilePredicate(lf.filterDisabled, `${path}.filterDisabled`, problems)
      : undefined;
    const cfg = (lf.typedConfig ?? {}) as Record<string, unknown>;
    if (kind === TLS_INSPECTOR) {
      for (const k of Object.keys(cfg)) {
        if (!TLS_INSPECTOR_FIELDS.has(k) && !(k.startsWith('enableJa') && cfg[k] === false))
          problems.push(`${path}.typedConfig.${k}: not supported by tls_inspector`);
      }
      const max = cfg['maxClientHelloSize'];
      filters.push(
        tlsInspector(
          disabled,
          typeof max === 'number' && max > 0 ? max : MAX_CLIENT_HELLO_SIZE,
          stats,
        ),
      );
    } else {
      for (const k of Object.keys(cfg)) {
        if (k !== '@type') problems.push(`${path}.typedConfig.${k}: not supported by ${kind}`);
      }
      if (kind === HTTP_INSPECTOR) filters.push(httpInspector(disabled, stats));
      else {
        sawOriginalDst = true;
        filters.push(originalDst(disabled));
      }
    }
  });
  // use_original_dst implies the original_dst listener filter (Envoy adds it itself).
  if (listener.useOriginalDst && !sawOriginalDst) filters.unshift(originalDst(undefined));
  let timeoutMs: number | undefined = DEFAULT_LISTENER_FILTERS_TIMEOUT_MS;
  if (listener.listenerFiltersTimeout !== undefined) {
    if (!isValidDuration(listener.listenerFiltersTimeout)) {
      problems.push(
        `listenerFiltersTimeout: malformed duration '${listener.listenerFiltersTimeout}'`,
      );
    }
    const ms = durationMs(listener.listenerFiltersTimeout) ?? 0;
    timeoutMs = ms > 0 ? ms : undefined;
  }
  return {
    filters,
    timeoutMs,
    continueOnTimeout: listener.continueOnListenerFiltersTimeout === true,
  };
}
