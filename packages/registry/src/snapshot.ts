// The push snapshot: one immutable, versioned view of every config and the registry, with the
// lookups translation needs (Istio's PushContext). `buildSnapshot` is pure: the same objects
// and options give the same snapshot; no I/O, no clock (the version is passed in).
//
// A snapshot can also be derived from the previous one and the objects that changed
// (`updateSnapshot`, or `buildSnapshot` with `previous`): it then shares every part the change
// does not touch (config lists and their indexes, the registry's unchanged services and
// endpoint lists), so an endpoint-only change costs what the affected services cost, not what
// the whole mesh costs. The result is the same as a build from scratch.
import {
  type AuthorizationPolicySpec,
  type KubeObject,
  type PeerAuthenticationSpec,
  type RequestAuthenticationSpec,
  type ServiceEntrySpec,
  type TelemetrySpec,
  type WorkloadEntrySpec,
  type WorkloadGroupSpec,
} from '@trellis/api';
import { deepFreeze } from '@trellis/core';
import {
  configOf,
  compareByCreation,
  destinationRuleConfig,
  gatewayConfig,
  virtualServiceConfig,
  type Config,
  type DestinationRuleConfig,
  type GatewayConfig,
  type SidecarConfig,
  type VirtualServiceConfig,
} from './config.js';
import { DestinationRuleIndex, type ConsolidatedDestinationRule } from './destination-rules.js';
import { GatewayIndex } from './gateways.js';
import * as K from './kinds.js';
import type { Endpoint, Labels, RegistryProblem, Service, Workload } from './model.js';
import { meshOptions, type MeshOptions } from './options.js';
import { LayeredMap, patchSorted } from './persistent.js';
import {
  buildRegistry,
  updateRegistry,
  type ObjectChanges,
  type Registry,
  type RegistryObjects,
} from './registry.js';
import { SidecarIndex } from './sidecars.js';
import { EXPORT_PRIVATE, isExportedTo, visibilityOf } from './visibility.js';
import { VirtualServiceIndex } from './virtual-services.js';

export type { ObjectChanges } from './registry.js';

/** How to build a snapshot: its version and the mesh settings. */
export interface SnapshotOptions extends Partial<MeshOptions> {
  /** The version proxies see (e.g. a counter or a timestamp chosen by the caller). */
  readonly version: string;
}

/** Security and telemetry kinds, looked up by namespace (`policies`). */
export type PolicyKind =
  'PeerAuthentication' | 'AuthorizationPolicy' | 'RequestAuthentication' | 'Telemetry';

/** Anything `isVisible` answers for: a service, or a config with (or without) exportTo. */
export type Exportable = Service | Config<unknown>;

const EMPTY: readonly never[] = Object.freeze([]);

/** The config lists of a snapshot, each sorted by key. */
interface ConfigLists {
  readonly virtualServices: readonly VirtualServiceConfig[];
  readonly destinationRules: readonly DestinationRuleConfig[];
  readonly gateways: readonly GatewayConfig[];
  readonly sidecars: readonly SidecarConfig[];
  readonly serviceEntries: readonly Config<ServiceEntrySpec>[];
  readonly workloadEntries: readonly Config<WorkloadEntrySpec>[];
  readonly workloadGroups: readonly Config<WorkloadGroupSpec>[];
  readonly peerAuthentications: readonly Config<PeerAuthenticationSpec>[];
  readonly authorizationPolicies: readonly Config<AuthorizationPolicySpec>[];
  readonly requestAuthentications: readonly Config<RequestAuthenticationSpec>[];
  readonly telemetries: readonly Config<TelemetrySpec>[];
  readonly namespaces: readonly KubeObject[];
}

type ListName = keyof ConfigLists;

