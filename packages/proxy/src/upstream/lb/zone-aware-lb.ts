// The common part of ROUND_ROBIN, LEAST_REQUEST and RANDOM (Envoy's ZoneAwareLoadBalancerBase):
// pick a priority level by the priority load, fall back to all of the level's hosts in panic
// mode (or to none with fail_traffic_on_panic), pick a locality by weighted round robin over
// effective locality weights when locality weighted balancing is on, then let the concrete
// balancer pick a host from that "host source". State is rebuilt lazily when the host set's
// version changes. `avoid` (retry host predicate) re-runs the choice up to
// hostSelectionRetryCount more times, then keeps the last choice.
import type { Counter } from '../../observability/stats-api.js';
import { EdfScheduler } from './edf-scheduler.js';
import type { Host, LevelView, LocalityView, PrioritySet } from './host-set.js';
import type { LbSettings } from './lb-config.js';
import {
  choosePriority,
  computePriorityLoad,
  levelHealth,
  type PriorityLoad,
} from './priority-load.js';
import { randomBelow, type Random } from './random.js';
import type { LbContext, LoadBalancer } from './types.js';

/** What every balancer gets besides its settings. */
export interface LbDeps {
  readonly random: Random;
  /** Monotonic clock in ms (slow start). */
  readonly now: () => number;
  /** cluster.<name>.lb_healthy_panic, counted per choice made in panic mode. */
  readonly panicCounter?: Counter | undefined;
}

/** Host selection retries when `avoid` is given without a count (Istio configures 5). */
export const DEFAULT_HOST_SELECTION_RETRIES = 5;

/** A list of hosts to pick from, with the balancer's per-list state (Envoy's HostsSource). */
export class HostSource {
  readonly key: string;
  readonly hosts: readonly Host[];
  ready = false;
  /** Weighted schedule (round robin / weighted least request), when weights differ. */
  edf: EdfScheduler<Host> | undefined = undefined;

  constructor(key: string, hosts: readonly Host[]) {
    this.key = key;
    this.hosts = hosts;
  }
}

interface LocalityEntry {
  readonly source: HostSource;
  readonly weight: number;
}

interface LevelState {
  readonly panic: boolean;
  readonly all: HostSource;
  readonly healthy: HostSource;
  readonly degraded: HostSource;
  readonly healthyLocalities: EdfScheduler<LocalityEntry> | undefined;
  readonly degradedLocalities: EdfScheduler<LocalityEntry> | undefined;
}

const localityWeightOf = (e: LocalityEntry): number => e.weight;

export abstract class ZoneAwareLoadBalancer implements LoadBalancer {
  protected readonly hostSet: PrioritySet;
  protected readonly settings: LbSettings;
  protected readonly random: Random;
  protected readonly now: () => number;
  /** Random start offset, like Envoy's per-balancer seed. */
  protected readonly seed: number;
  private readonly panicCounter: Counter | undefined;
  private builtVersion = -1;
  private load: PriorityLoad | undefined;
  private levels: LevelState[] = [];

  constructor(hostSet: PrioritySet, settings: LbSettings, deps: LbDeps) {
    this.hostSet = hostSet;
    this.settings = settings;
    this.random = deps.random;
    this.now = deps.now;
    this.panicCounter = deps.panicCounter;
    this.seed = deps.random.nextUint32();
  }

  /** The current priority load (recomputed if the host set changed). */
  priorityLoad(): PriorityLoad {
    this.refresh();
    return this.load!;
  }

  choose(ctx: LbContext): Host | undefined {
    this.refresh();
    const avoid = ctx.avoid;
    const load = ctx.priorityLoad ? ctx.priorityLoad(this.load!) : this.load!;
    let host = this.chooseOnce(load);
    if (!avoid || !host) return host;
    const retries = ctx.hostSelectionRetryCount ?? DEFAULT_HOST_SELECTION_RETRIES;
    for (let i = 0; i < retries && host && avoid(host); i++) host = this.chooseOnce(load);
    return host;
  }

  /** Picks a host from a non-empty source. */
  protected abstract pick(source: HostSource): Host | undefined;

  /** Prepares a source's state (schedulers) before its first pick. */
  protected abstract initSource(source: HostSource): void;

