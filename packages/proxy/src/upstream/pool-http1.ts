// The HTTP/1.1 connection pool of one cluster host: keep-alive connections reused one request at
// a time (Node's http.Agent does the reuse; this subclass opens connections through the cluster,
// with connect_timeout and stats, and applies Envoy's idle_timeout, max_requests_per_connection
// and max_connection_duration). Requests go out with Node's HTTP client in strict parsing mode;
// responses come back as IncomingMessages.
//
// Circuit breaking (Envoy's ConnPoolImplBase): a request that finds no free connection is
// pending (refused with `upstream_rq_pending_overflow` and reset reason `overflow` above
// max_pending_requests); it opens a connection when max_connections allows (else
// `upstream_cx_overflow`, and it waits for a connection of this pool to come free; a pool with
// no connection at all always opens one, as Envoy does, so that it cannot starve); a request
// above max_requests when it is about to be sent is refused the same way. Every stream reports
// its outcome to the host's outlier detection monitor.
import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  UpstreamConnectError,
  type HttpConnectionPool,
  type ResourceManagerApi,
  type UpstreamRequestHead,
  type UpstreamResetReason,
  type UpstreamStream,
  type UpstreamStreamCallbacks,
} from './api.js';
import type { ClusterStats } from './cluster-stats.js';
import type { UpstreamHttpSettings } from './http-protocol-options.js';
import type { LbHost } from './lb/types.js';
import type { OutlierSink } from './outlier-detection.js';

/** Envoy's default max_response_headers_kb (60 KiB). */
const MAX_RESPONSE_HEADER_BYTES = 60 * 1024;

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

interface ConnState {
  requests: number;
  idle: boolean;
  expired: boolean;
  maxDurationTimer?: NodeJS.Timeout;
}

class PoolAgent extends Agent {
  constructor(private readonly pool: Http1ConnectionPool) {
    super({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity, scheduling: 'lifo' });
  }

