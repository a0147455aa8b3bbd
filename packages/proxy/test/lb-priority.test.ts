// Host sets and priority handling: EDS parsing and host identity across updates, health status
// filtering, outlier ejection, Envoy's priority load (exact values from Envoy's docs and code),
// panic mode, degraded hosts, locality weighted balancing, and the control plane's golden
// endpoint/cluster files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type {
  Cluster,
  ClusterLoadAssignment,
  HealthStatus,
  LocalityLbEndpoints,
} from '@trellis/envoy';
import type { Counter, StatsScope } from '../src/observability/stats-api.js';
import {
  PrioritySet,
  choosePriority,
  claProblems,
  computePriorityLoad,
  createLoadBalancer,
  lbConfigProblems,
  seededRandom,
  type LbHost,
  type LevelHealth,
} from '../src/upstream/lb/index.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

interface Ep {
  readonly ip: string;
  readonly port?: number;
  readonly weight?: number;
  readonly health?: HealthStatus;
}

function level(
  priority: number,
  eps: readonly Ep[],
  locality?: { region?: string; zone?: string; weight?: number },
): LocalityLbEndpoints {
  return {
    ...(locality
      ? {
          locality: {
            ...(locality.region ? { region: locality.region } : {}),
            ...(locality.zone ? { zone: locality.zone } : {}),
          },
        }
      : {}),
    ...(locality?.weight !== undefined ? { loadBalancingWeight: locality.weight } : {}),
    priority,
    lbEndpoints: eps.map((e) => ({
      endpoint: { address: { socketAddress: { address: e.ip, portValue: e.port ?? 8080 } } },
      ...(e.health ? { healthStatus: e.health } : {}),
      ...(e.weight !== undefined ? { loadBalancingWeight: e.weight } : {}),
    })),
  };
}

/** `n` endpoints 10.<net>.0.<i+1>, the first `healthy` HEALTHY and the rest UNHEALTHY. */
function eps(net: number, n: number, healthy = n): Ep[] {
  return Array.from({ length: n }, (_, i) => ({
    ip: `10.${net}.0.${i + 1}`,
    health: i < healthy ? 'HEALTHY' : 'UNHEALTHY',
  }));
}

const cla = (...levels: LocalityLbEndpoints[]): ClusterLoadAssignment => ({
  clusterName: 'c',
  endpoints: levels,
});

const cluster = (extra: Partial<Cluster> = {}): Cluster => ({ name: 'c', type: 'EDS', ...extra });

