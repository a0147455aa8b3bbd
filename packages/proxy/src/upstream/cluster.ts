// One upstream cluster (Envoy's ClusterImplBase + its discovery type): its hosts (STATIC
// load_assignment, EDS, STRICT_DNS / LOGICAL_DNS resolution, ORIGINAL_DST hosts made on demand)
// in an lb PrioritySet, the load balancer of its lb_policy over them (upstream/lb), per-host HTTP
// connection pools, TCP connects with connect_timeout, and `cluster.<name>.*` stats; its circuit
// breakers (resource-manager.ts) and outlier detection (outlier-detection.ts).
import { lookup } from 'node:dns/promises';
import { systemTimers, type TimerApi } from '@trellis/core';
import { isIP, type Socket } from 'node:net';
import type {
  Cluster,
  ClusterLoadAssignment,
  DnsLookupFamily,
  LbEndpoint,
  LocalityLbEndpoints,
} from '@trellis/envoy';
import { durationMs } from '../duration.js';
import type { StatsScope } from '../observability/stats-api.js';
import {
  UpstreamConnectError,
  type DownstreamHttpProtocol,
  type HttpConnectionPool,
  type TransportSocketKind,
  type UpstreamCluster,
  type UpstreamHttpProtocol,
  type UpstreamLbContext,
} from './api.js';
import { ClusterStats } from './cluster-stats.js';
import { connectTcp } from './connect.js';
import {
  chooseHttpProtocol,
  upstreamHttpSettings,
  type UpstreamHttpSettings,
} from './http-protocol-options.js';
import {
  createLoadBalancer,
  type ClusterLoadBalancer,
  type Host,
  type LbHost,
  type PrioritySet,
  type Random,
  defaultRandom,
} from './lb/index.js';
import { Http1ConnectionPool, type PoolContext } from './pool-http1.js';
import { Http2ConnectionPool } from './pool-http2.js';
import { OutlierDetector, type OutlierSink } from './outlier-detection.js';
import { ResourceManager } from './resource-manager.js';
import {
  chooseTransportSocket,
  clusterTransportSockets,
  type TransportSocketChoice,
} from './transport-socket.js';
import { ALPN_H2, ALPN_HTTP11, AlpnAutoPool, SniPool } from './pool-alpn.js';
import { SecretManager } from '../tls/secret-manager.js';
import { UpstreamTlsSocketFactory } from '../tls/upstream.js';
import type { UpstreamTlsContext } from '@trellis/envoy';

/** Envoy's connect_timeout default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** Envoy's dns_refresh_rate default. */
export const DEFAULT_DNS_REFRESH_MS = 5000;
/** Envoy's cleanup_interval default (ORIGINAL_DST hosts). */
export const DEFAULT_CLEANUP_INTERVAL_MS = 5000;

/** Resolves a name to addresses (injectable for tests). */
export type DnsResolver = (hostname: string, family: DnsLookupFamily) => Promise<string[]>;

export const systemDnsResolver: DnsResolver = async (hostname, family) => {
  const fam = family === 'V4_ONLY' ? 4 : family === 'V6_ONLY' ? 6 : 0;
  const res = await lookup(hostname, {
    all: true,
    family: fam,
    verbatim: family !== 'V4_PREFERRED',
  });
  let addrs = res.map((r) => r.address);
  if (family === 'AUTO') {
    // Envoy's AUTO: IPv6 when there is any, else IPv4.
    const v6 = res.filter((r) => r.family === 6).map((r) => r.address);
    addrs = v6.length > 0 ? v6 : addrs;
  } else if (family === 'V4_PREFERRED') {
    const v4 = res.filter((r) => r.family === 4).map((r) => r.address);
    addrs = v4.length > 0 ? v4 : addrs;
  }
  return addrs;
};

export interface ClusterDeps {
  /** The root stats scope: the cluster records under `cluster.<stat name>`. */
  readonly stats: StatsScope;
  readonly dns?: DnsResolver | undefined;
  /**
   * The hosts of the cluster this one replaces (a changed Cluster of the same type): the same
   * Host objects stay in use, with their in-flight request counts and outlier ejections.
   */
  readonly hostSet?: PrioritySet | undefined;
  /** Randomness of the load balancer and outlier detection (seed it in tests). */
  readonly random?: Random | undefined;
  /** Clock and timers of outlier detection (default: Node's). */
  readonly timers?: TimerApi | undefined;
  /**
   * The outlier detector of the cluster this one replaces (with `hostSet`): its per-host state
   * and ejections carry over (or are lifted when the new version has no outlier_detection).
   */
  readonly outlierDetector?: OutlierDetector | undefined;
  /** Secrets of upstream TLS contexts (SDS and agent-resolved); default: a private one. */
  readonly secrets?: SecretManager | undefined;
}

