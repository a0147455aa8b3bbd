// Proto3-JSON shapes of Cluster (CDS) and its parts, including the load-balancing policies.
import type { AnyMessage } from './codec.js';
import type {
  ConfigSource,
  Duration,
  Http1ProtocolOptions,
  Http2ProtocolOptions,
  CommonHttpProtocolOptions,
  Int64,
  Metadata,
  Percent,
  Struct,
  TcpKeepalive,
  TransportSocket,
  TypedExtensionConfig,
  UpstreamHttpProtocolOptions,
} from './core.js';
import type { ClusterLoadAssignment } from './endpoint.js';

/** Service discovery type (envoy.config.cluster.v3.Cluster.DiscoveryType). */
export type DiscoveryType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';

/** Load-balancing algorithm (envoy.config.cluster.v3.Cluster.LbPolicy). */
export type LbPolicy =
  | 'ROUND_ROBIN'
  | 'LEAST_REQUEST'
  | 'RING_HASH'
  | 'RANDOM'
  | 'MAGLEV'
  | 'CLUSTER_PROVIDED'
  | 'LOAD_BALANCING_POLICY_CONFIG';

/** DNS families (envoy.config.cluster.v3.Cluster.DnsLookupFamily). */
export type DnsLookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';

/** `envoy.config.cluster.v3.Cluster`: an upstream service: discovery, balancing, resilience, TLS. */
export interface Cluster {
  transportSocketMatches?: TransportSocketMatch[];
  name?: string;
  altStatName?: string;
  type?: DiscoveryType;
  clusterType?: CustomClusterType;
  edsClusterConfig?: EdsClusterConfig;
  connectTimeout?: Duration;
  perConnectionBufferLimitBytes?: number;
  lbPolicy?: LbPolicy;
  loadAssignment?: ClusterLoadAssignment;
  circuitBreakers?: CircuitBreakers;
  upstreamHttpProtocolOptions?: UpstreamHttpProtocolOptions;
  /** e.g. `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` (HttpProtocolOptions below). */
  typedExtensionProtocolOptions?: Record<string, AnyMessage>;
  dnsRefreshRate?: Duration;
  dnsLookupFamily?: DnsLookupFamily;
  respectDnsTtl?: boolean;
  outlierDetection?: OutlierDetection;
  cleanupInterval?: Duration;
  ringHashLbConfig?: RingHashLbConfig;
  maglevLbConfig?: MaglevLbConfig;
  originalDstLbConfig?: OriginalDstLbConfig;
  leastRequestLbConfig?: LeastRequestLbConfig;
  commonLbConfig?: CommonLbConfig;
  transportSocket?: TransportSocket;
  metadata?: Metadata;
  upstreamConnectionOptions?: UpstreamConnectionOptions;
  loadBalancingPolicy?: LoadBalancingPolicy;
}

/** `envoy.config.cluster.v3.Cluster.CustomClusterType`: e.g. an aggregate cluster. */
export interface CustomClusterType {
  name?: string;
  typedConfig?: AnyMessage;
}

/** `envoy.config.cluster.v3.Cluster.TransportSocketMatch`: a transport socket for endpoints whose metadata match. */
export interface TransportSocketMatch {
  name?: string;
  /** Matched against the endpoint's `envoy.transport_socket_match` metadata (e.g. `{ tlsMode: 'istio' }`). */
  match?: Struct;
  transportSocket?: TransportSocket;
}

/** `envoy.config.cluster.v3.Cluster.EdsClusterConfig`: where an EDS cluster's endpoints come from. */
export interface EdsClusterConfig {
  edsConfig?: ConfigSource;
  serviceName?: string;
}

/** `envoy.config.cluster.v3.CircuitBreakers`: connection and request limits. */
export interface CircuitBreakers {
  thresholds?: CircuitBreakerThresholds[];
  perHostThresholds?: CircuitBreakerThresholds[];
}

/** `envoy.config.cluster.v3.CircuitBreakers.Thresholds`: limits of one routing priority. */
export interface CircuitBreakerThresholds {
  priority?: 'DEFAULT' | 'HIGH';
  maxConnections?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
  retryBudget?: RetryBudget;
  trackRemaining?: boolean;
  maxConnectionPools?: number;
}

/** `envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget`: retries as a share of active requests. */
export interface RetryBudget {
  budgetPercent?: Percent;
  minRetryConcurrency?: number;
}

