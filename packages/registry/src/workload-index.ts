// The workloads of a registry, indexed the ways service builders look them up: by name, by
// label selector within a namespace, and by address (EndpointSlice endpoints). Immutable and
// persistent: `with` returns a new index that shares every list a change does not touch, so a
// registry derived from its predecessor pays only for the workloads that changed.
import { selectsLabels } from './labels.js';
import type { Labels, Workload } from './model.js';
import { LayeredMap, lowerBound } from './persistent.js';

const EMPTY: readonly never[] = Object.freeze([]);

/** A workload before and after a change (absent: it did not exist / no longer exists). */
export interface WorkloadChange {
  readonly before?: Workload | undefined;
  readonly after?: Workload | undefined;
}

/**
 * Workloads of one kind by namespace and by `key=value` label, each list sorted by name, so
 * that a selector costs the size of its rarest label rather than the size of the namespace.
 */
class LabelPostings {
  constructor(
    readonly all: LayeredMap<string, readonly Workload[]>,
    readonly byLabel: LayeredMap<string, readonly Workload[]>,
  ) {}

  select(namespace: string, selector: Labels): readonly Workload[] {
    let smallest: readonly Workload[] | undefined = this.all.get(namespace);
    if (!smallest) return EMPTY;
    for (const k in selector) {
      const posting = this.byLabel.get(labelKey(namespace, k, selector[k]!));
      if (!posting) return EMPTY;
      if (posting.length < smallest.length) smallest = posting;
    }
    return smallest.filter((w) => selectsLabels(selector, w.labels));
  }
}

export class WorkloadIndex {
  readonly #byKey: LayeredMap<string, Workload>;
  readonly #pods: LabelPostings;
  readonly #entries: LabelPostings;
  readonly #podsByAddress: LayeredMap<string, readonly Workload[]>;

  private constructor(
    byKey: LayeredMap<string, Workload>,
    pods: LabelPostings,
    entries: LabelPostings,
    podsByAddress: LayeredMap<string, readonly Workload[]>,
  ) {
    this.#byKey = byKey;
    this.#pods = pods;
    this.#entries = entries;
    this.#podsByAddress = podsByAddress;
    Object.freeze(this);
  }

  /** An index of `workloads` (any order). */
  static of(workloads: readonly Workload[]): WorkloadIndex {
    const sorted = [...workloads].sort((a, b) => compareNames(a.name, b.name));
    const byKey = new Map<string, Workload>();
    const lists = {
      podAll: new Map<string, Workload[]>(),
      podLabel: new Map<string, Workload[]>(),
      entryAll: new Map<string, Workload[]>(),
      entryLabel: new Map<string, Workload[]>(),
      address: new Map<string, Workload[]>(),
    };
    for (const w of sorted) {
      byKey.set(workloadKey(w.kind, w.namespace, w.name), w);
      const pod = w.kind === 'Pod';
      push(pod ? lists.podAll : lists.entryAll, w.namespace, w);
      for (const k in w.labels)
        push(pod ? lists.podLabel : lists.entryLabel, labelKey(w.namespace, k, w.labels[k]!), w);
      if (pod && w.address !== '') push(lists.address, addressKey(w.namespace, w.address), w);
    }
    return new WorkloadIndex(
      LayeredMap.of(byKey),
      new LabelPostings(
        LayeredMap.of(frozenLists(lists.podAll)),
        LayeredMap.of(frozenLists(lists.podLabel)),
      ),
      new LabelPostings(
        LayeredMap.of(frozenLists(lists.entryAll)),
        LayeredMap.of(frozenLists(lists.entryLabel)),
      ),
      LayeredMap.of(frozenLists(lists.address)),
    );
  }

