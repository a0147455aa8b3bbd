// LEAST_REQUEST (Envoy's LeastRequestLoadBalancer). Equal weights: power of N choices (N =
// choice_count, default 2): sample N hosts at random (with replacement) and keep the one with
// the fewest active requests (the first sampled wins ties). Different weights: an EDF schedule
// whose weights are recomputed at each pick as
// `load_balancing_weight / (active_requests + 1)^active_request_bias` (bias default 1.0).
import { EdfScheduler } from './edf-scheduler.js';
import type { Host } from './host-set.js';
import { randomBelow } from './random.js';
import { ZoneAwareLoadBalancer, weightsAreEqual, type HostSource } from './zone-aware-lb.js';

export class LeastRequestLoadBalancer extends ZoneAwareLoadBalancer {
  private readonly weightOf = (h: Host): number => {
    const bias = this.settings.activeRequestBias;
    let w = h.weight;
    if (bias === 1) w = w / (h.activeRequests + 1);
    else if (bias !== 0) w = w / Math.pow(h.activeRequests + 1, bias);
    return this.slowStartWeight(w, h);
  };

  protected override initSource(source: HostSource): void {
    const hosts = source.hosts;
    if (hosts.length <= 1) return;
    if (weightsAreEqual(hosts) && !this.anyInSlowStart(hosts)) return;
    source.edf = EdfScheduler.createWithPicks(hosts, this.weightOf, this.seed % hosts.length);
  }

  protected override pick(source: HostSource): Host | undefined {
    if (source.edf) return source.edf.pickAndAdd(this.weightOf);
    const hosts = source.hosts;
    const n = hosts.length;
    let candidate: Host | undefined;
    for (let i = 0; i < this.settings.choiceCount; i++) {
      const sampled = hosts[randomBelow(this.random, n)]!;
      if (candidate === undefined || sampled.activeRequests < candidate.activeRequests) {
        candidate = sampled;
      }
    }
    return candidate;
  }
}
