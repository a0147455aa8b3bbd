// ROUND_ROBIN (Envoy's RoundRobinLoadBalancer): plain rotation when all weights are equal,
// otherwise an EDF schedule over load_balancing_weight (smooth weighted round robin: over
// every cycle of Σweights picks each host is picked exactly `weight` times). Rotation indexes
// survive host set changes; schedules start at a random offset.
import { EdfScheduler } from './edf-scheduler.js';
import type { Host } from './host-set.js';
import { ZoneAwareLoadBalancer, weightsAreEqual, type HostSource } from './zone-aware-lb.js';

export class RoundRobinLoadBalancer extends ZoneAwareLoadBalancer {
  private readonly rrIndexes = new Map<string, number>();
  private readonly weightOf = (h: Host): number => this.slowStartWeight(h.weight, h);

  protected override initSource(source: HostSource): void {
    if (!this.rrIndexes.has(source.key)) this.rrIndexes.set(source.key, this.seed);
    const hosts = source.hosts;
    if (hosts.length <= 1) return;
    if (weightsAreEqual(hosts) && !this.anyInSlowStart(hosts)) return;
    source.edf = EdfScheduler.createWithPicks(hosts, this.weightOf, this.seed % hosts.length);
  }

  protected override pick(source: HostSource): Host | undefined {
    if (source.edf) return source.edf.pickAndAdd(this.weightOf);
    const i = this.rrIndexes.get(source.key) ?? 0;
    this.rrIndexes.set(source.key, (i + 1) >>> 0);
    return source.hosts[i % source.hosts.length];
  }
}
