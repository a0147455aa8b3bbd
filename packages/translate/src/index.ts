// @trellis/translate: pure (snapshot, proxy) -> Envoy resources.
//
// `generate(snapshot, proxy)` returns every resource a proxy needs; the per-type generators serve
// one xDS type at a time (`generateListeners`, `generateRoutes`, `generateClusters`,
// `generateEndpoints`). Same inputs, same output: everything is sorted, nothing reads a clock,
// the environment or the network.
import type { ClusterLoadAssignment, Listener, RouteConfiguration } from '@trellis/envoy';
import type { RegistryProblem, Snapshot } from '@trellis/registry';
import { generateClusters, type ClusterGenerationOptions } from './cluster-builder.js';
import type { ClusterJson } from './cluster-types.js';
import { generateEndpoints } from './endpoint-builder.js';
import { buildGatewayListeners } from './gateway-listener.js';
import { buildGatewayRouteConfig } from './gateway-route.js';
import { mergeGateways } from './gateway-servers.js';
import { buildGrpcListeners, buildGrpcRoutes } from './grpc.js';
import { connectionManagerOf } from './http-connection-manager.js';
import { buildSidecarInboundListeners, type InboundOptions } from './listener-inbound.js';
import { buildSidecarOutboundListeners } from './listener-outbound.js';
import {
  buildHttpProxyListener,
  buildVirtualOutboundListener,
} from './listener-virtual-outbound.js';
import { isProxylessGrpc, type Proxy, type ResourcePart } from './proxy.js';
import { buildSidecarOutboundRouteConfig } from './route-config.js';
import { buildProxyContext, type ProxyContext } from './sidecar-scope-context.js';
import { DEFAULT_MESH_TRAFFIC, type MeshTrafficDefaults } from './sidecar-scope-options.js';

/** Every resource of one proxy, by type. */
export interface GeneratedResources {
  readonly listeners: Listener[];
  readonly routes: RouteConfiguration[];
  readonly clusters: ClusterJson[];
  readonly endpoints: ClusterLoadAssignment[];
}

/** Options of the generators (all optional: Istio's defaults). */
export interface TranslateOptions {
  /** Mesh-wide traffic defaults (outbound traffic policy, default retry policy). */
  readonly mesh?: Partial<MeshTrafficDefaults>;
  /** Options of cluster and endpoint generation. */
  readonly clusters?: ClusterGenerationOptions;
  /** Inbound hooks (mTLS chains, authorization filters) of later issues. */
  readonly inbound?: InboundOptions;
}

function contextOf(snapshot: Snapshot, proxy: Proxy, opts: TranslateOptions): ProxyContext {
  return buildProxyContext(snapshot, proxy, { ...DEFAULT_MESH_TRAFFIC, ...opts.mesh });
}