/** How each list is made from the objects of one kind. */
const LISTS: {
  readonly [F in ListName]: {
    readonly kind: K.KindRef;
    readonly make: (o: KubeObject, mesh: MeshOptions) => ConfigLists[F][number];
  };
} = {
  virtualServices: {
    kind: K.VIRTUAL_SERVICE,
    make: (o, mesh) => virtualServiceConfig(o, mesh.domainSuffix),
  },
  destinationRules: {
    kind: K.DESTINATION_RULE,
    make: (o, mesh) => destinationRuleConfig(o, mesh.domainSuffix),
  },
  gateways: { kind: K.GATEWAY, make: (o) => gatewayConfig(o) },
  sidecars: { kind: K.SIDECAR, make: (o) => configOf(o) },
  serviceEntries: { kind: K.SERVICE_ENTRY, make: (o) => configOf(o) },
  workloadEntries: { kind: K.WORKLOAD_ENTRY, make: (o) => configOf(o) },
  workloadGroups: { kind: K.WORKLOAD_GROUP, make: (o) => configOf(o) },
  peerAuthentications: { kind: K.PEER_AUTHENTICATION, make: (o) => configOf(o) },
  authorizationPolicies: { kind: K.AUTHORIZATION_POLICY, make: (o) => configOf(o) },
  requestAuthentications: { kind: K.REQUEST_AUTHENTICATION, make: (o) => configOf(o) },
  telemetries: { kind: K.TELEMETRY_KIND, make: (o) => configOf(o) },
  namespaces: { kind: K.NAMESPACE, make: (o) => o },
};

const LIST_NAMES = Object.keys(LISTS) as ListName[];
const POLICY_LISTS: readonly ListName[] = [
  'peerAuthentications',
  'authorizationPolicies',
  'requestAuthentications',
  'telemetries',
];
const REGISTRY_KINDS: ReadonlySet<string> = new Set(
  [K.SERVICE, K.POD, K.ENDPOINT_SLICE, K.SERVICE_ENTRY, K.WORKLOAD_ENTRY].map(K.kindKey),
);

/** The parts of a snapshot (internal: use `buildSnapshot` / `updateSnapshot`). */
export interface SnapshotParts {
  readonly version: string;
  readonly mesh: MeshOptions;
  readonly objects: readonly KubeObject[];
  readonly byKey: LayeredMap<string, KubeObject>;
  readonly registry: Registry;
  readonly lists: ConfigLists;
  readonly vs: VirtualServiceIndex;
  readonly dr: DestinationRuleIndex;
  readonly sidecars: SidecarIndex;
  readonly gateways: GatewayIndex;
  readonly policies: ReadonlyMap<string, readonly Config<unknown>[]>;
  readonly visibility: ServiceVisibility;
  readonly problems: readonly RegistryProblem[];
  /** Identifies these parts (a snapshot derived from them names it in `base`). */
  readonly id: object;
  /** For parts derived from others: their id and the keys of the objects that changed. */
  readonly base?: { readonly id: object; readonly keys: readonly string[] };
}

const parts = new WeakMap<Snapshot, SnapshotParts>();

/**
 * One immutable view of config and registry. Every array it returns is frozen; every object
 * is deep-frozen.
 */
export class Snapshot {
  readonly version: string;
  readonly mesh: MeshOptions;
  readonly registry: Registry;
  /** Every object the snapshot was built from, sorted by key (`group/Kind/namespace/name`). */
  readonly objects: readonly KubeObject[];
  readonly virtualServices: readonly VirtualServiceConfig[];
  readonly destinationRules: readonly DestinationRuleConfig[];
  readonly gateways: readonly GatewayConfig[];
  readonly sidecars: readonly SidecarConfig[];
  readonly serviceEntries: readonly Config<ServiceEntrySpec>[];
  readonly workloadEntries: readonly Config<WorkloadEntrySpec>[];
  readonly workloadGroups: readonly Config<WorkloadGroupSpec>[];
  readonly peerAuthentications: readonly Config<PeerAuthenticationSpec>[];
  readonly authorizationPolicies: readonly Config<AuthorizationPolicySpec>[];
  readonly requestAuthentications: readonly Config<RequestAuthenticationSpec>[];
  readonly telemetries: readonly Config<TelemetrySpec>[];
  /** Namespace objects (their labels drive injection). */
  readonly namespaces: readonly KubeObject[];
  /** Registry problems and DestinationRule merge notes. */
  readonly problems: readonly RegistryProblem[];

