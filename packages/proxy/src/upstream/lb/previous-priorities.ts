// Envoy's previous_priorities retry priority (envoy.retry_priorities.previous_priorities, what
// Istio's `retries.retryRemoteLocalities` configures): retries move away from the priority
// levels already tried. Every `updateFrequency` attempts the priorities of the hosts tried so far
// are excluded and the load is spread again over the levels left, in proportion to their
// health (the balancer's overprovisioned health and degraded availability), higher priorities
// first. When no level is left with available hosts, the exclusions are forgotten and the
// balancer's own load applies again. Panic flags stay the balancer's.
import type { PriorityLoad } from './priority-load.js';

export class PreviousPriorities {
  /** The priority of each host tried, in order. */
  private attempted: number[] = [];
  private excluded: boolean[] = [];
  /** The load of the last update, undefined when the balancer's own load applies. */
  private adjusted: PriorityLoad | undefined;

  constructor(readonly updateFrequency: number) {}

  /** Notes the priority level of a host an attempt went to. */
  onHostAttempted(priority: number): void {
    this.attempted.push(priority);
  }

  /** The load to choose the next host with, given the balancer's. */
  load(original: PriorityLoad): PriorityLoad {
    const n = this.attempted.length;
    if (n < this.updateFrequency) return original;
    if (n % this.updateFrequency === 0) {
      for (const p of this.attempted) this.excluded[p] = true;
      this.adjusted = this.spread(original);
    }
    return this.adjusted ?? original;
  }

  /** The load over the levels not excluded; undefined when none of them is available. */
  private spread(original: PriorityLoad): PriorityLoad | undefined {
    const levels = original.health.length;
    const health = new Array<number>(levels).fill(0);
    const degraded = new Array<number>(levels).fill(0);
    let available = 0;
    for (let p = 0; p < levels; p++) {
      if (this.excluded[p] === true) continue;
      health[p] = original.health[p] ?? 0;
      degraded[p] = original.degradedAvailability[p] ?? 0;
      available += health[p]! + degraded[p]!;
    }
    available = Math.min(available, 100);
    if (available === 0) {
      // Every level with hosts has been tried: start over with the balancer's load.
      this.excluded = [];
      this.attempted = [];
      return undefined;
    }
    const healthy = new Array<number>(levels).fill(0);
    const degradedLoad = new Array<number>(levels).fill(0);
    // Each pass gives every level its share of what is left (rounded down), highest priority
    // first, healthy hosts before degraded ones, until the 100% are given out.
    let left = 100;
    while (left > 0) {
      for (let p = 0; p < levels && left > 0; p++) {
        const d = Math.min(left, Math.floor((health[p]! * 100) / available));
        healthy[p]! += d;
        left -= d;
      }
      for (let p = 0; p < levels && left > 0; p++) {
        const d = Math.min(left, Math.floor((degraded[p]! * 100) / available));
        degradedLoad[p]! += d;
        left -= d;
      }
    }
    return { ...original, healthy, degraded: degradedLoad };
  }
}
