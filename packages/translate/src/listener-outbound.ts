// Sidecar outbound listeners (Istio listener.go buildSidecarOutboundListeners and
// buildSidecarOutboundListener). Per egress listener of the scope, per service port:
// - HTTP ports share `0.0.0.0_PORT`: an HTTP connection manager with RDS route config `PORT`,
//   matched on plaintext HTTP (the HTTP inspector), with a passthrough default chain;
// - TCP/TLS ports get `VIP_PORT` with TLS chains (by SNI, from VirtualService `tls` routes) or TCP
//   chains (VirtualService `tcp` routes, else the service's cluster); a CIDR address listens on
//   0.0.0.0 and matches the range; headless services get one listener per endpoint address;
// - unknown protocols (sniffed) get `VIP_PORT` with a TCP chain and an HTTP chain whose RDS is
//   `HOST:PORT`.
// Conflicts on one address and port are resolved as Istio does: HTTP and TCP mixed turns into
// sniffing, TCP chains merge unless they match the same traffic, Mongo and MySQL never share.
// Explicit egress ports of a Sidecar are filled first and "locked" against the catch-all one.
import type {
  L4MatchAttributes,
  TLSMatchAttributes,
  RouteDestination,
  SidecarPort,
} from '@trellis/api';
import type { Filter, Listener } from '@trellis/envoy';
import {
  isHttpProtocol,
  isTcpProtocol,
  isTlsProtocol,
  parseProtocol,
  type Protocol,
  type Service,
  type ServicePort,
  UNIX_ADDRESS_PREFIX,
} from '@trellis/registry';
import {
  buildFilterChain,
  chainsConflict,
  httpInspector,
  inspectorsFor,
  isMatchAll,
  tlsInspector,
  type FilterChainOpts,
} from './filter-chain.js';
import { httpConnectionManagerFilter } from './http-connection-manager.js';
import { listenerCatchAllTcpFilters } from './listener-virtual-outbound.js';
import {
  PASSTHROUGH_FILTER_CHAIN,
  PLAINTEXT_HTTP_ALPNS,
  RAW_BUFFER,
  listenerAddress,
  listenerName,
  outboundClusterName,
} from './listener-names.js';
import { localhostAddress, primaryAddress, wildcardAddress } from './proxy.js';
import { configMetadata, destinationCluster } from './route.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import type { EgressListenerScope, ScopedVirtualService } from './sidecar-scope.js';
import { singleDestinationTcpProxy, weightedTcpProxy } from './tcp-proxy.js';
import { hostMatches } from '@trellis/registry';

type ListenerProtocol = 'HTTP' | 'TCP' | 'AUTO' | 'OTHER';

/** Istio ModelProtocolToListenerProtocol. */
export function listenerProtocolOf(p: Protocol): ListenerProtocol {
  if (isHttpProtocol(p)) return 'HTTP';
  if (isTcpProtocol(p)) return 'TCP';
  if (p === 'UnsupportedProtocol') return 'AUTO';
  return 'OTHER';
}

interface Entry {
  readonly port: ServicePort;
  readonly bind: string;
  readonly bindToPort: boolean;
  chains: FilterChainOpts[];
  protocol: Protocol;
  locked: boolean;
}

interface ListenerOpts {
  readonly bind: string;
  readonly bindToPort: boolean;
  readonly port: ServicePort;
  readonly service: Service;
  readonly cidr?: string;
}

const MESH: ReadonlySet<string> = new Set(['mesh']);

function matchesStatic(
  m: TLSMatchAttributes | L4MatchAttributes,
  ctx: ProxyContext,
  port: number,
): boolean {
  const gateways = m.gateways ?? [];
  if (gateways.length > 0 && !gateways.some((g) => MESH.has(g))) return false;
  for (const [k, v] of Object.entries(m.sourceLabels ?? {}))
    if (ctx.proxy.labels[k] !== v) return false;
  if ((m.port ?? 0) !== 0 && m.port !== port) return false;
  return !m.sourceNamespace || m.sourceNamespace === ctx.proxy.namespace;
}

