// The HTTP/2 connection pool of one cluster host: streams multiplexed on as few connections as
// the peer's SETTINGS_MAX_CONCURRENT_STREAMS (and the cluster's max_concurrent_streams) allow,
// a new connection when all are full, GOAWAY draining (no new streams on a connection that
// received one), idle_timeout, max_requests_per_connection and max_connection_duration.
//
// Circuit breaking as in Envoy: a stream that finds no connection with room is pending
// (max_pending_requests → `upstream_rq_pending_overflow`, reset reason `overflow`); a new
// connection is opened only below max_connections (else `upstream_cx_overflow`, and the stream
// waits for room on this pool's connections, unless the pool has none at all); a stream above
// max_requests when it would start is refused with `overflow`. Streams report their outcome to
// the host's outlier detection monitor.
import {
  connect as http2Connect,
  constants as h2constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { Socket } from 'node:net';
import {
  UpstreamConnectError,
  type HttpConnectionPool,
  type UpstreamRequestHead,
  type UpstreamResetReason,
  type UpstreamStream,
  type UpstreamStreamCallbacks,
} from './api.js';
import { RequestSlot, reportResetToOutlier, type PoolContext } from './pool-http1.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, HTTP2_HEADER_STATUS } =
  h2constants;

/** Envoy's default max_response_headers_kb (60 KiB). */
const MAX_HEADER_LIST_SIZE = 60 * 1024;

class H2Connection {
  active = 0;
  total = 0;
  draining = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private durationTimer: NodeJS.Timeout | undefined;
  readonly localAddress: string | undefined;

  constructor(
    readonly session: ClientHttp2Session,
    socket: Socket,
    private readonly pool: Http2ConnectionPool,
    private readonly ctx: PoolContext,
  ) {
    this.localAddress =
      socket.localAddress !== undefined ? `${socket.localAddress}:${socket.localPort}` : undefined;
    session.on('goaway', () => this.drain());
    session.on('error', () => this.drain());
    session.once('close', () => {
      this.clearTimers();
      pool.removeConnection(this);
    });
    const maxDuration = ctx.settings.maxConnectionDurationMs;
    if (maxDuration > 0) {
      this.durationTimer = setTimeout(() => {
        ctx.stats.upstream_cx_max_duration_reached.inc();
        this.drain();
      }, maxDuration);
      this.durationTimer.unref();
    }
    this.becameIdle();
  }

  /** Streams this connection can still take. */
  capacity(): number {
    if (this.draining || this.session.closed || this.session.destroyed) return 0;
    const peer = this.session.remoteSettings.maxConcurrentStreams ?? Infinity;
    const max = this.ctx.settings.maxRequestsPerConnection;
    const byCount = max > 0 ? max - this.total : Infinity;
    return Math.min(peer, this.ctx.settings.h2MaxConcurrentStreams, byCount) - this.active;
  }

  streamStarted(): void {
    this.active++;
    this.total++;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (this.active === 1) this.session.ref();
    const max = this.ctx.settings.maxRequestsPerConnection;
    if (max > 0 && this.total >= max) {
      this.ctx.stats.upstream_cx_max_requests.inc();
      this.draining = true;
    }
  }

  streamEnded(): void {
    this.active--;
    if (this.active === 0) this.becameIdle();
    this.pool.dispatch();
  }

  private becameIdle(): void {
    this.session.unref();
    if (this.draining) {
      this.session.close();
      return;
    }
    const idle = this.ctx.settings.idleTimeoutMs;
    if (idle > 0) {
      this.idleTimer = setTimeout(() => {
        this.ctx.stats.upstream_cx_idle_timeout.inc();
        this.drain();
      }, idle);
      this.idleTimer.unref();
    }
  }

  drain(): void {
    this.draining = true;
    if (this.active === 0 && !this.session.closed) this.session.close();
  }

  private clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
  }
}

export class Http2ConnectionPool implements HttpConnectionPool {
  readonly protocol = 'http2' as const;
  private readonly conns: H2Connection[] = [];
  private connecting: Promise<H2Connection> | undefined;
  private closed = false;
  /** Pending streams, in arrival order. */
  private readonly waiting: Http2Stream[] = [];

  constructor(private readonly ctx: PoolContext) {}

