// The registry: every service, workload and endpoint derived from Kubernetes Services, Pods,
// EndpointSlices, ServiceEntries and WorkloadEntries, with the lookups translation needs.
// Built in one pass from plain objects (no I/O), or derived from a previous registry and the
// objects that changed since (`updateRegistry`): only the services that may depend on a changed
// object are looked at again, everything else is shared. Both give the same result; the result
// is deep-frozen.
import type { KubeObject } from '@trellis/api';
import { deepEqual, deepFreeze, errorMessage } from '@trellis/core';
import {
  kubeServiceDeps,
  serviceEntryDeps,
  sliceDep,
  sliceOwner,
  workloadDeps,
} from './dependencies.js';
import { compareEndpoints } from './endpoints.js';
import { buildKubeService, kubeServiceInputs, type BuiltService } from './kube-services.js';
import * as K from './kinds.js';
import type { Endpoint, ObjectRef, RegistryProblem, Service, Workload } from './model.js';
import type { MeshOptions } from './options.js';
import { LayeredMap, MapEditor, compareStrings, patchSorted, sameRefs } from './persistent.js';
import { buildServiceEntry, serviceEntryInputs } from './service-entries.js';
import { LABEL_SERVICE_NAME } from './well-known.js';
import { WorkloadIndex, workloadKey, type WorkloadChange } from './workload-index.js';
import { podWorkload, workloadEntryWorkload } from './workloads.js';

/** The objects a registry is built from, by kind. */
export interface RegistryObjects {
  readonly services: readonly KubeObject[];
  readonly pods: readonly KubeObject[];
  readonly endpointSlices: readonly KubeObject[];
  readonly serviceEntries: readonly KubeObject[];
  readonly workloadEntries: readonly KubeObject[];
}

/**
 * Changed objects by key (`group/Kind/namespace/name`): the object now, or `undefined` when it
 * was deleted. Keys of kinds the registry does not read are ignored.
 */
export type ObjectChanges = ReadonlyMap<string, KubeObject | undefined>;

const EMPTY: readonly never[] = Object.freeze([]);

const POD_KIND = K.kindKey(K.POD);
const WORKLOAD_ENTRY_KIND = K.kindKey(K.WORKLOAD_ENTRY);
const SLICE_KIND = K.kindKey(K.ENDPOINT_SLICE);
const SERVICE_KIND = K.kindKey(K.SERVICE);
const SERVICE_ENTRY_KIND = K.kindKey(K.SERVICE_ENTRY);

/** A Pod or WorkloadEntry object and what it reads as. */
interface WorkloadSource {
  readonly object: KubeObject;
  readonly workload: Workload | undefined;
  readonly problems: readonly RegistryProblem[];
}

/** A Service or ServiceEntry object, its services and what they were built from. */
interface Unit {
  readonly object: KubeObject;
  readonly kind: 'Service' | 'ServiceEntry';
  /** The objects its endpoints were built from (`kubeServiceInputs`, `serviceEntryInputs`). */
  readonly inputs: readonly object[];
  /** Dependency keys (`dependencies.ts`), sorted. */
  readonly deps: readonly string[];
  readonly built: readonly BuiltService[];
  readonly problems: readonly RegistryProblem[];
}

/** What a registry keeps so that the next one can be derived from it. */
interface RegistryState {
  readonly mesh: MeshOptions;
  /** Pods and WorkloadEntries by object key. */
  readonly workloadSources: LayeredMap<string, WorkloadSource>;
  /** EndpointSlices by object key. */
  readonly slices: LayeredMap<string, KubeObject>;
  /** EndpointSlices by Service (`namespace/name`), sorted by key. */
  readonly slicesByService: LayeredMap<string, readonly KubeObject[]>;
  /** Services and ServiceEntries by object key. */
  readonly units: LayeredMap<string, Unit>;
  /** Unit keys by dependency key. */
  readonly deps: LayeredMap<string, readonly string[]>;
  /** Unit keys by the service key they define. */
  readonly hostUnits: LayeredMap<string, readonly string[]>;
  readonly index: WorkloadIndex;
  /** Problems by object key (objects without problems are absent). */
  readonly objectProblems: ReadonlyMap<string, readonly RegistryProblem[]>;
  /** Problems of hosts defined more than once, by service key. */
  readonly hostProblems: ReadonlyMap<string, readonly RegistryProblem[]>;
}

/** The parts of a registry (use `buildRegistry`). */
export interface RegistryParts {
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
  readonly problems: readonly RegistryProblem[];
  readonly byHostNs: LayeredMap<string, Service>;
  readonly byHost: LayeredMap<string, readonly Service[]>;
  readonly byNamespace: LayeredMap<string, readonly Service[]>;
  readonly endpoints: LayeredMap<string, readonly Endpoint[]>;
  readonly endpointsByPort: LayeredMap<string, readonly Endpoint[]>;
  readonly workloadsByAddress: LayeredMap<string, readonly Workload[]>;
  readonly workloadEndpoints: LayeredMap<string, readonly Endpoint[]>;
  readonly state: RegistryState;
  /** Identifies these parts (a registry derived from them names it in `base`). */
  readonly id: object;
  /** For parts derived from others: their id and the keys of the services that changed. */
  readonly base?: { readonly id: object; readonly services: readonly string[] };
}

