// Which DestinationRule applies to a host, seen from a client namespace. Istio's rules
// (pilot/pkg/model push_context.go setDestinationRules/destinationRule, destination_rule.go
// mergeDestinationRule, sidecar.go DestinationRule):
// - rules for the same host in the same namespace are merged: subsets are concatenated (a
//   duplicate subset name keeps the first), the first top-level trafficPolicy wins; rules with
//   different workload selectors or incompatible exportTo stay separate entries;
// - lookup order: the client's namespace (every rule there, exported or not), then rules the
//   service's namespace exports to the client, then rules the root namespace exports; within a
//   namespace the most specific host wins (exact, then the longest wildcard);
// - among the entries for that host, a rule whose workloadSelector matches the client (and that
//   lives in the client's namespace) wins over the catch-all one.
import type { DestinationRuleSpec, Subset } from '@trellis/api';
import type { DestinationRuleConfig } from './config.js';
import { compareByCreation } from './config.js';
import { isWildcardHost, mostSpecificHostMatch } from './host.js';
import { labelsEqual, selectsLabels } from './labels.js';
import type { Labels, ObjectRef, RegistryProblem } from './model.js';
import type { MeshOptions } from './options.js';
import { EXPORT_PRIVATE, EXPORT_PUBLIC } from './visibility.js';

/** One effective DestinationRule for a host: one rule, or several merged. */
export interface ConsolidatedDestinationRule {
  /** The resolved host the rule is for (may be a wildcard). */
  readonly host: string;
  /** The first rule (oldest; rules with a workload selector first): its namespace and metadata. */
  readonly rule: DestinationRuleConfig;
  /** The merged spec: the first rule's, plus subsets and a trafficPolicy from the others. */
  readonly spec: DestinationRuleSpec;
  /** The effective exportTo (empty means the mesh default). */
  readonly exportTo: readonly string[];
  /** The workload selector labels, when the rule applies to some client workloads only. */
  readonly workloadSelector?: Labels;
  /** Every rule merged into this one, first included. */
  readonly from: readonly ObjectRef[];
}

interface Entry {
  host: string;
  rule: DestinationRuleConfig;
  spec: DestinationRuleSpec;
  exportTo: ReadonlySet<string>;
  selector: Labels | undefined;
  from: ObjectRef[];
}

class HostTable {
  readonly specific = new Map<string, Entry[]>();
  readonly wildcard = new Map<string, Entry[]>();

  merge(rule: DestinationRuleConfig, exportTo: ReadonlySet<string>, notify: Notify): void {
    const map = isWildcardHost(rule.host) ? this.wildcard : this.specific;
    const selector = rule.spec.workloadSelector?.matchLabels ?? selectorOf(rule);
    const fresh: Entry = {
      host: rule.host,
      rule,
      spec: rule.spec,
      exportTo,
      selector,
      from: [refOf(rule)],
    };
    const list = map.get(rule.host);
    if (!list) {
      map.set(rule.host, [fresh]);
      return;
    }
    let appendSeparately = true;
    for (const existing of list) {
      const bothWithout = selector === undefined && existing.selector === undefined;
      const bothWith = selector !== undefined && existing.selector !== undefined;
      const selectorsMatch = labelsEqual(existing.selector, selector);
      if (setsEqual(exportTo, existing.exportTo)) {
        appendSeparately = !(bothWithout || (bothWith && selectorsMatch));
      } else if (existing.exportTo.size > 0 && isSuperset(exportTo, existing.exportTo)) {
        appendSeparately = true;
      } else {
        appendSeparately = true;
        continue;
      }
      if (bothWith && !selectorsMatch) {
        appendSeparately = true;
        continue;
      }
      if (bothWithout || (bothWith && selectorsMatch)) appendSeparately = false;
      mergeInto(existing, rule, notify);
    }
    if (appendSeparately) list.push(fresh);
  }
}

function selectorOf(rule: DestinationRuleConfig): Labels | undefined {
  // A workloadSelector without matchLabels still marks the rule as selecting (it selects all).
  return rule.spec.workloadSelector != null ? {} : undefined;
}

type Notify = (p: RegistryProblem) => void;

function mergeInto(existing: Entry, rule: DestinationRuleConfig, notify: Notify): void {
  const names = new Set((existing.spec.subsets ?? []).map((s) => s.name));
  const subsets: Subset[] = [...(existing.spec.subsets ?? [])];
  for (const s of rule.spec.subsets ?? []) {
    if (names.has(s.name))
      notify({
        object: refOf(rule),
        message: `subset ${s.name} of host ${existing.host} is ignored: DestinationRule ${existing.rule.namespace}/${existing.rule.name} already defines it`,
      });
    else {
      names.add(s.name);
      subsets.push(s);
    }
  }
  existing.spec = {
    ...existing.spec,
    ...(subsets.length > 0 ? { subsets } : {}),
    ...(existing.spec.trafficPolicy == null && rule.spec.trafficPolicy != null
      ? { trafficPolicy: rule.spec.trafficPolicy }
      : {}),
  };
  existing.from.push(refOf(rule));
}

