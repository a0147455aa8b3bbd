// Proto3-JSON shapes of the HTTP connection manager and the HTTP filters Trellis generates.
import type { AnyMessage } from './codec.js';
import type {
  ConfigSource,
  Duration,
  Http1ProtocolOptions,
  Http2ProtocolOptions,
  CommonHttpProtocolOptions,
  Percent,
  RuntimeFractionalPercent,
  FractionalPercent,
} from './core.js';
import type { AccessLog } from './listener.js';
import type { HeaderMatcher, RouteConfiguration } from './route.js';
import type { StringMatcher } from './matcher.js';

/** `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`: the L7 network filter. */
export interface HttpConnectionManager {
  codecType?: 'AUTO' | 'HTTP1' | 'HTTP2' | 'HTTP3';
  statPrefix?: string;
  /** Routes fetched over RDS (sidecars and gateways). */
  rds?: Rds;
  /** Inline routes. */
  routeConfig?: RouteConfiguration;
  httpFilters?: HttpFilter[];
  tracing?: HcmTracing;
  commonHttpProtocolOptions?: CommonHttpProtocolOptions;
  httpProtocolOptions?: Http1ProtocolOptions;
  http2ProtocolOptions?: Http2ProtocolOptions;
  serverName?: string;
  serverHeaderTransformation?: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  streamIdleTimeout?: Duration;
  requestTimeout?: Duration;
  requestHeadersTimeout?: Duration;
  drainTimeout?: Duration;
  delayedCloseTimeout?: Duration;
  accessLog?: AccessLog[];
  useRemoteAddress?: boolean;
  xffNumTrustedHops?: number;
  skipXffAppend?: boolean;
  via?: string;
  generateRequestId?: boolean;
  preserveExternalRequestId?: boolean;
  alwaysSetRequestIdInResponse?: boolean;
  forwardClientCertDetails?:
    'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
  setCurrentClientCertDetails?: SetCurrentClientCertDetails;
  normalizePath?: boolean;
  mergeSlashes?: boolean;
  pathWithEscapedSlashesAction?:
    | 'IMPLEMENTATION_SPECIFIC_DEFAULT'
    | 'KEEP_UNCHANGED'
    | 'REJECT_REQUEST'
    | 'UNESCAPE_AND_REDIRECT'
    | 'UNESCAPE_AND_FORWARD';
  requestIdExtension?: RequestIdExtension;
  stripMatchingHostPort?: boolean;
  stripAnyHostPort?: boolean;
  upgradeConfigs?: HcmUpgradeConfig[];
  maxRequestHeadersKb?: number;
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.Rds`: routes by name over xDS. */
export interface Rds {
  configSource?: ConfigSource;
  /** Istio: the port for sidecar outbound (`9080`), `http.8080` for gateways. */
  routeConfigName?: string;
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter`: one HTTP filter. */
export interface HttpFilter {
  name?: string;
  typedConfig?: AnyMessage;
  isOptional?: boolean;
  disabled?: boolean;
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing`: sampling and tags. */
export interface HcmTracing {
  clientSampling?: Percent;
  randomSampling?: Percent;
  overallSampling?: Percent;
  verbose?: boolean;
  maxPathTagLength?: number;
  provider?: { name?: string; typedConfig?: AnyMessage };
  spawnUpstreamSpan?: boolean;
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.SetCurrentClientCertDetails`: XFCC fields. */
export interface SetCurrentClientCertDetails {
  subject?: boolean;
  cert?: boolean;
  chain?: boolean;
  dns?: boolean;
  uri?: boolean;
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.RequestIDExtension`: request id generation. */
export interface RequestIdExtension {
  typedConfig?: AnyMessage;
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig`: e.g. websocket. */
export interface HcmUpgradeConfig {
  upgradeType?: string;
  filters?: HttpFilter[];
  enabled?: boolean;
}

/** `envoy.extensions.filters.http.router.v3.Router`: the terminal HTTP filter. */
export interface Router {
  dynamicStats?: boolean;
  startChildSpan?: boolean;
  suppressEnvoyHeaders?: boolean;
  strictCheckHeaders?: string[];
  respectExpectedRqTimeout?: boolean;
}

/** `envoy.extensions.filters.common.fault.v3.FaultDelay`: a fixed delay for a share of requests. */
export interface FaultDelay {
  fixedDelay?: Duration;
  headerDelay?: Record<string, never>;
  percentage?: FractionalPercent;
}

/** `envoy.extensions.filters.http.fault.v3.FaultAbort`: an HTTP or gRPC error for a share of requests. */
export interface FaultAbort {
  httpStatus?: number;
  grpcStatus?: number;
  headerAbort?: Record<string, never>;
  percentage?: FractionalPercent;
}

/** `envoy.extensions.filters.http.fault.v3.HTTPFault`: fault injection (filter config or per route). */
export interface HTTPFault {
  delay?: FaultDelay;
  abort?: FaultAbort;
  upstreamCluster?: string;
  headers?: HeaderMatcher[];
  downstreamNodes?: string[];
  maxActiveFaults?: number;
}

/** `envoy.extensions.filters.http.cors.v3.Cors`: the CORS filter (policy set per route). */
export type Cors = Record<string, never>;

/** `envoy.extensions.filters.http.cors.v3.CorsPolicy`: a CORS policy (per virtual host or route). */
export interface CorsPolicy {
  allowOriginStringMatch?: StringMatcher[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials?: boolean;
  filterEnabled?: RuntimeFractionalPercent;
  shadowEnabled?: RuntimeFractionalPercent;
  allowPrivateNetworkAccess?: boolean;
  forwardNotMatchingPreflights?: boolean;
}
