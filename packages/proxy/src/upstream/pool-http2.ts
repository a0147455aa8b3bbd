// The HTTP/2 connection pool of one cluster host: streams multiplexed on as few connections as
// the peer's SETTINGS_MAX_CONCURRENT_STREAMS (and the cluster's max_concurrent_streams) allow,
// a new connection when all are full, GOAWAY draining (no new streams on a connection that
// received one), idle_timeout, max_requests_per_connection and max_connection_duration.
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
import type { PoolContext } from './pool-http1.js';

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

  constructor(private readonly ctx: PoolContext) {}

  get connectionCount(): number {
    return this.conns.length + (this.connecting ? 1 : 0);
  }

  newStream(head: UpstreamRequestHead, cb: UpstreamStreamCallbacks): UpstreamStream {
    const stream = new Http2Stream(this.ctx, head, cb);
    const ready = this.available();
    if (ready) {
      // Reserve the slot now so that streams opened in the same tick spread correctly.
      ready.streamStarted();
      queueMicrotask(() => stream.start(ready, true));
    } else {
      this.ctx.stats.upstream_rq_pending_total.inc();
      this.acquire().then(
        (conn) => stream.start(conn, false),
        (err: unknown) => stream.fail(err),
      );
    }
    return stream;
  }

  private available(): H2Connection | undefined {
    for (const c of this.conns) if (c.capacity() > 0) return c;
    return undefined;
  }

  private async acquire(): Promise<H2Connection> {
    for (;;) {
      if (this.closed) throw new UpstreamConnectError('connection pool closed');
      const ready = this.available();
      if (ready) return ready;
      if (!this.connecting) {
        const p = this.open();
        this.connecting = p;
        const clear = (): void => {
          if (this.connecting === p) this.connecting = undefined;
        };
        p.then(clear, clear);
      }
      const conn = await this.connecting;
      if (conn.capacity() > 0) return conn;
    }
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
  }

  drain(): void {
    for (const c of this.conns) c.drain();
  }

  close(): void {
    this.closed = true;
    for (const c of [...this.conns]) c.session.destroy();
  }
}

class Http2Stream implements UpstreamStream {
  private stream: ClientHttp2Stream | undefined;
  private responseTrailers: IncomingHttpHeaders | undefined;
  private localReset = false;
  private reported = false;
  private complete = false;
  private pending = true;
  private done = false;

  constructor(
    private readonly ctx: PoolContext,
    private readonly head: UpstreamRequestHead,
    private readonly cb: UpstreamStreamCallbacks,
  ) {
    const { stats, resources, host } = ctx;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    stats.upstream_rq_pending_active.inc();
    resources.requests++;
    resources.pendingRequests++;
    host.activeRequests++;
  }

  private endPending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.ctx.stats.upstream_rq_pending_active.dec();
    this.ctx.resources.pendingRequests--;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.ctx.stats.upstream_rq_active.dec();
    this.ctx.resources.requests--;
    this.ctx.host.activeRequests--;
  }

  private report(reason: UpstreamResetReason, transportFailure?: string): void {
    if (this.reported || this.localReset) return;
    this.reported = true;
    this.cb.onReset(reason, transportFailure);
  }

  /** @internal The connection could not be had. */
  fail(err: unknown): void {
    this.endPending();
    this.finish();
    if (err instanceof UpstreamConnectError)
      this.report(err.timedOut ? 'connection_timeout' : 'connection_failure', err.reason);
    else this.report('connection_failure', String(err));
  }

  /** @internal Opens the stream on `conn`. */
  start(conn: H2Connection, reserved: boolean): void {
    this.endPending();
    if (!reserved) conn.streamStarted();
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
    stream.on('response', (h: IncomingHttpHeaders, flags: number) => {
      const status = Number(h[HTTP2_HEADER_STATUS]);
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
    this.cb.onReady(stream, conn.localAddress);
  }

  trailers(): IncomingHttpHeaders | undefined {
    return this.responseTrailers;
  }

  reset(): void {
    if (this.localReset) return;
    this.localReset = true;
    // Not started yet: start() sees the reset.
    if (this.stream && !this.stream.closed) {
      this.ctx.stats.upstream_rq_tx_reset.inc();
      this.stream.close(NGHTTP2_CANCEL);
    }
  }
}
