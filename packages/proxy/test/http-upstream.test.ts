// The cluster manager and upstream pieces without a full proxy: connect_timeout, transport
// socket selection, protocol selection, DNS clusters, and the translate goldens (every cluster,
// route configuration and HttpConnectionManager the control plane generates is accepted).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type {
  Cluster,
  ClusterLoadAssignment,
  HttpConnectionManager,
  Route,
  RouteConfiguration,
} from '@trellis/envoy';
import { HttpConnectionManagerImpl } from '../src/http/index.js';
import { RequestHeaders } from '../src/http/headers.js';
import { compileRouteConfig, findRoute } from '../src/http/route-match.js';
import { UpstreamConnectError } from '../src/upstream/api.js';
import { ClusterImpl } from '../src/upstream/cluster.js';
import { ClusterManager } from '../src/upstream/cluster-manager.js';
import { connectTcp } from '../src/upstream/connect.js';
import { upstreamHttpSettings } from '../src/upstream/http-protocol-options.js';
import { FakeStats, delay, eventually, proxyConfig } from './http-fixtures.js';

/** Resolves in the check phase, so that the next loop iteration starts with the timers phase. */
const checkPhase = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Blocks the event loop: timers due by then run before the poll phase sees the connect. */
function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* spin */
  }
}

async function listening(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('connect_timeout: a connection not established in time fails with `connect timeout` (UF)', async () => {
  const server = await listening();
  try {
    await checkPhase();
    const p = connectTcp('127.0.0.1', server.port, { timeoutMs: 1 });
    busyWait(10);
    await assert.rejects(
      p,
      (e: UpstreamConnectError) =>
        e instanceof UpstreamConnectError && e.timedOut && e.reason === 'connect timeout',
    );
    const stats = new FakeStats();
    const cluster = new ClusterImpl(
      {
        name: 'c',
        type: 'STATIC',
        connectTimeout: '0.001s',
        loadAssignment: {
          endpoints: [
            {
              lbEndpoints: [
                {
                  endpoint: {
                    address: { socketAddress: { address: '127.0.0.1', portValue: server.port } },
                  },
                },
              ],
            },
          ],
        },
      },
      { stats },
    );
    const host = cluster.choose({});
    assert.ok(host);
    await checkPhase();
    const c = cluster.connect(host);
    busyWait(10);
    await assert.rejects(c, (e: UpstreamConnectError) => e.timedOut);
    assert.equal(stats.get('cluster.c.upstream_cx_connect_timeout'), 1);
    assert.equal(stats.get('cluster.c.upstream_cx_connect_fail'), 1);
    assert.equal(stats.get('cluster.c.upstream_cx_active'), 0);
    const ok = await connectTcp('127.0.0.1', server.port, { timeoutMs: 1000 });
    ok.destroy();
    cluster.close();
  } finally {
    await server.close();
  }
});

test('cluster stats use alt_stat_name; the default connect_timeout is 5 s', async () => {
  const server = await listening();
  const stats = new FakeStats();
  const cluster = new ClusterImpl(
    {
      name: 'outbound|9080||reviews',
      altStatName: 'outbound|9080||reviews;',
      type: 'STATIC',
      loadAssignment: {
        endpoints: [
          {
            lbEndpoints: [
              {
                endpoint: {
                  address: { socketAddress: { address: '127.0.0.1', portValue: server.port } },
                },
              },
            ],
          },
        ],
      },
    },
    { stats },
  );
  try {
    const host = cluster.choose({});
    assert.ok(host);
    const s = await cluster.connect(host);
    assert.equal(stats.get('cluster.outbound|9080||reviews;.upstream_cx_total'), 1);
    assert.equal(stats.get('cluster.outbound|9080||reviews;.upstream_cx_active'), 1);
    s.destroy();
    await eventually(() => stats.get('cluster.outbound|9080||reviews;.upstream_cx_active') === 0);
    assert.equal(stats.get('cluster.outbound|9080||reviews;.upstream_cx_destroy'), 1);
  } finally {
    cluster.close();
    await server.close();
  }
});

test('transport socket matches pick TLS for tlsMode: istio endpoints', async () => {
  const stats = new FakeStats();
  const cluster = new ClusterImpl(
    {
      name: 'm',
      type: 'EDS',
      transportSocketMatches: [
        {
          name: 'tlsMode-istio',
          match: { tlsMode: 'istio' },
          transportSocket: { name: 'envoy.transport_sockets.tls' },
        },
        {
          name: 'tlsMode-disabled',
          match: {},
          transportSocket: { name: 'envoy.transport_sockets.raw_buffer' },
        },
      ],
    },
    { stats },
  );
  cluster.setLoadAssignment({
    endpoints: [
      {
        lbEndpoints: [
          {
            endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 1 } } },
            metadata: { filterMetadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } },
          },
          { endpoint: { address: { socketAddress: { address: '127.0.0.2', portValue: 1 } } } },
        ],
      },
    ],
  });
  const [istio, plain] = cluster.hosts();
  assert.ok(istio && plain);
  assert.equal(cluster.transportSocketFor(istio), 'tls');
  assert.equal(cluster.transportSocketFor(plain), 'raw_buffer');
  // Nothing listens there: the TCP connect fails before any TLS.
  await assert.rejects(cluster.connect(istio), (e: UpstreamConnectError) =>
    /connect error/.test(e.reason),
  );
  assert.equal(stats.get('cluster.m.membership_total'), 2);
  cluster.close();
});

