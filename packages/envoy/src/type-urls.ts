// Type URLs of the xDS resource types and of the typed configs Trellis generates.

const PREFIX = 'type.googleapis.com/';

/** The type URL of a message (`type.googleapis.com/<full name>`). */
export function typeUrlOf(fullName: string): string {
  return PREFIX + fullName;
}

/** The message name in a type URL (everything after the last `/`). */
export function typeNameOf(typeUrl: string): string {
  const i = typeUrl.lastIndexOf('/');
  return i < 0 ? typeUrl : typeUrl.slice(i + 1);
}

/** Type URLs of the five xDS resource types. */
export const TYPE_URL = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

/** One of the five xDS resource type URLs. */
export type ResourceTypeUrl = (typeof TYPE_URL)[keyof typeof TYPE_URL];

/** The short names Envoy and Istio use for the resource types. */
export type XdsShortName = 'LDS' | 'RDS' | 'CDS' | 'EDS' | 'SDS';

const SHORT: Readonly<Record<ResourceTypeUrl, XdsShortName>> = {
  [TYPE_URL.Listener]: 'LDS',
  [TYPE_URL.RouteConfiguration]: 'RDS',
  [TYPE_URL.Cluster]: 'CDS',
  [TYPE_URL.ClusterLoadAssignment]: 'EDS',
  [TYPE_URL.Secret]: 'SDS',
};

const BY_SHORT: Readonly<Record<XdsShortName, ResourceTypeUrl>> = {
  LDS: TYPE_URL.Listener,
  RDS: TYPE_URL.RouteConfiguration,
  CDS: TYPE_URL.Cluster,
  EDS: TYPE_URL.ClusterLoadAssignment,
  SDS: TYPE_URL.Secret,
};

/** Every resource type URL, in Istio's push order (clusters before endpoints, listeners before routes). */
export const PUSH_ORDER: readonly ResourceTypeUrl[] = [
  TYPE_URL.Cluster,
  TYPE_URL.ClusterLoadAssignment,
  TYPE_URL.Listener,
  TYPE_URL.RouteConfiguration,
  TYPE_URL.Secret,
];

/** Whether a type URL is one of the five resource types. */
export function isResourceTypeUrl(typeUrl: string): typeUrl is ResourceTypeUrl {
  return Object.prototype.hasOwnProperty.call(SHORT, typeUrl);
}

/** `LDS` for the Listener type URL and so on; the type URL itself for other types. */
export function shortName(typeUrl: string): string {
  return isResourceTypeUrl(typeUrl) ? SHORT[typeUrl] : typeUrl;
}

/** The type URL for a short name (`CDS` → Cluster). */
export function typeUrlForShortName(name: XdsShortName): ResourceTypeUrl {
  return BY_SHORT[name];
}

/**
 * Whether a SotW subscription of this type is wildcard when the first request names no
 * resource (the legacy wildcard rule of the xDS protocol: Listener and Cluster only).
 */
export function isWildcardType(typeUrl: string): boolean {
  return typeUrl === TYPE_URL.Listener || typeUrl === TYPE_URL.Cluster;
}

/** Type URLs of the typed configs (filters and extensions) Trellis generates. */
export const CONFIG_TYPE_URL = {
  HttpConnectionManager:
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  NetworkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  TlsInspector:
    'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  HttpInspector:
    'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  OriginalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  ProxyProtocol:
    'type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  HttpFault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  Cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  CorsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  HttpRbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  HttpRbacPerRoute: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  JwtAuthentication:
    'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  ExtAuthz: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  GrpcStats: 'type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig',
  GrpcWeb: 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb',
  LocalRateLimit:
    'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  UpstreamTlsContext:
    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  DownstreamTlsContext:
    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  RawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  HttpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  PreviousHostsPredicate:
    'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  PreviousPrioritiesConfig:
    'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
  UuidRequestIdConfig:
    'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig',
  FileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  StdoutAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  RingHash: 'type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash',
  Maglev: 'type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev',
  RoundRobin:
    'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
  LeastRequest:
    'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest',
  Random: 'type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random',
  WrrLocality:
    'type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality',
  TypedStruct: 'type.googleapis.com/udpa.type.v1.TypedStruct',
  XdsTypedStruct: 'type.googleapis.com/xds.type.v3.TypedStruct',
} as const;
