// What the Trellis proxy implements of Envoy's v3 API: one row per message type, listing the
// fields (proto names) the proxy acts on. A resource the proxy receives may only set fields
// listed here; any other field is reported with its exact path and the update is NACKed, so
// the proxy never silently ignores configuration it does not implement.
//
// The table must accept everything the Trellis control plane generates
// (packages/translate/test/golden, checked by test/xds-validate.test.ts) and each row must name
// real fields of the loaded protos (checked by the same test). Remove a row's field here when
// the code acting on it is removed; add one only together with the code that implements it.
import { compileRe2 } from './re2.js';
import { compileHeaderValue } from '../observability/access-log.js';

/** How the value of a supported field is checked. */
export type FieldRule =
  /** Any value: a scalar, an enum, a well-known type (Duration, wrappers) or a free-form Struct. */
  | true
  /** A message (singular or repeated) checked against the row of this full message name. */
  | string
  /** A `map<string, V>` whose values follow the rule. */
  | { readonly map: FieldRule }
  /** An enum restricted to these values. */
  | { readonly enum: readonly string[] }
  /**
   * A `google.protobuf.Any` holding one of these message types (full names). With
   * `optionalIf`, an unsupported type is accepted when that sibling boolean field is true
   * (Envoy's `is_optional` HTTP filters: the proxy skips the filter).
   */
  | { readonly any: readonly string[]; readonly optionalIf?: string }
  /** A scalar checked by a function (e.g. a regex that must compile). */
  | { readonly check: (value: unknown) => string | undefined };

/** A header value Envoy's header formatter would refuse (an unknown or malformed `%...%`). */
function headerValueProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const compiled = compileHeaderValue(v);
  return compiled.ok ? undefined : compiled.error;
}

/** A message row: supported fields by proto (snake_case) name. */
export type MessageRow = Readonly<Record<string, FieldRule>>;

const CORE = 'envoy.config.core.v3.';
const LST = 'envoy.config.listener.v3.';
const RT = 'envoy.config.route.v3.';
const CL = 'envoy.config.cluster.v3.';
const EP = 'envoy.config.endpoint.v3.';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.';
const TCP = 'envoy.extensions.filters.network.tcp_proxy.v3.';
const TLS = 'envoy.extensions.transport_sockets.tls.v3.';
const MATCH = 'envoy.type.matcher.v3.';
const TYPE = 'envoy.type.v3.';
const UPSTREAM_HTTP = 'envoy.extensions.upstreams.http.v3.';

/** Full message names of the typed configs the proxy implements. */
export const EXTENSION_TYPES = {
  httpConnectionManager: `${HCM}HttpConnectionManager`,
  tcpProxy: `${TCP}TcpProxy`,
  tlsInspector: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  httpInspector: 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  originalDst: 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  router: 'envoy.extensions.filters.http.router.v3.Router',
  fault: 'envoy.extensions.filters.http.fault.v3.HTTPFault',
  cors: 'envoy.extensions.filters.http.cors.v3.Cors',
  corsPolicy: 'envoy.extensions.filters.http.cors.v3.CorsPolicy',
  grpcStats: 'envoy.extensions.filters.http.grpc_stats.v3.FilterConfig',
  grpcWeb: 'envoy.extensions.filters.http.grpc_web.v3.GrpcWeb',
  upstreamTls: `${TLS}UpstreamTlsContext`,
  downstreamTls: `${TLS}DownstreamTlsContext`,
  rawBuffer: 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  httpProtocolOptions: `${UPSTREAM_HTTP}HttpProtocolOptions`,
  previousHosts: 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  previousPriorities:
    'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
  uuidRequestId: 'envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig',
  fileAccessLog: 'envoy.extensions.access_loggers.file.v3.FileAccessLog',
  stdoutAccessLog: 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  stderrAccessLog: 'envoy.extensions.access_loggers.stream.v3.StderrAccessLog',
} as const;

const X = EXTENSION_TYPES;

/** HTTP filters the proxy implements (by typed_config type). */
export const HTTP_FILTER_TYPES: readonly string[] = [
  X.router,
  X.fault,
  X.cors,
  X.grpcStats,
  X.grpcWeb,
];

/** Per-route filter configs (typed_per_filter_config values) the proxy implements. */
export const PER_ROUTE_FILTER_TYPES: readonly string[] = [X.fault, X.corsPolicy];

