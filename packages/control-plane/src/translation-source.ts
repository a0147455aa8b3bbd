// The xDS server's ResourceSource, backed by translation of the current snapshot.
//
// Sidecars that share a scope (scope-key.ts) share their outbound resources: those are
// generated and encoded once per scope, and handed to the server as one immutable group it
// encodes once and sends to every proxy of the scope. Each proxy adds only its own inbound
// listeners and clusters.
//
// Versions follow content. A shared part keeps its version (and its identity) for as long as
// rebuilding it gives the same bytes, so a change that does not alter a proxy's clusters does not
// re-send them. An endpoint-only change rebuilds only the load assignments of the services whose
// endpoints changed, and says so (`incremental`): a proxy holding the previous EDS version is
// sent just those.
//
// Only the encoded resources are kept: the JSON they were translated from is dropped once
// encoded (hundreds of MB of objects in a large mesh). `/debug/config_dump` translates again
// for the proxy asked about, as istiod's config dump does.
import { createHash } from 'node:crypto';
import { TYPE_URL, encodeResource, type EncodedAny } from '@trellis/envoy';
import type { Snapshot } from '@trellis/registry';
import {
  generateClusters,
  generateEndpoints,
  gatewayProblems,
  generateListeners,
  generateRoutes,
  generateSecrets,
  formatSecretWarning,
  proxyFromNode,
  type Proxy,
  type ResourcePart,
  type TranslateOptions,
} from '@trellis/translate';
import {
  UnionMap,
  type ProxyInfo,
  type ResourceSet,
  type ResourceSource,
} from '@trellis/xds-server';
import { TrellisError } from '@trellis/core';
import { scopeKey, selectorLabelKeys, specialNamespaces } from './scope-key.js';

interface Named {
  readonly name?: string;
  readonly clusterName?: string;
}

/** Resources of one type, encoded, by name: immutable once built. */
interface Part {
  /** Unique among all parts ever built (a proxy compares it with what it was sent). */
  readonly version: string;
  readonly encoded: ReadonlyMap<string, EncodedAny>;
  /** A proxy of the scope, to rebuild some of the part's resources from. */
  readonly proxy: Proxy;
  /** When built as an increment: the part it differs from, and in which names. */
  readonly incremental?: { readonly from: string; readonly changed: ReadonlySet<string> };
}

/** A shared part and the snapshot version it is current for. */
interface SharedEntry {
  part: Part;
  current: string;
}

/** What a proxy was last given for a type. */
interface ProxyEntry {
  /** Snapshot version it is current for. */
  at: string;
  set: ResourceSet;
  /** The shared part the set is (types not split per proxy): followed on endpoint-only changes. */
  readonly shared?: SharedEntry;
  /** The names translation was given (proxyless listeners), to translate the same again. */
  readonly names?: readonly string[];
}

/** Name arrays known to list exactly a resource map's names (maps are immutable, often shared). */
const coveringNames = new WeakMap<ReadonlyMap<string, EncodedAny>, WeakSet<readonly string[]>>();

/**
 * A shared part as a ResourceSet, one object per part: every proxy of the scope is handed the
 * same set, so the server can build a response once for all of them (see the xDS server).
 */
const partSets = new WeakMap<Part, ResourceSet>();

function partSet(p: Part): ResourceSet {
  let set = partSets.get(p);
  if (!set) {
    set = {
      version: p.version,
      resources: p.encoded,
      groups: [p.encoded],
      ...(p.incremental ? { incremental: p.incremental } : {}),
    };
    partSets.set(p, set);
  }
  return set;
}

const nameOf = (r: Named): string => r.name ?? r.clusterName ?? '';

/** Digest of the JSON a resource was encoded from (to reuse the encoding when it recurs). */
const jsonDigests = new WeakMap<EncodedAny, string>();

function jsonDigest(r: Named): string | undefined {
  try {
    return createHash('sha256').update(JSON.stringify(r)).digest('base64');
  } catch {
    return undefined; // not JSON-serialisable (a BigInt, say): always encoded afresh
  }
}

