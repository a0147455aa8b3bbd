// The HTTP/1.1 connection pool of one cluster host, on Trellis's own HTTP/1.1 client codec
// (http1-codec.ts): keep-alive connections reused one request at a time (the most recently freed
// first), one socket write per request head (with a small body), a strict incremental response
// parser, connect_timeout and cx stats through the cluster, and Envoy's idle_timeout,
// max_requests_per_connection and max_connection_duration.
//
// Circuit breaking (Envoy's ConnPoolImplBase): a request that finds no free connection is
// pending (refused with `upstream_rq_pending_overflow` and reset reason `overflow` above
// max_pending_requests); it opens a connection when max_connections allows (else
// `upstream_cx_overflow`, and it waits for a connection of this pool to come free; a pool with
// no connection at all always opens one, as Envoy does, so that it cannot starve); a request
// above max_requests when it is about to be sent is refused the same way. Every stream reports
// its outcome to the host's outlier detection monitor.
//
// Failure containment: whatever the upstream sends (or how it closes) ends in a reset reported
// through onReset or in a complete response, never in an exception: parse errors are caught
// around the parser, socket errors are reported through 'close', and the streams handed to the
// router (the request sink, the response body) never emit 'error'. PoolContext, RequestSlot and
// reportResetToOutlier are shared with the HTTP/2 pool (pool-http2.ts).
//
// Per-request cost: a request without a body gets no sink, a response body is a small
// ResponseBody (bytes delivered synchronously as parsed, no stream machinery), a response without
// a body is reported with endStream and no body at all, and idle_timeout is one pool timer that
// sweeps idle connections by the time they were freed (no per-request socket timeout).
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import {
  UpstreamConnectError,
  type HttpConnectionPool,
  type ResourceManagerApi,
  type UpstreamRequestHead,
  type UpstreamResetReason,
  type UpstreamResponseBody,
  type UpstreamStream,
  type UpstreamStreamCallbacks,
} from './api.js';
import type { ClusterStats } from './cluster-stats.js';
import type { UpstreamHttpSettings } from './http-protocol-options.js';
import {
  Http1ParseError,
  Http1ResponseParser,
  Http1SerializeError,
  chunkHeader,
  isChunkedCoding,
  outgoingHeader,
  serializeRequestHead,
  usesBodyByDefault,
  type ResponseParserHandler,
} from './http1-codec.js';
import type { LbHost } from './lb/types.js';
import type { OutlierSink } from './outlier-detection.js';

/** What a pool needs from its cluster. */
export interface PoolContext {
  readonly host: LbHost;
  readonly stats: ClusterStats;
  readonly settings: UpstreamHttpSettings;
  readonly resources: ResourceManagerApi;
  /** Opens a connection to the host (connect_timeout, cx stats). */
  connect(): Promise<Socket>;
  /** The host's outlier detection monitor (when the cluster has outlier_detection). */
  readonly outlier?: OutlierSink | undefined;
}

/** Reports a stream's reset to outlier detection as Envoy's router does. */
export function reportResetToOutlier(
  outlier: OutlierSink | undefined,
  reason: UpstreamResetReason,
): void {
  if (!outlier || reason === 'overflow') return;
  outlier.putResult(
    reason === 'connection_timeout' ? 'LOCAL_ORIGIN_TIMEOUT' : 'LOCAL_ORIGIN_CONNECT_FAILED',
  );
}

/**
 * One upstream request's share of the host's and cluster's counters and circuit breakers, the
 * same for both pools: the host's activeRequests from creation (LEAST_REQUEST sees pending
 * requests too), the pending counters while it waits, and the request counters (and
 * max_requests) once it is sent. Each is given back once.
 */
export class RequestSlot {
  private pending = false;
  private started = false;
  /** Finished: every counter given back. */
  done = false;

  constructor(private readonly ctx: PoolContext) {
    ctx.host.activeRequests++;
  }

  beginPending(): void {
    this.pending = true;
    this.ctx.stats.upstream_rq_pending_total.inc();
    this.ctx.stats.upstream_rq_pending_active.inc();
    this.ctx.resources.pendingRequests++;
  }

