// Request mirroring: the host suffix and policy selection as units, and end to end over real
// sockets: the copy (body included) reaches the mirror cluster with `-shadow` appended to the
// host while the client sees only the primary's response; a failing or never-answering mirror
// does not affect the client; runtime_fraction 0 mirrors nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestMirrorPolicy } from '@trellis/envoy';
import { selectMirrors, shadowHost } from '../src/http/mirror.js';
import {
  echoJson,
  eventually,
  request,
  route,
  routeConfig,
  startH1Backend,
  staticCluster,
  vhost,
} from './http-fixtures.js';
import { deadPort, ManualClock, startTimedProxy } from './retry-fixtures.js';

test('shadowHost and selectMirrors', () => {
  assert.equal(shadowHost('reviews'), 'reviews-shadow');
  assert.equal(shadowHost('reviews:9080'), 'reviews-shadow:9080');
  assert.equal(shadowHost('[::1]:80'), '[::1]-shadow:80');
  const policies: RequestMirrorPolicy[] = [
    { cluster: 'a', runtimeFraction: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } } },
    {
      cluster: 'b',
      runtimeFraction: { defaultValue: { numerator: 255000, denominator: 'MILLION' } },
    },
    { cluster: 'c' },
    { clusterHeader: 'x-mirror-to' },
  ];
  const hdr = (n: string): string | undefined => (n === 'x-mirror-to' ? 'd' : undefined);
  assert.deepEqual(
    selectMirrors(policies, hdr, () => 0.25).map((m) => m.cluster),
    ['a', 'b', 'c', 'd'],
  );
  assert.deepEqual(
    selectMirrors(policies, hdr, () => 0.3).map((m) => m.cluster),
    ['a', 'c', 'd'],
    '25.5% misses at 0.3',
  );
  assert.deepEqual(
    selectMirrors(undefined, hdr, () => 0),
    [],
  );
});

test('end to end: the mirror gets a -shadow copy with the body; the client sees only v1', async () => {
  const v1 = await startH1Backend(echoJson('v1'));
  const v2 = await startH1Backend((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(500);
      res.end('mirror fails');
    });
  });
  const silent = await startH1Backend((req) => req.resume()); // never answers
  const dead = await deadPort();
  const clock = new ManualClock();
  const full = { defaultValue: { numerator: 100, denominator: 'HUNDRED' as const } };
  const proxy = await startTimedProxy({
    timers: clock,
    random: () => 0.5,
    clusters: [
      staticCluster('v1', [v1.port]),
      staticCluster('v2', [v2.port]),
      staticCluster('silent', [silent.port]),
      staticCluster('dead', [dead]),
    ],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/none' },
              {
                route: {
                  cluster: 'v1',
                  timeout: '0s',
                  requestMirrorPolicies: [
                    {
                      cluster: 'v2',
                      runtimeFraction: { defaultValue: { numerator: 0, denominator: 'HUNDRED' } },
                    },
                  ],
                },
              },
            ),
            route(
              { prefix: '/' },
              {
                route: {
                  cluster: 'v1',
                  timeout: '30s',
                  requestMirrorPolicies: [
                    { cluster: 'v2', runtimeFraction: full, traceSampled: false },
                    { cluster: 'silent', runtimeFraction: full },
                    { cluster: 'dead', runtimeFraction: full },
                  ],
                },
              },
            ),
          ],
        ),
      ]),
    ],
  });
  try {
    const r = await request(proxy.port, {
      method: 'POST',
      path: '/orders',
      headers: { host: 'httpbin:8000' },
      body: 'payload',
    });
    assert.equal(r.status, 200, 'the client never sees the mirrors');
    assert.equal((JSON.parse(r.body) as { backend: string }).backend, 'v1');
    await eventually(() => v2.requests.length === 1 && silent.requests.length === 1);
    const copy = v2.requests[0];
    assert.equal(copy?.headers.host, 'httpbin-shadow:8000');
    assert.equal(copy?.url, '/orders');
    await eventually(() => v2.requests[0]?.complete === true);
    assert.equal(v2.requests[0]?.body.toString(), 'payload');
    await eventually(() => proxy.shadows.length === 2);
    assert.deepEqual(
      proxy.shadows.map((s) => `${s.cluster} ${s.outcome.split(' ')[0] ?? ''}`).sort(),
      ['dead reset', 'v2 status'],
    );
    // The silent mirror ends with the route's timeout (on the manual clock).
    assert.ok(clock.pending().includes(30_000));
    clock.advance(30_000);
    await eventually(() => proxy.shadows.length === 3);
    assert.equal(proxy.shadows.find((s) => s.cluster === 'silent')?.outcome, 'timeout');

    const n = v2.requests.length;
    assert.equal((await request(proxy.port, { path: '/none' })).status, 200);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(v2.requests.length, n, '0% mirrors nothing');
  } finally {
    await proxy.close();
    for (const b of [v1, v2, silent]) await b.close();
  }
});
