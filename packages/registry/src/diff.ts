// What changed between two snapshots, and who must hear about it. A change is endpoint-only
// ("eds") when only Pods, EndpointSlices and WorkloadEntries changed and no service changed
// with them (same ports, addresses, identities): proxies then need new endpoints only, as
// istiod pushes EDS alone for endpoint updates. Otherwise it is "full". Each change also says
// which namespaces see it (from exportTo and where configs live), so a push goes only to
// proxies whose view changed. Secrets reach proxies over SDS only, and only in their own
// namespace (istiod serves a credential only to proxies of the Secret's namespace): a change
// to Secrets alone asks those proxies for SDS ("sds"), nothing else.
//
// Objects, services and endpoint lists are compared by reference first (snapshots keep frozen
// objects, and derived snapshots share what did not change); content is compared only where
// references differ. When `next` was derived from `prev`, only the keys and services it
// changed are looked at, so the diff costs what the change costs.
import { deepEqual } from '@trellis/core';
import type { KubeObject } from '@trellis/api';
import { groupOf } from '@trellis/api';
import * as K from './kinds.js';
import type { ObjectRef, Service } from './model.js';
import { changedServiceKeys } from './registry.js';
import { changedObjectKeys, type Snapshot } from './snapshot.js';
import { EXPORT_PRIVATE, visibilityOf } from './visibility.js';

/** Namespaces that see a change: all of them, or a list. */
export interface Audience {
  readonly all: boolean;
  /** Sorted; meaningful when `all` is false. */
  readonly namespaces: readonly string[];
}