/** The DestinationRules of a snapshot, indexed as Istio indexes them. */
export class DestinationRuleIndex {
  readonly #namespaceLocal = new Map<string, HostTable>();
  readonly #exported = new Map<string, HostTable>();
  readonly #rootLocal = new HostTable();
  readonly #root: string;
  readonly #cache = new Map<Entry, ConsolidatedDestinationRule>();
  /** Problems found merging rules (duplicate subsets). */
  readonly notes: readonly RegistryProblem[];

  constructor(rules: readonly DestinationRuleConfig[], opts: MeshOptions) {
    this.#root = opts.rootNamespace;
    // A rule is merged into up to two tables: report each problem once.
    const notes = new Map<string, RegistryProblem>();
    const notify: Notify = (p) => {
      notes.set(`${p.object.namespace}/${p.object.name}\u0000${p.message}`, p);
    };
    const sorted = [...rules].sort((a, b) => {
      const sa = a.spec.workloadSelector != null;
      const sb = b.spec.workloadSelector != null;
      if (sa !== sb) return sa ? -1 : 1;
      return compareByCreation(a, b);
    });
    for (const rule of sorted) {
      const exportTo: ReadonlySet<string> =
        rule.spec.workloadSelector == null
          ? new Set(rule.spec.exportTo ?? [])
          : new Set([EXPORT_PRIVATE]);
      const ns = rule.namespace;
      if (
        exportTo.size === 0 ||
        exportTo.has(EXPORT_PUBLIC) ||
        exportTo.has(EXPORT_PRIVATE) ||
        exportTo.has(ns)
      )
        tableFor(this.#namespaceLocal, ns).merge(rule, exportTo, notify);
      const privateOnly =
        (exportTo.size === 0 && opts.defaultDestinationRuleExportTo.includes(EXPORT_PRIVATE)) ||
        (exportTo.size === 1 && (exportTo.has(EXPORT_PRIVATE) || exportTo.has(ns)));
      if (!privateOnly) tableFor(this.#exported, ns).merge(rule, exportTo, notify);
      else if (ns === this.#root) this.#rootLocal.merge(rule, exportTo, notify);
    }
    this.notes = Object.freeze([...notes.values()]);
  }

  /**
   * The DestinationRule entries for `hostname` seen from `clientNamespace` (Istio's
   * `PushContext.destinationRule`); `serviceNamespace` is the namespace of the service the host
   * belongs to, if known.
   */
  lookup(
    clientNamespace: string,
    hostname: string,
    serviceNamespace: string | undefined,
  ): readonly ConsolidatedDestinationRule[] {
    const local =
      clientNamespace !== this.#root ? this.#namespaceLocal.get(clientNamespace) : this.#rootLocal;
    if (local) {
      const m = mostSpecificHostMatch(hostname, local.specific, local.wildcard);
      if (m) return m.value.map((e) => this.#view(e));
    }
    if (serviceNamespace) {
      const out = this.#exportedFrom(serviceNamespace, hostname, clientNamespace);
      if (out.length > 0) return out;
    }
    return this.#exportedFrom(this.#root, hostname, clientNamespace);
  }

  /**
   * The entry that applies to a client: one whose workload selector matches the client's labels
   * and lives in the client's namespace, else the catch-all (no selector) entry.
   */
  static select(
    entries: readonly ConsolidatedDestinationRule[],
    clientNamespace: string,
    clientLabels: Labels,
  ): ConsolidatedDestinationRule | undefined {
    let catchAll: ConsolidatedDestinationRule | undefined;
    for (const e of entries) {
      if (e.workloadSelector === undefined) catchAll = e;
      else if (
        e.rule.namespace === clientNamespace &&
        selectsLabels(e.workloadSelector, clientLabels)
      )
        return e;
    }
    return catchAll;
  }

  #exportedFrom(
    owner: string,
    hostname: string,
    clientNamespace: string,
  ): readonly ConsolidatedDestinationRule[] {
    const table = this.#exported.get(owner);
    if (!table) return [];
    const m = mostSpecificHostMatch(hostname, table.specific, table.wildcard);
    if (!m) return [];
    return m.value
      .filter(
        (e) =>
          e.exportTo.size === 0 || e.exportTo.has(EXPORT_PUBLIC) || e.exportTo.has(clientNamespace),
      )
      .map((e) => this.#view(e));
  }

  #view(e: Entry): ConsolidatedDestinationRule {
    let v = this.#cache.get(e);
    if (!v) {
      v = Object.freeze({
        host: e.host,
        rule: e.rule,
        spec: Object.freeze(e.spec),
        exportTo: Object.freeze([...e.exportTo].sort()),
        ...(e.selector !== undefined ? { workloadSelector: e.selector } : {}),
        from: Object.freeze([...e.from]),
      });
      this.#cache.set(e, v);
    }
    return v;
  }
}

function tableFor(map: Map<string, HostTable>, ns: string): HostTable {
  let t = map.get(ns);
  if (!t) {
    t = new HostTable();
    map.set(ns, t);
  }
  return t;
}

function refOf(rule: DestinationRuleConfig): ObjectRef {
  return { kind: 'DestinationRule', namespace: rule.namespace, name: rule.name };
}

function setsEqual(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function isSuperset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const x of b) if (!a.has(x)) return false;
  return true;
}