const states = new WeakMap<Registry, RegistryParts>();

/** Services, workloads and endpoints, immutable, with lookups. */
export class Registry {
  /** Every service, sorted by hostname then namespace. */
  readonly services: readonly Service[];
  /** Every workload (Pods, then WorkloadEntries), sorted by kind, namespace, name. */
  readonly workloads: readonly Workload[];
  /**
   * Objects skipped or partly used, with the reason: those of Pods, WorkloadEntries, Services
   * and ServiceEntries (each kind by namespace and name), then hosts defined more than once.
   */
  readonly problems: readonly RegistryProblem[];
  readonly #p: RegistryParts;

  /** Use `buildRegistry`. */
  constructor(parts: RegistryParts) {
    this.services = parts.services;
    this.workloads = parts.workloads;
    this.problems = parts.problems;
    this.#p = parts;
    states.set(this, parts);
    Object.freeze(this);
  }

  /** The service of `hostname` defined in `namespace`. */
  service(hostname: string, namespace: string): Service | undefined {
    return this.#p.byHostNs.get(serviceKey(hostname, namespace));
  }

  /** Every service of this host name, one per namespace that defines it, by namespace. */
  servicesForHostname(hostname: string): readonly Service[] {
    return this.#p.byHost.get(hostname) ?? EMPTY;
  }

  /** The services defined in a namespace, by hostname. */
  servicesInNamespace(namespace: string): readonly Service[] {
    return this.#p.byNamespace.get(namespace) ?? EMPTY;
  }

  /**
   * The endpoints of a service (`hostname` in `namespace`), of one service port when `port` is
   * given; sorted by port, address, endpoint port and workload. A registry derived from another
   * returns the same array (by reference) for a service whose endpoints did not change.
   */
  endpoints(hostname: string, namespace: string, port?: number): readonly Endpoint[] {
    const key = serviceKey(hostname, namespace);
    if (port === undefined) return this.#p.endpoints.get(key) ?? EMPTY;
    return this.#p.endpointsByPort.get(portKey(key, port)) ?? EMPTY;
  }

  /** A workload by kind, namespace and name (a proxy's own Pod or WorkloadEntry). */
  workload(kind: Workload['kind'], namespace: string, name: string): Workload | undefined {
    return this.#p.state.index.get(kind, namespace, name);
  }

  /** The workloads with an address (several in local mode, where they share 127.0.0.1). */
  workloadsAt(address: string): readonly Workload[] {
    return this.#p.workloadsByAddress.get(address) ?? EMPTY;
  }

  /**
   * Every endpoint a workload serves, across services (in `services` order): what its sidecar's
   * inbound side listens for (`inbound|<targetPort>||`).
   */
  endpointsOfWorkload(
    kind: Workload['kind'],
    namespace: string,
    name: string,
  ): readonly Endpoint[] {
    return this.#p.workloadEndpoints.get(workloadKey(kind, namespace, name)) ?? EMPTY;
  }
}

/** `namespace\0hostname`: the identity of a service. */
export function serviceKey(hostname: string, namespace: string): string {
  return `${namespace}\u0000${hostname}`;
}

/**
 * The keys (`serviceKey`) of the services whose Service object or endpoint list differ (as
 * references) between `prev` and `next` when `next` was derived from `prev`; `undefined` when
 * it was not. Every other service and endpoint list is the same object in both.
 */
export function changedServiceKeys(prev: Registry, next: Registry): readonly string[] | undefined {
  const a = states.get(prev);
  const b = states.get(next);
  if (!a || !b) return undefined;
  if (a === b) return EMPTY;
  return b.base && b.base.id === a.id ? b.base.services : undefined;
}

/**
 * Builds the registry from objects (no I/O). Objects that cannot be read are skipped and
 * reported. With `previous` (built with the same mesh options), the result is derived from it:
 * the services whose inputs are the same objects as then are reused, so that a change to a few
 * Pods rebuilds only the services that select them, and unchanged services keep their identity
 * (cheap to diff).
 */
