// Locality-aware balancing, failover and endpoint weights across every lb_policy, checked against
// Envoy's documented semantics: priority spillover with the overprovisioning factor, degraded
// hosts, normalisation below 100% availability, panic per level and in total (and
// fail_traffic_on_panic), locality picks by effective weight, endpoint weights within a
// locality, and EDS health and outlier ejections feeding all of it. Seeded randomness only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  Cluster,
  ClusterLoadAssignment,
  HealthStatus,
  LocalityLbEndpoints,
} from '@trellis/envoy';
import type { Counter, StatsScope } from '../src/observability/stats-api.js';
import {
  createLoadBalancer,
  lbSettingsOf,
  seededRandom,
  type ClusterLoadBalancer,
  type LbHost,
  type Random,
} from '../src/upstream/lb/index.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

type Policy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
const POLICIES: readonly Policy[] = [
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'RING_HASH',
  'MAGLEV',
];
const HASHING = new Set<Policy>(['RING_HASH', 'MAGLEV']);

interface Ep {
  readonly ip: string;
  readonly weight?: number;
  readonly health?: HealthStatus;
}

interface Loc {
  readonly priority?: number;
  readonly region?: string;
  readonly zone?: string;
  readonly weight?: number;
  readonly eps: readonly Ep[];
}

function lle(l: Loc): LocalityLbEndpoints {
  return {
    ...(l.region !== undefined
      ? { locality: { region: l.region, ...(l.zone !== undefined ? { zone: l.zone } : {}) } }
      : {}),
    ...(l.weight !== undefined ? { loadBalancingWeight: l.weight } : {}),
    ...(l.priority !== undefined ? { priority: l.priority } : {}),
    lbEndpoints: l.eps.map((e) => ({
      endpoint: { address: { socketAddress: { address: e.ip, portValue: 80 } } },
      ...(e.health !== undefined ? { healthStatus: e.health } : {}),
      ...(e.weight !== undefined ? { loadBalancingWeight: e.weight } : {}),
    })),
  };
}

const cla = (...locs: Loc[]): ClusterLoadAssignment => ({
  clusterName: 'c',
  endpoints: locs.map(lle),
});

