// Retries and per-try timeouts end to end over real sockets, with a manual clock for every timer
// (back-off, per-try and route timeouts run only when the test advances time): a retry on a
// retriable status goes to another host (previous_hosts) with x-envoy-attempt-count; exhausted
// retries pass the last response with URX; connect failures are retried; the request body is
// replayed, or retries abandoned past the buffer limit; x-envoy-retry-on from an internal client;
// per-try timeout → retry, or 504 UT when none is left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RetryPolicy, VirtualHost } from '@trellis/envoy';
import {
  eventually,
  request,
  route,
  routeConfig,
  startH1Backend,
  staticCluster,
  vhost,
  type Backend,
  type H1Handler,
} from './http-fixtures.js';
import { deadPort, ManualClock, startTimedProxy, type TimedProxy } from './retry-fixtures.js';

const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts' }];

/** A backend answering `status` with its name in the body (after reading the request). */
function answering(name: string, status: number): H1Handler {
  return (req, res, seen) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'x-backend': name });
      res.end(`${name}:${seen.body.toString()}`);
    });
  };
}

async function withRetries(
  handlers: H1Handler[],
  retryPolicy: RetryPolicy | undefined,
  fn: (p: TimedProxy, backends: Backend[], clock: ManualClock) => Promise<void>,
  vh: Partial<VirtualHost> = {},
  extraPorts: number[] = [],
  timeout = '0s',
): Promise<void> {
  const backends = await Promise.all(handlers.map((h) => startH1Backend(h)));
  const clock = new ManualClock();
  const proxy = await startTimedProxy({
    timers: clock,
    random: () => 0,
    clusters: [staticCluster('svc', [...extraPorts, ...backends.map((b) => b.port)])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/' },
              { route: { cluster: 'svc', timeout, ...(retryPolicy ? { retryPolicy } : {}) } },
            ),
          ],
          vh,
        ),
      ]),
    ],
  });
  try {
    await fn(proxy, backends, clock);
  } finally {
    await proxy.close();
    for (const b of backends) await b.close();
  }
}

/** Runs the back-off timers as they appear until `done` resolves. */
async function driveBackoff<T>(clock: ManualClock, done: Promise<T>): Promise<T> {
  let settled = false;
  void done.finally(() => (settled = true));
  while (!settled) {
    clock.advance(0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return done;
}

test('503 is retried on another host (previous_hosts), with x-envoy-attempt-count both ways', async () => {
  const policy: RetryPolicy = {
    retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    numRetries: 2,
    retriableStatusCodes: [503],
    retryHostPredicate: PREVIOUS_HOSTS,
    hostSelectionRetryMaxAttempts: '5',
  };
  let hits = 0;
  const flaky: H1Handler = (req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.writeHead(hits === 1 ? 503 : 200);
      res.end(hits === 1 ? 'busy' : 'ok');
    });
  };
  await withRetries(
    [flaky, flaky],
    policy,
    async (proxy, backends, clock) => {
      const r = await driveBackoff(clock, request(proxy.port, { path: '/' }));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
      assert.equal(r.headers['x-envoy-attempt-count'], '2');
      const seen = backends.map((b) => b.requests.map((q) => q.headers['x-envoy-attempt-count']));
      assert.deepEqual(seen.flat().sort(), ['1', '2']);
      assert.ok(
        backends.every((b) => b.requests.length === 1),
        'the retry went to the other host',
      );
      const c = proxy.completed.at(-1);
      assert.equal(c?.info.attemptCount, 2);
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry'), 1);
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry_success'), 1);
      assert.equal(proxy.cm.get('svc')?.resources.retries, 0, 'retry resource given back');
    },
    { includeRequestAttemptCount: true, includeAttemptCountInResponse: true },
  );
});