/** Types whose output is split into a shared outbound part and a per-proxy inbound part. */
const SPLIT_TYPES: ReadonlySet<string> = new Set([TYPE_URL.Listener, TYPE_URL.Cluster]);

/** The service host of an `outbound|PORT|SUBSET|HOST` cluster name, if it is one. */
function hostOfCluster(name: string): string | undefined {
  const parts = name.split('|');
  return parts.length === 4 && parts[0] === 'outbound' ? parts[3] : undefined;
}

/** A part's load assignment names by service host (`other`: names of no outbound cluster). */
interface HostIndex {
  readonly byHost: ReadonlyMap<string, readonly string[]>;
  readonly other: readonly string[];
}

/** Host indexes of parts' maps; an increment has its part's names, so it shares the index. */
const hostIndexes = new WeakMap<ReadonlyMap<string, EncodedAny>, HostIndex>();

function hostIndex(encoded: ReadonlyMap<string, EncodedAny>): HostIndex {
  let index = hostIndexes.get(encoded);
  if (!index) {
    const byHost = new Map<string, string[]>();
    const other: string[] = [];
    for (const n of encoded.keys()) {
      const h = hostOfCluster(n);
      if (h === undefined) other.push(n);
      else {
        const list = byHost.get(h);
        if (list) list.push(n);
        else byHost.set(h, [n]);
      }
    }
    index = { byHost, other };
    hostIndexes.set(encoded, index);
  }
  return index;
}

function digestOf(encoded: ReadonlyMap<string, EncodedAny>): string {
  const h = createHash('sha256');
  for (const n of [...encoded.keys()].sort())
    h.update(n).update((encoded.get(n) as EncodedAny).value);
  return h.digest('hex').slice(0, 12);
}

/** What a new snapshot changed, as far as reusing earlier output goes. */
export interface SnapshotChange {
  /** Only endpoints changed: listeners, routes and clusters are kept. */
  readonly endpointsOnly?: boolean;
  /** With `endpointsOnly`: the hosts of the services whose endpoints changed. */
  readonly endpointHosts?: Iterable<string>;
  /** Kinds of the objects that changed; a type none of them can affect is kept. */
  readonly kinds?: Iterable<string>;
  /** Pods and WorkloadEntries that changed: their own proxies' output is rebuilt in full. */
  readonly workloads?: Iterable<{ readonly namespace: string; readonly name: string }>;
}

/**
 * Kinds that cannot change a sidecar's resources of a type (as istiod's per-type skip lists).
 * VirtualServices shape clusters only through Sidecar egress scoping, checked separately.
 */
const NO_EFFECT: Readonly<Record<string, ReadonlySet<string>>> = {
  [TYPE_URL.Cluster]: new Set([
    'Gateway',
    'Secret',
    'AuthorizationPolicy',
    'RequestAuthentication',
    'Telemetry',
    'WasmPlugin',
    'ProxyConfig',
  ]),
  [TYPE_URL.ClusterLoadAssignment]: new Set([
    'Gateway',
    'Secret',
    'AuthorizationPolicy',
    'RequestAuthentication',
    'Telemetry',
    'WasmPlugin',
    'ProxyConfig',
    'PeerAuthentication',
  ]),
  [TYPE_URL.Listener]: new Set(['Gateway', 'Secret']),
  [TYPE_URL.RouteConfiguration]: new Set([
    'Gateway',
    'Secret',
    'AuthorizationPolicy',
    'RequestAuthentication',
    'PeerAuthentication',
  ]),
};

/** Types whose output `kinds` cannot change (VirtualServices count only with no Sidecar). */
function unaffectedTypes(snapshot: Snapshot, kinds: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  if (kinds.size === 0) return out;
  const sidecars = snapshot.objects.some((o) => o.kind === 'Sidecar');
  for (const [type, none] of Object.entries(NO_EFFECT)) {
    const vsOk =
      !sidecars && (type === TYPE_URL.Cluster || type === TYPE_URL.ClusterLoadAssignment);
    if ([...kinds].every((k) => none.has(k) || (k === 'VirtualService' && vsOk))) out.add(type);
  }
  return out;
}

