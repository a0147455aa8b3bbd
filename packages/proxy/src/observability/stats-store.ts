// The proxy's stats store (Envoy's ThreadLocalStore, in one thread): counters, gauges and
// histograms under Envoy's dotted names, plus tagged metric families (Istio's
// `istio_requests_total{...}`), rendered for the admin endpoint as `/stats` text, `/stats` JSON
// and `/stats/prometheus` (text exposition format 0.0.4) with Envoy's tag extraction.
//
// Tag extraction works on the structure of a name, not only on its text: a stat created through
// `scope('cluster').scope(clusterName)` knows that `clusterName` is one segment even when it holds
// dots and `|` (`outbound|9080|v1|reviews.default.svc.cluster.local`). Names given flat as one
// dotted string fall back to the regular expressions of Istio's bootstrap (or Envoy's defaults).
import type { Counter, Gauge, Histogram, StatsScope } from './stats-api.js';

/** Envoy's default histogram buckets (`stats_config.histogram_bucket_settings` unset). */
export const DEFAULT_HISTOGRAM_BUCKETS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000,
];

/** The quantiles Envoy prints for a histogram on `/stats`. */
export const SUPPORTED_QUANTILES: readonly number[] = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

/** The content type of `/stats/prometheus`. */
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Tag (label) names used when extracting tags from stat names. Two presets: Istio's bootstrap
 * (`stats_config.stats_tags` with `use_all_default_tags: false`, what an Istio sidecar exposes)
 * and Envoy's built-in defaults (`envoy.cluster_name` etc., sanitized for Prometheus).
 */
export interface TagNames {
  readonly responseCode: string;
  readonly responseCodeClass: string;
  /**
   * Which conventions: `istio` keeps `2xx` as the response code class and drops `_2xx`, and
   * uses Istio's regular expressions for flat names; `envoy` keeps `xx` in the name and `2`
   * as the value, with Envoy's default regular expressions.
   */
  readonly style: 'istio' | 'envoy';
  readonly clusterName: string;
  readonly httpConnManagerPrefix: string;
  readonly httpConnManagerListenerPrefix: string;
  readonly listenerAddress: string;
  readonly tcpPrefix: string;
  /** Envoy only (`vhost.<name>.`, `vhost.<name>.vcluster.<name>.`, `listener_manager.worker_<n>.`). */
  readonly virtualHost?: string;
  readonly virtualCluster?: string;
  readonly workerId?: string;
}

/** Istio's bootstrap tag names: `envoy_cluster_upstream_rq_total{cluster_name="..."}`. */
export const ISTIO_TAG_NAMES: TagNames = Object.freeze({
  responseCode: 'response_code',
  responseCodeClass: 'response_code_class',
  style: 'istio',
  clusterName: 'cluster_name',
  httpConnManagerPrefix: 'http_conn_manager_prefix',
  httpConnManagerListenerPrefix: 'http_conn_manager_listener_prefix',
  listenerAddress: 'listener_address',
  tcpPrefix: 'tcp_prefix',
});

/** Envoy's default tag names: `envoy_cluster_upstream_rq_total{envoy_cluster_name="..."}`. */
export const ENVOY_TAG_NAMES: TagNames = Object.freeze({
  responseCode: 'envoy_response_code',
  responseCodeClass: 'envoy_response_code_class',
  style: 'envoy',
  clusterName: 'envoy_cluster_name',
  httpConnManagerPrefix: 'envoy_http_conn_manager_prefix',
  httpConnManagerListenerPrefix: 'envoy_http_conn_manager_prefix',
  listenerAddress: 'envoy_listener_address',
  tcpPrefix: 'envoy_tcp_prefix',
  virtualHost: 'envoy_virtual_host',
  virtualCluster: 'envoy_virtual_cluster',
  workerId: 'envoy_worker_id',
});

export interface StatsStoreOptions {
  /** Tag names for Prometheus (default: Istio's, as an Istio sidecar exposes them). */
  readonly tagNames?: TagNames;
  /** Buckets of every histogram, in its unit (default: Envoy's). */
  readonly histogramBuckets?: readonly number[];
}

export type StatKind = 'counter' | 'gauge' | 'histogram';

/** A tag (Prometheus label): name and value. */
export type Tag = readonly [name: string, value: string];

// ---------------------------------------------------------------------------------------------
// Stats

class CounterImpl implements Counter {
  value = 0;
  used = false;
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
}