test('previous_priorities (Istio retryRemoteLocalities): a retry moves to the next priority level', async () => {
  const local = await startH1Backend(answering('local', 503));
  const remote = await startH1Backend(answering('remote', 200));
  const endpoint = (port: number) => ({
    endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } },
  });
  const run = async (retryPolicy: RetryPolicy): Promise<{ status: number; body: string }> => {
    const clock = new ManualClock();
    const proxy = await startTimedProxy({
      timers: clock,
      random: () => 0,
      clusters: [
        staticCluster('svc', [], {
          loadAssignment: {
            clusterName: 'svc',
            endpoints: [
              { priority: 0, lbEndpoints: [endpoint(local.port)] },
              { priority: 1, lbEndpoints: [endpoint(remote.port)] },
            ],
          },
        }),
      ],
      routes: [
        routeConfig('routes', [
          vhost('all', ['*'], [route({ prefix: '/' }, { route: { cluster: 'svc', retryPolicy } })]),
        ]),
      ],
    });
    try {
      const r = await driveBackoff(clock, request(proxy.port, { path: '/' }));
      return { status: r.status, body: r.body };
    } finally {
      await proxy.close();
    }
  };
  try {
    const base: RetryPolicy = { retryOn: '5xx', numRetries: 2 };
    const stays = await run(base);
    assert.deepEqual(stays, { status: 503, body: 'local:' }, 'P0 takes all the load');
    assert.equal(local.requests.length, 3);
    assert.equal(remote.requests.length, 0);
    const moves = await run({
      ...base,
      retryPriority: {
        name: 'envoy.retry_priorities.previous_priorities',
        typedConfig: {
          '@type':
            'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
          updateFrequency: 1,
        } as never,
      },
    });
    assert.deepEqual(moves, { status: 200, body: 'remote:' });
    assert.equal(local.requests.length, 4, 'one attempt on P0, the retry on P1');
    assert.equal(remote.requests.length, 1);
  } finally {
    await local.close();
    await remote.close();
  }
});

test('exhausted retries: the last response goes through with URX; retries counted', async () => {
  await withRetries(
    [answering('a', 503), answering('b', 503)],
    { retryOn: '5xx', numRetries: 1 },
    async (proxy, backends, clock) => {
      const r = await driveBackoff(clock, request(proxy.port, { path: '/' }));
      assert.equal(r.status, 503);
      const c = proxy.completed.at(-1);
      assert.ok(c?.info.responseFlags.has('URX'));
      assert.equal(c?.info.responseCodeDetails, 'via_upstream');
      assert.equal(backends[0]!.requests.length + backends[1]!.requests.length, 2);
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry'), 1);
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry_limit_exceeded'), 1);
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry_success'), 0);
    },
  );
});

test('connect-failure is retried on a live host (previous_hosts)', async () => {
  const dead = await deadPort();
  await withRetries(
    [answering('live', 200)],
    { retryOn: 'connect-failure', numRetries: 3, retryHostPredicate: PREVIOUS_HOSTS },
    async (proxy, _b, clock) => {
      for (let i = 0; i < 2; i++) {
        const r = await driveBackoff(clock, request(proxy.port, { path: '/' }));
        assert.equal(r.status, 200, `request ${i}`);
      }
      assert.ok(proxy.stats.get('cluster.svc.upstream_rq_retry') >= 1, 'one of them was retried');
    },
    {},
    [dead],
  );
});

test('the request body is replayed on a retry; past the buffer limit retries are abandoned', async () => {
  let hits = 0;
  const flaky: H1Handler = (req, res, seen) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.writeHead(hits % 2 === 1 ? 503 : 200);
      res.end(`got:${seen.body.toString()}`);
    });
  };
  await withRetries(
    [flaky],
    { retryOn: '5xx', numRetries: 1 },
    async (proxy, backends, clock) => {
      const body = 'x'.repeat(2000);
      const r = await driveBackoff(clock, request(proxy.port, { method: 'POST', path: '/', body }));
      assert.equal(r.status, 200);
      assert.equal(r.body, `got:${body}`, 'the retry carried the whole body');
      assert.equal(backends[0]!.requests[1]?.body.toString(), body);

      const big = 'y'.repeat(5000);
      const r2 = await driveBackoff(
        clock,
        request(proxy.port, { method: 'POST', path: '/', body: big }),
      );
      assert.equal(r2.status, 503, 'not retried: the body did not fit the buffer');
      assert.equal(r2.body, `got:${big}`, 'the first attempt still got the whole body');
      assert.equal(proxy.stats.get('cluster.svc.retry_or_shadow_abandoned'), 1);
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry'), 1);
    },
    { perRequestBufferLimitBytes: 4096 } as Partial<VirtualHost>,
  );
});

test('x-envoy-retry-on and x-envoy-max-retries from an internal client, no route policy', async () => {
  await withRetries([answering('a', 502)], undefined, async (proxy, backends, clock) => {
    const r = await driveBackoff(
      clock,
      request(proxy.port, {
        path: '/',
        headers: { 'x-envoy-retry-on': 'gateway-error', 'x-envoy-max-retries': '2' },
      }),
    );
    assert.equal(r.status, 502);
    assert.equal(backends[0]!.requests.length, 3, 'one try and two retries');
    assert.equal(backends[0]!.requests[0]?.headers['x-envoy-retry-on'], undefined, 'consumed');
    assert.equal(backends[0]!.requests[0]?.headers['x-envoy-max-retries'], undefined);
    assert.equal((await request(proxy.port, { path: '/' })).status, 502);
    assert.equal(backends[0]!.requests.length, 4, 'no header, no policy: no retry');
  });
});

