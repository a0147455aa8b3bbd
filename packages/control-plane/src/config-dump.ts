// Envoy's admin ConfigDump (what `/config_dump` returns) built from the resources the control
// plane generated for one proxy: istiod's /debug/config_dump answers in this shape, and the
// proxy's own admin endpoint will too, so one printer serves both.

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
            ...s,
          },
        })),
      },
    ],
  };
}