  get connectionCount(): number {
    return this.conns.length + (this.connecting ? 1 : 0);
  }

  /** Streams waiting for room on a connection. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  newStream(head: UpstreamRequestHead, cb: UpstreamStreamCallbacks): UpstreamStream {
    const stream = new Http2Stream(this, this.ctx, head, cb);
    if (this.closed) {
      stream.fail(new UpstreamConnectError('connection pool closed'));
      return stream;
    }
    const ready = this.available();
    if (ready) {
      // Reserve the slot now so that streams opened in the same tick spread correctly.
      if (stream.attach(ready)) queueMicrotask(() => stream.start(ready));
      return stream;
    }
    if (!this.ctx.resources.canQueueRequest()) {
      this.ctx.stats.upstream_rq_pending_overflow.inc();
      stream.overflow();
      return stream;
    }
    stream.beginPending();
    this.waiting.push(stream);
    this.maybeOpen(true);
    return stream;
  }

  private available(): H2Connection | undefined {
    for (const c of this.conns) if (c.capacity() > 0) return c;
    return undefined;
  }

  /** Opens a connection for the waiting streams when none is being opened and one may be. */
  private maybeOpen(count: boolean): void {
    if (this.connecting || this.waiting.length === 0 || this.closed) return;
    if (!this.ctx.resources.canCreateConnection()) {
      if (count) this.ctx.stats.upstream_cx_overflow.inc();
      // Envoy opens one anyway when the pool has none, so that its streams cannot starve.
      if (this.conns.length > 0) return;
    }
    const p = this.open();
    this.connecting = p;
    p.then(
      () => {
        if (this.connecting === p) this.connecting = undefined;
        this.dispatch();
      },
      (err: unknown) => {
        if (this.connecting === p) this.connecting = undefined;
        // Envoy purges the pending streams when a connection attempt fails.
        for (const s of this.waiting.splice(0)) s.fail(err);
      },
    );
  }

  /** @internal Starts waiting streams where there is room (a stream ended, a connection opened). */
  dispatch(): void {
    while (this.waiting.length > 0) {
      const conn = this.available();
      if (!conn) break;
      const stream = this.waiting.shift();
      if (stream?.attach(conn)) stream.start(conn);
    }
    this.maybeOpen(false);
  }

  /** @internal A waiting stream was reset. */
  removeWaiting(stream: Http2Stream): boolean {
    const i = this.waiting.indexOf(stream);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  private async open(): Promise<H2Connection> {
    const socket = await this.ctx.connect();
    this.ctx.stats.upstream_cx_http2_total.inc();
    const { host, settings } = this.ctx;
    const authority = host.address.includes(':')
      ? `[${host.address}]:${host.port}`
      : `${host.address}:${host.port}`;
    const session = http2Connect(`http://${authority}`, {
      createConnection: () => socket,
      maxHeaderListPairs: 1000,
      settings: {
        enablePush: false,
        maxHeaderListSize: MAX_HEADER_LIST_SIZE,
        ...(settings.h2InitialStreamWindowSize !== undefined
          ? { initialWindowSize: settings.h2InitialStreamWindowSize }
          : {}),
      },
    });
    if (settings.h2InitialConnectionWindowSize !== undefined) {
      session.once('connect', () => {
        try {
          session.setLocalWindowSize(settings.h2InitialConnectionWindowSize ?? 65535);
        } catch {
          /* out of range: keep the default */
        }
      });
    }
    session.on('error', () => {
      /* streams see their own errors; the connection is dropped on 'close' */
    });
    const conn = new H2Connection(session, socket, this, this.ctx);
    this.conns.push(conn);
    return conn;
  }

  /** @internal */
  removeConnection(conn: H2Connection): void {
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    if (!this.closed) this.dispatch();
  }

  drain(): void {
    for (const c of this.conns) c.drain();
  }

  close(): void {
    this.closed = true;
    for (const s of this.waiting.splice(0))
      s.fail(new UpstreamConnectError('connection pool closed'));
    for (const c of [...this.conns]) c.session.destroy();
  }
}

class Http2Stream implements UpstreamStream {
  private stream: ClientHttp2Stream | undefined;
  private responseTrailers: IncomingHttpHeaders | undefined;
  private localReset = false;
  private reported = false;
  private complete = false;
  private readonly slot: RequestSlot;

