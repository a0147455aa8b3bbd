// A cluster's Envoy stats (`cluster.<name>.*`), looked up once when the cluster is built so that
// the hot path only increments fields.
import type { Counter, Gauge, Histogram, StatsScope } from '../observability/stats-api.js';

export class ClusterStats {
  readonly upstream_cx_total: Counter;
  readonly upstream_cx_active: Gauge;
  readonly upstream_cx_http1_total: Counter;
  readonly upstream_cx_http2_total: Counter;
  readonly upstream_cx_connect_fail: Counter;
  readonly upstream_cx_connect_timeout: Counter;
  readonly upstream_cx_connect_ms: Histogram;
  readonly upstream_cx_length_ms: Histogram;
  readonly upstream_cx_destroy: Counter;
  readonly upstream_cx_destroy_local: Counter;
  readonly upstream_cx_destroy_remote: Counter;
  readonly upstream_cx_destroy_with_active_rq: Counter;
  readonly upstream_cx_idle_timeout: Counter;
  readonly upstream_cx_max_requests: Counter;
  readonly upstream_cx_max_duration_reached: Counter;
  readonly upstream_cx_protocol_error: Counter;
  readonly upstream_cx_none_healthy: Counter;
  readonly upstream_cx_rx_bytes_total: Counter;
  readonly upstream_cx_tx_bytes_total: Counter;
  readonly upstream_rq_total: Counter;
  readonly upstream_rq_active: Gauge;
  readonly upstream_rq_completed: Counter;
  readonly upstream_rq_pending_total: Counter;
  readonly upstream_rq_pending_active: Gauge;
  readonly upstream_rq_pending_failure_eject: Counter;
  readonly upstream_rq_pending_overflow: Counter;
  readonly upstream_cx_overflow: Counter;
  readonly upstream_rq_timeout: Counter;
  readonly upstream_rq_rx_reset: Counter;
  readonly upstream_rq_tx_reset: Counter;
  readonly upstream_rq_time: Histogram;
  readonly membership_total: Gauge;
  readonly membership_healthy: Gauge;
  readonly membership_degraded: Gauge;
  readonly membership_change: Counter;
  private readonly codes = new Map<number, Counter>();
  private readonly classes: Counter[];

  constructor(readonly scope: StatsScope) {
    const c = (n: string): Counter => scope.counter(n);
    const g = (n: string): Gauge => scope.gauge(n);
    this.upstream_cx_total = c('upstream_cx_total');
    this.upstream_cx_active = g('upstream_cx_active');
    this.upstream_cx_http1_total = c('upstream_cx_http1_total');
    this.upstream_cx_http2_total = c('upstream_cx_http2_total');
    this.upstream_cx_connect_fail = c('upstream_cx_connect_fail');
    this.upstream_cx_connect_timeout = c('upstream_cx_connect_timeout');
    this.upstream_cx_connect_ms = scope.histogram('upstream_cx_connect_ms');
    this.upstream_cx_length_ms = scope.histogram('upstream_cx_length_ms');
    this.upstream_cx_destroy = c('upstream_cx_destroy');
    this.upstream_cx_destroy_local = c('upstream_cx_destroy_local');
    this.upstream_cx_destroy_remote = c('upstream_cx_destroy_remote');
    this.upstream_cx_destroy_with_active_rq = c('upstream_cx_destroy_with_active_rq');
    this.upstream_cx_idle_timeout = c('upstream_cx_idle_timeout');
    this.upstream_cx_max_requests = c('upstream_cx_max_requests');
    this.upstream_cx_max_duration_reached = c('upstream_cx_max_duration_reached');
    this.upstream_cx_protocol_error = c('upstream_cx_protocol_error');
    this.upstream_cx_none_healthy = c('upstream_cx_none_healthy');
    this.upstream_cx_rx_bytes_total = c('upstream_cx_rx_bytes_total');
    this.upstream_cx_tx_bytes_total = c('upstream_cx_tx_bytes_total');
    this.upstream_rq_total = c('upstream_rq_total');
    this.upstream_rq_active = g('upstream_rq_active');
    this.upstream_rq_completed = c('upstream_rq_completed');
    this.upstream_rq_pending_total = c('upstream_rq_pending_total');
    this.upstream_rq_pending_active = g('upstream_rq_pending_active');
    this.upstream_rq_pending_failure_eject = c('upstream_rq_pending_failure_eject');
    this.upstream_rq_pending_overflow = c('upstream_rq_pending_overflow');
    this.upstream_cx_overflow = c('upstream_cx_overflow');
    this.upstream_rq_timeout = c('upstream_rq_timeout');
    this.upstream_rq_rx_reset = c('upstream_rq_rx_reset');
    this.upstream_rq_tx_reset = c('upstream_rq_tx_reset');
    this.upstream_rq_time = scope.histogram('upstream_rq_time');
    this.membership_total = g('membership_total');
    this.membership_healthy = g('membership_healthy');
    this.membership_degraded = g('membership_degraded');
    this.membership_change = c('membership_change');
    this.classes = [1, 2, 3, 4, 5].map((k) => c(`upstream_rq_${k}xx`));
  }

  /** Counts a response code: `upstream_rq_<code>`, `upstream_rq_<class>xx`, `upstream_rq_completed`. */
  responseCode(code: number): void {
    let counter = this.codes.get(code);
    if (!counter) {
      counter = this.scope.counter(`upstream_rq_${code}`);
      this.codes.set(code, counter);
    }
    counter.inc();
    this.classes[Math.floor(code / 100) - 1]?.inc();
    this.upstream_rq_completed.inc();
  }
}