test('back-off waits on the clock: the retry is not sent before the jittered interval', async () => {
  const backends: Backend[] = [];
  const clock = new ManualClock();
  const b = await startH1Backend(answering('a', 503));
  backends.push(b);
  const proxy = await startTimedProxy({
    timers: clock,
    random: () => 0.5,
    clusters: [staticCluster('svc', [b.port])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/' },
              {
                route: {
                  cluster: 'svc',
                  timeout: '0s',
                  retryPolicy: {
                    retryOn: '5xx',
                    numRetries: 2,
                    retryBackOff: { baseInterval: '0.100s' },
                  },
                },
              },
            ),
          ],
        ),
      ]),
    ],
  });
  try {
    const pending = request(proxy.port, { path: '/' });
    await eventually(() => clock.pending().includes(50));
    assert.equal(b.requests.length, 1);
    clock.advance(49);
    assert.equal(b.requests.length, 1, 'still backing off');
    clock.advance(1);
    await eventually(() => clock.pending().includes(150), 3000);
    assert.equal(b.requests.length, 2, 'first retry after 0.5 × 100 ms');
    clock.advance(150);
    const r = await pending;
    assert.equal(r.status, 503);
    assert.equal(b.requests.length, 3, 'second retry after 0.5 × 300 ms');
  } finally {
    await proxy.close();
    await b.close();
  }
});

test('per-try timeout: the attempt is reset and retried; when none is left, 504 UT (and URX)', async () => {
  let mode: 'first-slow' | 'all-slow' = 'first-slow';
  let hits = 0;
  const handler: H1Handler = (req, res) => {
    req.resume();
    const n = ++hits;
    req.on('end', () => {
      if (mode === 'all-slow' || n === 1) return; // never answers
      res.end('second');
    });
  };
  await withRetries(
    [handler, handler],
    {
      retryOn: 'gateway-error,connect-failure,retriable-status-codes',
      numRetries: 1,
      perTryTimeout: '0.500s',
      retriableStatusCodes: [503],
      retryHostPredicate: PREVIOUS_HOSTS,
    },
    async (proxy, backends, clock) => {
      const pending = request(proxy.port, { path: '/' });
      await eventually(() => clock.pending().includes(500) && hits === 1);
      const first = backends.find((b) => b.requests.length === 1);
      assert.equal(first?.requests[0]?.headers['x-envoy-expected-rq-timeout-ms'], '500');
      clock.advance(500);
      const r = await driveBackoff(clock, pending);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'second');
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_per_try_timeout'), 1);

      mode = 'all-slow';
      const before = hits;
      const p2 = request(proxy.port, { path: '/' });
      await eventually(() => hits === before + 1 && clock.pending().includes(500));
      clock.advance(500); // first try times out; the retry waits a 0 ms back-off
      clock.advance(0);
      await eventually(() => hits === before + 2 && clock.pending().includes(500));
      clock.advance(500);
      const r2 = await p2;
      assert.equal(r2.status, 504);
      assert.equal(r2.body, 'upstream request timeout');
      const c = proxy.completed.at(-1);
      assert.ok(c?.info.responseFlags.has('UT'));
      assert.ok(c?.info.responseFlags.has('URX'));
      assert.equal(c?.info.responseCodeDetails, 'upstream_per_try_timeout');
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_per_try_timeout'), 3);
    },
    {},
    [],
    '1.500s',
  );
});

test('the route timeout covers every retry: 504 UT while backing off', async () => {
  await withRetries(
    [answering('a', 503)],
    { retryOn: '5xx', numRetries: 5, retryBackOff: { baseInterval: '1s' } },
    async (proxy, _b, clock) => {
      const pending = request(proxy.port, { path: '/' });
      await eventually(() => clock.pending().length === 2, 3000);
      assert.deepEqual(clock.pending(), [0, 200], 'back-off (random 0) and the route timeout');
      clock.advance(200);
      const r = await pending;
      assert.equal(r.status, 504);
      assert.ok(proxy.completed.at(-1)?.info.responseFlags.has('UT'));
      assert.equal(proxy.stats.get('cluster.svc.upstream_rq_timeout'), 1);
    },
    {},
    [],
    '0.200s',
  );
});
