// A traffic simulation over generated resources, for tests: it sends a request through the
// listeners, filter chains, route configurations, virtual hosts and routes the way Envoy would,
// and reports where it went (Istio's pilot/pkg/simulation plays the same role). It reads only
// the generated Envoy resources, so it checks what a proxy would actually receive.
//
// Listener selection follows the original destination: the listener bound to `address:port`,
// else `0.0.0.0:port`, else the capture listener's own chains (`virtualOutbound`), or
// `virtualInbound` for inbound requests.
import type {
  ClusterLoadAssignment,
  DirectResponseAction,
  FilterChain,
  HashPolicy,
  HeaderValueOption,
  HttpConnectionManager,
  Listener,
  RedirectAction,
  Route,
  RouteAction,
  RouteConfiguration,
  VirtualHost,
} from '@trellis/envoy';
import type { ClusterJson } from './cluster-types.js';
import { connectionManagerOf } from './http-connection-manager.js';
import {
  VIRTUAL_INBOUND_LISTENER,
  VIRTUAL_OUTBOUND_LISTENER,
  WELLKNOWN,
} from './listener-names.js';
import type { RetryPolicyWithPriority } from './route-retry.js';
import { headerBag, routeMatches, selectFilterChain, selectVirtualHost } from './simulate-match.js';
import { tcpProxyOf } from './tcp-proxy.js';

/** The resources a simulation runs over (a `GeneratedResources`). */
export interface SimulationResources {
  readonly listeners: readonly Listener[];
  readonly routes: readonly RouteConfiguration[];
  readonly clusters?: readonly ClusterJson[];
  readonly endpoints?: readonly ClusterLoadAssignment[];
}

/** A request (or a connection, for TCP and TLS). */
export interface SimulationRequest {
  /** The destination port. */
  readonly port: number;
  /** The destination IP (the original destination of a captured connection). */
  readonly address?: string;
  /** The Host / :authority header (HTTP). */
  readonly host?: string;
  /** Path with optional query string (default `/`). */
  readonly path?: string;
  /** Method (default GET). */
  readonly method?: string;
  /** `http` or `https` (the :scheme pseudo-header; default http). */
  readonly scheme?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** The TLS server name (TLS and HTTPS). */
  readonly sni?: string;
  /** ALPN protocols offered in the TLS ClientHello (e.g. `istio` for Istio mTLS). */
  readonly alpn?: readonly string[];
  /**
   * How the client speaks: plaintext `http` / `http2` / `grpc`, `https` (TLS carrying HTTP),
   * `tls` (TLS passed through) or opaque `tcp`.
   */
  readonly protocol: 'http' | 'http2' | 'grpc' | 'https' | 'tls' | 'tcp';
  /** `outbound` (default; captured to virtualOutbound), `inbound` (virtualInbound) or `direct`. */
  readonly direction?: 'outbound' | 'inbound' | 'direct';
  /** Select this listener by name, skipping listener selection. */
  readonly listener?: string;
  /**
   * Source labels of the caller. Generation already applied them (routes with `sourceLabels` exist
   * only for matching proxies), so this is informative only.
   */
  readonly sourceLabels?: Readonly<Record<string, string>>;
}

/** One upstream cluster a request may go to. */
export interface SimulatedCluster {
  readonly name: string;
  /** Weight of a weighted split (absent for a single cluster). */
  readonly weight?: number;
  /** `address:port` of each endpoint (EDS or the cluster's own load assignment). */
  readonly endpoints: readonly string[];
}

/** Fault injection on the matched route. */
export interface SimulatedFault {
  readonly delay?: {
    readonly fixedDelay?: string;
    readonly percentage?: { numerator?: number; denominator?: string };
  };
  readonly abort?: {
    readonly httpStatus?: number;
    readonly grpcStatus?: number;
    readonly percentage?: { numerator?: number; denominator?: string };
  };
}

/** Where the request went. */
export interface SimulationResult {
  /** What happened; `error` names the step that failed. */
  readonly outcome: 'forward' | 'direct-response' | 'redirect' | 'tcp' | 'error';
  readonly error?:
    | 'no listener'
    | 'no filter chain'
    | 'no route configuration'
    | 'no virtual host'
    | 'no route'
    | 'no action';
  readonly listener?: string;
  /** The filter chain's name, or `#N` (index), or `default`. */
  readonly filterChain?: string;
  readonly routeConfig?: string;
  readonly virtualHost?: string;
  /** The matched route (its name, match and the whole route). */
  readonly route?: Route;
  readonly routeName?: string;
  /** The clusters (one, or every weighted one). */
  readonly clusters: readonly SimulatedCluster[];
  /** The single cluster when there is exactly one. */
  readonly cluster?: string;
  readonly directResponse?: DirectResponseAction;
  readonly redirect?: RedirectAction;
  readonly fault?: SimulatedFault;
  readonly retryPolicy?: RetryPolicyWithPriority;
  readonly timeout?: string;
  readonly hashPolicy?: readonly HashPolicy[];
  readonly requestHeadersToAdd?: readonly HeaderValueOption[];
  readonly hostRewrite?: string;
  readonly prefixRewrite?: string;
  readonly mirrors?: readonly string[];
  /** The HTTP status an error implies (404 for no virtual host or route). */
  readonly status?: number;
}

