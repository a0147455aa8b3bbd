// Circuit breaking (issue 6): the ResourceManager's thresholds, gauges and retry accounting, and
// the HTTP/1.1 and HTTP/2 pools refusing above max_connections / max_pending_requests /
// max_requests with 503 UO through a real proxy and real backends.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import type { Cluster } from '@trellis/envoy';
import { formatResponseFlags } from '../src/stream-info.js';
import { ResourceManager } from '../src/upstream/resource-manager.js';
import {
  FakeStats,
  eventually,
  http2Options,
  request,
  simpleRoutes,
  startH1Backend,
  startH2Backend,
  startProxy,
  staticCluster,
  type Response,
} from './http-fixtures.js';

const OVERFLOW_BODY =
  'upstream connect error or disconnect/reset before headers. reset reason: overflow';

function thresholds(t: NonNullable<Cluster['circuitBreakers']>['thresholds']): Partial<Cluster> {
  return { circuitBreakers: { thresholds: t ?? [] } };
}

/** An HTTP/1.1 backend whose responses wait until `release()`. */
async function gatedBackend(): Promise<{
  backend: Awaited<ReturnType<typeof startH1Backend>>;
  waiting: () => number;
  release: () => void;
}> {
  const held: http.ServerResponse[] = [];
  let open = false;
  const backend = await startH1Backend((req, res) => {
    req.resume();
    req.on('end', () => {
      if (open) res.end('ok');
      else held.push(res);
    });
  });
  return {
    backend,
    waiting: () => held.length,
    release: () => {
      open = true;
      for (const r of held.splice(0)) r.end('ok');
    },
  };
}

test('ResourceManager: Envoy defaults, DEFAULT-priority thresholds, open and remaining gauges', () => {
  const d = new ResourceManager();
  assert.deepEqual(
    [d.maxConnections, d.maxPendingRequests, d.maxRequests, d.maxRetries],
    [1024, 1024, 1024, 3],
  );
  const stats = new FakeStats('cluster.c');
  const rm = new ResourceManager(
    {
      name: 'c',
      circuitBreakers: {
        thresholds: [
          { priority: 'HIGH', maxConnections: 99 },
          { maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, trackRemaining: true },
        ],
      },
    },
    stats,
  );
  assert.equal(rm.maxConnections, 2);
  assert.equal(rm.maxRetries, 3);
  const v = (n: string): number | undefined => stats.values.get(`cluster.c.${n}`)?.value;
  assert.equal(v('circuit_breakers.default.cx_open'), 0);
  assert.equal(v('circuit_breakers.default.remaining_cx'), 2);
  rm.connections++;
  assert.equal(rm.canCreateConnection(), true);
  rm.connections++;
  assert.equal(rm.canCreateConnection(), false);
  assert.equal(v('circuit_breakers.default.cx_open'), 1);
  assert.equal(v('circuit_breakers.default.remaining_cx'), 0);
  rm.pendingRequests++;
  assert.equal(rm.canQueueRequest(), false);
  assert.equal(v('circuit_breakers.default.rq_pending_open'), 1);
  rm.pendingRequests--;
  assert.equal(v('circuit_breakers.default.rq_pending_open'), 0);
  rm.connections--;
  assert.equal(v('circuit_breakers.default.cx_open'), 0);
  assert.equal(v('circuit_breakers.default.remaining_rq'), 3);
});

test('ResourceManager: tryRetry/releaseRetry honour max_retries and count upstream_rq_retry_overflow', () => {
  const stats = new FakeStats('cluster.c');
  const rm = new ResourceManager(
    { name: 'c', circuitBreakers: { thresholds: [{ maxRetries: 2 }] } },
    stats,
  );
  assert.equal(rm.tryRetry(), true);
  assert.equal(rm.tryRetry(), true);
  assert.equal(stats.values.get('cluster.c.circuit_breakers.default.rq_retry_open')?.value, 1);
  assert.equal(rm.tryRetry(), false);
  assert.equal(stats.values.get('cluster.c.upstream_rq_retry_overflow')?.value, 1);
  rm.releaseRetry();
  assert.equal(rm.retries, 1);
  assert.equal(rm.tryRetry(), true);
  rm.releaseRetry();
  rm.releaseRetry();
  rm.releaseRetry();
  assert.equal(rm.retries, 0, 'never below zero');
});

