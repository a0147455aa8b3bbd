// The cluster manager on the real load balancers (upstream/lb) over real sockets: each
// lb_policy chooses among the cluster's host set, hosts keep their objects (and in-flight
// request counts) across EDS updates and Cluster changes, the pools and TCP connections maintain
// `activeRequests`, and settings the balancers cannot honour are rejected (cluster manager
// errors, and NACK problems in xDS validation).
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import type { Cluster, ClusterLoadAssignment, LbEndpoint } from '@trellis/envoy';
import { TYPE_URL } from '@trellis/envoy';
import { durationMs, isValidDuration } from '../src/duration.js';
import { HttpConnectionManagerImpl } from '../src/http/index.js';
import { ClusterManager, type ClusterUpdateResult } from '../src/upstream/index.js';
import { seededRandom, type Random } from '../src/upstream/lb/index.js';
import type { ProxyConfig } from '../src/xds/config.js';
import { validateResource } from '../src/xds/validate.js';
import {
  FakeStats,
  edsCluster,
  eventually,
  hcmConfig,
  http2Options,
  loadAssignment,
  proxyConfig,
  request,
  simpleRoutes,
  startH1Backend,
  startH2Backend,
  staticCluster,
  type Backend,
  type H1Handler,
} from './http-fixtures.js';

interface LbProxy {
  readonly port: number;
  readonly stats: FakeStats;
  readonly cm: ClusterManager;
  update(clusters: Cluster[], endpoints?: ClusterLoadAssignment[]): Promise<ClusterUpdateResult>;
  close(): Promise<void>;
}

