// The Aggregated Discovery Service on @grpc/grpc-js: streams, push fan-out, bookkeeping.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  encodeDiscoveryResponse,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '@trellis/envoy';
import {
  StreamError,
  type Clock,
  type Connection,
  type ConnectionContext,
  type ConnectionStatus,
  type XdsLogger,
  type XdsServerHooks,
} from './connection.js';
import { DeltaConnection } from './delta.js';
import { decodeDeltaRequest, encodeDeltaResponse, type DeltaResponseOut } from './delta-wire.js';
import { parseProxyInfo, type ProxyInfo } from './proxy-info.js';
import { PushQueue, Semaphore } from './push-queue.js';
import type { PushRequest, ResourceSource } from './resource-source.js';
import { SotwConnection } from './sotw.js';
import { XdsStats } from './stats.js';

/** gRPC keepalive and connection-age settings (Istio's defaults unless set). */
export interface KeepaliveOptions {
  /** Ping an idle client this often (default 30 s). */
  readonly timeMs?: number;
  /** Close the connection when a ping is not answered in time (default 10 s). */
  readonly timeoutMs?: number;
  /** Close connections older than this so proxies spread over replicas (default 30 min). */
  readonly maxConnectionAgeMs?: number;
  /** Grace for streams after max age (default 10 s). */
  readonly maxConnectionAgeGraceMs?: number;
}

/** Options of an XdsServer. */
export interface XdsServerOptions {
  readonly source: ResourceSource;
  readonly clock?: Clock;
  /** Connections pushed to at once (Istio's PILOT_PUSH_THROTTLE; default 100). */
  readonly maxConcurrentPushes?: number;
  /** Responses being written at once, server-wide (bounds memory in large pushes; default 16). */
  readonly maxConcurrentSends?: number;
  readonly keepalive?: KeepaliveOptions;
  /** Sent as control_plane.identifier in every response. */
  readonly controlPlaneId?: string;
  readonly hooks?: XdsServerHooks;
  readonly log?: XdsLogger;
  /** Extra grpc-js server options. */
  readonly grpcOptions?: grpc.ServerOptions;
}

const noLog: XdsLogger = () => undefined;

function channelOptions(o: XdsServerOptions): grpc.ServerOptions {
  const k = o.keepalive ?? {};
  return {
    'grpc.keepalive_time_ms': k.timeMs ?? 30_000,
    'grpc.keepalive_timeout_ms': k.timeoutMs ?? 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_connection_age_ms': k.maxConnectionAgeMs ?? 30 * 60_000,
    'grpc.max_connection_age_grace_ms': k.maxConnectionAgeGraceMs ?? 10_000,
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    ...o.grpcOptions,
  };
}

/** The ADS service as served: delta responses and ACKs take the direct codec (see delta-wire.ts). */
const servedDefinition = {
  ...adsServiceDefinition,
  DeltaAggregatedResources: {
    ...adsServiceDefinition.DeltaAggregatedResources,
    requestDeserialize: decodeDeltaRequest,
    responseSerialize: encodeDeltaResponse,
  },
};

type Call<Req, Res> = grpc.ServerDuplexStream<Req, Res>;

