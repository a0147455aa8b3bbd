// Sidecar outbound route configurations (Istio httproute.go buildSidecarOutboundHTTPRouteConfig,
// BuildSidecarOutboundVirtualHosts, route.go BuildSidecarVirtualHostWrapper). A route
// configuration is named by port (`9080`): one virtual host per service with an HTTP (or
// sniffed) port there, with the VirtualService routes that apply or the default route, plus
// virtual hosts for VirtualService hosts outside the registry, sorted by name, and a last
// catch-all host (`allow_any` → PassthroughCluster, or `block_all` → 502) by the outbound
// traffic policy. `HOST:PORT` names (sniffed ports bound to a service address) carry only that
// service's host with domain `*`; `http_proxy` merges every port (the explicit HTTP proxy) and
// adds CONNECT virtual hosts for TCP ports (route-connect.ts).
import type { RouteConfiguration, VirtualHost } from '@trellis/envoy';
import {
  hostMatches,
  isAutoProtocol,
  isHttpProtocol,
  isWildcardHost,
  type Service,
} from '@trellis/registry';
import {
  ALLOW_ANY_VHOST,
  BLOCK_ALL_VHOST,
  HTTP_PROXY_ROUTE_CONFIG,
  PASSTHROUGH_CLUSTER,
  domainName,
  outboundClusterName,
} from './listener-names.js';
import { isProxylessGrpc } from './proxy.js';
import { consistentHashForServicePort, hashPolicyOf } from './route-hash.js';
import {
  buildHttpRoutesForVirtualService,
  defaultOutboundRoute,
  destinationCluster,
  type GeneratedRoute,
} from './route.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import { egressListenerForPort, type ScopedVirtualService } from './sidecar-scope.js';
import { DomainSet, ipv6Compliant, serviceDomains } from './virtual-host.js';
import { connectVirtualHosts } from './route-connect.js';
import { parseProtocol } from '@trellis/registry';

/** Largest direct response body Istio allows (1 MiB, the validation limit). */
export const MAX_DIRECT_RESPONSE_BODY_BYTES = 1024 * 1024;

const MESH: ReadonlySet<string> = new Set(['mesh']);

/** A virtual host before its domains are settled. */
interface VirtualHostWrapper {
  readonly port: number;
  readonly services: readonly Service[];
  /** VirtualService hosts that are not services in the registry. */
  readonly virtualServiceHosts: readonly string[];
  readonly routes: readonly GeneratedRoute[];
}

/** Whether a port carries HTTP or is sniffed (Istio IsHTTPOrSniffed). */
function isHttpOrSniffed(p: Service['ports'][number]): boolean {
  return isHttpProtocol(p.protocol) || isAutoProtocol(p.protocol);
}

/** The service reduced to one port (what a port's route configuration sees). */
function servicePortView(s: Service, port: number): Service | undefined {
  const p = s.ports.find((x) => x.port === port);
  return p ? Object.freeze({ ...s, ports: Object.freeze([p]) }) : undefined;
}

/** Istio's mostSpecificWildcardVirtualServiceIndex: which wildcard VS owns each service host. */
function wildcardOwners(
  services: ReadonlyMap<string, Service>,
  vss: readonly ScopedVirtualService[],
): Map<string, ScopedVirtualService> {
  const out = new Map<string, ScopedVirtualService>();
  const best = new Map<string, string>();
  for (const vs of vss) {
    for (const h of vs.spec.hosts ?? []) {
      if (!isWildcardHost(h)) continue;
      for (const host of services.keys()) {
        if (!hostMatches(h, host)) continue;
        const cur = best.get(host);
        if (cur === undefined || h.length > cur.length) {
          best.set(host, h);
          out.set(host, vs);
        }
      }
    }
  }
  return out;
}

/** Istio's separateVSHostsAndServices. */
function separateHosts(
  vs: ScopedVirtualService,
  services: ReadonlyMap<string, Service>,
  owners: ReadonlyMap<string, ScopedVirtualService>,
): { hosts: string[]; services: Service[] } {
  const hosts: string[] = [];
  const matched: Service[] = [];
  for (const h of vs.spec.hosts ?? []) {
    if (isWildcardHost(h)) continue;
    const s = services.get(h);
    if (s) matched.push(s);
    else hosts.push(h);
  }
  for (const h of vs.spec.hosts ?? []) {
    if (!isWildcardHost(h)) continue;
    let found = false;
    for (const [svcHost, s] of services) {
      if (!hostMatches(svcHost, h)) continue;
      found = true;
      if (owners.get(svcHost) === vs) matched.push(s);
    }
    if (!found) hosts.push(h);
  }
  return { hosts, services: matched };
}