  endPending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.ctx.stats.upstream_rq_pending_active.dec();
    this.ctx.resources.pendingRequests--;
  }

  /**
   * Counts the request as sent, max_requests permitting; false (with
   * `upstream_rq_pending_overflow` counted) when the circuit breaker refuses it.
   */
  tryStart(): boolean {
    const { stats, resources } = this.ctx;
    if (!resources.canSendRequest()) {
      stats.upstream_rq_pending_overflow.inc();
      return false;
    }
    this.started = true;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    resources.requests++;
    return true;
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.host.activeRequests--;
    if (!this.started) return;
    this.ctx.stats.upstream_rq_active.dec();
    this.ctx.resources.requests--;
  }
}

/** Bodies up to this size leave in one buffer with the head (larger ones: corked writes). */
const COALESCE_BYTES = 16 * 1024;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const EMPTY = Buffer.alloc(0);

/** One upstream connection: its socket listeners last as long as it does. */
class Http1Connection implements ResponseParserHandler {
  readonly parser: Http1ResponseParser;
  /** The request in progress (undefined while idle). */
  stream: Http1Stream | undefined;
  requests = 0;
  idle = false;
  expired = false;
  /** Must not carry another request (connection: close, extra bytes, close-delimited body). */
  noReuse = false;
  /** The socket carries an upgraded tunnel (our listeners are gone). */
  detached = false;
  /** The socket is paused for a response body's backpressure. */
  paused = false;
  /** When the connection was last freed (performance.now(); for idle_timeout). */
  idleSince = 0;
  maxDurationTimer: NodeJS.Timeout | undefined;
  /** localAddress, once known (null: the socket has none). */
  private local: string | null | undefined;

  constructor(
    private readonly pool: Http1ConnectionPool,
    readonly socket: Socket,
  ) {
    this.parser = new Http1ResponseParser(this);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', onSocketError);
    socket.once('close', this.onClose);
  }

  /** `ip:port` of our end (upstream_local_address), worked out once per connection. */
  get localAddress(): string | undefined {
    if (this.local === undefined) {
      const s = this.socket;
      this.local = s.localAddress !== undefined ? `${s.localAddress}:${s.localPort}` : null;
    }
    return this.local ?? undefined;
  }

  /** Whether the connection can carry a new request (not closing, not half-closed). */
  get usable(): boolean {
    const s = this.socket;
    return !s.destroyed && s.writable && !s.readableEnded;
  }

  private readonly onData = (data: Buffer): void => {
    const stream = this.stream;
    if (!stream) {
      // Bytes on an idle connection answer nothing: never parse them as the next response.
      this.socket.destroy();
      return;
    }
    const parser = this.parser;
    try {
      parser.execute(data);
    } catch (err) {
      // Anything else is a bug in a callback: let it surface (the process logs it and exits).
      if (!(err instanceof Http1ParseError)) throw err;
      stream.onParseError();
      this.socket.destroy();
      return;
    }
    if (this.detached) return;
    if (parser.rest !== undefined && this.stream === stream) {
      // Bytes after the response (or before any request): a protocol violation.
      parser.rest = undefined;
      this.socket.destroy();
    }
  };

  private readonly onEnd = (): void => {
    const stream = this.stream;
    if (stream && this.parser.closeDelimited) this.parser.finish();
    else if (!stream) this.socket.destroy();
    // Else the response is cut short: 'close' follows and resets the stream.
  };

  private readonly onClose = (): void => {
    if (this.maxDurationTimer) clearTimeout(this.maxDurationTimer);
    this.pool.removeConnection(this);
    const stream = this.stream;
    this.stream = undefined;
    if (stream && !this.detached) stream.onConnectionClosed();
  };

  // --- ResponseParserHandler (forwarded to the current stream) ---
  onInformational(status: number): void {
    this.stream?.onInformational(status);
  }

