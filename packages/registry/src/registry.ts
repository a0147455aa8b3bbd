// The registry: every service, workload and endpoint derived from Kubernetes Services, Pods,
// EndpointSlices, ServiceEntries and WorkloadEntries, with the lookups translation needs.
// Built in one pass from plain objects (no I/O); the result is deep-frozen.
import type { KubeObject } from '@trellis/api';
import { deepFreeze, errorMessage } from '@trellis/core';
import { compareEndpoints } from './endpoints.js';
import {
  buildKubeService,
  groupEndpointSlices,
  kubeServiceInputs,
  type BuiltService,
} from './kube-services.js';
import type { Endpoint, ObjectRef, RegistryProblem, Service, Workload } from './model.js';
import type { MeshOptions } from './options.js';
import { buildServiceEntry, serviceEntryInputs } from './service-entries.js';
import { WorkloadIndex, workloadKey } from './workload-index.js';
import { podWorkload, workloadEntryWorkload, type WorkloadResult } from './workloads.js';

/** The objects a registry is built from, by kind. */
export interface RegistryObjects {
  readonly services: readonly KubeObject[];
  readonly pods: readonly KubeObject[];
  readonly endpointSlices: readonly KubeObject[];
  readonly serviceEntries: readonly KubeObject[];
  readonly workloadEntries: readonly KubeObject[];
}

const EMPTY: readonly never[] = Object.freeze([]);

/** Services, workloads and endpoints, immutable, with lookups. */
export class Registry {
  /** Every service, sorted by hostname then namespace. */
  readonly services: readonly Service[];
  /** Every workload (Pods, then WorkloadEntries), sorted by kind, namespace, name. */
  readonly workloads: readonly Workload[];
  /** Objects skipped or partly used, with the reason. */
  readonly problems: readonly RegistryProblem[];

  readonly #byHostNs = new Map<string, Service>();
  readonly #byHost = new Map<string, Service[]>();
  readonly #byNamespace = new Map<string, Service[]>();
  readonly #endpoints = new Map<string, readonly Endpoint[]>();
  readonly #endpointsByPort = new Map<string, readonly Endpoint[]>();
  readonly #workloads = new Map<string, Workload>();
  readonly #workloadsByAddress = new Map<string, Workload[]>();
  readonly #workloadEndpoints = new Map<string, Endpoint[]>();

