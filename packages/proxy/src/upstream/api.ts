// What the rest of the proxy (listeners, tcp_proxy, the HTTP router) needs from the cluster
// manager. Implemented in cluster-manager.ts (clusters in cluster.ts, pools in pool-http1.ts and
// pool-http2.ts).
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Cluster } from '@trellis/envoy';
import type { StatsScope } from '../observability/stats-api.js';
import type { ClusterStats } from './cluster-stats.js';
import type { LbContext, LbHost } from './lb/types.js';
import type { OutlierSink } from './outlier-detection.js';

/** An `ip:port` (or host name and port) a connection was addressed to. */
export interface DestinationAddress {
  readonly address: string;
  readonly port: number;
}

/**
 * LbContext plus what ORIGINAL_DST clusters choose by (added by the http helper): the
 * downstream connection's original destination (SO_ORIGINAL_DST, or the target of an
 * explicit-proxy request), and request headers for `original_dst_lb_config.use_http_header`.
 */
export interface UpstreamLbContext extends LbContext {
  readonly originalDestination?: DestinationAddress | undefined;
  readonly requestHeader?: ((name: string) => string | undefined) | undefined;
}

/** The HTTP protocol spoken to an upstream host. */
export type UpstreamHttpProtocol = 'http1' | 'http2';

/** The downstream protocol of a request (for `use_downstream_protocol_config`). */
export type DownstreamHttpProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';

/**
 * Which transport socket a cluster uses toward a host (transport_socket_matches, else
 * transport_socket): `raw_buffer`, `tls` (UpstreamTlsContext, tls/upstream.ts), or the name of
 * another, unsupported one (connections fail: 503 UF).
 */
export type TransportSocketKind = 'raw_buffer' | 'tls' | { readonly unsupported: string };

export interface UpstreamCluster {
  readonly name: string;
  readonly config: Cluster;
  /** Chooses a host with the cluster's load balancer; undefined → no healthy upstream (UH). */
  choose(ctx: UpstreamLbContext): LbHost | undefined;
  /**
   * Opens a TCP connection to `host`, honouring connect_timeout (rejects with an
   * UpstreamConnectError whose `reason` is Envoy's transport failure reason).
   */
  connect(host: LbHost): Promise<Socket>;
  // --- Added by the http helper ---
  /** The name used in stats (`alt_stat_name` when set, else `name`). */
  readonly statName: string;
  /** `cluster.<statName>` stats. */
  readonly stats: StatsScope;
  /** The same stats as fields (looked up once); optional so that test fakes may omit it. */
  readonly clusterStats?: ClusterStats;
  /** Circuit breaker accounting (issue 6 enforces the thresholds). */
  readonly resources: ResourceManagerApi;
  /** The protocol for a request that arrived downstream over `downstream`. */
  httpProtocol(downstream: DownstreamHttpProtocol): UpstreamHttpProtocol;
  /** The transport socket toward `host`. */
  transportSocketFor(host: LbHost): TransportSocketKind;
  /** The HTTP connection pool of `host` for `protocol`. */
  httpPool(host: LbHost, protocol: UpstreamHttpProtocol): HttpConnectionPool;
  /**
   * Where the outcome of requests to `host` goes for outlier detection (undefined without it).
   * The pools report connect results, response codes and resets themselves; the router reports
   * what only it sees: a route or per-try timeout (`putResult('LOCAL_ORIGIN_TIMEOUT', 504)`).
   * Optional so that test fakes may omit it.
   */
  outlierSink?(host: LbHost): OutlierSink | undefined;
}

export interface ClusterManagerApi {
  /** The cluster, or undefined when it is not (or no longer) known (→ 503 NC). */
  get(name: string): UpstreamCluster | undefined;
}

/** A failed upstream connection attempt. */
export class UpstreamConnectError extends Error {
  /** e.g. `delayed connect error: 111`, `connect timeout`. */
  readonly reason: string;
  readonly timedOut: boolean;
  constructor(reason: string, timedOut = false) {
    super(`upstream connect error: ${reason}`);
    this.name = 'UpstreamConnectError';
    this.reason = reason;
    this.timedOut = timedOut;
  }
}

/**
 * Envoy's circuit breaker resources of one cluster and priority (added by the http helper;
 * enforced since issue 6: see resource-manager.ts).
 */
