// Proto3-JSON shapes of RouteConfiguration (RDS) and its parts.
import type { AnyMessage } from './codec.js';
import type {
  DataSource,
  Duration,
  HeaderValueOption,
  Int64,
  Int64Range,
  Metadata,
  RuntimeFractionalPercent,
} from './core.js';
import type { RegexMatchAndSubstitute, RegexMatcher, StringMatcher } from './matcher.js';

/** Filter configs keyed by filter name, overriding the HTTP filters per host, route or cluster. */
export type TypedPerFilterConfig = Record<string, AnyMessage>;

/** `envoy.config.route.v3.RouteConfiguration`: virtual hosts served on one HTTP listener (port). */
export interface RouteConfiguration {
  name?: string;
  virtualHosts?: VirtualHost[];
  internalOnlyHeaders?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  mostSpecificHeaderMutationsWins?: boolean;
  validateClusters?: boolean;
  maxDirectResponseBodySizeBytes?: number;
  ignorePortInHostMatching?: boolean;
  typedPerFilterConfig?: TypedPerFilterConfig;
  metadata?: Metadata;
}

/** `envoy.config.route.v3.VirtualHost`: routes for a set of host names. */
export interface VirtualHost {
  name?: string;
  domains?: string[];
  routes?: Route[];
  requireTls?: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  typedPerFilterConfig?: TypedPerFilterConfig;
  includeRequestAttemptCount?: boolean;
  includeAttemptCountInResponse?: boolean;
  retryPolicy?: RetryPolicy;
  metadata?: Metadata;
}

/** `envoy.config.route.v3.Route`: a match and what to do (route, redirect or respond directly). */
export interface Route {
  name?: string;
  match?: RouteMatch;
  route?: RouteAction;
  redirect?: RedirectAction;
  directResponse?: DirectResponseAction;
  nonForwardingAction?: Record<string, never>;
  metadata?: Metadata;
  decorator?: Decorator;
  typedPerFilterConfig?: TypedPerFilterConfig;
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  statPrefix?: string;
}

/** `envoy.config.route.v3.Decorator`: the tracing operation name of a route. */
export interface Decorator {
  operation?: string;
  propagate?: boolean;
}

/** `envoy.config.route.v3.RouteMatch`: path (prefix / exact / regex), headers, query parameters. */
export interface RouteMatch {
  prefix?: string;
  path?: string;
  safeRegex?: RegexMatcher;
  connectMatcher?: Record<string, never>;
  pathSeparatedPrefix?: string;
  caseSensitive?: boolean;
  runtimeFraction?: RuntimeFractionalPercent;
  headers?: HeaderMatcher[];
  queryParameters?: QueryParameterMatcher[];
  grpc?: Record<string, never>;
  tlsContext?: TlsContextMatchOptions;
}

/** `envoy.config.route.v3.RouteMatch.TlsContextMatchOptions`: match on the downstream TLS state. */
export interface TlsContextMatchOptions {
  presented?: boolean;
  validated?: boolean;
}

/** `envoy.config.route.v3.HeaderMatcher`: a header condition (use stringMatch, presentMatch or rangeMatch). */
export interface HeaderMatcher {
  name?: string;
  rangeMatch?: Int64Range;
  presentMatch?: boolean;
  stringMatch?: StringMatcher;
  invertMatch?: boolean;
  treatMissingHeaderAsEmpty?: boolean;
}

/** `envoy.config.route.v3.QueryParameterMatcher`: a query parameter condition. */
export interface QueryParameterMatcher {
  name?: string;
  stringMatch?: StringMatcher;
  presentMatch?: boolean;
}

/** `envoy.config.route.v3.RouteAction`: forward to a cluster (or a weighted set), with policies. */
export interface RouteAction {
  cluster?: string;
  clusterHeader?: string;
  weightedClusters?: WeightedCluster;
  clusterNotFoundResponseCode?: 'SERVICE_UNAVAILABLE' | 'NOT_FOUND' | 'INTERNAL_SERVER_ERROR';
  metadataMatch?: Metadata;
  prefixRewrite?: string;
  regexRewrite?: RegexMatchAndSubstitute;
  hostRewriteLiteral?: string;
  autoHostRewrite?: boolean;
  hostRewriteHeader?: string;
  hostRewritePathRegex?: RegexMatchAndSubstitute;
  appendXForwardedHost?: boolean;
  timeout?: Duration;
  idleTimeout?: Duration;
  retryPolicy?: RetryPolicy;
  requestMirrorPolicies?: RequestMirrorPolicy[];
  priority?: 'DEFAULT' | 'HIGH';
  hashPolicy?: HashPolicy[];
  upgradeConfigs?: UpgradeConfig[];
  maxStreamDuration?: MaxStreamDuration;
}

/** `envoy.config.route.v3.RouteAction.UpgradeConfig`: allow an upgrade (e.g. websocket) on a route. */
export interface UpgradeConfig {
  upgradeType?: string;
  enabled?: boolean;
}