/** `envoy.config.cluster.v3.OutlierDetection`: ejecting hosts that fail. */
export interface OutlierDetection {
  consecutive5xx?: number;
  interval?: Duration;
  baseEjectionTime?: Duration;
  maxEjectionPercent?: number;
  enforcingConsecutive5xx?: number;
  enforcingSuccessRate?: number;
  successRateMinimumHosts?: number;
  successRateRequestVolume?: number;
  successRateStdevFactor?: number;
  consecutiveGatewayFailure?: number;
  enforcingConsecutiveGatewayFailure?: number;
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailure?: number;
  enforcingConsecutiveLocalOriginFailure?: number;
  enforcingLocalOriginSuccessRate?: number;
  failurePercentageThreshold?: number;
  enforcingFailurePercentage?: number;
  failurePercentageMinimumHosts?: number;
  failurePercentageRequestVolume?: number;
  maxEjectionTime?: Duration;
}

/** `envoy.config.cluster.v3.Cluster.RingHashLbConfig`: ring-hash settings (lbPolicy RING_HASH). */
export interface RingHashLbConfig {
  minimumRingSize?: Int64;
  hashFunction?: 'XX_HASH' | 'MURMUR_HASH_2';
  maximumRingSize?: Int64;
}

/** `envoy.config.cluster.v3.Cluster.MaglevLbConfig`: Maglev settings (lbPolicy MAGLEV). */
export interface MaglevLbConfig {
  tableSize?: Int64;
}

/** `envoy.config.cluster.v3.Cluster.OriginalDstLbConfig`: passthrough to the original destination. */
export interface OriginalDstLbConfig {
  useHttpHeader?: boolean;
  httpHeaderName?: string;
  upstreamPortOverride?: number;
}

/** `envoy.config.cluster.v3.Cluster.LeastRequestLbConfig`: least-request settings. */
export interface LeastRequestLbConfig {
  choiceCount?: number;
}

/** `envoy.config.cluster.v3.Cluster.CommonLbConfig`: locality weighting and panic threshold. */
export interface CommonLbConfig {
  healthyPanicThreshold?: Percent;
  localityWeightedLbConfig?: Record<string, never>;
  zoneAwareLbConfig?: ZoneAwareLbConfig;
}

/** `envoy.config.cluster.v3.Cluster.CommonLbConfig.ZoneAwareLbConfig`: zone-aware routing. */
export interface ZoneAwareLbConfig {
  routingEnabled?: Percent;
  minClusterSize?: Int64;
  failTrafficOnPanic?: boolean;
}

/** `envoy.config.cluster.v3.UpstreamConnectionOptions`: upstream socket options. */
export interface UpstreamConnectionOptions {
  tcpKeepalive?: TcpKeepalive;
}

/** `envoy.config.cluster.v3.LoadBalancingPolicy`: extension-based balancing (first supported policy wins). */
export interface LoadBalancingPolicy {
  policies?: LoadBalancingPolicyEntry[];
}

/** `envoy.config.cluster.v3.LoadBalancingPolicy.Policy`: one candidate policy. */
export interface LoadBalancingPolicyEntry {
  typedExtensionConfig?: TypedExtensionConfig;
}

/** `envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash`: ring hash as a policy extension. */
export interface RingHash {
  hashFunction?: 'DEFAULT_HASH' | 'XX_HASH' | 'MURMUR_HASH_2';
  minimumRingSize?: Int64;
  maximumRingSize?: Int64;
  useHostnameForHashing?: boolean;
  hashBalanceFactor?: number;
}

/** `envoy.extensions.load_balancing_policies.maglev.v3.Maglev`: Maglev as a policy extension. */
export interface Maglev {
  tableSize?: Int64;
}

/** `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`: the upstream HTTP protocol of a cluster. */
export interface HttpProtocolOptions {
  commonHttpProtocolOptions?: CommonHttpProtocolOptions;
  explicitHttpConfig?: ExplicitHttpConfig;
  useDownstreamProtocolConfig?: UseDownstreamHttpConfig;
  autoConfig?: AutoHttpConfig;
}

/** `envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig`: always HTTP/1 or HTTP/2. */
export interface ExplicitHttpConfig {
  httpProtocolOptions?: Http1ProtocolOptions;
  http2ProtocolOptions?: Http2ProtocolOptions;
}

/** `envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig`: same protocol as downstream. */
export interface UseDownstreamHttpConfig {
  httpProtocolOptions?: Http1ProtocolOptions;
  http2ProtocolOptions?: Http2ProtocolOptions;
}

/** `envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig`: ALPN-negotiated protocol. */
export interface AutoHttpConfig {
  httpProtocolOptions?: Http1ProtocolOptions;
  http2ProtocolOptions?: Http2ProtocolOptions;
}