function byName<T extends { name?: string }>(list: T[]): T[] {
  return list.sort((a, b) =>
    (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
  );
}

function listenersFor(
  ctx: ProxyContext,
  names: readonly string[] | undefined,
  opts: TranslateOptions,
  part: ResourcePart,
): Listener[] {
  if (isProxylessGrpc(ctx.proxy)) return buildGrpcListeners(ctx, names ?? []);
  let out: Listener[];
  if (ctx.proxy.type === 'router') out = buildGatewayListeners(ctx, mergeGateways(ctx));
  else {
    out = [];
    if (part !== 'inbound') {
      if (ctx.proxy.explicitCapture !== true) out.push(...buildSidecarOutboundListeners(ctx));
      const httpProxy = buildHttpProxyListener(ctx);
      if (httpProxy) out.push(httpProxy);
      const virtual = buildVirtualOutboundListener(ctx);
      if (virtual) out.push(virtual);
    }
    if (part !== 'outbound') out.push(...buildSidecarInboundListeners(ctx, opts.inbound));
  }
  if (names && names.length > 0) {
    const wanted = new Set(names);
    out = out.filter((l) => wanted.has(l.name ?? ''));
  }
  return out;
}

/**
 * The listeners (LDS) of a proxy. `names` limits the answer (proxyless gRPC clients always name
 * what they want; an empty list means every outbound listener for them).
 */
export function generateListeners(
  snapshot: Snapshot,
  proxy: Proxy,
  names?: readonly string[],
  opts: TranslateOptions = {},
  part: ResourcePart = 'all',
): Listener[] {
  return listenersFor(contextOf(snapshot, proxy, opts), names, opts, part);
}

/** The route configuration names the listeners fetch over RDS, sorted. */
export function routeNamesOf(listeners: readonly Listener[]): string[] {
  const out = new Set<string>();
  const visit = (f: { name?: string; typedConfig?: unknown }): void => {
    const hcm = connectionManagerOf(f as Parameters<typeof connectionManagerOf>[0]);
    const name = hcm?.rds?.routeConfigName;
    if (name !== undefined) out.add(name);
  };
  for (const l of listeners) {
    for (const c of [
      ...(l.filterChains ?? []),
      ...(l.defaultFilterChain ? [l.defaultFilterChain] : []),
    ])
      for (const f of c.filters ?? []) visit(f);
    if (l.apiListener?.apiListener) {
      const hcm = l.apiListener.apiListener as { rds?: { routeConfigName?: string } };
      if (hcm.rds?.routeConfigName !== undefined) out.add(hcm.rds.routeConfigName);
    }
  }
  return [...out].sort();
}

function routesFor(
  ctx: ProxyContext,
  names: readonly string[],
  opts: TranslateOptions,
): RouteConfiguration[] {
  if (isProxylessGrpc(ctx.proxy)) return buildGrpcRoutes(ctx, names);
  if (ctx.proxy.type === 'router') {
    const merged = mergeGateways(ctx);
    return names
      .map((n) => buildGatewayRouteConfig(ctx, merged, n))
      .filter((r): r is RouteConfiguration => r !== undefined);
  }
  void opts;
  return names.map((n) => buildSidecarOutboundRouteConfig(ctx, n));
}

/**
 * The route configurations (RDS) of a proxy. Without `names`, those its listeners reference.
 */
export function generateRoutes(
  snapshot: Snapshot,
  proxy: Proxy,
  names?: readonly string[],
  opts: TranslateOptions = {},
): RouteConfiguration[] {
  const ctx = contextOf(snapshot, proxy, opts);
  // Inbound listeners carry their routes inline, so only the outbound part names RDS configs.
  const wanted = names ?? routeNamesOf(listenersFor(ctx, undefined, opts, 'outbound'));
  return byName(routesFor(ctx, wanted, opts));
}

/** Every resource of a proxy: listeners, the routes they reference, clusters and endpoints. */
export function generate(
  snapshot: Snapshot,
  proxy: Proxy,
  opts: TranslateOptions = {},
): GeneratedResources {
  const ctx = contextOf(snapshot, proxy, opts);
  const listeners = listenersFor(ctx, undefined, opts, 'all');
  const routes = byName(routesFor(ctx, routeNamesOf(listeners), opts));
  const clusters = generateClusters(snapshot, proxy, undefined, opts.clusters);
  const endpoints = generateEndpoints(snapshot, proxy, undefined, opts.clusters);
  return { listeners, routes, clusters, endpoints };
}

/**
 * The Gateway servers a gateway proxy does not serve, one problem each on the Gateway declaring
 * it (a TLS server whose host an earlier server of the port serves). Istio logs these and counts
 * them as rejected configs; they read like the snapshot's registry problems. Empty for sidecars.
 */
export function gatewayProblems(
  snapshot: Snapshot,
  proxy: Proxy,
  opts: TranslateOptions = {},
): RegistryProblem[] {
  const ctx = contextOf(snapshot, proxy, opts);
  if (ctx.proxy.type !== 'router' || isProxylessGrpc(ctx.proxy)) return [];
  return [...mergeGateways(ctx).problems];
}

export { generateClusters, generateEndpoints };
export type { ClusterGenerationOptions, ClusterJson };
export * from './proxy.js';
export * from './listener-names.js';
export type { MeshTrafficDefaults } from './sidecar-scope-options.js';
export { DEFAULT_MESH_TRAFFIC } from './sidecar-scope-options.js';
export { buildSidecarScope, type SidecarScope, type EgressListenerScope } from './sidecar-scope.js';
export {
  buildProxyContext,
  findProxyWorkload,
  type ProxyContext,
} from './sidecar-scope-context.js';
export type { InboundOptions, InboundChainMatch, InboundPort } from './listener-inbound.js';
export { simulate, type SimulationRequest, type SimulationResult } from './simulate.js';
export * from './secret.js';
