// MAGLEV (Envoy's MaglevLoadBalancer, from Google's Maglev paper): a lookup table of prime size
// M (table_size, default 65537) filled by letting hosts, sorted by key, take turns claiming the
// next free slot of their own permutation (offset = xxHash64(key) % M, skip =
// xxHash64(key, seed 1) % (M - 1) + 1); a host whose normalized weight is w claims a slot on
// w / max_weight of the turns. A request goes to table[hash % M]: near-perfect balance by
// weight and little remapping when hosts change. With a retry host predicate, attempt k
// xors the hash with 2^64 - k, as Envoy does.
import type { Host } from './host-set.js';
import {
  ThreadAwareLoadBalancer,
  type HashTable,
  type NormalizedHostWeight,
} from './thread-aware-lb.js';
import { xxHash64Into } from './xxhash64.js';

interface BuildEntry {
  readonly key: string;
  readonly host: Host;
  readonly offset: number;
  readonly skip: number;
  readonly weight: number;
  targetWeight: number;
  next: number;
}

export class MaglevLoadBalancer extends ThreadAwareLoadBalancer {
  protected override build(
    weights: readonly NormalizedHostWeight[],
    _minWeight: number,
    maxWeight: number,
  ): HashTable | undefined {
    const size = this.settings.maglevTableSize;
    const out = new Uint32Array(2);
    const entries: BuildEntry[] = weights.map(({ host, weight }) => {
      const key = this.hashKey(host);
      xxHash64Into(key, out, 0);
      const offset = mod64(out[0]!, out[1]!, size);
      xxHash64Into(key, out, 1);
      const skip = mod64(out[0]!, out[1]!, size - 1) + 1;
      return { key, host, offset, skip, weight, targetWeight: 0, next: 0 };
    });
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const table = new Array<Host | undefined>(size).fill(undefined);
    let filled = 0;
    for (let iteration = 1; filled < size; iteration++) {
      for (let i = 0; i < entries.length && filled < size; i++) {
        const e = entries[i]!;
        if (iteration * e.weight < e.targetWeight) continue;
        e.targetWeight += maxWeight;
        let c = (e.offset + e.skip * e.next) % size;
        while (table[c] !== undefined) {
          e.next++;
          c = (e.offset + e.skip * e.next) % size;
        }
        table[c] = e.host;
        e.next++;
        filled++;
      }
    }
    return new MaglevTable(table as Host[]);
  }
}

class MaglevTable implements HashTable {
  private readonly table: Host[];

  constructor(table: Host[]) {
    this.table = table;
  }

  chooseHost(hi: number, lo: number, attempt: number): Host | undefined {
    if (attempt > 0) {
      // hash ^= ~0ULL - attempt + 1, i.e. 2^64 - attempt.
      hi = (hi ^ 0xffff_ffff) >>> 0;
      lo = (lo ^ ((0x1_0000_0000 - attempt) >>> 0)) >>> 0;
    }
    return this.table[mod64(hi, lo, this.table.length)];
  }
}

/** (hi × 2^32 + lo) mod m, for m < 2^26. */
function mod64(hi: number, lo: number, m: number): number {
  return ((hi % m) * (0x1_0000_0000 % m) + (lo % m)) % m;
}
