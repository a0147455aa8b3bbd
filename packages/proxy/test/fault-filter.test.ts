// The fault injection filter: its decisions as units (percentages with an injected random,
// headers, upstream_cluster, max_active_faults, per-route configs) and end to end over real
// sockets with a manual clock (the delay runs only when the test advances time): delay then
// continue (DI), abort (FI) with an HTTP or gRPC status, header-matched routes, no filter in
// the chain → per-route faults ignored.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HTTPFault, Route } from '@trellis/envoy';
import {
  decideFault,
  FaultFilterConfig,
  faultFilterConfig,
  fractionOf,
} from '../src/http/fault.js';
import {
  eventually,
  FakeStats,
  hcmConfig,
  request,
  route,
  routeConfig,
  startH1Backend,
  staticCluster,
  vhost,
} from './http-fixtures.js';
import { hcmWithFault, ManualClock, startTimedProxy } from './retry-fixtures.js';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

function filter(base: HTTPFault = {}): { f: FaultFilterConfig; stats: FakeStats } {
  const stats = new FakeStats('http.p');
  return {
    f: new FaultFilterConfig('envoy.filters.http.fault', base, stats.scope('fault')),
    stats,
  };
}

test('fractions and decisions: percentages, headers, upstream_cluster, max_active_faults', () => {
  assert.equal(fractionOf({ numerator: 125000, denominator: 'MILLION' }), 0.125);
  assert.equal(fractionOf({ numerator: 30 }), 0.3, 'HUNDRED by default');
  assert.equal(fractionOf(undefined), 0);
  const { f, stats } = filter();
  const both: HTTPFault = {
    delay: { fixedDelay: '1s', percentage: { numerator: 100, denominator: 'HUNDRED' } },
    abort: { httpStatus: 503, percentage: { numerator: 500000, denominator: 'MILLION' } },
  };
  const draws = [0.1, 0.4];
  const d = decideFault(f, both, {}, 'c', () => draws.shift() ?? 1);
  assert.deepEqual(d, { delayMs: 1000, abort: { http: 503, grpc: undefined } });
  assert.equal(f.active, 1);
  f.release();
  assert.equal(decideFault(f, both, {}, 'c', () => 0.6)?.abort, undefined, '0.6 ≥ 50%');
  f.release();
  assert.equal(
    decideFault(f, { abort: { httpStatus: 503 } }, {}, 'c', () => 0),
    undefined,
    'no percentage = 0%',
  );
  const grpc = decideFault(
    f,
    { abort: { grpcStatus: 14, percentage: { numerator: 100 } } },
    {},
    'c',
    () => 0,
  );
  assert.deepEqual(grpc?.abort, { http: 200, grpc: 14 });
  f.release();
  const gated: HTTPFault = {
    abort: { httpStatus: 500, percentage: { numerator: 100 } },
    headers: [{ name: 'end-user', stringMatch: { exact: 'jason' } }],
    upstreamCluster: 'ratings',
  };
  assert.equal(
    decideFault(f, gated, { 'end-user': 'bob' }, 'ratings', () => 0),
    undefined,
  );
  assert.equal(
    decideFault(f, gated, { 'end-user': 'jason' }, 'other', () => 0),
    undefined,
  );
  assert.ok(decideFault(f, gated, { 'end-user': 'jason' }, 'ratings', () => 0));
  f.release();
  const limited: HTTPFault = { ...both, maxActiveFaults: 1 };
  assert.ok(decideFault(f, limited, {}, 'c', () => 0));
  assert.equal(
    decideFault(f, limited, {}, 'c', () => 0),
    undefined,
    'one active already',
  );
  assert.equal(stats.get('http.p.fault.faults_overflow'), 1);
  assert.equal(stats.get('http.p.fault.active_faults'), 1);
  // Per-route config: the most specific level wins, else the filter's own.
  const perRoute = { 'envoy.filters.http.fault': both };
  assert.equal(f.effective([undefined, perRoute]), both);
  assert.deepEqual(f.effective([undefined, undefined]), {});
  assert.equal(faultFilterConfig(hcmConfig().httpFilters, stats), undefined, 'not in the chain');
  assert.ok(faultFilterConfig(hcmWithFault().httpFilters, stats));
});