  readonly #s: SnapshotParts;

  /** Use `buildSnapshot` or `updateSnapshot`. */
  constructor(p: SnapshotParts) {
    this.#s = p;
    this.version = p.version;
    this.mesh = p.mesh;
    this.registry = p.registry;
    this.objects = p.objects;
    this.virtualServices = p.lists.virtualServices;
    this.destinationRules = p.lists.destinationRules;
    this.gateways = p.lists.gateways;
    this.sidecars = p.lists.sidecars;
    this.serviceEntries = p.lists.serviceEntries;
    this.workloadEntries = p.lists.workloadEntries;
    this.workloadGroups = p.lists.workloadGroups;
    this.peerAuthentications = p.lists.peerAuthentications;
    this.authorizationPolicies = p.lists.authorizationPolicies;
    this.requestAuthentications = p.lists.requestAuthentications;
    this.telemetries = p.lists.telemetries;
    this.namespaces = p.lists.namespaces;
    this.problems = p.problems;
    parts.set(this, p);
    Object.freeze(this);
  }

  // ---------- objects ----------

  /** A stored object by key: `group/Kind/namespace/name` (`/Secret/istio-system/cacerts`). */
  object(key: string): KubeObject | undefined {
    return this.#s.byKey.get(key);
  }

  /** A Secret (gateway credentials), by namespace and name. */
  secret(namespace: string, name: string): KubeObject | undefined {
    return this.#s.byKey.get(`/Secret/${namespace}/${name}`);
  }

  /** A Namespace object. */
  namespace(name: string): KubeObject | undefined {
    return this.#s.byKey.get(`/Namespace//${name}`);
  }

  // ---------- services and endpoints ----------

  /** Every service. */
  get services(): readonly Service[] {
    return this.registry.services;
  }

  /** The service of `hostname` defined in `namespace`. */
  service(hostname: string, namespace: string): Service | undefined {
    return this.registry.service(hostname, namespace);
  }

  /**
   * The services a proxy of `namespace` may reach (Istio's `servicesExportedToNamespace`):
   * those private to the namespace, those exported to it, then public ones; each group oldest
   * first.
   */
  servicesVisibleFrom(namespace: string): readonly Service[] {
    return this.#s.visibility.visibleFrom(namespace);
  }

  /**
   * The service a proxy of `namespace` reaches for `hostname`. When several visible services
   * share the host name (ServiceEntries in several namespaces), the first in
   * `servicesVisibleFrom` order wins, except that a Kubernetes Service wins over ServiceEntries.
   */
  serviceForHostname(hostname: string, namespace: string): Service | undefined {
    return this.#s.visibility.forHostname(hostname, namespace);
  }

  /** The endpoints of a service, of one port when given. */
  endpoints(service: Pick<Service, 'hostname' | 'namespace'>, port?: number): readonly Endpoint[] {
    return this.registry.endpoints(service.hostname, service.namespace, port);
  }

  /** A workload by kind, namespace and name. */
  workload(kind: Workload['kind'], namespace: string, name: string): Workload | undefined {
    return this.registry.workload(kind, namespace, name);
  }