/** Whether any VS host names one of the services (Istio selectVirtualServices). */
function selectsAnyService(
  vs: ScopedVirtualService,
  services: ReadonlyMap<string, Service>,
): boolean {
  for (const h of vs.spec.hosts ?? []) {
    if (services.has(h)) return true;
    for (const svcHost of services.keys()) if (hostMatches(h, svcHost)) return true;
  }
  return false;
}

/** Builds the virtual host wrappers for a listener port (0: every port). */
function virtualHostWrappers(
  ctx: ProxyContext,
  listenPort: number,
  services: ReadonlyMap<string, Service>,
  vss: readonly ScopedVirtualService[],
): VirtualHostWrapper[] {
  const out: VirtualHostWrapper[] = [];
  const owners = wildcardOwners(services, vss);
  const remaining = new Map(services);
  // As in Istio, destinations resolve against the services of this port only.
  const routesFor = (vs: ScopedVirtualService, port: number): GeneratedRoute[] =>
    buildHttpRoutesForVirtualService(vs, {
      ...ctx.routeContext(port, MESH, false),
      lookupService: (h: string) => services.get(h),
    });
  for (const vs of vss) {
    const routes = routesFor(vs, listenPort);
    if (routes.length === 0 && listenPort !== 0) continue;
    const { hosts, services: matched } = separateHosts(vs, services, owners);
    const byPort = new Map<number, Service[]>();
    for (const s of matched)
      for (const p of s.ports)
        if (isHttpOrSniffed(p)) {
          const l = byPort.get(p.port);
          if (l) l.push(s);
          else byPort.set(p.port, [s]);
        }
    if (byPort.size === 0 && listenPort === 80) byPort.set(80, []);
    for (const [port, list] of [...byPort].sort(([a], [b]) => a - b)) {
      // The explicit HTTP proxy (port 0) serves every port: a destination without a port (of a
      // multi-port service) and a match on `port` resolve against each service port, not 0 —
      // where Istio would route to `outbound|0|...`, a cluster that does not exist.
      const portRoutes = listenPort === 0 ? routesFor(vs, port) : routes;
      if (portRoutes.length === 0) continue;
      out.push({ port, services: list, virtualServiceHosts: hosts, routes: portRoutes });
      for (const s of list) remaining.delete(s.hostname);
    }
  }
  const proxyless = isProxylessGrpc(ctx.proxy);
  for (const s of [...remaining.values()].sort((a, b) =>
    a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0,
  )) {
    if (s.resolution === 'Alias') continue;
    for (const p of s.ports) {
      if (!isHttpOrSniffed(p)) continue;
      const cluster = outboundClusterName(s.hostname, p.port);
      const hash = hashPolicyOf(
        consistentHashForServicePort(ctx.scope.destinationRule(s.hostname)?.spec, p.port),
      );
      out.push({
        port: p.port,
        services: [s],
        virtualServiceHosts: [],
        routes: [
          defaultOutboundRoute(
            cluster,
            `${s.hostname}:${p.port}/*`,
            hash,
            proxyless,
            ctx.defaults.defaultHttpRetryPolicy,
          ),
        ],
      });
    }
  }
  return out;
}

/** The virtual hosts of a port (Istio BuildSidecarOutboundVirtualHosts), before sorting. */
export function sidecarOutboundVirtualHosts(ctx: ProxyContext, listenPort: number): VirtualHost[] {
  const egress = egressListenerForPort(ctx.scope, listenPort);
  if (!egress) return [];
  let port = listenPort;
  if (egress.port && parseProtocol(egress.port.protocol ?? '') === 'HTTP_PROXY') port = 0;
  const services = new Map<string, Service>();
  for (const s of egress.services) {
    if (port === 0) services.set(s.hostname, s);
    else {
      const v = servicePortView(s, port);
      if (v) services.set(s.hostname, v);
    }
  }
  let vss = egress.virtualServices;
  if (port !== 80) vss = vss.filter((vs) => selectsAnyService(vs, services));
  const wrappers = virtualHostWrappers(ctx, port, services, vss);

  const knownFqdns = new Set<string>();
  for (const w of wrappers)
    for (const s of w.services) {
      knownFqdns.add(domainName(s.hostname, w.port));
      knownFqdns.add(s.hostname);
    }
  const domainSet = new DomainSet(knownFqdns);
  const names = new Set<string>();
  const byPort = new Map<number, VirtualHost[]>();
  const build = (
    hostname: string,
    w: VirtualHostWrapper,
    svc: Service | undefined,
  ): VirtualHost | undefined => {
    const name = domainName(hostname, w.port);
    if (names.has(name)) return undefined;
    names.add(name);
    let domains: string[];
    let alt: string[] = [];
    if (!svc) domains = [ipv6Compliant(hostname), name];
    else ({ domains, altHosts: alt } = serviceDomains(svc, w.port, ctx.proxy.dnsDomain));
    const kept = domainSet.dedupe(domains, alt);
    if (kept.length === 0) return undefined;
    return { name, domains: kept, routes: [...w.routes], includeRequestAttemptCount: true };
  };
  for (const w of wrappers) {
    if (w.routes.length === 0) continue;
    const list = byPort.get(w.port) ?? [];
    for (const h of w.virtualServiceHosts) {
      const v = build(h, w, undefined);
      if (v) list.push(v);
    }
    for (const s of w.services) {
      const v = build(s.hostname, w, s);
      if (v) list.push(v);
    }
    byPort.set(w.port, list);
  }
  if (port !== 0) return byPort.get(port) ?? [];
  // The explicit HTTP proxy serves every port: only `host:port` domains, except on port 80.
  const merged: VirtualHost[] = [];
  for (const [p, list] of [...byPort].sort(([a], [b]) => a - b)) {
    for (const v of list) {
      if (p === 80) merged.push(v);
      else {
        const domains = (v.domains ?? []).filter((d) => d.includes(':'));
        if (domains.length > 0) merged.push({ ...v, domains });
      }
    }
  }
  const used = new Set(merged.flatMap((v) => v.domains ?? []));
  merged.push(...connectVirtualHosts(ctx, [...services.values()], egress.virtualServices, used));
  return merged;
}