  onHead(
    status: number,
    headers: IncomingHttpHeaders,
    keepAlive: boolean,
    upgrade: boolean,
    endStream: boolean,
  ): void {
    if (!keepAlive) this.noReuse = true;
    if (upgrade) {
      this.detach();
      this.stream?.onUpgrade(status, headers, this.parser.rest ?? EMPTY);
      return;
    }
    this.stream?.onResponseHead(status, headers, endStream);
  }

  onBody(chunk: Buffer): void {
    this.stream?.onResponseBody(chunk);
  }

  onComplete(trailers: IncomingHttpHeaders | undefined, extra: boolean): void {
    if (extra) this.noReuse = true;
    this.stream?.onResponseComplete(trailers);
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /** The socket leaves the pool's listeners for an upgraded tunnel ('error' and 'close' stay). */
  private detach(): void {
    this.detached = true;
    this.noReuse = true;
    const socket = this.socket;
    socket.pause();
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
  }

  /** The stream's request and response are both complete. */
  exchangeDone(): void {
    this.stream = undefined;
    this.resume();
    if (this.noReuse || !this.pool.release(this)) this.socket.destroy();
  }
}

function onSocketError(): void {
  // Reported through 'close'.
}

export class Http1ConnectionPool implements HttpConnectionPool {
  readonly protocol = 'http1' as const;
  private readonly conns = new Set<Http1Connection>();
  /** Idle connections, the most recently used last (LIFO reuse). */
  private readonly free: Http1Connection[] = [];
  private draining = false;
  private closed = false;
  /** Connections being opened. */
  private connecting = 0;
  /** Pending requests waiting for a connection (max_connections reached). */
  private readonly waiting: Http1Stream[] = [];
  private dispatchScheduled = false;
  /** Sweeps idle connections past idle_timeout (armed while some connection is free). */
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly ctx: PoolContext) {}

  get connectionCount(): number {
    return this.conns.size;
  }

  /** @internal Opens and registers a connection. */
  async openConnection(): Promise<Http1Connection> {
    this.connecting++;
    let socket: Socket;
    try {
      socket = await this.ctx.connect();
    } finally {
      this.connecting--;
      this.scheduleDispatch();
    }
    const conn = new Http1Connection(this, socket);
    if (socket.destroyed) throw new UpstreamConnectError('connection closed');
    this.conns.add(conn);
    this.ctx.stats.upstream_cx_http1_total.inc();
    const maxDuration = this.ctx.settings.maxConnectionDurationMs;
    if (maxDuration > 0) {
      conn.maxDurationTimer = setTimeout(() => {
        conn.expired = true;
        this.ctx.stats.upstream_cx_max_duration_reached.inc();
        if (conn.idle) socket.destroy();
      }, maxDuration);
      conn.maxDurationTimer.unref();
    }
    if (this.draining) conn.expired = true;
    return conn;
  }

  /** @internal A connection closed. */
  removeConnection(conn: Http1Connection): void {
    this.conns.delete(conn);
    if (conn.idle) {
      const i = this.free.lastIndexOf(conn);
      if (i >= 0) this.free.splice(i, 1);
    }
    this.scheduleDispatch();
  }

  /** @internal Keeps a connection whose exchange finished, when allowed: false → close it. */
  release(conn: Http1Connection): boolean {
    if (conn.expired || this.draining || !conn.usable) return false;
    const max = this.ctx.settings.maxRequestsPerConnection;
    if (max > 0 && conn.requests >= max) {
      this.ctx.stats.upstream_cx_max_requests.inc();
      return false;
    }
    conn.idle = true;
    conn.socket.unref();
    const idle = this.ctx.settings.idleTimeoutMs;
    if (idle > 0) {
      conn.idleSince = performance.now();
      if (!this.idleTimer) this.armIdleSweep(idle);
    }
    this.free.push(conn);
    this.scheduleDispatch();
    return true;
  }

  private armIdleSweep(ms: number): void {
    this.idleTimer = setTimeout(this.sweepIdle, ms);
    this.idleTimer.unref();
  }

