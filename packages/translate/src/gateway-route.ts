// Gateway route configurations (Istio gateway.go buildGatewayHTTPRouteConfig). For each server of
// the route name, the VirtualServices bound to its Gateway (visible from the proxy's namespace)
// whose hosts intersect the server's hosts give one virtual host per intersecting host (`host`,
// named `host:PORT`); a server host `ns/host` admits only VirtualServices of `ns`. Routes of
// several VirtualServices for one host are concatenated with catch-all routes last; virtual hosts
// with the same routes are collapsed into one. `httpsRedirect` requires TLS on the server's
// hosts. Without any virtual host, a `blackhole:PORT` host answers 404 (no route).
import type { RouteConfiguration, VirtualHost } from '@trellis/envoy';
import { hostSubsetOf, type Service } from '@trellis/registry';
import { domainName } from './listener-names.js';
import { isProxylessGrpc } from './proxy.js';
import { MAX_DIRECT_RESPONSE_BODY_BYTES } from './route-config.js';
import {
  buildHttpRoutesForVirtualService,
  sortVirtualHostRoutes,
  type GeneratedRoute,
} from './route.js';
import type { MergedGateway } from './gateway-servers.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import {
  scopedVirtualServices,
  virtualServiceDestinationHosts,
  type ScopedVirtualService,
} from './sidecar-scope.js';

/** Istio host.NamesForNamespace: the server hosts that apply to configs of `namespace`. */
export function serverHostsForNamespace(hosts: readonly string[], namespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) out.push(h);
    else if (h.slice(0, slash) === namespace || h.slice(0, slash) === '*')
      out.push(h.slice(slash + 1));
  }
  return out;
}

/** Istio Names.Intersection: the narrower of each overlapping pair. */
export function intersectHosts(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  for (const x of a)
    for (const y of b) {
      let pick: string | undefined;
      if (hostSubsetOf(x, y)) pick = x;
      else if (hostSubsetOf(y, x)) pick = y;
      if (pick !== undefined && !out.includes(pick)) out.push(pick);
    }
  return out;
}

/** Istio buildNameToServiceMapForHTTPRoutes: services the routes name, as the gateway sees them. */
function servicesForRoutes(ctx: ProxyContext, vs: ScopedVirtualService): Map<string, Service> {
  const out = new Map<string, Service>();
  for (const h of virtualServiceDestinationHosts(vs.spec)) {
    if (out.has(h)) continue;
    let s = ctx.snapshot.service(h, vs.namespace);
    if (s && !ctx.snapshot.isVisible(s, ctx.proxy.namespace)) s = undefined;
    s ??= ctx.snapshot.serviceForHostname(h, ctx.proxy.namespace);
    if (s) out.set(h, s);
  }
  return out;
}

interface VhostDraft {
  host: string;
  port: number;
  routes: GeneratedRoute[];
  /** Identity of the route lists, for collapsing (Istio compares route pointers). */
  sources: string[];
  requireTls: boolean;
}

/** The route configuration of a gateway route name; undefined when no server uses the name. */
export function buildGatewayRouteConfig(
  ctx: ProxyContext,
  merged: MergedGateway,
  routeName: string,
): RouteConfiguration | undefined {
  const servers = merged.serversByRouteName.get(routeName);
  if (!servers || servers.length === 0)
    return { name: routeName, virtualHosts: [], validateClusters: false };
  const vsCache = new Map<string, ScopedVirtualService[]>();
  const routeCache = new Map<string, GeneratedRoute[]>();
  const drafts = new Map<string, VhostDraft>();
  for (const s of servers) {
    const port = s.server.port.number;
    let vss = vsCache.get(s.gateway);
    if (!vss) {
      vss = scopedVirtualServices(ctx.snapshot, ctx.proxy.namespace, s.gateway);
      vsCache.set(s.gateway, vss);
    }
    for (const vs of vss) {
      const hosts = intersectHosts(
        serverHostsForNamespace(s.hosts, vs.namespace),
        vs.spec.hosts ?? [],
      );
      if (hosts.length === 0) continue;
      const key = `${s.gateway}\u0000${vs.namespace}/${vs.name}`;
      let routes = routeCache.get(key);
      if (!routes) {
        const services = servicesForRoutes(ctx, vs);
        const rc = {
          ...ctx.routeContext(port, new Set([s.gateway]), s.server.tls !== undefined),
          lookupService: (h: string) => services.get(h),
        };
        routes = buildHttpRoutesForVirtualService(vs, rc);
        routeCache.set(key, routes);
      }
      if (routes.length === 0) continue;
      for (const raw of hosts) {
        const host = raw.toLowerCase();
        const d = drafts.get(host);
        if (d) {
          d.routes.push(...routes);
          d.sources.push(key);
          if (s.server.tls?.httpsRedirect) d.requireTls = true;
        } else
          drafts.set(host, {
            host,
            port,
            routes: [...routes],
            sources: [key],
            requireTls: s.server.tls?.httpsRedirect === true,
          });
      }
    }
    if (s.server.tls?.httpsRedirect) {
      for (const raw of s.hosts) {
        const slash = raw.indexOf('/');
        const host = (slash >= 0 ? raw.slice(slash + 1) : raw).toLowerCase();
        const d = drafts.get(host);
        if (d) d.requireTls = true;
        else drafts.set(host, { host, port, routes: [], sources: [], requireTls: true });
      }
    }
  }
  let vhosts: VirtualHost[];
  if (drafts.size === 0) {
    const port = servers[0]?.server.port.number ?? 0;
    vhosts = [{ name: domainName('blackhole', port), domains: ['*'], routes: [] }];
  } else {
    vhosts = collapse([...drafts.values()]).map((d) => ({
      name: domainName(d.host, d.port),
      domains: d.domains,
      routes: sortVirtualHostRoutes(d.routes),
      includeRequestAttemptCount: true,
      ...(d.requireTls ? { requireTls: 'ALL' as const } : {}),
    }));
  }
  vhosts.sort((a, b) =>
    (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
  );
  return {
    name: routeName,
    virtualHosts: vhosts,
    validateClusters: false,
    ...(isProxylessGrpc(ctx.proxy) ? {} : { ignorePortInHostMatching: true }),
    maxDirectResponseBodySizeBytes: MAX_DIRECT_RESPONSE_BODY_BYTES,
  };
}

/** Istio collapseDuplicateRoutes: hosts with identical routes share one virtual host. */
function collapse(drafts: VhostDraft[]): (VhostDraft & { domains: string[] })[] {
  const sorted = [...drafts].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const out: (VhostDraft & { domains: string[] })[] = [];
  const byKey = new Map<string, VhostDraft & { domains: string[] }>();
  for (const d of sorted) {
    const key = `${d.requireTls}\u0000${d.sources.join('\u0001')}`;
    const existing = d.sources.length > 0 ? byKey.get(key) : undefined;
    if (existing) existing.domains.push(d.host);
    else {
      const v = { ...d, domains: [d.host] };
      if (d.sources.length > 0) byKey.set(key, v);
      out.push(v);
    }
  }
  return out;
}
