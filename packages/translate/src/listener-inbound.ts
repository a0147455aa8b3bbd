// Sidecar inbound listeners (Istio listener_inbound.go). `virtualInbound` on 15006 receives every
// redirected inbound connection; one filter chain per workload port (matched on the destination
// port) forwards to `inbound|PORT||`: an HTTP connection manager with an inline route
// configuration for HTTP ports, a TCP proxy for TCP ports, both (split by the HTTP inspector) for
// sniffed ports. Ports come from the services that select the workload (the oldest service wins
// a port), or from the Sidecar's ingress listeners when it has them. Connections to undeclared
// ports take the passthrough chains (InboundPassthroughCluster); connections to 15006 itself are
// dropped. Trellis local mode: a port the workload maps to a sidecar inbound port
// (`trellis.io/inbound-ports`) also gets a listener bound to that port.
//
// mTLS seam: chains are built from `InboundChainMatch` options; plaintext options are used
// today. PeerAuthentication (issue "security") supplies TLS options and contexts through
// `InboundOptions.matchOptions` without changing the chains' filters.
import type {
  DownstreamTlsContext,
  Filter,
  Listener,
  ListenerFilter,
  RouteConfiguration,
} from '@trellis/envoy';
import { isHttpProtocol, isTcpProtocol, parseProtocol, type Protocol } from '@trellis/registry';
import {
  buildFilterChain,
  httpInspector,
  originalDst,
  tlsInspector,
  type FilterChainOpts,
} from './filter-chain.js';
import { httpConnectionManagerFilter } from './http-connection-manager.js';
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  PLAINTEXT_HTTP_ALPNS,
  PROXY_INBOUND_LISTEN_PORT,
  RAW_BUFFER,
  VIRTUAL_INBOUND_BLACKHOLE_CHAIN,
  VIRTUAL_INBOUND_CATCHALL_HTTP_CHAIN,
  VIRTUAL_INBOUND_LISTENER,
  inboundClusterName,
  listenerName,
} from './listener-names.js';
import { primaryAddress, wildcardAddress } from './proxy.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import { tcpProxyFilter } from './tcp-proxy.js';

/** One inbound port of the workload. */
export interface InboundPort {
  /** The application's port (`inbound|PORT||`, the filter chain's destination port). */
  readonly targetPort: number;
  /** The service port (telemetry and the tracing operation). */
  readonly servicePort: number;
  readonly protocol: Protocol;
  /** The service host the port serves (or `SIDECAR.NAMESPACE` for Sidecar ingress). */
  readonly hostname: string;
  /** Bind address of a bound listener (Sidecar ingress `bind`). */
  readonly bind?: string;
  /** A real listener bound to this port instead of a chain of virtualInbound. */
  readonly bindToPort: boolean;
  /** Local mode: the sidecar port peers dial for this application port. */
  readonly inboundPort?: number;
}

/** How one family of inbound connections is matched and secured. */
export interface InboundChainMatch {
  readonly protocol: 'HTTP' | 'TCP';
  readonly applicationProtocols?: readonly string[];
  readonly transportProtocol?: string;
  /** TLS to terminate (mTLS or Sidecar ingress TLS). */
  readonly tlsContext?: DownstreamTlsContext;
}

/** Hooks later issues fill in (mTLS, authorization, telemetry). */
export interface InboundOptions {
  /** The chain options of a port; plaintext when absent. */
  readonly matchOptions?: (
    port: InboundPort,
    protocol: 'HTTP' | 'TCP' | 'AUTO',
  ) => readonly InboundChainMatch[];
  /** Network filters before the terminal one (RBAC, metadata exchange). */
  readonly networkFilters?: (port: InboundPort) => readonly Filter[];
}

/** Istio's plaintext (mTLS disabled) options. */
export function plaintextMatchOptions(protocol: 'HTTP' | 'TCP' | 'AUTO'): InboundChainMatch[] {
  if (protocol === 'HTTP') return [{ protocol: 'HTTP', transportProtocol: RAW_BUFFER }];
  if (protocol === 'TCP') return [{ protocol: 'TCP', transportProtocol: RAW_BUFFER }];
  return [
    { protocol: 'HTTP', applicationProtocols: PLAINTEXT_HTTP_ALPNS, transportProtocol: RAW_BUFFER },
    { protocol: 'TCP', transportProtocol: RAW_BUFFER },
  ];
}

function listenerProtocol(p: Protocol): 'HTTP' | 'TCP' | 'AUTO' {
  if (isHttpProtocol(p)) return 'HTTP';
  if (isTcpProtocol(p)) return 'TCP';
  return 'AUTO';
}

