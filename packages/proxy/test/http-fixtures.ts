// Shared fixtures of the http-*.test.ts suites: a fake StatsScope, real backends on port 0,
// a proxy (ClusterManager + HttpConnectionManagerImpl behind a net.Server on port 0), builders
// for hand-written Envoy resources, and small HTTP clients.
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type {
  Cluster,
  ClusterLoadAssignment,
  HttpConnectionManager,
  Route,
  RouteConfiguration,
  VirtualHost,
} from '@trellis/envoy';
import {
  HttpConnectionManagerImpl,
  type DownstreamConnectionInfo,
  type StreamHeaders,
} from '../src/http/index.js';
import type { Counter, Gauge, Histogram, StatsScope } from '../src/observability/stats-api.js';
import type { StreamInfo } from '../src/stream-info.js';
import { ClusterManager } from '../src/upstream/index.js';
import type { DnsResolver } from '../src/upstream/cluster.js';
import type { ProxyConfig } from '../src/xds/config.js';

// ---- Stats ----

/** A flat StatsScope: every stat by its full dotted name. */
export class FakeStats implements StatsScope {
  constructor(
    private readonly prefix = '',
    readonly values = new Map<string, { value: number }>(),
    readonly histograms = new Map<string, number[]>(),
  ) {}

  private key(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  counter(name: string): Counter {
    const k = this.key(name);
    let v = this.values.get(k);
    if (!v) this.values.set(k, (v = { value: 0 }));
    const cell = v;
    return {
      inc: (n = 1) => {
        cell.value += n;
      },
      get value() {
        return cell.value;
      },
    };
  }

  gauge(name: string): Gauge {
    const k = this.key(name);
    let v = this.values.get(k);
    if (!v) this.values.set(k, (v = { value: 0 }));
    const cell = v;
    return {
      set: (x) => {
        cell.value = x;
      },
      inc: (n = 1) => {
        cell.value += n;
      },
      dec: (n = 1) => {
        cell.value -= n;
      },
      get value() {
        return cell.value;
      },
    };
  }

  histogram(name: string): Histogram {
    const k = this.key(name);
    let list = this.histograms.get(k);
    if (!list) this.histograms.set(k, (list = []));
    const l = list;
    return { record: (v) => void l.push(v) };
  }

  scope(prefix: string): StatsScope {
    return new FakeStats(this.key(prefix), this.values, this.histograms);
  }

  /** A stat's value by full name (0 when never created). */
  get(name: string): number {
    return this.values.get(name)?.value ?? 0;
  }
}

// ---- Backends ----

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
  body: Buffer;
  /** The request body ended normally. */
  complete: boolean;
  /** The backend socket's remote port (which upstream connection carried it). */
  readonly remotePort: number;
}

export type H1Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  seen: SeenRequest,
) => void;

