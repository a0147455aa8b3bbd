// RING_HASH (Envoy's RingHashLoadBalancer, ketama-style consistent hashing): each host is
// placed on a 64-bit ring at xxHash64("<key>_<i>") for i = 0, 1, ... where key is its
// `ip:port`, so that the least-weighted host gets ceil(min_weight × minimum_ring_size) points
// and the others proportionally more (ring size capped by maximum_ring_size). A request goes to
// the first point at or after its hash (wrapping); removing one of N hosts moves only about
// 1/N of the keys. With a retry host predicate, attempt k takes the k-th next point.
import type { Host } from './host-set.js';
import {
  ThreadAwareLoadBalancer,
  type HashTable,
  type NormalizedHostWeight,
} from './thread-aware-lb.js';
import { xxHash64Into } from './xxhash64.js';

export class RingHashLoadBalancer extends ThreadAwareLoadBalancer {
  protected override build(
    weights: readonly NormalizedHostWeight[],
    minWeight: number,
  ): HashTable | undefined {
    const { minimumRingSize, maximumRingSize } = this.settings;
    const scale = Math.min(Math.ceil(minWeight * minimumRingSize) / minWeight, maximumRingSize);
    const ringSize = Math.ceil(scale);
    const his: number[] = [];
    const los: number[] = [];
    const owners: Host[] = [];
    const out = new Uint32Array(2);
    let current = 0;
    let target = 0;
    for (const { host, weight } of weights) {
      const key = `${this.hashKey(host)}_`;
      target += scale * weight;
      for (let i = 0; current < target && owners.length < ringSize + weights.length; i++) {
        xxHash64Into(key + String(i), out);
        his.push(out[0]!);
        los.push(out[1]!);
        owners.push(host);
        current++;
      }
    }
    if (owners.length === 0) return undefined;
    return new Ring(his, los, owners);
  }
}

/** The sorted ring: parallel arrays of hash halves and owners. */
class Ring implements HashTable {
  private readonly hi: Uint32Array;
  private readonly lo: Uint32Array;
  private readonly hosts: Host[];

  constructor(his: number[], los: number[], owners: Host[]) {
    const order = owners.map((_, i) => i);
    order.sort((a, b) => his[a]! - his[b]! || los[a]! - los[b]!);
    this.hi = Uint32Array.from(order, (i) => his[i]!);
    this.lo = Uint32Array.from(order, (i) => los[i]!);
    this.hosts = order.map((i) => owners[i]!);
  }

  get size(): number {
    return this.hosts.length;
  }

  chooseHost(hi: number, lo: number, attempt: number): Host | undefined {
    const n = this.hosts.length;
    // First point whose hash is >= the request's hash, wrapping to the start.
    let low = 0;
    let high = n;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const mh = this.hi[mid]!;
      if (mh < hi || (mh === hi && this.lo[mid]! < lo)) low = mid + 1;
      else high = mid;
    }
    let index = low === n ? 0 : low;
    if (attempt > 0) index = (index + attempt) % n;
    return this.hosts[index];
  }
}
