// Proto3-JSON shapes of Listener (LDS) and its parts, plus the TCP proxy network filter.
import type { AnyMessage } from './codec.js';
import type {
  Address,
  CidrRange,
  DataSource,
  Duration,
  Empty,
  Int32Range,
  Metadata,
  Struct,
  TrafficDirection,
  TransportSocket,
} from './core.js';

/** `envoy.config.listener.v3.Listener`: a listening socket and its filter chains. */
export interface Listener {
  name?: string;
  address?: Address;
  statPrefix?: string;
  filterChains?: FilterChain[];
  useOriginalDst?: boolean;
  defaultFilterChain?: FilterChain;
  perConnectionBufferLimitBytes?: number;
  metadata?: Metadata;
  listenerFilters?: ListenerFilter[];
  listenerFiltersTimeout?: Duration;
  continueOnListenerFiltersTimeout?: boolean;
  transparent?: boolean;
  freebind?: boolean;
  trafficDirection?: TrafficDirection;
  accessLog?: AccessLog[];
  bindToPort?: boolean;
  /** For proxyless gRPC: the listener is an API listener holding an HttpConnectionManager. */
  apiListener?: ApiListener;
  internalListener?: Empty;
  enableReusePort?: boolean;
}

/** `envoy.config.listener.v3.ApiListener`: a listener without a socket (proxyless gRPC). */
export interface ApiListener {
  apiListener?: AnyMessage;
}

/** `envoy.config.listener.v3.FilterChain`: filters for the connections its match selects. */
export interface FilterChain {
  filterChainMatch?: FilterChainMatch;
  filters?: Filter[];
  transportSocket?: TransportSocket;
  transportSocketConnectTimeout?: Duration;
  name?: string;
  metadata?: Metadata;
}

/** How the source of a connection is matched (envoy.config.listener.v3.FilterChainMatch.ConnectionSourceType). */
export type ConnectionSourceType = 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';

/** `envoy.config.listener.v3.FilterChainMatch`: which connections a filter chain takes. */
export interface FilterChainMatch {
  destinationPort?: number;
  prefixRanges?: CidrRange[];
  addressSuffix?: string;
  suffixLen?: number;
  directSourcePrefixRanges?: CidrRange[];
  sourceType?: ConnectionSourceType;
  sourcePrefixRanges?: CidrRange[];
  sourcePorts?: number[];
  serverNames?: string[];
  /** `raw_buffer` or `tls`. */
  transportProtocol?: string;
  /** e.g. `istio-peer-exchange`, `istio`, `h2c`, `http/1.1`. */
  applicationProtocols?: string[];
}

/** `envoy.config.listener.v3.Filter`: a network filter (HTTP connection manager, TCP proxy...). */
export interface Filter {
  name?: string;
  typedConfig?: AnyMessage;
}

/** `envoy.config.listener.v3.ListenerFilter`: a listener filter (TLS inspector, original dst...). */
export interface ListenerFilter {
  name?: string;
  typedConfig?: AnyMessage;
  filterDisabled?: ListenerFilterChainMatchPredicate;
}

/** `envoy.config.listener.v3.ListenerFilterChainMatchPredicate`: when a listener filter is skipped. */
export interface ListenerFilterChainMatchPredicate {
  orMatch?: { rules?: ListenerFilterChainMatchPredicate[] };
  andMatch?: { rules?: ListenerFilterChainMatchPredicate[] };
  notMatch?: ListenerFilterChainMatchPredicate;
  anyMatch?: boolean;
  destinationPortRange?: Int32Range;
}

/** `envoy.config.accesslog.v3.AccessLog`: an access logger (file, stdout...). */
export interface AccessLog {
  name?: string;
  typedConfig?: AnyMessage;
}

/** `envoy.config.core.v3.SubstitutionFormatString`: an access log format. */
export interface SubstitutionFormatString {
  jsonFormat?: Struct;
  textFormatSource?: DataSource;
  omitEmptyValues?: boolean;
  contentType?: string;
}

/** `envoy.extensions.access_loggers.file.v3.FileAccessLog`: log to a file (`/dev/stdout` in Istio). */
export interface FileAccessLog {
  path?: string;
  logFormat?: SubstitutionFormatString;
}

/** `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`: L4 proxying to a cluster. */
export interface TcpProxy {
  statPrefix?: string;
  cluster?: string;
  weightedClusters?: TcpProxyWeightedCluster;
  metadataMatch?: Metadata;
  idleTimeout?: Duration;
  accessLog?: AccessLog[];
  maxConnectAttempts?: number;
  maxDownstreamConnectionDuration?: Duration;
  accessLogFlushInterval?: Duration;
}

/** `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster`: a weighted L4 split. */
export interface TcpProxyWeightedCluster {
  clusters?: TcpProxyClusterWeight[];
}

/** `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight`: one L4 destination. */
export interface TcpProxyClusterWeight {
  name?: string;
  weight?: number;
  metadataMatch?: Metadata;
}