/** The default handler: 200 with the request as JSON (`x-backend` names the backend). */
export function echoJson(name: string): H1Handler {
  return (req, res, seen) => {
    req.on('end', () => {
      const body = JSON.stringify({
        backend: name,
        method: seen.method,
        url: seen.url,
        headers: seen.headers,
        body: seen.body.toString(),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
      res.end(body);
    });
  };
}

export interface Backend {
  readonly port: number;
  readonly requests: SeenRequest[];
  /** Connections accepted. */
  connections(): number;
  close(): Promise<void>;
}

/** An HTTP/1.1 server on 127.0.0.1:0 that records every request (and its body). */
export async function startH1Backend(handler: H1Handler = echoJson('backend')): Promise<Backend> {
  const requests: SeenRequest[] = [];
  let conns = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      httpVersion: req.httpVersion,
      body: Buffer.alloc(0),
      complete: false,
      remotePort: req.socket.remotePort ?? 0,
    };
    requests.push(seen);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size < 1 << 20) chunks.push(c);
      size += c.length;
    });
    req.on('end', () => {
      seen.body = Buffer.concat(chunks);
      seen.complete = true;
    });
    handler(req, res, seen);
  });
  server.on('connection', (s: Socket) => {
    conns++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    connections: () => conns,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface H2Backend extends Backend {
  /** HTTP/2 sessions accepted. */
  sessions(): number;
  readonly server: http2.Http2Server;
}

/** An h2c server on 127.0.0.1:0; `handler` answers each stream (default: JSON echo). */
export async function startH2Backend(
  handler?: (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    seen: SeenRequest,
  ) => void,
  settings: http2.Settings = {},
): Promise<H2Backend> {
  const requests: SeenRequest[] = [];
  let sessions = 0;
  const server = http2.createServer({ settings });
  const all = new Set<http2.Http2Session>();
  server.on('session', (s) => {
    sessions++;
    all.add(s);
    s.once('close', () => all.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {
      /* resets are part of the tests */
    });
    const seen: SeenRequest = {
      method: String(headers[':method']),
      url: String(headers[':path']),
      headers,
      httpVersion: '2.0',
      body: Buffer.alloc(0),
      complete: false,
      remotePort: stream.session?.socket.remotePort ?? 0,
    };
    requests.push(seen);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      seen.body = Buffer.concat(chunks);
      seen.complete = true;
    });
    if (handler) handler(stream, headers, seen);
    else
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-backend': 'h2' });
        stream.end(
          JSON.stringify({
            backend: 'h2',
            url: seen.url,
            headers: { ...headers },
            body: seen.body.toString(),
          }),
        );
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    server,
    connections: () => sessions,
    sessions: () => sessions,
    close: () =>
      new Promise<void>((r) => {
        for (const s of all) s.destroy();
        server.close(() => r());
      }),
  };
}

// ---- Resources ----

export const HTTP_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_OPTIONS_TYPE =
  'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** typed_extension_protocol_options for explicit HTTP/2 (as in cluster-grpc goldens). */
export function http2Options(
  extra: Record<string, unknown> = {},
): NonNullable<Cluster['typedExtensionProtocolOptions']> {
  return {
    [HTTP_OPTIONS_KEY]: {
      '@type': HTTP_OPTIONS_TYPE,
      explicitHttpConfig: { http2ProtocolOptions: {} },
      ...extra,
    },
  } as NonNullable<Cluster['typedExtensionProtocolOptions']>;
}

/** typed_extension_protocol_options with use_downstream_protocol_config (Istio's default). */
export function downstreamProtocolOptions(
  extra: Record<string, unknown> = {},
): NonNullable<Cluster['typedExtensionProtocolOptions']> {
  return {
    [HTTP_OPTIONS_KEY]: {
      '@type': HTTP_OPTIONS_TYPE,
      useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
      ...extra,
    },
  } as NonNullable<Cluster['typedExtensionProtocolOptions']>;
}

/** A ClusterLoadAssignment of 127.0.0.1 ports. */
export function loadAssignment(
  name: string,
  ports: readonly number[],
  metadata?: Record<string, unknown>,
): ClusterLoadAssignment {
  return {
    clusterName: name,
    endpoints: [
      {
        lbEndpoints: ports.map((p) => ({
          endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: p } } },
          healthStatus: 'HEALTHY' as const,
          ...(metadata
            ? { metadata: { filterMetadata: metadata as Record<string, Record<string, unknown>> } }
            : {}),
        })),
      },
    ],
  };
}

/** A STATIC cluster over 127.0.0.1 ports. */
export function staticCluster(
  name: string,
  ports: readonly number[],
  extra: Partial<Cluster> = {},
): Cluster {
  return {
    name,
    type: 'STATIC',
    connectTimeout: '1s',
    lbPolicy: 'ROUND_ROBIN',
    loadAssignment: loadAssignment(name, ports),
    ...extra,
  };
}

/** An EDS cluster (endpoints come from ProxyConfig.endpoints). */
export function edsCluster(name: string, extra: Partial<Cluster> = {}): Cluster {
  return {
    name,
    type: 'EDS',
    connectTimeout: '1s',
    edsClusterConfig: { serviceName: name, edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    ...extra,
  };
}

export function route(match: NonNullable<Route['match']>, action: Omit<Route, 'match'>): Route {
  return { match, ...action };
}

export function vhost(
  name: string,
  domains: string[],
  routes: Route[],
  extra: Partial<VirtualHost> = {},
): VirtualHost {
  return { name, domains, routes, ...extra };
}

export function routeConfig(
  name: string,
  virtualHosts: VirtualHost[],
  extra: Partial<RouteConfiguration> = {},
): RouteConfiguration {
  return { name, virtualHosts, ...extra };
}

/** An HCM config routing by RDS name `routes` (Istio-like defaults). */
export function hcmConfig(extra: Partial<HttpConnectionManager> = {}): HttpConnectionManager {
  return {
    statPrefix: 'test',
    codecType: 'AUTO',
    rds: { routeConfigName: 'routes', configSource: { ads: {} } },
    httpFilters: [
      {
        name: 'envoy.filters.http.router',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
        },
      },
    ],
    normalizePath: true,
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    streamIdleTimeout: '0s',
    ...extra,
  };
}

/** A route config `routes` with one catch-all vhost sending everything to `cluster`. */
export function simpleRoutes(
  cluster: string,
  routeExtra: Partial<Route['route']> = {},
): RouteConfiguration {
  return routeConfig('routes', [
    vhost(
      'all',
      ['*'],
      [route({ prefix: '/' }, { route: { cluster, timeout: '0s', ...routeExtra } })],
    ),
  ]);
}