export function buildRegistry(
  objects: RegistryObjects,
  opts: MeshOptions,
  previous?: Registry,
): Registry {
  const prev = previous ? states.get(previous) : undefined;
  if (!previous || !prev || !sameRegistryMesh(prev.state.mesh, opts))
    return buildFromScratch(objects, opts);
  const s = prev.state;
  const changes = new Map<string, KubeObject | undefined>();
  const seen = new Set<string>();
  const scan = (list: readonly KubeObject[], kind: string, old: (key: string) => unknown): void => {
    for (const o of list) {
      const key = K.objectKey(o);
      if (K.kindKeyOfObjectKey(key) !== kind) continue;
      seen.add(key);
      if (old(key) !== o) changes.set(key, o);
    }
  };
  scan(objects.pods, POD_KIND, (k) => s.workloadSources.get(k)?.object);
  scan(objects.workloadEntries, WORKLOAD_ENTRY_KIND, (k) => s.workloadSources.get(k)?.object);
  scan(objects.endpointSlices, SLICE_KIND, (k) => s.slices.get(k));
  scan(objects.services, SERVICE_KIND, (k) => s.units.get(k)?.object);
  scan(objects.serviceEntries, SERVICE_ENTRY_KIND, (k) => s.units.get(k)?.object);
  for (const map of [s.workloadSources, s.units] as const)
    for (const [k] of map.entries()) if (!seen.has(k)) changes.set(k, undefined);
  for (const [k] of s.slices.entries()) if (!seen.has(k)) changes.set(k, undefined);
  return updateRegistry(previous, changes);
}

/**
 * The registry `previous` becomes after `changes` (objects of other kinds are ignored): the
 * same as `buildRegistry` over the changed objects, computed from the services that may depend
 * on them. Returns `previous` itself when nothing it reads changed. Unchanged services, their
 * endpoint arrays and per-port endpoint arrays are the same references as in `previous`.
 */
export function updateRegistry(previous: Registry, changes: ObjectChanges): Registry {
  const prev = states.get(previous);
  if (!prev) throw new Error('updateRegistry: not a registry built by buildRegistry');
  const s = prev.state;
  const mesh = s.mesh;

  // 1. Workloads, slices and directly changed Services/ServiceEntries.
  const sources = new MapEditor(s.workloadSources);
  const slices = new MapEditor(s.slices);
  const touched = new Set<string>();
  const candidates = new Set<string>();
  const workloadChanges: WorkloadChange[] = [];
  const changedSlices = new Map<string, Set<string>>();
  let problems: Map<string, readonly RegistryProblem[]> | undefined;
  const setProblems = (key: string, list: readonly RegistryProblem[]): void => {
    const had = (problems ?? s.objectProblems).get(key);
    if ((had ?? EMPTY).length === 0 && list.length === 0) return;
    problems ??= new Map(s.objectProblems);
    if (list.length > 0) problems.set(key, list);
    else problems.delete(key);
  };

  for (const [key, obj] of changes) {
    const kind = K.kindKeyOfObjectKey(key);
    if (kind === POD_KIND || kind === WORKLOAD_ENTRY_KIND) {
      const old = sources.get(key);
      if (old?.object === obj) continue;
      const now = obj ? readWorkload(obj, mesh, old?.workload) : undefined;
      sources.set(key, now);
      setProblems(key, now?.problems ?? EMPTY);
      if (old?.workload !== now?.workload) {
        workloadChanges.push({ before: old?.workload, after: now?.workload });
        for (const w of [old?.workload, now?.workload])
          if (w) for (const d of workloadDeps(w)) touched.add(d);
      }
    } else if (kind === SLICE_KIND) {
      const old = slices.get(key);
      if (old === obj) continue;
      slices.set(key, obj);
      for (const v of [old, obj]) {
        const svc = v && sliceOwner(v, LABEL_SERVICE_NAME);
        if (!v || !svc) continue;
        const ns = v.metadata.namespace ?? 'default';
        const group = `${ns}/${svc}`;
        let keys = changedSlices.get(group);
        if (!keys) changedSlices.set(group, (keys = new Set()));
        keys.add(key);
        touched.add(sliceDep(ns, svc));
      }
    } else if (kind === SERVICE_KIND || kind === SERVICE_ENTRY_KIND) {
      if (s.units.get(key)?.object !== obj) candidates.add(key);
    }
  }
  if (!sources.changed && !slices.changed && candidates.size === 0) return previous;

  const index = s.index.with(workloadChanges);
  const sliceGroups = new MapEditor(s.slicesByService);
  for (const [group, keys] of changedSlices) {
    const list = (sliceGroups.get(group) ?? EMPTY).filter((o) => !keys.has(K.objectKey(o)));
    for (const k of keys) {
      const o = slices.get(k);
      if (
        o &&
        `${o.metadata.namespace ?? 'default'}/${sliceOwner(o, LABEL_SERVICE_NAME)}` === group
      )
        list.push(o);
    }
    list.sort((a, b) => compareStrings(K.objectKey(a), K.objectKey(b)));
    sliceGroups.set(group, list.length > 0 ? Object.freeze(list) : undefined);
  }
  const slicesByService = sliceGroups.done();

  // 2. The units that may depend on what changed: rebuilt when their inputs differ.
  for (const d of touched) for (const u of s.deps.get(d) ?? EMPTY) candidates.add(u);
  const units = new MapEditor(s.units);
  const deps = new ListEditor(s.deps);
  const hostUnits = new ListEditor(s.hostUnits);
  const hosts = new Set<string>();
  for (const key of [...candidates].sort(compareStrings)) {
    const old = s.units.get(key);
    const obj = changes.has(key) ? changes.get(key) : old?.object;
    const unit = obj
      ? buildUnit(
          K.kindKeyOfObjectKey(key) === SERVICE_KIND ? 'Service' : 'ServiceEntry',
          obj,
          slicesByService,
          index,
          mesh,
          old,
        )
      : undefined;
    if (unit === old) continue;
    units.set(key, unit);
    setProblems(key, unit?.problems ?? EMPTY);
    const oldDeps = old?.deps ?? EMPTY;
    const newDeps = unit?.deps ?? EMPTY;
    if (!sameRefs(oldDeps, newDeps)) {
      for (const d of oldDeps) deps.remove(d, key);
      for (const d of newDeps) deps.add(d, key);
    }
    const before = new Map((old?.built ?? EMPTY).map((b) => [builtKey(b), b]));
    const after = new Map((unit?.built ?? EMPTY).map((b) => [builtKey(b), b]));
    for (const [h, b] of before) {
      if (after.get(h) !== b) hosts.add(h);
      if (!after.has(h)) hostUnits.remove(h, key);
    }
    for (const [h, b] of after) {
      if (before.get(h) !== b) hosts.add(h);
      if (!before.has(h)) hostUnits.add(h, key);
    }
  }
  const unitMap = units.done();
  const hostUnitMap = hostUnits.done();

  // 3. The services of the hosts whose definitions changed.
  const serviceEdits = new Map<string, Service | undefined>();
  const endpointEdits = new Map<string, readonly Endpoint[] | undefined>();
  let hostProblems: Map<string, readonly RegistryProblem[]> | undefined;
  for (const h of [...hosts].sort(compareStrings)) {
    const group = (hostUnitMap.get(h) ?? EMPTY).map((u) =>
      unitMap.get(u)!.built.find((b) => builtKey(b) === h)!,
    );
    const oldService = prev.byHostNs.get(h);
    const oldEndpoints = prev.endpoints.get(h);
    const merged = group.length > 0 ? mergeDefinitions(group) : undefined;
    let service = merged?.service;
    let endpoints = merged?.endpoints;
    if (service && oldService && (service === oldService || deepEqual(service, oldService)))
      service = oldService;
    if (
      endpoints &&
      oldEndpoints &&
      (endpoints === oldEndpoints || deepEqual(endpoints, oldEndpoints))
    )
      endpoints = oldEndpoints;
    if (service !== oldService) serviceEdits.set(h, service);
    if (endpoints !== oldEndpoints) endpointEdits.set(h, endpoints);
    const dup = merged?.problems ?? EMPTY;
    if (dup.length > 0 || s.hostProblems.has(h)) {
      hostProblems ??= new Map(s.hostProblems);
      if (dup.length > 0) hostProblems.set(h, dup);
      else hostProblems.delete(h);
    }
  }

  const state: RegistryState = {
    mesh,
    workloadSources: sources.done(),
    slices: slices.done(),
    slicesByService,
    units: unitMap,
    deps: deps.done(),
    hostUnits: hostUnitMap,
    index,
    objectProblems: problems ?? s.objectProblems,
    hostProblems: hostProblems ?? s.hostProblems,
  };
  return new Registry({
    ...derive(prev, state, serviceEdits, endpointEdits, workloadChanges),
    base: {
      id: prev.id,
      services: Object.freeze([...new Set([...serviceEdits.keys(), ...endpointEdits.keys()])]),
    },
  });
}

