// Counters and a push-time histogram, shaped for Prometheus exposition later.

/** A cumulative histogram with fixed upper bounds (milliseconds). */
export class Histogram {
  readonly bounds: readonly number[];
  readonly counts: number[];
  count = 0;
  sum = 0;
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = bounds.map(() => 0);
  }
  observe(value: number): void {
    this.count++;
    this.sum += value;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= (this.bounds[i] as number)) (this.counts[i] as number)++;
    }
  }
  /** Counts per bucket as Prometheus `le` pairs (cumulative), plus +Inf. */
  buckets(): { le: number; count: number }[] {
    return [
      ...this.bounds.map((le, i) => ({ le, count: this.counts[i] ?? 0 })),
      { le: Infinity, count: this.count },
    ];
  }
}

/** Default push-time buckets in milliseconds. */
export const PUSH_TIME_BUCKETS_MS: readonly number[] = [
  1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
];

/** Counters of the xDS server (by type short name where it matters). */
export class XdsStats {
  /** Responses sent, by type URL. */
  readonly pushes = new Map<string, number>();
  /** NACKs received, by type URL. */
  readonly nacks = new Map<string, number>();
  /** ACKs received, by type URL. */
  readonly acks = new Map<string, number>();
  /** Requests ignored because their nonce was stale. */
  staleNonces = 0;
  /** Streams refused (malformed node, missing type URL...). */
  rejectedStreams = 0;
  /** Errors thrown by the resource source. */
  sourceErrors = 0;
  /** Time from a push (or request) to its response being written, in ms. */
  readonly pushTime: Histogram;
  constructor(buckets: readonly number[] = PUSH_TIME_BUCKETS_MS) {
    this.pushTime = new Histogram(buckets);
  }
  /** Increments a counter of a map. */
  static bump(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}