test('STRICT_DNS keeps its last good resolution when a refresh fails; LOGICAL_DNS is one host by name', async () => {
  let answer: string[] | undefined = ['127.0.0.1', '127.0.0.2'];
  let lookups = 0;
  const stats = new FakeStats();
  const cluster = new ClusterImpl(
    {
      name: 'dns',
      type: 'STRICT_DNS',
      dnsRefreshRate: '0.05s',
      loadAssignment: {
        endpoints: [
          {
            lbEndpoints: [
              { endpoint: { address: { socketAddress: { address: 'svc.test', portValue: 80 } } } },
            ],
          },
        ],
      },
    },
    {
      stats,
      dns: () => {
        lookups++;
        return answer ? Promise.resolve(answer) : Promise.reject(new Error('ENOTFOUND'));
      },
    },
  );
  await cluster.initialized;
  assert.deepEqual(
    cluster.hosts().map((h) => h.id),
    ['127.0.0.1:80', '127.0.0.2:80'],
  );
  assert.equal(cluster.hosts()[0]?.hostname, 'svc.test');
  answer = undefined;
  const before = lookups;
  await eventually(() => lookups > before + 1);
  assert.equal(cluster.hosts().length, 2, 'a failed refresh keeps the hosts');
  answer = ['127.0.0.3'];
  await eventually(() => cluster.hosts().length === 1);
  assert.equal(cluster.hosts()[0]?.id, '127.0.0.3:80');
  cluster.close();
  const logical = new ClusterImpl(
    {
      name: 'logical',
      type: 'LOGICAL_DNS',
      loadAssignment: {
        endpoints: [
          {
            lbEndpoints: [
              { endpoint: { address: { socketAddress: { address: 'localhost', portValue: 80 } } } },
            ],
          },
        ],
      },
    },
    { stats },
  );
  assert.deepEqual(
    logical.hosts().map((h) => [h.id, h.hostname]),
    [['localhost:80', 'localhost']],
  );
  logical.close();
  await delay(1);
});

// ---- The translate goldens ----

const GOLDEN = join(import.meta.dirname, '..', '..', '..', 'translate', 'test', 'golden');

function golden(name: string): unknown {
  return JSON.parse(readFileSync(join(GOLDEN, name), 'utf8')) as unknown;
}

/** Every object with `@type` ending in `suffix`, anywhere in `v`. */
function findTyped<T>(v: unknown, suffix: string, out: T[] = []): T[] {
  if (Array.isArray(v)) for (const x of v) findTyped(x, suffix, out);
  else if (v && typeof v === 'object') {
    const t = (v as { '@type'?: unknown })['@type'];
    if (typeof t === 'string' && t.endsWith(suffix)) out.push(v as T);
    for (const x of Object.values(v)) findTyped(x, suffix, out);
  }
  return out;
}

