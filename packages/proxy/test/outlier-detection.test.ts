// Outlier detection (issue 6): consecutive 5xx / gateway / local-origin ejections, the ejection
// time growing with each ejection (capped by max_ejection_time) and shrinking while healthy,
// max_ejection_percent, enforcing percentages, success-rate and failure-percentage detection,
// ejected hosts leaving the balancer (panic threshold, UH), state kept across cluster updates —
// on an injected clock — and a real proxy routing away from a failing backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualTimers } from '@trellis/core';
import type { Cluster, OutlierDetection } from '@trellis/envoy';
import { ClusterImpl } from '../src/upstream/cluster.js';
import { seededRandom } from '../src/upstream/lb/random.js';
import type { LbHost } from '../src/upstream/lb/types.js';
import {
  FakeStats,
  request,
  simpleRoutes,
  startH1Backend,
  startProxy,
  staticCluster,
} from './http-fixtures.js';

const PORTS = [10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008, 10009, 10010];

function cluster(
  od: OutlierDetection,
  hosts = 4,
  extra: Partial<Cluster> = {},
): { c: ClusterImpl; timers: ManualTimers; stats: FakeStats; hosts: readonly LbHost[] } {
  const timers = new ManualTimers();
  const stats = new FakeStats();
  const c = new ClusterImpl(
    staticCluster('od', PORTS.slice(0, hosts), { outlierDetection: od, ...extra }),
    { stats, timers, random: seededRandom(7) },
  );
  return { c, timers, stats, hosts: c.hosts() };
}

function stat(stats: FakeStats, name: string): number | undefined {
  return stats.values.get(`cluster.od.outlier_detection.${name}`)?.value;
}

function fail(c: ClusterImpl, h: LbHost, n: number, code = 503): void {
  const m = c.outlierSink(h);
  assert.ok(m);
  for (let i = 0; i < n; i++) m.putHttpResponseCode(code);
}

/** Hosts the balancer picks over many choices. */
function chosen(c: ClusterImpl): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const h = c.choose({});
    if (h) out.add(h.id);
  }
  return out;
}

test('consecutive_5xx ejects the host for base_ejection_time; it leaves the balancer', () => {
  const { c, timers, stats, hosts } = cluster({
    consecutive5xx: 3,
    interval: '10s',
    baseEjectionTime: '30s',
    maxEjectionPercent: 100,
  });
  const h = hosts[0];
  assert.ok(h);
  fail(c, h, 2);
  c.outlierSink(h)?.putHttpResponseCode(200);
  fail(c, h, 2);
  assert.equal(h.ejected ?? false, false, 'a success resets the count');
  fail(c, h, 1);
  assert.equal(h.ejected, true);
  assert.equal(h.healthy, false);
  assert.equal(stat(stats, 'ejections_active'), 1);
  assert.equal(stat(stats, 'ejections_detected_consecutive_5xx'), 1);
  assert.equal(stat(stats, 'ejections_enforced_consecutive_5xx'), 1);
  assert.equal(stat(stats, 'ejections_enforced_total'), 1);
  assert.equal(stats.values.get('cluster.od.membership_healthy')?.value, 3);
  assert.ok(!chosen(c).has(h.id));
  timers.advance(20_000);
  assert.equal(h.ejected, true, 'still ejected after 20s');
  timers.advance(10_000);
  assert.equal(h.ejected, false, 'back at the interval check after 30s');
  assert.equal(stat(stats, 'ejections_active'), 0);
  assert.ok(chosen(c).has(h.id));
  c.close();
});