function addressOf(l: Listener): { ip: string; port: number } {
  return {
    ip: l.address?.socketAddress?.address ?? '',
    port: l.address?.socketAddress?.portValue ?? 0,
  };
}

function selectListener(res: SimulationResources, req: SimulationRequest): Listener | undefined {
  if (req.listener !== undefined) return res.listeners.find((l) => l.name === req.listener);
  const direction = req.direction ?? 'outbound';
  if (direction === 'inbound') {
    return (
      res.listeners.find((l) => l.name === VIRTUAL_INBOUND_LISTENER) ??
      res.listeners.find((l) => addressOf(l).port === req.port && l.trafficDirection === 'INBOUND')
    );
  }
  const ports = res.listeners.filter(
    (l) =>
      l.name !== VIRTUAL_OUTBOUND_LISTENER &&
      l.name !== VIRTUAL_INBOUND_LISTENER &&
      l.trafficDirection !== 'INBOUND',
  );
  const onPort = ports.filter((l) => addressOf(l).port === req.port);
  if (req.address !== undefined) {
    const exact = onPort.find((l) => addressOf(l).ip === req.address);
    if (exact) return exact;
  }
  const wildcard = onPort.find((l) => addressOf(l).ip === '0.0.0.0' || addressOf(l).ip === '::');
  if (wildcard) return wildcard;
  if (req.address === undefined && onPort.length === 1) return onPort[0];
  if (direction === 'direct') return undefined;
  return res.listeners.find((l) => l.name === VIRTUAL_OUTBOUND_LISTENER);
}

function hasListenerFilter(l: Listener, name: string): boolean {
  return (l.listenerFilters ?? []).some((f) => f.name === name);
}

function chainLabel(l: Listener, fc: FilterChain): string {
  if (fc.name) return fc.name;
  if (fc === l.defaultFilterChain) return 'default';
  return `#${(l.filterChains ?? []).indexOf(fc)}`;
}

function endpointsOf(res: SimulationResources, cluster: string): string[] {
  const cla =
    res.endpoints?.find((e) => e.clusterName === cluster) ??
    res.clusters?.find((c) => c.name === cluster)?.loadAssignment;
  const out: string[] = [];
  for (const group of cla?.endpoints ?? [])
    for (const lb of group.lbEndpoints ?? []) {
      const sa = lb.endpoint?.address?.socketAddress;
      if (sa) out.push(`${sa.address ?? ''}:${sa.portValue ?? 0}`);
      const pipe = lb.endpoint?.address?.pipe;
      if (pipe) out.push(`unix://${pipe.path ?? ''}`);
    }
  return out;
}

function clustersOfAction(res: SimulationResources, a: RouteAction): SimulatedCluster[] {
  if (a.cluster !== undefined) return [{ name: a.cluster, endpoints: endpointsOf(res, a.cluster) }];
  return (a.weightedClusters?.clusters ?? []).map((c) => ({
    name: c.name ?? '',
    weight: c.weight ?? 0,
    endpoints: endpointsOf(res, c.name ?? ''),
  }));
}

function fail(
  error: NonNullable<SimulationResult['error']>,
  partial: Partial<SimulationResult>,
): SimulationResult {
  const status = error === 'no virtual host' || error === 'no route' ? 404 : undefined;
  return { ...partial, outcome: 'error', error, clusters: [], ...(status ? { status } : {}) };
}

function simulateTcp(
  res: SimulationResources,
  fc: FilterChain,
  base: Partial<SimulationResult>,
): SimulationResult {
  const tcp = tcpProxyOf((fc.filters ?? []).find((f) => f.name === WELLKNOWN.tcpProxy));
  if (!tcp) return fail('no action', base);
  const clusters =
    tcp.cluster !== undefined
      ? [{ name: tcp.cluster, endpoints: endpointsOf(res, tcp.cluster) }]
      : (tcp.weightedClusters?.clusters ?? []).map((c) => ({
          name: c.name ?? '',
          weight: c.weight ?? 0,
          endpoints: endpointsOf(res, c.name ?? ''),
        }));
  return {
    ...base,
    outcome: 'tcp',
    clusters,
    ...(clusters.length === 1 && clusters[0] ? { cluster: clusters[0].name } : {}),
  };
}