  /**
   * Whether a service or config is visible from `namespace`: services, ServiceEntries,
   * VirtualServices and DestinationRules by exportTo (and the mesh default); a DestinationRule
   * with a workloadSelector only in its namespace; other configs (Sidecar, Gateway, policies)
   * in their own namespace, or everywhere when they live in the root namespace.
   */
  isVisible(target: Exportable, namespace: string): boolean {
    if ('hostname' in target)
      return isExportedTo(
        target.exportTo,
        target.namespace,
        namespace,
        this.mesh.defaultServiceExportTo,
      );
    const spec = target.spec as { exportTo?: readonly string[]; workloadSelector?: unknown };
    switch (`${target.group}/${target.kind}`) {
      case K.kindKey(K.SERVICE_ENTRY):
        return isExportedTo(
          spec.exportTo ?? [],
          target.namespace,
          namespace,
          this.mesh.defaultServiceExportTo,
        );
      case K.kindKey(K.VIRTUAL_SERVICE):
        return isExportedTo(
          spec.exportTo ?? [],
          target.namespace,
          namespace,
          this.mesh.defaultVirtualServiceExportTo,
        );
      case K.kindKey(K.DESTINATION_RULE):
        return isExportedTo(
          spec.workloadSelector != null ? [EXPORT_PRIVATE] : (spec.exportTo ?? []),
          target.namespace,
          namespace,
          this.mesh.defaultDestinationRuleExportTo,
        );
      default:
        return target.namespace === namespace || target.namespace === this.mesh.rootNamespace;
    }
  }

  // ---------- routing configs ----------

  /**
   * VirtualServices bound to `gateway` (`namespace/name`, or `mesh` for sidecars) that proxies
   * of `namespace` see, in Istio's order.
   */
  virtualServicesForGateway(namespace: string, gateway?: string): readonly VirtualServiceConfig[] {
    return this.#s.vs.forGateway(namespace, gateway);
  }

  /** Those of `virtualServicesForGateway` whose hosts match `host`. */
  virtualServicesForHost(
    host: string,
    namespace: string,
    gateway?: string,
  ): readonly VirtualServiceConfig[] {
    return this.#s.vs.forHost(host, namespace, gateway);
  }

  /** A VirtualService by namespace and name (delegates included). */
  virtualService(namespace: string, name: string): VirtualServiceConfig | undefined {
    return this.#s.vs.byName(namespace, name);
  }

  /**
   * The DestinationRule that applies to traffic for `hostname` from a client in `namespace`:
   * the client's namespace first, then rules the service's namespace exports, then the root
   * namespace's; the most specific host wins; a rule whose workloadSelector matches
   * `clientLabels` wins over the catch-all one. `serviceNamespace` defaults to that of the
   * service the client reaches for the host.
   */
  destinationRule(
    namespace: string,
    hostname: string,
    opts: { readonly serviceNamespace?: string; readonly clientLabels?: Labels } = {},
  ): ConsolidatedDestinationRule | undefined {
    const entries = this.destinationRuleEntries(namespace, hostname, opts.serviceNamespace);
    return DestinationRuleIndex.select(entries, namespace, opts.clientLabels ?? {});
  }

  /** Every DestinationRule entry for the host from `namespace` before the workload choice. */
  destinationRuleEntries(
    namespace: string,
    hostname: string,
    serviceNamespace?: string,
  ): readonly ConsolidatedDestinationRule[] {
    const svcNs = serviceNamespace ?? this.serviceForHostname(hostname, namespace)?.namespace;
    return this.#s.dr.lookup(namespace, hostname, svcNs);
  }

  /** The Sidecar resource for a workload, or undefined (no restriction). */
  sidecarFor(namespace: string, labels: Labels): SidecarConfig | undefined {
    return this.#s.sidecars.forWorkload(namespace, labels);
  }

  /** The Gateways that select a gateway workload of `namespace` with `labels`. */
  gatewaysFor(namespace: string, labels: Labels): readonly GatewayConfig[] {
    return this.#s.gateways.forWorkload(namespace, labels);
  }

  /** A Gateway by `namespace/name`. */
  gateway(ref: string): GatewayConfig | undefined {
    return this.#s.gateways.byRef(ref);
  }

  /**
   * Policies of a kind that may apply to workloads of `namespace`: the root namespace's first,
   * then the namespace's own, each oldest first. Selectors and targetRefs are for the caller.
   */
  policies(kind: PolicyKind, namespace: string): readonly Config<unknown>[] {
    const root = this.#s.policies.get(`${kind}/${this.mesh.rootNamespace}`) ?? EMPTY;
    if (namespace === this.mesh.rootNamespace) return root;
    const own = this.#s.policies.get(`${kind}/${namespace}`) ?? EMPTY;
    return root.length === 0 ? own : own.length === 0 ? root : Object.freeze([...root, ...own]);
  }
}

