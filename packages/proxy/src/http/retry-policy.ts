// Envoy's router retry policy and per-request retry state (RetryStateImpl): the route's (else
// the virtual host's) RetryPolicy combined with the x-envoy-retry-on / x-envoy-retry-grpc-on /
// x-envoy-max-retries / x-envoy-retriable-status-codes / x-envoy-retriable-header-names request
// headers; the decisions "would this response / reset be retried"; the retry budget
// (num_retries, then the cluster's max_retries circuit breaker); the fully jittered exponential
// back-off (base 25 ms, max 10 × base); and the previous_hosts host predicate. Pure logic: the
// router owns the timers and the upstream streams.
import type { HeaderMatcher, RetryPolicy } from '@trellis/envoy';
import { durationMs } from '../duration.js';
import type { Counter } from '../observability/stats-api.js';
import type { ResourceManagerApi, UpstreamResetReason } from '../upstream/api.js';
import { PreviousPriorities } from '../upstream/lb/previous-priorities.js';
import type { PriorityLoad } from '../upstream/lb/priority-load.js';
import type { LbContext, LbHost } from '../upstream/lb/types.js';
import { headerValue, type HeaderMap } from './headers.js';
import { compileStringMatcher, type StringPredicate } from './string-matcher.js';

/** retry_on conditions as bits (Envoy's RetryPolicy::RETRY_ON_*). */
export const RETRY_ON = {
  FIVE_XX: 1 << 0,
  GATEWAY_ERROR: 1 << 1,
  CONNECT_FAILURE: 1 << 2,
  RETRIABLE_4XX: 1 << 3,
  REFUSED_STREAM: 1 << 4,
  RETRIABLE_STATUS_CODES: 1 << 5,
  RESET: 1 << 6,
  RETRIABLE_HEADERS: 1 << 7,
  ENVOY_RATE_LIMITED: 1 << 8,
  RESET_BEFORE_REQUEST: 1 << 9,
  HTTP3_POST_CONNECT_FAILURE: 1 << 10,
  GRPC_CANCELLED: 1 << 11,
  GRPC_DEADLINE_EXCEEDED: 1 << 12,
  GRPC_RESOURCE_EXHAUSTED: 1 << 13,
  GRPC_UNAVAILABLE: 1 << 14,
  GRPC_INTERNAL: 1 << 15,
} as const;

const ROUTER_CONDITIONS: Readonly<Record<string, number>> = {
  '5xx': RETRY_ON.FIVE_XX,
  'gateway-error': RETRY_ON.GATEWAY_ERROR,
  'connect-failure': RETRY_ON.CONNECT_FAILURE,
  'retriable-4xx': RETRY_ON.RETRIABLE_4XX,
  'refused-stream': RETRY_ON.REFUSED_STREAM,
  'retriable-status-codes': RETRY_ON.RETRIABLE_STATUS_CODES,
  reset: RETRY_ON.RESET,
  'reset-before-request': RETRY_ON.RESET_BEFORE_REQUEST,
  'retriable-headers': RETRY_ON.RETRIABLE_HEADERS,
  'envoy-ratelimited': RETRY_ON.ENVOY_RATE_LIMITED,
  'http3-post-connect-failure': RETRY_ON.HTTP3_POST_CONNECT_FAILURE,
};

const GRPC_CONDITIONS: Readonly<Record<string, number>> = {
  cancelled: RETRY_ON.GRPC_CANCELLED,
  'deadline-exceeded': RETRY_ON.GRPC_DEADLINE_EXCEEDED,
  'resource-exhausted': RETRY_ON.GRPC_RESOURCE_EXHAUSTED,
  unavailable: RETRY_ON.GRPC_UNAVAILABLE,
  internal: RETRY_ON.GRPC_INTERNAL,
};

/** gRPC status codes the gRPC conditions retry on. */
const GRPC_STATUS_BITS: ReadonlyMap<number, number> = new Map([
  [1, RETRY_ON.GRPC_CANCELLED],
  [4, RETRY_ON.GRPC_DEADLINE_EXCEEDED],
  [8, RETRY_ON.GRPC_RESOURCE_EXHAUSTED],
  [13, RETRY_ON.GRPC_INTERNAL],
  [14, RETRY_ON.GRPC_UNAVAILABLE],
]);

/** Envoy's default back-off base interval. */
export const DEFAULT_RETRY_BASE_INTERVAL_MS = 25;
/** The previous_hosts retry host predicate. */
export const PREVIOUS_HOSTS_PREDICATE = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

/**
 * A comma-separated retry_on list as bits: router conditions when `router`, gRPC ones when
 * `grpc` (route policies accept both; each header only its own kind). Unknown names are ignored.
 */