  /**
   * idle_timeout: closes the connections free for that long (the free list is in the order they
   * were freed, the oldest first), then re-arms for the oldest one left.
   */
  private readonly sweepIdle = (): void => {
    this.idleTimer = undefined;
    const idle = this.ctx.settings.idleTimeoutMs;
    const free = this.free;
    // Timers count whole milliseconds: one early by rounding is due.
    const due = performance.now() - idle + 1;
    let expired = 0;
    while (expired < free.length && (free[expired]?.idleSince ?? 0) <= due) expired++;
    for (const conn of free.splice(0, expired)) {
      conn.idle = false;
      this.ctx.stats.upstream_cx_idle_timeout.inc();
      conn.socket.destroy();
    }
    const oldest = free[0];
    if (oldest && !this.closed)
      this.armIdleSweep(Math.max(1, Math.ceil(oldest.idleSince + idle - performance.now())));
  };

  /**
   * @internal Takes the most recently freed connection for a request, if any. A connection the
   * peer is closing (FIN or error seen, 'close' not yet emitted) is never handed out.
   */
  takeFree(): Http1Connection | undefined {
    let conn: Http1Connection | undefined;
    while ((conn = this.free.pop())) {
      conn.idle = false;
      if (conn.usable) break;
      conn.socket.destroy();
    }
    if (!conn) return undefined;
    conn.socket.ref();
    return conn;
  }

  newStream(head: UpstreamRequestHead, cb: UpstreamStreamCallbacks): UpstreamStream {
    const stream = new Http1Stream(this, this.ctx, head, cb);
    if (this.closed) {
      stream.fail(new UpstreamConnectError('connection pool closed'));
      return stream;
    }
    if (this.hasFreeConnection()) {
      stream.dispatch();
      return stream;
    }
    const { resources, stats } = this.ctx;
    if (!resources.canQueueRequest()) {
      stats.upstream_rq_pending_overflow.inc();
      stream.overflow();
      return stream;
    }
    stream.beginPending();
    if (this.mayConnect(true)) stream.dispatch();
    else this.waiting.push(stream);
    return stream;
  }

  /**
   * Whether a new connection may be opened: below max_connections, or this pool has none at all
   * (Envoy opens one anyway so that its pending requests cannot starve; the overflow is counted).
   */
  private mayConnect(count: boolean): boolean {
    if (this.ctx.resources.canCreateConnection()) return true;
    if (count) this.ctx.stats.upstream_cx_overflow.inc();
    return this.conns.size + this.connecting === 0;
  }

  /** Hands waiting requests to free connections, or to new ones when allowed. */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.waiting.length === 0) return;
    this.dispatchScheduled = true;
    queueMicrotask(() => {
      this.dispatchScheduled = false;
      while (this.waiting.length > 0 && (this.hasFreeConnection() || this.mayConnect(false)))
        this.waiting.shift()?.dispatch();
    });
  }

  /** @internal A waiting request was reset. */
  removeWaiting(stream: Http1Stream): boolean {
    const i = this.waiting.indexOf(stream);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  /** Requests waiting for a connection (max_connections reached). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** @internal Whether a free connection is waiting (the request will not be pending). */
  hasFreeConnection(): boolean {
    return this.free.length > 0;
  }

  drain(): void {
    this.draining = true;
    for (const conn of this.conns) {
      conn.expired = true;
      if (conn.idle) conn.socket.destroy();
    }
  }

  close(): void {
    this.draining = true;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const s of this.waiting.splice(0))
      s.fail(new UpstreamConnectError('connection pool closed'));
    for (const conn of [...this.conns]) conn.socket.destroy();
  }
}

/**
 * The request body's sink handed to the router (frames the body onto the connection). Not
 * auto-destroyed: finishing the request body must not abandon the exchange.
 */