/** `n` endpoints 10.<net>.<i/250>.<i%250+1>: the first `healthy` HEALTHY, the rest `rest`. */
function eps(net: number, n: number, healthy = n, rest: HealthStatus = 'UNHEALTHY'): Ep[] {
  return Array.from({ length: n }, (_, i) => ({
    ip: `10.${net}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    health: i < healthy ? 'HEALTHY' : rest,
  }));
}

function cluster(policy: Policy, extra: Partial<Cluster> = {}): Cluster {
  return {
    name: 'c',
    type: 'EDS',
    lbPolicy: policy,
    // A big ring keeps ring hash's shares close to the weights.
    ...(policy === 'RING_HASH' ? { ringHashLbConfig: { minimumRingSize: '16384' } } : {}),
    ...extra,
  };
}

const LOCALITY_WEIGHTED: Partial<Cluster> = { commonLbConfig: { localityWeightedLbConfig: {} } };

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

function random64(r: Random): bigint {
  return (BigInt(r.nextUint32()) << 32n) | BigInt(r.nextUint32());
}

/** `n` choices (with random request hashes for the hashing policies): count per host id. */
function counts(clb: ClusterLoadBalancer, n: number, seed = 99): Map<string, number> {
  const r = seededRandom(seed);
  const hashing = HASHING.has(clb.policy as Policy);
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h: LbHost | undefined = clb.lb.choose(hashing ? { hash: random64(r) } : {});
    const k = h ? h.id : 'none';
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** Share of the choices that went to hosts of 10.<net>. */
function share(m: Map<string, number>, net: number): number {
  let total = 0;
  let to = 0;
  for (const [id, c] of m) {
    total += c;
    if (id.startsWith(`10.${net}.`)) to += c;
  }
  return to / total;
}

/**
 * Tolerance of a share: tight where a schedule decides (localities and weighted hosts in RR and
 * LR), statistical for random choices (the priority, RANDOM's host, hashing's random keys).
 */
const tolerance = (policy: Policy): number =>
  policy === 'ROUND_ROBIN' || policy === 'LEAST_REQUEST' ? 0.005 : 0.02;
/** Priorities (and healthy vs degraded) are picked at random in every balancer. */
const PRIORITY_TOLERANCE = 0.02;

function make(policy: Policy, assignment: ClusterLoadAssignment, extra: Partial<Cluster> = {}) {
  const stats = fakeStats();
  const clb = createLoadBalancer(cluster(policy, extra), assignment, {
    random: seededRandom(7),
    stats: stats.scope,
  });
  return { clb, counters: stats.counters };
}

const N = 20000;

// ---------------------------------------------------------------------------------------------
// Priority levels

for (const policy of POLICIES) {
  test(`${policy}: P0 spills to P1 by health × 1.4 as hosts are ejected, and comes back`, () => {
    const { clb } = make(
      policy,
      cla({ priority: 0, eps: eps(1, 10) }, { priority: 1, eps: eps(2, 10) }),
    );
    const p0 = clb.hosts.filter((h) => h.priority === 0);
    assert.equal(share(counts(clb, N), 1), 1, 'P0 fully healthy takes everything');
    // 8 of 10 healthy: 1.4 × 80% ≥ 100% — no spillover (the overprovisioning factor).
    p0[0]!.ejected = true;
    p0[1]!.ejected = true;
    assert.deepEqual(clb.priorityLoad().healthy, [100, 0]);
    assert.equal(share(counts(clb, N), 1), 1);
    // 5 of 10: health 70 → 70% P0, 30% P1.
    for (const h of p0.slice(2, 5)) h.ejected = true;
    assert.deepEqual(clb.priorityLoad().healthy, [70, 30]);
    const half = counts(clb, N);
    assert.ok(Math.abs(share(half, 1) - 0.7) < PRIORITY_TOLERANCE, `${share(half, 1)}`);
    for (const h of p0.slice(0, 5)) assert.equal(half.get(h.id), undefined, 'ejected hosts idle');
    // All of P0 ejected: everything on P1 (P1's health keeps the normalized total at 100).
    for (const h of p0) h.ejected = true;
    assert.deepEqual(clb.priorityLoad().healthy, [0, 100]);
    assert.deepEqual(clb.priorityLoad().panic, [false, false]);
    assert.equal(share(counts(clb, N), 2), 1);
    for (const h of p0) h.ejected = false;
    assert.equal(share(counts(clb, N), 1), 1, 'un-ejected: back on P0');
  });
}

test('overprovisioning_factor from the assignment policy changes the spillover point', () => {
  for (const policy of POLICIES) {
    const assignment = {
      ...cla({ priority: 0, eps: eps(1, 10, 8) }, { priority: 1, eps: eps(2, 10) }),
      policy: { overprovisioningFactor: 100 },
    };
    const { clb } = make(policy, assignment);
    assert.deepEqual(clb.priorityLoad().healthy, [80, 20], policy);
    const m = counts(clb, N);
    assert.ok(Math.abs(share(m, 1) - 0.8) < PRIORITY_TOLERANCE, `${policy} ${share(m, 1)}`);
  }
});

test('health below 100 in total: the loads are scaled up (Envoy docs: 20/30 → 40/60)', () => {
  // 1.4 × 1/7 = 20, 1.4 × 3/14 = 30: normalized total 50, loads 40 and 60, no panic at 0.
  for (const policy of POLICIES) {
    const { clb } = make(
      policy,
      cla({ priority: 0, eps: eps(1, 7, 1) }, { priority: 1, eps: eps(2, 14, 3) }),
      { commonLbConfig: { healthyPanicThreshold: { value: 0 } } },
    );
    assert.deepEqual(clb.priorityLoad().healthy, [40, 60], policy);
    const m = counts(clb, N);
    assert.ok(Math.abs(share(m, 1) - 0.4) < PRIORITY_TOLERANCE, `${policy} ${share(m, 1)}`);
    assert.equal(m.get('none'), undefined);
    // Only healthy hosts are chosen.
    assert.deepEqual(
      [...m.keys()].sort(),
      ['10.1.0.1:80', '10.2.0.1:80', '10.2.0.2:80', '10.2.0.3:80'].sort(),
    );
  }
});

test('degraded hosts take what the healthy ones cannot, in every balancer (hashing too)', () => {
  for (const policy of POLICIES) {
    // 2 healthy + 8 degraded of 10 → health 28, degraded availability 100 (capped): 28% to the
    // healthy hosts, 72% to the degraded ones.
    const { clb } = make(policy, cla({ eps: eps(1, 10, 2, 'DEGRADED') }));
    const load = clb.priorityLoad();
    assert.deepEqual([load.healthy, load.degraded], [[28], [72]], policy);
    const m = counts(clb, N);
    const toHealthy = ((m.get('10.1.0.1:80') ?? 0) + (m.get('10.1.0.2:80') ?? 0)) / N;
    assert.ok(Math.abs(toHealthy - 0.28) < PRIORITY_TOLERANCE, `${policy} ${toHealthy}`);
    assert.equal(m.get('none'), undefined, `${policy}: always a host`);
    assert.equal(m.size, 10, `${policy}: every degraded host takes a share`);
  }
});

test('healthy hosts of a lower level come before degraded hosts of a higher one', () => {
  // P0 all degraded, P1 all healthy: P1's health (100) covers everything, degraded P0 is idle.
  for (const policy of POLICIES) {
    const { clb } = make(
      policy,
      cla({ priority: 0, eps: eps(1, 4, 0, 'DEGRADED') }, { priority: 1, eps: eps(2, 4) }),
    );
    assert.deepEqual(clb.priorityLoad().healthy, [0, 100], policy);
    assert.deepEqual(clb.priorityLoad().degraded, [0, 0], policy);
    assert.equal(share(counts(clb, 2000), 2), 1, policy);
  }
});

test('consistent hashing over degraded hosts: the same key keeps its degraded host', () => {
  for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
    const { clb } = make(policy, cla({ eps: eps(1, 5, 0, 'DEGRADED') }));
    const r = seededRandom(3);
    for (let i = 0; i < 200; i++) {
      const hash = random64(r);
      const a = clb.lb.choose({ hash });
      assert.ok(a, `${policy}: a degraded host is chosen`);
      assert.equal(clb.lb.choose({ hash }), a);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Panic

test('panic per level and in total follows the Envoy docs table (threshold 50%)', () => {
  // [P0 healthy %, P1 healthy %, load P0, P0 panic, P1 panic]; 100 hosts per level. Two rows
  // of the docs' panic table contradict the priority levels page and Envoy's code, which
  // both give P0 min(100, 1.4 × healthy %) while the total is 100: 50%/60% → 70/30 (the
  // table says 50/50) and 25%/100% → 35/65 (the table says 25/75).
  const rows: [number, number, number, boolean, boolean][] = [
    [72, 72, 100, false, false],
    [71, 71, 99, false, false],
    [50, 60, 70, false, false],
    [25, 100, 35, false, false],
    [25, 25, 50, true, true],
    // Docs: 7%/93%; Envoy's code gives the rounding remainder to P0.
    [5, 65, 8, true, false],
  ];
  for (const policy of POLICIES) {
    for (const [h0, h1, load0, panic0, panic1] of rows) {
      const { clb, counters } = make(
        policy,
        cla({ priority: 0, eps: eps(1, 100, h0) }, { priority: 1, eps: eps(2, 100, h1) }),
      );
      const load = clb.priorityLoad();
      const row = `${policy} ${h0}/${h1}`;
      assert.deepEqual(load.healthy, [load0, 100 - load0], row);
      assert.deepEqual(load.panic, [panic0, panic1], row);
      const m = counts(clb, 4000);
      assert.ok(Math.abs(share(m, 1) - load0 / 100) < 0.03, `${row}: ${share(m, 1)}`);
      // A level in panic balances over all of its hosts, unhealthy ones included.
      const unhealthyP0 = [...m.keys()].filter((id) => {
        const last = Number(id.split(':')[0]!.split('.')[3]);
        return id.startsWith('10.1.') && last > h0;
      }).length;
      assert.equal(unhealthyP0 > 0, panic0, `${row}: unhealthy P0 hosts chosen iff P0 panics`);
      assert.equal((counters.get('lb_healthy_panic') ?? 0) > 0, panic0 || panic1, row);
    }
  }
});

test('a level in panic answers from all of its hosts when its degraded load is chosen', () => {
  // P0: 2 degraded of 10 (availability 20% → panic), P1: 5 healthy of 10 (70, no panic).
  // Total 98: P1 takes 72 (71 + the rounding remainder), P0's degraded share 28 — served, in
  // panic, by every P0 host.
  for (const policy of POLICIES) {
    const p0 = eps(1, 10, 0).map((e, i) => (i < 2 ? { ip: e.ip, health: 'DEGRADED' as const } : e));
    const { clb } = make(
      policy,
      cla({ priority: 0, eps: p0 }, { priority: 1, eps: eps(2, 10, 5) }),
    );
    const load = clb.priorityLoad();
    assert.deepEqual(
      [load.healthy, load.degraded, load.panic],
      [
        [0, 72],
        [28, 0],
        [true, false],
      ],
    );
    const m = counts(clb, N);
    assert.ok(Math.abs(share(m, 1) - 0.28) < PRIORITY_TOLERANCE, `${policy} ${share(m, 1)}`);
    const p0Hosts = [...m.keys()].filter((id) => id.startsWith('10.1.'));
    assert.equal(p0Hosts.length, 10, `${policy}: all of P0's hosts`);
  }
});

test('every host ejected: total panic spreads over all hosts by host count; threshold 0 → none', () => {
  for (const policy of POLICIES) {
    const assignment = cla({ priority: 0, eps: eps(1, 3) }, { priority: 1, eps: eps(2, 1) });
    const { clb } = make(policy, assignment);
    for (const h of clb.hosts) h.ejected = true;
    assert.deepEqual(clb.priorityLoad().healthy, [75, 25], policy);
    assert.deepEqual(clb.priorityLoad().panic, [true, true], policy);
    const m = counts(clb, 8000);
    assert.equal(m.size, 4, `${policy}: every host, ejected or not`);
    assert.ok(Math.abs(share(m, 1) - 0.75) < 0.03, `${policy} ${share(m, 1)}`);

    const off = make(policy, assignment, {
      commonLbConfig: { healthyPanicThreshold: { value: 0 } },
    });
    for (const h of off.clb.hosts) h.ejected = true;
    assert.deepEqual(off.clb.priorityLoad().panic, [false, false]);
    assert.deepEqual([...counts(off.clb, 100).keys()], ['none'], policy);
  }
});

test('fail_traffic_on_panic: a level in panic gets no host (ROUND_ROBIN, LEAST_REQUEST, RANDOM)', () => {
  const zoneAware: Partial<Cluster> = {
    commonLbConfig: { zoneAwareLbConfig: { failTrafficOnPanic: true } },
  };
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM'] as const) {
    const { clb, counters } = make(policy, cla({ eps: eps(1, 4, 1) }), zoneAware);
    assert.deepEqual(clb.priorityLoad().panic, [true]);
    assert.deepEqual([...counts(clb, 50).keys()], ['none'], policy);
    assert.equal(counters.get('lb_healthy_panic'), 50);
    // Out of panic it balances as usual.
    clb.update(cla({ eps: eps(1, 4) }));
    assert.equal(counts(clb, 50).get('none'), undefined);
  }
  // The load_balancing_policy form carries it in locality_lb_config.zone_aware_lb_config.
  const { settings } = lbSettingsOf({
    name: 'c',
    lbPolicy: 'LOAD_BALANCING_POLICY_CONFIG',
    loadBalancingPolicy: {
      policies: [
        {
          typedExtensionConfig: {
            name: 'envoy.load_balancing_policies.round_robin',
            typedConfig: {
              '@type':
                'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
              localityLbConfig: { zoneAwareLbConfig: { failTrafficOnPanic: true } },
            },
          },
        },
      ],
    },
  } as unknown as Cluster);
  assert.equal(settings.failTrafficOnPanic, true);
  assert.equal(lbSettingsOf(cluster('ROUND_ROBIN')).settings.failTrafficOnPanic, false);
});

