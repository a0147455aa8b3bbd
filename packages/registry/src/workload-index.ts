// The workloads of a registry build, indexed the ways service builders look them up: by
// name, by label selector within a namespace, and by address (EndpointSlice endpoints).
import type { Labels, Workload } from './model.js';
import { LabelIndex } from './labels.js';

export class WorkloadIndex {
  private readonly byKey = new Map<string, Workload>();
  private readonly pods = new LabelIndex<Workload>((w) => w.labels);
  private readonly entries = new LabelIndex<Workload>((w) => w.labels);
  private readonly podsByAddress = new Map<string, Workload[]>();
  readonly all: Workload[] = [];

  add(w: Workload): void {
    this.byKey.set(workloadKey(w.kind, w.namespace, w.name), w);
    this.all.push(w);
    if (w.kind === 'Pod') {
      this.pods.add(w.namespace, w);
      if (w.address !== '') {
        const k = `${w.namespace}\u0000${w.address}`;
        const list = this.podsByAddress.get(k);
        if (list) list.push(w);
        else this.podsByAddress.set(k, [w]);
      }
    } else this.entries.add(w.namespace, w);
  }

  get(kind: Workload['kind'], namespace: string, name: string): Workload | undefined {
    return this.byKey.get(workloadKey(kind, namespace, name));
  }

  /** Pods of `namespace` whose labels include the selector. */
  selectPods(namespace: string, selector: Labels): readonly Workload[] {
    return this.pods.select(namespace, selector);
  }

  /** WorkloadEntries of `namespace` whose labels include the selector. */
  selectEntries(namespace: string, selector: Labels): readonly Workload[] {
    return this.entries.select(namespace, selector);
  }

  /** The Pod of `namespace` with this IP, when exactly one has it. */
  podByAddress(namespace: string, address: string): Workload | undefined {
    const list = this.podsByAddress.get(`${namespace}\u0000${address}`);
    return list?.length === 1 ? list[0] : undefined;
  }
}

/** `Pod/default/reviews-v1-abc`: the key of a workload. */
export function workloadKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}
