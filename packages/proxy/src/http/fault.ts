// Envoy's fault injection filter (`envoy.filters.http.fault`): the HTTPFault of the filter in the
// connection manager's chain, replaced per route by typed_per_filter_config under the filter's
// name (virtual host, then route: the most specific wins). A fault applies when its `headers`
// match and `upstream_cluster` (if set) is the route's cluster, and while fewer than
// max_active_faults are active. The delay (fixed_delay, percentage) comes first; when it ends
// (or when there is none) the abort (http_status or grpc_status, percentage) is decided. Flags
// DI / FI; stats http.<stat_prefix>.fault.{delays_injected,aborts_injected,active_faults,
// faults_overflow} (also under fault.<x-envoy-downstream-service-cluster>. for the first two).
// Not implemented: header_delay / header_abort (x-envoy-fault-* headers), response rate limits,
// downstream_nodes (the validator refuses them).
import type { FractionalPercent, HTTPFault, HttpFilter } from '@trellis/envoy';
import { durationMs } from '../duration.js';
import type { Counter, Gauge, StatsScope } from '../observability/stats-api.js';
import type { HeaderMap } from './headers.js';
import { compileHeaderMapMatcher, type HeaderMapPredicate } from './retry-policy.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const FAULT_FILTER_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
/** Envoy's response code details of an injected abort. */
export const FAULT_ABORT_DETAILS = 'fault_filter_abort';
export const FAULT_ABORT_BODY = 'fault filter abort';

/** A FractionalPercent as a probability in [0, 1]. */
export function fractionOf(p: FractionalPercent | undefined): number {
  if (!p) return 0;
  const den = p.denominator === 'MILLION' ? 1e6 : p.denominator === 'TEN_THOUSAND' ? 1e4 : 100;
  return Math.min(1, Math.max(0, (p.numerator ?? 0) / den));
}

/** An HTTPFault compiled once per configuration object. */
export interface CompiledFault {
  readonly delayMs: number | undefined;
  readonly delayFraction: number;
  readonly abortHttpStatus: number | undefined;
  readonly abortGrpcStatus: number | undefined;
  readonly abortFraction: number;
  readonly headers: readonly HeaderMapPredicate[];
  readonly upstreamCluster: string | undefined;
  /** undefined = unlimited. */
  readonly maxActiveFaults: number | undefined;
}

const cache = new WeakMap<HTTPFault, CompiledFault>();

export function compileFault(f: HTTPFault): CompiledFault {
  let c = cache.get(f);
  if (c) return c;
  const abort = f.abort;
  c = {
    delayMs: f.delay ? (durationMs(f.delay.fixedDelay) ?? undefined) : undefined,
    delayFraction: fractionOf(f.delay?.percentage),
    abortHttpStatus:
      abort?.httpStatus !== undefined && abort.httpStatus >= 200 && abort.httpStatus < 600
        ? abort.httpStatus
        : undefined,
    abortGrpcStatus: abort?.grpcStatus,
    abortFraction: fractionOf(abort?.percentage),
    headers: (f.headers ?? []).map(compileHeaderMapMatcher),
    upstreamCluster: f.upstreamCluster || undefined,
    maxActiveFaults: f.maxActiveFaults,
  };
  cache.set(f, c);
  return c;
}

/** The fault filter of one connection manager (its base config and stats). */
export class FaultFilterConfig {
  readonly delays_injected: Counter;
  readonly aborts_injected: Counter;
  readonly active_faults: Gauge;
  readonly faults_overflow: Counter;
  /** Faults (delays in progress) active now across the connection manager. */
  active = 0;

  constructor(
    /** The filter's name in the chain: the key of its typed_per_filter_config. */
    readonly name: string,
    readonly base: HTTPFault,
    private readonly scope: StatsScope,
  ) {
    this.delays_injected = scope.counter('delays_injected');
    this.aborts_injected = scope.counter('aborts_injected');
    this.active_faults = scope.gauge('active_faults');
    this.faults_overflow = scope.counter('faults_overflow');
  }

  /** A stream with an active fault ended. */
  release(): void {
    this.active = Math.max(0, this.active - 1);
    this.active_faults.dec();
  }

  /** Stats of one downstream cluster (x-envoy-downstream-service-cluster). */
  downstream(cluster: string, stat: 'delays_injected' | 'aborts_injected'): Counter {
    return this.scope.scope(cluster).counter(stat);
  }

  /** The fault in force for a route: per-route config (most specific first), else the base. */
  effective(perFilter: readonly (Readonly<Record<string, unknown>> | undefined)[]): HTTPFault {
    for (const m of perFilter) {
      const v = m?.[this.name] as HTTPFault | undefined;
      if (v) return v;
    }
    return this.base;
  }
}

/** What the filter decided for a request. */
export interface FaultDecision {
  /** Delay to inject first (ms), if any. */
  readonly delayMs: number | undefined;
  /** Abort to answer with (after the delay), if any: HTTP status and gRPC status. */
  readonly abort: { readonly http: number; readonly grpc: number | undefined } | undefined;
}

/**
 * Envoy's decodeHeaders of the fault filter with its percentage draws. Undefined when no fault
 * applies (no draw hit, headers, upstream_cluster, or max_active_faults reached: faults_overflow).
 * A decision counts as an active fault until the caller calls `filter.release()`.
 */
export function decideFault(
  filter: FaultFilterConfig,
  f: HTTPFault,
  requestHeaders: HeaderMap,
  routeCluster: string | undefined,
  random: () => number,
): FaultDecision | undefined {
  const c = compileFault(f);
  const hasAbort = c.abortHttpStatus !== undefined || c.abortGrpcStatus !== undefined;
  if ((c.delayMs === undefined || c.delayMs <= 0) && !hasAbort) return undefined;
  if (!c.headers.every((m) => m(requestHeaders))) return undefined;
  if (c.upstreamCluster !== undefined && c.upstreamCluster !== routeCluster) return undefined;
  const delayMs =
    c.delayMs !== undefined && c.delayMs > 0 && random() < c.delayFraction ? c.delayMs : undefined;
  const abort =
    hasAbort && random() < c.abortFraction
      ? { http: c.abortHttpStatus ?? 200, grpc: c.abortGrpcStatus }
      : undefined;
  if (delayMs === undefined && abort === undefined) return undefined;
  if (c.maxActiveFaults !== undefined && filter.active >= c.maxActiveFaults) {
    filter.faults_overflow.inc();
    return undefined;
  }
  filter.active++;
  filter.active_faults.inc();
  return { delayMs, abort };
}

/**
 * The fault filter of a connection manager's http_filters (by type, or by its well-known name
 * with no typed_config), with stats under `<hcmScope>.fault.`; undefined when there is none.
 */
export function faultFilterConfig(
  filters: readonly HttpFilter[] | undefined,
  hcmScope: StatsScope,
): FaultFilterConfig | undefined {
  const f = (filters ?? []).find(
    (x) =>
      (x.typedConfig?.['@type'] ?? '').endsWith(`/${FAULT_FILTER_TYPE}`) ||
      (x.typedConfig === undefined && x.name === FAULT_FILTER_NAME),
  );
  if (!f) return undefined;
  const base = (f.typedConfig ?? {}) as HTTPFault;
  return new FaultFilterConfig(f.name ?? FAULT_FILTER_NAME, base, hcmScope.scope('fault'));
}
