// The proxy process: wires the xDS client to the cluster and listener managers, the HTTP
// connection manager to the router and the upstream pools, and every finished request or
// connection to access logs and Istio's metrics; serves the admin and health endpoints; drains
// on SIGTERM. Everything the proxy does comes from xDS: the bootstrap says only who it is and
// where the control plane is.
import type { Socket } from 'node:net';
import type { AccessLog, FilterChain, HttpConnectionManager, Listener } from '@trellis/envoy';
import { AdminServer, type ServerState } from './admin/index.js';
import { HttpConnectionManagerImpl } from './http/connection-manager.js';
import type { HeaderMap, RequestHeaders } from './http/headers.js';
import type { MetricsContext } from './observability/istio-metrics.js';
import type { HttpFilterFactory, HttpStreamFilter, StreamHeaders } from './http/router.js';
import {
  createNetworkFilterFactory,
  ListenerManager,
  type ConnectionInfo,
  type TcpProxyLogContext,
} from './listener/index.js';
import { socketOriginalDestination } from './listener/original-dst-socket.js';
import { PIPE_PORT } from './listener/ip.js';
import {
  AccessLogManager,
  IstioMetrics,
  PeerMetadataExchange,
  StatsStore,
  workloadFromNodeMetadata,
  type AccessLogger,
  type LogContext,
  type TcpMetricsReporter,
} from './observability/index.js';
import type { StreamInfo } from './stream-info.js';
import { ClusterManager } from './upstream/cluster-manager.js';
import { certificatesDump, createDownstreamTlsFactory, SecretManager } from './tls/index.js';
import {
  AdsClient,
  EMPTY_CONFIG,
  type Bootstrap,
  type ConfigType,
  type ProxyConfig,
  type XdsProtocol,
} from './xds/index.js';

export type ProxyLogger = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

export interface ProxyOptions {
  readonly bootstrap: Bootstrap;
  /** xDS variant (default delta). */
  readonly protocol?: XdsProtocol;
  /** Admin listener address (default 127.0.0.1) and port (default the bootstrap's, 15000). */
  readonly adminAddress?: string;
  readonly adminPort?: number;
  /** Health listener (`/healthz/ready`): default the bootstrap's status port (15021); null: none. */
  readonly healthPort?: number | null;
  readonly healthAddress?: string;
  /**
   * An access log for every HTTP request and TCP connection in addition to those the
   * configuration asks for (Istio's meshConfig.accessLogFile): a path, `/dev/stdout`, ...
   */
  readonly accessLogFile?: string;
  readonly accessLogEncoding?: 'TEXT' | 'JSON';
  /** How long connections may finish when draining (default 5 s, Istio's drain duration). */
  readonly drainTimeMs?: number;
  readonly log?: ProxyLogger;
}

const noLog: ProxyLogger = () => undefined;

const TEXT_DEFAULT: AccessLog = {
  name: 'envoy.access_loggers.file',
};

/** One running proxy. */
export class TrellisProxy {
  readonly stats = new StatsStore();
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  readonly ads: AdsClient;
  readonly admin: AdminServer;
  readonly accessLogs = new AccessLogManager();
  readonly metrics: IstioMetrics;
  readonly peers: PeerMetadataExchange;
  /** SDS secrets and the agent-resolved certificate files. */
  readonly secrets: SecretManager;
  #config: ProxyConfig = EMPTY_CONFIG;
  #state: ServerState = 'PRE_INITIALIZING';
  #applying: Promise<void> = Promise.resolve();
  #ready: Promise<void>;
  #markReady!: () => void;
  readonly #log: ProxyLogger;
  readonly #extraLog: AccessLogger | undefined;
  #adminPort = 0;
  #healthPort: number | undefined;
  #closed = false;