/** Network filters for a list of route destinations (Istio buildOutboundNetworkFilters). */
export function outboundNetworkFilters(
  ctx: ProxyContext,
  routes: readonly RouteDestination[],
  port: number,
  vs: { name: string; namespace: string },
): Filter[] {
  const first = routes[0];
  if (!first) return [];
  const service = ctx.lookupService(first.destination.host);
  const rule = service ? ctx.scope.destinationRule(service.hostname)?.spec : undefined;
  if (routes.length === 1) {
    const cluster = destinationCluster(first.destination, service, port);
    return [singleDestinationTcpProxy(cluster, cluster, first.destination.subset ?? '', rule)];
  }
  return [
    weightedTcpProxy(
      routes,
      (r) => destinationCluster(r.destination, ctx.lookupService(r.destination.host), port),
      `${vs.name}.${vs.namespace}`,
      rule,
    ),
  ];
}

/** VirtualServices by the hosts they name (exact) and those with wildcard hosts. */
interface VsIndex {
  readonly exact: ReadonlyMap<string, readonly ScopedVirtualService[]>;
  readonly wildcard: readonly ScopedVirtualService[];
  readonly all: readonly ScopedVirtualService[];
  readonly position: ReadonlyMap<ScopedVirtualService, number>;
}

function indexVirtualServices(vss: readonly ScopedVirtualService[]): VsIndex {
  const exact = new Map<string, ScopedVirtualService[]>();
  const wildcard: ScopedVirtualService[] = [];
  for (const vs of vss) {
    let hasWildcard = false;
    for (const h of new Set(vs.spec.hosts ?? [])) {
      if (h.startsWith('*')) hasWildcard = true;
      else {
        const l = exact.get(h);
        if (l) l.push(vs);
        else exact.set(h, [vs]);
      }
    }
    if (hasWildcard) wildcard.push(vs);
  }
  return { exact, wildcard, all: vss, position: new Map(vss.map((vs, i) => [vs, i])) };
}

/** The VirtualServices whose hosts match a service host, in scope order (Istio getConfigsForHost). */
function vsForHost(index: VsIndex, hostname: string): ScopedVirtualService[] {
  const hit = new Set<ScopedVirtualService>(index.exact.get(hostname) ?? []);
  for (const vs of index.wildcard)
    if ((vs.spec.hosts ?? []).some((h) => hostMatches(h, hostname))) hit.add(vs);
  if (hit.size === 0) return [];
  if (hostname.startsWith('*'))
    for (const vs of index.all)
      if ((vs.spec.hosts ?? []).some((h) => hostMatches(h, hostname))) hit.add(vs);
  return [...hit].sort((a, b) => (index.position.get(a) ?? 0) - (index.position.get(b) ?? 0));
}

/** TLS chains of a TLS/HTTPS port (Istio buildSidecarOutboundTLSFilterChainOpts). */
function tlsChains(
  ctx: ProxyContext,
  o: ListenerOpts,
  vss: readonly ScopedVirtualService[],
): FilterChainOpts[] {
  if (!isTlsProtocol(o.port.protocol)) return [];
  const out: FilterChainOpts[] = [];
  const handled = new Set<string>();
  let hasTlsMatch = false;
  const baseCidrs = o.cidr ? [o.cidr] : [];
  for (const vs of vss) {
    for (const tls of vs.spec.tls ?? []) {
      for (const m of tls.match) {
        if (!matchesStatic(m, ctx, o.port.port)) continue;
        const cidrs =
          (m.destinationSubnets?.length ?? 0) > 0 ? [...(m.destinationSubnets ?? [])] : baseCidrs;
        const key = `${m.sniHosts.join(',')}|${(m.destinationSubnets ?? []).join(',')}`;
        if (!handled.has(key)) {
          out.push({
            metadata: configMetadata('virtual-service', vs.namespace, vs.name),
            sniHosts: m.sniHosts,
            destinationCidrs: cidrs,
            networkFilters: outboundNetworkFilters(ctx, tls.route, o.port.port, vs),
          });
          hasTlsMatch = true;
        }
        handled.add(key);
      }
    }
  }
  if (!hasTlsMatch) {
    const port =
      o.service.ports.length === 1 ? (o.service.ports[0]?.port ?? o.port.port) : o.port.port;
    const cluster = outboundClusterName(o.service.hostname, port);
    const address = o.service.defaultAddress.includes('/') ? '' : o.service.defaultAddress;
    const wildcard = wildcardAddress(ctx.proxy);
    let sniHosts: string[] | undefined;
    if (baseCidrs.length > 0 || address === '' || (address === wildcard && o.bind === wildcard)) {
      sniHosts = [o.service.hostname];
    }
    out.push({
      ...(sniHosts ? { sniHosts } : {}),
      destinationCidrs: baseCidrs,
      networkFilters: [
        singleDestinationTcpProxy(
          cluster,
          cluster,
          '',
          ctx.scope.destinationRule(o.service.hostname)?.spec,
        ),
      ],
    });
  }
  return out;
}

