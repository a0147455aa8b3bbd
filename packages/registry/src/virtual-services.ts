// VirtualServices by the gateway they bind to and the namespaces that see them. Istio's index
// (pilot/pkg/model push_context.go initVirtualServices / VirtualServicesForGateway): a
// VirtualService is private to its namespace, exported to listed namespaces, or public;
// sidecars use the ones bound to `mesh`, a gateway proxy the ones bound to its Gateway
// (`namespace/name`). Delegate VirtualServices (no hosts) are only reached through a root's
// `delegate` and are not indexed by gateway or host.
import { MESH_GATEWAY } from '@trellis/api';
import type { VirtualServiceConfig } from './config.js';
import { compareByCreation } from './config.js';
import { hostMatches } from './host.js';
import type { MeshOptions } from './options.js';
import { EXPORT_NONE, EXPORT_PRIVATE, EXPORT_PUBLIC } from './visibility.js';

const EMPTY: readonly never[] = Object.freeze([]);

export class VirtualServiceIndex {
  readonly #private = new Map<string, VirtualServiceConfig[]>();
  readonly #exported = new Map<string, VirtualServiceConfig[]>();
  readonly #public = new Map<string, VirtualServiceConfig[]>();
  readonly #byName = new Map<string, VirtualServiceConfig>();
  readonly #cache = new Map<string, readonly VirtualServiceConfig[]>();

  constructor(all: readonly VirtualServiceConfig[], opts: MeshOptions) {
    const sorted = [...all].sort(compareByCreation);
    for (const vs of sorted) {
      this.#byName.set(`${vs.namespace}/${vs.name}`, vs);
      if (vs.isDelegate) continue;
      const ns = vs.namespace;
      const exportTo = vs.spec.exportTo ?? [];
      if (exportTo.length === 0) {
        if (opts.defaultVirtualServiceExportTo.includes(EXPORT_PRIVATE))
          for (const gw of vs.gateways) push(this.#private, `${ns}\u0000${gw}`, vs);
        else if (opts.defaultVirtualServiceExportTo.includes(EXPORT_PUBLIC))
          for (const gw of vs.gateways) push(this.#public, gw, vs);
      } else if (exportTo.includes(EXPORT_PUBLIC)) {
        for (const gw of vs.gateways) push(this.#public, gw, vs);
      } else if (!exportTo.includes(EXPORT_NONE)) {
        for (const e of new Set(exportTo)) {
          for (const gw of vs.gateways) {
            if (e === EXPORT_PRIVATE || e === ns) push(this.#private, `${ns}\u0000${gw}`, vs);
            else push(this.#exported, `${e}\u0000${gw}`, vs);
          }
        }
      }
    }
  }

  /**
   * The VirtualServices bound to `gateway` (`namespace/name`, or `mesh` for sidecars) that
   * proxies of `namespace` see: private ones of the namespace, those exported to it, then
   * public ones; each group oldest first.
   */
  forGateway(namespace: string, gateway: string = MESH_GATEWAY): readonly VirtualServiceConfig[] {
    const key = `${namespace}\u0000${gateway}`;
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const out = Object.freeze([
      ...(this.#private.get(key) ?? EMPTY),
      ...(this.#exported.get(key) ?? EMPTY),
      ...(this.#public.get(gateway) ?? EMPTY),
    ]);
    this.#cache.set(key, out);
    return out;
  }

  /**
   * The VirtualServices bound to `gateway` seen from `namespace` whose hosts match `host`
   * (Istio's host matching, wildcards either way).
   */
  forHost(
    host: string,
    namespace: string,
    gateway: string = MESH_GATEWAY,
  ): readonly VirtualServiceConfig[] {
    return this.forGateway(namespace, gateway).filter((vs) =>
      vs.hosts.some((h) => hostMatches(h, host)),
    );
  }

  /** A VirtualService by namespace and name (how a root's `delegate` finds its delegate). */
  byName(namespace: string, name: string): VirtualServiceConfig | undefined {
    return this.#byName.get(`${namespace}/${name}`);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