  private constructor(private readonly options: ProxyOptions) {
    this.#log = options.log ?? noLog;
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
    const b = options.bootstrap;
    const local = workloadFromNodeMetadata(b.node.metadata);
    this.metrics = new IstioMetrics(this.stats, local, {
      // TCP connections name their cluster only; HTTP passes the metadata itself.
      clusterMetadata: (name) => this.#config.clusters.get(name)?.metadata?.filterMetadata,
    });
    this.peers = new PeerMetadataExchange(b.node.id ?? '', local);
    this.secrets = new SecretManager({ stats: this.stats });
    this.clusters = new ClusterManager({ stats: this.stats, secrets: this.secrets });
    if (options.accessLogFile) {
      const r = this.accessLogs.create({
        ...TEXT_DEFAULT,
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path: options.accessLogFile,
          ...(options.accessLogEncoding === 'JSON' ? { logFormat: { jsonFormat: {} } } : {}),
        },
      } as AccessLog);
      if (!r.ok) throw new Error(`access log: ${r.error}`);
      this.#extraLog = r.value;
    }
    const networkFilters = createNetworkFilterFactory({
      tcpProxy: {
        clusterManager: this.clusters,
        stats: this.stats,
        onUpstreamConnected: (info, ctx) => this.#tcpReporter(info, ctx).opened(),
        onConnectionComplete: (info, ctx) => this.#tcpComplete(info, ctx),
      },
      httpConnectionManager: (config, chain, listener) => this.#hcm(config, chain, listener),
      transportSocket: createDownstreamTlsFactory({ secrets: this.secrets, stats: this.stats }),
    });
    this.listeners = new ListenerManager({
      networkFilters,
      originalDestination: socketOriginalDestination,
      stats: this.stats,
      ...(options.drainTimeMs !== undefined ? { drainTimeMs: options.drainTimeMs } : {}),
      onListenerAccessLog: (info) => this.#logStream({ info }),
    });
    this.ads = new AdsClient({
      bootstrap: b,
      protocol: options.protocol ?? 'delta',
      stats: this.stats,
      onConfig: (config, changed) => this.#onConfig(config, changed),
      log: {
        debug: (m: string) => this.#log('debug', m),
        info: (m: string) => this.#log('info', m),
        warn: (m: string) => this.#log('warn', m),
        error: (m: string) => this.#log('error', m),
      },
    });
    this.admin = new AdminServer(
      {
        config: () => this.#config,
        stats: this.stats,
        state: () => this.#state,
        xdsStatus: {
          // A rejected update names its resources in the NACK message (`cluster "x": ...`).
          errorState: (kind, name) => {
            const nack = this.ads.status().types[kind].lastNack;
            return nack && nack.message.includes(`"${name}"`)
              ? { details: nack.message, lastUpdateAttempt: nack.at, versionInfo: nack.version }
              : undefined;
          },
          lastUpdated: (kind) => this.ads.status().types[kind].lastUpdateAt,
          secret: (name) => this.secrets.active().get(name),
          warmingSecrets: () => {
            const sub = this.ads.status().types.secrets.subscribed;
            return sub === '*' ? [] : sub.filter((n) => !this.secrets.active().has(n));
          },
        },
        certs: () => certificatesDump(this.secrets),
        bootstrap: () => ({ node: b.node }),
        shutdown: () => this.close(),
        drainListeners: (o) => this.listeners.drain(options.drainTimeMs ?? 5_000, o),
      },
      {
        address: options.adminAddress ?? '127.0.0.1',
        port: options.adminPort ?? b.adminPort,
        healthPort: options.healthPort === undefined ? b.statusPort : options.healthPort,
        ...(options.healthAddress !== undefined ? { healthAddress: options.healthAddress } : {}),
      },
    );
  }

  /** Starts the admin endpoint and the xDS client; resolves once the admin port is bound. */
  static async start(options: ProxyOptions): Promise<TrellisProxy> {
    const p = new TrellisProxy(options);
    const ports = await p.admin.start();
    p.#adminPort = ports.adminPort;
    p.#healthPort = ports.healthPort;
    p.#state = 'INITIALIZING';
    p.ads.start();
    return p;
  }

  get adminPort(): number {
    return this.#adminPort;
  }

  get healthPort(): number | undefined {
    return this.#healthPort;
  }

  get state(): ServerState {
    return this.#state;
  }

  /** The configuration in force. */
  get config(): ProxyConfig {
    return this.#config;
  }

  /** Resolves once the first complete configuration is applied (LIVE). */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /** Resolves once every configuration received so far is applied. */
  whenApplied(): Promise<void> {
    return this.#applying;
  }

  #onConfig(config: ProxyConfig, changed: readonly ConfigType[]): void {
    this.#applying = this.#applying.then(async () => {
      if (this.#closed) return;
      this.#config = config;
      try {
        // Secrets first: the listeners and clusters applied next resolve them per connection.
        if (changed.includes('secrets'))
          this.secrets.update(config.secrets ?? new Map(), config.versions.secrets ?? '');
        if (changed.includes('clusters') || changed.includes('endpoints')) {
          const c = await this.clusters.update(config);
          for (const e of c.errors)
            this.#log('warn', 'cluster rejected', { cluster: e.name, error: e.message });
        }
        if (changed.some((c) => c !== 'secrets')) {
          const r = await this.listeners.update(config);
          for (const e of r.errors)
            this.#log('warn', 'listener rejected', { listener: e.name, error: e.message });
        }
      } catch (e) {
        this.#log('error', 'applying configuration failed', { error: String(e) });
      }
      // LIVE, as Envoy: once the initial clusters and listeners are in place.
      if (this.#state === 'INITIALIZING' && this.ads.status().synced) {
        this.#state = 'LIVE';
        this.#markReady();
        this.#log('info', 'proxy is live', { versions: config.versions });
      }
    });
  }

  /** One HttpConnectionManager's connection handler (built once per listener version). */
  #hcm(
    config: HttpConnectionManager,
    _chain: FilterChain,
    listener: Listener,
  ): (socket: Socket, conn: ConnectionInfo) => void {
    const loggers: AccessLogger[] = [];
    (config.accessLog ?? []).forEach((a, i) => {
      const r = this.accessLogs.create(a, `accessLog[${i}]`);
      if (!r.ok) throw new Error(r.error);
      loggers.push(r.value);
    });
    const inbound = listener.trafficDirection === 'INBOUND';
    const peers = this.peers;
    // One small object per request, its methods on the prototype (no closures per request).
    const exchange: HttpFilterFactory = inbound
      ? (info) => new InboundPeerExchange(peers, info)
      : (info) => new OutboundPeerExchange(peers, info);
    const hcm = new HttpConnectionManagerImpl({
      config,
      clusterManager: this.clusters,
      routeConfig: (name) => this.#config.routes.get(name),
      stats: this.stats,
      filters: [exchange],
      onStreamComplete: (info, headers) => this.#httpComplete(info, headers, loggers),
    });
    return (socket, conn) => {
      conn.drain.onDrain(() => hcm.drain());
      hcm.handleConnection(socket, {
        listenerName: conn.listenerName,
        filterChainName: conn.filterChain.name,
        direction: inbound ? 'inbound' : 'outbound',
        originalDestination: { address: conn.local.address, port: conn.local.port },
        downstreamRemoteAddress: hostPort(conn.remote),
        downstreamLocalAddress: hostPort(conn.local),
        requestedServerName: conn.requestedServerName,
        connectionId: conn.id,
        // The TLS peer's and our identities (io.istio.peer_principal / local_principal).
        ...(conn.streamInfo.metadataSize > 0 ? { metadata: conn.streamInfo.metadata } : {}),
      });
    };
  }

  #httpComplete(info: StreamInfo, headers: StreamHeaders, loggers: readonly AccessLogger[]): void {
    try {
      // The metrics read the router's header view directly: no context object per request.
      this.metrics.recordHttpStream(info, headers);
    } catch (e) {
      this.#log('error', 'recording metrics failed', { error: String(e) });
    }
    // Access logs only when some are configured (none: no per-request work at all).
    if (loggers.length === 0 && this.#extraLog === undefined) return;
    const ctx = new HttpLogContext(info, headers);
    for (const l of loggers) l.log(ctx);
    this.#logStream(ctx);
  }

  readonly #tcpReporters = new WeakMap<StreamInfo, TcpMetricsReporter>();

  #tcpReporter(info: StreamInfo, _ctx: TcpProxyLogContext): TcpMetricsReporter {
    let r = this.#tcpReporters.get(info);
    if (!r) {
      r = this.metrics.tcpConnection({ info });
      this.#tcpReporters.set(info, r);
    }
    return r;
  }

  #tcpComplete(info: StreamInfo, ctx: TcpProxyLogContext): void {
    const r = this.#tcpReporters.get(info);
    if (r) r.closed();
    ctx.accessLog.forEach((a, i) => this.#tcpLogger(a, i)?.log({ info }));
    this.#logStream({ info });
  }

  /** tcp_proxy's access loggers, built once per config object (not per connection). */
  readonly #tcpLoggers = new WeakMap<AccessLog, AccessLogger | undefined>();

  #tcpLogger(a: AccessLog, i: number): AccessLogger | undefined {
    if (!this.#tcpLoggers.has(a)) {
      const l = this.accessLogs.create(a, `accessLog[${i}]`);
      if (!l.ok) this.#log('warn', 'tcp_proxy access log ignored', { error: l.error });
      this.#tcpLoggers.set(a, l.ok ? l.value : undefined);
    }
    return this.#tcpLoggers.get(a);
  }

  #logStream(ctx: LogContext): void {
    this.#extraLog?.log(ctx);
  }

  /** Stops accepting, lets connections finish within `ms`, then closes listeners (SIGTERM). */
  async drain(ms = this.options.drainTimeMs ?? 5_000): Promise<void> {
    this.#state = 'DRAINING';
    await this.listeners.drain(ms);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.ads.close();
    await this.listeners.close();
    this.clusters.close();
    await this.admin.close();
    await this.accessLogs.close();
  }
}