/** TCP chains of a TCP port (Istio buildSidecarOutboundTCPFilterChainOpts). */
function tcpChains(
  ctx: ProxyContext,
  o: ListenerOpts,
  vss: readonly ScopedVirtualService[],
): FilterChainOpts[] {
  if (isTlsProtocol(o.port.protocol)) return [];
  const out: FilterChainOpts[] = [];
  const baseCidrs = o.cidr ? [o.cidr] : [];
  let defaultAdded = false;
  outer: for (const vs of vss) {
    for (const tcp of vs.spec.tcp ?? []) {
      const meta = configMetadata('virtual-service', vs.namespace, vs.name);
      if ((tcp.match?.length ?? 0) === 0) {
        out.push({
          metadata: meta,
          destinationCidrs: baseCidrs,
          networkFilters: outboundNetworkFilters(ctx, tcp.route, o.port.port, vs),
        });
        defaultAdded = true;
        break outer;
      }
      const subnets: string[] = [];
      for (const m of tcp.match ?? []) {
        if (!matchesStatic(m, ctx, o.port.port)) continue;
        if ((m.destinationSubnets?.length ?? 0) === 0) {
          out.push({
            metadata: meta,
            destinationCidrs: baseCidrs,
            networkFilters: outboundNetworkFilters(ctx, tcp.route, o.port.port, vs),
          });
          defaultAdded = true;
          break outer;
        }
        subnets.push(...(m.destinationSubnets ?? []));
      }
      if (subnets.length > 0) {
        out.push({
          destinationCidrs: subnets,
          networkFilters: outboundNetworkFilters(ctx, tcp.route, o.port.port, vs),
        });
        if ([...subnets].sort().join(',') === [...baseCidrs].sort().join(',')) defaultAdded = true;
      }
    }
  }
  if (!defaultAdded) {
    const port =
      o.service.ports.length === 1 ? (o.service.ports[0]?.port ?? o.port.port) : o.port.port;
    const cluster = outboundClusterName(o.service.hostname, port);
    out.push({
      destinationCidrs: baseCidrs,
      networkFilters: [
        singleDestinationTcpProxy(
          cluster,
          cluster,
          '',
          ctx.scope.destinationRule(o.service.hostname)?.spec,
        ),
      ],
    });
  }
  return out;
}

/**
 * Trellis's explicit HTTP proxy: the TCP proxy a `CONNECT host:port` to a TCP service port takes,
 * the one the port's outbound listener would use for a connection without a destination subnet.
 */
export function explicitTcpProxyFilter(
  ctx: ProxyContext,
  service: Service,
  port: ServicePort,
  vss: readonly ScopedVirtualService[],
): Filter | undefined {
  const matching = vss.filter((vs) =>
    (vs.spec.hosts ?? []).some((h) => hostMatches(h, service.hostname)),
  );
  const chains = tcpChains(ctx, { bind: '', bindToPort: false, port, service }, matching);
  const chain = chains.find((c) => (c.destinationCidrs ?? []).length === 0);
  return chain?.networkFilters?.at(-1);
}

/** The HTTP chain of a port (Istio buildSidecarOutboundHTTPListenerOpts). */
function httpChain(
  ctx: ProxyContext,
  o: ListenerOpts,
  protocol: ListenerProtocol,
): FilterChainOpts {
  const wildcard = wildcardAddress(ctx.proxy);
  const rds =
    protocol === 'AUTO' && o.bind !== wildcard
      ? `${o.service.hostname}:${o.port.port}`
      : String(o.port.port);
  return {
    networkFilters: [],
    http: httpConnectionManagerFilter({
      statPrefix: `outbound_${listenerName(o.bind, o.port.port)}`,
      rds,
      useRemoteAddress: false,
      grpcWeb: o.port.protocol === 'GRPC-Web',
    }),
  };
}

