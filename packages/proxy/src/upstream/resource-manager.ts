// Envoy's circuit breaker resources for one cluster (ResourceManagerImpl): counts of
// connections, pending requests, requests and retries against the cluster's
// `circuit_breakers.thresholds` of the DEFAULT priority (Envoy's defaults 1024/1024/1024/3 when
// absent; a retry_budget replaces max_retries with a share of the active requests). The pools
// ask `canCreateConnection` / `canQueueRequest` / `canSendRequest` before using a resource and
// count the overflows (`upstream_cx_overflow`, `upstream_rq_pending_overflow`); the router
// takes a retry with `tryRetry()` (refused: `upstream_rq_retry_overflow`) and gives it back with
// `releaseRetry()`. The `circuit_breakers.default.*_open` gauges are 1 while a resource is
// exhausted, and `remaining_*` (track_remaining) say how much is left.
//
// HIGH-priority thresholds exist only for routes with `priority: HIGH`, which the proxy does not
// accept (RouteAction.priority is not a supported field): they are never consulted.
import type { Cluster, CircuitBreakerThresholds } from '@trellis/envoy';
import type { Counter, Gauge, StatsScope } from '../observability/stats-api.js';
import type { ResourceManagerApi } from './api.js';

/** Envoy's defaults when a cluster sets no thresholds. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_PENDING_REQUESTS = 1024;
export const DEFAULT_MAX_REQUESTS = 1024;
export const DEFAULT_MAX_RETRIES = 3;
/** Envoy's retry_budget defaults. */
export const DEFAULT_RETRY_BUDGET_PERCENT = 20;
export const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

interface Gauges {
  readonly cxOpen: Gauge;
  readonly rqPendingOpen: Gauge;
  readonly rqOpen: Gauge;
  readonly rqRetryOpen: Gauge;
  readonly remaining?: {
    readonly cx: Gauge;
    readonly pending: Gauge;
    readonly rq: Gauge;
    readonly retries: Gauge;
  };
}

/** The DEFAULT-priority thresholds of a cluster (the first entry without priority HIGH). */
export function defaultThresholds(cluster: Cluster | undefined): CircuitBreakerThresholds {
  return (
    cluster?.circuitBreakers?.thresholds?.find((t) => (t.priority ?? 'DEFAULT') === 'DEFAULT') ?? {}
  );
}

export class ResourceManager implements ResourceManagerApi {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  private readonly fixedMaxRetries: number;
  private readonly budget: { readonly percent: number; readonly min: number } | undefined;
  /** `cluster.<name>.upstream_cx_overflow` (counted by the pools and tcp_proxy). */
  readonly cxOverflow: Counter | undefined;
  /** `cluster.<name>.upstream_rq_pending_overflow`: pending or request limit hit. */
  readonly rqPendingOverflow: Counter | undefined;
  /** `cluster.<name>.upstream_rq_retry_overflow`: a retry refused by max_retries. */
  readonly rqRetryOverflow: Counter | undefined;
  private readonly gauges: Gauges | undefined;
  private cx = 0;
  private pending = 0;
  private rq = 0;
  private rt = 0;

  /**
   * `stats` is the cluster's scope (`cluster.<name>`); without it nothing is recorded (tests).
   */
  constructor(cluster?: Cluster, stats?: StatsScope) {
    const t = defaultThresholds(cluster);
    this.maxConnections = t.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.maxPendingRequests = t.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS;
    this.maxRequests = t.maxRequests ?? DEFAULT_MAX_REQUESTS;
    this.fixedMaxRetries = t.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (t.retryBudget) {
      this.budget = {
        percent: t.retryBudget.budgetPercent?.value ?? DEFAULT_RETRY_BUDGET_PERCENT,
        min: t.retryBudget.minRetryConcurrency ?? DEFAULT_MIN_RETRY_CONCURRENCY,
      };
    }
    if (stats) {
      this.cxOverflow = stats.counter('upstream_cx_overflow');
      this.rqPendingOverflow = stats.counter('upstream_rq_pending_overflow');
      this.rqRetryOverflow = stats.counter('upstream_rq_retry_overflow');
      const cb = stats.scope('circuit_breakers').scope('default');
      this.gauges = {
        cxOpen: cb.gauge('cx_open'),
        rqPendingOpen: cb.gauge('rq_pending_open'),
        rqOpen: cb.gauge('rq_open'),
        rqRetryOpen: cb.gauge('rq_retry_open'),
        ...(t.trackRemaining
          ? {
              remaining: {
                cx: cb.gauge('remaining_cx'),
                pending: cb.gauge('remaining_pending'),
                rq: cb.gauge('remaining_rq'),
                retries: cb.gauge('remaining_retries'),
              },
            }
          : {}),
      };
      this.update();
    }
  }

  /** The retry limit now: max_retries, or the retry budget's share of active requests. */
  get maxRetries(): number {
    if (!this.budget) return this.fixedMaxRetries;
    const active = this.rq + this.pending;
    return Math.max(Math.floor((this.budget.percent / 100) * active), this.budget.min);
  }

  get connections(): number {
    return this.cx;
  }
  set connections(n: number) {
    this.cx = n;
    this.update();
  }
  get pendingRequests(): number {
    return this.pending;
  }
  set pendingRequests(n: number) {
    this.pending = n;
    this.update();
  }
  get requests(): number {
    return this.rq;
  }
  set requests(n: number) {
    this.rq = n;
    this.update();
  }
  get retries(): number {
    return this.rt;
  }
  set retries(n: number) {
    this.rt = n;
    this.update();
  }

  canCreateConnection(): boolean {
    return this.cx < this.maxConnections;
  }

  canQueueRequest(): boolean {
    return this.pending < this.maxPendingRequests;
  }

  canSendRequest(): boolean {
    return this.rq < this.maxRequests;
  }

  canRetry(): boolean {
    return this.rt < this.maxRetries;
  }

  /**
   * Takes a retry (Envoy's RetryState: held from the decision to retry until the retry starts):
   * false, with `upstream_rq_retry_overflow` counted, when max_retries (or the budget) is used up.
   */
  tryRetry(): boolean {
    if (!this.canRetry()) {
      this.rqRetryOverflow?.inc();
      return false;
    }
    this.retries = this.rt + 1;
    return true;
  }

  /** Gives back a retry taken with tryRetry(). */
  releaseRetry(): void {
    if (this.rt > 0) this.retries = this.rt - 1;
  }

  private update(): void {
    const g = this.gauges;
    if (!g) return;
    const maxRetries = this.maxRetries;
    g.cxOpen.set(this.cx >= this.maxConnections ? 1 : 0);
    g.rqPendingOpen.set(this.pending >= this.maxPendingRequests ? 1 : 0);
    g.rqOpen.set(this.rq >= this.maxRequests ? 1 : 0);
    g.rqRetryOpen.set(this.rt >= maxRetries ? 1 : 0);
    const r = g.remaining;
    if (r) {
      r.cx.set(Math.max(0, this.maxConnections - this.cx));
      r.pending.set(Math.max(0, this.maxPendingRequests - this.pending));
      r.rq.set(Math.max(0, this.maxRequests - this.rq));
      r.retries.set(Math.max(0, maxRetries - this.rt));
    }
  }
}