/** Istio's metadata exchange on an inbound listener: reads the peer, answers with ours. */
class InboundPeerExchange implements HttpStreamFilter {
  private hadMetadata = false;
  constructor(
    private readonly peers: PeerMetadataExchange,
    private readonly info: StreamInfo,
  ) {}

  onRequestHeaders(h: RequestHeaders): void {
    this.hadMetadata = this.peers.onInboundRequest(this.info, h.map);
  }

  onResponseHeaders(h: HeaderMap): void {
    const add = this.peers.inboundResponseHeaders(this.hadMetadata);
    for (let i = 0; i < add.length; i++) {
      const [k, v] = add[i] as readonly [string, string];
      h[k] = v;
    }
  }
}

/** Istio's metadata exchange on an outbound listener: sends ours, reads the upstream peer's. */
class OutboundPeerExchange implements HttpStreamFilter {
  constructor(
    private readonly peers: PeerMetadataExchange,
    private readonly info: StreamInfo,
  ) {}

  onUpstreamRequestHeaders(h: RequestHeaders): void {
    const add = this.peers.outboundRequestHeaders();
    for (let i = 0; i < add.length; i++) {
      const [k, v] = add[i] as readonly [string, string];
      h.map[k] = v;
    }
  }

  onUpstreamResponseHeaders(h: HeaderMap): void {
    this.peers.onOutboundResponse(this.info, h);
  }
}

type FilterMetadata = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** What access logs and metrics read about a finished HTTP stream (one object per request). */
class HttpLogContext implements MetricsContext {
  declare readonly upstreamHostMetadata?: FilterMetadata;
  declare readonly upstreamClusterMetadata?: FilterMetadata;

  constructor(
    readonly info: StreamInfo,
    private readonly headers: StreamHeaders,
  ) {
    const host = headers.upstreamHostMetadata;
    if (host) (this as { upstreamHostMetadata?: FilterMetadata }).upstreamHostMetadata = host;
    const cluster = headers.upstreamClusterMetadata;
    if (cluster)
      (this as { upstreamClusterMetadata?: FilterMetadata }).upstreamClusterMetadata = cluster;
  }

  requestHeader(n: string): string | undefined {
    return this.headers.requestHeader(n);
  }

  responseHeader(n: string): string | undefined {
    return this.headers.responseHeader(n);
  }

  responseTrailer(n: string): string | undefined {
    return this.headers.responseTrailer(n);
  }
}

/** `address:port` of a connection's end, or a Unix socket's path. */
function hostPort(a: { readonly address: string; readonly port: number }): string {
  return a.port === PIPE_PORT ? a.address : `${a.address}:${a.port}`;
}