test('ResourceManager: a retry_budget allows max(budget% of active requests, min_retry_concurrency)', () => {
  const rm = new ResourceManager({
    name: 'c',
    circuitBreakers: {
      thresholds: [
        { maxRetries: 1, retryBudget: { budgetPercent: { value: 25 }, minRetryConcurrency: 2 } },
      ],
    },
  });
  assert.equal(
    rm.maxRetries,
    2,
    'the minimum concurrency with nothing active (max_retries ignored)',
  );
  rm.requests = 12;
  rm.pendingRequests = 4;
  assert.equal(rm.maxRetries, 4, '25% of 16 active requests');
  const defaults = new ResourceManager({
    name: 'd',
    circuitBreakers: { thresholds: [{ retryBudget: {} }] },
  });
  assert.equal(defaults.maxRetries, 3, "Envoy's default min_retry_concurrency");
  defaults.requests = 100;
  assert.equal(defaults.maxRetries, 20, "Envoy's default budget of 20%");
});

test('HTTP/1.1: max_connections 1 + max_pending_requests 1: the third concurrent request gets 503 UO', async () => {
  const g = await gatedBackend();
  const proxy = await startProxy({
    clusters: [
      staticCluster(
        'c1',
        [g.backend.port],
        thresholds([{ maxConnections: 1, maxPendingRequests: 1, maxRequests: 100 }]),
      ),
    ],
    routes: [simpleRoutes('c1')],
  });
  try {
    const first = request(proxy.port, { path: '/1' });
    await eventually(() => g.waiting() === 1);
    const second = request(proxy.port, { path: '/2' });
    const stat = (n: string): number | undefined =>
      proxy.stats.values.get(`cluster.c1.${n}`)?.value;
    await eventually(() => stat('upstream_rq_pending_active') === 1);
    assert.equal(stat('upstream_cx_overflow'), 1, 'the second request could not open a connection');
    assert.equal(stat('circuit_breakers.default.cx_open'), 1);
    assert.equal(stat('circuit_breakers.default.rq_pending_open'), 1);
    const completed = proxy.nextCompleted();
    const third: Response = await request(proxy.port, { path: '/3' });
    assert.equal(third.status, 503);
    assert.equal(third.body, OVERFLOW_BODY);
    const info = (await completed).info;
    assert.equal(formatResponseFlags(info.responseFlags), 'UO');
    assert.equal(info.responseCodeDetails, 'upstream_reset_before_response_started{overflow}');
    assert.equal(stat('upstream_rq_pending_overflow'), 1);
    g.release();
    const [r1, r2] = await Promise.all([first, second]);
    assert.equal(r1.status, 200);
    assert.equal(r2.status, 200, 'the pending request ran on the freed connection');
    assert.equal(g.backend.connections(), 1);
    assert.equal(g.backend.requests.length, 2);
    await eventually(() => stat('circuit_breakers.default.rq_pending_open') === 0);
    assert.equal(stat('upstream_rq_pending_active'), 0);
  } finally {
    await proxy.close();
    await g.backend.close();
  }
});

test('HTTP/1.1: a pending request whose client goes away leaves the queue', async () => {
  const g = await gatedBackend();
  const proxy = await startProxy({
    clusters: [staticCluster('c1', [g.backend.port], thresholds([{ maxConnections: 1 }]))],
    routes: [simpleRoutes('c1')],
  });
  const stat = (n: string): number | undefined => proxy.stats.values.get(`cluster.c1.${n}`)?.value;
  try {
    const first = request(proxy.port, { path: '/1' });
    await eventually(() => g.waiting() === 1);
    const { default: httpMod } = await import('node:http');
    const req = httpMod.request({
      host: '127.0.0.1',
      port: proxy.port,
      path: '/gone',
      agent: false,
    });
    req.on('error', () => {});
    req.end();
    await eventually(() => stat('upstream_rq_pending_active') === 1);
    req.destroy();
    await eventually(() => stat('upstream_rq_pending_active') === 0);
    g.release();
    assert.equal((await first).status, 200);
    assert.equal((await request(proxy.port, { path: '/after' })).status, 200);
    assert.deepEqual(
      g.backend.requests.map((r) => r.url),
      ['/1', '/after'],
      'the abandoned request never went upstream',
    );
  } finally {
    await proxy.close();
    await g.backend.close();
  }
});

