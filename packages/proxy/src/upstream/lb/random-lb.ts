// RANDOM (Envoy's RandomLoadBalancer): a uniformly random host of the chosen host source.
// Like Envoy, endpoint weights are not used (priority and locality weights still apply).
import type { Host } from './host-set.js';
import { randomBelow } from './random.js';
import { ZoneAwareLoadBalancer, type HostSource } from './zone-aware-lb.js';

export class RandomLoadBalancer extends ZoneAwareLoadBalancer {
  protected override initSource(): void {}

  protected override pick(source: HostSource): Host | undefined {
    return source.hosts[randomBelow(this.random, source.hosts.length)];
  }
}
