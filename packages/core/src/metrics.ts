// A small Prometheus metrics registry: counters, gauges and histograms with labels,
// rendered in the text exposition format (version 0.0.4) that Prometheus scrapes.

export type LabelValues = Readonly<Record<string, string>>;

interface Series<V> {
  readonly labels: LabelValues;
  value: V;
}

function labelKey(names: readonly string[], labels: LabelValues): string {
  let key = '';
  for (const n of names) key += (labels[n] ?? '') + '\u0000';
  return key;
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function renderLabels(
  names: readonly string[],
  labels: LabelValues,
  extra?: [string, string],
): string {
  const parts = names.map((n) => `${n}="${escapeLabelValue(labels[n] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatNumber(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

abstract class Metric<V> {
  protected readonly series = new Map<string, Series<V>>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const l of labelNames)
      if (!LABEL_NAME.test(l) || l.startsWith('__'))
        throw new Error(`invalid label name ${JSON.stringify(l)}`);
  }
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract initial(): V;

  protected get(labels: LabelValues): Series<V> {
    const key = labelKey(this.labelNames, labels);
    let s = this.series.get(key);
    if (!s) {
      const copy: Record<string, string> = {};
      for (const n of this.labelNames) copy[n] = labels[n] ?? '';
      s = { labels: copy, value: this.initial() };
      this.series.set(key, s);
    }
    return s;
  }

  /** Removes every series (for gauges rebuilt from state on each scrape). */
  reset(): void {
    this.series.clear();
  }

  abstract render(): string;
}

export class Counter extends Metric<number> {
  readonly type = 'counter';
  protected initial(): number {
    return 0;
  }
  inc(labels: LabelValues = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    this.get(labels).value += by;
  }
  value(labels: LabelValues = {}): number {
    return this.series.get(labelKey(this.labelNames, labels))?.value ?? 0;
  }
  render(): string {
    let out = '';
    for (const s of this.series.values())
      out += `${this.name}${renderLabels(this.labelNames, s.labels)} ${formatNumber(s.value)}\n`;
    return out;
  }
}

export class Gauge extends Metric<number> {
  readonly type = 'gauge';
  protected initial(): number {
    return 0;
  }
  set(labels: LabelValues, value: number): void {
    this.get(labels).value = value;
  }
  inc(labels: LabelValues = {}, by = 1): void {
    this.get(labels).value += by;
  }
  dec(labels: LabelValues = {}, by = 1): void {
    this.get(labels).value -= by;
  }
  value(labels: LabelValues = {}): number {
    return this.series.get(labelKey(this.labelNames, labels))?.value ?? 0;
  }
  render(): string {
    let out = '';
    for (const s of this.series.values())
      out += `${this.name}${renderLabels(this.labelNames, s.labels)} ${formatNumber(s.value)}\n`;
    return out;
  }
}

interface HistogramValue {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Prometheus' default buckets, in the metric's unit. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class Histogram extends Metric<HistogramValue> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    super(name, help, labelNames);
    if (labelNames.includes('le')) throw new Error('a histogram cannot have a label named le');
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  protected initial(): HistogramValue {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(labels: LabelValues, value: number): void {
    const s = this.get(labels).value;
    s.sum += value;
    s.count++;
    // Counts are per bucket here and made cumulative when rendered.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
  }
  /** Count and sum of a series, for tests and debug pages. */
  snapshot(labels: LabelValues = {}): { count: number; sum: number } {
    const s = this.series.get(labelKey(this.labelNames, labels))?.value;
    return { count: s?.count ?? 0, sum: s?.sum ?? 0 };
  }
  render(): string {
    let out = '';
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.value.counts[i]!;
        out += `${this.name}_bucket${renderLabels(this.labelNames, s.labels, ['le', formatNumber(b)])} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${renderLabels(this.labelNames, s.labels, ['le', '+Inf'])} ${s.value.count}\n`;
      out += `${this.name}_sum${renderLabels(this.labelNames, s.labels)} ${formatNumber(s.value.sum)}\n`;
      out += `${this.name}_count${renderLabels(this.labelNames, s.labels)} ${s.value.count}\n`;
    }
    return out;
  }
}

/** Series read from elsewhere at scrape time (Prometheus' CounterFunc/GaugeFunc). */
export type SeriesSource = () => Iterable<readonly [LabelValues, number]>;

class CollectedMetric extends Metric<number> {
  constructor(
    readonly type: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly source: SeriesSource,
  ) {
    super(name, help, labelNames);
  }
  protected initial(): number {
    return 0;
  }
  render(): string {
    let out = '';
    for (const [labels, value] of this.source())
      out += `${this.name}${renderLabels(this.labelNames, labels)} ${formatNumber(value)}\n`;
    return out;
  }
}

/** A set of metrics rendered together; names are unique within a registry. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric<unknown>>();
  /** Called before rendering, to refresh gauges computed from state. */
  private readonly collectors: (() => void)[] = [];

  private add<M extends Metric<unknown>>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  /** Adds a metric made elsewhere (e.g. a component's own histogram). */
  register<M extends Counter | Gauge | Histogram>(m: M): M {
    return this.add(m);
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets?: readonly number[],
  ): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }
  /** A counter whose series are read from `source` at each scrape (it must only grow). */
  counterFrom(
    name: string,
    help: string,
    labelNames: readonly string[],
    source: SeriesSource,
  ): void {
    this.add(new CollectedMetric('counter', name, help, labelNames, source));
  }
  /** A gauge whose series are read from `source` at each scrape. */
  gaugeFrom(name: string, help: string, labelNames: readonly string[], source: SeriesSource): void {
    this.add(new CollectedMetric('gauge', name, help, labelNames, source));
  }
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }
  /** The Prometheus text exposition of every metric. */
  render(): string {
    for (const c of this.collectors) c();
    let out = '';
    for (const m of this.metrics.values()) {
      out += `# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${m.name} ${m.type}\n`;
      out += m.render();
    }
    return out;
  }
}

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