/**
 * Builds a snapshot from every object (any kinds; those a snapshot does not read are kept in
 * `objects` only). The objects are frozen in place, so the caller must not change them later.
 * With `previous`, the snapshot is derived from it (`updateSnapshot` over the objects whose
 * keys are new, gone, or hold another object than in `previous`): same result, less work.
 */
export function buildSnapshot(
  objects: readonly KubeObject[],
  opts: SnapshotOptions,
  previous?: Snapshot,
): Snapshot {
  const { version, ...overrides } = opts;
  const mesh = meshOptions(overrides);
  const prev = previous ? parts.get(previous) : undefined;
  if (!prev || !sameMesh(prev.mesh, mesh))
    return new Snapshot(fromScratch(objects, version, mesh, prev?.registry));
  const changes = new Map<string, KubeObject | undefined>();
  const seen = new Set<string>();
  for (const o of objects) {
    const key = K.objectKey(o);
    seen.add(key);
    if (prev.byKey.get(key) !== o) changes.set(key, o);
  }
  if (seen.size !== prev.byKey.size || changes.size > 0)
    for (const o of prev.objects) {
      const key = K.objectKey(o);
      if (!seen.has(key)) changes.set(key, undefined);
    }
  return new Snapshot(derive(prev, changes, version));
}

/**
 * The snapshot `previous` becomes after `changes`: by object key (`group/Kind/namespace/name`),
 * the new object, or `undefined` for a deleted one; every other object stays as in `previous`.
 * The same as `buildSnapshot` over the resulting objects, computed from what changed: lists,
 * indexes and services the change does not touch are shared with `previous` (the same
 * references). New objects are frozen in place. `opts` must give the same mesh settings as
 * `previous` had, else the snapshot is built from scratch.
 */
export function updateSnapshot(
  previous: Snapshot,
  changes: ObjectChanges,
  opts: SnapshotOptions,
): Snapshot {
  const { version, ...overrides } = opts;
  const mesh = meshOptions(overrides);
  const prev = parts.get(previous);
  if (!prev) throw new Error('updateSnapshot: not a snapshot built by buildSnapshot');
  for (const [key, o] of changes)
    if (o && K.objectKey(o) !== key)
      throw new Error(`updateSnapshot: object ${K.objectKey(o)} is given under key ${key}`);
  if (!sameMesh(prev.mesh, mesh)) {
    const byKey = new Map(prev.objects.map((o) => [K.objectKey(o), o] as const));
    for (const [key, o] of changes) {
      if (o) byKey.set(key, o);
      else byKey.delete(key);
    }
    return new Snapshot(fromScratch([...byKey.values()], version, mesh, prev.registry));
  }
  return new Snapshot(derive(prev, changes, version));
}

/**
 * The keys (`group/Kind/namespace/name`) of the objects that may differ between `prev` and
 * `next` when `next` was derived from `prev` (`updateSnapshot`, or `buildSnapshot` with
 * `previous`); `undefined` when it was not. A listed key may hold an equal copy of an object.
 */
export function changedObjectKeys(prev: Snapshot, next: Snapshot): readonly string[] | undefined {
  const a = parts.get(prev);
  const b = parts.get(next);
  if (!a || !b) return undefined;
  if (a === b) return EMPTY;
  return b.base && b.base.id === a.id ? b.base.keys : undefined;
}