/** A host's pools, by transport socket key and protocol (`default|http1`, `match:0|http2`). */
type HostPools = Map<string, HttpConnectionPool>;

/** How one upstream connection is made. */
interface ConnectionOptions {
  readonly transport: TransportSocketChoice;
  /** auto_sni: the SNI of this connection. */
  readonly sni?: string | undefined;
  /** ALPN offered when the TLS context sets none. */
  readonly alpnFallback?: readonly string[] | undefined;
  /** auto_san_validation: the DNS name the server's certificate must carry. */
  readonly verifySan?: string | undefined;
}

let defaultSecrets: SecretManager | undefined;

/** `upstream_bind_config` (in Istio's goldens; not in the TS Cluster type). */
interface BindConfig {
  readonly upstreamBindConfig?: { readonly sourceAddress?: { readonly address?: string } };
}

export class ClusterImpl implements UpstreamCluster {
  readonly name: string;
  readonly statName: string;
  readonly stats: StatsScope;
  readonly clusterStats: ClusterStats;
  readonly resources: ResourceManager;
  /** Outlier detection (cluster.outlier_detection), if configured. */
  readonly outlierDetector: OutlierDetector | undefined;
  readonly settings: UpstreamHttpSettings;
  /** STATIC, EDS, STRICT_DNS, LOGICAL_DNS or ORIGINAL_DST. */
  readonly type: NonNullable<Cluster['type']>;
  /** The hosts and the balancer of the cluster's lb_policy. */
  readonly loadBalancer: ClusterLoadBalancer;
  /** The ClusterLoadAssignment in use (EDS or load_assignment), for change detection. */
  loadAssignment: ClusterLoadAssignment | undefined;
  /** Resolves once a DNS cluster has resolved once (successfully or not); others at once. */
  readonly initialized: Promise<void>;
  private readonly pools = new Map<string, HostPools>();
  /** ORIGINAL_DST: the endpoints made so far, by host id. */
  private readonly originalDst = new Map<string, LbEndpoint>();
  /** ORIGINAL_DST: hosts chosen since the last cleanup sweep. */
  private readonly originalDstUsed = new Set<string>();
  private readonly connectTimeoutMs: number;
  private readonly localAddress: string | undefined;
  private readonly keepAliveMs: number | undefined;
  private readonly dns: DnsResolver;
  /** The cluster's TLS transport sockets by choice key. */
  private readonly tls = new Map<string, UpstreamTlsSocketFactory>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private markInitialized: () => void = () => {};