function counts(pick: () => LbHost | undefined, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = pick();
    const k = h ? h.id : 'none';
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

const byNet = (m: Map<string, number>, net: number): number =>
  [...m].filter(([id]) => id.startsWith(`10.${net}.`)).reduce((a, [, c]) => a + c, 0);

/** Health counts for computePriorityLoad: `healthyPct` of 100 hosts healthy. */
const pct = (healthyPct: number, degradedPct = 0): LevelHealth => ({
  total: 100,
  healthy: healthyPct,
  degraded: degradedPct,
  hostCount: 100,
  healthyCount: healthyPct,
  degradedCount: degradedPct,
});

function fakeStats(): { scope: StatsScope; counters: Map<string, number> } {
  const counters = new Map<string, number>();
  const counter = (name: string): Counter => ({
    inc: (n = 1) => void counters.set(name, (counters.get(name) ?? 0) + n),
    get value() {
      return counters.get(name) ?? 0;
    },
  });
  const scope: StatsScope = {
    counter,
    gauge: () => ({ set() {}, inc() {}, dec() {}, value: 0 }),
    histogram: () => ({ record() {} }),
    scope: () => scope,
  };
  return { scope, counters };
}

// ---------------------------------------------------------------------------------------------
// Priority load: exact values

test('priority load with P=1 fully healthy follows the table in Envoy docs', () => {
  const cases: [number, number, number][] = [
    [100, 100, 0],
    [72, 100, 0],
    [71, 99, 1],
    [50, 70, 30],
    [25, 35, 65],
    [0, 0, 100],
  ];
  for (const [p0, load0, load1] of cases) {
    const load = computePriorityLoad([pct(p0), pct(100)], 140, 50);
    assert.deepEqual(load.healthy, [load0, load1], `P0 ${p0}% healthy`);
    assert.deepEqual(load.panic, [false, false]);
  }
});

test('priority load when both levels degrade (Envoy docs), normalized below 100', () => {
  const cases: [number, number, number, number][] = [
    [100, 100, 100, 0],
    [72, 72, 100, 0],
    [71, 71, 99, 1],
    [50, 50, 70, 30],
    [25, 100, 35, 65],
    // health {35, 35}: normalized total health 70 → both scaled up to 50/50.
    [25, 25, 50, 50],
  ];
  for (const [p0, p1, load0, load1] of cases) {
    const load = computePriorityLoad([pct(p0), pct(p1)], 140, 0);
    assert.deepEqual(load.healthy, [load0, load1], `P0 ${p0}%, P1 ${p1}%`);
  }
  // The docs' normalization example: health {20, 30} → load {40, 60}.
  const h = (healthy: number): LevelHealth => ({
    total: 140,
    healthy,
    degraded: 0,
    hostCount: 140,
    healthyCount: healthy,
    degradedCount: 0,
  });
  assert.deepEqual(computePriorityLoad([h(20), h(30)], 140, 0).healthy, [40, 60]);
});

test('priority load over three levels (Envoy docs and code)', () => {
  assert.deepEqual(
    computePriorityLoad([pct(100), pct(100), pct(100)], 140, 50).healthy,
    [100, 0, 0],
  );
  assert.deepEqual(computePriorityLoad([pct(72), pct(72), pct(100)], 140, 50).healthy, [100, 0, 0]);
  assert.deepEqual(computePriorityLoad([pct(71), pct(71), pct(100)], 140, 50).healthy, [99, 1, 0]);
  assert.deepEqual(computePriorityLoad([pct(50), pct(50), pct(100)], 140, 50).healthy, [70, 30, 0]);
  assert.deepEqual(
    computePriorityLoad([pct(25), pct(100), pct(100)], 140, 50).healthy,
    [35, 65, 0],
  );
  assert.deepEqual(
    computePriorityLoad([pct(25), pct(25), pct(100)], 140, 50).healthy,
    [35, 35, 30],
  );
  // Health {35, 35, 28} (normalized 98): distributeLoad gives 35/35/28 and the rounding
  // remainder (2) goes to the first healthy level, as in Envoy's code (the docs table rounds
  // this row to 36/36/28 by hand).
  assert.deepEqual(computePriorityLoad([pct(25), pct(25), pct(20)], 140, 0).healthy, [37, 35, 28]);
});

test('degraded hosts take the load healthy ones cannot (Envoy code comment example)', () => {
  // Health 10/20/10 and degraded 20/10/0 (1 or 2 of 14 hosts with factor 140).
  const l = (healthy: number, degraded: number): LevelHealth => ({
    total: 14,
    healthy,
    degraded,
    hostCount: 14,
    healthyCount: healthy,
    degradedCount: degraded,
  });
  const load = computePriorityLoad([l(1, 2), l(2, 1), l(1, 0)], 140, 0);
  assert.deepEqual(load.health, [10, 20, 10]);
  assert.deepEqual(load.degradedAvailability, [20, 10, 0]);
  assert.deepEqual(load.healthy, [16, 28, 14]);
  assert.deepEqual(load.degraded, [28, 14, 0]);
});

test('panic: levels below the threshold only when the normalized total is below 100', () => {
  // P1 fully healthy: normalized total 100, P0 never panics even at 0% healthy.
  for (const p0 of [72, 49, 10, 0]) {
    assert.deepEqual(computePriorityLoad([pct(p0), pct(100)], 140, 50).panic, [false, false]);
  }
  // Envoy docs: 25%/25% → 50/50, both in panic, normalized total 70.
  const both = computePriorityLoad([pct(25), pct(25)], 140, 50);
  assert.deepEqual(both.healthy, [50, 50]);
  assert.deepEqual(both.panic, [true, true]);
  // 5%/65%: health 7 and 91 (normalized 98); P0 in panic, P1 not. Envoy's code puts the
  // rounding remainder on P0: 8/92 (the docs table shows 7/93).
  const some = computePriorityLoad([pct(5), pct(65)], 140, 50);
  assert.deepEqual(some.healthy, [8, 92]);
  assert.deepEqual(some.panic, [true, false]);
});

test('total panic splits the load by host count; panic threshold 0 sends it to P0', () => {
  const level = (hosts: number): LevelHealth => ({
    total: hosts,
    healthy: 0,
    degraded: 0,
    hostCount: hosts,
    healthyCount: 0,
    degradedCount: 0,
  });
  const total = computePriorityLoad([level(3), level(1), level(2)], 140, 50);
  assert.deepEqual(total.panic, [true, true, true]);
  assert.deepEqual(total.healthy, [51, 16, 33]);
  const off = computePriorityLoad([level(3), level(1)], 140, 0);
  assert.deepEqual(off.panic, [false, false]);
  assert.deepEqual(off.healthy, [100, 0]);
});

test('choosePriority walks healthy loads, then degraded ones', () => {
  const load = computePriorityLoad([pct(50), pct(100)], 140, 50); // 70/30
  assert.equal(choosePriority(0, load), 0);
  assert.equal(choosePriority(69, load), 0);
  assert.equal(choosePriority(70, load), 2); // priority 1, healthy
  assert.equal(choosePriority(99, load), 2);
  const degradedOnly = computePriorityLoad(
    [{ total: 2, healthy: 0, degraded: 2, hostCount: 2, healthyCount: 0, degradedCount: 2 }],
    140,
    50,
  );
  assert.deepEqual(degradedOnly.degraded, [100]);
  assert.equal(choosePriority(42, degradedOnly), 1); // priority 0, degraded
});

// ---------------------------------------------------------------------------------------------
// Through a balancer

test('all of P0 healthy: every pick lands on P0', () => {
  const clb = createLoadBalancer(cluster(), cla(level(0, eps(1, 4)), level(1, eps(2, 4))), {
    random: seededRandom(1),
  });
  assert.deepEqual(clb.priorityLoad().healthy, [100, 0]);
  const c = counts(() => clb.lb.choose({}), 2000);
  assert.equal(byNet(c, 1), 2000);
});

test('P0 below 100/1.4 healthy spills proportionally to P1', () => {
  for (const [healthy, expected] of [
    [7, 98], // 140 * 7 / 10 = 98
    [5, 70],
    [2, 28],
    [0, 0],
  ] as const) {
    const clb = createLoadBalancer(
      cluster({ lbPolicy: 'RANDOM' }),
      cla(level(0, eps(1, 10, healthy)), level(1, eps(2, 10))),
      { random: seededRandom(healthy + 10) },
    );
    assert.deepEqual(clb.priorityLoad().healthy, [expected, 100 - expected]);
    const n = 20000;
    const c = counts(() => clb.lb.choose({}), n);
    assert.ok(
      Math.abs(byNet(c, 1) / n - expected / 100) < 0.02,
      `P0 ${healthy}/10 healthy: ${byNet(c, 1)} of ${n} to P0, expected ${expected}%`,
    );
    // Unhealthy P0 hosts are never chosen (no panic: P1 makes the total 100%).
    for (let i = healthy; i < 10; i++) assert.equal(c.get(`10.1.0.${i + 1}:8080`), undefined);
  }
});

test('the overprovisioning factor comes from the assignment policy', () => {
  const assignment = cla(level(0, eps(1, 10, 9)), level(1, eps(2, 10)));
  const dflt = createLoadBalancer(cluster(), assignment);
  assert.deepEqual(dflt.priorityLoad().healthy, [100, 0]);
  const exact = createLoadBalancer(cluster(), {
    ...assignment,
    policy: { overprovisioningFactor: 100 },
  });
  assert.equal(exact.hostSet.overprovisioningFactor, 100);
  assert.deepEqual(exact.priorityLoad().healthy, [90, 10]);
});

test('weighted_priority_health counts host weights', () => {
  const heavyDown: Ep[] = [
    { ip: '10.1.0.1', weight: 1 },
    { ip: '10.1.0.2', weight: 3, health: 'UNHEALTHY' },
  ];
  const plain = createLoadBalancer(cluster(), cla(level(0, heavyDown), level(1, eps(2, 2))));
  assert.deepEqual(plain.priorityLoad().healthy, [70, 30]); // 1 of 2 hosts
  const weighted = createLoadBalancer(cluster(), {
    ...cla(level(0, heavyDown), level(1, eps(2, 2))),
    policy: { weightedPriorityHealth: true },
  });
  assert.deepEqual(weighted.priorityLoad().healthy, [35, 65]); // weight 1 of 4
});

test('panic mode balances over all hosts of the level, counted in lb_healthy_panic', () => {
  const { scope, counters } = fakeStats();
  const clb = createLoadBalancer(cluster(), cla(level(0, eps(1, 10, 4))), {
    random: seededRandom(3),
    stats: scope,
  });
  assert.deepEqual(clb.priorityLoad().panic, [true]);
  const c = counts(() => clb.lb.choose({}), 1000);
  assert.equal(c.size, 10, 'every host, healthy or not, is used');
  assert.equal(counters.get('lb_healthy_panic'), 1000);

  // 6 of 10 healthy (60% ≥ 50%): no panic, only healthy hosts.
  clb.update(cla(level(0, eps(1, 10, 6))));
  assert.deepEqual(clb.priorityLoad().panic, [false]);
  const c2 = counts(() => clb.lb.choose({}), 1000);
  assert.deepEqual(
    [...c2.keys()].sort(),
    eps(1, 6)
      .map((e) => `${e.ip}:8080`)
      .sort(),
  );
});

test('panic threshold 0 (Istio outlier detection without min health): no host → undefined', () => {
  const goldenClusters = golden<Cluster[]>('cluster-locality-lb.json');
  const v1 = goldenClusters.find((c) => c.name?.includes('|v1|'))!;
  assert.equal(v1.commonLbConfig?.healthyPanicThreshold?.value, 0);
  const clb = createLoadBalancer(v1, cla(level(0, eps(1, 3, 0))));
  assert.equal(clb.lb.choose({}), undefined);
  clb.update(cla(level(0, eps(1, 3, 1))));
  assert.equal(clb.lb.choose({})?.id, '10.1.0.1:8080');
});

test('only HEALTHY and UNKNOWN (or absent) endpoints receive traffic; DEGRADED as a last resort', () => {
  const statuses: (HealthStatus | undefined)[] = [
    'HEALTHY',
    'UNKNOWN',
    undefined,
    'UNHEALTHY',
    'DRAINING',
    'TIMEOUT',
    'DEGRADED',
  ];
  const all: Ep[] = statuses.map((s, i) => ({
    ip: `10.9.0.${i + 1}`,
    ...(s ? { health: s } : {}),
  }));
  // Panic threshold 0 so that the unhealthy share cannot trigger panic mode.
  const clb = createLoadBalancer(
    cluster({ commonLbConfig: { healthyPanicThreshold: { value: 0 } } }),
    cla(level(0, all)),
    { random: seededRandom(5) },
  );
  const hosts = new Map(clb.hosts.map((h) => [h.id, h]));
  assert.deepEqual(
    statuses.map((_, i) => hosts.get(`10.9.0.${i + 1}:8080`)!.healthy),
    [true, true, true, false, false, false, false],
  );
  assert.equal(hosts.get('10.9.0.3:8080')!.healthStatus, 'UNKNOWN');
  // Health 140 × 3/7 = 60, degraded availability 140 × 1/7 = 20: normalized total 80, so the
  // healthy hosts take 75% and the degraded one the remaining 25%.
  const load7 = clb.priorityLoad();
  assert.deepEqual([load7.healthy, load7.degraded], [[75], [25]]);
  const c = counts(() => clb.lb.choose({}), 4000);
  assert.deepEqual([...c.keys()].sort(), [
    '10.9.0.1:8080',
    '10.9.0.2:8080',
    '10.9.0.3:8080',
    '10.9.0.7:8080',
  ]);
  assert.ok(Math.abs(c.get('10.9.0.7:8080')! / 4000 - 0.25) < 0.03);

  // Only degraded hosts left: they take all the load (not panic: degraded counts as available).
  const degraded = createLoadBalancer(
    cluster(),
    cla(
      level(0, [
        { ip: '10.8.0.1', health: 'DEGRADED' },
        { ip: '10.8.0.2', health: 'UNHEALTHY' },
      ]),
    ),
  );
  const load = degraded.priorityLoad();
  assert.deepEqual([load.healthy, load.degraded, load.panic], [[0], [100], [false]]);
  assert.equal(degraded.lb.choose({})?.id, '10.8.0.1:8080');
});

test('EDS updates keep host objects, counters and ejections; report what changed', () => {
  const clb = createLoadBalancer(cluster(), cla(level(0, eps(1, 3))), { random: seededRandom(9) });
  const [a, b, c] = clb.hosts;
  a!.activeRequests = 7;
  b!.healthy = false; // outlier detection ejects b
  assert.equal(b!.ejected, true);
  const update = clb.update(
    cla(level(0, [{ ip: '10.1.0.1', weight: 5 }, { ip: '10.1.0.2' }, { ip: '10.1.0.4' }])),
  );
  assert.deepEqual(
    update.added.map((h) => h.id),
    ['10.1.0.4:8080'],
  );
  assert.deepEqual(update.removed, [c]);
  assert.deepEqual(update.problems, []);
  assert.equal(clb.hostSet.get('10.1.0.1:8080'), a);
  assert.equal(a!.activeRequests, 7);
  assert.equal(a!.weight, 5);
  assert.equal(clb.hostSet.get('10.1.0.2:8080'), b);
  assert.equal(b!.healthy, false, 'still ejected after the EDS push');
  assert.equal(b!.healthStatus, 'UNKNOWN');
  const picked = counts(() => clb.lb.choose({}), 600);
  assert.equal(picked.get('10.1.0.2:8080'), undefined);
  b!.ejected = false;
  assert.ok((counts(() => clb.lb.choose({}), 700).get('10.1.0.2:8080') ?? 0) > 0);
});

test('endpoint addresses, metadata and problems', () => {
  const set = new PrioritySet({
    endpoints: [
      {
        locality: { region: 'r', zone: 'z', subZone: 's' },
        loadBalancingWeight: 7,
        priority: 2,
        lbEndpoints: [
          {
            endpoint: {
              address: { socketAddress: { address: 'fd00::1', portValue: 9080 } },
              hostname: 'h1',
            },
            metadata: { filterMetadata: { istio: { workload: 'w' } } },
          },
          { endpoint: { address: { pipe: { path: '/var/run/app.sock' } } } },
          { endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 1 } } } },
          { endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 1 } } } },
          { endpoint: {} },
          { endpoint: { address: { socketAddress: { address: '10.0.0.2', namedPort: 'http' } } } },
        ],
      },
    ],
  });
  const [v6, pipe, v4] = set.hosts;
  assert.equal(set.hosts.length, 3);
  assert.deepEqual(
    [v6!.id, v6!.address, v6!.port, v6!.priority, v6!.localityWeight, v6!.hostname],
    ['[fd00::1]:9080', 'fd00::1', 9080, 2, 7, 'h1'],
  );
  assert.deepEqual(v6!.locality, { region: 'r', zone: 'z', subZone: 's' });
  assert.deepEqual(v6!.metadata, { istio: { workload: 'w' } });
  assert.deepEqual([pipe!.id, pipe!.port], ['/var/run/app.sock', 0]);
  assert.equal(v4!.id, '10.0.0.1:1');
  assert.equal(set.levels().length, 3, 'priorities 0 and 1 exist, empty');
  const problems = claProblems({
    endpoints: [
      {
        lbEndpoints: [
          { endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 1 } } } },
          { endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 1 } } } },
          { endpoint: {} },
          {
            endpoint: { address: { socketAddress: { address: '10.0.0.3', portValue: 1 } } },
            loadBalancingWeight: 0,
          },
        ],
      },
    ],
  });
  assert.deepEqual(problems, [
    'endpoints[0].lbEndpoints[1]: duplicate endpoint 10.0.0.1:1',
    'endpoints[0].lbEndpoints[2].endpoint.address: missing',
    'endpoints[0].lbEndpoints[3].load_balancing_weight: must be at least 1',
  ]);
});

