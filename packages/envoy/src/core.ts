// Proto3-JSON shapes of envoy.config.core.v3 and envoy.type.v3 messages shared by the
// resource types. Field names are the proto's JSON names; every field is optional, as in
// proto3. Each interface's JSDoc starts with its proto message's full name (a test checks
// every declared field against the loaded protos).
import type { AnyMessage } from './codec.js';

/** A google.protobuf.Duration in proto3 JSON: seconds with up to 9 decimals and an `s`, e.g. "1.5s". */
export type Duration = string;
/** A 64-bit integer in proto3 JSON: a decimal string (the encoder also accepts safe integers). */
export type Int64 = string;
/** A google.protobuf.Struct in proto3 JSON: any JSON object. */
export type Struct = Record<string, unknown>;
/** An empty message (e.g. `ads: {}`). */
export type Empty = Record<string, never>;

/** `envoy.config.core.v3.Address`: a socket, pipe or internal address. */
export interface Address {
  socketAddress?: SocketAddress;
  pipe?: Pipe;
  envoyInternalAddress?: EnvoyInternalAddress;
}

/** `envoy.config.core.v3.SocketAddress`: an IP (or host name) and port. */
export interface SocketAddress {
  protocol?: 'TCP' | 'UDP';
  address?: string;
  portValue?: number;
  namedPort?: string;
  resolverName?: string;
  ipv4Compat?: boolean;
}

/** `envoy.config.core.v3.Pipe`: a Unix domain socket. */
export interface Pipe {
  path?: string;
  mode?: number;
}

/** `envoy.config.core.v3.EnvoyInternalAddress`: an internal listener. */
export interface EnvoyInternalAddress {
  serverListenerName?: string;
  endpointId?: string;
}

/** `envoy.config.core.v3.CidrRange`: an address prefix. */
export interface CidrRange {
  addressPrefix?: string;
  prefixLen?: number;
}

/** `envoy.config.core.v3.HeaderValue`: one header. */
export interface HeaderValue {
  key?: string;
  value?: string;
  /** Base64 bytes. */
  rawValue?: string;
}

/** How a header is added (envoy.config.core.v3.HeaderValueOption.HeaderAppendAction). */
export type HeaderAppendAction =
  | 'APPEND_IF_EXISTS_OR_ADD'
  | 'ADD_IF_ABSENT'
  | 'OVERWRITE_IF_EXISTS_OR_ADD'
  | 'OVERWRITE_IF_EXISTS';

/** `envoy.config.core.v3.HeaderValueOption`: a header to add, and how. */
export interface HeaderValueOption {
  header?: HeaderValue;
  /** Deprecated: use appendAction. */
  append?: boolean;
  appendAction?: HeaderAppendAction;
  keepEmptyValue?: boolean;
}

/** `envoy.config.core.v3.Metadata`: filter metadata by filter name. */
export interface Metadata {
  filterMetadata?: Record<string, Struct>;
  typedFilterMetadata?: Record<string, AnyMessage>;
}

/** `envoy.config.core.v3.Locality`: region / zone / sub-zone. */
export interface Locality {
  region?: string;
  zone?: string;
  subZone?: string;
}

/** `envoy.config.core.v3.TransportSocket`: e.g. `envoy.transport_sockets.tls` with a TLS context. */
export interface TransportSocket {
  name?: string;
  typedConfig?: AnyMessage;
}

/** `envoy.config.core.v3.TypedExtensionConfig`: a named extension with its config. */
export interface TypedExtensionConfig {
  name?: string;
  typedConfig?: AnyMessage;
}

/** API version of a config source (envoy.config.core.v3.ApiVersion). */
export type ApiVersion = 'AUTO' | 'V2' | 'V3';

/** `envoy.config.core.v3.ConfigSource`: where dynamic config comes from (`ads: {}` in a mesh). */
export interface ConfigSource {
  ads?: Empty;
  apiConfigSource?: ApiConfigSource;
  self?: Empty;
  path?: string;
  initialFetchTimeout?: Duration;
  resourceApiVersion?: ApiVersion;
}