/** ClusterManager (with seeded randomness) + HttpConnectionManagerImpl behind a server on port 0. */
async function startLbProxy(
  clusters: Cluster[],
  endpoints: ClusterLoadAssignment[] = [],
  random: Random = seededRandom(7),
): Promise<LbProxy> {
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats, random });
  const routeName = clusters[0]?.name ?? '';
  let config: ProxyConfig = proxyConfig(clusters, endpoints, [simpleRoutes(routeName)]);
  await cm.update(config);
  const hcm = new HttpConnectionManagerImpl({
    config: hcmConfig(),
    clusterManager: cm,
    routeConfig: (name) => config.routes.get(name),
    stats,
  });
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    hcm.handleConnection(socket, { listenerName: 'lb_listener', direction: 'outbound' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    cm,
    update: (cs, eps = []) => {
      config = proxyConfig(cs, eps, [simpleRoutes(routeName)]);
      return cm.update(config);
    },
    close: () =>
      new Promise<void>((r) => {
        hcm.close();
        cm.close();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Backends that answer with their name, and hold requests carrying `x-hold` until released. */
async function holdingBackends(n: number): Promise<{
  backends: Backend[];
  held: ServerResponse[];
  release(): void;
  close(): Promise<void>;
}> {
  const held: ServerResponse[] = [];
  const handler =
    (name: string): H1Handler =>
    (req, res) => {
      req.on('end', () => {
        res.setHeader('x-backend', name);
        if (req.headers['x-hold'] !== undefined) held.push(res);
        else res.end(name);
      });
    };
  const backends: Backend[] = [];
  for (let i = 0; i < n; i++) backends.push(await startH1Backend(handler(`b${i}`)));
  return {
    backends,
    held,
    release: () => {
      for (const r of held.splice(0)) r.end('released');
    },
    close: async () => {
      for (const b of backends) await b.close();
    },
  };
}

function endpoint(port: number, weight?: number): LbEndpoint {
  return {
    endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } },
    ...(weight !== undefined ? { loadBalancingWeight: weight } : {}),
  };
}

function cla(name: string, eps: LbEndpoint[]): ClusterLoadAssignment {
  return { clusterName: name, endpoints: [{ lbEndpoints: eps }] };
}

/** Sends `n` requests one after the other; counts the answering backend (x-backend). */
async function spread(port: number, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await request(port, { path: `/r${i}` });
    assert.equal(res.status, 200, res.body);
    const b = String(res.headers['x-backend']);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return counts;
}

test('ROUND_ROBIN spreads requests evenly over three real backends', async () => {
  const b = await holdingBackends(3);
  const proxy = await startLbProxy([
    staticCluster(
      'rr',
      b.backends.map((x) => x.port),
      { lbPolicy: 'ROUND_ROBIN' },
    ),
  ]);
  try {
    const counts = await spread(proxy.port, 30);
    assert.deepEqual([...counts.entries()].sort(), [
      ['b0', 10],
      ['b1', 10],
      ['b2', 10],
    ]);
    assert.deepEqual(
      b.backends.map((x) => x.requests.length),
      [10, 10, 10],
    );
    const hosts = proxy.cm.get('rr')?.hosts() ?? [];
    assert.equal(hosts.length, 3);
    await eventually(() => hosts.every((h) => h.activeRequests === 0));
  } finally {
    await proxy.close();
    await b.close();
  }
});

test('ROUND_ROBIN honours endpoint load_balancing_weight (1:2:3)', async () => {
  const b = await holdingBackends(3);
  const [p0, p1, p2] = b.backends.map((x) => x.port) as [number, number, number];
  const proxy = await startLbProxy(
    [edsCluster('w', { lbPolicy: 'ROUND_ROBIN' })],
    [cla('w', [endpoint(p0, 1), endpoint(p1, 2), endpoint(p2, 3)])],
  );
  try {
    // The smooth weighted schedule picks each host exactly `weight` times per Σweights picks.
    const counts = await spread(proxy.port, 60);
    assert.deepEqual([...counts.entries()].sort(), [
      ['b0', 10],
      ['b1', 20],
      ['b2', 30],
    ]);
  } finally {
    await proxy.close();
    await b.close();
  }
});

test('LEAST_REQUEST prefers the idle host while one slow request is in flight', async () => {
  const b = await holdingBackends(2);
  const proxy = await startLbProxy([
    staticCluster(
      'lr',
      b.backends.map((x) => x.port),
      // Power of N choices with replacement: N = 10 makes sampling only the busy host rare.
      { lbPolicy: 'LEAST_REQUEST', leastRequestLbConfig: { choiceCount: 10 } },
    ),
  ]);
  try {
    const slow = request(proxy.port, { path: '/slow', headers: { 'x-hold': '1' } });
    slow.catch(() => {});
    await eventually(() => b.held.length === 1);
    const busy = String(b.held[0]?.getHeader('x-backend'));
    const hosts = proxy.cm.get('lr')?.hosts() ?? [];
    assert.deepEqual(
      hosts.map((h) => h.activeRequests).sort(),
      [0, 1],
      'the pool counts the slow request on its host',
    );
    const counts = await spread(proxy.port, 20);
    const idle = busy === 'b0' ? 'b1' : 'b0';
    assert.equal(counts.get(idle), 20, `all to the idle host, got ${JSON.stringify([...counts])}`);
    b.release();
    assert.equal((await slow).status, 200);
    await eventually(() => hosts.every((h) => h.activeRequests === 0));
    // Without a request in flight, both hosts are used again.
    const after = await spread(proxy.port, 20);
    assert.equal(after.size, 2);
  } finally {
    b.release();
    await proxy.close();
    await b.close();
  }
});

test('RANDOM, RING_HASH and MAGLEV clusters route through their balancers', async () => {
  const b = await holdingBackends(2);
  const ports = b.backends.map((x) => x.port);
  try {
    for (const lbPolicy of ['RANDOM', 'RING_HASH', 'MAGLEV'] as const) {
      const proxy = await startLbProxy([
        staticCluster('p', ports, {
          lbPolicy,
          ...(lbPolicy === 'RING_HASH' ? { ringHashLbConfig: { minimumRingSize: '64' } } : {}),
          ...(lbPolicy === 'MAGLEV' ? { maglevLbConfig: { tableSize: '251' } } : {}),
        }),
      ]);
      try {
        assert.equal(proxy.cm.get('p')?.loadBalancer.policy, lbPolicy);
        // No hash policy on the route: the hashing balancers use a random hash.
        const counts = await spread(proxy.port, 40);
        assert.equal(counts.size, 2, `${lbPolicy}: ${JSON.stringify([...counts])}`);
      } finally {
        await proxy.close();
      }
    }
  } finally {
    await b.close();
  }
});

test('an EDS update keeps host objects and their in-flight counts; removed hosts go', async () => {
  const b = await holdingBackends(3);
  const [p0, p1, p2] = b.backends.map((x) => x.port) as [number, number, number];
  const proxy = await startLbProxy(
    [edsCluster('e', { lbPolicy: 'ROUND_ROBIN' })],
    [cla('e', [endpoint(p0), endpoint(p1)])],
  );
  try {
    const cluster = proxy.cm.get('e');
    assert.ok(cluster);
    const before = cluster.hosts();
    const h0 = before.find((h) => h.port === p0);
    const h1 = before.find((h) => h.port === p1);
    assert.ok(h0 && h1);
    const slow = request(proxy.port, { headers: { 'x-hold': '1' } });
    slow.catch(() => {});
    await eventually(() => b.held.length === 1);
    const busy = h0.activeRequests === 1 ? h0 : h1;
    assert.equal(busy.activeRequests, 1);

    // p1 gets weight 5, p2 is added, p0 stays: the same objects for the same ids.
    await proxy.update(
      [edsCluster('e', { lbPolicy: 'ROUND_ROBIN' })],
      [cla('e', [endpoint(p0), endpoint(p1, 5), endpoint(p2)])],
    );
    assert.equal(proxy.cm.get('e'), cluster, 'an unchanged Cluster is kept');
    const after = cluster.hosts();
    assert.equal(after.length, 3);
    assert.equal(
      after.find((h) => h.port === p0),
      h0,
    );
    assert.equal(
      after.find((h) => h.port === p1),
      h1,
    );
    assert.equal(h1.weight, 5);
    assert.equal(busy.activeRequests, 1, 'the in-flight request is still counted');
    assert.equal(proxy.stats.get('cluster.e.membership_total'), 3);

    // Removing the busy host: its request finishes on the draining pool.
    const keep = busy === h0 ? p1 : p0;
    await proxy.update(
      [edsCluster('e', { lbPolicy: 'ROUND_ROBIN' })],
      [cla('e', [endpoint(keep)])],
    );
    assert.deepEqual(
      cluster.hosts().map((h) => h.port),
      [keep],
    );
    b.release();
    assert.equal((await slow).status, 200);
    await eventually(() => busy.activeRequests === 0);
    const counts = await spread(proxy.port, 4);
    assert.equal(counts.size, 1);
  } finally {
    b.release();
    await proxy.close();
    await b.close();
  }
});

test('a changed Cluster is rebuilt around the same hosts (the old hostSet is handed over)', async () => {
  const b = await holdingBackends(2);
  const ports = b.backends.map((x) => x.port);
  const proxy = await startLbProxy([staticCluster('c', ports, { lbPolicy: 'ROUND_ROBIN' })]);
  try {
    const old = proxy.cm.get('c');
    assert.ok(old);
    const hosts = [...old.hosts()];
    const slow = request(proxy.port, { headers: { 'x-hold': '1' } });
    slow.catch(() => {});
    await eventually(() => b.held.length === 1);
    const busy = hosts.find((h) => h.activeRequests === 1);
    assert.ok(busy);

    await proxy.update([
      staticCluster('c', ports, {
        lbPolicy: 'LEAST_REQUEST',
        leastRequestLbConfig: { choiceCount: 10 },
      }),
    ]);
    const next = proxy.cm.get('c');
    assert.ok(next && next !== old, 'a new cluster');
    assert.equal(next.loadBalancer.policy, 'LEAST_REQUEST');
    assert.equal(next.hostSet, old.hostSet);
    assert.deepEqual(next.hosts(), hosts, 'the same host objects');
    assert.equal(busy.activeRequests, 1);
    assert.equal(proxy.stats.get('cluster_manager.cluster_modified'), 1);
    // The new cluster's LEAST_REQUEST sees the request still running on the old pool.
    const counts = await spread(proxy.port, 10);
    assert.equal(counts.size, 1);
    assert.notEqual([...counts.keys()][0], b.held[0]?.getHeader('x-backend'));
    b.release();
    assert.equal((await slow).status, 200);
    await eventually(() => busy.activeRequests === 0);

    // A change of discovery type starts from a new host set.
    await proxy.update(
      [edsCluster('c', { lbPolicy: 'ROUND_ROBIN' })],
      [cla('c', [endpoint(ports[0] ?? 0)])],
    );
    const eds = proxy.cm.get('c');
    assert.ok(eds);
    assert.notEqual(eds.hostSet, old.hostSet);
    assert.equal(eds.hosts().length, 1);
  } finally {
    b.release();
    await proxy.close();
    await b.close();
  }
});

test('HTTP/1.1 and HTTP/2 pools count each request on its host, failures included', async () => {
  const h1 = await holdingBackends(1);
  const held2: (() => void)[] = [];
  const h2 = await startH2Backend((stream, headers) => {
    const answer = (): void => {
      stream.respond({ ':status': 200, 'x-backend': 'h2' });
      stream.end('ok');
    };
    stream.on('data', () => {});
    stream.on('end', () => {
      if (headers['x-hold'] !== undefined) held2.push(answer);
      else answer();
    });
  });
  const refused = net.createServer();
  await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
  const deadPort = (refused.address() as AddressInfo).port;
  await new Promise<void>((r) => refused.close(() => r()));
  const proxy = await startLbProxy([
    staticCluster('one', [h1.backends[0]?.port ?? 0]),
    staticCluster('two', [h2.port], { typedExtensionProtocolOptions: http2Options() }),
    staticCluster('dead', [deadPort]),
  ]);
  try {
    for (const [name, release, pending] of [
      ['one', (): void => h1.release(), (): number => h1.held.length],
      ['two', (): void => void held2.splice(0).forEach((f) => f()), (): number => held2.length],
    ] as const) {
      const cluster = proxy.cm.get(name);
      assert.ok(cluster);
      const host = cluster.hosts()[0];
      assert.ok(host);
      const pool = cluster.httpPool(host, name === 'one' ? 'http1' : 'http2');
      const done = new Promise<number>((resolve, reject) => {
        pool.newStream(
          {
            method: 'GET',
            path: '/',
            authority: 'x',
            scheme: 'http',
            headers: { 'x-hold': '1' },
            endStream: true,
          },
          {
            onReady: (sink) => sink?.end(),
            onHeaders: (status, _h, end, body) => {
              if (!body) return resolve(status);
              body.resume();
              if (end) resolve(status);
              else body.once('end', () => resolve(status));
            },
            onReset: (reason) => reject(new Error(reason)),
          },
        );
      });
      assert.equal(host.activeRequests, 1, `${name}: counted from the start (pending)`);
      await eventually(() => pending() === 1);
      assert.equal(host.activeRequests, 1, `${name}: counted while in flight`);
      release();
      assert.equal(await done, 200);
      await eventually(() => host.activeRequests === 0);
    }
    // A connection failure ends the request too.
    const dead = proxy.cm.get('dead');
    const deadHost = dead?.hosts()[0];
    assert.ok(dead && deadHost);
    const direct = await new Promise<string>((resolve) => {
      dead.httpPool(deadHost, 'http1').newStream(
        { method: 'GET', path: '/', authority: 'x', scheme: 'http', headers: {}, endStream: true },
        {
          onReady: (sink) => sink?.end(),
          onHeaders: () => resolve('headers'),
          onReset: (reason) => resolve(reason),
        },
      );
    });
    assert.equal(direct, 'connection_failure');
    await eventually(() => deadHost.activeRequests === 0);
  } finally {
    h1.release();
    for (const f of held2.splice(0)) f();
    await proxy.close();
    await h1.close();
    await h2.close();
  }
});

test('an upgraded (WebSocket) request stays counted on its host until the tunnel closes', async () => {
  const upstream = new Set<Socket>();
  const backend = http.createServer((_req, res) => res.end('plain'));
  backend.on('upgrade', (_req: http.IncomingMessage, socket: Socket) => {
    upstream.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => upstream.delete(socket));
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    );
    socket.pipe(socket);
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const port = (backend.address() as AddressInfo).port;
  const proxy = await startLbProxy([staticCluster('ws', [port])]);
  try {
    const host = proxy.cm.get('ws')?.hosts()[0];
    assert.ok(host);
    const client = net.connect(proxy.port, '127.0.0.1');
    client.on('error', () => {});
    let got = '';
    client.on('data', (c: Buffer) => (got += c.toString('latin1')));
    client.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await eventually(() => got.startsWith('HTTP/1.1 101'));
    client.write('ping');
    await eventually(() => got.endsWith('ping'));
    assert.equal(host.activeRequests, 1, 'the tunnel is a request in flight');
    client.destroy();
    await eventually(() => upstream.size === 0);
    await eventually(() => host.activeRequests === 0);
  } finally {
    await proxy.close();
    for (const s of upstream) s.destroy();
    await new Promise<void>((r) => backend.close(() => r()));
  }
});

test('TCP connections (tcp_proxy, CONNECT) count as requests on the host until they close', async () => {
  const accepted: Socket[] = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats });
  await cm.update(proxyConfig([staticCluster('tcp', [port], { lbPolicy: 'LEAST_REQUEST' })]));
  try {
    const cluster = cm.get('tcp');
    const host = cluster?.choose({});
    assert.ok(cluster && host);
    const pending = cluster.connect(host);
    assert.equal(host.activeRequests, 1, 'counted from the connection attempt');
    const a = await pending;
    const b = await cluster.connect(host);
    assert.equal(host.activeRequests, 2);
    a.destroy();
    await eventually(() => host.activeRequests === 1);
    await eventually(() => accepted.length === 2);
    for (const s of accepted) s.destroy();
    await eventually(() => host.activeRequests === 0 && b.destroyed);
    // A failed attempt is not left counted.
    await new Promise<void>((r) => server.close(() => r()));
    await assert.rejects(cluster.connect(host));
    assert.equal(host.activeRequests, 0);
  } finally {
    cm.close();
    server.close();
  }
});