/** Istio's SortVirtualHosts: by name. */
export function sortVirtualHosts(vhosts: VirtualHost[]): VirtualHost[] {
  return vhosts.sort((a, b) =>
    (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
  );
}

/** The catch-all virtual host of the outbound traffic policy (Istio buildCatchAllVirtualHost). */
export function catchAllVirtualHost(ctx: ProxyContext): VirtualHost {
  const policy = ctx.scope.outboundTrafficPolicy;
  if (policy.mode === 'ALLOW_ANY') {
    const cluster = policy.egressProxy
      ? destinationCluster(policy.egressProxy, undefined, 0)
      : PASSTHROUGH_CLUSTER;
    return {
      name: ALLOW_ANY_VHOST,
      domains: ['*'],
      routes: [
        {
          name: ALLOW_ANY_VHOST,
          match: { prefix: '/' },
          route: { cluster, timeout: '0s', maxStreamDuration: { grpcTimeoutHeaderMax: '0s' } },
        },
      ],
      includeRequestAttemptCount: true,
    };
  }
  return {
    name: BLOCK_ALL_VHOST,
    domains: ['*'],
    routes: [{ name: BLOCK_ALL_VHOST, match: { prefix: '/' }, directResponse: { status: 502 } }],
    includeRequestAttemptCount: true,
  };
}

/** How a sidecar route name reads: a port, `HOST:PORT` (sniffed), or `http_proxy`. */
export function parseSidecarRouteName(
  name: string,
): { port: number; sniffedHost?: string } | undefined {
  if (name === HTTP_PROXY_ROUTE_CONFIG) return { port: 0 };
  if (/^[0-9]+$/.test(name)) return { port: Number(name) };
  const i = name.lastIndexOf(':');
  if (i > 0 && /^[0-9]+$/.test(name.slice(i + 1)))
    return { port: Number(name.slice(i + 1)), sniffedHost: name.slice(0, i) };
  return undefined;
}

/** Istio getVirtualHostsForSniffedServicePort: the one host of `HOST:PORT`, with domain `*`. */
function sniffedVirtualHosts(
  vhosts: VirtualHost[],
  routeName: string,
  host: string,
): VirtualHost[] {
  const out = vhosts.filter((v) => (v.domains ?? []).some((d) => d === routeName || d === host));
  if (out.length === 1 && out[0]) return [{ ...out[0], domains: ['*'] }];
  return out;
}

/**
 * The sidecar outbound route configuration of a name (`9080`, `reviews.default.svc.cluster.local:9080`
 * or `http_proxy`); an empty configuration for a name that does not parse.
 */
export function buildSidecarOutboundRouteConfig(
  ctx: ProxyContext,
  routeName: string,
): RouteConfiguration {
  const parsed = parseSidecarRouteName(routeName);
  if (!parsed) return { name: routeName, virtualHosts: [], validateClusters: false };
  let vhosts = sidecarOutboundVirtualHosts(ctx, parsed.port);
  if (parsed.sniffedHost !== undefined)
    vhosts = sniffedVirtualHosts(vhosts, routeName, parsed.sniffedHost);
  sortVirtualHosts(vhosts);
  if (parsed.sniffedHost === undefined) vhosts.push(catchAllVirtualHost(ctx));
  return {
    name: routeName,
    virtualHosts: vhosts,
    validateClusters: false,
    maxDirectResponseBodySizeBytes: MAX_DIRECT_RESPONSE_BODY_BYTES,
  };
}