/** `envoy.config.core.v3.ApiConfigSource`: a non-aggregated xDS source. */
export interface ApiConfigSource {
  apiType?: 'GRPC' | 'DELTA_GRPC' | 'REST' | 'AGGREGATED_GRPC' | 'AGGREGATED_DELTA_GRPC';
  transportApiVersion?: ApiVersion;
  clusterNames?: string[];
  grpcServices?: GrpcService[];
  refreshDelay?: Duration;
  requestTimeout?: Duration;
  setNodeOnFirstMessageOnly?: boolean;
}

/** `envoy.config.core.v3.GrpcService`: a gRPC service reached through an Envoy cluster. */
export interface GrpcService {
  envoyGrpc?: GrpcServiceEnvoyGrpc;
  timeout?: Duration;
  initialMetadata?: HeaderValue[];
}

/** `envoy.config.core.v3.GrpcService.EnvoyGrpc`: the cluster that serves it. */
export interface GrpcServiceEnvoyGrpc {
  clusterName?: string;
  authority?: string;
}

/** `envoy.type.v3.FractionalPercent`: numerator over a fixed denominator. */
export interface FractionalPercent {
  numerator?: number;
  denominator?: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
}

/** `envoy.type.v3.Percent`: a percentage in [0, 100]. */
export interface Percent {
  value?: number;
}

/** `envoy.config.core.v3.RuntimeFractionalPercent`: a fraction, overridable at runtime. */
export interface RuntimeFractionalPercent {
  defaultValue?: FractionalPercent;
  runtimeKey?: string;
}

/** `envoy.config.core.v3.DataSource`: inline data or a file. */
export interface DataSource {
  filename?: string;
  /** Base64 bytes. */
  inlineBytes?: string;
  inlineString?: string;
  environmentVariable?: string;
}

/** `envoy.config.core.v3.HttpProtocolOptions`: timeouts and limits common to HTTP/1 and HTTP/2. */
export interface CommonHttpProtocolOptions {
  idleTimeout?: Duration;
  maxConnectionDuration?: Duration;
  maxHeadersCount?: number;
  maxStreamDuration?: Duration;
  headersWithUnderscoresAction?: 'ALLOW' | 'REJECT_REQUEST' | 'DROP_HEADER';
  maxRequestsPerConnection?: number;
}

/** `envoy.config.core.v3.Http1ProtocolOptions`: HTTP/1.1 settings. */
export interface Http1ProtocolOptions {
  allowAbsoluteUrl?: boolean;
  acceptHttp10?: boolean;
  defaultHostForHttp10?: string;
  enableTrailers?: boolean;
  allowChunkedLength?: boolean;
}

/** `envoy.config.core.v3.Http2ProtocolOptions`: HTTP/2 settings. */
export interface Http2ProtocolOptions {
  hpackTableSize?: number;
  maxConcurrentStreams?: number;
  initialStreamWindowSize?: number;
  initialConnectionWindowSize?: number;
  allowConnect?: boolean;
}

/** `envoy.config.core.v3.TcpKeepalive`: TCP keepalive probes. */
export interface TcpKeepalive {
  keepaliveProbes?: number;
  keepaliveTime?: number;
  keepaliveInterval?: number;
}

/** `envoy.config.core.v3.UpstreamHttpProtocolOptions`: SNI and Host handling upstream. */
export interface UpstreamHttpProtocolOptions {
  autoSni?: boolean;
  autoSanValidation?: boolean;
  overrideAutoSniHeader?: string;
}

/** Health of an endpoint (envoy.config.core.v3.HealthStatus). */
export type HealthStatus =
  'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

/** Direction of a listener (envoy.config.core.v3.TrafficDirection). */
export type TrafficDirection = 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';

/** `envoy.type.v3.Int64Range`: [start, end). */
export interface Int64Range {
  start?: Int64;
  end?: Int64;
}

/** `envoy.type.v3.Int32Range`: [start, end). */
export interface Int32Range {
  start?: number;
  end?: number;
}
