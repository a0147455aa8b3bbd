// Everything generation needs about one proxy, computed once per (snapshot, proxy): the proxy,
// its scope, the mesh defaults and the lookups route building uses (the service a host names,
// the hash policy a DestinationRule asks for).
import type { Destination } from '@trellis/api';
import type { HashPolicy } from '@trellis/envoy';
import type { Service, Snapshot, Workload } from '@trellis/registry';
import { isProxylessGrpc, type Proxy } from './proxy.js';
import { consistentHashForDestination, hashPolicyOf } from './route-hash.js';
import type { HttpRouteContext } from './route.js';
import { buildSidecarScope, type SidecarScope } from './sidecar-scope.js';
import { DEFAULT_MESH_TRAFFIC, type MeshTrafficDefaults } from './sidecar-scope-options.js';

/** A proxy with its scope and lookups. */
export interface ProxyContext {
  readonly snapshot: Snapshot;
  readonly proxy: Proxy;
  readonly scope: SidecarScope;
  readonly defaults: MeshTrafficDefaults;
  /** The proxy's workload: the one given with the proxy, else found by the node id. */
  readonly workload?: Workload;
  /** The service a host names for this proxy (scope first, then anything visible). */
  lookupService(host: string): Service | undefined;
  /** The consistent-hash policy the DestinationRule of a destination sets, if any. */
  hashFor(dest: Destination): HashPolicy | undefined;
  /** The route-building context for requests on `listenPort` through `gateways`. */
  routeContext(listenPort: number, gateways: ReadonlySet<string>, isTls: boolean): HttpRouteContext;
}

/** The proxy's workload: given, or the Pod (else WorkloadEntry) its node id names. */
export function findProxyWorkload(snapshot: Snapshot, proxy: Proxy): Workload | undefined {
  if (proxy.workload) return proxy.workload;
  const dot = proxy.id.lastIndexOf('.');
  const name = dot >= 0 ? proxy.id.slice(0, dot) : proxy.id;
  const ns = dot >= 0 ? proxy.id.slice(dot + 1) : proxy.namespace;
  return snapshot.workload('Pod', ns, name) ?? snapshot.workload('WorkloadEntry', ns, name);
}

/** Builds the context of a proxy. */
export function buildProxyContext(
  snapshot: Snapshot,
  proxy: Proxy,
  defaults: MeshTrafficDefaults = DEFAULT_MESH_TRAFFIC,
): ProxyContext {
  const scope = buildSidecarScope(snapshot, proxy, defaults);
  const workload = findProxyWorkload(snapshot, proxy);
  const lookupService = (host: string): Service | undefined =>
    scope.servicesByHostname.get(host) ?? snapshot.serviceForHostname(host, proxy.namespace);
  const hashFor = (dest: Destination): HashPolicy | undefined =>
    hashPolicyOf(consistentHashForDestination(scope.destinationRule(dest.host)?.spec, dest));
  return {
    snapshot,
    proxy,
    scope,
    defaults,
    ...(workload ? { workload } : {}),
    lookupService,
    hashFor,
    routeContext(listenPort, gateways, isTls) {
      return {
        source: { labels: proxy.labels, namespace: proxy.namespace, gateways },
        listenPort,
        isTls,
        proxylessGrpc: isProxylessGrpc(proxy),
        lookupService,
        lookupHash: hashFor,
        ...(defaults.defaultHttpRetryPolicy
          ? { meshDefaultRetry: defaults.defaultHttpRetryPolicy }
          : {}),
      };
    },
  };
}
