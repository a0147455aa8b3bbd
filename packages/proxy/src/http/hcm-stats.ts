// The HTTP connection manager's and router's Envoy stats (`http.<stat_prefix>.*`), looked up
// once per connection manager.
import type { Counter, Gauge, Histogram, StatsScope } from '../observability/stats-api.js';

export class HcmStats {
  readonly downstream_cx_total: Counter;
  readonly downstream_cx_active: Gauge;
  readonly downstream_cx_http1_total: Counter;
  readonly downstream_cx_http1_active: Gauge;
  readonly downstream_cx_http2_total: Counter;
  readonly downstream_cx_http2_active: Gauge;
  readonly downstream_cx_protocol_error: Counter;
  readonly downstream_cx_upgrades_total: Counter;
  readonly downstream_cx_upgrades_active: Gauge;
  readonly downstream_cx_destroy: Counter;
  readonly downstream_cx_idle_timeout: Counter;
  readonly downstream_cx_rx_bytes_total: Counter;
  readonly downstream_cx_tx_bytes_total: Counter;
  readonly downstream_cx_length_ms: Histogram;
  readonly downstream_rq_total: Counter;
  readonly downstream_rq_http1_total: Counter;
  readonly downstream_rq_http2_total: Counter;
  readonly downstream_rq_active: Gauge;
  readonly downstream_rq_completed: Counter;
  readonly downstream_rq_rx_reset: Counter;
  readonly downstream_rq_tx_reset: Counter;
  readonly downstream_rq_timeout: Counter;
  readonly downstream_rq_header_timeout: Counter;
  readonly downstream_rq_idle_timeout: Counter;
  readonly downstream_rq_too_large: Counter;
  readonly downstream_rq_ws_on_non_ws_route: Counter;
  readonly downstream_rq_non_relative_path: Counter;
  readonly downstream_rq_time: Histogram;
  readonly downstream_rq_response_before_rq_complete: Counter;
  readonly no_route: Counter;
  readonly no_cluster: Counter;
  readonly rq_redirect: Counter;
  readonly rq_direct_response: Counter;
  readonly rq_total: Counter;
  readonly rq_reset_after_downstream_response_started: Counter;
  private readonly classes: Counter[];

  constructor(scope: StatsScope) {
    const c = (n: string): Counter => scope.counter(n);
    const g = (n: string): Gauge => scope.gauge(n);
    this.downstream_cx_total = c('downstream_cx_total');
    this.downstream_cx_active = g('downstream_cx_active');
    this.downstream_cx_http1_total = c('downstream_cx_http1_total');
    this.downstream_cx_http1_active = g('downstream_cx_http1_active');
    this.downstream_cx_http2_total = c('downstream_cx_http2_total');
    this.downstream_cx_http2_active = g('downstream_cx_http2_active');
    this.downstream_cx_protocol_error = c('downstream_cx_protocol_error');
    this.downstream_cx_upgrades_total = c('downstream_cx_upgrades_total');
    this.downstream_cx_upgrades_active = g('downstream_cx_upgrades_active');
    this.downstream_cx_destroy = c('downstream_cx_destroy');
    this.downstream_cx_idle_timeout = c('downstream_cx_idle_timeout');
    this.downstream_cx_rx_bytes_total = c('downstream_cx_rx_bytes_total');
    this.downstream_cx_tx_bytes_total = c('downstream_cx_tx_bytes_total');
    this.downstream_cx_length_ms = scope.histogram('downstream_cx_length_ms');
    this.downstream_rq_total = c('downstream_rq_total');
    this.downstream_rq_http1_total = c('downstream_rq_http1_total');
    this.downstream_rq_http2_total = c('downstream_rq_http2_total');
    this.downstream_rq_active = g('downstream_rq_active');
    this.downstream_rq_completed = c('downstream_rq_completed');
    this.downstream_rq_rx_reset = c('downstream_rq_rx_reset');
    this.downstream_rq_tx_reset = c('downstream_rq_tx_reset');
    this.downstream_rq_timeout = c('downstream_rq_timeout');
    this.downstream_rq_header_timeout = c('downstream_rq_header_timeout');
    this.downstream_rq_idle_timeout = c('downstream_rq_idle_timeout');
    this.downstream_rq_too_large = c('downstream_rq_too_large');
    this.downstream_rq_ws_on_non_ws_route = c('downstream_rq_ws_on_non_ws_route');
    this.downstream_rq_non_relative_path = c('downstream_rq_non_relative_path');
    this.downstream_rq_time = scope.histogram('downstream_rq_time');
    this.downstream_rq_response_before_rq_complete = c('downstream_rq_response_before_rq_complete');
    this.no_route = c('no_route');
    this.no_cluster = c('no_cluster');
    this.rq_redirect = c('rq_redirect');
    this.rq_direct_response = c('rq_direct_response');
    this.rq_total = c('rq_total');
    this.rq_reset_after_downstream_response_started = c(
      'rq_reset_after_downstream_response_started',
    );
    this.classes = [1, 2, 3, 4, 5].map((k) => c(`downstream_rq_${k}xx`));
  }

  /** Counts a completed downstream response by class. */
  responseCode(code: number): void {
    this.classes[Math.floor(code / 100) - 1]?.inc();
  }
}
