// The push snapshot: one immutable, versioned view of every config and the registry, with the
// lookups translation needs (Istio's PushContext). `buildSnapshot` is pure: the same objects
// and options give the same snapshot; no I/O, no clock (the version is passed in).
import {
  groupOf,
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
import { buildRegistry, type Registry, type RegistryObjects } from './registry.js';
import { SidecarIndex } from './sidecars.js';
import { EXPORT_PRIVATE, isExportedTo, visibilityOf } from './visibility.js';
import { VirtualServiceIndex } from './virtual-services.js';

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

  readonly #byKey: ReadonlyMap<string, KubeObject>;
  readonly #registryInputs: RegistryObjects;
  readonly #vs: VirtualServiceIndex;
  readonly #dr: DestinationRuleIndex;
  readonly #sidecars: SidecarIndex;
  readonly #gateways: GatewayIndex;
  readonly #policies = new Map<string, Config<unknown>[]>();
  readonly #private = new Map<string, Service[]>();
  readonly #exportedTo = new Map<string, Service[]>();
  readonly #public: Service[] = [];
  readonly #visibleCache = new Map<string, readonly Service[]>();
  readonly #hostCache = new Map<string, ReadonlyMap<string, Service>>();

  /** Use `buildSnapshot`. */
  constructor(objects: readonly KubeObject[], opts: SnapshotOptions, previous?: Snapshot) {
    const { version, ...overrides } = opts;
    this.version = version;
    this.mesh = meshOptions(overrides);
    const mesh = this.mesh;

    const byKey = new Map<string, KubeObject>();
    const byKind = new Map<string, KubeObject[]>();
    for (const o of objects) {
      const group = groupOf(o.apiVersion);
      const k = K.kindKey({ group, kind: o.kind });
      byKey.set(`${group}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
      const list = byKind.get(k);
      if (list) list.push(o);
      else byKind.set(k, [o]);
    }
    this.#byKey = byKey;
    this.objects = deepFreeze([...byKey.keys()].sort().map((k) => byKey.get(k)!));
    const of = (k: K.KindRef): readonly KubeObject[] => byKind.get(K.kindKey(k)) ?? EMPTY;

    this.#registryInputs = {
      services: of(K.SERVICE),
      pods: of(K.POD),
      endpointSlices: of(K.ENDPOINT_SLICE),
      serviceEntries: of(K.SERVICE_ENTRY),
      workloadEntries: of(K.WORKLOAD_ENTRY),
    };
    this.registry =
      previous &&
      sameMesh(previous.mesh, mesh) &&
      sameInputs(previous.#registryInputs, this.#registryInputs)
        ? previous.registry
        : buildRegistry(
            this.#registryInputs,
            mesh,
            previous && sameMesh(previous.mesh, mesh) ? previous.registry : undefined,
          );

    const sorted = <T extends Config<unknown>>(list: T[]): readonly T[] =>
      deepFreeze(list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
    this.virtualServices = sorted(
      of(K.VIRTUAL_SERVICE).map((o) => virtualServiceConfig(o, mesh.domainSuffix)),
    );
    this.destinationRules = sorted(
      of(K.DESTINATION_RULE).map((o) => destinationRuleConfig(o, mesh.domainSuffix)),
    );
    this.gateways = sorted(of(K.GATEWAY).map(gatewayConfig));
    this.sidecars = sorted(of(K.SIDECAR).map((o) => configOf(o)));
    this.serviceEntries = sorted(of(K.SERVICE_ENTRY).map((o) => configOf(o)));
    this.workloadEntries = sorted(of(K.WORKLOAD_ENTRY).map((o) => configOf(o)));
    this.workloadGroups = sorted(of(K.WORKLOAD_GROUP).map((o) => configOf(o)));
    this.peerAuthentications = sorted(of(K.PEER_AUTHENTICATION).map((o) => configOf(o)));
    this.authorizationPolicies = sorted(of(K.AUTHORIZATION_POLICY).map((o) => configOf(o)));
    this.requestAuthentications = sorted(of(K.REQUEST_AUTHENTICATION).map((o) => configOf(o)));
    this.telemetries = sorted(of(K.TELEMETRY_KIND).map((o) => configOf(o)));
    this.namespaces = deepFreeze(
      [...of(K.NAMESPACE)].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)),
    );

    this.#vs = new VirtualServiceIndex(this.virtualServices, mesh);
    this.#dr = new DestinationRuleIndex(this.destinationRules, mesh);
    this.#sidecars = new SidecarIndex(this.sidecars, mesh.rootNamespace);
    this.#gateways = new GatewayIndex(this.gateways, mesh.scopeGatewayToNamespace);
    for (const list of [
      this.peerAuthentications,
      this.authorizationPolicies,
      this.requestAuthentications,
      this.telemetries,
    ] as readonly (readonly Config<unknown>[])[]) {
      for (const c of [...list].sort(compareByCreation)) {
        const key = `${c.kind}/${c.namespace}`;
        const l = this.#policies.get(key);
        if (l) l.push(c);
        else this.#policies.set(key, [c]);
      }
    }
    for (const l of this.#policies.values()) Object.freeze(l);

    // Services by visibility, oldest first (Istio's ServiceIndex).
    const byAge = [...this.registry.services].sort(compareByCreation);
    for (const s of byAge) {
      const v = visibilityOf(s.exportTo, s.namespace, mesh.defaultServiceExportTo);
      if (v.kind === 'public') this.#public.push(s);
      else
        for (const ns of v.namespaces)
          push(ns === s.namespace ? this.#private : this.#exportedTo, ns, s);
    }

    this.problems = deepFreeze([...this.registry.problems, ...this.#dr.notes]);
    Object.freeze(this);
  }

  // ---------- objects ----------

  /** A stored object by key: `group/Kind/namespace/name` (`/Secret/istio-system/cacerts`). */
  object(key: string): KubeObject | undefined {
    return this.#byKey.get(key);
  }

  /** A Secret (gateway credentials), by namespace and name. */
  secret(namespace: string, name: string): KubeObject | undefined {
    return this.#byKey.get(`/Secret/${namespace}/${name}`);
  }

  /** A Namespace object. */
  namespace(name: string): KubeObject | undefined {
    return this.#byKey.get(`/Namespace//${name}`);
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

  /**
   * The service a proxy of `namespace` reaches for `hostname`. When several visible services
   * share the host name (ServiceEntries in several namespaces), the first in
   * `servicesVisibleFrom` order wins, except that a Kubernetes Service wins over ServiceEntries.
   */
  serviceForHostname(hostname: string, namespace: string): Service | undefined {
    let byHost = this.#hostCache.get(namespace);
    if (!byHost) {
      const m = new Map<string, Service>();
      for (const s of this.servicesVisibleFrom(namespace)) {
        const existing = m.get(s.hostname);
        if (existing && !(existing.origin !== 'Kubernetes' && s.origin === 'Kubernetes')) continue;
        m.set(s.hostname, s);
      }
      byHost = m;
      this.#hostCache.set(namespace, m);
    }
    return byHost.get(hostname);
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
    return this.#vs.forGateway(namespace, gateway);
  }

  /** Those of `virtualServicesForGateway` whose hosts match `host`. */
  virtualServicesForHost(
    host: string,
    namespace: string,
    gateway?: string,
  ): readonly VirtualServiceConfig[] {
    return this.#vs.forHost(host, namespace, gateway);
  }

  /** A VirtualService by namespace and name (delegates included). */
  virtualService(namespace: string, name: string): VirtualServiceConfig | undefined {
    return this.#vs.byName(namespace, name);
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
    return this.#dr.lookup(namespace, hostname, svcNs);
  }

  /** The Sidecar resource for a workload, or undefined (no restriction). */
  sidecarFor(namespace: string, labels: Labels): SidecarConfig | undefined {
    return this.#sidecars.forWorkload(namespace, labels);
  }

  /** The Gateways that select a gateway workload of `namespace` with `labels`. */
  gatewaysFor(namespace: string, labels: Labels): readonly GatewayConfig[] {
    return this.#gateways.forWorkload(namespace, labels);
  }

  /** A Gateway by `namespace/name`. */
  gateway(ref: string): GatewayConfig | undefined {
    return this.#gateways.byRef(ref);
  }

  /**
   * Policies of a kind that may apply to workloads of `namespace`: the root namespace's first,
   * then the namespace's own, each oldest first. Selectors and targetRefs are for the caller.
   */
  policies(kind: PolicyKind, namespace: string): readonly Config<unknown>[] {
    const root = this.#policies.get(`${kind}/${this.mesh.rootNamespace}`) ?? EMPTY;
    if (namespace === this.mesh.rootNamespace) return root;
    const own = this.#policies.get(`${kind}/${namespace}`) ?? EMPTY;
    return root.length === 0 ? own : own.length === 0 ? root : Object.freeze([...root, ...own]);
  }
}

/**
 * Builds a snapshot from every object (any kinds; those a snapshot does not read are kept in
 * `objects` only). The objects are frozen in place, so the caller must not change them later.
 * `previous` lets an unchanged registry be reused.
 */
export function buildSnapshot(
  objects: readonly KubeObject[],
  opts: SnapshotOptions,
  previous?: Snapshot,
): Snapshot {
  return new Snapshot(objects, opts, previous);
}

function sameInputs(a: RegistryObjects, b: RegistryObjects): boolean {
  return (
    sameList(a.services, b.services) &&
    sameList(a.pods, b.pods) &&
    sameList(a.endpointSlices, b.endpointSlices) &&
    sameList(a.serviceEntries, b.serviceEntries) &&
    sameList(a.workloadEntries, b.workloadEntries)
  );
}

function sameList(a: readonly KubeObject[], b: readonly KubeObject[]): boolean {
  return a.length === b.length && a.every((o, i) => o === b[i]);
}

function sameMesh(a: MeshOptions, b: MeshOptions): boolean {
  return (
    a.domainSuffix === b.domainSuffix &&
    a.trustDomain === b.trustDomain &&
    a.rootNamespace === b.rootNamespace
  );
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