// ---------------------------------------------------------------------------------------------
// EDS health

test('EDS health: UNHEALTHY, DRAINING and TIMEOUT count like ejections; HEALTHY and UNKNOWN serve', () => {
  const statuses: HealthStatus[] = ['HEALTHY', 'UNKNOWN', 'UNHEALTHY', 'DRAINING', 'TIMEOUT'];
  for (const policy of POLICIES) {
    // Each status on 2 of P0's 4 hosts (the other 2 HEALTHY), P1 healthy.
    for (const status of statuses) {
      const p0: Ep[] = eps(1, 4).map((e, i) => (i < 2 ? { ip: e.ip, health: status } : e));
      const { clb } = make(policy, cla({ priority: 0, eps: p0 }, { priority: 1, eps: eps(2, 4) }));
      const serving = status === 'HEALTHY' || status === 'UNKNOWN';
      // 2 of 4 healthy → health 70: 30% spills to P1.
      assert.deepEqual(
        clb.priorityLoad().healthy,
        serving ? [100, 0] : [70, 30],
        `${policy} ${status}`,
      );
      const m = counts(clb, 4000);
      assert.equal(m.has('10.1.0.1:80'), serving, `${policy} ${status}`);
    }
    // An endpoint without health_status is UNKNOWN, i.e. healthy.
    const { clb } = make(policy, cla({ eps: [{ ip: '10.1.0.1' }] }));
    assert.deepEqual([...counts(clb, 10).keys()], ['10.1.0.1:80']);
  }
});