export function parseRetryOn(value: string | undefined, router = true, grpc = true): number {
  let bits = 0;
  for (const raw of (value ?? '').split(',')) {
    const t = raw.trim();
    if (router) bits |= ROUTER_CONDITIONS[t] ?? 0;
    if (grpc) bits |= GRPC_CONDITIONS[t] ?? 0;
  }
  return bits;
}

/** A predicate on response (or request) headers from a HeaderMatcher. */
export type HeaderMapPredicate = (headers: HeaderMap) => boolean;

/** Envoy's HeaderMatcher against a header map (string, present, range, invert). */
export function compileHeaderMapMatcher(h: HeaderMatcher): HeaderMapPredicate {
  const name = (h.name ?? '').toLowerCase();
  const invert = h.invertMatch === true;
  if (h.presentMatch !== undefined) {
    const want = h.presentMatch;
    return (m) => ((headerValue(m, name) !== undefined) === want) !== invert;
  }
  let test: StringPredicate;
  if (h.stringMatch) test = compileStringMatcher(h.stringMatch);
  else if (h.rangeMatch) {
    const start = BigInt(h.rangeMatch.start ?? '0');
    const end = BigInt(h.rangeMatch.end ?? '0');
    test = (v) => /^-?\d+$/.test(v) && BigInt(v) >= start && BigInt(v) < end;
  } else test = () => true;
  const missingAsEmpty = h.treatMissingHeaderAsEmpty === true;
  return (m) => {
    const v = headerValue(m, name);
    if (v === undefined) return missingAsEmpty ? test('') !== invert : false;
    return test(v) !== invert;
  };
}

/** A RetryPolicy compiled once per configuration object. */
export interface CompiledRetryPolicy {
  readonly retryOn: number;
  readonly numRetries: number;
  /** 0 = none. */
  readonly perTryTimeoutMs: number;
  readonly perTryIdleTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly retriableHeaders: readonly HeaderMapPredicate[];
  readonly retriableRequestHeaders: readonly HeaderMapPredicate[];
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  /** previous_hosts: a retry avoids the hosts already tried. */
  readonly previousHosts: boolean;
  /** host_selection_retry_max_attempts (Envoy's default 1). */
  readonly hostSelectionMaxAttempts: number;
  /** previous_priorities' update_frequency; 0: no retry priority. */
  readonly priorityUpdateFrequency: number;
}

const cache = new WeakMap<RetryPolicy, CompiledRetryPolicy>();

export function compileRetryPolicy(p: RetryPolicy): CompiledRetryPolicy {
  let c = cache.get(p);
  if (c) return c;
  const base = durationMs(p.retryBackOff?.baseInterval) || DEFAULT_RETRY_BASE_INTERVAL_MS;
  const max = durationMs(p.retryBackOff?.maxInterval) || base * 10;
  c = {
    retryOn: parseRetryOn(p.retryOn),
    numRetries: p.numRetries ?? 1,
    perTryTimeoutMs: durationMs(p.perTryTimeout) ?? 0,
    perTryIdleTimeoutMs: durationMs(p.perTryIdleTimeout) ?? 0,
    retriableStatusCodes: new Set(p.retriableStatusCodes ?? []),
    retriableHeaders: (p.retriableHeaders ?? []).map(compileHeaderMapMatcher),
    retriableRequestHeaders: (p.retriableRequestHeaders ?? []).map(compileHeaderMapMatcher),
    baseIntervalMs: base,
    maxIntervalMs: Math.max(max, base),
    previousHosts: (p.retryHostPredicate ?? []).some(
      (h) =>
        h.name === PREVIOUS_HOSTS_PREDICATE ||
        (h.typedConfig?.['@type'] ?? '').endsWith(PREVIOUS_HOSTS_TYPE),
    ),
    hostSelectionMaxAttempts: Number(p.hostSelectionRetryMaxAttempts ?? 1) || 1,
    priorityUpdateFrequency: Math.max(
      0,
      Number(
        (p.retryPriority?.typedConfig as { updateFrequency?: number } | undefined)
          ?.updateFrequency ?? 0,
      ) || 0,
    ),
  };
  cache.set(p, c);
  return c;
}

/** The cluster stats a retry decision counts (Envoy's names). */
export interface RetryStats {
  readonly upstream_rq_retry: Counter;
  readonly upstream_rq_retry_success: Counter;
  readonly upstream_rq_retry_overflow: Counter;
  readonly upstream_rq_retry_limit_exceeded: Counter;
}

/** The outcome of asking to retry (Envoy's RetryStatus). */
export type RetryStatus = 'retry' | 'no' | 'limit_exceeded' | 'overflow';