/** The workload's inbound ports (Istio buildInboundChainConfigs), by target port. */
export function inboundPorts(ctx: ProxyContext): InboundPort[] {
  const out = new Map<number, InboundPort & { created: string }>();
  const ingress = ctx.scope.ingress;
  if (ingress.length > 0) {
    const sidecar = ctx.scope.sidecar;
    for (const l of ingress) {
      const n = l.port.number ?? 0;
      if (n === 0 || out.has(n)) continue;
      out.set(n, {
        targetPort: n,
        servicePort: n,
        protocol: parseProtocol(l.port.protocol ?? ''),
        hostname: `${sidecar?.name ?? ''}.${sidecar?.namespace ?? ctx.proxy.namespace}`,
        ...(l.bind ? { bind: l.bind } : {}),
        bindToPort:
          l.captureMode === 'NONE' ||
          (l.captureMode !== 'IPTABLES' && ctx.proxy.interceptionMode === 'NONE'),
        created: '',
      });
    }
  } else {
    const w = ctx.workload;
    if (!w) return [];
    const eps = ctx.snapshot.registry.endpointsOfWorkload(w.kind, w.namespace, w.name);
    const candidates = eps
      .map((ep) => ({ ep, svc: ctx.snapshot.service(ep.hostname, ep.serviceNamespace) }))
      .filter((c) => c.svc !== undefined && !c.ep.unixSocket && c.ep.targetPort > 0)
      .sort((a, b) => {
        const ta = a.svc?.creationTimestamp ?? '';
        const tb = b.svc?.creationTimestamp ?? '';
        if (ta !== tb) return ta < tb ? -1 : 1;
        return a.ep.hostname < b.ep.hostname ? -1 : a.ep.hostname > b.ep.hostname ? 1 : 0;
      });
    for (const { ep, svc } of candidates) {
      if (out.has(ep.targetPort)) continue;
      const sp = svc?.ports.find((p) => p.port === ep.servicePort);
      const inbound = w.inboundPorts[String(ep.targetPort)];
      out.set(ep.targetPort, {
        targetPort: ep.targetPort,
        servicePort: ep.servicePort,
        protocol: sp?.protocol ?? 'UnsupportedProtocol',
        hostname: ep.hostname,
        bindToPort: false,
        ...(inbound !== undefined ? { inboundPort: inbound } : {}),
        created: svc?.creationTimestamp ?? '',
      });
    }
  }
  return [...out.values()]
    .sort((a, b) => a.targetPort - b.targetPort)
    .map(({ created: _c, ...p }) => p);
}

/** The inline route configuration of an inbound HTTP chain (Istio buildSidecarInboundHTTPRouteConfig). */
export function inboundRouteConfig(
  cluster: string,
  servicePort: number,
  operation: string,
): RouteConfiguration {
  return {
    name: cluster,
    virtualHosts: [
      {
        name: `inbound|http|${servicePort}`,
        domains: ['*'],
        routes: [
          {
            name: 'default',
            match: { prefix: '/' },
            decorator: { operation },
            route: {
              cluster,
              timeout: '0s',
              maxStreamDuration: { maxStreamDuration: '0s', grpcTimeoutHeaderMax: '0s' },
            },
          },
        ],
      },
    ],
    validateClusters: false,
  };
}

function inboundHcm(statPrefix: string, routeConfig: RouteConfiguration, grpcWeb: boolean): Filter {
  return httpConnectionManagerFilter({
    statPrefix,
    routeConfig,
    useRemoteAddress: false,
    grpcWeb,
    overrides: {
      serverName: 'istio-envoy',
      forwardClientCertDetails: 'APPEND_FORWARD',
      setCurrentClientCertDetails: { subject: true, dns: true, uri: true },
    },
  });
}

function chainsForPort(
  ctx: ProxyContext,
  port: InboundPort,
  opts: InboundOptions,
  withPortMatch: boolean,
): FilterChainOpts[] {
  const lp = listenerProtocol(port.protocol);
  const matches = opts.matchOptions?.(port, lp) ?? plaintextMatchOptions(lp);
  const cluster = inboundClusterName(port.targetPort);
  const name = listenerName(port.bind ?? wildcardAddress(ctx.proxy), port.targetPort);
  const pre = [...(opts.networkFilters?.(port) ?? [])];
  return matches.map((m) => {
    const base: FilterChainOpts = {
      name,
      ...(withPortMatch ? { destinationPort: port.targetPort } : {}),
      ...(m.applicationProtocols ? { applicationProtocols: m.applicationProtocols } : {}),
      ...(m.transportProtocol ? { transportProtocol: m.transportProtocol } : {}),
      ...(m.tlsContext ? { tlsContext: m.tlsContext } : {}),
      networkFilters: [...pre],
    };
    if (m.protocol === 'HTTP') {
      base.http = inboundHcm(
        `inbound_${name}`,
        inboundRouteConfig(cluster, port.servicePort, `${port.hostname}:${port.servicePort}/*`),
        port.protocol === 'GRPC-Web',
      );
    } else {
      base.networkFilters.push(tcpProxyFilter({ statPrefix: cluster, cluster }));
    }
    return base;
  });
}

