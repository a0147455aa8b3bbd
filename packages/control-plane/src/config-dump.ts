// Envoy's admin ConfigDump (what `/config_dump` returns) built from the resources the control
// plane generated for one proxy: istiod's /debug/config_dump answers in this shape, and the
// proxy's own admin endpoint will too, so one printer serves both. Private keys are redacted
// as Envoy's admin redacts them: the bytes `[redacted]` (base64 `W3JlZGFjdGVkXQ==` in JSON).

/** Resources of one proxy in proto3-JSON form, by kind. */
export interface ProxyResources {
  readonly version: string;
  readonly listeners: readonly { readonly name?: string }[];
  readonly routes: readonly { readonly name?: string }[];
  readonly clusters: readonly { readonly name?: string }[];
  readonly endpoints: readonly { readonly clusterName?: string }[];
  readonly secrets: readonly { readonly name?: string }[];
}

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';
const REDACTED = '[redacted]';

/** A DataSource with its inline content replaced by `[redacted]` (files are only named). */
function redactDataSource(d: unknown): unknown {
  if (d === null || typeof d !== 'object') return d;
  const src = d as { inlineBytes?: unknown; inlineString?: unknown };
  if (src.inlineBytes !== undefined)
    return { ...src, inlineBytes: Buffer.from(REDACTED).toString('base64') };
  if (src.inlineString !== undefined) return { ...src, inlineString: REDACTED };
  return d;
}

/** A Secret without its private key and key password (Envoy's sensitive fields). */
export function redactSecret<T extends object>(s: T): T {
  const tls = (s as { tlsCertificate?: { privateKey?: unknown; password?: unknown } })
    .tlsCertificate;
  if (!tls || (tls.privateKey === undefined && tls.password === undefined)) return s;
  return {
    ...s,
    tlsCertificate: {
      ...tls,
      ...(tls.privateKey !== undefined ? { privateKey: redactDataSource(tls.privateKey) } : {}),
      ...(tls.password !== undefined ? { password: redactDataSource(tls.password) } : {}),
    },
  };
}
const API = 'type.googleapis.com/envoy.config.';

/** The ConfigDump of one proxy's resources; `lastUpdated` is the time they were generated. */
export function configDump(r: ProxyResources, lastUpdated: string): { configs: unknown[] } {
  const v = r.version;
  return {
    configs: [
      {
        '@type': `${ADMIN}ClustersConfigDump`,
        versionInfo: v,
        dynamicActiveClusters: r.clusters.map((c) => ({
          versionInfo: v,
          cluster: { '@type': `${API}cluster.v3.Cluster`, ...c },
          lastUpdated,
        })),
      },
      {
        '@type': `${ADMIN}ListenersConfigDump`,
        versionInfo: v,
        dynamicListeners: r.listeners.map((l) => ({
          name: l.name ?? '',
          activeState: {
            versionInfo: v,
            listener: { '@type': `${API}listener.v3.Listener`, ...l },
            lastUpdated,
          },
        })),
      },
      {
        '@type': `${ADMIN}RoutesConfigDump`,
        dynamicRouteConfigs: r.routes.map((rc) => ({
          versionInfo: v,
          routeConfig: { '@type': `${API}route.v3.RouteConfiguration`, ...rc },
          lastUpdated,
        })),
      },
      {
        '@type': `${ADMIN}EndpointsConfigDump`,
        dynamicEndpointConfigs: r.endpoints.map((e) => ({
          versionInfo: v,
          endpointConfig: { '@type': `${API}endpoint.v3.ClusterLoadAssignment`, ...e },
          lastUpdated,
        })),
      },
      {
        '@type': `${ADMIN}SecretsConfigDump`,
        dynamicActiveSecrets: r.secrets.map((s) => ({
          name: s.name ?? '',
          versionInfo: v,
          lastUpdated,
          secret: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
            ...redactSecret(s),
          },
        })),
      },
    ],
  };
}