class RequestSink extends Writable {
  constructor(private readonly stream: Http1Stream) {
    super({ autoDestroy: false });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.stream.writeBody(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.stream.endBody();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stream.abortFromUser();
    cb(err);
  }
}

type DataListener = (chunk: Buffer) => void;
type EndListener = () => void;

/**
 * A response body (UpstreamResponseBody): bytes are slices of the socket's reads, delivered as
 * they are parsed. Like a Readable it starts paused and flows on its first 'data' listener or
 * resume(); while it does not flow, bytes wait in a queue and the socket is paused (so a slow
 * downstream stops the upstream reads). 'end' is emitted once, after the last byte; never 'error'.
 */
class ResponseBody implements UpstreamResponseBody {
  private dataListeners: DataListener | DataListener[] | undefined;
  private endListeners: EndListener | EndListener[] | undefined;
  private flowing = false;
  /** pause() was called: a new 'data' listener does not start the flow (as with a Readable). */
  private pausedByUser = false;
  /** Bytes parsed while not flowing, in order. */
  private queue: Buffer[] | undefined;
  /** The response is complete: 'end' follows the queued bytes. */
  private complete = false;
  private endScheduled = false;
  /** 'end' emitted, or the stream reset: no more events. */
  private closed = false;

  constructor(private readonly stream: Http1Stream) {}

  on(event: 'data', listener: DataListener): this {
    if (event !== 'data') return this;
    const l = this.dataListeners;
    this.dataListeners =
      l === undefined ? listener : typeof l === 'function' ? [l, listener] : [...l, listener];
    if (!this.pausedByUser && !this.flowing) this.resume();
    return this;
  }

  once(event: 'end', listener: EndListener): this {
    if (event !== 'end' || this.closed) return this;
    const l = this.endListeners;
    this.endListeners =
      l === undefined ? listener : typeof l === 'function' ? [l, listener] : [...l, listener];
    return this;
  }

  pause(): this {
    this.pausedByUser = true;
    if (this.flowing) {
      this.flowing = false;
      this.stream.pauseBody();
    }
    return this;
  }

  resume(): this {
    this.pausedByUser = false;
    if (this.closed || this.flowing) return this;
    this.flowing = true;
    const q = this.queue;
    if (q) {
      while (this.flowing && q.length > 0) this.emitData(q.shift() as Buffer);
      if (q.length > 0) return this;
      if (this.queue === q) this.queue = undefined;
    }
    if (!this.flowing || this.closed) return this;
    if (this.complete) this.scheduleEnd();
    else this.stream.resumeBody();
    return this;
  }

  /** @internal Bytes of the response. */
  push(chunk: Buffer): void {
    if (this.closed) return;
    if (this.flowing && this.queue === undefined) this.emitData(chunk);
    else {
      (this.queue ??= []).push(chunk);
      this.stream.pauseBody();
    }
  }

  /** @internal The response is complete. */
  finish(): void {
    if (this.closed) return;
    this.complete = true;
    if (this.flowing && this.queue === undefined) this.emitEnd();
  }

  /** @internal The stream was reset: no more events (onReset reports it). */
  close(): void {
    this.closed = true;
    this.queue = undefined;
    this.dataListeners = undefined;
    this.endListeners = undefined;
  }

  private emitData(chunk: Buffer): void {
    const l = this.dataListeners;
    if (l === undefined) return; // Flowing without a listener: discarded.
    if (typeof l === 'function') l(chunk);
    else for (const f of l) if (!this.closed) f(chunk);
  }

  /**
   * 'end' after a resume() (a listener added just after it must still hear it, as a Readable
   * emits it on a later tick).
   */
  private scheduleEnd(): void {
    if (this.endScheduled) return;
    this.endScheduled = true;
    queueMicrotask(() => {
      this.endScheduled = false;
      if (this.flowing && this.queue === undefined) this.emitEnd();
    });
  }

  private emitEnd(): void {
    if (this.closed) return;
    const l = this.endListeners;
    this.close();
    if (l === undefined) return;
    if (typeof l === 'function') l();
    else for (const f of l) f();
  }
}

class Http1Stream implements UpstreamStream {
  private conn: Http1Connection | undefined;
  private readonly slot: RequestSlot;
  private localReset = false;
  private reported = false;
  private dispatched = false;
  /** The serialised head with the headers as given (framing and connection headers follow). */
  private headText = '';
  private headSent = false;
  private chunked = false;
  private requestDone = false;
  private body: ResponseBody | undefined;
  private responseComplete = false;
  private responseTrailers: IncomingHttpHeaders | undefined;
  /** The exchange is over for the connection (released, closed or upgraded). */
  private exchangeEnded = false;
  /** The request body's write waiting for the socket's 'drain' (called on teardown too). */
  private drainWait: (() => void) | undefined;