test('an ejected DEGRADED host is unhealthy; EDS updates keep the ejection', () => {
  for (const policy of POLICIES) {
    const assignment = cla({ eps: [{ ip: '10.1.0.1', health: 'DEGRADED' }, { ip: '10.1.0.2' }] });
    const { clb } = make(policy, assignment);
    const degraded = clb.hostSet.get('10.1.0.1:80')!;
    degraded.ejected = true;
    assert.deepEqual(clb.priorityLoad().degraded, [0]);
    clb.update(assignment);
    assert.equal(clb.hostSet.get('10.1.0.1:80'), degraded);
    assert.equal(degraded.ejected, true);
    assert.deepEqual([...counts(clb, 200).keys()], ['10.1.0.2:80'], policy);
  }
});

// ---------------------------------------------------------------------------------------------
// Locality weighted balancing

test('every balancer picks localities by effective weight (Envoy docs table: X 1, Y 2)', () => {
  // X has 100 hosts, of which `healthy` are healthy; Y (weight 2) is fully healthy.
  const rows: [number, number][] = [
    [100, 1 / 3],
    [70, 0.98 / 2.98],
    [69, 0.966 / 2.966],
    [50, 0.7 / 2.7],
    [25, 0.35 / 2.35],
    [0, 0],
  ];
  for (const policy of POLICIES) {
    for (const [healthy, expected] of rows) {
      const { clb } = make(
        policy,
        cla(
          { region: 'x', weight: 1, eps: eps(1, 100, healthy) },
          { region: 'y', weight: 2, eps: eps(2, 4) },
        ),
        // Panic off (as Istio configures it): X all down is then just a locality at weight 0.
        { commonLbConfig: { localityWeightedLbConfig: {}, healthyPanicThreshold: { value: 0 } } },
      );
      const m = counts(clb, N);
      const toX = share(m, 1);
      assert.ok(
        Math.abs(toX - expected) < tolerance(policy),
        `${policy}: X ${healthy}% healthy → ${toX}, want ${expected}`,
      );
      assert.equal(m.get('none'), undefined);
    }
  }
});