export interface TranslationStats {
  /** Resources generated by translation, by type URL. */
  readonly generated: Map<string, number>;
  /** Shared (per-scope) parts built, and reused. */
  sharedBuilds: number;
  sharedHits: number;
}

export class TranslationSource implements ResourceSource {
  /** Per proxy (node id), per type: what it was last given. */
  readonly #perProxy = new Map<string, Map<string, ProxyEntry>>();
  /** Each proxy in #perProxy. */
  readonly #infos = new Map<string, ProxyInfo>();
  /** Shared parts by `typeUrl | scope key`. */
  readonly #shared = new Map<string, SharedEntry>();
  #snapshot: Snapshot | undefined;
  #labelKeys: readonly string[] = [];
  /** Namespaces whose clusters and endpoints may differ from others' (undefined: all). */
  #special: ReadonlySet<string> | undefined;
  #parts = 0;
  readonly stats: TranslationStats = { generated: new Map(), sharedBuilds: 0, sharedHits: 0 };
  /**
   * Where problems with requested secrets (SDS) are reported, each once per snapshot: a refused
   * or broken credential is left out of the answer, so this is how anyone learns of it. The
   * control plane sets its log here; by default they are process warnings.
   */
  onSecretWarning: (message: string) => void = (m) =>
    process.emitWarning(m, { code: 'TRELLIS_SDS_SECRET' });
  #secretWarned = { at: '', seen: new Set<string>() };
  /**
   * Where a gateway's left-out servers are reported (a TLS host an earlier server of the port
   * already serves, as Istio reports them), each once per snapshot.
   */
  onGatewayWarning: (message: string) => void = (m) =>
    process.emitWarning(m, { code: 'TRELLIS_GATEWAY_CONFLICT' });
  #gatewayWarned = { at: '', seen: new Set<string>() };
  /** Where a resource that cannot be encoded is reported (once per snapshot and message). */
  onEncodeError: (message: string) => void = (m) =>
    process.emitWarning(m, { code: 'TRELLIS_XDS_ENCODE' });
  readonly #encodeErrors = new Set<string>();

  constructor(private readonly options: TranslateOptions = {}) {}

  /** Resources generated, by type URL (for metrics). */
  get generated(): ReadonlyMap<string, number> {
    return this.stats.generated;
  }

  /**
   * Installs a new snapshot. `change` says what changed since the previous one, so output it
   * cannot affect is kept (with its version) instead of being rebuilt: listeners, routes and
   * clusters on an endpoint-only change, clusters and endpoints on a VirtualService change, and
   * so on; load assignments of the services whose endpoints changed are rebuilt at once.
   * Without `change`, everything is rebuilt (and re-versioned only where the bytes differ).
   */
  setSnapshot(s: Snapshot, change: SnapshotChange = {}): void {
    const prev = this.#snapshot?.version;
    this.#encodeErrors.clear();
    this.#snapshot = s;
    const endpointsOnly = change.endpointsOnly === true && prev !== undefined;
    if (!endpointsOnly) {
      this.#labelKeys = selectorLabelKeys(s);
      this.#special = specialNamespaces(s);
    }
    if (prev === undefined) return;
    const unaffected = endpointsOnly
      ? new Set<string>([TYPE_URL.Listener, TYPE_URL.RouteConfiguration, TYPE_URL.Cluster])
      : unaffectedTypes(s, new Set(change.kinds ?? []));
    const hosts = endpointsOnly && change.endpointHosts ? new Set(change.endpointHosts) : undefined;
    for (const [k, e] of this.#shared) {
      if (e.current !== prev) continue;
      const type = k.slice(0, k.indexOf('|'));
      if (unaffected.has(type)) e.current = s.version;
      else if (hosts && type === TYPE_URL.ClusterLoadAssignment) {
        e.part = this.#increment(s, e.part, hosts);
        e.current = s.version;
      }
    }
    // A proxy's own entries follow its workload too: those of changed workloads are rebuilt.
    const touched = new Set([...(change.workloads ?? [])].map((w) => `${w.namespace}/${w.name}`));
    for (const [nodeId, perType] of this.#perProxy) {
      const info = this.#infos.get(nodeId);
      if (info !== undefined && touched.has(`${info.namespace}/${info.podName}`)) continue;
      for (const [type, e] of perType) {
        if (e.at !== prev) continue;
        if (unaffected.has(type) && SPLIT_TYPES.has(type)) e.at = s.version;
        // An endpoint change leaves every scope key as it was: a proxy's load assignments are
        // its scope's, brought up to date above, without looking the proxy up again.
        else if (endpointsOnly && e.shared !== undefined && e.shared.current === s.version) {
          e.set = partSet(e.shared.part);
          e.at = s.version;
        }
      }
    }
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Forgets a disconnected proxy. */
  forget(nodeId: string): void {
    this.#perProxy.delete(nodeId);
    this.#infos.delete(nodeId);
  }

  #proxyOf(snapshot: Snapshot, info: ProxyInfo): Proxy {
    const workload =
      snapshot.workload('Pod', info.namespace, info.podName) ??
      snapshot.workload('WorkloadEntry', info.namespace, info.podName);
    const r = proxyFromNode(
      { id: info.nodeId, metadata: info.metadata },
      workload ? { workload } : {},
    );
    if (!r.ok) throw new TrellisError('TRELLIS_BAD_NODE', r.error);
    return r.value;
  }

