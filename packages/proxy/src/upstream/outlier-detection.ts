// Envoy's outlier detection (source/common/upstream/outlier_detection_impl.cc) for one cluster:
// each host's monitor counts consecutive 5xx, consecutive gateway failures (502/503/504) and —
// with split_external_local_origin_errors — consecutive local-origin failures (connect failures,
// resets, timeouts), and the results of the current interval for success-rate and
// failure-percentage detection. A detected outlier is ejected when max_ejection_percent allows
// (at least one host may always be ejected) and the enforcing_* percentage says so: the host
// leaves the load balancer (`host.ejected`; its priority level's health, and so the panic
// threshold, follows). Every `interval` the detector un-ejects the hosts whose ejection time —
// base_ejection_time × the host's ejection multiplier, at most max_ejection_time — has passed
// (the multiplier grows with each ejection and shrinks by one for each interval the host stays
// healthy), and runs success-rate and failure-percentage detection over the last interval.
// Stats: `cluster.<name>.outlier_detection.*` with Envoy's names. Timers and randomness are
// injected (tests drive them by hand).
import type { TimerApi } from '@trellis/core';
import type { OutlierDetection } from '@trellis/envoy';
import { durationMs } from '../duration.js';
import type { Counter, Gauge, StatsScope } from '../observability/stats-api.js';
import type { LbHost } from './lb/types.js';
import { randomBelow, type Random } from './lb/random.js';

/** Envoy's Outlier::Result: what happened to one request or connection attempt. */
export type OutlierResult =
  | 'EXT_ORIGIN_REQUEST_SUCCESS'
  | 'EXT_ORIGIN_REQUEST_FAILED'
  | 'LOCAL_ORIGIN_CONNECT_SUCCESS'
  | 'LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL'
  | 'LOCAL_ORIGIN_CONNECT_FAILED'
  | 'LOCAL_ORIGIN_TIMEOUT';

/** What the pools (and the router) report to a host's monitor. */
export interface OutlierSink {
  /** An HTTP response status from the host. */
  putHttpResponseCode(code: number): void;
  /** A connection-level result (`code`: the HTTP status it stands for, when known). */
  putResult(result: OutlierResult, code?: number): void;
}

/** Envoy's OutlierEjectionType names, as used in the stats. */
export type EjectionType =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure'
  | 'success_rate'
  | 'local_origin_success_rate'
  | 'failure_percentage'
  | 'failure_percentage_local_origin';

const EJECTION_TYPES: readonly EjectionType[] = [
  'consecutive_5xx',
  'consecutive_gateway_failure',
  'consecutive_local_origin_failure',
  'success_rate',
  'local_origin_success_rate',
  'failure_percentage',
  'failure_percentage_local_origin',
];

/** The detector's settings with Envoy's defaults. */
export interface OutlierSettings {
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
  readonly failurePercentageThreshold: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  /** enforcing_* percentages by ejection type. */
  readonly enforcing: Readonly<Record<EjectionType, number>>;
}

/** A field of the proto that the TS OutlierDetection type lacks. */
interface OutlierDetectionExtra {
  readonly enforcingFailurePercentageLocalOrigin?: number;
}

export function outlierSettings(c: OutlierDetection & OutlierDetectionExtra): OutlierSettings {
  return {
    intervalMs: durationMs(c.interval) ?? 10_000,
    baseEjectionTimeMs: durationMs(c.baseEjectionTime) ?? 30_000,
    maxEjectionTimeMs: durationMs(c.maxEjectionTime) ?? 300_000,
    maxEjectionPercent: Math.min(100, c.maxEjectionPercent ?? 10),
    consecutive5xx: c.consecutive5xx ?? 5,
    consecutiveGatewayFailure: c.consecutiveGatewayFailure ?? 5,
    consecutiveLocalOriginFailure: c.consecutiveLocalOriginFailure ?? 5,
    splitExternalLocalOriginErrors: c.splitExternalLocalOriginErrors ?? false,
    successRateMinimumHosts: c.successRateMinimumHosts ?? 5,
    successRateRequestVolume: c.successRateRequestVolume ?? 100,
    successRateStdevFactor: c.successRateStdevFactor ?? 1900,
    failurePercentageThreshold: c.failurePercentageThreshold ?? 85,
    failurePercentageMinimumHosts: c.failurePercentageMinimumHosts ?? 5,
    failurePercentageRequestVolume: c.failurePercentageRequestVolume ?? 50,
    enforcing: {
      consecutive_5xx: c.enforcingConsecutive5xx ?? 100,
      consecutive_gateway_failure: c.enforcingConsecutiveGatewayFailure ?? 0,
      consecutive_local_origin_failure: c.enforcingConsecutiveLocalOriginFailure ?? 100,
      success_rate: c.enforcingSuccessRate ?? 100,
      local_origin_success_rate: c.enforcingLocalOriginSuccessRate ?? 100,
      failure_percentage: c.enforcingFailurePercentage ?? 0,
      failure_percentage_local_origin: c.enforcingFailurePercentageLocalOrigin ?? 0,
    },
  };
}

