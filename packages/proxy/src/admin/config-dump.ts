// The admin `/config_dump`: Envoy's envoy.admin.v3.ConfigDump built from the proxy's current
// configuration. The wrappers use Envoy's snake_case field names (`dynamic_active_clusters`,
// `version_info`, `last_updated`); the resources inside keep the proto3 JSON form the proxy
// received them in (`{"@type": ..., ...}`), which every proto JSON parser accepts. Secrets
// (SecretsConfigDump) have their private keys shown as `[redacted]`, as Envoy does.
import { TYPE_URL, type DataSource, type Secret, type TlsCertificate } from '@trellis/envoy';
import type { ProxyConfig } from '../xds/config.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

/** The four xDS resource kinds of a ProxyConfig. */
export type XdsKind = 'listeners' | 'routes' | 'clusters' | 'endpoints';

/** A rejected update of one resource (Envoy's UpdateFailureState). */
export interface UpdateFailure {
  readonly details: string;
  /** ms since the epoch. */
  readonly lastUpdateAttempt: number;
  readonly versionInfo?: string;
  readonly failedConfiguration?: Readonly<Record<string, unknown>>;
}

/** What the xDS client knows beyond the config itself; every member is optional. */
export interface XdsStatusProvider {
  /** When the named resource was last updated (ms since the epoch). */
  lastUpdated?(kind: XdsKind, name: string): number | undefined;
  /** The version in which the named resource last changed (default: the kind's version). */
  resourceVersion?(kind: XdsKind, name: string): string | undefined;
  /** The last rejected update of the named resource (Envoy's `error_state`). */
  errorState?(kind: XdsKind, name: string): UpdateFailure | undefined;
  /** Listeners received but still warming (Envoy's `warming_state`), by name. */
  warmingListeners?(): ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** The version and update time of an SDS secret in force. */
  secret?(name: string): { readonly versionInfo: string; readonly lastUpdated: number } | undefined;
  /** Secrets subscribed to but not received (Envoy's `dynamic_warming_secrets`). */
  warmingSecrets?(): readonly string[];
}