export function proxyConfig(
  clusters: Cluster[],
  endpoints: ClusterLoadAssignment[] = [],
  routes: RouteConfiguration[] = [],
): ProxyConfig {
  return {
    listeners: new Map(),
    routes: new Map(routes.map((r) => [r.name ?? '', r])),
    clusters: new Map(clusters.map((c) => [c.name ?? '', c])),
    endpoints: new Map(endpoints.map((e) => [e.clusterName ?? '', e])),
    versions: { listeners: '1', routes: '1', clusters: '1', endpoints: '1' },
  };
}

// ---- The proxy ----

export interface Completed {
  readonly info: StreamInfo;
  readonly headers: StreamHeaders;
}

export interface ProxyHarness {
  readonly port: number;
  readonly stats: FakeStats;
  readonly cm: ClusterManager;
  readonly hcm: HttpConnectionManagerImpl;
  readonly completed: Completed[];
  config: ProxyConfig;
  /** Applies a new configuration to the cluster manager (and routes). */
  update(config: ProxyConfig): Promise<void>;
  /** Resolves with the next completed stream (or the n-th overall). */
  nextCompleted(): Promise<Completed>;
  close(): Promise<void>;
}

export interface ProxyOptions {
  readonly hcm?: HttpConnectionManager;
  readonly clusters: Cluster[];
  readonly endpoints?: ClusterLoadAssignment[];
  readonly routes?: RouteConfiguration[];
  readonly conn?: Partial<DownstreamConnectionInfo>;
  readonly dns?: DnsResolver;
  readonly random?: () => number;
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHarness> {
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats, ...(opts.dns ? { dns: opts.dns } : {}) });
  let config = proxyConfig(opts.clusters, opts.endpoints ?? [], opts.routes ?? []);
  await cm.update(config);
  const completed: Completed[] = [];
  const waiters: ((c: Completed) => void)[] = [];
  const hcm = new HttpConnectionManagerImpl({
    config: opts.hcm ?? hcmConfig(),
    clusterManager: cm,
    routeConfig: (name) => config.routes.get(name),
    stats,
    onStreamComplete: (info, headers) => {
      const c = { info, headers };
      completed.push(c);
      waiters.shift()?.(c);
    },
    ...(opts.random ? { random: opts.random } : {}),
  });
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    hcm.handleConnection(socket, {
      listenerName: 'test_listener',
      direction: 'outbound',
      ...opts.conn,
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const harness: ProxyHarness = {
    port: (server.address() as AddressInfo).port,
    stats,
    cm,
    hcm,
    completed,
    get config() {
      return config;
    },
    set config(c: ProxyConfig) {
      config = c;
    },
    async update(c: ProxyConfig) {
      config = c;
      await cm.update(c);
    },
    nextCompleted: () => new Promise<Completed>((r) => waiters.push(r)),
    close: () =>
      new Promise<void>((r) => {
        hcm.close();
        cm.close();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  return harness;
}

// ---- Clients ----

export interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The body's bytes (binary bodies: gRPC-Web frames...). */
  readonly raw: Buffer;
  readonly trailers: Record<string, string | undefined>;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  readonly agent?: http.Agent | false;
}

/** One HTTP/1.1 request to 127.0.0.1:port. */
export function request(port: number, o: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path ?? '/',
        headers: o.headers ?? {},
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: raw.toString(),
            raw,
            trailers: res.trailers,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** One HTTP/2 request on `session`. */
export function h2request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<{
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    let h: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    s.on('response', (x: http2.IncomingHttpHeaders) => (h = x));
    s.on('trailers', (t: http2.IncomingHttpHeaders) => (trailers = t));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () =>
      resolve({
        status: Number(h[':status']),
        headers: h,
        body: Buffer.concat(chunks).toString(),
        trailers,
      }),
    );
    s.on('error', reject);
    if (body !== undefined) s.end(body);
  });
}

/** Writes raw bytes on a new connection and collects everything until the server closes (or `ms`). */
export function rawExchange(
  port: number,
  data: string | Buffer | (string | Buffer)[],
  ms = 3000,
): Promise<string> {
  return new Promise((resolve) => {
    const parts = Array.isArray(data) ? data : [data];
    const s = net.connect(port, '127.0.0.1', () => {
      for (const p of parts) s.write(p);
    });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {
      /* resolved on close */
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** The status code of a raw HTTP/1.x response ('' when none). */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export function once<T>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (v: T) => resolve(v)));
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true (or fails after `ms`). */
export async function eventually(fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(10);
  }
}