/** The lookups of a registry: those of `prev` with the edits applied. */
function derive(
  prev: RegistryParts,
  state: RegistryState,
  serviceEdits: ReadonlyMap<string, Service | undefined>,
  endpointEdits: ReadonlyMap<string, readonly Endpoint[] | undefined>,
  workloadChanges: readonly WorkloadChange[],
): RegistryParts {
  // Services.
  let services = prev.services;
  let byHostNs = prev.byHostNs;
  let byHost = prev.byHost;
  let byNamespace = prev.byNamespace;
  if (serviceEdits.size > 0) {
    const sorted = new Map<string, Service | undefined>();
    const perHost = new Map<string, Map<string, Service | undefined>>();
    const perNamespace = new Map<string, Map<string, Service | undefined>>();
    for (const [key, s] of serviceEdits) {
      const [namespace, hostname] = splitServiceKey(key);
      sorted.set(serviceSortKey(hostname, namespace), s);
      nested(perHost, hostname).set(namespace, s);
      nested(perNamespace, namespace).set(hostname, s);
    }
    services = Object.freeze(
      patchSorted(prev.services, (s) => serviceSortKey(s.hostname, s.namespace), sorted),
    );
    byHostNs = prev.byHostNs.with(serviceEdits);
    byHost = patchLists(prev.byHost, perHost, (s) => s.namespace);
    byNamespace = patchLists(prev.byNamespace, perNamespace, (s) => s.hostname);
  }

  // Endpoints, by service and by service port.
  let endpointsByPort = prev.endpointsByPort;
  let workloadEndpoints = prev.workloadEndpoints;
  const endpoints = prev.endpoints.with(endpointEdits);
  if (endpointEdits.size > 0) {
    const portEdits = new Map<string, readonly Endpoint[] | undefined>();
    const affected = new Map<string, Set<string>>();
    for (const [key, list] of endpointEdits) {
      const old = prev.endpoints.get(key) ?? EMPTY;
      const now = byPort(list ?? EMPTY);
      for (const e of old) {
        const p = portKey(key, e.servicePort);
        if (!now.has(e.servicePort)) portEdits.set(p, undefined);
      }
      for (const [port, l] of now) {
        const p = portKey(key, port);
        const before = prev.endpointsByPort.get(p);
        portEdits.set(
          p,
          before && (sameRefs(before, l) || deepEqual(before, l)) ? before : Object.freeze(l),
        );
      }
      for (const e of [...old, ...(list ?? EMPTY)])
        if (e.workload) {
          const wk = workloadKey(e.workload.kind, e.workload.namespace, e.workload.name);
          let set = affected.get(wk);
          if (!set) affected.set(wk, (set = new Set()));
          set.add(key);
        }
    }
    endpointsByPort = prev.endpointsByPort.with(portEdits);

    // The endpoints of each affected workload, in `services` order.
    const wlEdits = new Map<string, readonly Endpoint[] | undefined>();
    for (const [wk, changedServices] of affected) {
      const keys = new Set(changedServices);
      for (const e of prev.workloadEndpoints.get(wk) ?? EMPTY)
        keys.add(serviceKey(e.hostname, e.serviceNamespace));
      const ordered = [...keys]
        .map((k) => {
          const [namespace, hostname] = splitServiceKey(k);
          return { k, sort: serviceSortKey(hostname, namespace) };
        })
        .sort((a, b) => compareStrings(a.sort, b.sort));
      const out: Endpoint[] = [];
      for (const { k } of ordered)
        for (const e of endpoints.get(k) ?? EMPTY)
          if (
            e.workload &&
            workloadKey(e.workload.kind, e.workload.namespace, e.workload.name) === wk
          )
            out.push(e);
      wlEdits.set(wk, out.length > 0 ? Object.freeze(out) : undefined);
    }
    workloadEndpoints = prev.workloadEndpoints.with(wlEdits);
  }

  // Workloads.
  let workloads = prev.workloads;
  let workloadsByAddress = prev.workloadsByAddress;
  if (workloadChanges.length > 0) {
    const edits = new Map<string, Workload | undefined>();
    const byAddress = new Map<string, Map<string, Workload | undefined>>();
    for (const { before } of workloadChanges) {
      if (before) {
        edits.set(workloadSortKey(before), undefined);
        if (before.address !== '')
          nested(byAddress, before.address).set(workloadSortKey(before), undefined);
      }
    }
    for (const { after } of workloadChanges) {
      if (after) {
        edits.set(workloadSortKey(after), after);
        if (after.address !== '')
          nested(byAddress, after.address).set(workloadSortKey(after), after);
      }
    }
    workloads = Object.freeze(patchSorted(prev.workloads, workloadSortKey, edits));
    workloadsByAddress = patchLists(prev.workloadsByAddress, byAddress, workloadSortKey);
  }

  const problems =
    state.objectProblems === prev.state.objectProblems &&
    state.hostProblems === prev.state.hostProblems
      ? prev.problems
      : assembleProblems(state);
  return {
    services,
    workloads,
    problems,
    byHostNs,
    byHost,
    byNamespace,
    endpoints,
    endpointsByPort,
    workloadsByAddress,
    workloadEndpoints,
    state,
    id: {},
  };
}