/** The request headers the retry state reads (x-envoy-* control headers). */
export type HeaderGetter = (name: string) => string | undefined;

/**
 * One request's retry state, or undefined when the request is not to be retried (no policy
 * and no retry header, or retriable_request_headers do not match).
 */
export function createRetryState(
  policy: RetryPolicy | undefined,
  header: HeaderGetter,
  requestHeaders: HeaderMap,
): RetryState | undefined {
  const compiled = policy ? compileRetryPolicy(policy) : undefined;
  const hdrOn = header('x-envoy-retry-on');
  const hdrGrpcOn = header('x-envoy-retry-grpc-on');
  const max = header('x-envoy-max-retries');
  const hdrCodes = header('x-envoy-retriable-status-codes');
  const hdrNames = header('x-envoy-retriable-header-names');
  const headersSayNothing =
    hdrOn === undefined &&
    hdrGrpcOn === undefined &&
    max === undefined &&
    hdrCodes === undefined &&
    hdrNames === undefined;
  // The common case (a route policy, as Istio gives every route, and no x-envoy-retry-* headers):
  // the compiled policy as it is, nothing parsed or copied per request.
  if (headersSayNothing && (compiled === undefined || compiled.retryOn === 0)) return undefined;
  let retryOn = compiled?.retryOn ?? 0;
  retryOn |= parseRetryOn(hdrOn, true, false) | parseRetryOn(hdrGrpcOn, false, true);
  if (retryOn === 0) return undefined;
  if (compiled && compiled.retriableRequestHeaders.length > 0) {
    if (!compiled.retriableRequestHeaders.some((m) => m(requestHeaders))) return undefined;
  }
  if (headersSayNothing && compiled) return new RetryState(compiled);
  let numRetries = compiled?.numRetries ?? 1;
  if (max !== undefined && /^\d+$/.test(max.trim())) numRetries = Number(max.trim());
  const codes = new Set(compiled?.retriableStatusCodes ?? []);
  for (const c of (hdrCodes ?? '').split(','))
    if (/^\d{3}$/.test(c.trim())) codes.add(Number(c.trim()));
  const retriableHeaders = [...(compiled?.retriableHeaders ?? [])];
  for (const n of (hdrNames ?? '').split(',')) {
    const name = n.trim().toLowerCase();
    if (name !== '') retriableHeaders.push((m) => headerValue(m, name) !== undefined);
  }
  return new RetryState({
    retryOn,
    numRetries,
    perTryTimeoutMs: compiled?.perTryTimeoutMs ?? 0,
    perTryIdleTimeoutMs: compiled?.perTryIdleTimeoutMs ?? 0,
    retriableStatusCodes: codes,
    retriableHeaders,
    retriableRequestHeaders: [],
    baseIntervalMs: compiled?.baseIntervalMs ?? DEFAULT_RETRY_BASE_INTERVAL_MS,
    maxIntervalMs: compiled?.maxIntervalMs ?? DEFAULT_RETRY_BASE_INTERVAL_MS * 10,
    previousHosts: compiled?.previousHosts ?? false,
    hostSelectionMaxAttempts: compiled?.hostSelectionMaxAttempts ?? 1,
    priorityUpdateFrequency: compiled?.priorityUpdateFrequency ?? 0,
  });
}

export class RetryState {
  /** Retries left (num_retries, or x-envoy-max-retries). */
  retriesRemaining: number;
  /** Hosts tried so far (for previous_hosts). */
  private attempted: Set<string> | undefined;
  /** Back-off step (Envoy's current_retry, from 1). */
  private backoffStep = 1;
  /** A retry was scheduled and holds one of the cluster's retry resources. */
  private holding: ResourceManagerApi | undefined;
  private retried = false;
  /** The retry priority (previous_priorities), when the policy has one. */
  private readonly priorities: PreviousPriorities | undefined;

  constructor(readonly policy: CompiledRetryPolicy) {
    this.retriesRemaining = policy.numRetries;
    if (policy.priorityUpdateFrequency > 0)
      this.priorities = new PreviousPriorities(policy.priorityUpdateFrequency);
  }

  get retryOn(): number {
    return this.policy.retryOn;
  }