test('endpoint weights apply within the chosen locality (RANDOM: not, as in Envoy)', () => {
  // X (weight 1): hosts weighted 1 and 3; Y (weight 1): one host → 12.5% / 37.5% / 50%.
  const assignment = cla(
    {
      region: 'x',
      weight: 1,
      eps: [
        { ip: '10.1.0.1', weight: 1 },
        { ip: '10.1.0.2', weight: 3 },
      ],
    },
    { region: 'y', weight: 1, eps: [{ ip: '10.2.0.1', weight: 5 }] },
  );
  for (const policy of POLICIES) {
    const { clb } = make(policy, assignment, LOCALITY_WEIGHTED);
    const m = counts(clb, N);
    const light = (m.get('10.1.0.1:80') ?? 0) / N;
    const heavy = (m.get('10.1.0.2:80') ?? 0) / N;
    const y = (m.get('10.2.0.1:80') ?? 0) / N;
    const want = policy === 'RANDOM' ? [0.25, 0.25, 0.5] : [0.125, 0.375, 0.5];
    const tol = tolerance(policy);
    assert.ok(Math.abs(light - want[0]!) < tol, `${policy} light ${light}`);
    assert.ok(Math.abs(heavy - want[1]!) < tol, `${policy} heavy ${heavy}`);
    assert.ok(Math.abs(y - want[2]!) < tol, `${policy} y ${y}`);
  }
});

test('endpoint weights without locality weighting: 1:2:5 in RR, LR, ring hash and maglev', () => {
  const assignment = cla({
    eps: [
      { ip: '10.1.0.1', weight: 1 },
      { ip: '10.1.0.2', weight: 2 },
      { ip: '10.1.0.3', weight: 5 },
    ],
  });
  for (const policy of POLICIES) {
    const { clb } = make(policy, assignment);
    const m = counts(clb, N);
    const got = ['10.1.0.1:80', '10.1.0.2:80', '10.1.0.3:80'].map((id) => (m.get(id) ?? 0) / N);
    const want = policy === 'RANDOM' ? [1 / 3, 1 / 3, 1 / 3] : [1 / 8, 2 / 8, 5 / 8];
    got.forEach((g, i) =>
      assert.ok(Math.abs(g - want[i]!) < tolerance(policy), `${policy} ${i}: ${g} vs ${want[i]}`),
    );
  }
});