  /**
   * Throws InvalidError (code TRELLIS_INVALID) when the load balancing settings cannot be
   * honoured (lbConfigProblems).
   */
  constructor(
    readonly config: Cluster,
    deps: ClusterDeps,
  ) {
    this.name = config.name ?? '';
    this.type = config.type ?? 'STATIC';
    this.statName = config.altStatName || this.name;
    this.stats = deps.stats.scope('cluster').scope(this.statName);
    this.clusterStats = new ClusterStats(this.stats);
    this.resources = new ResourceManager(config, this.stats);
    this.settings = upstreamHttpSettings(config);
    this.connectTimeoutMs = durationMs(config.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.localAddress = (config as BindConfig).upstreamBindConfig?.sourceAddress?.address;
    const ka = config.upstreamConnectionOptions?.tcpKeepalive;
    this.keepAliveMs = ka ? (ka.keepaliveTime ?? 7200) * 1000 : undefined;
    this.dns = deps.dns ?? systemDnsResolver;
    const secrets = deps.secrets ?? (defaultSecrets ??= new SecretManager());
    for (const t of clusterTransportSockets(config)) {
      if (t.kind !== 'tls') continue;
      const path =
        t.key === 'default'
          ? 'transport_socket.typed_config'
          : `transport_socket_matches[${t.key.slice('match:'.length)}].transport_socket.typed_config`;
      this.tls.set(
        t.key,
        new UpstreamTlsSocketFactory(
          (t.config?.typedConfig ?? {}) as UpstreamTlsContext,
          secrets,
          path,
        ),
      );
    }
    // The cluster applies its assignments itself (DNS clusters resolve theirs first).
    const { loadAssignment: _own, ...lbConfig } = config;
    this.loadBalancer = createLoadBalancer(lbConfig, undefined, {
      stats: this.stats,
      ...(deps.hostSet ? { hostSet: deps.hostSet } : {}),
      ...(deps.random ? { random: deps.random } : {}),
    });
    if (config.outlierDetection) {
      this.outlierDetector = new OutlierDetector(config.outlierDetection, {
        stats: this.stats,
        timers: deps.timers ?? systemTimers,
        random: deps.random ?? defaultRandom,
        hosts: () => this.hosts(),
        onChange: () => this.updateMembership(),
        previous: deps.outlierDetector,
      });
    } else {
      this.outlierDetector = undefined;
      deps.outlierDetector?.close();
    }
    if (deps.hostSet) {
      if (this.type === 'ORIGINAL_DST')
        for (const h of deps.hostSet.hosts) this.originalDst.set(h.id, originalDstEndpoint(h));
      this.updateMembership();
    }
    this.initialized = new Promise<void>((resolve) => {
      this.markInitialized = resolve;
    });
    switch (this.type) {
      case 'STATIC':
        this.setLoadAssignment(config.loadAssignment ?? {});
        this.markInitialized();
        break;
      case 'EDS':
        // Hosts arrive with setLoadAssignment(). Waiting for them (Envoy's warming) is the xDS
        // client's business: it applies CDS and EDS together.
        this.markInitialized();
        break;
      case 'LOGICAL_DNS':
        this.setLoadAssignment(config.loadAssignment ?? {}, true);
        this.markInitialized();
        break;
      case 'STRICT_DNS':
        void this.resolveDns();
        break;
      case 'ORIGINAL_DST': {
        this.markInitialized();
        const every = durationMs(config.cleanupInterval) ?? DEFAULT_CLEANUP_INTERVAL_MS;
        this.timer = setInterval(() => this.cleanupOriginalDst(), every);
        this.timer.unref();
        break;
      }
    }
  }

  /** The cluster's host set (handed to the cluster that replaces this one). */
  get hostSet(): PrioritySet {
    return this.loadBalancer.hostSet;
  }

  /** The hosts the balancer chooses from (ORIGINAL_DST: those made so far). */
  hosts(): readonly Host[] {
    return this.loadBalancer.hosts;
  }

  /**
   * Replaces the endpoints (EDS, or STATIC/DNS assignments). Hosts that stay keep their objects
   * and pools; removed hosts' pools drain. `logical`: a LOGICAL_DNS cluster (one host, by name).
   * Returns the endpoints that could not be used (claProblems), which are skipped.
   */
  setLoadAssignment(cla: ClusterLoadAssignment, logical = false): readonly string[] {
    this.loadAssignment = cla;
    let use = cla;
    if (logical) {
      const first = cla.endpoints?.[0];
      const ep = first?.lbEndpoints?.[0];
      const name = ep?.endpoint?.address?.socketAddress?.address;
      use = {
        ...cla,
        endpoints: first && ep ? [{ ...first, lbEndpoints: [withHostname(ep, name)] }] : [],
      };
    }
    return this.applyHosts(use);
  }

  /** Updates the host set: drains the pools of removed hosts, counts membership. */
  private applyHosts(cla: ClusterLoadAssignment): readonly string[] {
    const { added, removed, problems } = this.loadBalancer.update(cla);
    for (const h of removed) {
      const p = this.pools.get(h.id);
      if (p) {
        for (const pool of p.values()) pool.drain();
        this.pools.delete(h.id);
      }
    }
    if (added.length > 0 || removed.length > 0) this.clusterStats.membership_change.inc();
    this.updateMembership();
    return problems;
  }

  private updateMembership(): void {
    const hosts = this.hosts();
    let healthy = 0;
    let degraded = 0;
    for (const h of hosts) {
      const health = h.coarseHealth;
      if (health === 'healthy') healthy++;
      else if (health === 'degraded') degraded++;
    }
    this.clusterStats.membership_total.set(hosts.length);
    this.clusterStats.membership_healthy.set(healthy);
    this.clusterStats.membership_degraded.set(degraded);
  }

  private async resolveDns(): Promise<void> {
    const cla = this.config.loadAssignment ?? {};
    const family = this.config.dnsLookupFamily ?? 'AUTO';
    const endpoints: LocalityLbEndpoints[] = [];
    let failed = false;
    for (const le of cla.endpoints ?? []) {
      const lbEndpoints: LbEndpoint[] = [];
      for (const ep of le.lbEndpoints ?? []) {
        const sa = ep.endpoint?.address?.socketAddress;
        if (!sa?.address) continue;
        let addrs: string[];
        if (isIP(sa.address)) addrs = [sa.address];
        else {
          try {
            addrs = await this.dns(sa.address, family);
          } catch {
            failed = true;
            continue;
          }
        }
        for (const a of addrs)
          lbEndpoints.push({
            ...ep,
            endpoint: {
              ...ep.endpoint,
              hostname: ep.endpoint?.hostname || sa.address,
              address: { socketAddress: { ...sa, address: a } },
            },
          });
      }
      endpoints.push({ ...le, lbEndpoints });
    }
    if (this.closed) return;
    // A failed lookup keeps the hosts it had (Envoy keeps the last good resolution).
    if (!failed || this.hosts().length === 0) this.applyHosts({ ...cla, endpoints });
    this.loadAssignment = cla;
    this.markInitialized();
    const every = durationMs(this.config.dnsRefreshRate) ?? DEFAULT_DNS_REFRESH_MS;
    this.timer = setTimeout(() => void this.resolveDns(), every);
    this.timer.unref();
  }

  choose(ctx: UpstreamLbContext): LbHost | undefined {
    const host =
      this.type === 'ORIGINAL_DST' ? this.originalDstHost(ctx) : this.loadBalancer.lb.choose(ctx);
    if (!host) this.clusterStats.upstream_cx_none_healthy.inc();
    return host;
  }

  private originalDstHost(ctx: UpstreamLbContext): LbHost | undefined {
    const cfg = this.config.originalDstLbConfig;
    let address: string | undefined;
    let port: number | undefined;
    if (cfg?.useHttpHeader) {
      const v = ctx.requestHeader?.(cfg.httpHeaderName || 'x-envoy-original-dst-host');
      const parsed = v ? parseHostPort(v) : undefined;
      if (parsed) ({ address, port } = parsed);
    }
    if (address === undefined && ctx.originalDestination) {
      address = ctx.originalDestination.address;
      port = ctx.originalDestination.port;
    }
    if (address === undefined || port === undefined) return undefined;
    if (cfg?.upstreamPortOverride) port = cfg.upstreamPortOverride;
    const id = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    let host = this.hostSet.get(id);
    if (!host) {
      this.originalDst.set(id, {
        endpoint: {
          address: { socketAddress: { address, portValue: port } },
          ...(isIP(address) ? {} : { hostname: address }),
        },
      });
      this.applyOriginalDst();
      host = this.hostSet.get(id);
    }
    this.originalDstUsed.add(id);
    return host;
  }

  /** The ORIGINAL_DST hosts made so far, as the host set's assignment. */
  private applyOriginalDst(): void {
    this.applyHosts({ endpoints: [{ lbEndpoints: [...this.originalDst.values()] }] });
  }

  /** Drops ORIGINAL_DST hosts that were not used since the last sweep and have no connections. */
  private cleanupOriginalDst(): void {
    let changed = false;
    for (const id of this.originalDst.keys()) {
      const pools = this.pools.get(id);
      let conns = 0;
      for (const p of pools?.values() ?? []) conns += p.connectionCount;
      const active = this.hostSet.get(id)?.activeRequests ?? 0;
      if (this.originalDstUsed.has(id) || active > 0 || conns > 0) continue;
      this.originalDst.delete(id);
      this.pools.delete(id);
      changed = true;
    }
    this.originalDstUsed.clear();
    if (changed) this.applyOriginalDst();
  }

  transportSocketFor(host: LbHost): TransportSocketKind {
    return chooseTransportSocket(this.config, host).kind;
  }

  httpProtocol(downstream: DownstreamHttpProtocol): UpstreamHttpProtocol {
    return chooseHttpProtocol(this.settings, downstream);
  }

  /**
   * A TCP connection for tcp_proxy or a CONNECT tunnel: it counts as a request in flight on
   * `host` (for LEAST_REQUEST, as Envoy's TCP pool does) from the attempt until it closes.
   */
  async connect(host: LbHost): Promise<Socket> {
    host.activeRequests++;
    const outlier = this.outlierSink(host);
    let socket: Socket;
    try {
      socket = await this.openConnection(host, {
        transport: chooseTransportSocket(this.config, host),
      });
    } catch (err) {
      host.activeRequests--;
      outlier?.putResult(
        err instanceof UpstreamConnectError && err.timedOut
          ? 'LOCAL_ORIGIN_TIMEOUT'
          : 'LOCAL_ORIGIN_CONNECT_FAILED',
      );
      throw err;
    }
    outlier?.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL');
    if (socket.destroyed) host.activeRequests--;
    else socket.once('close', () => host.activeRequests--);
    return socket;
  }

  /**
   * Opens a connection to `host` with connect_timeout (which covers the TLS handshake too, as
   * Envoy's does) and cx stats (pools and connect()), through the host's transport socket.
   */
  private async openConnection(host: LbHost, opts: ConnectionOptions): Promise<Socket> {
    const transport = opts.transport.kind;
    if (transport !== 'raw_buffer' && transport !== 'tls')
      throw new UpstreamConnectError(`unsupported transport socket ${transport.unsupported}`);
    const tls = transport === 'tls' ? this.tls.get(opts.transport.key) : undefined;
    if (transport === 'tls' && !tls)
      throw new UpstreamConnectError('TLS_error: the transport socket is not configured');
    const s = this.clusterStats;
    s.upstream_cx_total.inc();
    s.upstream_cx_active.inc();
    this.resources.connections++;
    const start = performance.now();
    let socket: Socket;
    try {
      socket = await connectTcp(host.address, host.port, {
        timeoutMs: this.connectTimeoutMs,
        localAddress: this.localAddress,
        keepAliveMs: this.keepAliveMs,
      });
      if (tls) {
        const left = this.connectTimeoutMs - (performance.now() - start);
        socket = await tls.connect(socket, this.stats, {
          sni: opts.sni,
          alpnFallback: opts.alpnFallback,
          timeoutMs: this.connectTimeoutMs > 0 ? Math.max(1, left) : 0,
          verifySan: opts.verifySan,
        });
      }
    } catch (err) {
      s.upstream_cx_active.dec();
      this.resources.connections--;
      s.upstream_cx_connect_fail.inc();
      if (err instanceof UpstreamConnectError && err.timedOut) s.upstream_cx_connect_timeout.inc();
      throw err;
    }
    const connected = performance.now();
    s.upstream_cx_connect_ms.record(connected - start);
    let remoteEnded = false;
    socket.once('end', () => {
      remoteEnded = true;
    });
    socket.once('close', () => {
      s.upstream_cx_active.dec();
      this.resources.connections--;
      s.upstream_cx_destroy.inc();
      (remoteEnded ? s.upstream_cx_destroy_remote : s.upstream_cx_destroy_local).inc();
      s.upstream_cx_rx_bytes_total.inc(socket.bytesRead);
      s.upstream_cx_tx_bytes_total.inc(socket.bytesWritten);
      s.upstream_cx_length_ms.record(performance.now() - connected);
    });
    return socket;
  }

  /**
   * The HTTP connection pool of `host` for `protocol`, over the host's transport socket: one
   * per transport socket (TLS and plaintext connections are never shared), per SNI with
   * auto_sni, negotiating the protocol by ALPN for auto_config over TLS.
   */
  httpPool(host: LbHost, protocol: UpstreamHttpProtocol): HttpConnectionPool {
    let pools = this.pools.get(host.id);
    if (!pools) {
      pools = new Map();
      this.pools.set(host.id, pools);
    }
    const transport = chooseTransportSocket(this.config, host);
    const key = protocol === 'http1' ? transport.http1PoolKey : transport.http2PoolKey;
    const existing = pools.get(key);
    if (existing) return existing;
    const st = this.settings;
    const pool =
      transport.kind === 'tls' && (st.autoSni || st.autoSanValidation)
        ? new SniPool(
            protocol,
            (sni) => this.makePool(host, transport, protocol, sni),
            st.overrideAutoSniHeader,
          )
        : this.makePool(host, transport, protocol, undefined);
    pools.set(key, pool);
    return pool;
  }

  private makePool(
    host: LbHost,
    transport: TransportSocketChoice,
    protocol: UpstreamHttpProtocol,
    sni: string | undefined,
  ): HttpConnectionPool {
    const st = this.settings;
    const open = (alpn: readonly string[]): Promise<Socket> =>
      this.openConnection(host, {
        transport,
        sni: st.autoSni ? sni : undefined,
        alpnFallback: alpn,
        verifySan: st.autoSanValidation ? sni : undefined,
      });
    const make = (p: UpstreamHttpProtocol, connect: () => Promise<Socket>): HttpConnectionPool => {
      const ctx: PoolContext = {
        host,
        stats: this.clusterStats,
        settings: st,
        resources: this.resources,
        connect,
        outlier: this.outlierSink(host),
      };
      if (p !== 'http1') return new Http2ConnectionPool(ctx);
      return new Http1ConnectionPool(ctx);
    };
    if (transport.kind === 'tls' && st.mode === 'auto' && protocol === 'http1')
      return new AlpnAutoPool(make, open);
    return make(protocol, () => open(protocol === 'http2' ? ALPN_H2 : ALPN_HTTP11));
  }

  /** Where results of requests to `host` go for outlier detection (none without it). */
  outlierSink(host: LbHost): OutlierSink | undefined {
    return this.outlierDetector?.monitor(host);
  }

  /** Open upstream HTTP connections of every host. */
  connectionCount(): number {
    let n = 0;
    for (const host of this.pools.values()) for (const p of host.values()) n += p.connectionCount;
    return n;
  }

  /** Stops new use of connections: idle ones close, busy ones after their requests. */
  drain(): void {
    this.stopTimers();
    for (const host of this.pools.values()) for (const p of host.values()) p.drain();
  }

  /** Closes every connection now. */
  close(): void {
    this.stopTimers();
    for (const host of this.pools.values()) for (const p of host.values()) p.close();
    this.pools.clear();
  }

  private stopTimers(): void {
    this.closed = true;
    this.outlierDetector?.stop();
    if (this.timer) {
      clearTimeout(this.timer);
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.markInitialized();
  }
}

/** The endpoint an ORIGINAL_DST host was made from. */
function originalDstEndpoint(h: Host): LbEndpoint {
  return {
    endpoint: {
      address: { socketAddress: { address: h.address, portValue: h.port } },
      ...(h.hostname !== undefined ? { hostname: h.hostname } : {}),
    },
  };
}

function withHostname(ep: LbEndpoint, name: string | undefined): LbEndpoint {
  return name
    ? { ...ep, endpoint: { ...ep.endpoint, hostname: ep.endpoint?.hostname || name } }
    : ep;
}

/** `host:port` or `[v6]:port`; undefined without a valid port. */
export function parseHostPort(v: string): { address: string; port: number } | undefined {
  // By hand rather than with regular expressions: absolute-form requests and CONNECT parse one
  // per request. `[v6]:port` first, then `host:port` with no other colon.
  if (v.charCodeAt(0) === 0x5b /* [ */) {
    const close = v.indexOf(']');
    if (close >= 2 && v.indexOf(']', close + 1) < 0 && v.charCodeAt(close + 1) === 0x3a) {
      const port = portAt(v, close + 2);
      if (port >= 0)
        return port > 0 && port < 65536 ? { address: v.slice(1, close), port } : undefined;
    }
  }
  const colon = v.indexOf(':');
  if (colon <= 0 || v.indexOf(':', colon + 1) >= 0) return undefined;
  const port = portAt(v, colon + 1);
  return port > 0 && port < 65536 ? { address: v.slice(0, colon), port } : undefined;
}

/** 1 to 5 digits from `start` to the end of `v`, or -1. */
function portAt(v: string, start: number): number {
  const n = v.length - start;
  if (n < 1 || n > 5) return -1;
  let port = 0;
  for (let k = start; k < v.length; k++) {
    const d = v.charCodeAt(k) - 0x30;
    if (d < 0 || d > 9) return -1;
    port = port * 10 + d;
  }
  return port;
}