test('the ejection time grows with each ejection, is capped by max_ejection_time, and shrinks while healthy', () => {
  const { c, timers, hosts } = cluster({
    consecutive5xx: 1,
    interval: '10s',
    baseEjectionTime: '10s',
    maxEjectionTime: '25s',
    maxEjectionPercent: 100,
  });
  const h = hosts[0];
  assert.ok(h);
  const ejectedFor = (): number => {
    fail(c, h, 1);
    assert.equal(h.ejected, true);
    let waited = 0;
    while (h.ejected === true) {
      timers.advance(10_000);
      waited += 10_000;
    }
    return waited;
  };
  // Ejected right after an interval check: un-ejected at the first check the time has passed.
  assert.equal(ejectedFor(), 10_000, '1 × base');
  assert.equal(ejectedFor(), 20_000, '2 × base');
  assert.equal(ejectedFor(), 30_000, 'capped at max_ejection_time (25s), seen at the next check');
  const m = c.outlierDetector?.monitor(h);
  assert.ok(m);
  const backoff = m.ejectTimeBackoff;
  timers.advance(20_000);
  assert.equal(m.ejectTimeBackoff, backoff - 2, 'one step less per healthy interval');
  assert.equal(m.numEjections, 3);
  c.close();
});

test('max_ejection_percent limits ejections (one host is always allowed) and counts the overflow', () => {
  const { c, stats, hosts } = cluster({ consecutive5xx: 1, maxEjectionPercent: 10 }, 4);
  const [a, b] = hosts;
  assert.ok(a && b);
  fail(c, a, 1);
  assert.equal(a.ejected, true, '25% > 10%, but the first host may go');
  fail(c, b, 1);
  assert.equal(b.ejected ?? false, false);
  assert.equal(stat(stats, 'ejections_overflow'), 1);
  assert.equal(stat(stats, 'ejections_active'), 1);
  c.close();
});

test('consecutive gateway failures: detected always, enforced per enforcing_consecutive_gateway_failure', () => {
  const off = cluster({
    consecutive5xx: 100,
    consecutiveGatewayFailure: 2,
    maxEjectionPercent: 100,
  });
  const h = off.hosts[0];
  assert.ok(h);
  fail(off.c, h, 2, 502);
  assert.equal(h.ejected ?? false, false, "Envoy's default enforcing is 0%");
  assert.equal(stat(off.stats, 'ejections_detected_consecutive_gateway_failure'), 1);
  off.c.close();

  const on = cluster({
    consecutive5xx: 100,
    consecutiveGatewayFailure: 2,
    enforcingConsecutiveGatewayFailure: 100,
    maxEjectionPercent: 100,
  });
  const g = on.hosts[0];
  assert.ok(g);
  fail(on.c, g, 1, 504);
  fail(on.c, g, 1, 500);
  fail(on.c, g, 1, 503);
  assert.equal(g.ejected ?? false, false, 'a non-gateway 5xx resets the gateway count');
  fail(on.c, g, 1, 502);
  assert.equal(g.ejected, true);
  assert.equal(stat(on.stats, 'ejections_enforced_consecutive_gateway_failure'), 1);
  on.c.close();
});

test('enforcing_consecutive_5xx 0 detects without ejecting', () => {
  const { c, stats, hosts } = cluster({
    consecutive5xx: 2,
    enforcingConsecutive5xx: 0,
    maxEjectionPercent: 100,
  });
  const h = hosts[0];
  assert.ok(h);
  fail(c, h, 2);
  assert.equal(h.ejected ?? false, false);
  assert.equal(stat(stats, 'ejections_detected_consecutive_5xx'), 1);
  assert.equal(stat(stats, 'ejections_enforced_total'), 0);
  c.close();
});

test('local-origin failures: split → consecutive_local_origin_failure; not split → they count as 503s', () => {
  const split = cluster({
    consecutive5xx: 0,
    enforcingConsecutive5xx: 0,
    consecutiveLocalOriginFailure: 3,
    enforcingConsecutiveLocalOriginFailure: 100,
    splitExternalLocalOriginErrors: true,
    maxEjectionPercent: 100,
  });
  const h = split.hosts[0];
  assert.ok(h);
  const m = split.c.outlierSink(h);
  assert.ok(m);
  m.putResult('LOCAL_ORIGIN_CONNECT_FAILED');
  m.putResult('LOCAL_ORIGIN_TIMEOUT');
  m.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS');
  m.putResult('LOCAL_ORIGIN_CONNECT_FAILED');
  m.putResult('LOCAL_ORIGIN_CONNECT_FAILED');
  m.putHttpResponseCode(503);
  assert.equal(h.ejected ?? false, false, 'a connect success resets the local-origin count');
  m.putResult('LOCAL_ORIGIN_CONNECT_FAILED');
  assert.equal(h.ejected, true);
  assert.equal(stat(split.stats, 'ejections_enforced_consecutive_local_origin_failure'), 1);
  split.c.close();

  const joined = cluster({ consecutive5xx: 3, maxEjectionPercent: 100 });
  const j = joined.hosts[0];
  assert.ok(j);
  const jm = joined.c.outlierSink(j);
  assert.ok(jm);
  jm.putResult('LOCAL_ORIGIN_CONNECT_FAILED');
  jm.putResult('LOCAL_ORIGIN_CONNECT_SUCCESS');
  jm.putResult('LOCAL_ORIGIN_TIMEOUT');
  jm.putHttpResponseCode(500);
  assert.equal(j.ejected, true, 'two local failures and a 500 are three consecutive 5xx');
  joined.c.close();
});

