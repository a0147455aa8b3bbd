// Envoy's priority load computation (LoadBalancerBase::recalculatePerPriorityState and
// recalculatePerPriorityPanic): each level's health is min(100, overprovisioning factor ×
// healthy / total), the levels take load in priority order, scaled up when their sum (the
// normalized total availability) is below 100, degraded hosts take what healthy ones cannot,
// and a level below the panic threshold balances over all its hosts. Integer arithmetic as in
// Envoy, so the loads are exactly Envoy's.
import type { LevelView } from './host-set.js';
import type { PriorityLoad } from './types.js';

export type { PriorityLoad } from './types.js';

/** Health counts of one priority level. */
export interface LevelHealth {
  /** Hosts (or their total weight when weighted_priority_health). */
  readonly total: number;
  readonly healthy: number;
  readonly degraded: number;
  /** Host counts regardless of weighting (panic mode looks at these). */
  readonly hostCount: number;
  readonly healthyCount: number;
  readonly degradedCount: number;
}

/** Counts per level from a host set's views (host counts, or weights when weighted). */
export function levelHealth(levels: readonly LevelView[], weighted: boolean): LevelHealth[] {
  const sum = (hosts: readonly { weight: number }[]): number =>
    weighted ? hosts.reduce((a, h) => a + h.weight, 0) : hosts.length;
  return levels.map((l) => ({
    total: sum(l.hosts),
    healthy: sum(l.healthy),
    degraded: sum(l.degraded),
    hostCount: l.hosts.length,
    healthyCount: l.healthy.length,
    degradedCount: l.degraded.length,
  }));
}

/**
 * Computes the priority load. `panicThreshold` is common_lb_config.healthy_panic_threshold in
 * percent (default 50; 0 disables panic mode).
 */
export function computePriorityLoad(
  levels: readonly LevelHealth[],
  overprovisioningFactor: number,
  panicThreshold: number,
): PriorityLoad {
  const n = Math.max(levels.length, 1);
  const health = new Array<number>(n).fill(0);
  const degradedAvail = new Array<number>(n).fill(0);
  const healthyLoad = new Array<number>(n).fill(0);
  const degradedLoad = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);

  levels.forEach((l, i) => {
    if (l.total > 0) {
      health[i] = Math.min(100, Math.floor((overprovisioningFactor * l.healthy) / l.total));
      degradedAvail[i] = Math.min(100, Math.floor((overprovisioningFactor * l.degraded) / l.total));
    }
  });
  const normalizedTotal = Math.min(100, sum(health) + sum(degradedAvail));

  if (normalizedTotal > 0) {
    const [firstHealthy, remainingAfterHealthy] = distribute(
      healthyLoad,
      health,
      100,
      normalizedTotal,
    );
    const [firstDegraded, remaining] = distribute(
      degradedLoad,
      degradedAvail,
      remainingAfterHealthy,
      normalizedTotal,
    );
    // Rounding leftovers go to the first available level.
    if (remaining !== 0) {
      if (firstHealthy >= 0) healthyLoad[firstHealthy]! += remaining;
      else if (firstDegraded >= 0) degradedLoad[firstDegraded]! += remaining;
    }
  }

  const threshold = Math.min(100, Math.max(0, panicThreshold));
  if (threshold === 0 && normalizedTotal === 0) {
    // Panic disabled and nothing available: P0 gets the (undeliverable) load.
    healthyLoad[0] = 100;
    return {
      healthy: healthyLoad,
      degraded: degradedLoad,
      panic,
      health,
      degradedAvailability: degradedAvail,
    };
  }

  let totalPanic = true;
  for (let i = 0; i < n; i++) {
    const l = levels[i];
    // Never panic while the normalized total health is 100%.
    panic[i] = normalizedTotal === 100 ? false : inPanic(l, threshold);
    totalPanic &&= panic[i]!;
  }

  if (totalPanic) {
    // Every level in panic: split the load by host count, regardless of health.
    const totalHosts = levels.reduce((a, l) => a + l.hostCount, 0);
    healthyLoad.fill(0);
    degradedLoad.fill(0);
    if (totalHosts === 0) {
      healthyLoad[0] = 100;
    } else {
      let left = 100;
      let firstNonEmpty = -1;
      levels.forEach((l, i) => {
        if (firstNonEmpty < 0 && l.hostCount > 0) firstNonEmpty = i;
        const load = Math.floor((100 * l.hostCount) / totalHosts);
        healthyLoad[i] = load;
        left -= load;
      });
      healthyLoad[firstNonEmpty]! += left;
    }
  }
  return {
    healthy: healthyLoad,
    degraded: degradedLoad,
    panic,
    health,
    degradedAvailability: degradedAvail,
  };
}

/** Envoy's isHostSetInPanic: (healthy + degraded) % of the level's hosts below the threshold. */
function inPanic(l: LevelHealth | undefined, threshold: number): boolean {
  if (!l || l.hostCount === 0) return 0 < threshold;
  // Envoy counts hosts here even when weighted_priority_health is on.
  const pct = (100 * l.healthyCount) / l.hostCount + (100 * l.degradedCount) / l.hostCount;
  return pct < threshold;
}

function distribute(
  load: number[],
  availability: readonly number[],
  total: number,
  normalizedTotal: number,
): [number, number] {
  let first = -1;
  let left = total;
  for (let i = 0; i < availability.length; i++) {
    const a = availability[i]!;
    if (first < 0 && a > 0) first = i;
    const l = Math.min(left, Math.floor((a * 100) / normalizedTotal));
    load[i] = l;
    left -= l;
  }
  return [first, left];
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/**
 * Envoy's choosePriority: `hash % 100 + 1` walks the healthy loads, then the degraded ones.
 * `h100` is a value in [0, 100). Returns `priority * 2`, plus 1 when the degraded hosts of that
 * priority were chosen (no allocation on the hot path).
 */
export function choosePriority(h100: number, load: PriorityLoad): number {
  const h = h100 + 1;
  let aggregate = 0;
  const healthy = load.healthy;
  for (let p = 0; p < healthy.length; p++) {
    aggregate += healthy[p]!;
    if (h <= aggregate) return p * 2;
  }
  const degraded = load.degraded;
  for (let p = 0; p < degraded.length; p++) {
    aggregate += degraded[p]!;
    if (h <= aggregate) return p * 2 + 1;
  }
  return 0;
}