class GaugeImpl implements Gauge {
  value = 0;
  used = false;
  set(v: number): void {
    this.value = v;
    this.used = true;
  }
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
  dec(n = 1): void {
    this.value -= n;
    this.used = true;
  }
}

class HistogramImpl implements Histogram {
  /** Count per bucket (not cumulative); values above the last bucket only count in `count`. */
  readonly counts: Float64Array;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  constructor(
    readonly buckets: readonly number[],
    readonly unit: 'ms' | 'bytes',
  ) {
    this.counts = new Float64Array(buckets.length);
  }
  get used(): boolean {
    return this.count > 0;
  }
  record(v: number): void {
    if (!Number.isFinite(v)) return;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    const b = this.buckets;
    // Binary search for the first bucket >= v.
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((b[mid] as number) < v) lo = mid + 1;
      else hi = mid;
    }
    if (lo < b.length) this.counts[lo]!++;
  }
  /** Cumulative counts per bucket, as Prometheus' `le` buckets. */
  cumulative(): number[] {
    const out: number[] = [];
    let c = 0;
    for (const n of this.counts) {
      c += n;
      out.push(c);
    }
    return out;
  }
  /** The q-th percentile (0..100), interpolated within buckets; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    if (q <= 0) return this.min;
    if (q >= 100) return this.max;
    const target = (q / 100) * this.count;
    let cum = 0;
    let lower = Math.min(0, this.min);
    for (let i = 0; i < this.buckets.length; i++) {
      const n = this.counts[i] as number;
      const upper = this.buckets[i] as number;
      if (n > 0 && cum + n >= target) {
        const lo = Math.max(lower, this.min);
        const hi = Math.min(upper, this.max);
        return lo + ((hi - lo) * (target - cum)) / n;
      }
      cum += n;
      lower = upper;
    }
    return this.max;
  }
}

type AnyStat = CounterImpl | GaugeImpl | HistogramImpl;

/** What tag extraction made of a name: the tag-extracted name and the tags. */
interface Extracted {
  /** Dotted, tags removed (`cluster.upstream_rq_total`). */
  readonly name: string;
  readonly tags: readonly Tag[];
}

/** A stat as the renderers see it. */
interface Entry {
  readonly kind: StatKind;
  readonly stat: AnyStat;
  readonly full: string;
  readonly extracted: () => Extracted;
  /** Set for tagged families (custom namespaces keep their own name). */
  readonly promName?: string;
}

interface NamedStat {
  readonly kind: StatKind;
  readonly stat: AnyStat;
  /** The full dotted Envoy name. */
  readonly full: string;
  /** Structured segments (a segment may hold dots), or undefined for a flat name. */
  segments: readonly string[] | undefined;
  extracted?: Extracted;
}

// ---------------------------------------------------------------------------------------------
// Names

/** Roots whose next segment is a name that may hold dots (`cluster.<name>.`). */
const NAMED_ROOTS = new Set(['cluster', 'http', 'listener', 'tcp', 'vhost', 'mongo', 'udp']);

/** Whether the next segment after `segs` is a free-form name (kept whole). */
function isNameSlot(segs: readonly string[]): boolean {
  if (segs.length === 1) return NAMED_ROOTS.has(segs[0] as string);
  if (segs.length === 3)
    return (
      (segs[0] === 'listener' && segs[2] === 'http') ||
      (segs[0] === 'vhost' && segs[2] === 'vcluster')
    );
  return false;
}