  private chooseOnce(load: PriorityLoad): Host | undefined {
    const chosen = choosePriority(randomBelow(this.random, 100), load);
    const level = this.levels[chosen >> 1];
    if (!level) return undefined;
    const degraded = (chosen & 1) === 1;
    let source: HostSource;
    if (level.panic) {
      this.panicCounter?.inc();
      // zone_aware_lb_config.fail_traffic_on_panic: no host rather than any host.
      if (this.settings.failTrafficOnPanic) return undefined;
      source = level.all;
    } else {
      const localities = degraded ? level.degradedLocalities : level.healthyLocalities;
      const entry = localities?.pickAndAdd(localityWeightOf);
      source = entry ? entry.source : degraded ? level.degraded : level.healthy;
    }
    if (source.hosts.length === 0) return undefined;
    if (!source.ready) {
      this.initSource(source);
      source.ready = true;
    }
    return this.pick(source);
  }

  private refresh(): void {
    const set = this.hostSet;
    if (this.builtVersion === set.version) return;
    const views = set.levels();
    this.load = computePriorityLoad(
      levelHealth(views, set.weightedPriorityHealth),
      set.overprovisioningFactor,
      this.settings.panicThreshold,
    );
    const panic = this.load.panic;
    this.levels = views.map((view, p) => this.levelState(view, p, panic[p] === true));
    this.builtVersion = set.version;
  }

  private levelState(view: LevelView, p: number, panic: boolean): LevelState {
    const weighted = this.settings.localityWeighted && view.hasLocalityWeights;
    return {
      panic,
      all: new HostSource(`${p}/all`, view.hosts),
      healthy: new HostSource(`${p}/healthy`, view.healthy),
      degraded: new HostSource(`${p}/degraded`, view.degraded),
      healthyLocalities: weighted
        ? this.localityScheduler(view, p, 'healthy', (l) => l.healthy)
        : undefined,
      degradedLocalities: weighted
        ? this.localityScheduler(view, p, 'degraded', (l) => l.degraded)
        : undefined,
    };
  }

  /**
   * Envoy's LocalityWrr: weighted round robin over the localities' effective weights
   * (locality weight × min(1, overprovisioning factor × eligible / hosts)); none when the
   * level has no eligible host or every effective weight is 0.
   */
  private localityScheduler(
    view: LevelView,
    p: number,
    kind: string,
    eligibleOf: (l: LocalityView) => readonly Host[],
  ): EdfScheduler<LocalityEntry> | undefined {
    const factor = this.hostSet.overprovisioningFactor / 100;
    const entries: LocalityEntry[] = [];
    view.localities.forEach((l, i) => {
      const eligible = eligibleOf(l);
      if (l.hosts.length === 0 || eligible.length === 0) return;
      const ratio = Math.min(1, (factor * eligible.length) / l.hosts.length);
      const weight = l.weight * ratio;
      if (weight > 0) {
        entries.push({ source: new HostSource(`${p}/${kind}/${i}`, eligible), weight });
      }
    });
    if (entries.length === 0) return undefined;
    return EdfScheduler.createWithPicks(entries, localityWeightOf, this.seed % entries.length);
  }

  /** Envoy's slow start factor applied to `weight` (1 outside slow start). */
  protected slowStartWeight(weight: number, host: Host): number {
    const slow = this.settings.slowStart;
    if (!slow || host.healthySince === undefined || !host.healthy) return weight;
    const elapsed = this.now() - host.healthySince;
    if (elapsed >= slow.windowMs) return weight;
    const timeFactor = Math.max(1, elapsed) / slow.windowMs;
    const aggressed =
      slow.aggression === 1 ? timeFactor : Math.pow(timeFactor, 1 / slow.aggression);
    return weight * Math.max(aggressed, slow.minWeightFraction);
  }

  /** Whether any host of `hosts` is still within its slow start window. */
  protected anyInSlowStart(hosts: readonly Host[]): boolean {
    const slow = this.settings.slowStart;
    if (!slow) return false;
    const now = this.now();
    return hosts.some(
      (h) => h.healthySince !== undefined && h.healthy && now - h.healthySince < slow.windowMs,
    );
  }
}

/** Whether all hosts have the same load_balancing_weight. */
export function weightsAreEqual(hosts: readonly Host[]): boolean {
  const first = hosts[0];
  if (!first) return true;
  for (const h of hosts) if (h.weight !== first.weight) return false;
  return true;
}