test('ejections move locality shares; a locality with no healthy host gets nothing', () => {
  for (const policy of POLICIES) {
    const { clb } = make(
      policy,
      cla({ region: 'x', weight: 1, eps: eps(1, 10) }, { region: 'y', weight: 1, eps: eps(2, 10) }),
      LOCALITY_WEIGHTED,
    );
    const x = clb.hosts.filter((h) => h.id.startsWith('10.1.'));
    assert.ok(Math.abs(share(counts(clb, N), 1) - 0.5) < tolerance(policy));
    // 5 of X's 10 ejected: X effective 0.7 → 0.7 / 1.7.
    for (const h of x.slice(0, 5)) h.ejected = true;
    const half = share(counts(clb, N), 1);
    assert.ok(Math.abs(half - 0.7 / 1.7) < tolerance(policy), `${policy} ${half}`);
    // All of X: everything to Y (the level's health is 70 → 30% would spill, but there is no
    // lower level: the load is normalized back onto this one).
    for (const h of x) h.ejected = true;
    const m = counts(clb, N);
    assert.equal(share(m, 2), 1, policy);
    for (const h of x) h.ejected = false;
    assert.ok(Math.abs(share(counts(clb, N), 1) - 0.5) < tolerance(policy), policy);
  }
});

test('panic: every host of the level; locality weights kept only by the hashing balancers', () => {
  // Envoy's zone-aware balancers use the level's flat host list in panic; its hashing ones
  // normalize locality weights over all hosts of each locality.
  for (const policy of POLICIES) {
    const { clb } = make(
      policy,
      cla(
        { region: 'x', weight: 1, eps: eps(1, 2, 0) },
        { region: 'y', weight: 9, eps: eps(2, 2, 0) },
      ),
      LOCALITY_WEIGHTED,
    );
    assert.deepEqual(clb.priorityLoad().panic, [true]);
    const toX = share(counts(clb, N), 1);
    const want = HASHING.has(policy) ? 0.1 : 0.5;
    assert.ok(Math.abs(toX - want) < 0.03, `${policy} ${toX}`);
  }
});

test('Istio failover shape: local locality P0, same region P1, remote P2, through every balancer', () => {
  // What the control plane emits for failover (locality weights 1, priorities by proximity).
  const assignment = cla(
    { priority: 0, region: 'us-east', zone: 'z1', weight: 1, eps: eps(1, 2) },
    { priority: 1, region: 'us-east', zone: 'z2', weight: 1, eps: eps(2, 2) },
    { priority: 2, region: 'eu-west', zone: 'z1', weight: 1, eps: eps(3, 1) },
    { priority: 2, region: 'us-west', zone: 'z1', weight: 1, eps: eps(4, 1) },
  );
  const istio: Partial<Cluster> = {
    commonLbConfig: { localityWeightedLbConfig: {}, healthyPanicThreshold: { value: 0 } },
  };
  for (const policy of POLICIES) {
    const { clb } = make(policy, assignment, istio);
    const byId = (id: string): LbHost => clb.hostSet.get(id)!;
    assert.equal(share(counts(clb, 2000), 1), 1, policy);
    byId('10.1.0.1:80').ejected = true;
    // One of two local hosts left: health 70 → 30% to the same region.
    const m = counts(clb, N);
    assert.ok(Math.abs(share(m, 1) - 0.7) < PRIORITY_TOLERANCE, `${policy} ${share(m, 1)}`);
    assert.ok(Math.abs(share(m, 2) - 0.3) < PRIORITY_TOLERANCE);
    byId('10.1.0.2:80').ejected = true;
    byId('10.2.0.1:80').ejected = true;
    byId('10.2.0.2:80').ejected = true;
    // Both remote localities share P2 by their weights.
    const remote = counts(clb, N);
    assert.ok(
      Math.abs(share(remote, 3) - 0.5) < PRIORITY_TOLERANCE,
      `${policy} ${share(remote, 3)}`,
    );
    assert.equal(share(remote, 3) + share(remote, 4), 1);
    for (const h of clb.hosts) h.ejected = true;
    assert.deepEqual([...counts(clb, 20).keys()], ['none'], `${policy}: panic disabled → none`);
  }
});