  constructor(
    private readonly pool: Http2ConnectionPool,
    private readonly ctx: PoolContext,
    private readonly head: UpstreamRequestHead,
    private readonly cb: UpstreamStreamCallbacks,
  ) {
    this.slot = new RequestSlot(ctx);
  }

  /** @internal The stream waits for room on a connection. */
  beginPending(): void {
    this.slot.beginPending();
  }

  /**
   * @internal Takes a slot on `conn` (max_requests permitting: else the stream fails with
   * `overflow` and false is returned).
   */
  attach(conn: H2Connection): boolean {
    this.endPending();
    if (!this.slot.tryStart()) {
      this.overflow();
      return false;
    }
    conn.streamStarted();
    return true;
  }

  /** @internal Refused by a circuit breaker. */
  overflow(): void {
    this.endPending();
    this.finish();
    queueMicrotask(() => this.report('overflow'));
  }

  private endPending(): void {
    this.slot.endPending();
  }

  private finish(): void {
    this.slot.finish();
  }

  private report(reason: UpstreamResetReason, transportFailure?: string): void {
    if (this.reported || this.localReset) return;
    this.reported = true;
    reportResetToOutlier(this.ctx.outlier, reason);
    this.cb.onReset(reason, transportFailure);
  }

  /** @internal The connection could not be had. */
  fail(err: unknown): void {
    this.endPending();
    this.finish();
    queueMicrotask(() => {
      if (err instanceof UpstreamConnectError)
        this.report(err.timedOut ? 'connection_timeout' : 'connection_failure', err.reason);
      else this.report('connection_failure', String(err));
    });
  }

  /** @internal Opens the stream on `conn`. */
  start(conn: H2Connection): void {
    if (this.localReset) {
      conn.streamEnded();
      this.finish();
      return;
    }
    const head = this.head;
    const headers: OutgoingHttpHeaders = head.headers;
    headers[':method'] = head.method;
    headers[':scheme'] = head.scheme;
    headers[':authority'] = head.authority;
    if (head.method !== 'CONNECT') headers[':path'] = head.path;
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: head.endStream });
    } catch {
      conn.streamEnded();
      this.finish();
      this.report(conn.session.destroyed ? 'connection_termination' : 'protocol_error');
      return;
    }
    this.stream = stream;
    this.ctx.outlier?.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS');
    stream.on('response', (h: IncomingHttpHeaders, flags: number) => {
      const status = Number(h[HTTP2_HEADER_STATUS]);
      this.ctx.outlier?.putHttpResponseCode(status);
      delete h[HTTP2_HEADER_STATUS];
      const endStream = (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      this.cb.onHeaders(status, h, endStream, stream);
    });
    stream.on('continue', () => this.cb.onContinue?.());
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      this.responseTrailers = t;
    });
    stream.once('end', () => {
      this.complete = true;
    });
    stream.on('error', () => {
      /* reported on 'close' */
    });
    stream.once('close', () => {
      conn.streamEnded();
      this.finish();
      if (this.complete && (stream.rstCode === NGHTTP2_NO_ERROR || stream.rstCode === undefined))
        return;
      if (this.complete && stream.rstCode === NGHTTP2_CANCEL) return;
      if (this.localReset) return;
      const code = stream.rstCode;
      if (code === NGHTTP2_REFUSED_STREAM) this.report('remote_refused_stream_reset');
      else if (code !== undefined && code !== NGHTTP2_NO_ERROR && !conn.session.destroyed)
        this.report('remote_reset');
      else if (!this.complete) this.report('connection_termination');
    });
    // Without a body the stream's writable side is already ended (endStream above).
    this.cb.onReady(head.endStream ? undefined : stream, conn.localAddress);
  }

  trailers(): IncomingHttpHeaders | undefined {
    return this.responseTrailers;
  }

  reset(): void {
    if (this.localReset) return;
    this.localReset = true;
    if (this.pool.removeWaiting(this)) {
      this.endPending();
      this.finish();
      return;
    }
    // Not started yet: start() sees the reset.
    if (this.stream && !this.stream.closed) {
      this.ctx.stats.upstream_rq_tx_reset.inc();
      this.stream.close(NGHTTP2_CANCEL);
    }
  }
}
