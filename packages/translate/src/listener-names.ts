// Names Istio gives to generated resources and the Envoy extensions it uses, kept exactly so
// that `istioctl proxy-config` knowledge and tools transfer (pilot/pkg/networking/util,
// pilot/pkg/model/context.go, pkg/wellknown).
import type { Address } from '@trellis/envoy';
import { UNIX_ADDRESS_PREFIX } from '@trellis/registry';

/** The outbound capture listener (iptables redirects outbound traffic to 15001). */
export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
/** The inbound capture listener (iptables redirects inbound traffic to 15006). */
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
/** Port of the outbound capture listener (mesh `proxyListenPort`). */
export const PROXY_LISTEN_PORT = 15001;
/** Port of the inbound capture listener (mesh `proxyInboundListenPort`). */
export const PROXY_INBOUND_LISTEN_PORT = 15006;

/** Cluster for traffic to destinations outside the registry (ALLOW_ANY). */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
/** Cluster that drops traffic (REGISTRY_ONLY, and requests to the capture port itself). */
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
/** Cluster for inbound traffic to ports no service declares. */
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';

/** Filter chain of `virtualOutbound` that drops connections to 15001 itself. */
export const VIRTUAL_OUTBOUND_BLACKHOLE_CHAIN = 'virtualOutbound-blackhole';
/** Filter chain of `virtualOutbound` for destinations no listener claims. */
export const VIRTUAL_OUTBOUND_CATCHALL_TCP_CHAIN = 'virtualOutbound-catchall-tcp';
/** Filter chain of `virtualInbound` that drops connections to 15006 itself. */
export const VIRTUAL_INBOUND_BLACKHOLE_CHAIN = 'virtualInbound-blackhole';
/** Filter chain of `virtualInbound` for plaintext HTTP to undeclared ports. */
export const VIRTUAL_INBOUND_CATCHALL_HTTP_CHAIN = 'virtualInbound-catchall-http';
/** Default filter chain of outbound listeners for traffic that matches no chain. */
export const PASSTHROUGH_FILTER_CHAIN = 'PassthroughFilterChain';

/** Virtual host (and route) name of the catch-all host under ALLOW_ANY. */
export const ALLOW_ANY_VHOST = 'allow_any';
/** Virtual host (and route) name of the catch-all host under REGISTRY_ONLY. */
export const BLOCK_ALL_VHOST = 'block_all';
/** Route name Istio gives a route built without a VirtualService. */
export const DEFAULT_ROUTE_NAME = 'default';
/** Route configuration served to the explicit HTTP proxy listener (Istio's RDSHttpProxy). */
export const HTTP_PROXY_ROUTE_CONFIG = 'http_proxy';
/** Prefix of the inbound listener names proxyless gRPC servers ask for. */
export const GRPC_INBOUND_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

/** Envoy extension names (pkg/wellknown). */
export const WELLKNOWN = {
  httpConnectionManager: 'envoy.filters.network.http_connection_manager',
  tcpProxy: 'envoy.filters.network.tcp_proxy',
  router: 'envoy.filters.http.router',
  fault: 'envoy.filters.http.fault',
  cors: 'envoy.filters.http.cors',
  grpcWeb: 'envoy.filters.http.grpc_web',
  grpcStats: 'istio.grpc_stats',
  tlsInspector: 'envoy.filters.listener.tls_inspector',
  httpInspector: 'envoy.filters.listener.http_inspector',
  originalDst: 'envoy.filters.listener.original_dst',
  tlsTransportSocket: 'envoy.transport_sockets.tls',
  previousHosts: 'envoy.retry_host_predicates.previous_hosts',
  previousPriorities: 'envoy.retry_priorities.previous_priorities',
  requestIdUuid: 'request_id.uuid',
} as const;

/** Application protocols the HTTP inspector reports for plaintext HTTP (Istio's plaintextHTTPALPNs). */
export const PLAINTEXT_HTTP_ALPNS: readonly string[] = ['http/1.1', 'h2c'];
/** Application protocols of Istio mTLS (AUTO_PASSTHROUGH filter chains match them). */
export const ISTIO_MTLS_ALPNS: readonly string[] = [
  'istio',
  'istio-peer-exchange',
  'istio-http/1.0',
  'istio-http/1.1',
  'istio-h2',
];
/** The transport protocol a TLS inspector reports for non-TLS traffic. */
export const RAW_BUFFER = 'raw_buffer';

/** Traffic direction in cluster names. */
export type Direction = 'inbound' | 'outbound';

/** Istio's cluster name `DIRECTION|PORT|SUBSET|HOST` (`outbound|9080|v1|reviews.default.svc.cluster.local`). */
export function subsetKey(
  direction: Direction,
  subset: string,
  host: string,
  port: number,
): string {
  return `${direction}|${port}|${subset}|${host}`;
}

/** `outbound|PORT|SUBSET|HOST`. */
export function outboundClusterName(host: string, port: number, subset = ''): string {
  return subsetKey('outbound', subset, host, port);
}

/** `inbound|PORT||`: the inbound cluster to the application's port. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** The SNI-DNAT cluster name AUTO_PASSTHROUGH gateways route by: `outbound_.PORT_.SUBSET_.HOST`. */
export function dnsSrvSubsetKey(host: string, port: number, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/** Parses `DIRECTION|PORT|SUBSET|HOST`; undefined for other names. */
export function parseSubsetKey(
  name: string,
): { direction: Direction; port: number; subset: string; host: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset = '', host = ''] = parts;
  if (direction !== 'inbound' && direction !== 'outbound') return undefined;
  const n = Number(port);
  if (!Number.isInteger(n)) return undefined;
  return { direction, port: n, subset, host };
}

/** `BIND_PORT`: Istio's TCP listener name (`0.0.0.0_9080`, `10.96.0.5_27017`). */
export function listenerName(bind: string, port: number): string {
  return `${bind}_${port}`;
}

/**
 * The address a listener binds (Istio BuildAddress): a `unix://PATH` bind is the pipe `PATH`,
 * anything else an IP address and port.
 */
export function listenerAddress(bind: string, port: number): Address {
  return bind.startsWith(UNIX_ADDRESS_PREFIX)
    ? { pipe: { path: bind.slice(UNIX_ADDRESS_PREFIX.length) } }
    : { socketAddress: { address: bind, portValue: port } };
}

/** `HOST:PORT`, the virtual host name Istio uses (`reviews.default.svc.cluster.local:9080`). */
export function domainName(host: string, port: number): string {
  return `${host}:${port}`;
}