/** Envoy's stat-name sanitization: `:` (and `://`) become `_`, trailing dots go. */
function sanitizeStatName(s: string): string {
  let out = s.includes(':') ? s.replace(/:\/\//g, '_').replace(/:/g, '_') : s;
  while (out.endsWith('.')) out = out.slice(0, -1);
  return out;
}

/**
 * Appends the dotted `part` to `segs`. A part reaching a name slot is kept whole from there on
 * when `isPrefix` (a scope prefix: the rest is the name); for a stat name the result is
 * ambiguous and `undefined` is returned (flat: regular expressions decide).
 */
function appendPart(
  segs: readonly string[],
  part: string,
  isPrefix: boolean,
): string[] | undefined {
  const out = [...segs];
  if (isNameSlot(out)) {
    if (!isPrefix && part.includes('.')) {
      // `cluster` scope, stat name `x.upstream_rq_total`: the name boundary is unknown.
      return undefined;
    }
    out.push(part);
    return out;
  }
  const tokens = part.split('.');
  for (let i = 0; i < tokens.length; i++) {
    if (isNameSlot(out) && i < tokens.length - 1) {
      if (!isPrefix) return undefined;
      out.push(tokens.slice(i).join('.'));
      return out;
    }
    out.push(tokens[i] as string);
  }
  return out;
}

const PROM_INVALID = /[^a-zA-Z0-9_]/g;

/** Prometheus sanitization of a metric or label name (Envoy's `sanitizeName`). */
export function sanitizePrometheusName(name: string): string {
  return name.replace(PROM_INVALID, '_');
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const RESPONSE_CODE_LEAF = /_rq_(\d{3})$/;
const RESPONSE_CODE_CLASS_LEAF = /_rq_(\d)xx$/;

/** Tag extraction over structured segments. */
function extractStructured(segments: readonly string[], names: TagNames): Extracted {
  const segs = [...segments];
  const tags: Tag[] = [];
  // Extractors without a prefix come first in Envoy's output (response codes).
  const last = segs.length - 1;
  if (last >= 0) {
    const leaf = segs[last] as string;
    const code = RESPONSE_CODE_LEAF.exec(leaf);
    if (code) {
      tags.push([names.responseCode, code[1] as string]);
      segs[last] = leaf.slice(0, -4);
    } else {
      const cls = RESPONSE_CODE_CLASS_LEAF.exec(leaf);
      if (cls) {
        if (names.style === 'istio') {
          tags.push([names.responseCodeClass, `${cls[1]}xx`]);
          segs[last] = leaf.slice(0, -4);
        } else {
          tags.push([names.responseCodeClass, cls[1] as string]);
          segs[last] = leaf.slice(0, -3) + 'xx';
        }
      }
    }
  }
  const remove: number[] = [];
  const root = segs[0];
  if (segs.length >= 3) {
    switch (root) {
      case 'cluster':
        // Istio's alt_stat_name ends the cluster name with ';' (so its tag regex can find the
        // end of a name full of dots); the label is the name without it.
        tags.push([names.clusterName, (segs[1] as string).replace(/;$/, '')]);
        remove.push(1);
        break;
      case 'http':
        tags.push([names.httpConnManagerPrefix, segs[1] as string]);
        remove.push(1);
        break;
      case 'listener':
        if (segs[2] === 'http' && segs.length >= 5) {
          tags.push([names.httpConnManagerListenerPrefix, segs[3] as string]);
          remove.push(3);
        }
        tags.push([names.listenerAddress, segs[1] as string]);
        remove.push(1);
        break;
      case 'tcp':
        tags.push([names.tcpPrefix, segs[1] as string]);
        remove.push(1);
        break;
      case 'vhost':
        if (names.virtualHost !== undefined) {
          if (names.virtualCluster !== undefined && segs[2] === 'vcluster' && segs.length >= 5) {
            tags.push([names.virtualCluster, segs[3] as string]);
            remove.push(3);
          }
          tags.push([names.virtualHost, segs[1] as string]);
          remove.push(1);
        }
        break;
      case 'listener_manager':
        if (names.workerId !== undefined && /^worker_\d+$/.test(segs[1] as string)) {
          tags.push([names.workerId, segs[1] as string]);
          remove.push(1);
        }
        break;
      default:
        break;
    }
  }
  const kept = segs.filter((_s, i) => !remove.includes(i));
  return { name: kept.join('.'), tags };
}

interface RegexExtractor {
  readonly tag: keyof TagNames;
  readonly re: RegExp;
}

// Istio's bootstrap `stats_tags` (and Envoy's defaults), for names given as one dotted string.
// Group 1 is removed from the name; group 2 is the value.
const IP_LIKE = String.raw`(?:[_.0-9]*|[_\[\]aAbBcCdDeEfF0-9]*)`;
const ISTIO_REGEXES: readonly RegexExtractor[] = [
  { tag: 'clusterName', re: /^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)/d },
  { tag: 'tcpPrefix', re: /^tcp\.((.*?)\.)\w+?$/d },
  {
    tag: 'httpConnManagerListenerPrefix',
    re: new RegExp(String.raw`^listener(?=\.).*?\.http\.((${IP_LIKE})\.)`, 'd'),
  },
  { tag: 'httpConnManagerPrefix', re: new RegExp(String.raw`^http\.((${IP_LIKE})\.)`, 'd') },
  { tag: 'listenerAddress', re: new RegExp(String.raw`^listener\.((${IP_LIKE})\.)`, 'd') },
];
const ENVOY_REGEXES: readonly RegexExtractor[] = [
  { tag: 'clusterName', re: /^cluster\.(([^.]+)\.)/d },
  { tag: 'tcpPrefix', re: /^tcp\.((.*?)\.)\w+?$/d },
  { tag: 'httpConnManagerListenerPrefix', re: /^listener(?=\.).*?\.http\.((.*?)\.)/d },
  { tag: 'httpConnManagerPrefix', re: /^http\.((.*?)\.)/d },
  { tag: 'listenerAddress', re: new RegExp(String.raw`^listener\.((${IP_LIKE})\.)`, 'd') },
];

/** Tag extraction over a flat dotted name, with regular expressions as Envoy does. */
function extractFlat(full: string, names: TagNames): Extracted {
  // Response codes on the leaf work the same for flat names.
  const dot = full.lastIndexOf('.');
  const leafOnly = extractStructured([full.slice(dot + 1)], names);
  let name = dot >= 0 ? `${full.slice(0, dot)}.${leafOnly.name}` : leafOnly.name;
  const tags: Tag[] = [...leafOnly.tags];
  const regexes = names.style === 'istio' ? ISTIO_REGEXES : ENVOY_REGEXES;
  for (const { tag, re } of regexes) {
    const m = re.exec(name);
    const idx = m?.indices?.[1];
    if (!m || !idx || m[2] === undefined) continue;
    const tagName = names[tag];
    if (typeof tagName !== 'string') continue;
    tags.push([tagName, m[2]]);
    name = name.slice(0, idx[0]) + name.slice(idx[1]);
  }
  return { name, tags };
}

// ---------------------------------------------------------------------------------------------
// Tagged families (Istio's metrics)

/** The key of a tagged series: its tag values joined. */
export function seriesKey(values: readonly string[]): string {
  return values.join('\u0000');
}

/** A metric with explicit tags (labels), like Istio's `istio_requests_total`. */
export class TaggedFamily<S extends Counter | Gauge | Histogram> {
  /** Series by the joined tag values. */
  private readonly series = new Map<string, { values: readonly string[]; stat: AnyStat }>();
  constructor(
    /** Metric name (`istio_requests_total`). */
    readonly name: string,
    readonly kind: StatKind,
    readonly labelNames: readonly string[],
    /** Custom stat namespace (`istiocustom`): exported to Prometheus without `envoy_`. */
    readonly namespace: string | undefined,
    private readonly make: () => AnyStat,
  ) {}

  /** The series for these tag values (in `labelNames` order); the same values give the same object. */
  get(values: readonly string[]): S {
    return this.getKeyed(seriesKey(values), values);
  }

  /**
   * As `get`, with the key (`seriesKey(values)`) computed once by a caller that records the same
   * tags into several families.
   */
  getKeyed(key: string, values: readonly string[]): S {
    let s = this.series.get(key);
    if (!s) {
      if (values.length !== this.labelNames.length)
        throw new Error(
          `${this.name}: ${values.length} tag values for ${this.labelNames.length} tags`,
        );
      s = { values: [...values], stat: this.make() };
      this.series.set(key, s);
    }
    return s.stat as unknown as S;
  }

  /** The series for tags given by name (missing names are empty strings). */
  getByLabels(labels: Readonly<Record<string, string>>): S {
    return this.get(this.labelNames.map((n) => labels[n] ?? ''));
  }

  /** Every series (for rendering and tests). */
  *entries(): IterableIterator<{
    readonly tags: readonly Tag[];
    readonly stat: AnyStat;
    readonly full: string;
  }> {
    for (const { values, stat } of this.series.values()) {
      const tags = this.labelNames.map((n, i): Tag => [n, values[i] as string]);
      yield { tags, stat, full: this.fullName(values) };
    }
  }

  /** Envoy's full name of a tagged stat: the name followed by each tag name and value. */
  fullName(values: readonly string[]): string {
    let out = this.namespace !== undefined ? `${this.namespace}.${this.name}` : this.name;
    for (let i = 0; i < this.labelNames.length; i++)
      out += `.${this.labelNames[i] as string}.${values[i] as string}`;
    return out;
  }

  /** Dotted name without tags (for sorting groups as Envoy does). */
  get extractedName(): string {
    return this.namespace !== undefined ? `${this.namespace}.${this.name}` : this.name;
  }

  get prometheusName(): string {
    return this.namespace !== undefined
      ? sanitizePrometheusName(this.name)
      : `envoy_${sanitizePrometheusName(this.name)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Scopes and the store

class ScopeImpl implements StatsScope {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();
  private readonly children = new Map<string, ScopeImpl>();
  constructor(
    private readonly store: StatsStore,
    /** Structured segments of the prefix, or undefined when flat. */
    private readonly segments: readonly string[] | undefined,
    /** Dotted prefix with its trailing dot ('' at the root). */
    private readonly prefix: string,
  ) {}

  counter(name: string): Counter {
    let c = this.counters.get(name);
    if (!c) {
      c = this.store.stat('counter', this.segments, this.prefix, name) as CounterImpl;
      this.counters.set(name, c);
    }
    return c;
  }
  gauge(name: string): Gauge {
    let g = this.gauges.get(name);
    if (!g) {
      g = this.store.stat('gauge', this.segments, this.prefix, name) as GaugeImpl;
      this.gauges.set(name, g);
    }
    return g;
  }
  histogram(name: string, unit: 'ms' | 'bytes' = 'ms'): Histogram {
    let h = this.histograms.get(name);
    if (!h) {
      h = this.store.stat('histogram', this.segments, this.prefix, name, unit) as HistogramImpl;
      this.histograms.set(name, h);
    }
    return h;
  }
  scope(prefix: string): StatsScope {
    let s = this.children.get(prefix);
    if (!s) {
      const clean = sanitizeStatName(prefix);
      const segs = this.segments && appendPart(this.segments, clean, true);
      s = new ScopeImpl(this.store, segs, `${this.prefix}${clean}.`);
      this.children.set(prefix, s);
    }
    return s;
  }
}

/** Options of the `/stats` renderings. */
export interface StatsQuery {
  /** Only stats that were written (Envoy's `usedonly`). */
  readonly usedOnly?: boolean;
  /** Only stats whose full name matches (Envoy's `filter`). */
  readonly filter?: RegExp;
}

/** One stat as listed by `snapshot()`. */
export interface StatSnapshot {
  readonly name: string;
  readonly kind: StatKind;
  /** Counter or gauge value; a histogram's sample count. */
  readonly value: number;
  /** Histograms: sum of the samples. */
  readonly sum?: number;
}

/**
 * The proxy's stats: a StatsScope at its root (`store.scope('cluster').scope(name)` ...) plus
 * tagged families, rendered in Envoy's admin formats.
 */
export class StatsStore implements StatsScope {
  private readonly byName = new Map<string, NamedStat>();
  private readonly families = new Map<string, TaggedFamily<Counter | Gauge | Histogram>>();
  private readonly root: ScopeImpl;
  readonly tagNames: TagNames;
  readonly buckets: readonly number[];

  constructor(options: StatsStoreOptions = {}) {
    this.tagNames = options.tagNames ?? ISTIO_TAG_NAMES;
    this.buckets = [...(options.histogramBuckets ?? DEFAULT_HISTOGRAM_BUCKETS)].sort(
      (a, b) => a - b,
    );
    this.root = new ScopeImpl(this, [], '');
  }

  counter(name: string): Counter {
    return this.root.counter(name);
  }
  gauge(name: string): Gauge {
    return this.root.gauge(name);
  }
  histogram(name: string, unit?: 'ms' | 'bytes'): Histogram {
    return this.root.histogram(name, unit);
  }
  scope(prefix: string): StatsScope {
    return this.root.scope(prefix);
  }

  /** @internal Finds or creates a stat (called by scopes). */
  stat(
    kind: StatKind,
    scopeSegments: readonly string[] | undefined,
    prefix: string,
    name: string,
    unit: 'ms' | 'bytes' = 'ms',
  ): AnyStat {
    const clean = sanitizeStatName(name);
    const full = prefix + clean;
    const segments = scopeSegments && appendPart(scopeSegments, clean, false);
    const existing = this.byName.get(full);
    if (existing) {
      if (existing.kind !== kind)
        throw new Error(`stat ${full} is a ${existing.kind}, not a ${kind}`);
      if (!existing.segments && segments) {
        // A structured name knows better where the dotted names are.
        existing.segments = segments;
        delete existing.extracted;
      }
      return existing.stat;
    }
    const stat: AnyStat =
      kind === 'counter'
        ? new CounterImpl()
        : kind === 'gauge'
          ? new GaugeImpl()
          : new HistogramImpl(this.buckets, unit);
    this.byName.set(full, { kind, stat, full, segments });
    return stat;
  }

  /**
   * A tagged metric family (Istio's standard metrics). `namespace` is a custom stat namespace
   * (`istiocustom`): its metrics are exported to Prometheus as is, without `envoy_`.
   */
  family<S extends Counter | Gauge | Histogram>(
    name: string,
    kind: S extends Histogram ? 'histogram' : 'counter' | 'gauge',
    labelNames: readonly string[],
    options: { namespace?: string; unit?: 'ms' | 'bytes'; buckets?: readonly number[] } = {},
  ): TaggedFamily<S> {
    const key = `${options.namespace ?? ''}.${name}`;
    const existing = this.families.get(key);
    if (existing) {
      if (existing.kind !== kind) throw new Error(`family ${name} is a ${existing.kind}`);
      return existing as unknown as TaggedFamily<S>;
    }
    const buckets = options.buckets ? [...options.buckets].sort((a, b) => a - b) : this.buckets;
    const unit = options.unit ?? 'ms';
    const make = (): AnyStat =>
      kind === 'counter'
        ? new CounterImpl()
        : kind === 'gauge'
          ? new GaugeImpl()
          : new HistogramImpl(buckets, unit);
    const fam = new TaggedFamily<S>(name, kind, labelNames, options.namespace, make);
    this.families.set(key, fam);
    return fam;
  }

  /** A counter's or gauge's value by full name (undefined when it does not exist). */
  value(fullName: string): number | undefined {
    const s = this.byName.get(fullName);
    if (!s) return undefined;
    return s.stat instanceof HistogramImpl ? s.stat.count : s.stat.value;
  }

  /** Every stat (plain and tagged) with its value, sorted by name. */
  snapshot(): StatSnapshot[] {
    const out: StatSnapshot[] = [];
    for (const e of this.allEntries())
      out.push(
        e.stat instanceof HistogramImpl
          ? { name: e.full, kind: 'histogram', value: e.stat.count, sum: e.stat.sum }
          : { name: e.full, kind: e.kind, value: e.stat.value },
      );
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Resets every counter to zero (admin `/reset_counters`). */
  resetCounters(): void {
    for (const e of this.allEntries()) if (e.stat instanceof CounterImpl) e.stat.value = 0;
  }

  private *allEntries(): IterableIterator<Entry> {
    for (const s of this.byName.values())
      yield { kind: s.kind, stat: s.stat, full: s.full, extracted: () => this.extract(s) };
    for (const fam of this.families.values())
      for (const e of fam.entries())
        yield {
          kind: fam.kind,
          stat: e.stat,
          full: e.full,
          extracted: () => ({ name: fam.extractedName, tags: e.tags }),
          promName: fam.prometheusName,
        };
  }

  private extract(s: NamedStat): Extracted {
    if (!s.extracted)
      s.extracted = s.segments
        ? extractStructured(s.segments, this.tagNames)
        : extractFlat(s.full, this.tagNames);
    return s.extracted;
  }

  /** Tag extraction of a full name as the store would do it for a flat name (for tests/debug). */
  extractTags(fullName: string): { name: string; tags: Tag[] } {
    const s = this.byName.get(fullName);
    const e = s ? this.extract(s) : extractFlat(fullName, this.tagNames);
    return { name: e.name, tags: [...e.tags] };
  }

  private selected(query: StatsQuery): Entry[] {
    const out: Entry[] = [];
    for (const e of this.allEntries()) {
      if (query.usedOnly && !e.stat.used) continue;
      if (query.filter && !query.filter.test(e.full)) continue;
      out.push(e);
    }
    return out;
  }

  /**
   * `/stats` text: counters and gauges as `name: value` sorted by name, then histograms with
   * their quantiles (`P0(interval,cumulative) ...`; the interval is not kept: `nan`).
   */
  renderText(query: StatsQuery = {}): string {
    const entries = this.selected(query);
    const scalars = entries.filter((e) => !(e.stat instanceof HistogramImpl));
    const hists = entries.filter((e) => e.stat instanceof HistogramImpl);
    const byName = (a: { full: string }, b: { full: string }): number =>
      a.full < b.full ? -1 : a.full > b.full ? 1 : 0;
    scalars.sort(byName);
    hists.sort(byName);
    let out = '';
    for (const e of scalars) out += `${e.full}: ${formatNumber((e.stat as CounterImpl).value)}\n`;
    for (const e of hists) {
      const h = e.stat as HistogramImpl;
      if (h.count === 0) {
        out += `${e.full}: No recorded values\n`;
        continue;
      }
      const parts = SUPPORTED_QUANTILES.map(
        (q) => `P${formatNumber(q)}(nan,${formatQuantile(h.quantile(q))})`,
      );
      out += `${e.full}: ${parts.join(' ')}\n`;
    }
    return out;
  }

  /** `/stats?format=json`: Envoy's JSON shape (`stats` with a final `histograms` entry). */
  renderJson(query: StatsQuery = {}): string {
    const entries = this.selected(query);
    const byName = (a: { full: string }, b: { full: string }): number =>
      a.full < b.full ? -1 : a.full > b.full ? 1 : 0;
    const stats: unknown[] = entries
      .filter((e) => !(e.stat instanceof HistogramImpl))
      .sort(byName)
      .map((e) => ({ name: e.full, value: (e.stat as CounterImpl).value }));
    const hists = entries.filter((e) => e.stat instanceof HistogramImpl).sort(byName);
    stats.push({
      histograms: {
        supported_quantiles: SUPPORTED_QUANTILES,
        computed_quantiles: hists.map((e) => {
          const h = e.stat as HistogramImpl;
          return {
            name: e.full,
            values: SUPPORTED_QUANTILES.map((q) => ({
              interval: null,
              cumulative: h.count === 0 ? null : h.quantile(q),
            })),
          };
        }),
      },
    });
    return JSON.stringify({ stats }, null, 1);
  }

  /**
   * `/stats/prometheus`: Prometheus text format 0.0.4 as Envoy writes it: counters, then gauges,
   * then histograms; one `# TYPE` per tag-extracted name, groups sorted by name, series sorted
   * by full stat name, a blank line after each group.
   */
  renderPrometheus(query: StatsQuery = {}): string {
    const entries = this.selected(query);
    let out = '';
    for (const kind of ['counter', 'gauge', 'histogram'] as const) {
      const groups = new Map<string, { sortKey: string; items: Entry[] }>();
      for (const e of entries) {
        if (e.kind !== kind) continue;
        const ex = e.extracted();
        const prom = e.promName ?? `envoy_${sanitizePrometheusName(ex.name)}`;
        let g = groups.get(prom);
        if (!g) {
          g = { sortKey: ex.name, items: [] };
          groups.set(prom, g);
        }
        g.items.push(e);
      }
      const sorted = [...groups.entries()].sort((a, b) =>
        a[1].sortKey < b[1].sortKey ? -1 : a[1].sortKey > b[1].sortKey ? 1 : a[0] < b[0] ? -1 : 1,
      );
      for (const [prom, g] of sorted) {
        out += `# TYPE ${prom} ${kind}\n`;
        g.items.sort((a, b) => (a.full < b.full ? -1 : a.full > b.full ? 1 : 0));
        for (const e of g.items) {
          const tags = e.extracted().tags;
          const labels = tags
            .map(([n, v]) => `${sanitizePrometheusName(n)}="${escapeLabelValue(v)}"`)
            .join(',');
          if (e.stat instanceof HistogramImpl) {
            const h = e.stat;
            const prefix = labels === '' ? '' : `${labels},`;
            const cum = h.cumulative();
            h.buckets.forEach((b, i) => {
              out += `${prom}_bucket{${prefix}le="${formatNumber(b)}"} ${formatNumber(cum[i] as number)}\n`;
            });
            out += `${prom}_bucket{${prefix}le="+Inf"} ${h.count}\n`;
            out += `${prom}_sum{${labels}} ${formatNumber(h.sum)}\n`;
            out += `${prom}_count{${labels}} ${h.count}\n`;
          } else {
            out += `${prom}{${labels}} ${formatNumber(e.stat.value)}\n`;
          }
        }
        out += '\n';
      }
    }
    return out;
  }
}

function formatNumber(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

function formatQuantile(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  return String(Number(v.toPrecision(6)));
}
