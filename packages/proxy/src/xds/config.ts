// The proxy's whole configuration at one moment, as received over xDS: immutable, replaced as a
// whole when an update has been validated and warmed. Resources keep Envoy's v3 shape (the
// JSON form of the protos, `@trellis/envoy`'s interfaces): the proxy has no model of its own.
import type {
  Cluster,
  ClusterLoadAssignment,
  Listener,
  RouteConfiguration,
  Secret,
} from '@trellis/envoy';

export interface ProxyConfig {
  readonly listeners: ReadonlyMap<string, Listener>;
  /** Route configurations by name (RDS). */
  readonly routes: ReadonlyMap<string, RouteConfiguration>;
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** Load assignments by cluster name (EDS). */
  readonly endpoints: ReadonlyMap<string, ClusterLoadAssignment>;
  /**
   * Secrets by name (SDS over ADS), those the listeners and clusters reference (added with
   * TLS; optional so that hand-made configurations may omit it). They do not take part in
   * warming: see docs/proxy.md, "TLS".
   */
  readonly secrets?: ReadonlyMap<string, Secret>;
  /** Last accepted version of each type (`''` before the first). */
  readonly versions: {
    readonly listeners: string;
    readonly routes: string;
    readonly clusters: string;
    readonly endpoints: string;
    readonly secrets?: string;
  };
}

export const EMPTY_CONFIG: ProxyConfig = Object.freeze({
  listeners: new Map(),
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
  secrets: new Map(),
  versions: Object.freeze({ listeners: '', routes: '', clusters: '', endpoints: '', secrets: '' }),
});
