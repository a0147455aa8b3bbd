// Label selection: Istio's `labels.Instance.SubsetOf` (every selector label present with the
// same value; an empty selector selects everything) and an index that finds the workloads a
// selector picks without scanning every workload of a namespace.
import type { Labels } from './model.js';

/** Whether every `selector` label is in `labels` with the same value. */
export function selectsLabels(selector: Labels, labels: Labels): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Whether two label sets are equal (absent counts as empty). */
export function labelsEqual(a: Labels | undefined, b: Labels | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => b?.[k] === a?.[k]);
}

/**
 * Items of one namespace indexed by `key=value`, so that a selector costs the size of its
 * rarest label rather than the size of the namespace.
 */
export class LabelIndex<T> {
  private readonly all = new Map<string, T[]>();
  private readonly byLabel = new Map<string, T[]>();

  constructor(private readonly labelsOf: (item: T) => Labels) {}

  add(namespace: string, item: T): void {
    push(this.all, namespace, item);
    const labels = this.labelsOf(item);
    for (const k in labels) push(this.byLabel, `${namespace}\u0000${k}=${labels[k]}`, item);
  }

  /** The items of `namespace` whose labels include every selector label, in insertion order. */
  select(namespace: string, selector: Labels): readonly T[] {
    let smallest: readonly T[] | undefined = this.all.get(namespace);
    if (!smallest) return [];
    for (const k in selector) {
      const posting = this.byLabel.get(`${namespace}\u0000${k}=${selector[k]}`);
      if (!posting) return [];
      if (posting.length < smallest.length) smallest = posting;
    }
    return smallest.filter((item) => selectsLabels(selector, this.labelsOf(item)));
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