/** Everything computed from the objects, with the registry derived from `registry` if given. */
function fromScratch(
  objects: readonly KubeObject[],
  version: string,
  mesh: MeshOptions,
  registry: Registry | undefined,
): SnapshotParts {
  const byKey = new Map<string, KubeObject>();
  for (const o of objects) byKey.set(K.objectKey(o), deepFreeze(o));
  const keys = [...byKey.keys()].sort();
  const sorted = Object.freeze(keys.map((k) => byKey.get(k)!));
  const byKind = new Map<string, KubeObject[]>();
  for (let i = 0; i < keys.length; i++) push(byKind, K.kindKeyOfObjectKey(keys[i]!), sorted[i]!);
  const of = (k: K.KindRef): readonly KubeObject[] => byKind.get(K.kindKey(k)) ?? EMPTY;

  const inputs: RegistryObjects = {
    services: of(K.SERVICE),
    pods: of(K.POD),
    endpointSlices: of(K.ENDPOINT_SLICE),
    serviceEntries: of(K.SERVICE_ENTRY),
    workloadEntries: of(K.WORKLOAD_ENTRY),
  };
  const reg = buildRegistry(inputs, mesh, registry);

  const lists = {} as Record<ListName, readonly unknown[]>;
  for (const name of LIST_NAMES) {
    const { kind, make } = LISTS[name];
    lists[name] = Object.freeze(of(kind).map((o) => deepFreeze(make(o, mesh))));
  }
  return assemble(
    version,
    mesh,
    sorted,
    LayeredMap.of(byKey),
    reg,
    lists as unknown as ConfigLists,
  );
}

/** `prev` after `changes` (same mesh). */
function derive(prev: SnapshotParts, changes: ObjectChanges, version: string): SnapshotParts {
  const effective = new Map<string, KubeObject | undefined>();
  for (const [key, o] of changes) {
    if (prev.byKey.get(key) === o) continue;
    effective.set(key, o && deepFreeze(o));
  }
  if (effective.size === 0) return { ...prev, version, id: {}, base: { id: prev.id, keys: EMPTY } };
  const objects = Object.freeze(patchSorted(prev.objects, K.objectKey, effective));
  const byKey = prev.byKey.with(effective);

  const perKind = new Map<string, Map<string, KubeObject | undefined>>();
  let registryChanged = false;
  for (const [key, o] of effective) {
    const kind = K.kindKeyOfObjectKey(key);
    if (REGISTRY_KINDS.has(kind)) registryChanged = true;
    let m = perKind.get(kind);
    if (!m) perKind.set(kind, (m = new Map<string, KubeObject | undefined>()));
    m.set(key, o);
  }
  const registry = registryChanged ? updateRegistry(prev.registry, effective) : prev.registry;

  const lists = { ...prev.lists } as Record<ListName, readonly unknown[]>;
  for (const name of LIST_NAMES) {
    const { kind, make } = LISTS[name];
    const edits = perKind.get(K.kindKey(kind));
    if (!edits) continue;
    const made = new Map<string, unknown>();
    for (const [key, o] of edits) made.set(key, o && deepFreeze(make(o, prev.mesh)));
    lists[name] = Object.freeze(patchSorted(lists[name], listKey, made));
  }
  return {
    ...assemble(
      version,
      prev.mesh,
      objects,
      byKey,
      registry,
      lists as unknown as ConfigLists,
      prev,
    ),
    base: { id: prev.id, keys: Object.freeze([...effective.keys()]) },
  };
}

/** The indexes over the lists and the registry, reusing those of `prev` whose input is the same. */
function assemble(
  version: string,
  mesh: MeshOptions,
  objects: readonly KubeObject[],
  byKey: LayeredMap<string, KubeObject>,
  registry: Registry,
  lists: ConfigLists,
  prev?: SnapshotParts,
): SnapshotParts {
  const same = (name: ListName): boolean => prev !== undefined && prev.lists[name] === lists[name];
  const vs = same('virtualServices')
    ? prev!.vs
    : new VirtualServiceIndex(lists.virtualServices, mesh);
  const dr = same('destinationRules')
    ? prev!.dr
    : new DestinationRuleIndex(lists.destinationRules, mesh);
  const sidecars = same('sidecars')
    ? prev!.sidecars
    : new SidecarIndex(lists.sidecars, mesh.rootNamespace);
  const gateways = same('gateways')
    ? prev!.gateways
    : new GatewayIndex(lists.gateways, mesh.scopeGatewayToNamespace);
  const policies = POLICY_LISTS.every(same) ? prev!.policies : policiesOf(lists);
  const visibility =
    prev && prev.registry.services === registry.services
      ? prev.visibility
      : new ServiceVisibility(registry.services, mesh);
  const problems =
    prev && prev.registry.problems === registry.problems && prev.dr === dr
      ? prev.problems
      : deepFreeze([...registry.problems, ...dr.notes]);
  return {
    version,
    mesh,
    objects,
    byKey,
    registry,
    lists,
    vs,
    dr,
    sidecars,
    gateways,
    policies,
    visibility,
    problems,
    id: {},
  };
}

