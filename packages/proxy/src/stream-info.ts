// What the proxy records about one downstream request or TCP connection (Envoy's StreamInfo):
// filled in by the listener, connection manager and router, read by access logs and metrics.

/** Envoy's response flags: short name (as in access logs) by long name. */
export const RESPONSE_FLAGS = {
  FAILED_LOCAL_HEALTH_CHECK: 'LH',
  NO_HEALTHY_UPSTREAM: 'UH',
  UPSTREAM_REQUEST_TIMEOUT: 'UT',
  LOCAL_RESET: 'LR',
  UPSTREAM_REMOTE_RESET: 'UR',
  UPSTREAM_CONNECTION_FAILURE: 'UF',
  UPSTREAM_CONNECTION_TERMINATION: 'UC',
  UPSTREAM_OVERFLOW: 'UO',
  NO_ROUTE_FOUND: 'NR',
  DELAY_INJECTED: 'DI',
  FAULT_INJECTED: 'FI',
  RATE_LIMITED: 'RL',
  UNAUTHORIZED_EXTERNAL_SERVICE: 'UAEX',
  RATELIMIT_SERVICE_ERROR: 'RLSE',
  DOWNSTREAM_CONNECTION_TERMINATION: 'DC',
  UPSTREAM_RETRY_LIMIT_EXCEEDED: 'URX',
  STREAM_IDLE_TIMEOUT: 'SI',
  INVALID_ENVOY_REQUEST_HEADERS: 'IH',
  DOWNSTREAM_PROTOCOL_ERROR: 'DPE',
  UPSTREAM_MAX_STREAM_DURATION_REACHED: 'UMSDR',
  RESPONSE_FROM_CACHE_FILTER: 'RFCF',
  NO_FILTER_CONFIG_FOUND: 'NFCF',
  DURATION_TIMEOUT: 'DT',
  UPSTREAM_PROTOCOL_ERROR: 'UPE',
  NO_CLUSTER_FOUND: 'NC',
  OVERLOAD_MANAGER: 'OM',
  DNS_RESOLUTION_FAILURE: 'DF',
  DROP_OVERLOAD: 'DO',
  DOWNSTREAM_REMOTE_RESET: 'DR',
} as const;

export type ResponseFlag = (typeof RESPONSE_FLAGS)[keyof typeof RESPONSE_FLAGS];

/** One request (HTTP) or connection (TCP) as seen by the proxy. Mutable while it runs. */
export interface StreamInfo {
  /** Wall-clock start, ms since the epoch. */
  startTime: number;
  /** Monotonic start (performance.now()), for durations. */
  startMono: number;
  /** Set when the stream ends: total duration in ms. */
  durationMs?: number;
  protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2' | 'TCP';
  /** Listener that accepted it, and the filter chain chosen. */
  listenerName: string;
  filterChainName?: string;
  /** 'inbound' | 'outbound' (the listener's traffic direction), for Istio's reporter. */
  direction: 'inbound' | 'outbound' | 'unspecified';
  downstreamRemoteAddress: string;
  downstreamLocalAddress: string;
  /** SNI the client sent, if TLS. */
  requestedServerName?: string;
  // HTTP only
  method?: string;
  /** Path as received (`:path`), before rewrites. */
  path?: string;
  authority?: string;
  scheme?: string;
  userAgent?: string;
  xForwardedFor?: string;
  requestId?: string;
  /** The route's name, when one matched. */
  routeName?: string;
  /** Final status sent downstream (0 when none was). */
  responseCode: number;
  /** Envoy's response code details, e.g. `route_not_found`, `via_upstream`. */
  responseCodeDetails?: string;
  grpcStatus?: number;
  readonly responseFlags: Set<ResponseFlag>;
  /** Bytes of body (HTTP) or payload (TCP) received from / sent to downstream. */
  bytesReceived: number;
  bytesSent: number;
  // Upstream
  upstreamCluster?: string;
  /** `ip:port` of the chosen upstream host. */
  upstreamHost?: string;
  upstreamLocalAddress?: string;
  upstreamTransportFailureReason?: string;
  /** Why the downstream TLS handshake failed (`%DOWNSTREAM_TRANSPORT_FAILURE_REASON%`). */
  downstreamTransportFailureReason?: string;
  /** Time from the request's start to the upstream response headers (x-envoy-upstream-service-time). */
  upstreamServiceTimeMs?: number;
  /** Attempts made upstream (1 without retries). */
  attemptCount: number;
  connectionTerminationDetails?: string;
  /**
   * Why the proxy closed the downstream connection itself (`%DOWNSTREAM_LOCAL_CLOSE_REASON%`),
   * e.g. `tcp_initializion_failure:3`, `tcp_session_idle_timeout` (added by the listener helper).
   */
  downstreamLocalCloseReason?: string;
  /** Free-form values for access-log operators (e.g. `%DYNAMIC_METADATA%`), by key. */
  readonly metadata: Map<string, unknown>;
}

export function newStreamInfo(
  init: Pick<
    StreamInfo,
    'protocol' | 'listenerName' | 'direction' | 'downstreamRemoteAddress' | 'downstreamLocalAddress'
  >,
  now: number = Date.now(),
  mono: number = performance.now(),
): StreamInfo {
  // An explicit literal (not a spread of `init`): one object shape for every stream, which keeps
  // the access-log and metrics reads monomorphic and the allocation cheap.
  return {
    protocol: init.protocol,
    listenerName: init.listenerName,
    direction: init.direction,
    downstreamRemoteAddress: init.downstreamRemoteAddress,
    downstreamLocalAddress: init.downstreamLocalAddress,
    startTime: now,
    startMono: mono,
    responseCode: 0,
    responseFlags: new Set(),
    bytesReceived: 0,
    bytesSent: 0,
    attemptCount: 0,
    metadata: new Map(),
  };
}

/** The flags as Envoy prints them in `%RESPONSE_FLAGS%`: comma-separated, `-` when none. */
export function formatResponseFlags(flags: ReadonlySet<ResponseFlag>): string {
  if (flags.size === 0) return '-';
  const order = Object.values(RESPONSE_FLAGS) as string[];
  return [...flags].sort((a, b) => order.indexOf(a) - order.indexOf(b)).join(',');
}