function sniffed(c: FilterChainOpts): FilterChainOpts {
  return { ...c, applicationProtocols: PLAINTEXT_HTTP_ALPNS, transportProtocol: RAW_BUFFER };
}

function mergeTcpChains(entry: Entry, incoming: readonly FilterChainOpts[]): void {
  const merged = [...entry.chains];
  for (const c of incoming) if (!merged.some((e) => chainsConflict(e, c))) merged.push(c);
  entry.chains = merged;
}

/** Istio buildSidecarOutboundListener: adds one service port to the listener map. */
function addServicePort(
  ctx: ProxyContext,
  opts: ListenerOpts,
  entries: Map<string, Entry>,
  vss: VsIndex,
): void {
  if (opts.service.resolution === 'Alias') return;
  let o = opts;
  const wildcard = wildcardAddress(ctx.proxy);
  let portProtocol = o.port.protocol;
  const lp = listenerProtocolOf(portProtocol);
  if (lp === 'TCP' || lp === 'AUTO') {
    if (o.bind === '') {
      const address = o.service.defaultAddress;
      if (address.includes('/')) o = { ...o, bind: wildcard, cidr: address };
      else o = { ...o, bind: address };
    }
  } else if (lp === 'HTTP' && o.bind === '') o = { ...o, bind: wildcard };
  const key = `${o.bind}\u0000${o.port.port}`;
  const current = entries.get(key);
  if (current?.locked) return;
  const svcVss = vsForHost(vss, o.service.hostname);
  let chains: FilterChainOpts[];
  let conflict:
    | 'none'
    | 'httpOverTcp'
    | 'tcpOverHttp'
    | 'tcpOverTcp'
    | 'tcpOverAuto'
    | 'autoOverHttp'
    | 'autoOverTcp' = 'none';
  if (portProtocol === 'HTTP_PROXY') {
    chains = [httpChain(ctx, o, lp)];
  } else if (lp === 'HTTP') {
    if (current) {
      if (isTcpProtocol(current.protocol)) conflict = 'httpOverTcp';
      else return;
    }
    chains = [httpChain(ctx, o, lp)];
    if (o.bind === wildcard) {
      chains = chains.map(sniffed);
      portProtocol = 'UnsupportedProtocol';
    }
  } else if (lp === 'TCP') {
    chains = [...tlsChains(ctx, o, svcVss), ...tcpChains(ctx, o, svcVss)];
    if (current) {
      if (isHttpProtocol(current.protocol)) conflict = 'tcpOverHttp';
      else if (isTcpProtocol(current.protocol)) conflict = 'tcpOverTcp';
      else conflict = 'tcpOverAuto';
    }
  } else if (lp === 'AUTO') {
    if (current) {
      if (isHttpProtocol(current.protocol)) conflict = 'autoOverHttp';
      else if (isTcpProtocol(current.protocol)) conflict = 'autoOverTcp';
      else return;
    }
    chains = [
      ...tlsChains(ctx, o, svcVss),
      ...tcpChains(ctx, o, svcVss),
      sniffed(httpChain(ctx, o, lp)),
    ];
  } else return;
  if (current && conflict !== 'none') {
    const a = o.port.protocol;
    const b = current.protocol;
    if ((a === 'Mongo' || a === 'MySQL' || b === 'Mongo' || b === 'MySQL') && a !== b) return;
  }
  switch (conflict) {
    case 'none':
    case 'autoOverHttp':
      entries.set(key, {
        port: o.port,
        bind: o.bind,
        bindToPort: o.bindToPort,
        chains,
        protocol: portProtocol,
        locked: false,
      });
      break;
    case 'httpOverTcp':
    case 'tcpOverHttp':
    case 'autoOverTcp':
      if (current) {
        mergeTcpChains(current, chains);
        current.protocol = 'UnsupportedProtocol';
      }
      break;
    case 'tcpOverTcp':
    case 'tcpOverAuto':
      if (current) mergeTcpChains(current, chains);
      break;
  }
}