function simulateHttp(
  res: SimulationResources,
  req: SimulationRequest,
  rc: RouteConfiguration,
  base: Partial<SimulationResult>,
): SimulationResult {
  const authority = req.host ?? '';
  const vh: VirtualHost | undefined = selectVirtualHost(
    rc.virtualHosts ?? [],
    authority,
    rc.ignorePortInHostMatching === true,
  );
  if (!vh) return fail('no virtual host', base);
  const withVh = { ...base, virtualHost: vh.name ?? '' };
  const headers = headerBag({
    ...(req.headers ?? {}),
    ':authority': authority,
    ':method': req.method ?? 'GET',
    ':scheme': req.scheme ?? (req.protocol === 'https' ? 'https' : 'http'),
    ':path': req.path ?? '/',
    ...(req.protocol === 'grpc' ? { 'content-type': 'application/grpc' } : {}),
  });
  const route = (vh.routes ?? []).find((r) =>
    routeMatches(r.match, { path: req.path ?? '/', headers }),
  );
  if (!route) return fail('no route', withVh);
  const withRoute: Partial<SimulationResult> = {
    ...withVh,
    route,
    ...(route.name !== undefined ? { routeName: route.name } : {}),
  };
  const faultCfg = route.typedPerFilterConfig?.[WELLKNOWN.fault] as SimulatedFault | undefined;
  const fault = faultCfg
    ? {
        ...(faultCfg.delay ? { delay: faultCfg.delay } : {}),
        ...(faultCfg.abort ? { abort: faultCfg.abort } : {}),
      }
    : undefined;
  const extras: Partial<SimulationResult> = {
    ...(fault ? { fault } : {}),
    ...(route.requestHeadersToAdd ? { requestHeadersToAdd: route.requestHeadersToAdd } : {}),
  };
  if (route.directResponse)
    return {
      ...withRoute,
      ...extras,
      outcome: 'direct-response',
      directResponse: route.directResponse,
      clusters: [],
    };
  if (route.redirect)
    return { ...withRoute, ...extras, outcome: 'redirect', redirect: route.redirect, clusters: [] };
  const a = route.route;
  if (!a) return fail('no action', withRoute);
  const clusters = clustersOfAction(res, a);
  return {
    ...withRoute,
    ...extras,
    outcome: 'forward',
    clusters,
    ...(a.cluster !== undefined ? { cluster: a.cluster } : {}),
    ...(a.retryPolicy ? { retryPolicy: a.retryPolicy } : {}),
    ...(a.timeout !== undefined ? { timeout: a.timeout } : {}),
    ...(a.hashPolicy ? { hashPolicy: a.hashPolicy } : {}),
    ...(a.hostRewriteLiteral !== undefined ? { hostRewrite: a.hostRewriteLiteral } : {}),
    ...(a.prefixRewrite !== undefined ? { prefixRewrite: a.prefixRewrite } : {}),
    ...(a.requestMirrorPolicies
      ? { mirrors: a.requestMirrorPolicies.map((m) => m.cluster ?? '') }
      : {}),
  };
}

/** Sends a request through the resources and reports where it went. */
export function simulate(res: SimulationResources, req: SimulationRequest): SimulationResult {
  const listener = selectListener(res, req);
  if (!listener) return fail('no listener', {});
  const base: Partial<SimulationResult> = { listener: listener.name ?? '' };
  if (listener.apiListener?.apiListener) {
    // A proxyless gRPC client: no socket, the connection manager routes every call.
    const hcm = listener.apiListener.apiListener as unknown as HttpConnectionManager;
    return simulateRds(res, req, hcm, base);
  }
  const tlsClient = req.protocol === 'https' || req.protocol === 'tls';
  const tlsInspected = hasListenerFilter(listener, WELLKNOWN.tlsInspector);
  const httpInspected = hasListenerFilter(listener, WELLKNOWN.httpInspector);
  const plaintextHttp =
    req.protocol === 'http' || req.protocol === 'http2' || req.protocol === 'grpc';
  const alpn: string[] = [];
  if (plaintextHttp && httpInspected) alpn.push(req.protocol === 'http' ? 'http/1.1' : 'h2c');
  if (tlsClient && tlsInspected) alpn.push(...(req.alpn ?? []));
  const fc =
    selectFilterChain(listener.filterChains ?? [], {
      destinationPort: req.port,
      destinationIp: req.address ?? addressOf(listener).ip,
      serverName: tlsClient && tlsInspected ? (req.sni ?? '') : '',
      transportProtocol: tlsClient && tlsInspected ? 'tls' : 'raw_buffer',
      applicationProtocols: alpn,
    }) ?? listener.defaultFilterChain;
  if (!fc) return fail('no filter chain', base);
  const withChain = { ...base, filterChain: chainLabel(listener, fc) };
  const hcmFilter = (fc.filters ?? []).find((f) => f.name === WELLKNOWN.httpConnectionManager);
  const hcm = connectionManagerOf(hcmFilter);
  if (!hcm) return simulateTcp(res, fc, withChain);
  return simulateRds(res, req, hcm, withChain);
}

function simulateRds(
  res: SimulationResources,
  req: SimulationRequest,
  hcm: HttpConnectionManager,
  base: Partial<SimulationResult>,
): SimulationResult {
  let rc: RouteConfiguration | undefined;
  if (hcm.rds?.routeConfigName !== undefined) {
    const name = hcm.rds.routeConfigName;
    rc = res.routes.find((r) => r.name === name);
    if (!rc) return fail('no route configuration', { ...base, routeConfig: name });
  } else rc = hcm.routeConfig;
  if (!rc) return fail('no route configuration', base);
  return simulateHttp(res, req, rc, { ...base, routeConfig: rc.name ?? '' });
}