  /** Whether a response with these headers would be retried (ignoring the budget). */
  wouldRetryFromHeaders(status: number, headers: HeaderMap): boolean {
    const on = this.policy.retryOn;
    if (
      on & RETRY_ON.ENVOY_RATE_LIMITED &&
      headerValue(headers, 'x-envoy-ratelimited') !== undefined
    )
      return true;
    if (on & RETRY_ON.FIVE_XX && status >= 500 && status <= 599) return true;
    if (on & RETRY_ON.GATEWAY_ERROR && status >= 502 && status <= 504) return true;
    if (on & RETRY_ON.RETRIABLE_4XX && status === 409) return true;
    if (on & RETRY_ON.RETRIABLE_STATUS_CODES && this.policy.retriableStatusCodes.has(status))
      return true;
    if (on & RETRY_ON.RETRIABLE_HEADERS && this.policy.retriableHeaders.some((m) => m(headers)))
      return true;
    const g = headerValue(headers, 'grpc-status');
    if (g !== undefined && /^\d+$/.test(g)) {
      const bit = GRPC_STATUS_BITS.get(Number(g));
      if (bit !== undefined && on & bit) return true;
    }
    return false;
  }

  /**
   * Whether an upstream reset would be retried. `perTryTimeout`: the per-try timeout reset the
   * attempt (Envoy treats it as a local reset: only reset, 5xx and gateway-error retry it).
   * `requestStarted`: bytes of the request were sent (reset-before-request).
   */
  wouldRetryFromReset(
    reason: UpstreamResetReason | 'per_try_timeout',
    requestStarted = true,
  ): boolean {
    const on = this.policy.retryOn;
    if (on & RETRY_ON.RESET) return true;
    if (on & RETRY_ON.RESET_BEFORE_REQUEST && !requestStarted) return true;
    if (on & (RETRY_ON.FIVE_XX | RETRY_ON.GATEWAY_ERROR)) return true;
    if (reason === 'per_try_timeout') return false;
    if (on & RETRY_ON.REFUSED_STREAM && reason === 'remote_refused_stream_reset') return true;
    if (
      on & RETRY_ON.CONNECT_FAILURE &&
      (reason === 'connection_failure' ||
        reason === 'connection_timeout' ||
        reason === 'transport_not_implemented')
    )
      return true;
    return false;
  }

  /**
   * Envoy's shouldRetry: a retry when `would` and retries remain and the cluster's retry circuit
   * breaker allows one. Counts upstream_rq_retry / _limit_exceeded / _overflow, and
   * upstream_rq_retry_success when a retried request gets a response not to be retried
   * (`fromHeaders`).
   */
  shouldRetry(
    would: boolean,
    resources: ResourceManagerApi | undefined,
    stats: RetryStats | undefined,
    fromHeaders: boolean,
  ): RetryStatus {
    if (!would && fromHeaders && this.retried) stats?.upstream_rq_retry_success.inc();
    this.release();
    if (!would) return 'no';
    if (this.retriesRemaining <= 0) {
      stats?.upstream_rq_retry_limit_exceeded.inc();
      return 'limit_exceeded';
    }
    this.retriesRemaining--;
    // The cluster's retry circuit breaker (max_retries, or the retry budget).
    if (resources && !resources.canRetry()) {
      stats?.upstream_rq_retry_overflow.inc();
      return 'overflow';
    }
    if (resources) {
      resources.retries++;
      this.holding = resources;
    }
    this.retried = true;
    stats?.upstream_rq_retry.inc();
    return 'retry';
  }

  /** Gives back the retry resource held since the last scheduled retry. */
  release(): void {
    if (this.holding) {
      this.holding.retries = Math.max(0, this.holding.retries - 1);
      this.holding = undefined;
    }
  }

  /**
   * The next back-off in ms: uniformly random in [0, (2^n − 1) × base) for the n-th retry
   * (25 ms bases give 0–24, 0–74, 0–174 ms...), never above max_interval.
   */
  nextBackoffMs(random: () => number): number {
    const { baseIntervalMs: base, maxIntervalMs: max } = this.policy;
    const interval = (2 ** this.backoffStep - 1) * base;
    if (interval <= max) this.backoffStep++;
    return Math.min(Math.floor(random() * interval), max);
  }

  /** Notes a host an attempt went to. */
  onHostAttempted(host: LbHost): void {
    (this.attempted ??= new Set()).add(host.id);
    this.priorities?.onHostAttempted(host.priority);
  }

  /**
   * The load balancer hints for a retry: avoid previous hosts (previous_hosts predicate) and
   * move away from the priority levels tried (previous_priorities).
   */
  hostPredicate(): LbContext | undefined {
    const priorities = this.priorities;
    const priorityLoad = priorities
      ? { priorityLoad: (original: PriorityLoad) => priorities.load(original) }
      : undefined;
    if (!this.policy.previousHosts) return priorityLoad;
    const attempted = this.attempted;
    return {
      avoid: (h) => attempted?.has(h.id) === true,
      hostSelectionRetryCount: this.policy.hostSelectionMaxAttempts,
      ...priorityLoad,
    };
  }
}