  /** A copy with workloads replaced, added or removed. */
  with(changes: readonly WorkloadChange[]): WorkloadIndex {
    if (changes.length === 0) return this;
    const byKey = new Map<string, Workload | undefined>();
    const lists = {
      podAll: new ListEdits(this.#pods.all),
      podLabel: new ListEdits(this.#pods.byLabel),
      entryAll: new ListEdits(this.#entries.all),
      entryLabel: new ListEdits(this.#entries.byLabel),
      address: new ListEdits(this.#podsByAddress),
    };
    const each = (w: Workload, f: (edits: ListEdits, key: string) => void): void => {
      const pod = w.kind === 'Pod';
      f(pod ? lists.podAll : lists.entryAll, w.namespace);
      for (const k in w.labels)
        f(pod ? lists.podLabel : lists.entryLabel, labelKey(w.namespace, k, w.labels[k]!));
      if (pod && w.address !== '') f(lists.address, addressKey(w.namespace, w.address));
    };
    for (const { before } of changes)
      if (before) each(before, (edits, key) => edits.remove(key, before));
    for (const { before, after } of changes) {
      if (after) {
        each(after, (edits, key) => edits.insert(key, after));
        byKey.set(workloadKey(after.kind, after.namespace, after.name), after);
      } else if (before)
        byKey.set(workloadKey(before.kind, before.namespace, before.name), undefined);
    }
    return new WorkloadIndex(
      this.#byKey.with(byKey),
      new LabelPostings(lists.podAll.done(), lists.podLabel.done()),
      new LabelPostings(lists.entryAll.done(), lists.entryLabel.done()),
      lists.address.done(),
    );
  }

  get(kind: Workload['kind'], namespace: string, name: string): Workload | undefined {
    return this.#byKey.get(workloadKey(kind, namespace, name));
  }

  /** Pods of `namespace` whose labels include the selector, by name. */
  selectPods(namespace: string, selector: Labels): readonly Workload[] {
    return this.#pods.select(namespace, selector);
  }

  /** WorkloadEntries of `namespace` whose labels include the selector, by name. */
  selectEntries(namespace: string, selector: Labels): readonly Workload[] {
    return this.#entries.select(namespace, selector);
  }

  /** How many workloads (Pods and WorkloadEntries) of `namespace` carry the label. */
  labelCount(namespace: string, key: string, value: string): number {
    const k = labelKey(namespace, key, value);
    return (this.#pods.byLabel.get(k)?.length ?? 0) + (this.#entries.byLabel.get(k)?.length ?? 0);
  }

  /** The Pod of `namespace` with this IP, when exactly one has it. */
  podByAddress(namespace: string, address: string): Workload | undefined {
    const list = this.#podsByAddress.get(addressKey(namespace, address));
    return list?.length === 1 ? list[0] : undefined;
  }
}

/** Copy-on-write edits of the sorted lists of a `LayeredMap`. */
class ListEdits {
  readonly #lists = new Map<string, Workload[]>();

  constructor(private readonly map: LayeredMap<string, readonly Workload[]>) {}

  #list(key: string): Workload[] {
    let l = this.#lists.get(key);
    if (!l) {
      l = [...(this.map.get(key) ?? EMPTY)];
      this.#lists.set(key, l);
    }
    return l;
  }

  remove(key: string, w: Workload): void {
    const l = this.#list(key);
    const i = l.indexOf(w, lowerBound(l, w.name, nameOf));
    if (i >= 0) l.splice(i, 1);
  }

  insert(key: string, w: Workload): void {
    const l = this.#list(key);
    l.splice(lowerBound(l, w.name, nameOf), 0, w);
  }

  done(): LayeredMap<string, readonly Workload[]> {
    const edits = new Map<string, readonly Workload[] | undefined>();
    for (const [k, l] of this.#lists) edits.set(k, l.length > 0 ? Object.freeze(l) : undefined);
    return this.map.with(edits);
  }
}

/** `Pod/default/reviews-v1-abc`: the key of a workload. */
export function workloadKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function labelKey(namespace: string, key: string, value: string): string {
  return `${namespace}\u0000${key}=${value}`;
}

function addressKey(namespace: string, address: string): string {
  return `${namespace}\u0000${address}`;
}

const nameOf = (w: Workload): string => w.name;

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function frozenLists(m: Map<string, Workload[]>): Map<string, readonly Workload[]> {
  for (const l of m.values()) Object.freeze(l);
  return m;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