  override createConnection(
    _options: unknown,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    this.pool.openConnection().then(
      (socket) => callback?.(null, socket),
      (err: unknown) => callback?.(err as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }

  override keepSocketAlive(socket: Duplex): boolean {
    return this.pool.keepAlive(socket as Socket);
  }

  override reuseSocket(socket: Duplex, req: ClientRequest): void {
    // The base class removes its free-socket error listener and refs the socket.
    super.reuseSocket(socket, req);
    this.pool.reuse(socket as Socket);
  }
}

export class Http1ConnectionPool implements HttpConnectionPool {
  readonly protocol = 'http1' as const;
  private readonly agent: PoolAgent;
  private readonly conns = new Map<Socket, ConnState>();
  private draining = false;
  private closed = false;
  private readonly agentName: string;
  /** Connections being opened. */
  private connecting = 0;
  /** Pending requests waiting for a connection (max_connections reached). */
  private readonly waiting: Http1Stream[] = [];
  private dispatchScheduled = false;

  constructor(private readonly ctx: PoolContext) {
    this.agent = new PoolAgent(this);
    this.agentName = this.agent.getName({ host: ctx.host.address, port: ctx.host.port });
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** @internal Opens and registers a connection (called by the agent). */
  async openConnection(): Promise<Socket> {
    this.connecting++;
    let socket: Socket;
    try {
      socket = await this.ctx.connect();
    } finally {
      this.connecting--;
      this.scheduleDispatch();
    }
    const state: ConnState = { requests: 0, idle: false, expired: false };
    this.conns.set(socket, state);
    this.ctx.stats.upstream_cx_http1_total.inc();
    const maxDuration = this.ctx.settings.maxConnectionDurationMs;
    if (maxDuration > 0) {
      state.maxDurationTimer = setTimeout(() => {
        state.expired = true;
        this.ctx.stats.upstream_cx_max_duration_reached.inc();
        if (state.idle) socket.destroy();
      }, maxDuration);
      state.maxDurationTimer.unref();
    }
    socket.on('timeout', () => {
      if (state.idle) this.ctx.stats.upstream_cx_idle_timeout.inc();
    });
    socket.once('close', () => {
      if (state.maxDurationTimer) clearTimeout(state.maxDurationTimer);
      this.conns.delete(socket);
      this.scheduleDispatch();
    });
    if (this.draining) state.expired = true;
    return socket;
  }

  /** @internal Whether a connection whose request finished may be kept (agent's keepSocketAlive). */
  keepAlive(socket: Socket): boolean {
    const state = this.conns.get(socket);
    if (!state || state.expired || this.draining) return false;
    const max = this.ctx.settings.maxRequestsPerConnection;
    if (max > 0 && state.requests >= max) {
      this.ctx.stats.upstream_cx_max_requests.inc();
      return false;
    }
    state.idle = true;
    socket.setKeepAlive(true, 1000);
    socket.unref();
    const idle = this.ctx.settings.idleTimeoutMs;
    socket.setTimeout(idle > 0 ? idle : 0);
    // The agent puts the socket on its free list right after this returns.
    this.scheduleDispatch();
    return true;
  }

  /** @internal A kept connection is taken for a new request (agent's reuseSocket). */
  reuse(socket: Socket): void {
    const state = this.conns.get(socket);
    if (state) state.idle = false;
    socket.setTimeout(0);
    socket.ref();
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

  /** @internal */
  countRequest(socket: Socket): void {
    const state = this.conns.get(socket);
    if (state) {
      state.requests++;
      state.idle = false;
    }
  }

  /** @internal Whether a free connection is waiting (the request will not be pending). */
  hasFreeConnection(): boolean {
    return (this.agent.freeSockets[this.agentName]?.length ?? 0) > 0;
  }

  /** @internal */
  get httpAgent(): Agent {
    return this.agent;
  }

  drain(): void {
    this.draining = true;
    for (const [socket, state] of this.conns) {
      state.expired = true;
      if (state.idle) socket.destroy();
    }
  }

  close(): void {
    this.draining = true;
    this.closed = true;
    for (const s of this.waiting.splice(0))
      s.fail(new UpstreamConnectError('connection pool closed'));
    this.agent.destroy();
    for (const socket of this.conns.keys()) socket.destroy();
  }
}

class Http1Stream implements UpstreamStream {
  private req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;
  private readonly slot: RequestSlot;
  private localReset = false;
  private reported = false;
  /** A 101 answered: the request ends when the tunnel's socket closes. */
  private upgraded = false;

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
    this.endPending();
    this.finish();
    queueMicrotask(() => this.report('overflow'));
  }

  /** @internal Fails before it was sent. */
  fail(err: UpstreamConnectError): void {
    this.endPending();
    this.finish();
    queueMicrotask(() => this.onError(err));
  }

  /** @internal Sends the request (a free connection, or a new one, through the agent). */
  dispatch(): void {
    if (this.slot.done || this.localReset) return;
    const { host } = this.ctx;
    const head = this.head;
    const cb = this.cb;
    const pool = this.pool;
    if (!this.slot.tryStart()) {
      this.overflow();
      return;
    }
    const headers = head.headers;
    headers.host = head.authority;
    if (head.upgrade !== undefined) {
      headers.connection = 'upgrade';
      headers.upgrade = head.upgrade;
    }
    let req: ClientRequest;
    try {
      req = httpRequest({
        agent: pool.httpAgent,
        host: host.address,
        port: host.port,
        method: head.method,
        path: head.path,
        headers,
        setHost: false,
        insecureHTTPParser: false,
        maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
      });
    } catch {
      // The request line or a header is not valid HTTP/1.1 (e.g. after a rewrite).
      this.req = undefined;
      this.endPending();
      this.finish();
      queueMicrotask(() => this.report('protocol_error'));
      return;
    }
    this.req = req;
    req.once('socket', (socket: Socket) => {
      this.endPending();
      pool.countRequest(socket);
      if (this.slot.done) return;
      this.ctx.outlier?.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS');
      cb.onReady(
        req,
        socket.localAddress !== undefined
          ? `${socket.localAddress}:${socket.localPort}`
          : undefined,
      );
    });
    req.on('response', (res) => this.onResponse(res));
    if (headers.expect !== undefined) req.on('continue', () => cb.onContinue?.());
    if (head.upgrade !== undefined)
      req.on('upgrade', (res: IncomingMessage, socket: Socket, upgradeHead: Buffer) => {
        this.res = res;
        this.upgraded = true;
        this.endPending();
        // The request lasts as long as its tunnel (Envoy keeps an upgraded stream active, and
        // LEAST_REQUEST counts it on the host).
        if (socket.destroyed) this.finish();
        else socket.once('close', () => this.finish());
        // The socket left the agent: it carries the tunnel now.
        if (cb.onUpgrade) cb.onUpgrade(res.statusCode ?? 101, res.headers, socket, upgradeHead);
        else socket.destroy();
      });
    req.on('error', (err: Error) => this.onError(err));
    req.once('close', () => {
      this.endPending();
      if (!this.upgraded) this.finish();
      if (!this.res && !this.reported && !this.localReset) this.report('connection_termination');
    });
  }

  private report(reason: UpstreamResetReason, transportFailure?: string): void {
    if (this.reported) return;
    this.reported = true;
    reportResetToOutlier(this.ctx.outlier, reason);
    this.cb.onReset(reason, transportFailure);
  }

  private endPending(): void {
    this.slot.endPending();
  }

  private finish(): void {
    this.slot.finish();
  }

  private onResponse(res: IncomingMessage): void {
    this.res = res;
    res.once('end', () => this.finish());
    res.once('close', () => {
      this.finish();
      if (!res.complete && !this.localReset) this.report('connection_termination');
    });
    res.on('error', () => {
      /* reported through 'close' */
    });
    const status = res.statusCode ?? 502;
    this.ctx.outlier?.putHttpResponseCode(status);
    this.cb.onHeaders(status, res.headers, false, res);
  }

  private onError(err: Error): void {
    this.endPending();
    this.finish();
    if (this.localReset) return;
    if (err instanceof UpstreamConnectError) {
      this.report(err.timedOut ? 'connection_timeout' : 'connection_failure', err.reason);
      return;
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('HPE_')) {
      this.ctx.stats.upstream_cx_protocol_error.inc();
      this.report('protocol_error');
    } else this.report('connection_termination');
  }

  trailers(): Record<string, string | string[] | undefined> | undefined {
    const t = this.res?.trailers;
    return t && Object.keys(t).length > 0 ? t : undefined;
  }

  reset(): void {
    if (this.localReset) return;
    this.localReset = true;
    if (this.pool.removeWaiting(this)) {
      this.endPending();
      this.finish();
      return;
    }
    if (!this.res?.complete && this.req) this.ctx.stats.upstream_rq_tx_reset.inc();
    this.req?.destroy();
    this.res?.destroy();
  }
}