export interface ConfigDumpOptions {
  /** Include EndpointsConfigDump (Envoy's `include_eds`). */
  readonly includeEds?: boolean;
  /** Only resources whose name matches (Envoy's `name_regex`). */
  readonly nameRegex?: RegExp;
  /** A BootstrapConfigDump's `bootstrap`, first in the list when given. */
  readonly bootstrap?: Readonly<Record<string, unknown>>;
  /** When the bootstrap was loaded (ms since the epoch). */
  readonly bootstrapLoaded?: number;
  /** Used for `last_updated` when the status provider has no time (default: now). */
  readonly now?: number;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function byName<T>(m: ReadonlyMap<string, T>, re: RegExp | undefined): [string, T][] {
  return [...m]
    .filter(([n]) => !re || re.test(n))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function errorStateJson(f: UpdateFailure): Record<string, unknown> {
  return {
    ...(f.failedConfiguration ? { failed_configuration: f.failedConfiguration } : {}),
    last_update_attempt: iso(f.lastUpdateAttempt),
    details: f.details,
    ...(f.versionInfo !== undefined ? { version_info: f.versionInfo } : {}),
  };
}

/** Envoy's ConfigDump (`{"configs": [...]}`) for a configuration. */
export function buildConfigDump(
  config: ProxyConfig,
  status: XdsStatusProvider = {},
  options: ConfigDumpOptions = {},
): { configs: Record<string, unknown>[] } {
  const now = options.now ?? Date.now();
  const re = options.nameRegex;
  const updated = (kind: XdsKind, name: string): string =>
    iso(status.lastUpdated?.(kind, name) ?? now);
  const version = (kind: XdsKind, name: string): string =>
    status.resourceVersion?.(kind, name) ?? config.versions[kind];
  const configs: Record<string, unknown>[] = [];

  if (options.bootstrap)
    configs.push({
      '@type': `${ADMIN}BootstrapConfigDump`,
      bootstrap: options.bootstrap,
      last_updated: iso(options.bootstrapLoaded ?? now),
    });

  configs.push({
    '@type': `${ADMIN}ClustersConfigDump`,
    version_info: config.versions.clusters,
    dynamic_active_clusters: byName(config.clusters, re).map(([name, c]) => ({
      version_info: version('clusters', name),
      cluster: { '@type': TYPE_URL.Cluster, ...c },
      last_updated: updated('clusters', name),
    })),
  });

  const warming =
    status.warmingListeners?.() ?? new Map<string, Readonly<Record<string, unknown>>>();
  const names = new Set([...config.listeners.keys(), ...warming.keys()]);
  const listeners = [...names]
    .filter((n) => !re || re.test(n))
    .sort()
    .map((name) => {
      const active = config.listeners.get(name);
      const warm = warming.get(name);
      const error = status.errorState?.('listeners', name);
      return {
        name,
        ...(active
          ? {
              active_state: {
                version_info: version('listeners', name),
                listener: { '@type': TYPE_URL.Listener, ...active },
                last_updated: updated('listeners', name),
              },
            }
          : {}),
        ...(warm
          ? {
              warming_state: {
                version_info: version('listeners', name),
                listener: { '@type': TYPE_URL.Listener, ...warm },
                last_updated: updated('listeners', name),
              },
            }
          : {}),
        ...(error ? { error_state: errorStateJson(error) } : {}),
      };
    });
  configs.push({
    '@type': `${ADMIN}ListenersConfigDump`,
    version_info: config.versions.listeners,
    dynamic_listeners: listeners,
  });

  configs.push({
    '@type': `${ADMIN}RoutesConfigDump`,
    dynamic_route_configs: byName(config.routes, re).map(([name, r]) => ({
      version_info: version('routes', name),
      route_config: { '@type': TYPE_URL.RouteConfiguration, ...r },
      last_updated: updated('routes', name),
    })),
  });

  const secrets = config.secrets;
  if (secrets !== undefined) {
    const warmingSecrets = (status.warmingSecrets?.() ?? []).filter((n) => !re || re.test(n));
    configs.push({
      '@type': `${ADMIN}SecretsConfigDump`,
      dynamic_active_secrets: byName(secrets, re).map(([name, secret]) => {
        const info = status.secret?.(name);
        return {
          name,
          version_info: info?.versionInfo ?? config.versions.secrets ?? '',
          last_updated: iso(info?.lastUpdated ?? now),
          secret: { '@type': TYPE_URL.Secret, ...redactSecret(secret) },
        };
      }),
      ...(warmingSecrets.length > 0
        ? {
            dynamic_warming_secrets: [...warmingSecrets]
              .sort()
              .map((name) => ({ name, last_updated: iso(now) })),
          }
        : {}),
    });
  }

  if (options.includeEds)
    configs.push({
      '@type': `${ADMIN}EndpointsConfigDump`,
      dynamic_endpoint_configs: byName(config.endpoints, re).map(([name, e]) => ({
        version_info: version('endpoints', name),
        endpoint_config: { '@type': TYPE_URL.ClusterLoadAssignment, ...e },
        last_updated: updated('endpoints', name),
      })),
    });

  return { configs };
}

const REDACTED = '[redacted]';

/** A DataSource with its inline secret replaced by `[redacted]` (a file name stays). */
function redactSource(ds: DataSource | undefined): DataSource | undefined {
  if (!ds) return ds;
  if (ds.inlineBytes !== undefined || ds.inlineString !== undefined)
    return { inlineString: REDACTED };
  return ds;
}

/** A secret as Envoy dumps it: private keys and passwords `[redacted]`. */
export function redactSecret(s: Secret): Secret {
  const c = s.tlsCertificate;
  if (!c) return s;
  const out: TlsCertificate = { ...c };
  const key = redactSource(c.privateKey);
  if (key) out.privateKey = key;
  const password = redactSource(c.password);
  if (password) out.password = password;
  return { ...s, tlsCertificate: out };
}

/** The `resource` values Envoy accepts, and the dump type each comes from. */
const RESOURCE_FIELDS: Readonly<Record<string, string>> = {
  dynamic_active_clusters: 'ClustersConfigDump',
  static_clusters: 'ClustersConfigDump',
  dynamic_warming_clusters: 'ClustersConfigDump',
  dynamic_listeners: 'ListenersConfigDump',
  static_listeners: 'ListenersConfigDump',
  dynamic_route_configs: 'RoutesConfigDump',
  static_route_configs: 'RoutesConfigDump',
  dynamic_endpoint_configs: 'EndpointsConfigDump',
  static_endpoint_configs: 'EndpointsConfigDump',
  dynamic_active_secrets: 'SecretsConfigDump',
  dynamic_warming_secrets: 'SecretsConfigDump',
};

/** The message type of one element of a `resource` field (for its `@type`). */
const ELEMENT_TYPES: Readonly<Record<string, string>> = {
  dynamic_active_clusters: 'ClustersConfigDump.DynamicCluster',
  dynamic_warming_clusters: 'ClustersConfigDump.DynamicCluster',
  static_clusters: 'ClustersConfigDump.StaticCluster',
  dynamic_listeners: 'ListenersConfigDump.DynamicListener',
  static_listeners: 'ListenersConfigDump.StaticListener',
  dynamic_route_configs: 'RoutesConfigDump.DynamicRouteConfig',
  static_route_configs: 'RoutesConfigDump.StaticRouteConfig',
  dynamic_endpoint_configs: 'EndpointsConfigDump.DynamicEndpointConfig',
  static_endpoint_configs: 'EndpointsConfigDump.StaticEndpointConfig',
  dynamic_active_secrets: 'SecretsConfigDump.DynamicSecret',
  dynamic_warming_secrets: 'SecretsConfigDump.DynamicSecret',
};

/**
 * Envoy's `/config_dump?resource=<field>`: each element of that repeated field, with its own
 * `@type`. Undefined when the field is not one Envoy knows.
 */
export function selectResource(
  dump: { configs: Record<string, unknown>[] },
  field: string,
): { configs: Record<string, unknown>[] } | undefined {
  const dumpType = RESOURCE_FIELDS[field];
  const elementType = ELEMENT_TYPES[field];
  if (!dumpType || !elementType) return undefined;
  const out: Record<string, unknown>[] = [];
  for (const c of dump.configs) {
    if (c['@type'] !== `${ADMIN}${dumpType}`) continue;
    const items = c[field];
    if (Array.isArray(items))
      for (const item of items as Record<string, unknown>[])
        out.push({ '@type': `${ADMIN}${elementType}`, ...item });
  }
  return { configs: out };
}