test('ORIGINAL_DST hosts live in the host set: one object per destination, swept when unused', async () => {
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats });
  const odst: Cluster = {
    name: 'PassthroughCluster',
    type: 'ORIGINAL_DST',
    lbPolicy: 'CLUSTER_PROVIDED',
    connectTimeout: '1s',
    cleanupInterval: '0.05s',
  };
  await cm.update(proxyConfig([odst]));
  try {
    const cluster = cm.get('PassthroughCluster');
    assert.ok(cluster);
    assert.equal(cluster.loadBalancer.policy, 'CLUSTER_PROVIDED');
    const a = cluster.choose({ originalDestination: { address: '10.1.2.3', port: 8080 } });
    const again = cluster.choose({ originalDestination: { address: '10.1.2.3', port: 8080 } });
    const v6 = cluster.choose({ originalDestination: { address: '::1', port: 80 } });
    assert.ok(a && v6);
    assert.equal(again, a);
    assert.equal(a.id, '10.1.2.3:8080');
    assert.equal(v6.id, '[::1]:80');
    assert.deepEqual(
      cluster.hosts().map((h) => h.id),
      ['10.1.2.3:8080', '[::1]:80'],
    );
    assert.equal(stats.get('cluster.PassthroughCluster.membership_total'), 2);
    assert.equal(cluster.choose({}), undefined, 'no original destination: no host');
    // A host with a request in flight survives the sweeps; unused ones go.
    a.activeRequests++;
    await eventually(() => cluster.hosts().length === 1);
    assert.equal(cluster.hosts()[0], a);
    a.activeRequests--;
    await eventually(() => cluster.hosts().length === 0);
    assert.equal(stats.get('cluster.PassthroughCluster.membership_total'), 0);
  } finally {
    cm.close();
  }
});