  #translate(
    snapshot: Snapshot,
    proxy: Proxy,
    typeUrl: string,
    names: readonly string[] | undefined,
    part: ResourcePart,
  ): Named[] {
    const o = this.options;
    switch (typeUrl) {
      case TYPE_URL.Listener:
        if (proxy.type === 'router') this.#reportGatewayProblems(snapshot, proxy);
        return generateListeners(
          snapshot,
          proxy,
          proxy.generator === 'grpc' ? (names ?? []) : undefined,
          o,
          part,
        );
      case TYPE_URL.RouteConfiguration:
        return generateRoutes(snapshot, proxy, undefined, o);
      case TYPE_URL.Cluster:
        return generateClusters(snapshot, proxy, undefined, o.clusters, part);
      case TYPE_URL.ClusterLoadAssignment:
        return generateEndpoints(snapshot, proxy, names, o.clusters);
      case TYPE_URL.Secret:
        return this.#secrets(snapshot, proxy, names);
      default:
        throw new TrellisError(
          'TRELLIS_UNKNOWN_TYPE',
          `Trellis does not serve resources of type ${typeUrl}`,
        );
    }
  }

  /**
   * Encodes resources. With `previous` (the same part's last build), a resource whose JSON is
   * unchanged keeps its previous encoding: encoding (with validation) costs far more than
   * serialising to JSON, and rebuilding everything after a mesh-wide change mostly gives the
   * same resources again.
   */
  #encode(
    typeUrl: string,
    json: readonly Named[],
    previous?: ReadonlyMap<string, EncodedAny>,
  ): Map<string, EncodedAny> {
    const encoded = new Map<string, EncodedAny>();
    for (const r of json) {
      const name = nameOf(r);
      const text = jsonDigest(r);
      const old = previous?.get(name);
      if (old && text !== undefined && jsonDigests.get(old) === text) {
        encoded.set(name, old);
        continue;
      }
      let any: EncodedAny;
      try {
        any = encodeResource(typeUrl, r);
      } catch (e) {
        // Config the API would refuse now but that is in the store (written before a check
        // existed, or by hand): this resource is left out, the rest of the type still goes out.
        this.#reportEncodeError(typeUrl, name, e);
        continue;
      }
      if (text !== undefined) jsonDigests.set(any, text);
      encoded.set(name, any);
    }
    this.stats.generated.set(typeUrl, (this.stats.generated.get(typeUrl) ?? 0) + json.length);
    return encoded;
  }

  #reportEncodeError(typeUrl: string, name: string, e: unknown): void {
    const line = `cannot encode ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)} "${name}", left out of the push: ${e instanceof Error ? e.message : String(e)}`;
    if (this.#encodeErrors.has(line)) return;
    if (this.#encodeErrors.size >= 1000) this.#encodeErrors.clear();
    this.#encodeErrors.add(line);
    this.onEncodeError(line);
  }

  #newVersion(snapshot: Snapshot): string {
    return `${snapshot.version}-${++this.#parts}`;
  }

  /** The shared part of a type for a scope, built (or brought up to date) on first use. */
  #sharedPart(
    snapshot: Snapshot,
    proxy: Proxy,
    typeUrl: string,
    key: string,
    part: ResourcePart,
  ): Part {
    const k = `${typeUrl}|${key}`;
    const entry = this.#shared.get(k);
    if (entry && entry.current === snapshot.version) {
      this.stats.sharedHits++;
      return entry.part;
    }
    this.stats.sharedBuilds++;
    const old = entry?.part;
    const json = this.#translate(snapshot, proxy, typeUrl, undefined, part);
    const encoded = this.#encode(typeUrl, json, old?.encoded);
    const built = this.#rebuilt(snapshot, proxy, old, encoded);
    // Updated in place: proxies' entries refer to it (see setSnapshot).
    if (entry) {
      entry.part = built;
      entry.current = snapshot.version;
    } else this.#shared.set(k, { part: built, current: snapshot.version });
    return built;
  }

  /**
   * A rebuilt part: the old one when nothing changed; otherwise a new version that keeps the old
   * encoded objects of unchanged resources (their delta versions are already hashed) and, when
   * no name went away, says it is an increment of the old one in the changed names.
   */
  #rebuilt(
    snapshot: Snapshot,
    proxy: Proxy,
    old: Part | undefined,
    encoded: Map<string, EncodedAny>,
  ): Part {
    if (!old) return { version: this.#newVersion(snapshot), encoded, proxy };
    const changed = new Set<string>();
    let added = false;
    for (const [n, r] of encoded) {
      const o = old.encoded.get(n);
      if (o && (o === r || (o.typeUrl === r.typeUrl && Buffer.from(o.value).equals(r.value))))
        encoded.set(n, o);
      else {
        changed.add(n);
        if (!o) added = true;
      }
    }
    let removed = false;
    for (const n of old.encoded.keys()) if (!encoded.has(n)) removed = true;
    if (!removed && changed.size === 0) return old;
    const version = this.#newVersion(snapshot);
    if (removed) return { version, encoded, proxy };
    // Same names as the part it increments: what covered that covers this.
    const known = coveringNames.get(old.encoded);
    if (known && !added) coveringNames.set(encoded, known);
    return { version, encoded, proxy, incremental: { from: old.version, changed } };
  }

  /** Rebuilds the load assignments of the changed services only. */
  #increment(snapshot: Snapshot, old: Part, hosts: ReadonlySet<string>): Part {
    const index = hostIndex(old.encoded);
    const names = [...index.other];
    for (const h of hosts) names.push(...(index.byHost.get(h) ?? []));
    if (names.length === 0) return old;
    const json = this.#translate(snapshot, old.proxy, TYPE_URL.ClusterLoadAssignment, names, 'all');
    const fresh = this.#encode(TYPE_URL.ClusterLoadAssignment, json, old.encoded);
    const changed = new Set<string>();
    for (const [n, r] of fresh) {
      const o = old.encoded.get(n);
      if (!o || !Buffer.from(o.value).equals(r.value)) changed.add(n);
    }
    // A name that is no longer generated would need a full response: rebuild in full.
    if (names.some((n) => !fresh.has(n))) {
      const all = this.#translate(
        snapshot,
        old.proxy,
        TYPE_URL.ClusterLoadAssignment,
        undefined,
        'all',
      );
      return {
        version: this.#newVersion(snapshot),
        encoded: this.#encode(TYPE_URL.ClusterLoadAssignment, all),
        proxy: old.proxy,
      };
    }
    if (changed.size === 0) return old;
    const encoded = new Map(old.encoded);
    for (const n of changed) encoded.set(n, fresh.get(n) as EncodedAny);
    // Same names as the part it increments: what covered that covers this.
    const known = coveringNames.get(old.encoded);
    if (known) coveringNames.set(encoded, known);
    hostIndexes.set(encoded, index);
    return {
      version: this.#newVersion(snapshot),
      encoded,
      proxy: old.proxy,
      incremental: { from: old.version, changed },
    };
  }

  /** The current snapshot and the proxy's per-type entries (created on first use). */
  #proxyState(info: ProxyInfo): { snapshot: Snapshot; perType: Map<string, ProxyEntry> } {
    const snapshot = this.#snapshot;
    if (!snapshot)
      throw new TrellisError(
        'TRELLIS_NOT_READY',
        'the control plane has no configuration snapshot yet',
      );
    let perType = this.#perProxy.get(info.nodeId);
    if (!perType) this.#perProxy.set(info.nodeId, (perType = new Map<string, ProxyEntry>()));
    return { snapshot, perType };
  }

  #entry(info: ProxyInfo, typeUrl: string, names: readonly string[] | undefined): ProxyEntry {
    const { snapshot, perType } = this.#proxyState(info);
    this.#infos.set(info.nodeId, info);
    // Proxyless listeners depend on the names asked for, so they are not cached across requests.
    const namesMatter = info.proxyless && typeUrl === TYPE_URL.Listener;
    const cached = perType.get(typeUrl);
    if (cached && !namesMatter && cached.at === snapshot.version) return cached;

    const proxy = this.#proxyOf(snapshot, info);
    const anyNamespace =
      (typeUrl === TYPE_URL.Cluster || typeUrl === TYPE_URL.ClusterLoadAssignment) &&
      this.#special !== undefined &&
      !this.#special.has(proxy.namespace);
    const key = scopeKey(proxy, this.#labelKeys, anyNamespace);
    let entry: ProxyEntry;
    if (key === undefined) {
      const json = this.#translate(
        snapshot,
        proxy,
        typeUrl,
        namesMatter ? names : undefined,
        'all',
      );
      const encoded = this.#encode(typeUrl, json, cached?.set.resources);
      entry = {
        at: snapshot.version,
        set: { version: `${snapshot.version}.${digestOf(encoded)}`, resources: encoded },
        ...(namesMatter && names ? { names } : {}),
      };
    } else if (!SPLIT_TYPES.has(typeUrl)) {
      const p = this.#sharedPart(snapshot, proxy, typeUrl, key, 'all');
      const shared = this.#shared.get(`${typeUrl}|${key}`);
      entry = { at: snapshot.version, set: partSet(p), ...(shared ? { shared } : {}) };
    } else {
      const shared = this.#sharedPart(snapshot, proxy, typeUrl, key, 'outbound');
      const ownJson = this.#translate(snapshot, proxy, typeUrl, undefined, 'inbound');
      const own = this.#encode(typeUrl, ownJson, cached?.set.groups?.[1]);
      const groups = [shared.encoded, own];
      const digest = digestOf(own);
      // The proxy's own part unchanged: an increment of the shared part is one of the whole.
      const inc = shared.incremental;
      const from = inc && cached?.set.version === `${inc.from}.${digest}` ? cached.set.version : '';
      entry = {
        at: snapshot.version,
        set: {
          version: `${shared.version}.${digest}`,
          resources: new UnionMap(groups),
          groups,
          ...(inc && from !== '' ? { incremental: { from, changed: inc.changed } } : {}),
        },
      };
    }
    perType.set(typeUrl, entry);
    return entry;
  }

  #reportGatewayProblems(snapshot: Snapshot, proxy: Proxy): void {
    if (this.#gatewayWarned.at !== snapshot.version)
      this.#gatewayWarned = { at: snapshot.version, seen: new Set() };
    const seen = this.#gatewayWarned.seen;
    for (const p of gatewayProblems(snapshot, proxy, this.options)) {
      const line = `Gateway ${p.object.namespace}/${p.object.name}: ${p.message}`;
      if (seen.has(line)) continue;
      seen.add(line);
      this.onGatewayWarning(line);
    }
  }

  /** The secrets asked for (SDS), warnings reported once per snapshot. */
  #secrets(snapshot: Snapshot, proxy: Proxy, names: readonly string[] | undefined): Named[] {
    const { secrets, warnings } = generateSecrets(snapshot, proxy, names, { now: Date.now() });
    if (this.#secretWarned.at !== snapshot.version)
      this.#secretWarned = { at: snapshot.version, seen: new Set() };
    const seen = this.#secretWarned.seen;
    for (const warning of warnings) {
      const line = formatSecretWarning(warning);
      if (seen.has(line)) continue;
      seen.add(line);
      this.onSecretWarning(line);
    }
    return secrets;
  }

  /**
   * Secrets are served by name, as istiod serves them: translated for exactly the names the proxy
   * subscribed to (a few, each parsed once per Secret object), and versioned by content alone, so
   * a push that changes none of them sends nothing.
   */
  #secretSet(info: ProxyInfo, names: readonly string[] | undefined): ResourceSet {
    const { snapshot, perType } = this.#proxyState(info);
    this.#infos.set(info.nodeId, info);
    const asked = names ?? [];
    const cached = perType.get(TYPE_URL.Secret);
    // Subscriptions arrive as stable arrays: the same array at the same snapshot, the same answer.
    if (cached && cached.at === snapshot.version && cached.names === asked) return cached.set;
    const proxy = this.#proxyOf(snapshot, info);
    const json = this.#translate(snapshot, proxy, TYPE_URL.Secret, asked, 'all');
    const encoded = this.#encode(TYPE_URL.Secret, json, cached?.set.resources);
    const set: ResourceSet = { version: `sds-${digestOf(encoded)}`, resources: encoded };
    perType.set(TYPE_URL.Secret, { at: snapshot.version, set, names: asked });
    return set;
  }

  resources(info: ProxyInfo, typeUrl: string, names: readonly string[] | undefined): ResourceSet {
    if (typeUrl === TYPE_URL.Secret) return this.#secretSet(info, names);
    const { set } = this.#entry(info, typeUrl, names);
    if (names === undefined) return set;
    // Subscriptions arrive as stable arrays (the server keeps them until they change), so a
    // check that one names exactly the set's resources is remembered.
    if (names.length === set.resources.size) {
      let known = coveringNames.get(set.resources);
      if (known?.has(names)) return set;
      let all = true;
      for (const n of names) if (!set.resources.has(n)) all = false;
      if (all) {
        if (!known) coveringNames.set(set.resources, (known = new WeakSet()));
        known.add(names);
        return set;
      }
    }
    const picked = new Map<string, EncodedAny>();
    for (const n of names) {
      const r = set.resources.get(n);
      if (r) picked.set(n, r);
    }
    return {
      version: set.version,
      resources: picked,
      ...(set.incremental ? { incremental: set.incremental } : {}),
    };
  }

  /**
   * The JSON resources of a proxy, by type, for `/debug/config_dump`: translated again from the
   * current snapshot (as istiod does) for the types the proxy was given, with the version it was
   * last given. Only the encoded output is kept between requests.
   */
  generatedFor(
    nodeId: string,
  ): { version: string; byType: ReadonlyMap<string, readonly Named[]> } | undefined {
    const perType = this.#perProxy.get(nodeId);
    const info = this.#infos.get(nodeId);
    const snapshot = this.#snapshot;
    if (!perType || !info || !snapshot) return undefined;
    const proxy = this.#proxyOf(snapshot, info);
    const byType = new Map<string, readonly Named[]>();
    let version = '';
    for (const [t, e] of perType) {
      byType.set(t, this.#translate(snapshot, proxy, t, e.names, 'all'));
      if (t === TYPE_URL.ClusterLoadAssignment || version === '') version = e.set.version;
    }
    return { version, byType };
  }
}