function faultRoute(prefix: string, fault: HTTPFault, extra: Partial<Route> = {}): Route {
  return route(
    { prefix, ...(extra.match ?? {}) },
    {
      route: { cluster: 'svc', timeout: '0s' },
      typedPerFilterConfig: { 'envoy.filters.http.fault': { '@type': TYPE, ...fault } },
    },
  );
}

test('end to end: delay (manual clock) then the upstream; abort with HTTP and gRPC statuses', async () => {
  const backend = await startH1Backend((req, res) => {
    req.resume();
    req.on('end', () => res.end('upstream'));
  });
  const clock = new ManualClock();
  const proxy = await startTimedProxy({
    hcm: hcmWithFault(),
    timers: clock,
    random: () => 0,
    clusters: [staticCluster('svc', [backend.port])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            faultRoute(
              '/ratings',
              {
                delay: { fixedDelay: '7s', percentage: { numerator: 100, denominator: 'HUNDRED' } },
              },
              { match: { headers: [{ name: 'end-user', stringMatch: { exact: 'jason' } }] } },
            ),
            faultRoute('/abort', {
              abort: { httpStatus: 500, percentage: { numerator: 100 } },
            }),
            faultRoute('/grpc-abort', {
              abort: { grpcStatus: 14, percentage: { numerator: 1000000, denominator: 'MILLION' } },
            }),
            route({ prefix: '/' }, { route: { cluster: 'svc', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  try {
    const delayed = request(proxy.port, { path: '/ratings', headers: { 'end-user': 'jason' } });
    await eventually(() => clock.pending().includes(7000));
    assert.equal(backend.requests.length, 0, 'held by the delay');
    clock.advance(6999);
    assert.equal(backend.requests.length, 0);
    clock.advance(1);
    const r = await delayed;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'upstream');
    assert.ok(proxy.completed.at(-1)?.info.responseFlags.has('DI'));
    assert.equal(proxy.stats.get('http.test.fault.delays_injected'), 1);

    const other = await request(proxy.port, { path: '/ratings', headers: { 'end-user': 'bob' } });
    assert.equal(other.status, 200, 'another user: the catch-all route, no fault');
    assert.equal(proxy.stats.get('http.test.fault.delays_injected'), 1);

    const a = await request(proxy.port, { path: '/abort' });
    assert.equal(a.status, 500);
    assert.equal(a.body, 'fault filter abort');
    const ca = proxy.completed.at(-1);
    assert.ok(ca?.info.responseFlags.has('FI'));
    assert.equal(ca?.info.responseCodeDetails, 'fault_filter_abort');
    assert.equal(proxy.stats.get('http.test.fault.aborts_injected'), 1);

    const g = await request(proxy.port, {
      path: '/grpc-abort',
      headers: { 'content-type': 'application/grpc' },
    });
    assert.equal(g.status, 200);
    assert.equal(g.headers['grpc-status'], '14');
    assert.equal(g.headers['grpc-message'], 'fault filter abort');
    assert.equal(backend.requests.length, 2, 'aborted requests never went upstream');
    assert.equal(proxy.stats.get('http.test.fault.active_faults'), 0);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('end to end: without the fault filter in the chain, per-route faults are ignored', async () => {
  const backend = await startH1Backend((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const proxy = await startTimedProxy({
    random: () => 0,
    clusters: [staticCluster('svc', [backend.port])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [faultRoute('/', { abort: { httpStatus: 503, percentage: { numerator: 100 } } })],
        ),
      ]),
    ],
  });
  try {
    assert.equal((await request(proxy.port, { path: '/' })).status, 200);
  } finally {
    await proxy.close();
    await backend.close();
  }
});
