// The seam between serving and translation: what each proxy should get.
import type { EncodedAny } from '@trellis/envoy';
import type { ProxyInfo } from './proxy-info.js';

/** The resources of one type for one proxy. */
export interface ResourceSet {
  /** Version of this view (SotW version_info, delta system_version_info). */
  readonly version: string;
  /** Resources by name, already encoded. */
  readonly resources: ReadonlyMap<string, EncodedAny>;
  /** Per-resource versions for delta xDS; a hash of the bytes is used for names not listed. */
  readonly versions?: ReadonlyMap<string, string>;
  /**
   * When set, `resources` is exactly the union of these disjoint, immutable maps. A source
   * that hands the same map to many proxies (say, one scope's outbound clusters) lets the
   * server encode it once and send the same bytes to each of them.
   */
  readonly groups?: readonly ReadonlyMap<string, EncodedAny>[];
  /**
   * For types a SotW response may carry in part (EDS, RDS): a proxy that was last sent
   * version `from` needs only the `changed` resources (none was removed). A version names
   * content: delta streams given this same set object while holding `from`, and subscribed to
   * every changed name, are all sent one response built once (see delta.ts).
   */
  readonly incremental?: { readonly from: string; readonly changed: ReadonlySet<string> };
}

/** A read-only map over disjoint maps (no copy): `resources` of a grouped ResourceSet. */
export class UnionMap<V> implements ReadonlyMap<string, V> {
  readonly #parts: readonly ReadonlyMap<string, V>[];
  readonly size: number;
  constructor(parts: readonly ReadonlyMap<string, V>[]) {
    this.#parts = parts;
    this.size = parts.reduce((n, p) => n + p.size, 0);
  }
  get(key: string): V | undefined {
    for (const p of this.#parts) {
      const v = p.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  }
  has(key: string): boolean {
    return this.#parts.some((p) => p.has(key));
  }
  *entries(): MapIterator<[string, V]> {
    for (const p of this.#parts) yield* p.entries();
  }
  *keys(): MapIterator<string> {
    for (const p of this.#parts) yield* p.keys();
  }
  *values(): MapIterator<V> {
    for (const p of this.#parts) yield* p.values();
  }
  forEach(cb: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this);
  }
  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }
}

/**
 * What the xDS server asks for. `names` undefined means a wildcard subscription (every
 * resource of the type the proxy may see); otherwise only those names (missing ones are
 * simply absent from the result).
 */
export interface ResourceSource {
  resources(
    proxy: ProxyInfo,
    typeUrl: string,
    names: readonly string[] | undefined,
  ): ResourceSet | Promise<ResourceSet>;
}

/** Which proxies a push goes to. */
export type PushTarget = 'all' | readonly string[];

/** A request to push: to whom, which types, and why (for logs and debug). */
export interface PushRequest {
  /** Node ids, or 'all'. */
  readonly proxies: PushTarget;
  /** Type URLs, or 'all' (every type the proxy subscribed to). */
  readonly typeUrls: 'all' | readonly string[];
  readonly reason: string;
}
