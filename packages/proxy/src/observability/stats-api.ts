// The stats interface every part of the proxy records into. Names are Envoy's dotted stat
// names (`cluster.<name>.upstream_rq_total`, `http.<stat_prefix>.downstream_rq_5xx`,
// `listener.<address>.downstream_cx_total`); the store renders them for /stats and, with
// Envoy's tag extraction, for /stats/prometheus (`envoy_cluster_upstream_rq_total{cluster_name=...}`).

export interface Counter {
  inc(n?: number): void;
  readonly value: number;
}

export interface Gauge {
  set(v: number): void;
  inc(n?: number): void;
  dec(n?: number): void;
  readonly value: number;
}

export interface Histogram {
  record(v: number): void;
}

export interface StatsScope {
  /** `name` is appended to the scope's prefix with a dot. The same name gives the same object. */
  counter(name: string): Counter;
  gauge(name: string): Gauge;
  /** Values in ms unless `unit` says bytes. */
  histogram(name: string, unit?: 'ms' | 'bytes'): Histogram;
  /** A child scope (`prefix` appended with a dot). */
  scope(prefix: string): StatsScope;
}