/** One object that differs between the snapshots. */
export interface ChangedObject {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** A service by its identity. */
export interface ServiceRef {
  readonly hostname: string;
  readonly namespace: string;
}

/** A service whose endpoints changed, with the namespaces that see it. */
export interface EndpointChange extends ServiceRef {
  readonly audience: Audience;
}

/** The difference between two snapshots. */
export interface SnapshotDiff {
  /** `none`: nothing changed; `eds`: endpoints only; `full`: anything else. */
  readonly scope: 'none' | 'eds' | 'full';
  readonly fromVersion?: string;
  readonly toVersion: string;
  /** Every object added, modified or deleted, sorted by kind, namespace, name. */
  readonly changed: readonly ChangedObject[];
  /** Services added, removed or changed (ports, addresses, exportTo, identities ...). */
  readonly services: readonly ServiceRef[];
  /** Services whose endpoints changed. */
  readonly endpoints: readonly EndpointChange[];
  /** Pods and WorkloadEntries whose objects changed: their own proxies get a full push. */
  readonly workloads: readonly ObjectRef[];
  /** For a full change: the namespaces whose sidecars see it. */
  readonly sidecars: Audience;
  /** For a full change: the namespaces whose gateway proxies see it. */
  readonly routers: Audience;
  /** The namespaces of the Secrets that changed: their proxies may hold them over SDS. */
  readonly secrets: Audience;
}

/** A connected proxy, as far as push decisions go. */
export interface ProxyView {
  /** The proxy's config namespace. */
  readonly namespace: string;
  readonly type: 'sidecar' | 'router';
  /** The proxy's own Pod or WorkloadEntry, when known. */
  readonly workload?: ObjectRef;
}

const NOBODY: Audience = Object.freeze({ all: false, namespaces: Object.freeze([]) });
const EVERYBODY: Audience = Object.freeze({ all: true, namespaces: Object.freeze([]) });
const ENDPOINT_KIND_KEYS: ReadonlySet<string> = new Set(K.ENDPOINT_KINDS.map(K.kindKey));
const SECRET_KIND_KEY = K.kindKey(K.SECRET);

/** Compares two snapshots (`prev` undefined: everything is new). */
export function diffSnapshots(prev: Snapshot | undefined, next: Snapshot): SnapshotDiff {
  const keys = prev && changedObjectKeys(prev, next);
  const changed =
    prev && keys ? changesAt(prev, next, keys) : changedObjects(prev?.objects ?? [], next.objects);

  const base = {
    ...(prev ? { fromVersion: prev.version } : {}),
    toVersion: next.version,
  };
  if (changed.length === 0)
    return deepFreezeDiff({
      ...base,
      scope: 'none',
      changed: [],
      services: [],
      endpoints: [],
      workloads: [],
      sidecars: NOBODY,
      routers: NOBODY,
      secrets: NOBODY,
    });

  // Services and endpoints, unless the registry was reused. Both lists are sorted by hostname
  // and namespace; a service or endpoint list that is the same object in both is unchanged.
  const services: ServiceRef[] = [];
  const endpoints: EndpointChange[] = [];
  const sidecars = new AudienceBuilder();
  const routers = new AudienceBuilder();
  const both = (a: Audience): void => {
    sidecars.addAudience(a);
    routers.addAudience(a);
  };
  if (!prev || prev.registry !== next.registry) {
    const visit = (s: Service | undefined, o: Service | undefined): void => {
      const ref = (s ?? o)!;
      let audience: Audience | undefined;
      const audienceOf = (): Audience =>
        (audience ??= union(
          s ? serviceAudience(s, next) : NOBODY,
          o ? serviceAudience(o, next) : NOBODY,
        ));
      if (!s || !o || (s !== o && !deepEqual(s, o))) {
        services.push({ hostname: ref.hostname, namespace: ref.namespace });
        both(audienceOf());
      }
      const a = s ? next.registry.endpoints(s.hostname, s.namespace) : [];
      const b = o && prev ? prev.registry.endpoints(o.hostname, o.namespace) : [];
      if (a !== b && !deepEqual(a, b))
        endpoints.push({
          hostname: ref.hostname,
          namespace: ref.namespace,
          audience: audienceOf(),
        });
    };
    const derived = prev && changedServiceKeys(prev.registry, next.registry);
    if (prev && derived) {
      // Derived registries say which services changed; the others are the same objects.
      const refs = derived.map((k) => {
        const i = k.indexOf('\u0000');
        return { namespace: k.slice(0, i), hostname: k.slice(i + 1) };
      });
      for (const r of refs.sort(compareServiceRefs)) {
        const s = next.registry.service(r.hostname, r.namespace);
        const o = prev.registry.service(r.hostname, r.namespace);
        if (s || o) visit(s, o);
      }
    }
    const before = derived ? [] : (prev?.registry.services ?? []);
    const after = derived ? [] : next.registry.services;
    let i = 0;
    let j = 0;
    while (i < before.length || j < after.length) {
      const o = before[i];
      const s = after[j];
      if (o && s && o === s) {
        visit(s, o);
        i++;
        j++;
        continue;
      }
      const c = !o ? 1 : !s ? -1 : compareServiceRefs(o, s);
      if (c === 0) {
        visit(s, o);
        i++;
        j++;
      } else if (c < 0) {
        visit(undefined, o);
        i++;
      } else {
        visit(s, undefined);
        j++;
      }
    }
  }

  const workloads: ObjectRef[] = [];
  const secrets = new AudienceBuilder();
  let endpointOnly = services.length === 0;
  for (const c of changed) {
    const o = (c.after ?? c.before)!;
    const group = groupOf(o.apiVersion);
    const kindKey = K.kindKey({ group, kind: o.kind });
    const namespace = o.metadata.namespace ?? '';
    if (o.kind === 'Pod' || (group === K.WORKLOAD_ENTRY.group && o.kind === 'WorkloadEntry'))
      workloads.push({ kind: o.kind, namespace, name: o.metadata.name });
    if (ENDPOINT_KIND_KEYS.has(kindKey)) continue;
    endpointOnly = false;
    if (kindKey === SECRET_KIND_KEY) {
      secrets.addAudience({ all: false, namespaces: [namespace] });
      continue;
    }
    for (const version of [c.before, c.after]) {
      if (!version) continue;
      const a = configAudience(version, next);
      if (kindKey === K.kindKey(K.GATEWAY)) routers.addAudience(a);
      else both(a);
    }
  }

  return deepFreezeDiff({
    ...base,
    scope: endpointOnly ? 'eds' : 'full',
    changed: changed
      .map((c) => {
        const o = (c.after ?? c.before)!;
        return {
          type: c.type,
          group: groupOf(o.apiVersion),
          kind: o.kind,
          namespace: o.metadata.namespace ?? '',
          name: o.metadata.name,
        };
      })
      .sort(compareChanged),
    services,
    endpoints,
    workloads,
    sidecars: endpointOnly ? NOBODY : sidecars.build(),
    routers: endpointOnly ? NOBODY : routers.build(),
    secrets: secrets.build(),
  });
}

/**
 * What a proxy needs after a change: `full` (everything), `eds` (endpoints of services it
 * sees), `sds` (the secrets it holds: Secrets of its namespace changed), or `none`. A proxy
 * that needs both EDS and SDS gets `full`.
 */
export function affectsProxy(
  diff: SnapshotDiff,
  proxy: ProxyView,
): 'none' | 'eds' | 'sds' | 'full' {
  if (diff.scope === 'none') return 'none';
  const w = proxy.workload;
  if (
    w &&
    diff.workloads.some(
      (x) => x.kind === w.kind && x.namespace === w.namespace && x.name === w.name,
    )
  )
    return 'full';
  if (diff.scope === 'full') {
    const audience = proxy.type === 'router' ? diff.routers : diff.sidecars;
    if (audienceIncludes(audience, proxy.namespace)) return 'full';
  }
  const eds = diff.endpoints.some((e) => audienceIncludes(e.audience, proxy.namespace));
  const sds = audienceIncludes(diff.secrets, proxy.namespace);
  return eds && sds ? 'full' : eds ? 'eds' : sds ? 'sds' : 'none';
}

/** Whether an audience includes a namespace. */
export function audienceIncludes(a: Audience, namespace: string): boolean {
  return a.all || a.namespaces.includes(namespace);
}

function serviceAudience(s: Service, snap: Snapshot): Audience {
  const v = visibilityOf(s.exportTo, s.namespace, snap.mesh.defaultServiceExportTo);
  return v.kind === 'public' ? EVERYBODY : { all: false, namespaces: [...v.namespaces] };
}

/** The namespaces that see a config object (exportTo, or where it lives). */
function configAudience(o: KubeObject, snap: Snapshot): Audience {
  const ns = o.metadata.namespace ?? '';
  const spec = (o.spec ?? {}) as { exportTo?: unknown; workloadSelector?: unknown };
  const exportTo = Array.isArray(spec.exportTo)
    ? spec.exportTo.filter((e): e is string => typeof e === 'string')
    : [];
  const group = groupOf(o.apiVersion);
  const key = K.kindKey({ group, kind: o.kind });
  const mesh = snap.mesh;
  const byExport = (list: readonly string[], defaults: readonly string[]): Audience => {
    const v = visibilityOf(list, ns, defaults);
    return v.kind === 'public' ? EVERYBODY : { all: false, namespaces: [...v.namespaces] };
  };
  switch (key) {
    case K.kindKey(K.VIRTUAL_SERVICE):
      return byExport(exportTo, mesh.defaultVirtualServiceExportTo);
    case K.kindKey(K.DESTINATION_RULE):
      return byExport(
        spec.workloadSelector != null ? [EXPORT_PRIVATE] : exportTo,
        mesh.defaultDestinationRuleExportTo,
      );
    case K.kindKey(K.SERVICE_ENTRY):
    case K.kindKey(K.SERVICE):
      // Their services' audiences are counted with the services.
      return NOBODY;
    case K.kindKey(K.GATEWAY):
      return mesh.scopeGatewayToNamespace ? { all: false, namespaces: [ns] } : EVERYBODY;
    case K.kindKey(K.NAMESPACE):
      return { all: false, namespaces: [o.metadata.name] };
    default:
      // Sidecars, policies, telemetry, workload groups: their namespace, or everyone
      // from the root namespace. Kinds a snapshot does not read reach nobody.
      if (!K.isSnapshotKind({ group, kind: o.kind })) return NOBODY;
      return ns === mesh.rootNamespace ? EVERYBODY : { all: false, namespaces: [ns] };
  }
}

class AudienceBuilder {
  #all = false;
  readonly #namespaces = new Set<string>();