/** `envoy.config.route.v3.RouteAction.MaxStreamDuration`: stream duration limits (gRPC timeouts). */
export interface MaxStreamDuration {
  maxStreamDuration?: Duration;
  grpcTimeoutHeaderMax?: Duration;
  grpcTimeoutHeaderOffset?: Duration;
}

/** `envoy.config.route.v3.RouteAction.RequestMirrorPolicy`: shadow traffic to another cluster. */
export interface RequestMirrorPolicy {
  cluster?: string;
  clusterHeader?: string;
  runtimeFraction?: RuntimeFractionalPercent;
  traceSampled?: boolean;
  disableShadowHostSuffixAppend?: boolean;
}

/** `envoy.config.route.v3.RouteAction.HashPolicy`: input of a consistent-hash load balancer. */
export interface HashPolicy {
  header?: HashPolicyHeader;
  cookie?: HashPolicyCookie;
  connectionProperties?: HashPolicyConnectionProperties;
  queryParameter?: HashPolicyQueryParameter;
  filterState?: HashPolicyFilterState;
  terminal?: boolean;
}

/** `envoy.config.route.v3.RouteAction.HashPolicy.Header`: hash on a header. */
export interface HashPolicyHeader {
  headerName?: string;
  regexRewrite?: RegexMatchAndSubstitute;
}

/** `envoy.config.route.v3.RouteAction.HashPolicy.Cookie`: hash on a cookie (generated when ttl is set). */
export interface HashPolicyCookie {
  name?: string;
  ttl?: Duration;
  path?: string;
  attributes?: { name?: string; value?: string }[];
}

/** `envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties`: hash on the source IP. */
export interface HashPolicyConnectionProperties {
  sourceIp?: boolean;
}

/** `envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter`: hash on a query parameter. */
export interface HashPolicyQueryParameter {
  name?: string;
}

/** `envoy.config.route.v3.RouteAction.HashPolicy.FilterState`: hash on a filter-state object. */
export interface HashPolicyFilterState {
  key?: string;
}

/** `envoy.config.route.v3.WeightedCluster`: a weighted traffic split. */
export interface WeightedCluster {
  clusters?: ClusterWeight[];
  /** Deprecated: the sum of the weights is used. */
  totalWeight?: number;
  runtimeKeyPrefix?: string;
  headerName?: string;
}

/** `envoy.config.route.v3.WeightedCluster.ClusterWeight`: one destination of a split. */
export interface ClusterWeight {
  name?: string;
  clusterHeader?: string;
  weight?: number;
  metadataMatch?: Metadata;
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  typedPerFilterConfig?: TypedPerFilterConfig;
  hostRewriteLiteral?: string;
}

/** `envoy.config.route.v3.RetryPolicy`: when and how often to retry. */
export interface RetryPolicy {
  /** Comma-separated conditions, e.g. `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`. */
  retryOn?: string;
  numRetries?: number;
  perTryTimeout?: Duration;
  perTryIdleTimeout?: Duration;
  retryHostPredicate?: RetryHostPredicate[];
  /** How retries spread over priority levels (Istio's retryRemoteLocalities: previous_priorities). */
  retryPriority?: RetryPriority;
  hostSelectionRetryMaxAttempts?: Int64;
  retriableStatusCodes?: number[];
  retryBackOff?: RetryBackOff;
  retriableHeaders?: HeaderMatcher[];
  retriableRequestHeaders?: HeaderMatcher[];
}

/** `envoy.config.route.v3.RetryPolicy.RetryHostPredicate`: e.g. `envoy.retry_host_predicates.previous_hosts`. */
export interface RetryHostPredicate {
  name?: string;
  typedConfig?: AnyMessage;
}

/**
 * `envoy.config.route.v3.RetryPolicy.RetryPriority`: e.g. `envoy.retry_priorities.previous_priorities`
 * with a PreviousPrioritiesConfig (`updateFrequency`).
 */
export interface RetryPriority {
  name?: string;
  typedConfig?: AnyMessage;
}

/** `envoy.config.route.v3.RetryPolicy.RetryBackOff`: exponential back-off between retries. */
export interface RetryBackOff {
  baseInterval?: Duration;
  maxInterval?: Duration;
}

/** HTTP status of a redirect (envoy.config.route.v3.RedirectAction.RedirectResponseCode). */
export type RedirectResponseCode =
  'MOVED_PERMANENTLY' | 'FOUND' | 'SEE_OTHER' | 'TEMPORARY_REDIRECT' | 'PERMANENT_REDIRECT';

/** `envoy.config.route.v3.RedirectAction`: answer with a redirect. */
export interface RedirectAction {
  httpsRedirect?: boolean;
  schemeRedirect?: string;
  hostRedirect?: string;
  portRedirect?: number;
  pathRedirect?: string;
  prefixRewrite?: string;
  regexRewrite?: RegexMatchAndSubstitute;
  responseCode?: RedirectResponseCode;
  stripQuery?: boolean;
}

/** `envoy.config.route.v3.DirectResponseAction`: answer with a fixed status and body. */
export interface DirectResponseAction {
  status?: number;
  body?: DataSource;
}