/** What the server needs of the HTTP/2 stream under a grpc-js call (Node's ServerHttp2Stream). */
interface Http2Out {
  write(chunk: Uint8Array, cb?: (e?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
}

/**
 * The HTTP/2 stream a grpc-js server call writes its messages to, when grpc-js exposes it (a
 * call without server interceptors, grpc-js 1.10+); undefined otherwise, and responses then go
 * through `call.write` as usual.
 */
function http2Out(call: Call<unknown, unknown>): Http2Out | undefined {
  const inner = (call as unknown as { call?: { stream?: unknown } }).call;
  const s = inner?.stream as Partial<Http2Out & { respond: unknown; session: unknown }> | undefined;
  if (
    s &&
    typeof s.write === 'function' &&
    typeof s.cork === 'function' &&
    typeof s.uncork === 'function' &&
    typeof s.respond === 'function' &&
    s.session !== undefined
  )
    return s as Http2Out;
  return undefined;
}

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * A response as the byte strings of its gRPC message, in order: shared groups' pre-encoded
 * `resources` entries are passed as they are (protobuf concatenates repeated fields), never
 * copied into a per-proxy buffer.
 */
function sotwChunks(r: DiscoveryResponse): Buffer[] {
  const { encodedResources, ...head } = r;
  return [asBuffer(encodeDiscoveryResponse(head)), ...(encodedResources ?? []).map(asBuffer)];
}

function deltaChunks(r: DeltaResponseOut): Buffer[] {
  const { encodedResources, framed: _framed, ...head } = r;
  return [encodeDeltaResponse(head), ...(encodedResources ?? [])];
}

/**
 * Responses smaller than this are written at once, outside the server-wide send slots, and the
 * push does not wait for the socket to take them: they cannot add up to much memory (an endpoint
 * change is one small response per proxy), and waiting for each write's callback, 16 at a time,
 * would stretch a push to hundreds of proxies over as many rounds of the event loop.
 */
const SMALL_RESPONSE = 64 * 1024;

/**
 * An ADS server. Register it on a grpc-js Server with `addTo` (to share a port with other
 * services) or let it own one with `listen`.
 */
export class XdsServer {
  readonly stats = new XdsStats();
  private readonly ctx: ConnectionContext;
  private readonly queue: PushQueue;
  private readonly options: XdsServerOptions;
  private readonly conns = new Map<string, Connection>();
  private readonly calls = new Map<Connection, Call<unknown, unknown>>();
  /** The newest stream of each node id (ACK bookkeeping asks for it on every ACK). */
  private readonly newest = new Map<string, Connection>();
  private readonly bootId = randomBytes(4).toString('hex');
  private readonly sendSlots: Semaphore;
  private nonceCounter = 0;
  private connCounter = 0;
  private server: grpc.Server | undefined;
  private closing = false;

  constructor(options: XdsServerOptions) {
    this.options = options;
    this.queue = new PushQueue(options.maxConcurrentPushes ?? 100);
    this.sendSlots = new Semaphore(options.maxConcurrentSends ?? 16);
    this.ctx = {
      source: options.source,
      stats: this.stats,
      clock: options.clock ?? { now: () => Date.now() },
      hooks: options.hooks ?? {},
      log: options.log ?? noLog,
      controlPlaneId: options.controlPlaneId ?? 'trellis',
      nextNonce: () => `${this.bootId}-${++this.nonceCounter}`,
    };
  }

  /** Registers the ADS service on an existing grpc-js server. */
  addTo(server: grpc.Server): void {
    server.addService(servedDefinition, {
      StreamAggregatedResources: (call: Call<DiscoveryRequest, DiscoveryResponse>) =>
        this.serveSotw(call),
      DeltaAggregatedResources: (call: Call<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) =>
        this.serveDelta(call),
    });
  }

  /** Starts a grpc-js server of its own (plaintext) on `host:port`; resolves to the bound port. */
  async listen(
    address: string,
    credentials = grpc.ServerCredentials.createInsecure(),
  ): Promise<number> {
    if (this.server) throw new Error('the xDS server is already listening');
    const server = new grpc.Server(channelOptions(this.options));
    this.addTo(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (e, p) => (e ? reject(e) : resolve(p))),
    );
    this.server = server;
    return port;
  }

  /**
   * Pushes the given types to the given proxies (node ids, or 'all'). Pushes to one
   * connection are merged while it waits for a slot. Resolves once every targeted
   * connection has sent (or skipped, when its view did not change) its responses.
   */
  push(req: PushRequest): Promise<void> {
    let targets: Connection[];
    if (req.proxies === 'all') targets = [...this.conns.values()];
    else {
      const wanted = new Set(req.proxies);
      targets = [];
      for (const c of this.conns.values()) if (wanted.has(c.proxy.nodeId)) targets.push(c);
    }
    const done = targets.map((c) => {
      const p = c.addPush(req.typeUrls, req.reason);
      this.queue.schedule(c);
      return p;
    });
    return Promise.all(done).then(() => undefined);
  }

  /** Every connected stream's bookkeeping (a snapshot). */
  connections(): ConnectionStatus[] {
    return [...this.conns.values()].map((c) => c.status());
  }

  /** The newest stream of a proxy, by node id. */
  /** The proxies connected now, one entry per stream (no status is built: cheap enough per push). */
  proxies(): ProxyInfo[] {
    return [...this.conns.values()].map((c) => c.proxy);
  }

  /** Whether any stream of this node is connected. */
  hasProxy(nodeId: string): boolean {
    return this.newest.has(nodeId);
  }

  /** Whether the proxy's newest connection has converged on a change made at `since` (see Connection). */
  convergedSince(nodeId: string, since: number): boolean {
    return this.newest.get(nodeId)?.convergedSince(since) ?? false;
  }

  connection(nodeId: string): ConnectionStatus | undefined {
    return this.newest.get(nodeId)?.status();
  }

  private addConnection(c: Connection): void {
    this.conns.set(c.id, c);
    this.newest.set(c.proxy.nodeId, c);
  }

  /** Removes a stream; false when it was already gone. */
  private removeConnection(c: Connection): boolean {
    if (!this.conns.delete(c.id)) return false;
    if (this.newest.get(c.proxy.nodeId) === c) {
      // Another stream of the node, if any, becomes the newest (Map order is insertion order).
      let next: Connection | undefined;
      for (const o of this.conns.values()) if (o.proxy.nodeId === c.proxy.nodeId) next = o;
      if (next) this.newest.set(c.proxy.nodeId, next);
      else this.newest.delete(c.proxy.nodeId);
    }
    return true;
  }

  /** Number of connected streams. */
  get connectedCount(): number {
    return this.conns.size;
  }

  /** Pushes waiting for a slot and in progress. */
  pushQueueDepth(): { waiting: number; active: number } {
    return { waiting: this.queue.waiting, active: this.queue.active };
  }

  /**
   * Graceful shutdown: refuses new streams, ends the open ones with UNAVAILABLE (proxies
   * reconnect, to another replica if any), then stops the server; after `graceMs` it is
   * stopped forcibly.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    for (const [conn, call] of [...this.calls]) {
      this.endCall(conn, call, grpc.status.UNAVAILABLE, 'the control plane is shutting down');
    }
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // A client may open a new stream between the calls ending and the graceful shutdown;
    // whatever session is left is destroyed so nothing outlives close().
    server.forceShutdown();
  }

  private serveSotw(call: Call<DiscoveryRequest, DiscoveryResponse>): void {
    this.serve(
      call,
      'sotw',
      sotwChunks,
      () => undefined,
      (id, proxy, send) => new SotwConnection(id, proxy, this.ctx, send),
    );
  }

  private serveDelta(call: Call<DeltaDiscoveryRequest, DeltaResponseOut>): void {
    this.serve(
      call,
      'delta',
      deltaChunks,
      (r) => r.framed,
      (id, proxy, send) => new DeltaConnection(id, proxy, this.ctx, send),
    );
  }

  private serve<Req extends DiscoveryRequest | DeltaDiscoveryRequest, Res>(
    call: Call<Req, Res>,
    protocol: 'sotw' | 'delta',
    chunks: (r: Res) => Buffer[],
    framed: (r: Res) => Buffer | undefined,
    make: (
      id: string,
      proxy: ProxyInfo,
      send: (r: Res) => Promise<void>,
    ) => Connection & { handleRequest(r: Req): Promise<void> },
  ): void {
    if (this.closing) {
      call.emit('error', {
        code: grpc.status.UNAVAILABLE,
        details: 'the control plane is shutting down',
      });
      return;
    }
    let conn: (Connection & { handleRequest(r: Req): Promise<void> }) | undefined;
    let ended = false;
    const cleanup = (): void => {
      if (!conn) return;
      const c = conn;
      if (!this.removeConnection(c)) return;
      this.calls.delete(c);
      c.close();
      this.ctx.log('info', 'proxy disconnected', { connection: c.id });
      this.ctx.hooks.onDisconnect?.(c.status());
    };
    // Responses are written a few at a time server-wide, each once the previous ones were handed
    // to their sockets: a full push of megabytes to hundreds of proxies would otherwise hold
    // every encoded response in memory at once.
    // Where grpc-js exposes the call's HTTP/2 stream, a response is written there as its gRPC
    // frame (5-byte prefix) and its encoded parts: the shared parts go to the socket without a
    // copy. grpc-js would join them into one buffer and copy that again into its frame, i.e.
    // allocate and copy twice the whole response (megabytes of CDS, per proxy).
    const out = http2Out(call);
    let headersSent = false;
    const sendHeaders = (): void => {
      if (headersSent) return;
      headersSent = true;
      call.sendMetadata(new grpc.Metadata()); // response headers, once per call (grpc-js)
    };
    const write = (r: Res, parts: Buffer[], done: () => void): void => {
      if (!out) {
        call.write(r, done);
        return;
      }
      let size = 0;
      for (const p of parts) size += p.byteLength;
      const prefix = Buffer.allocUnsafe(5);
      prefix[0] = 0; // not compressed
      prefix.writeUInt32BE(size, 1);
      sendHeaders();
      out.cork();
      out.write(prefix);
      parts.forEach((p, i) => out.write(p, i === parts.length - 1 ? () => done() : undefined));
      out.uncork();
      this.stats.directWrites++;
    };
    const send = async (r: Res): Promise<void> => {
      if (ended || call.destroyed || call.writableEnded) return;
      // A response built once for many streams (its one Buffer is not copied per stream) and
      // small ones are written now, without a send slot or waiting for the socket.
      const whole = out ? framed(r) : undefined;
      if (out && whole) {
        sendHeaders();
        out.write(whole);
        this.stats.directWrites++;
        return;
      }
      const parts = out ? chunks(r) : [];
      if (out) {
        let size = 0;
        for (const p of parts) size += p.byteLength;
        if (size < SMALL_RESPONSE) {
          write(r, parts, () => undefined);
          return;
        }
      }
      await this.sendSlots.acquire();
      try {
        if (ended || call.destroyed || call.writableEnded) return;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            call.off('close', done);
            resolve();
          };
          call.on('close', done);
          write(r, parts, done);
        });
      } finally {
        this.sendSlots.release();
      }
    };
    const fail = (code: number, message: string): void => {
      if (ended) return;
      ended = true;
      this.stats.rejectedStreams++;
      this.ctx.log('warn', 'refusing xDS stream', { protocol, reason: message });
      call.emit('error', { code, details: message });
      cleanup();
    };
    call.on('data', (req: Req) => {
      if (ended) return;
      if (!conn) {
        const proxy = parseProxyInfo(req.node);
        if (!proxy.ok) {
          fail(grpc.status.INVALID_ARGUMENT, proxy.error);
          return;
        }
        conn = make(`${proxy.value.nodeId}-${++this.connCounter}`, proxy.value, send);
        this.addConnection(conn);
        this.calls.set(conn, call);
        this.ctx.log('info', 'proxy connected', { connection: conn.id, protocol });
        this.ctx.hooks.onConnect?.(conn.status());
      }
      const c = conn;
      c.enqueue(() => c.handleRequest(req)).catch((e: unknown) => {
        if (e instanceof StreamError) fail(e.grpcCode, e.message);
        else {
          this.ctx.log('error', 'xDS request failed', { connection: c.id, error: String(e) });
          fail(grpc.status.INTERNAL, 'internal error handling the request');
        }
      });
    });
    call.on('end', () => {
      cleanup();
      if (!ended) {
        ended = true;
        call.end();
      }
    });
    call.on('error', () => cleanup());
    call.on('cancelled', () => {
      ended = true;
      cleanup();
    });
    call.on('close', () => cleanup());
  }

  private endCall(
    conn: Connection,
    call: Call<unknown, unknown>,
    code: number,
    details: string,
  ): void {
    this.calls.delete(conn);
    this.removeConnection(conn);
    conn.close();
    this.ctx.hooks.onDisconnect?.(conn.status());
    call.emit('error', { code, details });
  }
}