  addAudience(a: Audience): void {
    if (a.all) this.#all = true;
    else for (const n of a.namespaces) this.#namespaces.add(n);
  }

  build(): Audience {
    if (this.#all) return EVERYBODY;
    return { all: false, namespaces: [...this.#namespaces].sort() };
  }
}

function union(a: Audience, b: Audience): Audience {
  if (a.all || b.all) return EVERYBODY;
  return { all: false, namespaces: [...new Set([...a.namespaces, ...b.namespaces])].sort() };
}

interface Change {
  readonly type: ChangedObject['type'];
  readonly before?: KubeObject;
  readonly after?: KubeObject;
}

/**
 * The objects that differ between two lists sorted by key, in one merge pass: the same
 * reference at the same place is the same object, and keys are computed only where the lists
 * differ.
 */
function changedObjects(before: readonly KubeObject[], after: readonly KubeObject[]): Change[] {
  const out: Change[] = [];
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const a = before[i];
    const b = after[j];
    if (a && b && a === b) {
      i++;
      j++;
      continue;
    }
    const ka = a ? K.objectKey(a) : undefined;
    const kb = b ? K.objectKey(b) : undefined;
    if (ka !== undefined && kb !== undefined && ka === kb) {
      if (!sameObject(a!, b!)) out.push({ type: 'MODIFIED', before: a!, after: b! });
      i++;
      j++;
    } else if (kb === undefined || (ka !== undefined && ka < kb)) {
      out.push({ type: 'DELETED', before: a! });
      i++;
    } else {
      out.push({ type: 'ADDED', after: b! });
      j++;
    }
  }
  return out;
}

/** The objects that differ at `keys` (those that may have changed) between two snapshots. */
function changesAt(prev: Snapshot, next: Snapshot, keys: readonly string[]): Change[] {
  const out: Change[] = [];
  for (const key of [...keys].sort()) {
    const a = prev.object(key);
    const b = next.object(key);
    if (a === b) continue;
    if (!a) out.push({ type: 'ADDED', after: b! });
    else if (!b) out.push({ type: 'DELETED', before: a });
    else if (!sameObject(a, b)) out.push({ type: 'MODIFIED', before: a, after: b });
  }
  return out;
}

function compareServiceRefs(a: ServiceRef, b: ServiceRef): number {
  return a.hostname < b.hostname
    ? -1
    : a.hostname > b.hostname
      ? 1
      : a.namespace < b.namespace
        ? -1
        : a.namespace > b.namespace
          ? 1
          : 0;
}

/** The same object: the same reference, the same non-empty resourceVersion, or equal content. */
function sameObject(a: KubeObject, b: KubeObject): boolean {
  if (a === b) return true;
  const ra = a.metadata.resourceVersion;
  const rb = b.metadata.resourceVersion;
  if (ra !== undefined && rb !== undefined && ra !== '' && rb !== '') return ra === rb;
  return deepEqual(a, b);
}

function compareChanged(a: ChangedObject, b: ChangedObject): number {
  const ka = `${a.group}/${a.kind}/${a.namespace}/${a.name}`;
  const kb = `${b.group}/${b.kind}/${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function deepFreezeDiff(d: SnapshotDiff): SnapshotDiff {
  return Object.freeze({
    ...d,
    changed: Object.freeze(d.changed.map((c) => Object.freeze(c))),
    services: Object.freeze(d.services.map((s) => Object.freeze(s))),
    endpoints: Object.freeze(d.endpoints.map((e) => Object.freeze(e))),
    workloads: Object.freeze(d.workloads.map((w) => Object.freeze(w))),
  });
}