/** Istio buildInboundPassthroughChains (plaintext). */
function passthroughChains(): FilterChainOpts[] {
  const cluster = INBOUND_PASSTHROUGH_CLUSTER;
  const rc: RouteConfiguration = {
    ...inboundRouteConfig(cluster, 0, `${VIRTUAL_INBOUND_LISTENER}:0/*`),
    name: cluster,
  };
  return [
    {
      name: VIRTUAL_INBOUND_BLACKHOLE_CHAIN,
      destinationPort: PROXY_INBOUND_LISTEN_PORT,
      networkFilters: [
        tcpProxyFilter({ statPrefix: BLACKHOLE_CLUSTER, cluster: BLACKHOLE_CLUSTER }),
      ],
    },
    {
      name: VIRTUAL_INBOUND_CATCHALL_HTTP_CHAIN,
      applicationProtocols: PLAINTEXT_HTTP_ALPNS,
      transportProtocol: RAW_BUFFER,
      networkFilters: [],
      http: inboundHcm(cluster, rc, false),
    },
    {
      name: VIRTUAL_INBOUND_LISTENER,
      transportProtocol: RAW_BUFFER,
      networkFilters: [tcpProxyFilter({ statPrefix: cluster, cluster })],
    },
  ];
}

/**
 * Istio populateListenerFilters: original_dst for the capture listener, a TLS inspector when a
 * chain matches the transport protocol `tls`, an HTTP inspector skipped on ports that do not
 * need it.
 */
function listenerFiltersFor(
  chains: readonly FilterChainOpts[],
  capture: boolean,
): ListenerFilter[] {
  const out: ListenerFilter[] = [];
  if (capture) out.push(originalDst());
  const needs = new Map<number, { tls: boolean; http: boolean }>();
  for (const c of chains) {
    const port = c.destinationPort ?? 0;
    const cur = needs.get(port) ?? { tls: false, http: false };
    if (c.transportProtocol === 'tls') cur.tls = true;
    if ((c.applicationProtocols ?? []).some((a) => a === 'http/1.1' || a === 'h2c'))
      cur.http = true;
    needs.set(port, cur);
  }
  if ([...needs.values()].some((n) => n.tls)) out.push(tlsInspector());
  if ([...needs.values()].some((n) => n.http)) {
    const off = [...needs]
      .filter(([, n]) => !n.http)
      .map(([p]) => p)
      .sort((a, b) => a - b);
    const f = httpInspector();
    if (off.length === 1)
      f.filterDisabled = { destinationPortRange: { start: off[0] ?? 0, end: (off[0] ?? 0) + 1 } };
    else if (off.length > 1)
      f.filterDisabled = {
        orMatch: { rules: off.map((p) => ({ destinationPortRange: { start: p, end: p + 1 } })) },
      };
    out.push(f);
  }
  return out;
}

/** The inbound listeners of a sidecar: `virtualInbound` first, then bound listeners. */
export function buildSidecarInboundListeners(
  ctx: ProxyContext,
  opts: InboundOptions = {},
): Listener[] {
  const ports = inboundPorts(ctx);
  const capture = ctx.proxy.interceptionMode !== 'NONE';
  const out: Listener[] = [];
  const bound: Listener[] = [];
  const virtualChains: FilterChainOpts[] = [];
  for (const p of ports) {
    if (!p.bindToPort && capture) virtualChains.push(...chainsForPort(ctx, p, opts, true));
    const realPort = p.bindToPort ? p.targetPort : p.inboundPort;
    if (realPort === undefined) continue;
    const bind = p.bind ?? (p.bindToPort ? wildcardAddress(ctx.proxy) : primaryAddress(ctx.proxy));
    const chains = chainsForPort(ctx, { ...p, bind }, opts, false);
    bound.push({
      name: listenerName(bind, realPort),
      address: { socketAddress: { address: bind, portValue: realPort } },
      trafficDirection: 'INBOUND',
      continueOnListenerFiltersTimeout: true,
      listenerFilters: listenerFiltersFor(chains, false),
      listenerFiltersTimeout: '0s',
      filterChains: chains.map((c) => buildFilterChain(c, true)),
    });
  }
  if (capture) {
    const chains = [...passthroughChains(), ...virtualChains];
    out.push({
      name: VIRTUAL_INBOUND_LISTENER,
      address: {
        socketAddress: {
          address: wildcardAddress(ctx.proxy),
          portValue: PROXY_INBOUND_LISTEN_PORT,
        },
      },
      ...(ctx.proxy.interceptionMode === 'TPROXY' ? { transparent: true } : {}),
      trafficDirection: 'INBOUND',
      continueOnListenerFiltersTimeout: true,
      listenerFilters: listenerFiltersFor(chains, true),
      listenerFiltersTimeout: '0s',
      filterChains: chains.map((c) => buildFilterChain(c, true)),
    });
  }
  out.push(...bound.sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : 1)));
  return out;
}