/** The registry of `objects`, computed from nothing. */
function buildFromScratch(objects: RegistryObjects, mesh: MeshOptions): Registry {
  const byKey = <T>(
    list: readonly KubeObject[],
    kind: string,
    f: (o: KubeObject) => T,
  ): Map<string, T> => {
    const m = new Map<string, T>();
    for (const o of list) {
      const key = K.objectKey(o);
      if (K.kindKeyOfObjectKey(key) === kind) m.set(key, f(o));
    }
    return m;
  };
  const objectProblems = new Map<string, readonly RegistryProblem[]>();
  const workloadSources = byKey(objects.pods, POD_KIND, (o) => readWorkload(o, mesh));
  for (const [k, v] of byKey(objects.workloadEntries, WORKLOAD_ENTRY_KIND, (o) =>
    readWorkload(o, mesh),
  ))
    workloadSources.set(k, v);
  const all: Workload[] = [];
  for (const [k, w] of workloadSources) {
    if (w.workload) all.push(w.workload);
    if (w.problems.length > 0) objectProblems.set(k, w.problems);
  }
  const index = WorkloadIndex.of(all);

  const slices = byKey(objects.endpointSlices, SLICE_KIND, (o) => o);
  const groups = new Map<string, KubeObject[]>();
  for (const [, o] of [...slices].sort((a, b) => compareStrings(a[0], b[0]))) {
    const svc = sliceOwner(o, LABEL_SERVICE_NAME);
    if (svc) push(groups, `${o.metadata.namespace ?? 'default'}/${svc}`, o);
  }
  for (const l of groups.values()) Object.freeze(l);
  const slicesByService = LayeredMap.of<string, readonly KubeObject[]>(groups);

  const units = new Map<string, Unit>();
  for (const [k, o] of byKey(objects.services, SERVICE_KIND, (o) => o))
    units.set(k, buildUnit('Service', o, slicesByService, index, mesh));
  for (const [k, o] of byKey(objects.serviceEntries, SERVICE_ENTRY_KIND, (o) => o))
    units.set(k, buildUnit('ServiceEntry', o, slicesByService, index, mesh));

  const deps = new Map<string, string[]>();
  const hostUnits = new Map<string, string[]>();
  const definitions = new Map<string, BuiltService[]>();
  for (const [k, u] of [...units].sort((a, b) => compareStrings(a[0], b[0]))) {
    if (u.problems.length > 0) objectProblems.set(k, u.problems);
    for (const d of u.deps) push(deps, d, k);
    for (const b of u.built) {
      push(hostUnits, builtKey(b), k);
      push(definitions, builtKey(b), b);
    }
  }

  const hostProblems = new Map<string, readonly RegistryProblem[]>();
  const services: Service[] = [];
  const endpoints = new Map<string, readonly Endpoint[]>();
  for (const [key, group] of definitions) {
    const m = mergeDefinitions(group);
    services.push(m.service);
    endpoints.set(key, m.endpoints);
    if (m.problems.length > 0) hostProblems.set(key, m.problems);
  }
  services.sort(compareServices);

  const byHostNs = new Map<string, Service>();
  const byHost = new Map<string, Service[]>();
  const byNamespace = new Map<string, Service[]>();
  const endpointsByPort = new Map<string, readonly Endpoint[]>();
  const workloadEndpoints = new Map<string, Endpoint[]>();
  for (const s of services) {
    const key = serviceKey(s.hostname, s.namespace);
    byHostNs.set(key, s);
    push(byHost, s.hostname, s);
    push(byNamespace, s.namespace, s);
    const list = endpoints.get(key) ?? EMPTY;
    for (const [port, l] of byPort(list)) endpointsByPort.set(portKey(key, port), Object.freeze(l));
    for (const e of list)
      if (e.workload)
        push(
          workloadEndpoints,
          workloadKey(e.workload.kind, e.workload.namespace, e.workload.name),
          e,
        );
  }
  const workloads = Object.freeze(all.sort(compareWorkloads));
  const workloadsByAddress = new Map<string, Workload[]>();
  for (const w of workloads) if (w.address !== '') push(workloadsByAddress, w.address, w);
  for (const m of [byHost, byNamespace, workloadEndpoints, workloadsByAddress])
    for (const l of m.values()) Object.freeze(l);

  const state: RegistryState = {
    mesh,
    workloadSources: LayeredMap.of(workloadSources),
    slices: LayeredMap.of(slices),
    slicesByService,
    units: LayeredMap.of(units),
    deps: LayeredMap.of<string, readonly string[]>(freezeLists(deps)),
    hostUnits: LayeredMap.of<string, readonly string[]>(freezeLists(hostUnits)),
    index,
    objectProblems,
    hostProblems,
  };
  return new Registry({
    services: Object.freeze(services),
    workloads,
    problems: assembleProblems(state),
    byHostNs: LayeredMap.of(byHostNs),
    byHost: LayeredMap.of<string, readonly Service[]>(byHost),
    byNamespace: LayeredMap.of<string, readonly Service[]>(byNamespace),
    endpoints: LayeredMap.of(endpoints),
    endpointsByPort: LayeredMap.of(endpointsByPort),
    workloadsByAddress: LayeredMap.of<string, readonly Workload[]>(workloadsByAddress),
    workloadEndpoints: LayeredMap.of<string, readonly Endpoint[]>(workloadEndpoints),
    state,
    id: {},
  });
}