test('HTTP/1.1: a pool without connections opens one even when the cluster is at max_connections', async () => {
  const a = await gatedBackend();
  const b = await gatedBackend();
  const proxy = await startProxy({
    clusters: [
      staticCluster('c1', [a.backend.port, b.backend.port], thresholds([{ maxConnections: 1 }])),
    ],
    routes: [simpleRoutes('c1')],
  });
  const stat = (n: string): number | undefined => proxy.stats.values.get(`cluster.c1.${n}`)?.value;
  try {
    // Round robin: one request to each host.
    const r1 = request(proxy.port, { path: '/1' });
    await eventually(() => a.waiting() + b.waiting() === 1);
    const r2 = request(proxy.port, { path: '/2' });
    await eventually(() => a.waiting() === 1 && b.waiting() === 1);
    assert.equal(stat('upstream_cx_overflow'), 1, 'counted, as Envoy does, though it connects');
    a.release();
    b.release();
    assert.deepEqual([(await r1).status, (await r2).status], [200, 200]);
  } finally {
    await proxy.close();
    await a.backend.close();
    await b.backend.close();
  }
});

test('HTTP/1.1: max_requests_per_connection 1 uses a new connection per request', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [
      staticCluster('c1', [backend.port], {
        typedExtensionProtocolOptions: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            commonHttpProtocolOptions: { maxRequestsPerConnection: 1 },
            explicitHttpConfig: { httpProtocolOptions: {} },
          },
        } as NonNullable<Cluster['typedExtensionProtocolOptions']>,
      }),
    ],
    routes: [simpleRoutes('c1')],
  });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await request(proxy.port)).status, 200);
    assert.equal(backend.connections(), 3);
    assert.equal(proxy.stats.values.get('cluster.c1.upstream_cx_max_requests')?.value, 3);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('HTTP/2: max_requests 1 refuses the second concurrent stream with 503 UO', async () => {
  const held: (() => void)[] = [];
  const backend = await startH2Backend((stream) => {
    held.push(() => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  });
  const proxy = await startProxy({
    clusters: [
      staticCluster('c1', [backend.port], {
        typedExtensionProtocolOptions: http2Options(),
        ...thresholds([{ maxRequests: 1 }]),
      }),
    ],
    routes: [simpleRoutes('c1')],
  });
  const stat = (n: string): number | undefined => proxy.stats.values.get(`cluster.c1.${n}`)?.value;
  try {
    const first = request(proxy.port, { path: '/1' });
    await eventually(() => held.length === 1);
    assert.equal(stat('circuit_breakers.default.rq_open'), 1);
    const second = await request(proxy.port, { path: '/2' });
    assert.equal(second.status, 503);
    assert.equal(second.body, OVERFLOW_BODY);
    assert.equal(stat('upstream_rq_pending_overflow'), 1);
    held.shift()?.();
    assert.equal((await first).status, 200);
    await eventually(() => stat('circuit_breakers.default.rq_open') === 0);
    const third = request(proxy.port, { path: '/3' });
    await eventually(() => held.length === 1);
    held.shift()?.();
    assert.equal((await third).status, 200);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('HTTP/2: max_pending_requests 1 with one connection busy at its stream limit', async () => {
  const held: (() => void)[] = [];
  const backend = await startH2Backend(
    (stream) => {
      held.push(() => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    },
    { maxConcurrentStreams: 1 },
  );
  const proxy = await startProxy({
    clusters: [
      staticCluster('c1', [backend.port], {
        typedExtensionProtocolOptions: http2Options(),
        ...thresholds([{ maxConnections: 1, maxPendingRequests: 1 }]),
      }),
    ],
    routes: [simpleRoutes('c1')],
  });
  const stat = (n: string): number | undefined => proxy.stats.values.get(`cluster.c1.${n}`)?.value;
  try {
    const first = request(proxy.port, { path: '/1' });
    await eventually(() => held.length === 1);
    const second = request(proxy.port, { path: '/2' });
    await eventually(() => stat('upstream_rq_pending_active') === 1);
    const third = await request(proxy.port, { path: '/3' });
    assert.equal(third.status, 503);
    assert.equal(stat('upstream_rq_pending_overflow'), 1);
    held.shift()?.();
    assert.equal((await first).status, 200);
    await eventually(() => held.length === 1);
    held.shift()?.();
    assert.equal((await second).status, 200);
    assert.equal(backend.sessions(), 1, 'max_connections kept it on one connection');
  } finally {
    await proxy.close();
    await backend.close();
  }
});
