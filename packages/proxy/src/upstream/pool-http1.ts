// The HTTP/1.1 connection pool of one cluster host: keep-alive connections reused one request at
// a time (Node's http.Agent does the queueing and reuse; this subclass opens connections through
// the cluster, with connect_timeout and stats, and applies Envoy's idle_timeout,
// max_requests_per_connection and max_connection_duration). Requests go out with Node's HTTP
// client in strict parsing mode; responses come back as IncomingMessages.
import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  UpstreamConnectError,
  type HttpConnectionPool,
  type ResourceManagerApi,
  type UpstreamRequestHead,
  type UpstreamStream,
  type UpstreamStreamCallbacks,
} from './api.js';
import type { ClusterStats } from './cluster-stats.js';
import type { UpstreamHttpSettings } from './http-protocol-options.js';
import type { LbHost } from './lb/types.js';

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
  private readonly agentName: string;

  constructor(private readonly ctx: PoolContext) {
    this.agent = new PoolAgent(this);
    this.agentName = this.agent.getName({ host: ctx.host.address, port: ctx.host.port });
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** @internal Opens and registers a connection (called by the agent). */
  async openConnection(): Promise<Socket> {
    const socket = await this.ctx.connect();
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
    return new Http1Stream(this, this.ctx, head, cb);
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
    this.agent.destroy();
    for (const socket of this.conns.keys()) socket.destroy();
  }
}

class Http1Stream implements UpstreamStream {
  private readonly req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;
  private done = false;
  private pending = true;
  private localReset = false;
  /** A 101 answered: the request ends when the tunnel's socket closes. */
  private upgraded = false;

  constructor(
    private readonly pool: Http1ConnectionPool,
    private readonly ctx: PoolContext,
    head: UpstreamRequestHead,
    private readonly cb: UpstreamStreamCallbacks,
  ) {
    const { stats, host, resources } = ctx;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    resources.requests++;
    host.activeRequests++;
    stats.upstream_rq_pending_active.inc();
    resources.pendingRequests++;
    if (!pool.hasFreeConnection()) stats.upstream_rq_pending_total.inc();
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
      if (this.done) return;
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

  private reported = false;

  private report(
    reason: Parameters<UpstreamStreamCallbacks['onReset']>[0],
    transportFailure?: string,
  ): void {
    if (this.reported) return;
    this.reported = true;
    this.cb.onReset(reason, transportFailure);
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
    this.cb.onHeaders(res.statusCode ?? 502, res.headers, false, res);
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
    if (!this.res?.complete) this.ctx.stats.upstream_rq_tx_reset.inc();
    this.req?.destroy();
    this.res?.destroy();
  }
}