/** A Pod or WorkloadEntry read as a workload; `old` is kept when the new one equals it. */
function readWorkload(o: KubeObject, mesh: MeshOptions, old?: Workload): WorkloadSource {
  const ref = refOf(o);
  try {
    let workload: Workload | undefined;
    let messages: readonly string[] = EMPTY;
    if (K.kindKeyOfObjectKey(K.objectKey(o)) === POD_KIND) {
      const r = podWorkload(o, mesh.trustDomain);
      workload = r.workload;
      messages = r.problems;
    } else workload = deepFreeze(workloadEntryWorkload(o, mesh.trustDomain));
    if (old && workload && deepEqual(old, workload)) workload = old;
    return Object.freeze({
      object: o,
      workload,
      problems: deepFreeze(messages.map((message) => ({ object: ref, message }))),
    });
  } catch (e) {
    return Object.freeze({
      object: o,
      workload: undefined,
      problems: deepFreeze([{ object: ref, message: `cannot be read: ${errorMessage(e)}` }]),
    });
  }
}

/**
 * A Service or ServiceEntry with its services. With `old` (the unit of the same key before):
 * `old` itself when the object and its inputs are the same, else the new unit reusing every
 * service and endpoint list that equals the old one.
 */
function buildUnit(
  kind: Unit['kind'],
  obj: KubeObject,
  slicesByService: LayeredMap<string, readonly KubeObject[]>,
  index: WorkloadIndex,
  mesh: MeshOptions,
  old?: Unit,
): Unit {
  let inputs: readonly object[] = EMPTY;
  let deps: readonly string[] = EMPTY;
  let built: readonly BuiltService[] = EMPTY;
  let problems: readonly RegistryProblem[] = EMPTY;
  const count = (ns: string, k: string, v: string): number => index.labelCount(ns, k, v);
  try {
    if (kind === 'Service') {
      const own = slicesByService.get(
        `${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`,
      );
      deps = kubeServiceDeps(obj, own, count);
      inputs = kubeServiceInputs(obj, own, index);
      if (old && old.object === obj && sameRefs(old.inputs, inputs)) return old;
      built = [finish(buildKubeService(obj, own, index, mesh))];
    } else {
      deps = serviceEntryDeps(obj, count);
      inputs = serviceEntryInputs(obj, index);
      if (old && old.object === obj && sameRefs(old.inputs, inputs)) return old;
      built = buildServiceEntry(obj, index, mesh).map(finish);
    }
  } catch (e) {
    built = EMPTY;
    problems = deepFreeze([{ object: refOf(obj), message: `cannot be read: ${errorMessage(e)}` }]);
  }
  if (old) built = reuseBuilt(built, old.built);
  return Object.freeze({
    object: obj,
    kind,
    inputs: Object.freeze(inputs),
    deps: Object.freeze(deps),
    built: Object.freeze(built),
    problems,
  });
}

