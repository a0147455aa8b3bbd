// The HTTP/1.1 connection pool of one cluster host on Trellis's own HTTP/1.1 client codec
// (http1-codec.ts) instead of Node's http.Agent / ClientRequest / IncomingMessage: one socket
// write per request head (and a small body), a strict response parser, the same keep-alive reuse,
// timeouts, limits and circuit breaking as pool-http1.ts (whose RequestSlot, PoolContext and
// outlier reporting it shares). About 1.5 times the throughput of pool-http1.ts in the proxy
// benchmark. Opt-in while it is proven: TRELLIS_UPSTREAM_HTTP1=codec in the proxy's environment.
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import {
  UpstreamConnectError,
  type HttpConnectionPool,
  type UpstreamRequestHead,
  type UpstreamResetReason,
  type UpstreamStream,
  type UpstreamStreamCallbacks,
} from './api.js';
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
import { RequestSlot, reportResetToOutlier, type PoolContext } from './pool-http1.js';

/** Bodies up to this size leave in one buffer with the head (larger ones: corked writes). */
const COALESCE_BYTES = 16 * 1024;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

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
  keepAliveSet = false;
  maxDurationTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: CodecHttp1ConnectionPool,
    readonly socket: Socket,
  ) {
    this.parser = new Http1ResponseParser(this);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', onSocketError);
    socket.on('timeout', this.onTimeout);
    socket.once('close', this.onClose);
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
      if (err instanceof Http1ParseError) stream.onParseError();
      else throw err;
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
  };

  private readonly onTimeout = (): void => {
    if (!this.idle) return;
    this.pool.ctx.stats.upstream_cx_idle_timeout.inc();
    this.socket.destroy();
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

  onHead(status: number, headers: IncomingHttpHeaders, keepAlive: boolean, upgrade: boolean): void {
    if (!keepAlive) this.noReuse = true;
    if (upgrade) {
      this.detach();
      this.stream?.onUpgrade(status, headers, this.parser.rest ?? Buffer.alloc(0));
      return;
    }
    this.stream?.onResponseHead(status, headers);
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

  /** The socket leaves the pool's listeners for an upgraded tunnel. */
  private detach(): void {
    this.detached = true;
    this.noReuse = true;
    const socket = this.socket;
    socket.pause();
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('timeout', this.onTimeout);
  }

  /** The stream's request and response are both complete. */
  exchangeDone(): void {
    this.stream = undefined;
    this.resume();
    if (this.noReuse) this.socket.destroy();
    else if (!this.pool.release(this)) this.socket.destroy();
  }
}

function onSocketError(): void {
  // Reported through 'close'.
}

export class CodecHttp1ConnectionPool implements HttpConnectionPool {
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
    if (conn.expired || this.draining || conn.socket.destroyed) return false;
    const max = this.ctx.settings.maxRequestsPerConnection;
    if (max > 0 && conn.requests >= max) {
      this.ctx.stats.upstream_cx_max_requests.inc();
      return false;
    }
    conn.idle = true;
    const socket = conn.socket;
    if (!conn.keepAliveSet) {
      conn.keepAliveSet = true;
      socket.setKeepAlive(true, 1000);
    }
    socket.unref();
    const idle = this.ctx.settings.idleTimeoutMs;
    if (idle > 0) socket.setTimeout(idle);
    this.free.push(conn);
    this.scheduleDispatch();
    return true;
  }

  /** @internal Takes the most recently freed connection for a request, if any. */
  takeFree(): Http1Connection | undefined {
    const conn = this.free.pop();
    if (!conn) return undefined;
    conn.idle = false;
    if (this.ctx.settings.idleTimeoutMs > 0) conn.socket.setTimeout(0);
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
    for (const s of this.waiting.splice(0))
      s.fail(new UpstreamConnectError('connection pool closed'));
    for (const conn of [...this.conns]) conn.socket.destroy();
  }
}

/** The request body's sink handed to the router (frames the body onto the connection). */
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

/** A response body: bytes are sliced from the socket's reads, with the socket's backpressure. */
class ResponseBody extends Readable {
  constructor(private readonly stream: Http1Stream) {
    super();
  }

