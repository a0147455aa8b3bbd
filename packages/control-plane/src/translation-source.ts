// The xDS server's ResourceSource, backed by translation of the current snapshot. Resources
// are generated per proxy and type, once per snapshot version, and encoded once; EDS-only
// changes regenerate only endpoints.
import { TYPE_URL, encodeResource, type EncodedAny } from '@trellis/envoy';
import type { Snapshot } from '@trellis/registry';
import {
  generateClusters,
  generateEndpoints,
  generateListeners,
  generateRoutes,
  proxyFromNode,
  type Proxy,
  type TranslateOptions,
} from '@trellis/translate';
import type { ProxyInfo, ResourceSet, ResourceSource } from '@trellis/xds-server';
import { TrellisError } from '@trellis/core';

interface Named {
  readonly name?: string;
  readonly clusterName?: string;
}

interface CacheEntry {
  readonly version: string;
  /** Every resource of the type, encoded, by name (wildcard view). */
  readonly all: ReadonlyMap<string, EncodedAny>;
  /** The JSON resources, for config dumps. */
  readonly json: readonly Named[];
}

/** Where a proxy's Pod is found: `POD.NS` → the registry's workload. */
function proxyOf(snapshot: Snapshot, info: ProxyInfo): Proxy {
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

const nameOf = (r: Named): string => r.name ?? r.clusterName ?? '';

export class TranslationSource implements ResourceSource {
  readonly #cache = new Map<string, Map<string, CacheEntry>>();
  #snapshot: Snapshot | undefined;
  /** Resources generated, by type URL (for metrics). */
  readonly generated = new Map<string, number>();

  constructor(private readonly options: TranslateOptions = {}) {}

  /** Installs a new snapshot; cached resources of other versions are regenerated on demand. */
  setSnapshot(s: Snapshot): void {
    this.#snapshot = s;
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Forgets a disconnected proxy. */
  forget(nodeId: string): void {
    this.#cache.delete(nodeId);
  }

  /**
   * Keeps a proxy's cached resources of types other than EDS valid for a new version (the change
   * touched only endpoints): they are re-labelled, not regenerated.
   */
  carryForward(nodeId: string, version: string, typeUrls: readonly string[]): void {
    const perType = this.#cache.get(nodeId);
    if (!perType) return;
    for (const t of typeUrls) {
      const e = perType.get(t);
      if (e) perType.set(t, { ...e, version });
    }
  }

  #generate(
    snapshot: Snapshot,
    proxy: Proxy,
    typeUrl: string,
    names: readonly string[] | undefined,
  ): Named[] {
    switch (typeUrl) {
      case TYPE_URL.Listener:
        return generateListeners(
          snapshot,
          proxy,
          proxy.generator === 'grpc' ? (names ?? []) : undefined,
          this.options,
        );
      case TYPE_URL.RouteConfiguration:
        return generateRoutes(snapshot, proxy, undefined, this.options);
      case TYPE_URL.Cluster:
        return generateClusters(snapshot, proxy, undefined, this.options.clusters);
      case TYPE_URL.ClusterLoadAssignment:
        return generateEndpoints(snapshot, proxy, undefined, this.options.clusters);
      case TYPE_URL.Secret:
        return [];
      default:
        throw new TrellisError(
          'TRELLIS_UNKNOWN_TYPE',
          `Trellis does not serve resources of type ${typeUrl}`,
        );
    }
  }

  #entry(info: ProxyInfo, typeUrl: string, names: readonly string[] | undefined): CacheEntry {
    const snapshot = this.#snapshot;
    if (!snapshot)
      throw new TrellisError(
        'TRELLIS_NOT_READY',
        'the control plane has no configuration snapshot yet',
      );
    let perType = this.#cache.get(info.nodeId);
    if (!perType) {
      perType = new Map();
      this.#cache.set(info.nodeId, perType);
    }
    const cached = perType.get(typeUrl);
    // Proxyless listeners depend on the names asked for, so they are not cached across requests.
    const namesMatter = info.proxyless && typeUrl === TYPE_URL.Listener;
    if (cached && cached.version === snapshot.version && !namesMatter) return cached;
    const json = this.#generate(snapshot, proxyOf(snapshot, info), typeUrl, names);
    const all = new Map<string, EncodedAny>();
    for (const r of json) all.set(nameOf(r), encodeResource(typeUrl, r));
    this.generated.set(typeUrl, (this.generated.get(typeUrl) ?? 0) + json.length);
    const entry = { version: snapshot.version, all, json };
    perType.set(typeUrl, entry);
    return entry;
  }

  resources(info: ProxyInfo, typeUrl: string, names: readonly string[] | undefined): ResourceSet {
    const e = this.#entry(info, typeUrl, names);
    if (names === undefined) return { version: e.version, resources: e.all };
    const picked = new Map<string, EncodedAny>();
    for (const n of names) {
      const r = e.all.get(n);
      if (r) picked.set(n, r);
    }
    return { version: e.version, resources: picked };
  }

  /** The JSON resources last generated for a proxy, by type (for /debug/config_dump). */
  generatedFor(
    nodeId: string,
  ): { version: string; byType: ReadonlyMap<string, readonly Named[]> } | undefined {
    const perType = this.#cache.get(nodeId);
    if (!perType) return undefined;
    const byType = new Map<string, readonly Named[]>();
    let version = '';
    for (const [t, e] of perType) {
      byType.set(t, e.json);
      version = e.version;
    }
    return { version, byType };
  }
}