interface Bucket {
  success: number;
  total: number;
}

/** One host's counters (Envoy's DetectorHostMonitorImpl). */
export class HostMonitor implements OutlierSink {
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;
  /** Times ejected so far. */
  numEjections = 0;
  /** The ejection time multiplier. */
  ejectTimeBackoff = 0;
  lastEjectionTime: number | undefined = undefined;
  lastUnejectionTime: number | undefined = undefined;
  /** Results of the current interval and of the last complete one. */
  private ext: Bucket = { success: 0, total: 0 };
  private local: Bucket = { success: 0, total: 0 };
  lastExt: Bucket = { success: 0, total: 0 };
  lastLocal: Bucket = { success: 0, total: 0 };

  constructor(
    readonly host: LbHost,
    private detector: OutlierDetector,
  ) {}

  /** @internal A new detector (changed cluster) takes the monitor over. */
  adopt(detector: OutlierDetector): void {
    this.detector = detector;
  }

  putHttpResponseCode(code: number): void {
    const s = this.detector.settings;
    this.ext.total++;
    if (code >= 500 && code < 600) {
      if (code === 502 || code === 503 || code === 504) {
        if (++this.consecutiveGatewayFailure === s.consecutiveGatewayFailure)
          this.detector.onConsecutiveError(this, 'consecutive_gateway_failure');
      } else this.consecutiveGatewayFailure = 0;
      if (++this.consecutive5xx === s.consecutive5xx)
        this.detector.onConsecutiveError(this, 'consecutive_5xx');
    } else {
      this.ext.success++;
      this.consecutive5xx = 0;
      this.consecutiveGatewayFailure = 0;
    }
  }

  putResult(result: OutlierResult, code?: number): void {
    if (this.detector.settings.splitExternalLocalOriginErrors) {
      switch (result) {
        case 'LOCAL_ORIGIN_CONNECT_SUCCESS':
        case 'LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL':
          this.localOriginNoFailure();
          return;
        case 'LOCAL_ORIGIN_TIMEOUT':
        case 'LOCAL_ORIGIN_CONNECT_FAILED':
          this.localOriginFailure();
          return;
        case 'EXT_ORIGIN_REQUEST_FAILED':
          this.putHttpResponseCode(503);
          return;
        case 'EXT_ORIGIN_REQUEST_SUCCESS':
          this.putHttpResponseCode(200);
          this.localOriginNoFailure();
          return;
      }
    }
    if (code !== undefined) {
      this.putHttpResponseCode(code);
      return;
    }
    // Without the split, local-origin results stand for HTTP codes; a connect success alone
    // says nothing about the response that follows.
    switch (result) {
      case 'EXT_ORIGIN_REQUEST_SUCCESS':
      case 'LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL':
        this.putHttpResponseCode(200);
        return;
      case 'LOCAL_ORIGIN_TIMEOUT':
        this.putHttpResponseCode(504);
        return;
      case 'LOCAL_ORIGIN_CONNECT_FAILED':
        this.putHttpResponseCode(503);
        return;
      case 'EXT_ORIGIN_REQUEST_FAILED':
        this.putHttpResponseCode(500);
        return;
      case 'LOCAL_ORIGIN_CONNECT_SUCCESS':
        return;
    }
  }

  private localOriginFailure(): void {
    this.local.total++;
    if (
      ++this.consecutiveLocalOriginFailure === this.detector.settings.consecutiveLocalOriginFailure
    )
      this.detector.onConsecutiveError(this, 'consecutive_local_origin_failure');
  }

  private localOriginNoFailure(): void {
    this.local.total++;
    this.local.success++;
    this.consecutiveLocalOriginFailure = 0;
  }

  /** @internal Closes the interval's buckets. */
  rotate(): void {
    this.lastExt = this.ext;
    this.lastLocal = this.local;
    this.ext = { success: 0, total: 0 };
    this.local = { success: 0, total: 0 };
  }