  constructor(
    private readonly pool: Http1ConnectionPool,
    private readonly ctx: PoolContext,
    private readonly head: UpstreamRequestHead,
    private readonly cb: UpstreamStreamCallbacks,
  ) {
    this.slot = new RequestSlot(ctx);
  }

  /** @internal The request waits for a connection. */
  beginPending(): void {
    this.slot.beginPending();
  }

  /** @internal Refused by a circuit breaker (the overflow counter is the caller's). */
  overflow(): void {
    this.slot.endPending();
    this.slot.finish();
    queueMicrotask(() => this.reportUnlessReset('overflow'));
  }

  /** @internal Fails before it was sent. */
  fail(err: UpstreamConnectError): void {
    this.slot.endPending();
    this.slot.finish();
    queueMicrotask(() => this.onConnectError(err));
  }

  /** @internal Sends the request on a free connection, or a new one. */
  dispatch(): void {
    if (this.slot.done || this.localReset) return;
    if (!this.slot.tryStart()) {
      this.overflow();
      return;
    }
    const head = this.head;
    const headers = head.headers;
    headers.host = head.authority;
    if (head.upgrade !== undefined) {
      headers.connection = 'upgrade';
      headers.upgrade = head.upgrade;
    }
    try {
      this.headText = serializeRequestHead(head.method, head.path, headers);
    } catch (err) {
      if (!(err instanceof Http1SerializeError)) throw err;
      // The request line or a header is not valid HTTP/1.1 (e.g. after a rewrite).
      this.slot.endPending();
      this.slot.finish();
      queueMicrotask(() => this.reportUnlessReset('protocol_error'));
      return;
    }
    this.dispatched = true;
    const conn = this.pool.takeFree();
    if (conn) {
      this.assign(conn);
      return;
    }
    this.pool.openConnection().then(
      (c) => this.assign(c),
      (err: unknown) => this.onConnectError(err),
    );
  }

  private assign(conn: Http1Connection): void {
    this.slot.endPending();
    if (this.localReset || this.slot.done) {
      // Reset while the connection was being found: it is still clean.
      if (!this.pool.release(conn)) conn.socket.destroy();
      return;
    }
    conn.requests++;
    this.conn = conn;
    conn.stream = this;
    const head = this.head;
    conn.parser.start(head.method, head.upgrade !== undefined);
    this.ctx.outlier?.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS');
    if (head.endStream) this.sendHead(false);
    else if (head.headers.expect !== undefined) this.sendHead(true);
    const local = conn.localAddress;
    // Without a body the request is complete already: no sink.
    const sink = head.endStream ? undefined : new RequestSink(this);
    queueMicrotask(() => {
      if (this.localReset || this.conn !== conn) return;
      this.cb.onReady(sink, local);
    });
  }

  /**
   * Writes the head alone: `body` when a body of unknown length follows (chunked), else the
   * request has none.
   */
  private sendHead(body: boolean): void {
    const conn = this.conn;
    if (!conn || this.headSent) return;
    this.headSent = true;
    const text = this.headText + this.framing(body ? -1 : 0);
    if (!body) this.requestDone = true;
    conn.socket.write(text, 'latin1');
  }

  /**
   * The framing and connection headers and the head's final CRLF, for a body of `length` bytes
   * (-1: unknown). Sets `chunked`.
   */
  private framing(length: number): string {
    const headers = this.head.headers;
    let extra = headers.connection === undefined ? 'connection: keep-alive\r\n' : '';
    if (headers['content-length'] !== undefined) {
      // As given.
    } else if (headers['transfer-encoding'] !== undefined) {
      this.chunked = isChunkedCoding(outgoingHeader(headers, 'transfer-encoding') ?? '');
    } else if (length < 0) {
      extra += 'transfer-encoding: chunked\r\n';
      this.chunked = true;
    } else if (usesBodyByDefault(this.head.method)) extra += `content-length: ${length}\r\n`;
    return extra + CRLF;
  }