export interface ResourceManagerApi {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  connections: number;
  pendingRequests: number;
  requests: number;
  retries: number;
  canCreateConnection(): boolean;
  canQueueRequest(): boolean;
  canSendRequest(): boolean;
  canRetry(): boolean;
  /**
   * Takes a retry before retrying (false, counting `upstream_rq_retry_overflow`, when
   * max_retries is used up); give it back with releaseRetry() when the retry starts or is
   * abandoned (Envoy holds it during the backoff). Optional so that test fakes may omit it.
   */
  tryRetry?(): boolean;
  releaseRetry?(): void;
}

/** Why an upstream stream ended before its response completed (Envoy's StreamResetReason). */
export type UpstreamResetReason =
  /** The connection could not be established (UF). */
  | 'connection_failure'
  /** connect_timeout elapsed (UF). */
  | 'connection_timeout'
  /** The connection closed or failed after it was established (UC). */
  | 'connection_termination'
  /** The peer reset the stream (HTTP/2 RST_STREAM) (UR). */
  | 'remote_reset'
  /** The peer refused the stream (RST_STREAM REFUSED_STREAM, or above GOAWAY's last id) (UR). */
  | 'remote_refused_stream_reset'
  /** The response could not be parsed (UPE). */
  | 'protocol_error'
  /** The transport socket is not available (UF): an unsupported transport socket. */
  | 'transport_not_implemented'
  /** A circuit breaker refused the request (max_pending_requests, max_requests) (UO, 503). */
  | 'overflow';

/** The head of a request sent upstream (hop-by-hop headers already removed). */
export interface UpstreamRequestHead {
  readonly method: string;
  /** Origin-form path with query. */
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  /** Regular headers (no pseudo-headers, no `host`). */
  readonly headers: OutgoingHttpHeaders;
  /** No body follows the headers. */
  readonly endStream: boolean;
  /** An HTTP/1.1 `Upgrade` (WebSocket...): `connection: upgrade` and `upgrade` are sent. */
  readonly upgrade?: string | undefined;
}

/**
 * A response body as the router and mirrors use it: 'data' events (in order), one 'end' once the
 * response is complete (not after a reset: onReset reports that), and pause()/resume() for
 * backpressure (a paused body stops reading from the upstream connection). Like a Readable, it
 * starts paused and flows on its first 'data' listener or resume(); resume() without a 'data'
 * listener discards the bytes. It never emits 'error'. node:http2's ClientHttp2Stream satisfies
 * it; the HTTP/1.1 pool has a lighter one.
 */
export interface UpstreamResponseBody {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  once(event: 'end', listener: () => void): this;
  pause(): this;
  resume(): this;
}

/** What an upstream stream reports to its user (the router). */
export interface UpstreamStreamCallbacks {
  /**
   * A connection is assigned: write the request body into `sink` (then end it). `sink` is
   * undefined when the request has no body (`head.endStream`): it is already complete.
   */
  onReady(sink: Writable | undefined, localAddress: string | undefined): void;
  /**
   * Response headers (1xx other than 100/101 are dropped). `body` ends with the response; with
   * `endStream` (no body follows: HEAD, 204, 304, `content-length: 0`...) it may be undefined or
   * an already ended one, which needs nothing more.
   */
  onHeaders(
    status: number,
    headers: IncomingHttpHeaders,
    endStream: boolean,
    body: UpstreamResponseBody | undefined,
  ): void;
  /** The stream failed; `transportFailureReason` is set for connection failures. */
  onReset(reason: UpstreamResetReason, transportFailureReason?: string): void;
  /** `100 Continue` from upstream (requests sent with `expect: 100-continue`). */
  onContinue?(): void;
  /** `101 Switching Protocols` for an upgrade: `socket` carries the tunnel, `head` its first bytes. */
  onUpgrade?(status: number, headers: IncomingHttpHeaders, socket: Socket, head: Buffer): void;
}

/** One request on an upstream connection. */
export interface UpstreamStream {
  /** Response trailers (valid once the response body ended), if any. */
  trailers(): IncomingHttpHeaders | undefined;
  /** Aborts the request (RST_STREAM, or closes an HTTP/1.1 connection). */
  reset(): void;
}

/** The connections of one cluster to one host for one protocol. */
export interface HttpConnectionPool {
  readonly protocol: UpstreamHttpProtocol;
  newStream(head: UpstreamRequestHead, callbacks: UpstreamStreamCallbacks): UpstreamStream;
  /** Connections (open, in use or idle). */
  readonly connectionCount: number;
  /** Stops reusing connections: idle ones close now, busy ones after their requests. */
  drain(): void;
  /** Closes every connection now. */
  close(): void;
}