// ---------------------------------------------------------------------------------------------
// Localities

test('locality weighted balancing follows the Envoy docs table (X weight 1, Y weight 2)', () => {
  // L=X healthy share → traffic to X: 100% → 33%, 70% → 33%, 50% → 26%, 25% → 15%, 0% → 0%
  // (effective weight = 1 × min(1, 1.4 × healthy share), against Y's 2).
  for (const [healthyOfTwenty, expected] of [
    [20, 1 / 3],
    [14, 0.98 / 2.98],
    [10, 0.7 / 2.7],
    [5, 0.35 / 2.35],
    [0, 0],
  ] as const) {
    const clb = createLoadBalancer(
      cluster({ commonLbConfig: { localityWeightedLbConfig: {} } }),
      cla(
        level(0, eps(1, 20, healthyOfTwenty), { region: 'x', weight: 1 }),
        level(0, eps(2, 20), { region: 'y', weight: 2 }),
      ),
      { random: seededRandom(11) },
    );
    const n = 27000;
    const toX =
      byNet(
        counts(() => clb.lb.choose({}), n),
        1,
      ) / n;
    assert.ok(
      Math.abs(toX - expected) < 0.002,
      `X ${healthyOfTwenty}/20 healthy: ${toX} vs ${expected}`,
    );
  }
});