  resetConsecutive(): void {
    this.consecutive5xx = 0;
    this.consecutiveGatewayFailure = 0;
    this.consecutiveLocalOriginFailure = 0;
  }
}

export interface OutlierDetectorDeps {
  /** The cluster's stats scope (`cluster.<name>`): the detector records under `outlier_detection`. */
  readonly stats: StatsScope;
  readonly timers: TimerApi;
  readonly random: Random;
  /** The cluster's hosts now (hosts no longer listed are forgotten). */
  readonly hosts: () => readonly LbHost[];
  /** Called after a host was ejected or un-ejected. */
  readonly onChange?: () => void;
  /**
   * The detector of the cluster this one replaces: its monitors (counters, ejections, timing)
   * carry over for the hosts that remain.
   */
  readonly previous?: OutlierDetector | undefined;
}

interface DetectorStats {
  readonly active: Gauge;
  readonly enforcedTotal: Counter;
  readonly overflow: Counter;
  readonly total: Counter;
  readonly consecutive5xxDeprecated: Counter;
  readonly successRateDeprecated: Counter;
  readonly detected: Record<EjectionType, Counter>;
  readonly enforced: Record<EjectionType, Counter>;
}

/** The outlier detector of one cluster (Envoy's DetectorImpl). */
export class OutlierDetector {
  readonly settings: OutlierSettings;
  private readonly monitors = new Map<LbHost, HostMonitor>();
  private readonly stats: DetectorStats;
  private timer: unknown;
  private closed = false;

  constructor(
    config: OutlierDetection,
    private readonly deps: OutlierDetectorDeps,
  ) {
    this.settings = outlierSettings(config);
    const scope = deps.stats.scope('outlier_detection');
    const byType = (prefix: string): Record<EjectionType, Counter> =>
      Object.fromEntries(EJECTION_TYPES.map((t) => [t, scope.counter(`${prefix}_${t}`)])) as Record<
        EjectionType,
        Counter
      >;
    this.stats = {
      active: scope.gauge('ejections_active'),
      enforcedTotal: scope.counter('ejections_enforced_total'),
      overflow: scope.counter('ejections_overflow'),
      total: scope.counter('ejections_total'),
      consecutive5xxDeprecated: scope.counter('ejections_consecutive_5xx'),
      successRateDeprecated: scope.counter('ejections_success_rate'),
      detected: byType('ejections_detected'),
      enforced: byType('ejections_enforced'),
    };
    const prev = deps.previous;
    if (prev) {
      prev.stop();
      const current = new Set(deps.hosts());
      for (const [host, m] of prev.monitors) {
        if (!current.has(host)) continue;
        m.adopt(this);
        this.monitors.set(host, m);
      }
    }
    this.stats.active.set(this.countEjected());
    this.arm();
  }

  /** The monitor of `host` (made on first use). */
  monitor(host: LbHost): HostMonitor {
    let m = this.monitors.get(host);
    if (!m) {
      m = new HostMonitor(host, this);
      this.monitors.set(host, m);
    }
    return m;
  }

  /** Hosts currently ejected. */
  ejectedHosts(): LbHost[] {
    return [...this.monitors.keys()].filter((h) => h.ejected === true);
  }

  /** @internal A consecutive-error threshold was reached (Envoy's onConsecutiveErrorWorker). */
  onConsecutiveError(m: HostMonitor, type: EjectionType): void {
    if (this.closed || m.host.ejected === true) return;
    if (type === 'consecutive_5xx') {
      this.stats.consecutive5xxDeprecated.inc();
      m.consecutive5xx = 0;
    } else if (type === 'consecutive_gateway_failure') m.consecutiveGatewayFailure = 0;
    else m.consecutiveLocalOriginFailure = 0;
    this.stats.detected[type].inc();
    this.eject(m, type);
  }

  private enforced(type: EjectionType): boolean {
    const pct = this.settings.enforcing[type];
    if (pct >= 100) return true;
    if (pct <= 0) return false;
    return randomBelow(this.deps.random, 100) < pct;
  }