test('balancing settings that cannot be honoured reject the cluster (the old version stays)', async () => {
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats });
  const good = staticCluster('c', [1000], { lbPolicy: 'RING_HASH' });
  const bad = staticCluster('c', [1000], {
    lbPolicy: 'RING_HASH',
    ringHashLbConfig: { hashFunction: 'MURMUR_HASH_2' },
  });
  try {
    let r = await cm.update(proxyConfig([bad]));
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]?.name, 'c');
    assert.match(r.errors[0]?.message ?? '', /ring_hash_lb_config\.hash_function: MURMUR_HASH_2/);
    assert.equal(cm.get('c'), undefined, 'a new cluster that cannot be built is not added');

    r = await cm.update(proxyConfig([good]));
    assert.deepEqual(r.errors, []);
    const first = cm.get('c');
    assert.ok(first);
    assert.equal(first.loadBalancer.policy, 'RING_HASH');
    r = await cm.update(proxyConfig([bad]));
    assert.equal(r.errors.length, 1);
    assert.equal(cm.get('c'), first, 'the previous version stays in use');
    assert.equal(stats.get('cluster_manager.active_clusters'), 1);

    // Endpoints the host set cannot use are skipped and reported.
    await cm.update(proxyConfig([edsCluster('e')], [loadAssignment('e', [1001])]));
    r = await cm.update(
      proxyConfig([edsCluster('e')], [cla('e', [endpoint(1001), endpoint(1001), endpoint(1002)])]),
    );
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]?.message ?? '', /duplicate endpoint 127\.0\.0\.1:1001/);
    assert.deepEqual(
      cm
        .get('e')
        ?.hosts()
        .map((h) => h.port),
      [1001, 1002],
    );
  } finally {
    cm.close();
  }
  // The same problems are NACKed by xDS validation, with proto field names.
  assert.deepEqual(validateResource(TYPE_URL.Cluster, bad), [
    'ring_hash_lb_config.hash_function: MURMUR_HASH_2 is not supported (use XX_HASH)',
  ]);
  assert.deepEqual(
    validateResource(
      TYPE_URL.ClusterLoadAssignment,
      cla('e', [endpoint(1001), endpoint(1001), endpoint(1002)]),
    ),
    ['endpoints[0].lb_endpoints[1]: duplicate endpoint 127.0.0.1:1001'],
  );
  assert.deepEqual(
    validateResource(
      TYPE_URL.Cluster,
      staticCluster('d', [], {
        loadAssignment: cla('d', [endpoint(1), endpoint(1)]),
      }),
    ),
    ['load_assignment.endpoints[0].lb_endpoints[1]: duplicate endpoint 127.0.0.1:1'],
  );
});

test('durations: one proto3-JSON parser for every caller', () => {
  assert.equal(durationMs('1.5s'), 1500);
  assert.equal(durationMs('0s'), 0);
  assert.equal(durationMs('0.030s'), 30);
  assert.equal(durationMs('1.1s'), 1100, 'exact, not 1100.0000000000002');
  assert.equal(durationMs('0.000001s'), 0.001);
  assert.equal(durationMs('0.000000001s'), 0.000001);
  assert.equal(durationMs('3600s'), 3_600_000);
  assert.equal(durationMs('-1.5s'), -1500);
  assert.equal(Object.is(durationMs('-0s'), 0), true);
  for (const bad of ['', '1', '1.s', '.5s', '1.5', '1.0000000001s', '1m', ' 1s', '+1s'])
    assert.equal(durationMs(bad), undefined, bad);
  assert.equal(durationMs(undefined), undefined);
  assert.equal(isValidDuration('0.5s'), true);
  assert.equal(isValidDuration('-0.5s'), false);
  assert.equal(isValidDuration('5'), false);
});
