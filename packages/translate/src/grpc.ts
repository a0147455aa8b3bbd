// Proxyless gRPC (node metadata GENERATOR: grpc), as Istio's grpcgen serves it
// (pilot/pkg/networking/grpcgen lds.go, rds.go). A gRPC client dialing `xds:///HOST:PORT` asks
// for the Listener named exactly `HOST:PORT` (a short name, `NAME.NAMESPACE`, or the FQDN): an
// API listener whose HttpConnectionManager has the fault and router filters and fetches the route
// configuration `outbound|PORT||FQDN` over RDS. That route configuration holds the sidecar
// virtual hosts of the port (domains with ports, as gRPC matches on `HOST:PORT`). A gRPC server
// asks for `xds.istio.io/grpc/lds/inbound/ADDRESS:PORT`: a listener whose one filter chain
// answers every request itself (non-forwarding action); mTLS and RBAC there come with the
// security issue.
import { CONFIG_TYPE_URL, toAny } from '@trellis/envoy';
import type { AnyMessage, HttpFilter, Listener, RouteConfiguration } from '@trellis/envoy';
import {
  GRPC_INBOUND_LISTENER_PREFIX,
  WELLKNOWN,
  outboundClusterName,
  parseSubsetKey,
} from './listener-names.js';
import { sidecarOutboundVirtualHosts } from './route-config.js';
import type { ProxyContext } from './sidecar-scope-context.js';

/** The HTTP filters a gRPC client supports, router last. */
function grpcHttpFilters(): HttpFilter[] {
  return [
    { name: WELLKNOWN.fault, typedConfig: toAny(CONFIG_TYPE_URL.HttpFault, {}) },
    { name: WELLKNOWN.router, typedConfig: toAny(CONFIG_TYPE_URL.Router, {}) },
  ];
}

interface NameFilter {
  /** Names the client asked for, by the host they resolve to. */
  readonly requested: Set<string>;
  /** Ports asked for; empty: every port. */
  ports: Set<string> | undefined;
}

function splitHostPort(name: string): { host: string; port?: string } {
  const m = /^(.*):([0-9]+)$/.exec(name);
  if (m && m[1] !== undefined && m[2] !== undefined)
    return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: m[2] };
  return { host: name };
}

/** Istio tryFindFQDN: `reviews` → `reviews.NS.svc.cluster.local`; `reviews.NS[.svc]` likewise. */
function tryFindFqdn(name: string, ctx: ProxyContext): string | undefined {
  const domain = ctx.proxy.dnsDomain;
  if (!name.includes('.')) return `${name}.${domain}`;
  for (const suffix of [ctx.proxy.namespace, `${ctx.proxy.namespace}.svc`]) {
    if (name.endsWith(`.${suffix}`) && domain.startsWith(suffix))
      return `${name.slice(0, -(suffix.length + 1))}.${domain}`;
  }
  return undefined;
}

function buildFilter(names: readonly string[], ctx: ProxyContext): Map<string, NameFilter> {
  const out = new Map<string, NameFilter>();
  for (const name of names) {
    if (name.startsWith(GRPC_INBOUND_LISTENER_PREFIX)) continue;
    const { host, port } = splitHostPort(name);
    const all = [host];
    const fqdn = tryFindFqdn(host, ctx);
    if (fqdn !== undefined) all.push(fqdn);
    for (const n of all) {
      let f = out.get(n);
      const existed = f !== undefined;
      if (!f) {
        f = { requested: new Set(), ports: undefined };
        out.set(n, f);
      }
      f.requested.add(host);
      if (port !== undefined && (!existed || f.ports !== undefined)) {
        f.ports ??= new Set();
        f.ports.add(port);
      } else if (port === undefined) f.ports = undefined;
    }
  }
  return out;
}

function apiListenerHcm(routeConfigName: string): AnyMessage {
  // gRPC ignores the stat prefix; it is set because Envoy requires one (Istio leaves it empty).
  return toAny(CONFIG_TYPE_URL.HttpConnectionManager, {
    statPrefix: routeConfigName,
    httpFilters: grpcHttpFilters(),
    rds: { configSource: { ads: {} }, routeConfigName },
  });
}

/**
 * The listeners a gRPC client or server asks for. `names` are the requested resource names;
 * empty means every outbound listener the proxy may use.
 */
export function buildGrpcListeners(ctx: ProxyContext, names: readonly string[]): Listener[] {
  const filter = buildFilter(names, ctx);
  const out: Listener[] = [];
  const services = [...ctx.scope.services].sort((a, b) =>
    a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0,
  );
  for (const svc of services) {
    let match: NameFilter | undefined = filter.get(svc.hostname);
    if (names.length === 0) match = { requested: new Set([svc.hostname]), ports: undefined };
    if (!match) continue;
    for (const requested of [...match.requested].sort()) {
      for (const p of svc.ports) {
        if (match.ports && !match.ports.has(String(p.port))) continue;
        out.push({
          name: `${requested.includes(':') ? `[${requested}]` : requested}:${p.port}`,
          address: { socketAddress: { address: svc.defaultAddress, portValue: p.port } },
          apiListener: { apiListener: apiListenerHcm(outboundClusterName(svc.hostname, p.port)) },
        });
      }
    }
  }
  for (const name of names) {
    if (!name.startsWith(GRPC_INBOUND_LISTENER_PREFIX)) continue;
    const l = grpcInboundListener(ctx, name);
    if (l) out.push(l);
  }
  return out.sort((a, b) =>
    (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
  );
}

function grpcInboundListener(ctx: ProxyContext, name: string): Listener | undefined {
  const { host, port } = splitHostPort(name.slice(GRPC_INBOUND_LISTENER_PREFIX.length));
  if (port === undefined) return undefined;
  const n = Number(port);
  const w = ctx.workload;
  const served = w
    ? ctx.snapshot.registry
        .endpointsOfWorkload(w.kind, w.namespace, w.name)
        .some((e) => e.targetPort === n || e.port === n)
    : false;
  if (!served) return undefined;
  return {
    name,
    address: { socketAddress: { address: host, portValue: n } },
    filterChains: [
      {
        name: 'inbound-plaintext',
        filters: [
          {
            name: 'inbound-hcmplaintext',
            typedConfig: toAny(CONFIG_TYPE_URL.HttpConnectionManager, {
              statPrefix: 'inbound',
              routeConfig: {
                name: 'inbound',
                virtualHosts: [
                  {
                    name: 'inbound',
                    domains: ['*'],
                    routes: [{ match: { prefix: '/' }, nonForwardingAction: {} }],
                  },
                ],
              },
              httpFilters: [
                { name: WELLKNOWN.router, typedConfig: toAny(CONFIG_TYPE_URL.Router, {}) },
              ],
            }),
          },
        ],
      },
    ],
  };
}

/** The route configurations a gRPC client asks for (`outbound|PORT||HOST`). */
export function buildGrpcRoutes(ctx: ProxyContext, names: readonly string[]): RouteConfiguration[] {
  const out: RouteConfiguration[] = [];
  for (const name of names) {
    const key = parseSubsetKey(name);
    if (!key || key.host === '' || key.port === 0) continue;
    out.push({ name, virtualHosts: sidecarOutboundVirtualHosts(ctx, key.port) });
  }
  return out;
}