/** `built` with every service and endpoint list equal to one of `old` replaced by that one. */
function reuseBuilt(
  built: readonly BuiltService[],
  old: readonly BuiltService[],
): readonly BuiltService[] {
  if (old.length === 0) return built;
  let same = built.length === old.length;
  const out = built.map((b, i) => {
    const o = old.find((x) => builtKey(x) === builtKey(b));
    if (!o) {
      same = false;
      return b;
    }
    const service = deepEqual(b.service, o.service) ? o.service : b.service;
    const endpoints = deepEqual(b.endpoints, o.endpoints) ? o.endpoints : b.endpoints;
    if (service === o.service && endpoints === o.endpoints) {
      if (old[i] !== o) same = false;
      return o;
    }
    same = false;
    return Object.freeze({ service, endpoints });
  });
  return same ? old : out;
}

/**
 * One service per (hostname, namespace) from its definitions: a Kubernetes Service wins over
 * ServiceEntries (no "domain squatting"), then the oldest definition. Endpoints of every
 * definition are kept; the losers are reported.
 */
function mergeDefinitions(definitions: readonly BuiltService[]): {
  service: Service;
  endpoints: readonly Endpoint[];
  problems: readonly RegistryProblem[];
} {
  const group = [...definitions].sort((a, b) => comparePrecedence(a.service, b.service));
  const first = group[0]!;
  if (group.length === 1)
    return { service: first.service, endpoints: first.endpoints, problems: EMPTY };
  const all = group.flatMap((g) => g.endpoints);
  const accounts = new Set(first.service.serviceAccounts);
  for (const e of all) if (e.serviceAccount !== undefined) accounts.add(e.serviceAccount);
  const service = deepFreeze({ ...first.service, serviceAccounts: [...accounts].sort() });
  const problems = group.slice(1).map((other) => ({
    object: other.service.source,
    message: `host ${service.hostname} in namespace ${service.namespace} is already defined by ${describeRef(first.service.source)}; its ports and addresses are ignored, its endpoints are kept`,
  }));
  return {
    service,
    endpoints: Object.freeze(all.sort(compareEndpoints)),
    problems: deepFreeze(problems),
  };
}

/** Per-object problems (Pods, WorkloadEntries, Services, ServiceEntries), then hosts'. */
function assembleProblems(state: RegistryState): readonly RegistryProblem[] {
  const rank = (key: string): number => {
    const i = PROBLEM_KINDS.indexOf(K.kindKeyOfObjectKey(key));
    return i < 0 ? PROBLEM_KINDS.length : i;
  };
  const objectKeys = [...state.objectProblems.keys()].sort(
    (a, b) => rank(a) - rank(b) || compareStrings(a, b),
  );
  const hostKeys = [...state.hostProblems.keys()]
    .map((k) => {
      const [namespace, hostname] = splitServiceKey(k);
      return { k, sort: serviceSortKey(hostname, namespace) };
    })
    .sort((a, b) => compareStrings(a.sort, b.sort));
  return Object.freeze([
    ...objectKeys.flatMap((k) => state.objectProblems.get(k)!),
    ...hostKeys.flatMap(({ k }) => state.hostProblems.get(k)!),
  ]);
}