/** Security and telemetry configs by `Kind/namespace`, oldest first. */
function policiesOf(lists: ConfigLists): ReadonlyMap<string, readonly Config<unknown>[]> {
  const out = new Map<string, Config<unknown>[]>();
  for (const name of POLICY_LISTS) {
    for (const c of [...(lists[name] as readonly Config<unknown>[])].sort(compareByCreation))
      push(out, `${c.kind}/${c.namespace}`, c);
  }
  for (const l of out.values()) Object.freeze(l);
  return out;
}

/**
 * Services by visibility, oldest first (Istio's ServiceIndex), with the per-namespace views
 * computed on first use. Shared by snapshots whose services are the same.
 */
class ServiceVisibility {
  readonly #private = new Map<string, Service[]>();
  readonly #exportedTo = new Map<string, Service[]>();
  readonly #public: Service[] = [];
  readonly #visibleCache = new Map<string, readonly Service[]>();
  readonly #hostCache = new Map<string, ReadonlyMap<string, Service>>();

  constructor(services: readonly Service[], mesh: MeshOptions) {
    for (const s of [...services].sort(compareByCreation)) {
      const v = visibilityOf(s.exportTo, s.namespace, mesh.defaultServiceExportTo);
      if (v.kind === 'public') this.#public.push(s);
      else
        for (const ns of v.namespaces)
          push(ns === s.namespace ? this.#private : this.#exportedTo, ns, s);
    }
  }

  visibleFrom(namespace: string): readonly Service[] {
    let out = this.#visibleCache.get(namespace);
    if (!out) {
      out = Object.freeze([
        ...(this.#private.get(namespace) ?? EMPTY),
        ...(this.#exportedTo.get(namespace) ?? EMPTY),
        ...this.#public,
      ]);
      this.#visibleCache.set(namespace, out);
    }
    return out;
  }

  forHostname(hostname: string, namespace: string): Service | undefined {
    let byHost = this.#hostCache.get(namespace);
    if (!byHost) {
      const m = new Map<string, Service>();
      for (const s of this.visibleFrom(namespace)) {
        const existing = m.get(s.hostname);
        if (existing && !(existing.origin !== 'Kubernetes' && s.origin === 'Kubernetes')) continue;
        m.set(s.hostname, s);
      }
      byHost = m;
      this.#hostCache.set(namespace, m);
    }
    return byHost.get(hostname);
  }
}

/** The key of a list item: a config's key, or a Namespace object's. */
function listKey(item: unknown): string {
  const c = item as { key?: unknown };
  return typeof c.key === 'string' ? c.key : K.objectKey(item as KubeObject);
}

function sameMesh(a: MeshOptions, b: MeshOptions): boolean {
  return (
    a.domainSuffix === b.domainSuffix &&
    a.trustDomain === b.trustDomain &&
    a.rootNamespace === b.rootNamespace &&
    a.scopeGatewayToNamespace === b.scopeGatewayToNamespace &&
    sameStrings(a.defaultServiceExportTo, b.defaultServiceExportTo) &&
    sameStrings(a.defaultVirtualServiceExportTo, b.defaultVirtualServiceExportTo) &&
    sameStrings(a.defaultDestinationRuleExportTo, b.defaultDestinationRuleExportTo)
  );
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