/** Istio buildListenerFromEntry. */
function listenerFromEntry(ctx: ProxyContext, e: Entry): Listener {
  const l: Listener = {
    name: listenerName(e.bind, e.port.port),
    address: listenerAddress(e.bind, e.port.port),
    trafficDirection: 'OUTBOUND',
    continueOnListenerFiltersTimeout: true,
  };
  if (!e.bindToPort) l.bindToPort = false;
  const { tls, http } = inspectorsFor(e.chains);
  const filters = [];
  if (tls || http) filters.push(tlsInspector());
  if (http) filters.push(httpInspector());
  if (filters.length > 0) l.listenerFilters = filters;
  l.listenerFiltersTimeout = '0s';
  const chains = [];
  let defaultChain;
  for (const c of e.chains) {
    if (isMatchAll(c)) defaultChain = buildFilterChain(c, false);
    else chains.push(buildFilterChain(c, true));
  }
  if (defaultChain && chains.length === 0) {
    l.filterChains = [defaultChain];
  } else {
    l.filterChains = chains;
    l.defaultFilterChain = defaultChain ?? {
      filterChainMatch: {},
      name: PASSTHROUGH_FILTER_CHAIN,
      filters: listenerCatchAllTcpFilters(ctx),
    };
  }
  return l;
}

function bindingFor(
  ctx: ProxyContext,
  egress: EgressListenerScope,
): { bind: string; bindToPort: boolean } {
  const l = egress.listener;
  let bindToPort = ctx.proxy.interceptionMode === 'NONE';
  if (!bindToPort && l) {
    if (l.captureMode === 'NONE') bindToPort = true;
    else if ((l.bind ?? '').startsWith(UNIX_ADDRESS_PREFIX)) bindToPort = true;
  }
  let bind = '';
  if (l?.bind) bind = l.bind;
  else if (bindToPort) bind = localhostAddress(ctx.proxy);
  return { bind, bindToPort };
}

function sidecarPortOf(p: SidecarPort): ServicePort {
  return { name: p.name ?? '', port: p.number ?? 0, protocol: parseProtocol(p.protocol ?? '') };
}

/** The outbound listeners of a sidecar, sorted by name. */
export function buildSidecarOutboundListeners(ctx: ProxyContext): Listener[] {
  const entries = new Map<string, Entry>();
  for (const egress of ctx.scope.egressListeners) {
    const { bind, bindToPort } = bindingFor(ctx, egress);
    const vss = indexVirtualServices(egress.virtualServices);
    if (egress.port) {
      if ((egress.port.number ?? 0) === 0) continue; // Unix domain socket listeners: not supported yet.
      const port = sidecarPortOf(egress.port);
      for (const service of egress.services)
        addServicePort(ctx, { bind, bindToPort, port, service }, entries, vss);
      continue;
    }
    for (const e of entries.values()) e.locked = true;
    for (const service of egress.services) {
      for (const port of service.ports) {
        const opts: ListenerOpts = { bind, bindToPort, port, service };
        const headlessTcp =
          bind === '' &&
          service.resolution === 'Passthrough' &&
          service.defaultAddress === '0.0.0.0' &&
          (isTcpProtocol(port.protocol) || port.protocol === 'UnsupportedProtocol');
        if (!headlessTcp) {
          addServicePort(ctx, opts, entries, vss);
          continue;
        }
        const endpoints = ctx.snapshot.endpoints(service, port.port);
        if (
          service.origin !== 'Kubernetes' &&
          endpoints.length === 0 &&
          service.selector === undefined
        ) {
          addServicePort(ctx, opts, entries, vss);
          continue;
        }
        const seen = new Set<string>();
        for (const ep of endpoints) {
          if (
            ep.unixSocket ||
            !/^[0-9a-fA-F.:]+$/.test(ep.address) ||
            ep.address === primaryAddress(ctx.proxy)
          )
            continue;
          if (seen.has(ep.address)) continue;
          seen.add(ep.address);
          addServicePort(ctx, { ...opts, bind: ep.address }, entries, vss);
        }
      }
    }
  }
  return [...entries.values()]
    .map((e) => listenerFromEntry(ctx, e))
    .sort((a, b) =>
      (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
    );
}