  private eject(m: HostMonitor, type: EjectionType): void {
    const hostCount = Math.max(1, this.deps.hosts().length);
    const active = this.countEjected();
    const percent = (100 * (active + 1)) / hostCount;
    // Envoy ejects at least one host whatever max_ejection_percent says.
    if (percent > this.settings.maxEjectionPercent && active > 0) {
      this.stats.overflow.inc();
      return;
    }
    if (type === 'consecutive_5xx' || type === 'success_rate') this.stats.total.inc();
    if (!this.enforced(type)) return;
    this.stats.enforcedTotal.inc();
    this.stats.enforced[type].inc();
    m.numEjections++;
    m.lastEjectionTime = this.deps.timers.now();
    const { baseEjectionTimeMs: base, maxEjectionTimeMs: max } = this.settings;
    if (m.ejectTimeBackoff * base < max + base) m.ejectTimeBackoff++;
    m.host.ejected = true;
    this.stats.active.set(this.countEjected());
    this.deps.onChange?.();
  }

  private countEjected(): number {
    let n = 0;
    for (const h of this.monitors.keys()) if (h.ejected === true) n++;
    return n;
  }

  private arm(): void {
    if (this.closed) return;
    this.timer = this.deps.timers.setTimeout(() => this.onInterval(), this.settings.intervalMs);
  }

  /** The interval timer: un-ejections, then success-rate and failure-percentage detection. */
  onInterval(): void {
    this.timer = undefined;
    if (this.closed) return;
    const now = this.deps.timers.now();
    const current = new Set(this.deps.hosts());
    let changed = false;
    for (const [host, m] of this.monitors) {
      if (!current.has(host)) {
        this.monitors.delete(host);
        continue;
      }
      if (host.ejected !== true) {
        if (m.ejectTimeBackoff > 0) m.ejectTimeBackoff--;
      } else {
        const { baseEjectionTimeMs: base, maxEjectionTimeMs: max } = this.settings;
        const ejectFor = Math.min(base * m.ejectTimeBackoff, max);
        if (now - (m.lastEjectionTime ?? now) >= ejectFor) {
          host.ejected = false;
          m.resetConsecutive();
          m.lastUnejectionTime = now;
          changed = true;
        }
      }
      m.rotate();
    }
    if (changed) {
      this.stats.active.set(this.countEjected());
      this.deps.onChange?.();
    }
    this.successRateEjections('external');
    if (this.settings.splitExternalLocalOriginErrors) this.successRateEjections('local');
    this.arm();
  }

  /** Envoy's processSuccessRateEjections over the last interval's buckets. */
  private successRateEjections(origin: 'external' | 'local'): void {
    const s = this.settings;
    const hostCount = this.monitors.size;
    if (hostCount < s.successRateMinimumHosts && hostCount < s.failurePercentageMinimumHosts)
      return;
    const sr: { m: HostMonitor; rate: number }[] = [];
    const fp: { m: HostMonitor; rate: number }[] = [];
    let sum = 0;
    for (const m of this.monitors.values()) {
      if (m.host.ejected === true) continue;
      const b = origin === 'external' ? m.lastExt : m.lastLocal;
      if (b.total === 0) continue;
      const rate = (100 * b.success) / b.total;
      if (b.total >= Math.max(s.successRateRequestVolume, 1)) {
        sr.push({ m, rate });
        sum += rate;
      }
      if (b.total >= Math.max(s.failurePercentageRequestVolume, 1)) fp.push({ m, rate });
    }
    if (sr.length > 0 && sr.length >= s.successRateMinimumHosts) {
      const mean = sum / sr.length;
      let variance = 0;
      for (const x of sr) variance += (x.rate - mean) ** 2;
      variance /= sr.length;
      const threshold = mean - (s.successRateStdevFactor / 1000) * Math.sqrt(variance);
      const type: EjectionType =
        origin === 'external' ? 'success_rate' : 'local_origin_success_rate';
      for (const x of sr) {
        if (x.rate >= threshold || x.m.host.ejected === true) continue;
        this.stats.successRateDeprecated.inc();
        this.stats.detected[type].inc();
        this.eject(x.m, type);
      }
    }
    if (fp.length > 0 && fp.length >= s.failurePercentageMinimumHosts) {
      const type: EjectionType =
        origin === 'external' ? 'failure_percentage' : 'failure_percentage_local_origin';
      for (const x of fp) {
        if (100 - x.rate < s.failurePercentageThreshold || x.m.host.ejected === true) continue;
        this.stats.detected[type].inc();
        this.eject(x.m, type);
      }
    }
  }

  /** Stops the timer (the monitors stay usable: a replacing detector adopts them). */
  stop(): void {
    this.closed = true;
    if (this.timer !== undefined) this.deps.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops the detector and un-ejects its hosts (outlier detection removed from the cluster). */
  close(): void {
    this.stop();
    for (const h of this.monitors.keys()) h.ejected = false;
    this.stats.active.set(0);
  }
}