test('success rate: a host far below the mean of the last interval is ejected', () => {
  const { c, timers, stats, hosts } = cluster(
    {
      interval: '10s',
      consecutive5xx: 1000,
      maxEjectionPercent: 100,
      successRateRequestVolume: 10,
    },
    5,
  );
  hosts.forEach((h, i) => {
    const m = c.outlierSink(h);
    assert.ok(m);
    for (let k = 0; k < 20; k++) m.putHttpResponseCode(i === 0 && k % 2 === 0 ? 500 : 200);
  });
  assert.equal(hosts[0]?.ejected ?? false, false, 'success rate is judged at the interval');
  timers.advance(10_000);
  // The interval closes the bucket; the next one judges it.
  timers.advance(10_000);
  assert.equal(hosts[0]?.ejected, true, '50% against a mean of 90% (stdev 20%, factor 1.9)');
  assert.ok(hosts.slice(1).every((h) => h.ejected !== true));
  assert.equal(stat(stats, 'ejections_enforced_success_rate'), 1);
  c.close();
});

test('success rate needs success_rate_minimum_hosts hosts with enough volume', () => {
  const { c, timers, hosts } = cluster(
    {
      interval: '10s',
      consecutive5xx: 1000,
      maxEjectionPercent: 100,
      successRateRequestVolume: 10,
    },
    5,
  );
  hosts.forEach((h, i) => {
    const m = c.outlierSink(h);
    assert.ok(m);
    const n = i < 4 ? 20 : 5; // the fifth host is below the request volume
    for (let k = 0; k < n; k++) m.putHttpResponseCode(i === 0 && k % 2 === 0 ? 500 : 200);
  });
  timers.advance(20_000);
  assert.ok(hosts.every((h) => h.ejected !== true));
  c.close();
});

test('failure percentage ejects hosts at or above the threshold when enforced', () => {
  const { c, timers, stats, hosts } = cluster(
    {
      interval: '10s',
      consecutive5xx: 1000,
      enforcingSuccessRate: 0,
      enforcingFailurePercentage: 100,
      failurePercentageThreshold: 50,
      failurePercentageMinimumHosts: 3,
      failurePercentageRequestVolume: 10,
      maxEjectionPercent: 100,
    },
    3,
  );
  hosts.forEach((h, i) => {
    const m = c.outlierSink(h);
    assert.ok(m);
    for (let k = 0; k < 10; k++) m.putHttpResponseCode(i === 2 && k < 6 ? 503 : 200);
  });
  timers.advance(20_000);
  assert.equal(hosts[2]?.ejected, true);
  assert.equal(stat(stats, 'ejections_enforced_failure_percentage'), 1);
  assert.equal(stat(stats, 'ejections_enforced_success_rate'), 0);
  c.close();
});

