// Trellis's explicit HTTP proxy (`http_proxy` route configuration): besides the HTTP virtual hosts
// of every port, a virtual host per TCP service port, so that `CONNECT reviews:9092` through the
// sidecar's HTTP proxy port reaches the service exactly as a transparently captured connection
// would: the route carries a `connect_matcher`, terminates the CONNECT (`connect_config`) and
// sends the tunnelled bytes to the cluster (or weighted clusters) the port's outbound TCP proxy
// would pick, honouring VirtualService `tcp` routes. Istio has no such routes (its explicit
// proxy port is HTTP only); Envoy's CONNECT termination semantics are kept.
import type { Route, VirtualHost } from '@trellis/envoy';
import { isTcpProtocol, isTlsProtocol, type Service } from '@trellis/registry';
import { domainName } from './listener-names.js';
import { explicitTcpProxyFilter } from './listener-outbound.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import type { ScopedVirtualService } from './sidecar-scope.js';
import { tcpProxyOf } from './tcp-proxy.js';
import { serviceDomains } from './virtual-host.js';

/** The route of one TCP service port: CONNECT only, terminated, to the TCP proxy's clusters. */
function connectRoute(
  ctx: ProxyContext,
  s: Service,
  port: Service['ports'][number],
  vss: readonly ScopedVirtualService[],
): Route | undefined {
  const tcp = tcpProxyOf(explicitTcpProxyFilter(ctx, s, port, vss));
  if (!tcp) return undefined;
  const upgradeConfigs = [{ upgradeType: 'CONNECT', connectConfig: {} }];
  const base = { name: `${s.hostname}:${port.port}/connect`, match: { connectMatcher: {} } };
  if (tcp.cluster !== undefined)
    return { ...base, route: { cluster: tcp.cluster, timeout: '0s', upgradeConfigs } };
  const clusters = tcp.weightedClusters?.clusters ?? [];
  if (clusters.length === 0) return undefined;
  return {
    ...base,
    route: {
      weightedClusters: {
        clusters: clusters.map((c) => ({ name: c.name ?? '', weight: c.weight ?? 0 })),
      },
      timeout: '0s',
      upgradeConfigs,
    },
  };
}

/**
 * The CONNECT virtual hosts of the TCP ports of `services` (plain TCP only: TLS ports are reached
 * by SNI, not by CONNECT authority). Domains are the `host:port` forms, deduplicated against
 * `used` (the domains the HTTP virtual hosts already took).
 */
export function connectVirtualHosts(
  ctx: ProxyContext,
  services: readonly Service[],
  vss: readonly ScopedVirtualService[],
  used: Set<string>,
): VirtualHost[] {
  const out: VirtualHost[] = [];
  for (const s of services) {
    if (s.resolution === 'Alias') continue;
    for (const p of s.ports) {
      if (!isTcpProtocol(p.protocol) || isTlsProtocol(p.protocol)) continue;
      const domains = serviceDomains(s, p.port, ctx.proxy.dnsDomain).domains.filter(
        (d) => d.includes(':') && !used.has(d),
      );
      if (domains.length === 0) continue;
      const route = connectRoute(ctx, s, p, vss);
      if (!route) continue;
      for (const d of domains) used.add(d);
      out.push({ name: `${domainName(s.hostname, p.port)}/connect`, domains, routes: [route] });
    }
  }
  return out;
}
