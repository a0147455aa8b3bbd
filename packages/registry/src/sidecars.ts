// Which Sidecar resource configures a workload's proxy. Istio's rule (pilot/pkg/model
// push_context.go initSidecarScopes/getSidecarScope): in the workload's namespace, Sidecars with
// a workloadSelector come first (oldest first) and the first whose labels the workload has wins;
// else the namespace's Sidecar without a selector (the oldest); else the root namespace's
// Sidecar without a selector (the mesh default); else none (every service is reachable).
import type { SidecarConfig } from './config.js';
import { compareByCreation } from './config.js';
import { selectsLabels } from './labels.js';
import type { Labels } from './model.js';

export class SidecarIndex {
  readonly #byNamespace = new Map<string, SidecarConfig[]>();
  readonly #meshDefault: SidecarConfig | undefined;

  constructor(all: readonly SidecarConfig[], rootNamespace: string) {
    const sorted = [...all].sort((a, b) => {
      const sa = a.spec.workloadSelector != null;
      const sb = b.spec.workloadSelector != null;
      if (sa !== sb) return sa ? -1 : 1;
      return compareByCreation(a, b);
    });
    for (const s of sorted) {
      const list = this.#byNamespace.get(s.namespace);
      if (list) list.push(s);
      else this.#byNamespace.set(s.namespace, [s]);
    }
    this.#meshDefault = sorted.find(
      (s) => s.namespace === rootNamespace && s.spec.workloadSelector == null,
    );
  }

  /** The Sidecar for a workload of `namespace` with `labels`; undefined when none applies. */
  forWorkload(namespace: string, labels: Labels): SidecarConfig | undefined {
    for (const s of this.#byNamespace.get(namespace) ?? []) {
      const selector = s.spec.workloadSelector;
      if (selector == null) return s;
      if (selectsLabels(selector.labels ?? {}, labels)) return s;
    }
    return this.#meshDefault;
  }

  /** The namespace-wide Sidecar of `namespace` (no selector), or the mesh default. */
  forNamespace(namespace: string): SidecarConfig | undefined {
    return (
      (this.#byNamespace.get(namespace) ?? []).find((s) => s.spec.workloadSelector == null) ??
      this.#meshDefault
    );
  }
}
