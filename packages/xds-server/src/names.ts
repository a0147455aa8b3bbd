// Resource names shared between streams. The proxies of a mesh mostly subscribe to the same
// names (every sidecar of a namespace asks for the same 3,000 EDS clusters), so identical
// subscriptions are kept once: one set, one sorted array and one string per name, shared by
// every stream that holds them, instead of a copy per proxy.
import { createHash } from 'node:crypto';

/** An immutable set of resource names, shared by every stream subscribed to exactly these. */
export interface NameSet {
  readonly set: ReadonlySet<string>;
  /** The same names, sorted (a stable array: sources may remember facts about it). */
  readonly sorted: readonly string[];
}

export const NO_NAMES: NameSet = { set: new Set(), sorted: [] };

/** Resource names seen in subscriptions, one string object per name (bounded). */
const interned = new Map<string, string>();
const MAX_INTERNED = 1_000_000;

/** The one string object kept for this name. */
export function internName(name: string): string {
  const known = interned.get(name);
  if (known !== undefined) return known;
  if (interned.size < MAX_INTERNED) interned.set(name, name);
  return name;
}

/** Name sets in use, by a digest of their sorted names; held weakly (dropped with their streams). */
const shared = new Map<string, WeakRef<NameSet>>();
const dropShared = new FinalizationRegistry<string>((key) => {
  if (shared.get(key)?.deref() === undefined) shared.delete(key);
});

function sameArray(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The shared NameSet holding exactly `names` (duplicates ignored). */
export function shareNames(names: Iterable<string>): NameSet {
  const sorted = [...new Set(names)].map(internName).sort();
  if (sorted.length === 0) return NO_NAMES;
  const key = createHash('sha256').update(sorted.join('\0')).digest('base64');
  const known = shared.get(key)?.deref();
  if (known && sameArray(known.sorted, sorted)) return known;
  const ns: NameSet = { set: new Set(sorted), sorted };
  shared.set(key, new WeakRef(ns));
  dropShared.register(ns, key);
  return ns;
}

/** Number of distinct name sets in use (for tests). */
export function sharedNameSets(): number {
  let n = 0;
  for (const r of shared.values()) if (r.deref() !== undefined) n++;
  return n;
}
