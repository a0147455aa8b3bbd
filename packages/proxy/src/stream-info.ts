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

/** Short names in Envoy's order (the order `%RESPONSE_FLAGS%` prints them); bit i is FLAG_ORDER[i]. */
const FLAG_ORDER: readonly ResponseFlag[] = Object.values(RESPONSE_FLAGS);
const FLAG_BIT = new Map<string, number>(FLAG_ORDER.map((f, i) => [f, 1 << i]));

/**
 * The response flags of one stream: a Set of short names with Set's API, stored as a bitmask (no
 * allocation per stream). Iterates in Envoy's order (as `%RESPONSE_FLAGS%` prints them).
 */
export class ResponseFlagSet implements ReadonlySet<ResponseFlag> {
  #bits = 0;

  /** The flags as a bitmask (bit i: the i-th entry of RESPONSE_FLAGS), e.g. for cache keys. */
  get bits(): number {
    return this.#bits;
  }

  get size(): number {
    let n = 0;
    for (let b = this.#bits; b !== 0; b &= b - 1) n++;
    return n;
  }

  add(flag: ResponseFlag): this {
    this.#bits |= FLAG_BIT.get(flag) ?? 0;
    return this;
  }

  has(flag: ResponseFlag): boolean {
    const bit = FLAG_BIT.get(flag);
    return bit !== undefined && (this.#bits & bit) !== 0;
  }

  delete(flag: ResponseFlag): boolean {
    const had = this.has(flag);
    if (had) this.#bits &= ~(FLAG_BIT.get(flag) as number);
    return had;
  }

  clear(): void {
    this.#bits = 0;
  }

  *values(): SetIterator<ResponseFlag> {
    for (let i = 0, b = this.#bits; b !== 0; i++, b >>>= 1)
      if ((b & 1) !== 0) yield FLAG_ORDER[i] as ResponseFlag;
  }

  keys(): SetIterator<ResponseFlag> {
    return this.values();
  }

  *entries(): SetIterator<[ResponseFlag, ResponseFlag]> {
    for (const f of this.values()) yield [f, f];
  }

  [Symbol.iterator](): SetIterator<ResponseFlag> {
    return this.values();
  }

  forEach(
    cb: (value: ResponseFlag, key: ResponseFlag, set: ReadonlySet<ResponseFlag>) => void,
    thisArg?: unknown,
  ): void {
    for (const f of this.values()) cb.call(thisArg, f, f, this);
  }

  get [Symbol.toStringTag](): string {
    return 'ResponseFlagSet';
  }
}

/** One request (HTTP) or connection (TCP) as seen by the proxy. Mutable while it runs. */
export interface StreamInfo {
  /** Wall-clock start, ms since the epoch. */
  startTime: number;
  /** Monotonic start (performance.now()), for durations. */
  startMono: number;
  /** Set when the stream ends: total duration in ms. */
  durationMs?: number | undefined;
  protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2' | 'TCP';
  /** Listener that accepted it, and the filter chain chosen. */
  listenerName: string;
  filterChainName?: string | undefined;
  /** 'inbound' | 'outbound' (the listener's traffic direction), for Istio's reporter. */
  direction: 'inbound' | 'outbound' | 'unspecified';
  downstreamRemoteAddress: string;
  downstreamLocalAddress: string;
  /** SNI the client sent, if TLS. */
  requestedServerName?: string | undefined;
  /** The downstream connection's id (`%CONNECTION_ID%`), unique in the process. */
  connectionId?: number | undefined;
  // HTTP only
  method?: string | undefined;
  /** Path as received (`:path`), before rewrites. */
  path?: string | undefined;
  authority?: string | undefined;
  scheme?: string | undefined;
  userAgent?: string | undefined;
  xForwardedFor?: string | undefined;
  requestId?: string | undefined;
  /** The route's name, when one matched. */
  routeName?: string | undefined;
  /** Final status sent downstream (0 when none was). */
  responseCode: number;
  /** Envoy's response code details, e.g. `route_not_found`, `via_upstream`. */
  responseCodeDetails?: string | undefined;
  grpcStatus?: number | undefined;
  readonly responseFlags: ResponseFlagSet;
  /** Bytes of body (HTTP) or payload (TCP) received from / sent to downstream. */
  bytesReceived: number;
  bytesSent: number;
  // Upstream
  upstreamCluster?: string | undefined;
  /** `ip:port` of the chosen upstream host. */
  upstreamHost?: string | undefined;
  upstreamLocalAddress?: string | undefined;
  upstreamTransportFailureReason?: string | undefined;
  /** Why the downstream TLS handshake failed (`%DOWNSTREAM_TRANSPORT_FAILURE_REASON%`). */
  downstreamTransportFailureReason?: string | undefined;
  /** Time from the request's start to the upstream response headers (x-envoy-upstream-service-time). */
  upstreamServiceTimeMs?: number | undefined;
  /** Attempts made upstream (1 without retries). */
  attemptCount: number;
  connectionTerminationDetails?: string | undefined;
  /**
   * Why the proxy closed the downstream connection itself (`%DOWNSTREAM_LOCAL_CLOSE_REASON%`),
   * e.g. `tcp_initializion_failure:3`, `tcp_session_idle_timeout` (added by the listener helper).
   */
  downstreamLocalCloseReason?: string | undefined;
  /**
   * Free-form values for access-log operators (e.g. `%DYNAMIC_METADATA%`), by key. Created on
   * first access: readers that must not allocate use `metadataValue` / `metadataSize`.
   */
  readonly metadata: Map<string, unknown>;
  /** `metadata.get(key)` without creating the map. */
  metadataValue(key: string): unknown;
  /** `metadata.set(key, value)` without creating the map (for the first few keys). */
  setMetadata(key: string, value: unknown): void;
  /** `metadata.size` without creating the map. */
  readonly metadataSize: number;
  /**
   * Starts the stream's metadata from its connection's (read, not copied, until `metadata` is
   * used): called once, before any other metadata is set.
   */
  inheritMetadata(from: ReadonlyMap<string, unknown>): void;
}

/**
 * The StreamInfo implementation: every field initialised in the constructor (one object shape
 * from creation to the end, so the access-log and metrics reads stay monomorphic), the metadata
 * map created only when used.
 */
class StreamInfoImpl implements StreamInfo {
  startTime: number;
  startMono: number;
  durationMs: number | undefined = undefined;
  protocol: StreamInfo['protocol'];
  listenerName: string;
  filterChainName: string | undefined = undefined;
  direction: StreamInfo['direction'];
  downstreamRemoteAddress: string;
  downstreamLocalAddress: string;
  requestedServerName: string | undefined = undefined;
  connectionId: number | undefined = undefined;
  method: string | undefined = undefined;
  path: string | undefined = undefined;
  authority: string | undefined = undefined;
  scheme: string | undefined = undefined;
  userAgent: string | undefined = undefined;
  xForwardedFor: string | undefined = undefined;
  requestId: string | undefined = undefined;
  routeName: string | undefined = undefined;
  responseCode = 0;
  responseCodeDetails: string | undefined = undefined;
  grpcStatus: number | undefined = undefined;
  readonly responseFlags = new ResponseFlagSet();
  bytesReceived = 0;
  bytesSent = 0;
  upstreamCluster: string | undefined = undefined;
  upstreamHost: string | undefined = undefined;
  upstreamLocalAddress: string | undefined = undefined;
  upstreamTransportFailureReason: string | undefined = undefined;
  downstreamTransportFailureReason: string | undefined = undefined;
  upstreamServiceTimeMs: number | undefined = undefined;
  attemptCount = 0;
  connectionTerminationDetails: string | undefined = undefined;
  downstreamLocalCloseReason: string | undefined = undefined;
  /** The metadata once materialised (then the only copy). */
  #metadata: Map<string, unknown> | undefined = undefined;
  /** Before that: the connection's entries (not ours to change) and up to two of the stream's. */
  #inherited: ReadonlyMap<string, unknown> | undefined = undefined;
  #key1: string | undefined = undefined;
  #value1: unknown = undefined;
  #key2: string | undefined = undefined;
  #value2: unknown = undefined;

  constructor(
    init: Pick<
      StreamInfo,
      | 'protocol'
      | 'listenerName'
      | 'direction'
      | 'downstreamRemoteAddress'
      | 'downstreamLocalAddress'
    >,
    now: number,
    mono: number,
  ) {
    this.startTime = now;
    this.startMono = mono;
    this.protocol = init.protocol;
    this.listenerName = init.listenerName;
    this.direction = init.direction;
    this.downstreamRemoteAddress = init.downstreamRemoteAddress;
    this.downstreamLocalAddress = init.downstreamLocalAddress;
  }

  get metadata(): Map<string, unknown> {
    let m = this.#metadata;
    if (m === undefined) {
      // Materialised: the connection's entries, then the ones set on the stream.
      m = new Map(this.#inherited);
      if (this.#key1 !== undefined) m.set(this.#key1, this.#value1);
      if (this.#key2 !== undefined) m.set(this.#key2, this.#value2);
      this.#metadata = m;
      this.#inherited = undefined;
      this.#key1 = this.#key2 = undefined;
      this.#value1 = this.#value2 = undefined;
    }
    return m;
  }

  metadataValue(key: string): unknown {
    const m = this.#metadata;
    if (m !== undefined) return m.get(key);
    if (key === this.#key1) return this.#value1;
    if (key === this.#key2) return this.#value2;
    return this.#inherited?.get(key);
  }

  setMetadata(key: string, value: unknown): void {
    if (this.#metadata === undefined) {
      if (this.#key1 === undefined || this.#key1 === key) {
        this.#key1 = key;
        this.#value1 = value;
        return;
      }
      if (this.#key2 === undefined || this.#key2 === key) {
        this.#key2 = key;
        this.#value2 = value;
        return;
      }
    }
    this.metadata.set(key, value);
  }

  get metadataSize(): number {
    const m = this.#metadata;
    if (m !== undefined) return m.size;
    const inherited = this.#inherited;
    let n = inherited?.size ?? 0;
    if (this.#key1 !== undefined && !inherited?.has(this.#key1)) n++;
    if (this.#key2 !== undefined && !inherited?.has(this.#key2)) n++;
    return n;
  }

  inheritMetadata(from: ReadonlyMap<string, unknown>): void {
    if (this.#metadata !== undefined || this.#key1 !== undefined) {
      for (const [k, v] of from) if (!this.metadata.has(k)) this.metadata.set(k, v);
      return;
    }
    if (from.size > 0) this.#inherited = from;
  }
}

export function newStreamInfo(
  init: Pick<
    StreamInfo,
    'protocol' | 'listenerName' | 'direction' | 'downstreamRemoteAddress' | 'downstreamLocalAddress'
  >,
  now: number = Date.now(),
  mono: number = performance.now(),
): StreamInfo {
  return new StreamInfoImpl(init, now, mono);
}

/** `%RESPONSE_FLAGS%` strings by bitmask (few distinct combinations occur). */
const formatted = new Map<number, string>([[0, '-']]);

/** The flags as Envoy prints them in `%RESPONSE_FLAGS%`: comma-separated, `-` when none. */
export function formatResponseFlags(flags: ReadonlySet<ResponseFlag>): string {
  if (flags instanceof ResponseFlagSet) {
    const bits = flags.bits;
    let s = formatted.get(bits);
    if (s === undefined) {
      s = [...flags].join(',');
      if (formatted.size >= 1024) formatted.clear();
      formatted.set(bits, s);
    }
    return s;
  }
  if (flags.size === 0) return '-';
  const order = FLAG_ORDER as readonly string[];
  return [...flags].sort((a, b) => order.indexOf(a) - order.indexOf(b)).join(',');
}