test('without locality_weighted_lb_config, locality weights are ignored', () => {
  const clb = createLoadBalancer(
    cluster(),
    cla(
      level(0, eps(1, 1), { region: 'x', weight: 1 }),
      level(0, eps(2, 1), { region: 'y', weight: 9 }),
    ),
    { random: seededRandom(2) },
  );
  const c = counts(() => clb.lb.choose({}), 1000);
  assert.deepEqual([byNet(c, 1), byNet(c, 2)], [500, 500]);
});

test('Istio distribute setting (golden): locality weights 45/45/10, empty localities skipped', () => {
  const [assignment] = golden<ClusterLoadAssignment[]>('endpoint-locality-distribute.json');
  const [withLocality] = golden<Cluster[]>('cluster-locality-lb.json');
  const clb = createLoadBalancer(withLocality!, assignment, { random: seededRandom(4) });
  const c = counts(() => clb.lb.choose({}), 10000);
  assert.ok(Math.abs(c.get('10.2.1.1:9080')! - 4500) <= 2, String(c.get('10.2.1.1:9080')));
  assert.ok(Math.abs(c.get('10.2.1.2:9080')! - 4500) <= 2);
  assert.ok(Math.abs(c.get('10.2.1.3:9080')! - 1000) <= 2);
  assert.equal(c.get('none'), undefined);
});