/**
 * Extension names Envoy resolves when a filter has no typed_config (the empty-config
 * extensions), mapped to their config type.
 */
export const EXTENSION_NAMES: Readonly<Record<string, string>> = {
  'envoy.filters.listener.tls_inspector': X.tlsInspector,
  'envoy.filters.listener.http_inspector': X.httpInspector,
  'envoy.filters.listener.original_dst': X.originalDst,
  'envoy.filters.http.router': X.router,
  'envoy.filters.http.cors': X.cors,
  'envoy.filters.http.grpc_web': X.grpcWeb,
  'envoy.transport_sockets.raw_buffer': X.rawBuffer,
  'envoy.retry_host_predicates.previous_hosts': X.previousHosts,
};

/** The key Envoy reads HTTP upstream options from in `typed_extension_protocol_options`. */
export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const perFilterConfig: FieldRule = { map: { any: PER_ROUTE_FILTER_TYPES } };
const headers = `${CORE}HeaderValueOption`;

/** The supported fields of every message type the proxy reads, by full message name. */
export const SUPPORTED_FIELDS: Readonly<Record<string, MessageRow>> = {
  // ---- Listener (LDS)
  [`${LST}Listener`]: {
    name: true,
    address: `${CORE}Address`,
    stat_prefix: true,
    filter_chains: `${LST}FilterChain`,
    default_filter_chain: `${LST}FilterChain`,
    use_original_dst: true,
    per_connection_buffer_limit_bytes: true,
    metadata: `${CORE}Metadata`,
    listener_filters: `${LST}ListenerFilter`,
    listener_filters_timeout: true,
    continue_on_listener_filters_timeout: true,
    traffic_direction: true,
    access_log: 'envoy.config.accesslog.v3.AccessLog',
    bind_to_port: true,
    api_listener: `${LST}ApiListener`,
  },
  [`${LST}ApiListener`]: { api_listener: { any: [X.httpConnectionManager] } },
  [`${LST}FilterChain`]: {
    filter_chain_match: `${LST}FilterChainMatch`,
    filters: `${LST}Filter`,
    transport_socket: `${CORE}TransportSocket`,
    transport_socket_connect_timeout: true,
    name: true,
    metadata: `${CORE}Metadata`,
  },
  [`${LST}FilterChainMatch`]: {
    destination_port: true,
    prefix_ranges: `${CORE}CidrRange`,
    direct_source_prefix_ranges: `${CORE}CidrRange`,
    source_type: true,
    source_prefix_ranges: `${CORE}CidrRange`,
    source_ports: true,
    server_names: true,
    transport_protocol: true,
    application_protocols: true,
  },
  [`${LST}Filter`]: { name: true, typed_config: { any: [X.httpConnectionManager, X.tcpProxy] } },
  [`${LST}ListenerFilter`]: {
    name: true,
    typed_config: { any: [X.tlsInspector, X.httpInspector, X.originalDst] },
    filter_disabled: `${LST}ListenerFilterChainMatchPredicate`,
  },
  [`${LST}ListenerFilterChainMatchPredicate`]: {
    or_match: `${LST}ListenerFilterChainMatchPredicate.MatchSet`,
    and_match: `${LST}ListenerFilterChainMatchPredicate.MatchSet`,
    not_match: `${LST}ListenerFilterChainMatchPredicate`,
    any_match: true,
    destination_port_range: `${TYPE}Int32Range`,
  },
  [`${LST}ListenerFilterChainMatchPredicate.MatchSet`]: {
    rules: `${LST}ListenerFilterChainMatchPredicate`,
  },
  [X.tlsInspector]: {},
  [X.httpInspector]: {},
  [X.originalDst]: {},

  // ---- Network filters
  [X.httpConnectionManager]: {
    codec_type: { enum: ['AUTO', 'HTTP1', 'HTTP2'] },
    stat_prefix: true,
    rds: `${HCM}Rds`,
    route_config: `${RT}RouteConfiguration`,
    http_filters: `${HCM}HttpFilter`,
    common_http_protocol_options: `${CORE}HttpProtocolOptions`,
    http_protocol_options: `${CORE}Http1ProtocolOptions`,
    http2_protocol_options: `${CORE}Http2ProtocolOptions`,
    server_name: true,
    server_header_transformation: true,
    stream_idle_timeout: true,
    request_timeout: true,
    request_headers_timeout: true,
    drain_timeout: true,
    delayed_close_timeout: true,
    access_log: 'envoy.config.accesslog.v3.AccessLog',
    use_remote_address: true,
    xff_num_trusted_hops: true,
    skip_xff_append: true,
    via: true,
    generate_request_id: true,
    preserve_external_request_id: true,
    always_set_request_id_in_response: true,
    forward_client_cert_details: true,
    set_current_client_cert_details: `${HCM}HttpConnectionManager.SetCurrentClientCertDetails`,
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: true,
    request_id_extension: `${HCM}RequestIDExtension`,
    strip_matching_host_port: true,
    strip_any_host_port: true,
    upgrade_configs: `${HCM}HttpConnectionManager.UpgradeConfig`,
    max_request_headers_kb: true,
  },
  [`${HCM}HttpConnectionManager.SetCurrentClientCertDetails`]: {
    subject: true,
    cert: true,
    chain: true,
    dns: true,
    uri: true,
  },
  [`${HCM}HttpConnectionManager.UpgradeConfig`]: { upgrade_type: true, enabled: true },
  [`${HCM}Rds`]: { config_source: `${CORE}ConfigSource`, route_config_name: true },
  [`${HCM}HttpFilter`]: {
    name: true,
    typed_config: { any: HTTP_FILTER_TYPES, optionalIf: 'is_optional' },
    is_optional: true,
  },
  [`${HCM}RequestIDExtension`]: { typed_config: { any: [X.uuidRequestId] } },
  [X.uuidRequestId]: { pack_trace_reason: true, use_request_id_for_trace_sampling: true },
  [X.tcpProxy]: {
    stat_prefix: true,
    cluster: true,
    weighted_clusters: `${TCP}TcpProxy.WeightedCluster`,
    idle_timeout: true,
    access_log: 'envoy.config.accesslog.v3.AccessLog',
    max_connect_attempts: true,
    max_downstream_connection_duration: true,
  },
  [`${TCP}TcpProxy.WeightedCluster`]: { clusters: `${TCP}TcpProxy.WeightedCluster.ClusterWeight` },
  [`${TCP}TcpProxy.WeightedCluster.ClusterWeight`]: { name: true, weight: true },

  // ---- HTTP filters
  [X.router]: { dynamic_stats: true, suppress_envoy_headers: true },
  [X.fault]: {
    delay: 'envoy.extensions.filters.common.fault.v3.FaultDelay',
    abort: 'envoy.extensions.filters.http.fault.v3.FaultAbort',
    headers: `${RT}HeaderMatcher`,
    max_active_faults: true,
    upstream_cluster: true,
  },
  'envoy.extensions.filters.common.fault.v3.FaultDelay': {
    fixed_delay: true,
    percentage: `${TYPE}FractionalPercent`,
  },
  'envoy.extensions.filters.http.fault.v3.FaultAbort': {
    http_status: true,
    grpc_status: true,
    percentage: `${TYPE}FractionalPercent`,
  },
  [X.cors]: {},
  [X.grpcWeb]: {},
  [X.corsPolicy]: {
    allow_origin_string_match: `${MATCH}StringMatcher`,
    allow_methods: true,
    allow_headers: true,
    expose_headers: true,
    max_age: true,
    allow_credentials: true,
    filter_enabled: `${CORE}RuntimeFractionalPercent`,
    shadow_enabled: `${CORE}RuntimeFractionalPercent`,
    allow_private_network_access: true,
    forward_not_matching_preflights: true,
  },
  [X.grpcStats]: {
    emit_filter_state: true,
    stats_for_all_methods: true,
    enable_upstream_stats: true,
    replace_dots_in_grpc_service_name: true,
  },

  // ---- Access logs
  'envoy.config.accesslog.v3.AccessLog': {
    name: true,
    typed_config: { any: [X.fileAccessLog, X.stdoutAccessLog, X.stderrAccessLog] },
  },
  [X.fileAccessLog]: { path: true, log_format: `${CORE}SubstitutionFormatString` },
  [X.stdoutAccessLog]: { log_format: `${CORE}SubstitutionFormatString` },
  [X.stderrAccessLog]: { log_format: `${CORE}SubstitutionFormatString` },
  [`${CORE}SubstitutionFormatString`]: {
    text_format_source: `${CORE}DataSource`,
    json_format: true,
    omit_empty_values: true,
    content_type: true,
  },

  // ---- Routes (RDS)
  [`${RT}RouteConfiguration`]: {
    name: true,
    virtual_hosts: `${RT}VirtualHost`,
    internal_only_headers: true,
    response_headers_to_add: headers,
    response_headers_to_remove: true,
    request_headers_to_add: headers,
    request_headers_to_remove: true,
    most_specific_header_mutations_wins: true,
    validate_clusters: true,
    max_direct_response_body_size_bytes: true,
    ignore_port_in_host_matching: true,
  },
  [`${RT}VirtualHost`]: {
    name: true,
    domains: true,
    routes: `${RT}Route`,
    require_tls: true,
    request_headers_to_add: headers,
    request_headers_to_remove: true,
    response_headers_to_add: headers,
    response_headers_to_remove: true,
    typed_per_filter_config: perFilterConfig,
    include_request_attempt_count: true,
    include_attempt_count_in_response: true,
    retry_policy: `${RT}RetryPolicy`,
    per_request_buffer_limit_bytes: true,
  },
  [`${RT}Route`]: {
    name: true,
    match: `${RT}RouteMatch`,
    route: `${RT}RouteAction`,
    redirect: `${RT}RedirectAction`,
    direct_response: `${RT}DirectResponseAction`,
    non_forwarding_action: true,
    metadata: `${CORE}Metadata`,
    decorator: `${RT}Decorator`,
    typed_per_filter_config: perFilterConfig,
    request_headers_to_add: headers,
    request_headers_to_remove: true,
    response_headers_to_add: headers,
    response_headers_to_remove: true,
    stat_prefix: true,
    per_request_buffer_limit_bytes: true,
  },
  [`${RT}Decorator`]: { operation: true, propagate: true },
  [`${RT}RouteMatch`]: {
    prefix: true,
    path: true,
    safe_regex: `${MATCH}RegexMatcher`,
    path_separated_prefix: true,
    case_sensitive: true,
    headers: `${RT}HeaderMatcher`,
    query_parameters: `${RT}QueryParameterMatcher`,
    grpc: true,
    connect_matcher: `${RT}RouteMatch.ConnectMatcher`,
  },
  [`${RT}RouteMatch.ConnectMatcher`]: {},
  [`${RT}HeaderMatcher`]: {
    name: true,
    string_match: `${MATCH}StringMatcher`,
    present_match: true,
    range_match: `${TYPE}Int64Range`,
    invert_match: true,
    treat_missing_header_as_empty: true,
  },
  [`${RT}QueryParameterMatcher`]: {
    name: true,
    string_match: `${MATCH}StringMatcher`,
    present_match: true,
  },
  [`${RT}RouteAction`]: {
    cluster: true,
    cluster_header: true,
    weighted_clusters: `${RT}WeightedCluster`,
    cluster_not_found_response_code: true,
    prefix_rewrite: true,
    regex_rewrite: `${MATCH}RegexMatchAndSubstitute`,
    host_rewrite_literal: true,
    auto_host_rewrite: true,
    host_rewrite_header: true,
    append_x_forwarded_host: true,
    timeout: true,
    idle_timeout: true,
    retry_policy: `${RT}RetryPolicy`,
    request_mirror_policies: `${RT}RouteAction.RequestMirrorPolicy`,
    hash_policy: `${RT}RouteAction.HashPolicy`,
    upgrade_configs: `${RT}RouteAction.UpgradeConfig`,
    max_stream_duration: `${RT}RouteAction.MaxStreamDuration`,
  },
  [`${RT}RouteAction.UpgradeConfig`]: {
    upgrade_type: true,
    enabled: true,
    // CONNECT termination (the router terminates every CONNECT it routes); its options are not.
    connect_config: `${RT}RouteAction.UpgradeConfig.ConnectConfig`,
  },
  [`${RT}RouteAction.UpgradeConfig.ConnectConfig`]: {},
  [`${RT}RouteAction.MaxStreamDuration`]: {
    max_stream_duration: true,
    grpc_timeout_header_max: true,
    grpc_timeout_header_offset: true,
  },
  [`${RT}RouteAction.RequestMirrorPolicy`]: {
    cluster: true,
    runtime_fraction: `${CORE}RuntimeFractionalPercent`,
    trace_sampled: true,
    disable_shadow_host_suffix_append: true,
  },
  [`${RT}RouteAction.HashPolicy`]: {
    header: `${RT}RouteAction.HashPolicy.Header`,
    cookie: `${RT}RouteAction.HashPolicy.Cookie`,
    connection_properties: `${RT}RouteAction.HashPolicy.ConnectionProperties`,
    query_parameter: `${RT}RouteAction.HashPolicy.QueryParameter`,
    terminal: true,
  },
  [`${RT}RouteAction.HashPolicy.Header`]: {
    header_name: true,
    regex_rewrite: `${MATCH}RegexMatchAndSubstitute`,
  },
  [`${RT}RouteAction.HashPolicy.Cookie`]: {
    name: true,
    ttl: true,
    path: true,
    attributes: `${RT}RouteAction.HashPolicy.CookieAttribute`,
  },
  [`${RT}RouteAction.HashPolicy.CookieAttribute`]: { name: true, value: true },
  [`${RT}RouteAction.HashPolicy.ConnectionProperties`]: { source_ip: true },
  [`${RT}RouteAction.HashPolicy.QueryParameter`]: { name: true },
  [`${RT}WeightedCluster`]: {
    clusters: `${RT}WeightedCluster.ClusterWeight`,
    total_weight: true,
  },
  [`${RT}WeightedCluster.ClusterWeight`]: {
    name: true,
    weight: true,
    request_headers_to_add: headers,
    request_headers_to_remove: true,
    response_headers_to_add: headers,
    response_headers_to_remove: true,
    typed_per_filter_config: perFilterConfig,
    host_rewrite_literal: true,
  },
  [`${RT}RetryPolicy`]: {
    retry_on: true,
    num_retries: true,
    per_try_timeout: true,
    per_try_idle_timeout: true,
    retry_host_predicate: `${RT}RetryPolicy.RetryHostPredicate`,
    retry_priority: `${RT}RetryPolicy.RetryPriority`,
    host_selection_retry_max_attempts: true,
    retriable_status_codes: true,
    retry_back_off: `${RT}RetryPolicy.RetryBackOff`,
    retriable_headers: `${RT}HeaderMatcher`,
    retriable_request_headers: `${RT}HeaderMatcher`,
  },
  [`${RT}RetryPolicy.RetryHostPredicate`]: {
    name: true,
    typed_config: { any: [X.previousHosts] },
  },
  [X.previousHosts]: {},
  [`${RT}RetryPolicy.RetryPriority`]: {
    name: true,
    typed_config: { any: [X.previousPriorities] },
  },
  [X.previousPriorities]: { update_frequency: true },
  [`${RT}RetryPolicy.RetryBackOff`]: { base_interval: true, max_interval: true },
  [`${RT}RedirectAction`]: {
    https_redirect: true,
    scheme_redirect: true,
    host_redirect: true,
    port_redirect: true,
    path_redirect: true,
    prefix_rewrite: true,
    regex_rewrite: `${MATCH}RegexMatchAndSubstitute`,
    response_code: true,
    strip_query: true,
  },
  [`${RT}DirectResponseAction`]: { status: true, body: `${CORE}DataSource` },

  // ---- Matchers and small shared types
  [`${MATCH}StringMatcher`]: {
    exact: true,
    prefix: true,
    suffix: true,
    safe_regex: `${MATCH}RegexMatcher`,
    contains: true,
    ignore_case: true,
  },
  [`${MATCH}RegexMatcher`]: { regex: { check: (v) => checkRegex(v) }, google_re2: true },
  [`${MATCH}RegexMatchAndSubstitute`]: {
    pattern: `${MATCH}RegexMatcher`,
    substitution: true,
  },
  [`${TYPE}FractionalPercent`]: { numerator: true, denominator: true },
  [`${TYPE}Percent`]: { value: true },
  [`${TYPE}Int32Range`]: { start: true, end: true },
  [`${TYPE}Int64Range`]: { start: true, end: true },
  [`${CORE}Address`]: { socket_address: `${CORE}SocketAddress`, pipe: `${CORE}Pipe` },
  [`${CORE}SocketAddress`]: {
    protocol: { enum: ['TCP'] },
    address: true,
    port_value: true,
    ipv4_compat: true,
  },
  [`${CORE}Pipe`]: { path: true, mode: true },
  [`${CORE}CidrRange`]: { address_prefix: true, prefix_len: true },
  [`${CORE}Metadata`]: { filter_metadata: true },
  [`${CORE}Locality`]: { region: true, zone: true, sub_zone: true },
  [`${CORE}HeaderValueOption`]: {
    header: `${CORE}HeaderValue`,
    append: true,
    append_action: true,
    keep_empty_value: true,
  },
  // Values are format strings (http/header-mutation.ts): one that does not parse, or names an
  // operator Trellis does not know, is rejected rather than sent as text.
  [`${CORE}HeaderValue`]: {
    key: true,
    value: { check: (v) => headerValueProblem(v) },
    raw_value: true,
  },
  [`${CORE}DataSource`]: { filename: true, inline_bytes: true, inline_string: true },
  [`${CORE}RuntimeFractionalPercent`]: {
    default_value: `${TYPE}FractionalPercent`,
    runtime_key: true,
  },
  [`${CORE}RuntimeDouble`]: { default_value: true, runtime_key: true },
  [`${CORE}ConfigSource`]: {
    ads: true,
    initial_fetch_timeout: true,
    resource_api_version: { enum: ['AUTO', 'V3'] },
  },
  [`${CORE}TransportSocket`]: {
    name: true,
    typed_config: { any: [X.upstreamTls, X.downstreamTls, X.rawBuffer] },
  },
  [X.rawBuffer]: {},
  [`${CORE}HttpProtocolOptions`]: {
    idle_timeout: true,
    max_connection_duration: true,
    max_headers_count: true,
    max_stream_duration: true,
    headers_with_underscores_action: true,
    max_requests_per_connection: true,
  },
  [`${CORE}Http1ProtocolOptions`]: {
    allow_absolute_url: true,
    accept_http_10: true,
    default_host_for_http_10: true,
    allow_chunked_length: true,
  },
  [`${CORE}Http2ProtocolOptions`]: {
    hpack_table_size: true,
    max_concurrent_streams: true,
    initial_stream_window_size: true,
    initial_connection_window_size: true,
    allow_connect: true,
  },
  [`${CORE}UpstreamHttpProtocolOptions`]: {
    auto_sni: true,
    auto_san_validation: true,
    override_auto_sni_header: true,
  },
  [`${CORE}TcpKeepalive`]: {
    keepalive_probes: true,
    keepalive_time: true,
    keepalive_interval: true,
  },
  [`${CORE}BindConfig`]: { source_address: `${CORE}SocketAddress` },

  // ---- Clusters (CDS)
  [`${CL}Cluster`]: {
    name: true,
    alt_stat_name: true,
    type: { enum: ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'] },
    eds_cluster_config: `${CL}Cluster.EdsClusterConfig`,
    connect_timeout: true,
    per_connection_buffer_limit_bytes: true,
    lb_policy: {
      enum: ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED'],
    },
    load_assignment: `${EP}ClusterLoadAssignment`,
    circuit_breakers: `${CL}CircuitBreakers`,
    typed_extension_protocol_options: { map: { any: [X.httpProtocolOptions] } },
    dns_refresh_rate: true,
    respect_dns_ttl: true,
    dns_lookup_family: true,
    outlier_detection: `${CL}OutlierDetection`,
    cleanup_interval: true,
    upstream_bind_config: `${CORE}BindConfig`,
    ring_hash_lb_config: `${CL}Cluster.RingHashLbConfig`,
    maglev_lb_config: `${CL}Cluster.MaglevLbConfig`,
    original_dst_lb_config: `${CL}Cluster.OriginalDstLbConfig`,
    least_request_lb_config: `${CL}Cluster.LeastRequestLbConfig`,
    round_robin_lb_config: `${CL}Cluster.RoundRobinLbConfig`,
    common_lb_config: `${CL}Cluster.CommonLbConfig`,
    transport_socket: `${CORE}TransportSocket`,
    transport_socket_matches: `${CL}Cluster.TransportSocketMatch`,
    metadata: `${CORE}Metadata`,
    upstream_connection_options: `${CL}UpstreamConnectionOptions`,
  },
  [`${CL}Cluster.EdsClusterConfig`]: { eds_config: `${CORE}ConfigSource`, service_name: true },
  [`${CL}Cluster.TransportSocketMatch`]: {
    name: true,
    match: true,
    transport_socket: `${CORE}TransportSocket`,
  },
  // Enforced by upstream/resource-manager.ts (DEFAULT priority; routes cannot ask for HIGH).
  [`${CL}CircuitBreakers`]: { thresholds: `${CL}CircuitBreakers.Thresholds` },
  [`${CL}CircuitBreakers.Thresholds`]: {
    priority: true,
    max_connections: true,
    max_pending_requests: true,
    max_requests: true,
    max_retries: true,
    retry_budget: `${CL}CircuitBreakers.Thresholds.RetryBudget`,
    track_remaining: true,
  },
  [`${CL}CircuitBreakers.Thresholds.RetryBudget`]: {
    budget_percent: `${TYPE}Percent`,
    min_retry_concurrency: true,
  },
  // upstream/outlier-detection.ts.
  [`${CL}OutlierDetection`]: {
    consecutive_5xx: true,
    interval: true,
    base_ejection_time: true,
    max_ejection_percent: true,
    enforcing_consecutive_5xx: true,
    enforcing_success_rate: true,
    success_rate_minimum_hosts: true,
    success_rate_request_volume: true,
    success_rate_stdev_factor: true,
    consecutive_gateway_failure: true,
    enforcing_consecutive_gateway_failure: true,
    split_external_local_origin_errors: true,
    consecutive_local_origin_failure: true,
    enforcing_consecutive_local_origin_failure: true,
    enforcing_local_origin_success_rate: true,
    failure_percentage_threshold: true,
    enforcing_failure_percentage: true,
    enforcing_failure_percentage_local_origin: true,
    failure_percentage_minimum_hosts: true,
    failure_percentage_request_volume: true,
    max_ejection_time: true,
  },
  [`${CL}Cluster.CommonLbConfig`]: {
    healthy_panic_threshold: `${TYPE}Percent`,
    locality_weighted_lb_config: true,
    zone_aware_lb_config: `${CL}Cluster.CommonLbConfig.ZoneAwareLbConfig`,
  },
  [`${CL}Cluster.CommonLbConfig.ZoneAwareLbConfig`]: {
    routing_enabled: `${TYPE}Percent`,
    min_cluster_size: true,
    fail_traffic_on_panic: true,
  },
  [`${CL}Cluster.RingHashLbConfig`]: {
    minimum_ring_size: true,
    maximum_ring_size: true,
    hash_function: true,
  },
  [`${CL}Cluster.MaglevLbConfig`]: { table_size: true },
  [`${CL}Cluster.OriginalDstLbConfig`]: {
    use_http_header: true,
    http_header_name: true,
    upstream_port_override: true,
  },
  [`${CL}Cluster.LeastRequestLbConfig`]: {
    choice_count: true,
    active_request_bias: `${CORE}RuntimeDouble`,
    slow_start_config: `${CL}Cluster.SlowStartConfig`,
  },
  [`${CL}Cluster.RoundRobinLbConfig`]: { slow_start_config: `${CL}Cluster.SlowStartConfig` },
  [`${CL}Cluster.SlowStartConfig`]: {
    slow_start_window: true,
    aggression: `${CORE}RuntimeDouble`,
    min_weight_percent: `${TYPE}Percent`,
  },
  [`${CL}UpstreamConnectionOptions`]: { tcp_keepalive: `${CORE}TcpKeepalive` },
  [X.httpProtocolOptions]: {
    common_http_protocol_options: `${CORE}HttpProtocolOptions`,
    upstream_http_protocol_options: `${CORE}UpstreamHttpProtocolOptions`,
    explicit_http_config: `${UPSTREAM_HTTP}HttpProtocolOptions.ExplicitHttpConfig`,
    use_downstream_protocol_config: `${UPSTREAM_HTTP}HttpProtocolOptions.UseDownstreamHttpConfig`,
    auto_config: `${UPSTREAM_HTTP}HttpProtocolOptions.AutoHttpConfig`,
  },
  [`${UPSTREAM_HTTP}HttpProtocolOptions.ExplicitHttpConfig`]: {
    http_protocol_options: `${CORE}Http1ProtocolOptions`,
    http2_protocol_options: `${CORE}Http2ProtocolOptions`,
  },
  [`${UPSTREAM_HTTP}HttpProtocolOptions.UseDownstreamHttpConfig`]: {
    http_protocol_options: `${CORE}Http1ProtocolOptions`,
    http2_protocol_options: `${CORE}Http2ProtocolOptions`,
  },
  [`${UPSTREAM_HTTP}HttpProtocolOptions.AutoHttpConfig`]: {
    http_protocol_options: `${CORE}Http1ProtocolOptions`,
    http2_protocol_options: `${CORE}Http2ProtocolOptions`,
  },

  // ---- Endpoints (EDS)
  [`${EP}ClusterLoadAssignment`]: {
    cluster_name: true,
    endpoints: `${EP}LocalityLbEndpoints`,
    policy: `${EP}ClusterLoadAssignment.Policy`,
  },
  [`${EP}ClusterLoadAssignment.Policy`]: {
    overprovisioning_factor: true,
    weighted_priority_health: true,
  },
  [`${EP}LocalityLbEndpoints`]: {
    locality: `${CORE}Locality`,
    lb_endpoints: `${EP}LbEndpoint`,
    load_balancing_weight: true,
    priority: true,
  },
  [`${EP}LbEndpoint`]: {
    endpoint: `${EP}Endpoint`,
    health_status: true,
    metadata: `${CORE}Metadata`,
    load_balancing_weight: true,
  },
  [`${EP}Endpoint`]: { address: `${CORE}Address`, hostname: true },

  // ---- TLS (tls/): everything else of the TLS messages (private_key_provider, ocsp_staple,
  // session tickets, custom_validator_config, watched_directory, ...) is NACKed.
  [`${TLS}Secret`]: {
    name: true,
    tls_certificate: `${TLS}TlsCertificate`,
    validation_context: `${TLS}CertificateValidationContext`,
  },
  [X.upstreamTls]: { common_tls_context: `${TLS}CommonTlsContext`, sni: true },
  [X.downstreamTls]: {
    common_tls_context: `${TLS}CommonTlsContext`,
    require_client_certificate: true,
    require_sni: true,
  },
  [`${TLS}CommonTlsContext`]: {
    tls_params: `${TLS}TlsParameters`,
    tls_certificates: `${TLS}TlsCertificate`,
    tls_certificate_sds_secret_configs: `${TLS}SdsSecretConfig`,
    tls_certificate_provider_instance: `${TLS}CertificateProviderPluginInstance`,
    validation_context: `${TLS}CertificateValidationContext`,
    validation_context_sds_secret_config: `${TLS}SdsSecretConfig`,
    combined_validation_context: `${TLS}CommonTlsContext.CombinedCertificateValidationContext`,
    alpn_protocols: true,
  },
  [`${TLS}CommonTlsContext.CombinedCertificateValidationContext`]: {
    default_validation_context: `${TLS}CertificateValidationContext`,
    validation_context_sds_secret_config: `${TLS}SdsSecretConfig`,
  },
  [`${TLS}TlsParameters`]: {
    tls_minimum_protocol_version: true,
    tls_maximum_protocol_version: true,
    cipher_suites: true,
    ecdh_curves: true,
    signature_algorithms: true,
  },
  [`${TLS}TlsCertificate`]: {
    certificate_chain: `${CORE}DataSource`,
    private_key: `${CORE}DataSource`,
    password: `${CORE}DataSource`,
  },
  [`${TLS}SdsSecretConfig`]: { name: true, sds_config: `${CORE}ConfigSource` },
  [`${TLS}CertificateProviderPluginInstance`]: { instance_name: true, certificate_name: true },
  [`${TLS}CertificateValidationContext`]: {
    trusted_ca: `${CORE}DataSource`,
    match_subject_alt_names: `${MATCH}StringMatcher`,
    match_typed_subject_alt_names: `${TLS}SubjectAltNameMatcher`,
    ca_certificate_provider_instance: `${TLS}CertificateProviderPluginInstance`,
    crl: `${CORE}DataSource`,
    verify_certificate_spki: true,
    verify_certificate_hash: true,
    allow_expired_certificate: true,
    trust_chain_verification: true,
  },
  [`${TLS}SubjectAltNameMatcher`]: { san_type: true, matcher: `${MATCH}StringMatcher` },
};

function checkRegex(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const r = compileRe2(v);
  return r.ok ? undefined : r.error;
}