  override _read(): void {
    this.stream.resumeBody();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stream.bodyDestroyed();
    cb(err);
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
  /** Whether the connection was assigned (the exchange runs on it). */
  private exchangeEnded = false;

  constructor(
    private readonly pool: CodecHttp1ConnectionPool,
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
    queueMicrotask(() => this.report('overflow'));
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
      queueMicrotask(() => this.report('protocol_error'));
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
    conn.requests++;
    if (this.localReset || this.slot.done) {
      // Reset while the connection was being found: it is still clean.
      if (!this.pool.release(conn)) conn.socket.destroy();
      return;
    }
    this.conn = conn;
    conn.stream = this;
    const head = this.head;
    conn.parser.start(head.method, head.upgrade !== undefined);
    this.ctx.outlier?.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS');
    if (head.endStream) this.sendHead(false);
    else if (head.headers.expect !== undefined) this.sendHead(true);
    const socket = conn.socket;
    const local =
      socket.localAddress !== undefined ? `${socket.localAddress}:${socket.localPort}` : undefined;
    const sink = new RequestSink(this);
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
    if (ok) cb();
    else socket.once('drain', () => cb());
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

  /** @internal The final response's head. */
  onResponseHead(status: number, headers: IncomingHttpHeaders): void {
    const body = new ResponseBody(this);
    this.body = body;
    this.ctx.outlier?.putHttpResponseCode(status);
    this.cb.onHeaders(status, headers, false, body);
  }

  /** @internal Body bytes. */
  onResponseBody(chunk: Buffer): void {
    const body = this.body;
    if (!body || body.destroyed) return;
    if (!body.push(chunk)) this.conn?.pause();
  }

  /** @internal The body asks for more. */
  resumeBody(): void {
    if (!this.responseComplete) this.conn?.resume();
  }

  /** @internal The response is complete. */
  onResponseComplete(trailers: IncomingHttpHeaders | undefined): void {
    this.responseComplete = true;
    this.responseTrailers = trailers;
    this.slot.finish();
    this.body?.push(null);
    if (this.requestDone) this.endExchange();
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
    const socket = conn.socket;
    // The request lasts as long as its tunnel (Envoy keeps an upgraded stream active, and
    // LEAST_REQUEST counts it on the host).
    if (socket.destroyed) this.slot.finish();
    else socket.once('close', () => this.slot.finish());
    if (this.cb.onUpgrade) this.cb.onUpgrade(status, headers, socket, rest);
    else socket.destroy();
  }

  /** @internal The response could not be parsed. */
  onParseError(): void {
    const conn = this.conn;
    this.ctx.stats.upstream_cx_protocol_error.inc();
    this.teardown();
    if (!this.localReset) this.report('protocol_error');
    conn?.socket.destroy();
  }

  /** @internal The connection closed while this stream used it. */
  onConnectionClosed(): void {
    this.conn = undefined;
    if (this.responseComplete) return;
    this.teardown();
    if (!this.localReset) this.report('connection_termination');
  }

  private onConnectError(err: unknown): void {
    this.slot.endPending();
    this.slot.finish();
    if (this.localReset) return;
    if (err instanceof UpstreamConnectError)
      this.report(err.timedOut ? 'connection_timeout' : 'connection_failure', err.reason);
    else this.report('connection_termination');
  }

  /** Ends the stream's accounting and its response body (without an error event). */
  private teardown(): void {
    this.slot.endPending();
    this.slot.finish();
    this.exchangeEnded = true;
    const conn = this.conn;
    this.conn = undefined;
    if (conn && conn.stream === this) {
      conn.stream = undefined;
      conn.parser.stopped = true;
    }
    const body = this.body;
    if (body && !body.destroyed && !this.responseComplete) {
      this.responseComplete = true;
      body.destroy();
    }
  }

  private report(reason: UpstreamResetReason, transportFailure?: string): void {
    if (this.reported) return;
    this.reported = true;
    reportResetToOutlier(this.ctx.outlier, reason);
    this.cb.onReset(reason, transportFailure);
  }

  /** @internal The router destroyed the sink: abandon the exchange unless it is over. */
  abortFromUser(): void {
    if (this.exchangeEnded) return;
    this.reset();
  }

  /** @internal The response body was destroyed (after its end too: autoDestroy). */
  bodyDestroyed(): void {
    if (this.responseComplete || this.exchangeEnded) return;
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
    const conn = this.conn;
    this.teardown();
    conn?.socket.destroy();
  }
}