  /** @internal A body chunk from the router (the sink's _write). */
  writeBody(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const conn = this.conn;
    if (!conn || conn.socket.destroyed || this.requestDone || chunk.length === 0) {
      cb();
      return;
    }
    const socket = conn.socket;
    let ok: boolean;
    if (!this.headSent) {
      this.headSent = true;
      const text = this.headText + this.framing(-1);
      const pre = this.chunked ? text + chunkHeader(chunk.length) : text;
      if (chunk.length <= COALESCE_BYTES) {
        const post = this.chunked ? 2 : 0;
        const buf = Buffer.allocUnsafe(pre.length + chunk.length + post);
        buf.write(pre, 0, 'latin1');
        chunk.copy(buf, pre.length);
        if (post) buf.write(CRLF, pre.length + chunk.length, 'latin1');
        ok = socket.write(buf);
      } else {
        socket.cork();
        socket.write(pre, 'latin1');
        socket.write(chunk);
        ok = this.chunked ? socket.write(CRLF, 'latin1') : true;
        socket.uncork();
        ok = ok && !socket.writableNeedDrain;
      }
    } else if (this.chunked) {
      socket.cork();
      socket.write(chunkHeader(chunk.length), 'latin1');
      socket.write(chunk);
      ok = socket.write(CRLF, 'latin1');
      socket.uncork();
      ok = ok && !socket.writableNeedDrain;
    } else ok = socket.write(chunk);
    if (ok) {
      cb();
      return;
    }
    // Backpressure: the next chunk waits for 'drain', or for the end of the exchange (a socket
    // that closes never drains).
    const done = (): void => {
      if (this.drainWait !== done) return;
      this.drainWait = undefined;
      socket.removeListener('drain', done);
      cb();
    };
    this.drainWait = done;
    socket.once('drain', done);
  }

  /** @internal The router ended the body (the sink's _final). */
  endBody(): void {
    const conn = this.conn;
    if (this.requestDone) return;
    this.requestDone = true;
    if (!conn || conn.socket.destroyed) return;
    if (!this.headSent) {
      this.headSent = true;
      const text = this.headText + this.framing(0);
      conn.socket.write(this.chunked ? text + LAST_CHUNK : text, 'latin1');
    } else if (this.chunked) conn.socket.write(LAST_CHUNK, 'latin1');
    if (this.responseComplete) this.endExchange();
  }

  /** @internal 1xx other than an upgrade's 101. */
  onInformational(status: number): void {
    if (status === 100 && this.head.headers.expect !== undefined) this.cb.onContinue?.();
  }

  /**
   * @internal The final response's head. Without a body (`endStream`) the response is complete
   * for the router now (no body object); the connection is freed by onResponseComplete, which the
   * parser reports at the end of the same read.
   */
  onResponseHead(status: number, headers: IncomingHttpHeaders, endStream: boolean): void {
    this.ctx.outlier?.putHttpResponseCode(status);
    if (endStream) {
      this.responseComplete = true;
      this.slot.finish();
      this.cb.onHeaders(status, headers, true, undefined);
      return;
    }
    const body = new ResponseBody(this);
    this.body = body;
    this.cb.onHeaders(status, headers, false, body);
  }

  /** @internal Body bytes. */
  onResponseBody(chunk: Buffer): void {
    this.body?.push(chunk);
  }

  /** @internal The body stops flowing (or queues bytes): stop reading the socket. */
  pauseBody(): void {
    if (!this.responseComplete) this.conn?.pause();
  }

  /** @internal The body flows again. */
  resumeBody(): void {
    if (!this.responseComplete) this.conn?.resume();
  }

