// The common part of RING_HASH and MAGLEV (Envoy's ThreadAwareLoadBalancerBase): per priority
// level, host weights (times effective locality weights when locality weighted balancing is on)
// are normalized to sum to 1 over the level's healthy hosts (all hosts in panic mode) and a lookup
// structure is built from them; a request's 64-bit hash picks the priority (hash % 100 against
// the priority load) and then the host. Without a hash a random one is used. `avoid` asks the
// structure for alternative hosts (attempt 1, 2, ...) and then keeps the last choice.
// Two departures from Envoy's code, towards its documented semantics and our other balancers:
// locality shares are effective weights (Envoy's hashing balancers use the raw ones), and when
// the priority load sends the hash to a level's degraded hosts, a second structure built over
// them answers (Envoy's only covers healthy hosts and so finds no host there).
import type { Counter } from '../../observability/stats-api.js';
import {
  DEFAULT_OVERPROVISIONING_FACTOR,
  type Host,
  type LevelView,
  type PrioritySet,
} from './host-set.js';
import type { LbSettings } from './lb-config.js';
import {
  choosePriority,
  computePriorityLoad,
  levelHealth,
  type PriorityLoad,
} from './priority-load.js';
import type { Random } from './random.js';
import type { LbContext, LoadBalancer } from './types.js';
import { DEFAULT_HOST_SELECTION_RETRIES, type LbDeps } from './zone-aware-lb.js';

/** A host with its weight normalized within the level. */
export interface NormalizedHostWeight {
  readonly host: Host;
  readonly weight: number;
}

/** A built ring or table. */
export interface HashTable {
  /** The host for the 64-bit hash (hi, lo); `attempt` > 0 asks for an alternative. */
  chooseHost(hi: number, lo: number, attempt: number): Host | undefined;
}

/** The lookup structures of one level. */
interface LevelTables {
  /** Over the healthy hosts (every host in panic mode). */
  readonly main: HashTable | undefined;
  /** Over the degraded hosts, when the level has some and is not in panic. */
  readonly degraded: HashTable | undefined;
}

const MASK32 = 0xffff_ffffn;
const TWO32_MOD_100 = 96; // 2^32 % 100

export abstract class ThreadAwareLoadBalancer implements LoadBalancer {
  protected readonly hostSet: PrioritySet;
  protected readonly settings: LbSettings;
  private readonly random: Random;
  private readonly panicCounter: Counter | undefined;
  private builtVersion = -1;
  private load: PriorityLoad | undefined;
  private tables: LevelTables[] = [];

  constructor(hostSet: PrioritySet, settings: LbSettings, deps: LbDeps) {
    this.hostSet = hostSet;
    this.settings = settings;
    this.random = deps.random;
    this.panicCounter = deps.panicCounter;
  }

  /** The current priority load (recomputed if the host set changed). */
  priorityLoad(): PriorityLoad {
    this.refresh();
    return this.load!;
  }

  choose(ctx: LbContext): Host | undefined {
    this.refresh();
    let hi: number;
    let lo: number;
    if (ctx.hash !== undefined) {
      const h = BigInt.asUintN(64, ctx.hash);
      hi = Number(h >> 32n);
      lo = Number(h & MASK32);
    } else {
      hi = this.random.nextUint32();
      lo = this.random.nextUint32();
    }
    const load = ctx.priorityLoad ? ctx.priorityLoad(this.load!) : this.load!;
    const chosen = choosePriority(((hi % 100) * TWO32_MOD_100 + (lo % 100)) % 100, load);
    const priority = chosen >> 1;
    if (load.panic[priority] === true) this.panicCounter?.inc();
    const tables = this.tables[priority];
    // A level in panic answers from all of its hosts, whichever of its loads was chosen.
    const table = ((chosen & 1) === 1 ? tables?.degraded : undefined) ?? tables?.main;
    if (!table) return undefined;
    let host = table.chooseHost(hi, lo, 0);
    const avoid = ctx.avoid;
    if (!avoid || !host) return host;
    const retries = ctx.hostSelectionRetryCount ?? DEFAULT_HOST_SELECTION_RETRIES;
    for (let attempt = 1; attempt <= retries && host && avoid(host); attempt++) {
      host = table.chooseHost(hi, lo, attempt);
    }
    return host;
  }

  /** Builds the lookup structure of one level (undefined when there is nothing to choose). */
  protected abstract build(
    weights: readonly NormalizedHostWeight[],
    minWeight: number,
    maxWeight: number,
  ): HashTable | undefined;

  /** The key a host is placed by: metadata envoy.lb hash_key, else hostname or `ip:port`. */
  protected hashKey(host: Host): string {
    const key = host.metadata['envoy.lb']?.['hash_key'];
    if (typeof key === 'string' && key !== '') return key;
    if (this.settings.useHostnameForHashing && host.hostname) return host.hostname;
    return host.id;
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
    const weighted = this.settings.localityWeighted;
    const factor = set.overprovisioningFactor;
    this.tables = views.map((view, p) => {
      const inPanic = panic[p] === true;
      return {
        main: this.table(normalizeWeights(view, inPanic ? 'all' : 'healthy', weighted, factor)),
        degraded:
          inPanic || view.degraded.length === 0
            ? undefined
            : this.table(normalizeWeights(view, 'degraded', weighted, factor)),
      };
    });
    this.builtVersion = set.version;
  }

  private table(weights: readonly NormalizedHostWeight[]): HashTable | undefined {
    if (weights.length === 0) return undefined;
    let min = 1;
    let max = 0;
    for (const w of weights) {
      if (w.weight < min) min = w.weight;
      if (w.weight > max) max = w.weight;
    }
    return this.build(weights, min, max);
  }
}

/** Which hosts of a level a lookup structure is built over. */
export type HostSelection = 'all' | 'healthy' | 'degraded';

/**
 * Envoy's normalizeWeights: host weights (× locality weights) over the level, summing to ≤ 1.
 * With locality weights, a locality's share is its effective weight — weight × min(1,
 * overprovisioning factor × eligible hosts / hosts), as the locality weighted balancing docs
 * define it and the other balancers pick localities — over the sum of the level's locality
 * weights (in panic mode, where every host is eligible, the plain weights); an unavailable
 * locality's share stays unused, so the others keep their relative weights.
 */
export function normalizeWeights(
  view: LevelView,
  selection: HostSelection,
  localityWeighted: boolean,
  overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR,
): NormalizedHostWeight[] {
  const out: NormalizedHostWeight[] = [];
  const addHosts = (hosts: readonly Host[], scale: number): void => {
    let sum = 0;
    for (const h of hosts) sum += h.weight;
    if (sum === 0) return;
    for (const h of hosts) out.push({ host: h, weight: (h.weight * scale) / sum });
  };
  const of = (v: {
    hosts: readonly Host[];
    healthy: readonly Host[];
    degraded: readonly Host[];
  }) => (selection === 'all' ? v.hosts : selection === 'healthy' ? v.healthy : v.degraded);
  if (!localityWeighted || !view.hasLocalityWeights) {
    addHosts(of(view), 1);
    return out;
  }
  let total = 0;
  for (const l of view.localities) total += l.weight;
  if (total === 0) return out;
  for (const l of view.localities) {
    const eligible = of(l);
    if (l.weight === 0 || eligible.length === 0) continue;
    const ratio = Math.min(1, ((overprovisioningFactor / 100) * eligible.length) / l.hosts.length);
    addHosts(eligible, (l.weight * ratio) / total);
  }
  return out;
}
