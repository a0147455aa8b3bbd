// Earliest Deadline First scheduler, Envoy's weighted round-robin building block
// (source/common/upstream/edf_scheduler.h): each entry's next deadline is the scheduler's current
// time + 1/weight; the earliest deadline is picked (ties go to the entry added first), which
// gives smooth weighted round robin with floating-point weights and O(log n) picks.

interface EdfEntry<T> {
  deadline: number;
  order: number;
  item: T;
}

export class EdfScheduler<T> {
  private readonly heap: EdfEntry<T>[] = [];
  private currentTime = 0;
  private orderOffset = 0;

  /**
   * A scheduler holding `items`, advanced by `picks` picks (Envoy randomizes the starting point
   * so that proxies do not all start on the same host).
   */
  static createWithPicks<T>(
    items: readonly T[],
    weightOf: (item: T) => number,
    picks: number,
  ): EdfScheduler<T> {
    const s = new EdfScheduler<T>();
    for (const item of items) s.add(weightOf(item), item);
    for (let i = 0; i < picks; i++) s.pickAndAdd(weightOf);
    return s;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Inserts `item` with deadline current time + 1/weight (weight must be > 0). */
  add(weight: number, item: T): void {
    const w = weight > 0 && Number.isFinite(weight) ? weight : Number.MIN_VALUE;
    const entry: EdfEntry<T> = {
      deadline: this.currentTime + 1 / w,
      order: this.orderOffset++,
      item,
    };
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  /** Picks the entry with the earliest deadline and re-adds it with its current weight. */
  pickAndAdd(weightOf: (item: T) => number): T | undefined {
    const top = this.pop();
    if (top === undefined) return undefined;
    this.currentTime = top.deadline;
    this.add(weightOf(top.item), top.item);
    return top.item;
  }

  private pop(): EdfEntry<T> | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const n = heap.length;
    let i = 0;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && before(heap[r]!, heap[l]!)) c = r;
      const child = heap[c]!;
      if (!before(child, last)) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = last;
    return top;
  }
}

function before<T>(a: EdfEntry<T>, b: EdfEntry<T>): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order);
}
