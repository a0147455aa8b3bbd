// Persistent (copy-on-write) collections for snapshots derived from their predecessor: a map
// whose edits copy only what changed, and sorted arrays patched by one merge. A derived snapshot
// shares everything unchanged with the one it came from; neither is ever mutated, so both stay
// valid (translation may still be reading the older one).

/** Marks a key deleted in a layer. */
const GONE: unique symbol = Symbol('gone');

const NO_DELTA: ReadonlyMap<unknown, never> = new Map<unknown, never>();

/**
 * An immutable map: a shared base map plus a small layer of changes. `with` copies the layer,
 * not the base; when the layer grows too large, it is folded into a new base, so lookups stay
 * two map reads and an edit costs O(sqrt(size)) amortised.
 */
export class LayeredMap<K, V> {
  readonly #base: ReadonlyMap<K, V>;
  readonly #delta: ReadonlyMap<K, V | typeof GONE>;
  /** Number of keys. */
  readonly size: number;

  private constructor(
    base: ReadonlyMap<K, V>,
    delta: ReadonlyMap<K, V | typeof GONE>,
    size: number,
  ) {
    this.#base = base;
    this.#delta = delta;
    this.size = size;
    Object.freeze(this);
  }

  /** A map over `entries`, which it takes over: the caller must not change it afterwards. */
  static of<K, V>(entries: Map<K, V>): LayeredMap<K, V> {
    return new LayeredMap<K, V>(entries, NO_DELTA as ReadonlyMap<K, never>, entries.size);
  }

  static empty<K, V>(): LayeredMap<K, V> {
    return new LayeredMap<K, V>(new Map(), NO_DELTA as ReadonlyMap<K, never>, 0);
  }

  get(key: K): V | undefined {
    const d = this.#delta.get(key);
    if (d !== undefined) return d === GONE ? undefined : d;
    return this.#base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** Every entry (base order, then keys added in layers). */
  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.#base) {
      const d = this.#delta.get(k);
      if (d === undefined) yield [k, v];
      else if (d !== GONE) yield [k, d];
    }
    for (const [k, d] of this.#delta) if (d !== GONE && !this.#base.has(k)) yield [k, d];
  }

  /** A copy with `edits` applied: a value sets its key, `undefined` deletes it. */
  with(edits: ReadonlyMap<K, V | undefined>): LayeredMap<K, V> {
    if (edits.size === 0) return this;
    const delta = new Map(this.#delta);
    let size = this.size;
    for (const [k, v] of edits) {
      const had = this.get(k) !== undefined;
      if (v === undefined) {
        if (had) size--;
        if (this.#base.has(k)) delta.set(k, GONE);
        else delta.delete(k);
      } else {
        if (!had) size++;
        if (this.#base.get(k) === v) delta.delete(k);
        else delta.set(k, v);
      }
    }
    // Folding costs O(base): doing it when the layer reaches ~2·sqrt(base) keeps both the layer
    // copies and the folds at O(sqrt(base)) per edit.
    if (delta.size <= 16 + 2 * Math.sqrt(this.#base.size))
      return new LayeredMap(this.#base, delta, size);
    const base = new Map(this.#base);
    for (const [k, d] of delta) {
      if (d === GONE) base.delete(k);
      else base.set(k, d);
    }
    return new LayeredMap<K, V>(base, NO_DELTA as ReadonlyMap<K, never>, size);
  }
}

/**
 * Pending edits of a `LayeredMap`: reads see them, `done` applies them all at once.
 */
export class MapEditor<K, V> {
  readonly #edits = new Map<K, V | undefined>();

  constructor(private readonly map: LayeredMap<K, V>) {}

  get(key: K): V | undefined {
    return this.#edits.has(key) ? this.#edits.get(key) : this.map.get(key);
  }

  set(key: K, value: V | undefined): void {
    this.#edits.set(key, value);
  }

  get changed(): boolean {
    return this.#edits.size > 0;
  }

  done(): LayeredMap<K, V> {
    return this.map.with(this.#edits);
  }
}

/** `a < b ? -1 : a > b ? 1 : 0` (UTF-16 code unit order, as `Array.prototype.sort`). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The first index of `items[from..]` whose key is not below `key` (items sorted by key).
 */
export function lowerBound<T>(
  items: readonly T[],
  key: string,
  keyOf: (item: T) => string,
  from = 0,
): number {
  let lo = from;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(items[mid]!) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * `items` (sorted by `keyOf`, keys unique) with `edits` applied: an edit's value replaces the
 * item of its key or is inserted in order; `undefined` removes the item. One pass: O(n + m log n).
 * Returns `items` itself when nothing changes.
 */
export function patchSorted<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  edits: ReadonlyMap<string, T | undefined>,
): readonly T[] {
  if (edits.size === 0) return items;
  const keys = [...edits.keys()].sort(compareStrings);
  const out: T[] = [];
  let i = 0;
  let changed = false;
  for (const key of keys) {
    const pos = lowerBound(items, key, keyOf, i);
    for (; i < pos; i++) out.push(items[i]!);
    const value = edits.get(key);
    const hit = pos < items.length && keyOf(items[pos]!) === key;
    if (hit) {
      i = pos + 1;
      if (value !== items[pos]) changed = true;
    } else if (value !== undefined) changed = true;
    if (value !== undefined) out.push(value);
  }
  for (; i < items.length; i++) out.push(items[i]!);
  return changed ? out : items;
}

/** Whether two lists hold the same references in the same order. */
export function sameRefs(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