  /** @internal The response is complete. */
  onResponseComplete(trailers: IncomingHttpHeaders | undefined): void {
    this.responseComplete = true;
    this.responseTrailers = trailers;
    this.slot.finish();
    // The connection goes back to the pool before the router hears the end.
    if (this.requestDone) this.endExchange();
    this.body?.finish();
  }

  private endExchange(): void {
    if (this.exchangeEnded) return;
    this.exchangeEnded = true;
    const conn = this.conn;
    this.conn = undefined;
    if (conn && conn.stream === this) conn.exchangeDone();
  }

  /** @internal A 101 answering the upgrade: the socket carries the tunnel from now on. */
  onUpgrade(status: number, headers: IncomingHttpHeaders, rest: Buffer): void {
    const conn = this.conn;
    if (!conn) return;
    conn.stream = undefined;
    this.conn = undefined;
    this.exchangeEnded = true;
    this.responseComplete = true;
    this.releaseDrainWait();
    const socket = conn.socket;
    // The request lasts as long as its tunnel (Envoy keeps an upgraded stream active, and
    // LEAST_REQUEST counts it on the host).
    if (socket.destroyed) this.slot.finish();
    else socket.once('close', () => this.slot.finish());
    if (this.cb.onUpgrade) this.cb.onUpgrade(status, headers, socket, rest);
    else socket.destroy();
  }

  /** @internal The response could not be parsed (the connection destroys its socket). */
  onParseError(): void {
    this.ctx.stats.upstream_cx_protocol_error.inc();
    this.teardown();
    this.reportUnlessReset('protocol_error');
  }

  /** @internal The connection closed while this stream used it. */
  onConnectionClosed(): void {
    this.conn = undefined;
    this.releaseDrainWait();
    if (this.responseComplete) return;
    this.teardown();
    this.reportUnlessReset('connection_termination');
  }

  private onConnectError(err: unknown): void {
    this.slot.endPending();
    this.slot.finish();
    if (err instanceof UpstreamConnectError)
      this.reportUnlessReset(
        err.timedOut ? 'connection_timeout' : 'connection_failure',
        err.reason,
      );
    else this.reportUnlessReset('connection_termination');
  }

  /** A request body write waiting for 'drain' completes (the exchange is over for the socket). */
  private releaseDrainWait(): void {
    this.drainWait?.();
  }

  /** Ends the stream's accounting and its response body (without an error event). */
  private teardown(): void {
    this.slot.endPending();
    this.slot.finish();
    this.exchangeEnded = true;
    this.releaseDrainWait();
    const conn = this.conn;
    this.conn = undefined;
    if (conn && conn.stream === this) {
      conn.stream = undefined;
      conn.parser.stopped = true;
    }
    const body = this.body;
    if (body && !this.responseComplete) {
      this.responseComplete = true;
      body.close();
    }
  }

  /** Reports the reset to the router (once), unless the router reset the stream itself. */
  private reportUnlessReset(reason: UpstreamResetReason, transportFailure?: string): void {
    if (this.reported || this.localReset) return;
    this.reported = true;
    reportResetToOutlier(this.ctx.outlier, reason);
    this.cb.onReset(reason, transportFailure);
  }

  /** @internal The router destroyed the sink: abandon the exchange unless it is over. */
  abortFromUser(): void {
    if (this.exchangeEnded) return;
    this.reset();
  }

  trailers(): IncomingHttpHeaders | undefined {
    return this.responseTrailers;
  }

  reset(): void {
    if (this.localReset) return;
    this.localReset = true;
    if (this.pool.removeWaiting(this)) {
      this.slot.endPending();
      this.slot.finish();
      return;
    }
    if (!this.responseComplete && this.dispatched) this.ctx.stats.upstream_rq_tx_reset.inc();
    if (this.exchangeEnded) return;
    // A complete exchange whose response had no body (reset from onHeaders): the parser reports
    // its end later in the same read, and the connection stays clean for the pool.
    if (this.responseComplete && this.requestDone && this.body === undefined) return;
    const conn = this.conn;
    this.teardown();
    conn?.socket.destroy();
  }
}
