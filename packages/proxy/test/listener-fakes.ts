// Small in-test fakes and socket helpers for the listener tests: a map-backed StatsScope, a
// ClusterManagerApi whose clusters connect to real local servers, echo servers, and
// ProxyConfig builders.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Listener } from '@trellis/envoy';
import type { Counter, Gauge, Histogram, StatsScope } from '../src/observability/stats-api.js';
import { EMPTY_CONFIG, type ProxyConfig } from '../src/xds/config.js';
import {
  UpstreamConnectError,
  type ClusterManagerApi,
  type ResourceManagerApi,
  type UpstreamCluster,
} from '../src/upstream/api.js';
import type { LbHost } from '../src/upstream/lb/types.js';

/** A StatsScope over one shared map of full dotted names. */
export class FakeStats implements StatsScope {
  readonly values: Map<string, number>;
  readonly records: Map<string, number[]>;
  readonly #prefix: string;

  constructor(
    prefix = '',
    values = new Map<string, number>(),
    records = new Map<string, number[]>(),
  ) {
    this.#prefix = prefix;
    this.values = values;
    this.records = records;
  }

  #name(n: string): string {
    return this.#prefix ? `${this.#prefix}.${n}` : n;
  }

  counter(name: string): Counter {
    const full = this.#name(name);
    const values = this.values;
    return {
      inc: (n = 1) => values.set(full, (values.get(full) ?? 0) + n),
      get value() {
        return values.get(full) ?? 0;
      },
    };
  }

  gauge(name: string): Gauge {
    const full = this.#name(name);
    const values = this.values;
    return {
      set: (v) => values.set(full, v),
      inc: (n = 1) => values.set(full, (values.get(full) ?? 0) + n),
      dec: (n = 1) => values.set(full, (values.get(full) ?? 0) - n),
      get value() {
        return values.get(full) ?? 0;
      },
    };
  }

  histogram(name: string): Histogram {
    const full = this.#name(name);
    const records = this.records;
    return {
      record: (v) => {
        const r = records.get(full) ?? [];
        r.push(v);
        records.set(full, r);
      },
    };
  }

  scope(prefix: string): StatsScope {
    return new FakeStats(this.#name(prefix), this.values, this.records);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }
}

export function host(address: string, port: number): LbHost {
  return {
    id: `${address}:${port}`,
    address,
    port,
    weight: 1,
    priority: 0,
    locality: { region: '', zone: '', subZone: '' },
    metadata: {},
    healthy: true,
    activeRequests: 0,
  };
}

const unlimited: ResourceManagerApi = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  connections: 0,
  pendingRequests: 0,
  requests: 0,
  retries: 0,
  canCreateConnection: () => true,
  canQueueRequest: () => true,
  canSendRequest: () => true,
  canRetry: () => true,
};

export interface FakeClusterSpec {
  /** Hosts chosen round robin; empty → no healthy upstream. */
  readonly hosts: LbHost[];
  /** Refuse connections (circuit breaker overflow). */
  readonly overflow?: boolean;
  /** ORIGINAL_DST: connect to the connection's original destination. */
  readonly originalDst?: boolean;
}

/** A ClusterManagerApi whose clusters really connect (through connectTcp) to their hosts. */
export class FakeClusterManager implements ClusterManagerApi {
  readonly clusters = new Map<string, FakeClusterSpec>();
  readonly stats = new FakeStats();
  /** Every host a connection was attempted to. */
  readonly attempts: string[] = [];
  readonly #next = new Map<string, number>();

  get(name: string): UpstreamCluster | undefined {
    const spec = this.clusters.get(name);
    if (!spec) return undefined;
    const notHttp = (): never => {
      throw new Error('not used by the listener tests');
    };
    return {
      name,
      config: { name },
      statName: name,
      stats: this.stats.scope('cluster').scope(name),
      resources: spec.overflow ? { ...unlimited, canCreateConnection: () => false } : unlimited,
      choose: (ctx) => {
        if (spec.originalDst) {
          const d = ctx.originalDestination;
          return d ? host(d.address, d.port) : undefined;
        }
        if (spec.hosts.length === 0) {
          // As the real cluster does.
          this.stats.counter(`cluster.${name}.upstream_cx_none_healthy`).inc();
          return undefined;
        }
        const next = this.#next.get(name) ?? 0;
        this.#next.set(name, next + 1);
        return spec.hosts[next % spec.hosts.length];
      },
      connect: (h) => {
        this.attempts.push(h.id);
        return new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: h.address, port: h.port }, () => {
            s.off('error', onError);
            resolve(s);
          });
          const onError = (err: NodeJS.ErrnoException): void =>
            reject(new UpstreamConnectError(`delayed connect error: ${Math.abs(err.errno ?? 0)}`));
          s.once('error', onError);
        });
      },
      httpProtocol: () => 'http1',
      transportSocketFor: () => 'raw_buffer',
      httpPool: notHttp,
    };
  }
}

/** Re-exported so tests can build connect errors. */
export { UpstreamConnectError };

const tracked = new WeakMap<Server, Set<Socket>>();

/** Remembers a server's connections so that closeServer() can destroy them. */
export function track<S extends Server>(server: S): S {
  const set = new Set<Socket>();
  tracked.set(server, set);
  server.on('connection', (s: Socket) => {
    set.add(s);
    s.on('close', () => set.delete(s));
  });
  return server;
}

/** A TCP server on 127.0.0.1:0; `onSocket` gets each connection. */
export async function listen(onSocket: (s: Socket) => void, allowHalfOpen = true): Promise<Server> {
  const server = track(createServer({ allowHalfOpen }, onSocket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

export function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** Echoes what it reads; ends its side when the peer ends (half-close aware). */
export async function echoServer(tag = ''): Promise<Server> {
  return listen((s) => {
    s.on('error', () => {});
    if (tag) s.write(tag);
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
  });
}

/** Closes a server and destroys the connections it still has (tracked ones). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of tracked.get(server) ?? []) s.destroy();
  });
}

/** A connected client socket. */
export function dial(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything a socket reads until it ends or closes. */
export function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const done = (): void => resolve(Buffer.concat(chunks));
    s.once('end', done);
    s.once('close', done);
  });
}

/**
 * Resolves when the socket has closed (true when it was reset). Reads and drops what
 * arrives, and ends our side once the peer ended its own (client sockets are half-open).
 */
export function closed(s: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) {
      resolve(false);
      return;
    }
    s.once('close', (hadError: boolean) => resolve(hadError));
    s.once('end', () => s.end());
    s.on('error', () => {});
    s.resume();
  });
}

/** Reads until `n` bytes arrived. */
export function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      have += d.length;
      if (have >= n) {
        s.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed after ${have} of ${n} bytes`)));
  });
}

/** A ProxyConfig holding just these listeners. */
export function withListeners(...listeners: Listener[]): ProxyConfig {
  return { ...EMPTY_CONFIG, listeners: new Map(listeners.map((l) => [l.name ?? '', l])) };
}

export const TCP_PROXY_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/** A tcp_proxy network filter to `cluster`. */
export function tcpProxyFilter(cluster: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typedConfig: { '@type': TCP_PROXY_TYPE, statPrefix: cluster, cluster, ...extra },
  };
}

/** Waits until `pred` holds (polling every 5 ms, up to `ms`). */
export async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