test('every golden cluster and endpoint assignment is accepted by the cluster manager', async () => {
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  for (const f of readdirSync(GOLDEN)) {
    if (f.startsWith('cluster-')) clusters.push(...(golden(f) as Cluster[]));
    if (f.startsWith('endpoint-')) endpoints.push(...(golden(f) as ClusterLoadAssignment[]));
  }
  assert.ok(clusters.length > 20);
  const byName = new Map<string, Cluster>();
  for (const c of clusters) byName.set(c.name ?? '', c);
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats, dns: () => Promise.resolve(['127.0.0.1']) });
  const byEds = new Map<string, ClusterLoadAssignment>();
  for (const e of endpoints) byEds.set(e.clusterName ?? '', e);
  await cm.update(proxyConfig([...byName.values()], [...byEds.values()]));
  assert.equal(stats.get('cluster_manager.active_clusters'), byName.size);
  for (const name of byName.keys()) assert.ok(cm.get(name), name);
  // Protocol selection as the goldens ask.
  const modes = (file: string): string[] =>
    (golden(file) as Cluster[]).map((c) => upstreamHttpSettings(c).mode);
  assert.ok(modes('cluster-http2.json').every((m) => m === 'downstream' || m === 'http2'));
  assert.ok(modes('cluster-http2.json').includes('http2'));
  const pool = upstreamHttpSettings(
    (golden('cluster-connection-pool.json') as Cluster[])[0] as Cluster,
  );
  assert.equal(pool.mode, 'http1');
  assert.equal(pool.idleTimeoutMs, 30_000);
  assert.equal(pool.maxRequestsPerConnection, 5);
  assert.equal(pool.maxConnectionDurationMs, 3_600_000);
  cm.close();
  // Istio's tlsMode: istio endpoints (endpoint-default) under a cluster with Istio's
  // transport_socket_matches (cluster-http2's details) need upstream TLS; others plaintext.
  const details = new ClusterImpl((golden('cluster-http2.json') as Cluster[])[0] as Cluster, {
    stats,
  });
  details.setLoadAssignment(
    (golden('endpoint-default.json') as ClusterLoadAssignment[])[0] as ClusterLoadAssignment,
  );
  const kinds = details.hosts().map((h) => details.transportSocketFor(h));
  assert.ok(kinds.length >= 2);
  assert.ok(kinds.includes('tls'));
  details.close();
});

test('every golden route configuration compiles, and routes like the simulation expects', () => {
  const configs: RouteConfiguration[] = [];
  for (const f of readdirSync(GOLDEN)) {
    const g = golden(f);
    if (f.startsWith('route-') && Array.isArray(g))
      configs.push({
        name: f,
        virtualHosts: [{ name: 'v', domains: ['*'], routes: g as Route[] }],
      });
    else if (f === 'route-config-default.json') configs.push(g as RouteConfiguration);
    else if (g && typeof g === 'object' && 'routes' in g && Array.isArray(g.routes))
      configs.push(...(g as { routes: RouteConfiguration[] }).routes);
    for (const hcm of findTyped<HttpConnectionManager>(g, 'HttpConnectionManager'))
      if (hcm.routeConfig) configs.push(hcm.routeConfig);
  }
  assert.ok(configs.length > 15);
  for (const c of configs) compileRouteConfig(c);
  const def = compileRouteConfig(golden('route-config-default.json') as RouteConfiguration);
  const pick = (authority: string, path = '/'): string | undefined => {
    const r = findRoute(def, {
      headers: new RequestHeaders({}, 'GET', path, authority, 'http'),
      isConnect: false,
      isGrpc: false,
    }).route;
    return r?.action.kind === 'route' ? r.action.cluster : undefined;
  };
  assert.equal(pick('httpbin:8000'), 'outbound|8000||httpbin.default.svc.cluster.local');
  assert.equal(
    pick('httpbin.default.svc.cluster.local'),
    'outbound|8000||httpbin.default.svc.cluster.local',
  );
  assert.equal(pick('example.com'), 'PassthroughCluster');
  const match = compileRouteConfig({
    virtualHosts: [{ domains: ['*'], routes: golden('route-match.json') as Route[] }],
  });
  const headers = new RequestHeaders(
    { 'x-exact': 'a', 'x-prefix': 'bee', 'x-present': '', 'x-regex': 'c42' },
    'GET',
    '/status/200?p=abc&q=1',
    'httpbin.default',
    'http',
  );
  assert.equal(
    findRoute(match, { headers, isConnect: false, isGrpc: false }).route?.name,
    'all-conditions.exact',
  );
  headers.map['x-not-debug'] = 'true';
  assert.notEqual(
    findRoute(match, { headers, isConnect: false, isGrpc: false }).route?.name,
    'all-conditions.exact',
  );
});

test('every golden HttpConnectionManager builds a connection manager', () => {
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats });
  let n = 0;
  for (const f of readdirSync(GOLDEN)) {
    for (const cfg of findTyped<HttpConnectionManager>(golden(f), 'HttpConnectionManager')) {
      const hcm = new HttpConnectionManagerImpl({
        config: cfg,
        clusterManager: cm,
        stats,
        routeConfig: () => undefined,
      });
      hcm.close();
      n++;
    }
  }
  assert.ok(n >= 8, `${n} connection managers`);
  assert.ok(stats.values.has('http.outbound_0.0.0.0_8080.downstream_rq_total'));
});