test('every host ejected: panic (default 50%) still balances; healthy_panic_threshold 0 → UH', () => {
  const panic = cluster({ consecutive5xx: 1, maxEjectionPercent: 100 }, 2);
  for (const h of panic.hosts) fail(panic.c, h, 1);
  assert.ok(panic.hosts.every((h) => h.ejected === true));
  assert.equal(chosen(panic.c).size, 2, 'panic mode uses every host');
  assert.ok((panic.stats.values.get('cluster.od.lb_healthy_panic')?.value ?? 0) > 0);
  panic.c.close();

  const strict = cluster({ consecutive5xx: 1, maxEjectionPercent: 100 }, 2, {
    commonLbConfig: { healthyPanicThreshold: { value: 0 } },
  });
  const [a, b] = strict.hosts;
  assert.ok(a && b);
  fail(strict.c, a, 1);
  assert.deepEqual([...chosen(strict.c)], [b.id]);
  fail(strict.c, b, 1);
  assert.equal(strict.c.choose({}), undefined, 'no healthy upstream');
  assert.equal(strict.stats.values.get('cluster.od.upstream_cx_none_healthy')?.value, 1);
  strict.c.close();
});

test('a changed cluster keeps its ejections; dropping outlier_detection lifts them', () => {
  const { c, timers, stats, hosts } = cluster({
    consecutive5xx: 1,
    baseEjectionTime: '30s',
    interval: '10s',
    maxEjectionPercent: 100,
  });
  const h = hosts[0];
  assert.ok(h);
  fail(c, h, 1);
  c.drain();
  const next = new ClusterImpl(
    staticCluster('od', PORTS.slice(0, 4), {
      outlierDetection: { consecutive5xx: 1, baseEjectionTime: '30s', interval: '10s' },
      connectTimeout: '2s',
    }),
    {
      stats,
      timers,
      random: seededRandom(1),
      hostSet: c.hostSet,
      outlierDetector: c.outlierDetector,
    },
  );
  assert.equal(h.ejected, true);
  assert.equal(stat(stats, 'ejections_active'), 1);
  timers.advance(30_000);
  assert.equal(h.ejected, false, 'the new detector un-ejects it on time');
  fail(next, h, 1);
  assert.equal(h.ejected, true);
  next.drain();
  const plain = new ClusterImpl(staticCluster('od', PORTS.slice(0, 4)), {
    stats,
    timers,
    hostSet: next.hostSet,
    outlierDetector: next.outlierDetector,
  });
  assert.equal(h.ejected, false);
  assert.equal(plain.outlierDetector, undefined);
  assert.equal(timers.pending, 0, 'no detector timer is left running');
  plain.close();
});

test('real sockets: a backend answering 503 is ejected and traffic goes to the healthy one', async () => {
  const good = await startH1Backend();
  const bad = await startH1Backend((req, res) => {
    req.resume();
    res.writeHead(503).end('down');
  });
  const proxy = await startProxy({
    clusters: [
      staticCluster('c1', [good.port, bad.port], {
        outlierDetection: {
          consecutive5xx: 2,
          interval: '300s',
          baseEjectionTime: '300s',
          maxEjectionPercent: 100,
        },
        commonLbConfig: { healthyPanicThreshold: { value: 0 } },
      }),
    ],
    routes: [simpleRoutes('c1')],
  });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await request(proxy.port)).status);
    assert.equal(statuses.filter((s) => s === 503).length, 2, 'two 503s, then only the good host');
    assert.deepEqual(statuses.slice(-6), [200, 200, 200, 200, 200, 200]);
    assert.equal(
      proxy.stats.values.get('cluster.c1.outlier_detection.ejections_enforced_consecutive_5xx')
        ?.value,
      1,
    );
  } finally {
    await proxy.close();
    await good.close();
    await bad.close();
  }
});

test('real sockets: connection failures count (as 503) toward consecutive_5xx', async () => {
  const good = await startH1Backend();
  const dead = await startH1Backend();
  const deadPort = dead.port;
  await dead.close();
  const proxy = await startProxy({
    clusters: [
      staticCluster('c1', [good.port, deadPort], {
        outlierDetection: { consecutive5xx: 2, interval: '300s', maxEjectionPercent: 100 },
        commonLbConfig: { healthyPanicThreshold: { value: 0 } },
      }),
    ],
    routes: [simpleRoutes('c1')],
  });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await request(proxy.port)).status);
    assert.equal(statuses.filter((s) => s === 503).length, 2);
    assert.equal(proxy.stats.values.get('cluster.c1.outlier_detection.ejections_active')?.value, 1);
  } finally {
    await proxy.close();
    await good.close();
  }
});