  /** Use `buildRegistry`. `endpoints` lists are sorted (`compareEndpoints`) and frozen. */
  constructor(
    services: readonly Service[],
    endpoints: ReadonlyMap<string, readonly Endpoint[]>,
    workloads: readonly Workload[],
    problems: readonly RegistryProblem[],
  ) {
    this.services = deepFreeze([...services].sort(compareServices));
    this.workloads = deepFreeze([...workloads].sort(compareWorkloads));
    this.problems = deepFreeze([...problems]);
    for (const s of this.services) {
      this.#byHostNs.set(serviceKey(s.hostname, s.namespace), s);
      push(this.#byHost, s.hostname, s);
      push(this.#byNamespace, s.namespace, s);
    }
    for (const [key, sorted] of endpoints) {
      this.#endpoints.set(key, sorted);
      const byPort = new Map<number, Endpoint[]>();
      for (const e of sorted) {
        push(byPort, e.servicePort, e);
        if (e.workload)
          push(
            this.#workloadEndpoints,
            workloadKey(e.workload.kind, e.workload.namespace, e.workload.name),
            e,
          );
      }
      for (const [port, l] of byPort)
        this.#endpointsByPort.set(`${key}\u0000${port}`, Object.freeze(l));
    }
    for (const l of this.#workloadEndpoints.values()) Object.freeze(l);
    for (const w of this.workloads) {
      this.#workloads.set(workloadKey(w.kind, w.namespace, w.name), w);
      if (w.address !== '') push(this.#workloadsByAddress, w.address, w);
    }
    for (const m of [this.#byHost, this.#byNamespace, this.#workloadsByAddress])
      for (const l of m.values()) Object.freeze(l);
    Object.freeze(this);
  }

  /** The service of `hostname` defined in `namespace`. */
  service(hostname: string, namespace: string): Service | undefined {
    return this.#byHostNs.get(serviceKey(hostname, namespace));
  }

  /** Every service of this host name, one per namespace that defines it, by namespace. */
  servicesForHostname(hostname: string): readonly Service[] {
    return this.#byHost.get(hostname) ?? EMPTY;
  }

  /** The services defined in a namespace, by hostname. */
  servicesInNamespace(namespace: string): readonly Service[] {
    return this.#byNamespace.get(namespace) ?? EMPTY;
  }

  /**
   * The endpoints of a service (`hostname` in `namespace`), of one service port when `port` is
   * given; sorted by port, address, endpoint port and workload.
   */
  endpoints(hostname: string, namespace: string, port?: number): readonly Endpoint[] {
    const key = serviceKey(hostname, namespace);
    if (port === undefined) return this.#endpoints.get(key) ?? EMPTY;
    return this.#endpointsByPort.get(`${key}\u0000${port}`) ?? EMPTY;
  }

  /** A workload by kind, namespace and name (a proxy's own Pod or WorkloadEntry). */
  workload(kind: Workload['kind'], namespace: string, name: string): Workload | undefined {
    return this.#workloads.get(workloadKey(kind, namespace, name));
  }

  /** The workloads with an address (several in local mode, where they share 127.0.0.1). */
  workloadsAt(address: string): readonly Workload[] {
    return this.#workloadsByAddress.get(address) ?? EMPTY;
  }

  /**
   * Every endpoint a workload serves, across services: what its sidecar's inbound side
   * listens for (`inbound|<targetPort>||`).
   */
  endpointsOfWorkload(
    kind: Workload['kind'],
    namespace: string,
    name: string,
  ): readonly Endpoint[] {
    return this.#workloadEndpoints.get(workloadKey(kind, namespace, name)) ?? EMPTY;
  }
}

/** `namespace\0hostname`: the identity of a service. */
export function serviceKey(hostname: string, namespace: string): string {
  return `${namespace}\u0000${hostname}`;
}

/** Results of a build that the next build may reuse, keyed by the (immutable) input objects. */
interface BuildCache {
  readonly pods: WeakMap<KubeObject, WorkloadResult>;
  readonly entries: WeakMap<KubeObject, Workload>;
  readonly services: WeakMap<KubeObject, { inputs: readonly object[]; built: BuiltService }>;
  readonly serviceEntries: WeakMap<
    KubeObject,
    { inputs: readonly object[]; built: readonly BuiltService[] }
  >;
}

const caches = new WeakMap<Registry, BuildCache>();

/**
 * Builds the registry from objects (no I/O). Objects that cannot be read are skipped and
 * reported. With `previous` (built with the same mesh options), the workloads and services whose
 * inputs are the same objects as then are reused, so that a change to a few Pods rebuilds only
 * the services that select them, and unchanged services keep their identity (cheap to diff).
 */
export function buildRegistry(
  objects: RegistryObjects,
  opts: MeshOptions,
  previous?: Registry,
): Registry {
  const prev = previous ? caches.get(previous) : undefined;
  const cache: BuildCache = {
    pods: new WeakMap(),
    entries: new WeakMap(),
    services: new WeakMap(),
    serviceEntries: new WeakMap(),
  };
  const problems: RegistryProblem[] = [];
  const report = (o: KubeObject, message: string): void => {
    problems.push({ object: refOf(o), message });
  };

  const index = new WorkloadIndex();
  for (const pod of objects.pods) {
    try {
      const r = prev?.pods.get(pod) ?? podWorkload(pod, opts.trustDomain);
      cache.pods.set(pod, r);
      for (const m of r.problems) report(pod, m);
      if (r.workload) index.add(r.workload);
    } catch (e) {
      report(pod, `cannot be read: ${errorMessage(e)}`);
    }
  }
  for (const we of objects.workloadEntries) {
    try {
      const w = prev?.entries.get(we) ?? deepFreeze(workloadEntryWorkload(we, opts.trustDomain));
      cache.entries.set(we, w);
      index.add(w);
    } catch (e) {
      report(we, `cannot be read: ${errorMessage(e)}`);
    }
  }

  const built: BuiltService[] = [];
  const slices = groupEndpointSlices(objects.endpointSlices);
  for (const svc of objects.services) {
    try {
      const key = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
      const own = slices.get(key);
      const inputs = kubeServiceInputs(svc, own, index);
      const hit = prev?.services.get(svc);
      const b =
        hit && sameRefs(hit.inputs, inputs)
          ? hit.built
          : finish(buildKubeService(svc, own, index, opts));
      cache.services.set(svc, { inputs, built: b });
      built.push(b);
    } catch (e) {
      report(svc, `cannot be read: ${errorMessage(e)}`);
    }
  }
  for (const se of objects.serviceEntries) {
    try {
      const inputs = serviceEntryInputs(se, index);
      const hit = prev?.serviceEntries.get(se);
      const b =
        hit && sameRefs(hit.inputs, inputs)
          ? hit.built
          : buildServiceEntry(se, index, opts).map(finish);
      cache.serviceEntries.set(se, { inputs, built: b });
      built.push(...b);
    } catch (e) {
      report(se, `cannot be read: ${errorMessage(e)}`);
    }
  }

  // One service per (hostname, namespace): a Kubernetes Service wins over ServiceEntries (no
  // "domain squatting"), then the oldest definition. Endpoints of every definition are kept.
  const groups = new Map<string, BuiltService[]>();
  for (const b of built) push(groups, serviceKey(b.service.hostname, b.service.namespace), b);
  const services: Service[] = [];
  const endpoints = new Map<string, readonly Endpoint[]>();
  for (const [key, group] of groups) {
    group.sort((a, b) => comparePrecedence(a.service, b.service));
    const first = group[0]!;
    let service = first.service;
    if (group.length > 1) {
      const all = group.flatMap((g) => g.endpoints);
      const accounts = new Set(service.serviceAccounts);
      for (const e of all) if (e.serviceAccount !== undefined) accounts.add(e.serviceAccount);
      service = deepFreeze({ ...service, serviceAccounts: [...accounts].sort() });
      endpoints.set(key, Object.freeze(all.sort(compareEndpoints)));
      for (const other of group.slice(1))
        problems.push({
          object: other.service.source,
          message: `host ${service.hostname} in namespace ${service.namespace} is already defined by ${describeRef(first.service.source)}; its ports and addresses are ignored, its endpoints are kept`,
        });
    } else endpoints.set(key, first.endpoints);
    services.push(service);
  }
  const registry = new Registry(services, endpoints, index.all, problems);
  caches.set(registry, cache);
  return registry;
}

/** Freezes a built service, its endpoints sorted. */
function finish(b: BuiltService): BuiltService {
  return Object.freeze({
    service: deepFreeze(b.service),
    endpoints: deepFreeze([...b.endpoints].sort(compareEndpoints)),
  });
}

function sameRefs(a: readonly object[], b: readonly object[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function comparePrecedence(a: Service, b: Service): number {
  if (a.origin !== b.origin) return a.origin === 'Kubernetes' ? -1 : 1;
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.source.name < b.source.name ? -1 : a.source.name > b.source.name ? 1 : 0;
}

function compareServices(a: Service, b: Service): number {
  return cmp(a.hostname, b.hostname) || cmp(a.namespace, b.namespace);
}

function compareWorkloads(a: Workload, b: Workload): number {
  return cmp(a.kind, b.kind) || cmp(a.namespace, b.namespace) || cmp(a.name, b.name);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