test('Istio failover setting (golden): priorities fail over as hosts are ejected', () => {
  const [assignment] = golden<ClusterLoadAssignment[]>('endpoint-locality-failover.json');
  const [withLocality] = golden<Cluster[]>('cluster-locality-lb.json');
  const clb = createLoadBalancer(withLocality!, assignment, { random: seededRandom(8) });
  const pick = (): Map<string, number> => counts(() => clb.lb.choose({}), 1000);
  assert.deepEqual([...pick().keys()], ['10.2.1.1:9080']);
  clb.hostSet.get('10.2.1.1:9080')!.ejected = true;
  assert.deepEqual(clb.priorityLoad().healthy, [0, 100, 0]);
  assert.deepEqual([...pick().keys()], ['10.2.1.2:9080']);
  clb.hostSet.get('10.2.1.2:9080')!.ejected = true;
  assert.deepEqual([...pick().keys()].sort(), ['10.2.1.3:9080', '10.2.1.4:9080']);
  clb.hostSet.get('10.2.1.1:9080')!.ejected = false;
  assert.deepEqual([...pick().keys()], ['10.2.1.1:9080']);
});

test('every golden cluster and assignment is accepted by every balancer', () => {
  const dir = goldenDir();
  const files = readdirSync(dir);
  const clusters = files
    .filter((f) => f.startsWith('cluster-'))
    .flatMap((f) => golden<Cluster[]>(f));
  const assignments = files
    .filter((f) => f.startsWith('endpoint-'))
    .flatMap((f) => golden<ClusterLoadAssignment[]>(f));
  assert.ok(clusters.length > 20 && assignments.length > 5);
  for (const a of assignments) assert.deepEqual(claProblems(a), [], a.clusterName);
  for (const c of clusters) {
    assert.deepEqual(lbConfigProblems(c), [], c.name);
    for (const a of assignments) {
      const clb = createLoadBalancer(c, a, { random: seededRandom(1) });
      const hosts = clb.hosts.length;
      const chosen = clb.lb.choose({ hash: 12345n });
      assert.equal(chosen === undefined, hosts === 0, `${c.name} with ${a.clusterName}`);
    }
    // Clusters with their own load_assignment (STATIC, inbound) need no EDS.
    createLoadBalancer(c);
  }
});

function goldenDir(): string {
  // dist/test → packages/proxy → packages/translate/test/golden
  return join(import.meta.dirname, '..', '..', '..', 'translate', 'test', 'golden');
}

function golden<T>(file: string): T {
  return JSON.parse(readFileSync(join(goldenDir(), file), 'utf8')) as T;
}