const PROBLEM_KINDS: readonly string[] = [
  POD_KIND,
  WORKLOAD_ENTRY_KIND,
  SERVICE_KIND,
  SERVICE_ENTRY_KIND,
];

/** Copy-on-write edits of sorted string lists in a `LayeredMap`. */
class ListEditor {
  readonly #lists = new Map<string, string[]>();

  constructor(private readonly map: LayeredMap<string, readonly string[]>) {}

  #list(key: string): string[] {
    let l = this.#lists.get(key);
    if (!l) this.#lists.set(key, (l = [...(this.map.get(key) ?? EMPTY)]));
    return l;
  }

  add(key: string, value: string): void {
    const l = this.#list(key);
    if (!l.includes(value)) {
      l.push(value);
      l.sort(compareStrings);
    }
  }

  remove(key: string, value: string): void {
    const l = this.#list(key);
    const i = l.indexOf(value);
    if (i >= 0) l.splice(i, 1);
  }

  done(): LayeredMap<string, readonly string[]> {
    const edits = new Map<string, readonly string[] | undefined>();
    for (const [k, l] of this.#lists) edits.set(k, l.length > 0 ? Object.freeze(l) : undefined);
    return this.map.with(edits);
  }
}

/** Lists (sorted by `keyOf`) in a `LayeredMap`, with per-list edits keyed by `keyOf`. */
function patchLists<T>(
  map: LayeredMap<string, readonly T[]>,
  edits: ReadonlyMap<string, ReadonlyMap<string, T | undefined>>,
  keyOf: (item: T) => string,
): LayeredMap<string, readonly T[]> {
  const out = new Map<string, readonly T[] | undefined>();
  for (const [key, e] of edits) {
    const before = map.get(key) ?? EMPTY;
    const after = patchSorted(before, keyOf, e);
    if (after !== before) out.set(key, after.length > 0 ? Object.freeze(after) : undefined);
  }
  return map.with(out);
}

/** Freezes a built service, its endpoints sorted. */
function finish(b: BuiltService): BuiltService {
  return Object.freeze({
    service: deepFreeze(b.service),
    endpoints: deepFreeze([...b.endpoints].sort(compareEndpoints)),
  });
}

function byPort(list: readonly Endpoint[]): Map<number, Endpoint[]> {
  const out = new Map<number, Endpoint[]>();
  for (const e of list) push(out, e.servicePort, e);
  return out;
}

function builtKey(b: BuiltService): string {
  return serviceKey(b.service.hostname, b.service.namespace);
}

function portKey(key: string, port: number): string {
  return `${key}\u0000${port}`;
}

function splitServiceKey(key: string): [namespace: string, hostname: string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** Sorts as `compareServices` (NUL is below every character of a name). */
function serviceSortKey(hostname: string, namespace: string): string {
  return `${hostname}\u0000${namespace}`;
}

/** Sorts as `compareWorkloads`. */
function workloadSortKey(w: Workload): string {
  return `${w.kind}\u0000${w.namespace}\u0000${w.name}`;
}

function sameRegistryMesh(a: MeshOptions, b: MeshOptions): boolean {
  return (
    a.domainSuffix === b.domainSuffix &&
    a.trustDomain === b.trustDomain &&
    a.rootNamespace === b.rootNamespace
  );
}

function comparePrecedence(a: Service, b: Service): number {
  if (a.origin !== b.origin) return a.origin === 'Kubernetes' ? -1 : 1;
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.source.name < b.source.name ? -1 : a.source.name > b.source.name ? 1 : 0;
}

function compareServices(a: Service, b: Service): number {
  return compareStrings(a.hostname, b.hostname) || compareStrings(a.namespace, b.namespace);
}

function compareWorkloads(a: Workload, b: Workload): number {
  return (
    compareStrings(a.kind, b.kind) ||
    compareStrings(a.namespace, b.namespace) ||
    compareStrings(a.name, b.name)
  );
}

function nested<V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let m = map.get(key);
  if (!m) map.set(key, (m = new Map<string, V>()));
  return m;
}

function freezeLists<K, V>(m: Map<K, V[]>): Map<K, readonly V[]> {
  for (const l of m.values()) Object.freeze(l);
  return m;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function refOf(o: KubeObject): ObjectRef {
  return { kind: o.kind, namespace: o.metadata.namespace ?? '', name: o.metadata.name };
}

/** `ServiceEntry default/external-svc`. */
export function describeRef(r: ObjectRef): string {
  return `${r.kind} ${r.namespace}/${r.name}`;
}
