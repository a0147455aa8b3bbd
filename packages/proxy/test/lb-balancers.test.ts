// The balancers: weighted round robin (exact proportions per cycle), least request (power of
// two choices, weighted active-request bias), random, ring hash and Maglev (consistency,
// minimal disruption, weights), retry host predicates (`avoid`), slow start, and config checks.
// All randomness is seeded; no timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, ClusterLoadAssignment } from '@trellis/envoy';
import { errorCode } from '@trellis/core';
import {
  createLoadBalancer,
  lbConfigProblems,
  seededRandom,
  xxHash64,
  type LbHost,
  type Random,
} from '../src/upstream/lb/index.js';

interface Ep {
  readonly ip: string;
  readonly weight?: number;
  readonly hashKey?: string;
}

function cla(eps: readonly Ep[], priority = 0): ClusterLoadAssignment {
  return {
    clusterName: 'c',
    endpoints: [
      {
        priority,
        lbEndpoints: eps.map((e) => ({
          endpoint: { address: { socketAddress: { address: e.ip, portValue: 80 } } },
          healthStatus: 'HEALTHY' as const,
          ...(e.weight !== undefined ? { loadBalancingWeight: e.weight } : {}),
          ...(e.hashKey !== undefined
            ? { metadata: { filterMetadata: { 'envoy.lb': { hash_key: e.hashKey } } } }
            : {}),
        })),
      },
    ],
  };
}

const hostsN = (n: number, weight?: (i: number) => number): Ep[] =>
  Array.from({ length: n }, (_, i) => ({
    ip: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    ...(weight ? { weight: weight(i) } : {}),
  }));

const cluster = (extra: Partial<Cluster> = {}): Cluster => ({ name: 'c', type: 'EDS', ...extra });

/** Randomness whose first value (the balancer's start offset) is 0, then seeded. */
function zeroStart(seed: number): Random {
  const r = seededRandom(seed);
  let first = true;
  return {
    nextUint32: () => {
      if (first) {
        first = false;
        return 0;
      }
      return r.nextUint32();
    },
  };
}

function tally(hosts: (LbHost | undefined)[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const h of hosts) m.set(h?.id ?? 'none', (m.get(h?.id ?? 'none') ?? 0) + 1);
  return m;
}

const keyHash = (i: number): bigint => xxHash64(`request-key-${i}`);

// ---------------------------------------------------------------------------------------------
// ROUND_ROBIN

test('round robin with equal weights rotates over every host', () => {
  const clb = createLoadBalancer(cluster(), cla(hostsN(5)), { random: seededRandom(1) });
  const first = Array.from({ length: 5 }, () => clb.lb.choose({})!.id);
  assert.equal(new Set(first).size, 5);
  for (let cycle = 0; cycle < 20; cycle++) {
    assert.deepEqual(
      Array.from({ length: 5 }, () => clb.lb.choose({})!.id),
      first,
    );
  }
});

test('weighted round robin gives exact proportions over every cycle, smoothly', () => {
  const weights = [1, 2, 3, 4];
  const clb = createLoadBalancer(cluster(), cla(hostsN(4, (i) => weights[i]!)), {
    random: zeroStart(7),
  });
  const ids = clb.hosts.map((h) => h.id);
  for (let cycle = 0; cycle < 200; cycle++) {
    const c = tally(Array.from({ length: 10 }, () => clb.lb.choose({})));
    assert.deepEqual(
      ids.map((id) => c.get(id) ?? 0),
      weights,
      `cycle ${cycle}`,
    );
  }
  // Smooth (EDF): the weight-4 host never takes more than 2 picks in a row.
  const seq = Array.from({ length: 100 }, () => clb.lb.choose({})!.id);
  let run = 0;
  for (let i = 0; i < seq.length; i++) {
    run = i > 0 && seq[i] === seq[i - 1] ? run + 1 : 1;
    assert.ok(run <= 2, `run of ${run} at ${i}`);
  }
  // From a random start the totals stay within one pick of the weights.
  const random = createLoadBalancer(cluster(), cla(hostsN(4, (i) => weights[i]!)), {
    random: seededRandom(99),
  });
  const c = tally(Array.from({ length: 1000 }, () => random.lb.choose({})));
  weights.forEach((w, i) => assert.ok(Math.abs(c.get(ids[i]!)! - w * 100) <= 1));
});

test('round robin skips unhealthy hosts and picks up EDS changes', () => {
  const clb = createLoadBalancer(cluster(), cla(hostsN(4)), { random: seededRandom(3) });
  clb.hosts[1]!.healthy = false;
  const c = tally(Array.from({ length: 300 }, () => clb.lb.choose({})));
  assert.deepEqual([...c.values()], [100, 100, 100]);
  assert.equal(c.get(clb.hosts[1]!.id), undefined);
  clb.update(cla([{ ip: '10.9.9.9' }]));
  assert.equal(clb.lb.choose({})?.id, '10.9.9.9:80');
  clb.update(cla([]));
  assert.equal(clb.lb.choose({}), undefined);
});

// ---------------------------------------------------------------------------------------------
// LEAST_REQUEST

test('least request (P2C) prefers idle hosts', () => {
  const lr = cluster({ lbPolicy: 'LEAST_REQUEST' });
  const clb = createLoadBalancer(lr, cla(hostsN(4)), { random: seededRandom(5) });
  const [idle, ...busy] = clb.hosts;
  for (const h of busy) h.activeRequests = 10;
  const n = 40000;
  const c = tally(Array.from({ length: n }, () => clb.lb.choose({})));
  // Two samples with replacement: the idle host wins unless both miss it: 1 - (3/4)^2 = 7/16.
  assert.ok(Math.abs(c.get(idle!.id)! / n - 7 / 16) < 0.01, String(c.get(idle!.id)));
  // With 2 hosts the busier one is chosen only when both samples are it: 1/4.
  const two = createLoadBalancer(lr, cla(hostsN(2)), { random: seededRandom(6) });
  two.hosts[0]!.activeRequests = 3;
  const c2 = tally(Array.from({ length: n }, () => two.lb.choose({})));
  assert.ok(Math.abs(c2.get(two.hosts[0]!.id)! / n - 0.25) < 0.01);
  // choice_count 4 makes the idle host win more often: 1 - (3/4)^4.
  const four = createLoadBalancer(
    cluster({ lbPolicy: 'LEAST_REQUEST', leastRequestLbConfig: { choiceCount: 4 } }),
    cla(hostsN(4)),
    { random: seededRandom(7) },
  );
  for (const h of four.hosts.slice(1)) h.activeRequests = 1;
  const c4 = tally(Array.from({ length: n }, () => four.lb.choose({})));
  assert.ok(Math.abs(c4.get(four.hosts[0]!.id)! / n - (1 - (3 / 4) ** 4)) < 0.01);
});

test('least request keeps load even when requests pile up', () => {
  // Requests that are never completed: P2C keeps the spread of in-flight counts small.
  const clb = createLoadBalancer(cluster({ lbPolicy: 'LEAST_REQUEST' }), cla(hostsN(10)), {
    random: seededRandom(8),
  });
  for (let i = 0; i < 5000; i++) clb.lb.choose({})!.activeRequests++;
  const active = clb.hosts.map((h) => h.activeRequests);
  assert.ok(Math.max(...active) - Math.min(...active) <= 10, active.join(','));
});

test('weighted least request divides weights by (active + 1)^bias', () => {
  const eps = hostsN(2, (i) => (i === 0 ? 1 : 3));
  const clb = createLoadBalancer(cluster({ lbPolicy: 'LEAST_REQUEST' }), cla(eps), {
    random: seededRandom(9),
  });
  const [a, b] = clb.hosts;
  const n = 12000;
  let c = tally(Array.from({ length: n }, () => clb.lb.choose({})));
  assert.ok(Math.abs(c.get(b!.id)! / n - 0.75) < 0.01);
  // b has 5 requests in flight: its weight becomes 3 / 6 = 0.5 against a's 1.
  b!.activeRequests = 5;
  c = tally(Array.from({ length: n }, () => clb.lb.choose({})));
  assert.ok(Math.abs(c.get(a!.id)! / n - 2 / 3) < 0.01, String(c.get(a!.id)));
  // active_request_bias 0: plain weighted round robin.
  const noBias = createLoadBalancer(
    cluster({
      lbPolicy: 'LEAST_REQUEST',
      leastRequestLbConfig: { activeRequestBias: { defaultValue: 0 } } as never,
    }),
    cla(eps),
    { random: seededRandom(9) },
  );
  noBias.hosts[1]!.activeRequests = 5;
  c = tally(Array.from({ length: n }, () => noBias.lb.choose({})));
  assert.ok(Math.abs(c.get(noBias.hosts[1]!.id)! / n - 0.75) < 0.01);
});

// ---------------------------------------------------------------------------------------------
// RANDOM

test('random spreads uniformly (weights are ignored, as in Envoy)', () => {
  const clb = createLoadBalancer(cluster({ lbPolicy: 'RANDOM' }), cla(hostsN(4, (i) => i + 1)), {
    random: seededRandom(10),
  });
  const n = 40000;
  const c = tally(Array.from({ length: n }, () => clb.lb.choose({})));
  for (const h of clb.hosts)
    assert.ok(Math.abs(c.get(h.id)! - n / 4) < n * 0.0125, String(c.get(h.id)));
});

// ---------------------------------------------------------------------------------------------
// avoid (retry host predicate)

test('avoid is honoured by every policy, then given up when nothing else is left', () => {
  for (const lbPolicy of [
    'ROUND_ROBIN',
    'LEAST_REQUEST',
    'RANDOM',
    'RING_HASH',
    'MAGLEV',
  ] as const) {
    const clb = createLoadBalancer(cluster({ lbPolicy }), cla(hostsN(3)), {
      random: seededRandom(11),
    });
    let avoidedPicks = 0;
    for (let i = 0; i < 300; i++) {
      const hash = keyHash(i);
      const first = clb.lb.choose({ hash })!;
      const retry = clb.lb.choose({ hash, avoid: (h) => h === first });
      assert.ok(retry, lbPolicy);
      if (retry === first) avoidedPicks++;
    }
    // Ring hash may land on the same host at each of its 6 attempts; others essentially never.
    assert.ok(avoidedPicks <= 3, `${lbPolicy}: ${avoidedPicks} retries went back to the host`);
    const everything = clb.lb.choose({ hash: 1n, avoid: () => true });
    assert.ok(everything !== undefined, `${lbPolicy}: gives up avoiding rather than failing`);
  }
  // With hostSelectionRetryCount 0 the first choice stands.
  const rr = createLoadBalancer(cluster(), cla(hostsN(1)), { random: seededRandom(1) });
  const only = rr.hosts[0]!;
  assert.equal(rr.lb.choose({ avoid: (h) => h === only, hostSelectionRetryCount: 0 }), only);
});

// ---------------------------------------------------------------------------------------------
// RING_HASH and MAGLEV

for (const lbPolicy of ['RING_HASH', 'MAGLEV'] as const) {
  test(`${lbPolicy}: the same key always maps to the same host, in every instance`, () => {
    const a = createLoadBalancer(cluster({ lbPolicy }), cla(hostsN(8)), {
      random: seededRandom(1),
    });
    const b = createLoadBalancer(cluster({ lbPolicy }), cla([...hostsN(8)].reverse()), {
      random: seededRandom(2),
    });
    for (let i = 0; i < 2000; i++) {
      const hash = keyHash(i);
      const h = a.lb.choose({ hash })!;
      assert.equal(a.lb.choose({ hash }), h);
      assert.equal(b.lb.choose({ hash })!.id, h.id, 'independent of order and randomness');
    }
    // Without a hash a random host is used.
    assert.ok(a.lb.choose({}));
  });

  test(`${lbPolicy}: removing or adding one of N hosts remaps few keys`, () => {
    // Maglev moves about 1/N. Envoy's ring hash also re-scales the ring so the least-weighted
    // host keeps ceil(minimum_ring_size × weight) points: with one host fewer every host gets
    // more points ("ip:port_103" ... "_113" for 10 → 9 hosts), which moves another ~1/N of the
    // keys between remaining hosts. We keep Envoy's ring exactly (the same keys land on the
    // same hosts as with Envoy sidecars), so the bound for ring hash is about 2/N.
    const n = 10;
    const keys = 20000;
    const bound = lbPolicy === 'MAGLEV' ? 1 / n + 0.03 : 2 / n + 0.03;
    const othersBound = lbPolicy === 'MAGLEV' ? 0.03 : 1 / n + 0.02;
    const before = createLoadBalancer(cluster({ lbPolicy }), cla(hostsN(n)));
    const map = Array.from({ length: keys }, (_, i) => before.lb.choose({ hash: keyHash(i) })!.id);
    const removedId = before.hosts[3]!.id;
    const after = createLoadBalancer(
      cluster({ lbPolicy }),
      cla(hostsN(n).filter((_, i) => i !== 3)),
    );
    let moved = 0;
    let movedFromOthers = 0;
    for (let i = 0; i < keys; i++) {
      const now = after.lb.choose({ hash: keyHash(i) })!.id;
      if (now !== map[i]) {
        moved++;
        if (map[i] !== removedId) movedFromOthers++;
      }
    }
    const onRemoved = map.filter((id) => id === removedId).length;
    assert.ok(Math.abs(onRemoved / keys - 1 / n) < 0.03, `${onRemoved} keys on the removed host`);
    assert.ok(moved >= onRemoved, 'the removed host’s keys all moved');
    assert.ok(moved / keys < bound, `${moved} of ${keys} keys moved`);
    assert.ok(
      movedFromOthers / keys < othersBound,
      `${movedFromOthers} keys of remaining hosts moved`,
    );

    // Adding an 11th host: it takes about 1/11 of the keys.
    const grown = createLoadBalancer(cluster({ lbPolicy }), cla(hostsN(n + 1)));
    const newId = grown.hosts[n]!.id;
    let taken = 0;
    let changed = 0;
    for (let i = 0; i < keys; i++) {
      const now = grown.lb.choose({ hash: keyHash(i) })!.id;
      if (now === newId) taken++;
      if (now !== map[i]) changed++;
    }
    assert.ok(Math.abs(taken / keys - 1 / (n + 1)) < 0.03, `${taken} keys went to the new host`);
    assert.ok(changed / keys < (lbPolicy === 'MAGLEV' ? 1 / (n + 1) + 0.03 : 2 / (n + 1) + 0.03));

    // The same through an EDS update of one balancer.
    before.update(cla(hostsN(n).filter((_, i) => i !== 3)));
    for (let i = 0; i < 500; i++) {
      assert.equal(
        before.lb.choose({ hash: keyHash(i) })!.id,
        after.lb.choose({ hash: keyHash(i) })!.id,
      );
    }
  });

  test(`${lbPolicy}: keys spread by weight`, () => {
    const weights = [1, 2, 3, 4];
    const clb = createLoadBalancer(
      cluster({
        lbPolicy,
        ...(lbPolicy === 'RING_HASH' ? { ringHashLbConfig: { minimumRingSize: '4096' } } : {}),
      }),
      cla(hostsN(4, (i) => weights[i]!)),
    );
    const keys = 40000;
    const c = tally(Array.from({ length: keys }, (_, i) => clb.lb.choose({ hash: keyHash(i) })));
    const tolerance = lbPolicy === 'MAGLEV' ? 0.05 : 0.15;
    clb.hosts.forEach((h, i) => {
      const expected = (keys * weights[i]!) / 10;
      const got = c.get(h.id)!;
      assert.ok(Math.abs(got - expected) / expected < tolerance, `${h.id}: ${got} vs ${expected}`);
    });
  });

  test(`${lbPolicy}: hosts placed by envoy.lb hash_key metadata when present`, () => {
    const a = createLoadBalancer(
      cluster({ lbPolicy }),
      cla(hostsN(5).map((e, i) => ({ ...e, hashKey: `pod-${i}` }))),
    );
    const b = createLoadBalancer(
      cluster({ lbPolicy }),
      cla(hostsN(5).map((_, i) => ({ ip: `192.168.1.${i + 1}`, hashKey: `pod-${i}` }))),
    );
    for (let i = 0; i < 500; i++) {
      const ha = a.lb.choose({ hash: keyHash(i) })!;
      const hb = b.lb.choose({ hash: keyHash(i) })!;
      assert.equal(a.hosts.indexOf(ha as never), b.hosts.indexOf(hb as never));
    }
  });

  test(`${lbPolicy}: unhealthy P0 sends hashed traffic to P1; nothing healthy → undefined`, () => {
    const assignment: ClusterLoadAssignment = {
      endpoints: [...cla(hostsN(2)).endpoints!, ...cla([{ ip: '10.1.1.1' }], 1).endpoints!],
    };
    const clb = createLoadBalancer(
      cluster({ lbPolicy, commonLbConfig: { healthyPanicThreshold: { value: 0 } } }),
      assignment,
    );
    for (const h of clb.hosts.slice(0, 2)) h.ejected = true;
    for (let i = 0; i < 100; i++)
      assert.equal(clb.lb.choose({ hash: keyHash(i) })!.id, '10.1.1.1:80');
    clb.hosts[2]!.ejected = true;
    assert.equal(clb.lb.choose({ hash: 5n }), undefined);
  });
}

test('ring hash: points are xxHash64("ip:port_i"), ceil(min weight × minimum) per host, capped', () => {
  // A request whose hash is exactly a host's point goes to that host.
  const ring = createLoadBalancer(cluster({ lbPolicy: 'RING_HASH' }), cla(hostsN(3)));
  for (const h of ring.hosts) {
    for (const i of [0, 1, 341]) {
      assert.equal(ring.lb.choose({ hash: xxHash64(`${h.id}_${i}`) }), h, `${h.id}_${i}`);
    }
  }
  // With a maximum ring size of 3 and 6 equal hosts the scale is 3, 0.5 point per host: the
  // running sums give points to hosts 1, 3 and 5 only.
  const tiny = createLoadBalancer(
    cluster({
      lbPolicy: 'RING_HASH',
      ringHashLbConfig: { minimumRingSize: '1', maximumRingSize: '3' },
    }),
    cla(hostsN(6)),
  );
  const owner = (i: number): string | undefined =>
    tiny.lb.choose({ hash: xxHash64(`10.0.0.${i}:80_0`) })?.id;
  assert.deepEqual([1, 3, 5].map(owner), ['10.0.0.1:80', '10.0.0.3:80', '10.0.0.5:80']);
  assert.deepEqual(
    [2, 4, 6].map((i) => owner(i) === `10.0.0.${i}:80`),
    [false, false, false],
  );
});

test('maglev table size must be prime; unsupported settings are reported with field paths', () => {
  assert.throws(
    () =>
      createLoadBalancer(cluster({ lbPolicy: 'MAGLEV', maglevLbConfig: { tableSize: '65536' } })),
    (err: unknown) => errorCode(err) === 'TRELLIS_INVALID',
  );
  assert.deepEqual(
    lbConfigProblems(cluster({ lbPolicy: 'MAGLEV', maglevLbConfig: { tableSize: '251' } })),
    [],
  );
  const small = createLoadBalancer(
    cluster({ lbPolicy: 'MAGLEV', maglevLbConfig: { tableSize: '251' } }),
    cla(hostsN(3)),
  );
  assert.equal(
    new Set(Array.from({ length: 1000 }, (_, i) => small.lb.choose({ hash: keyHash(i) })!.id)).size,
    3,
  );
  assert.deepEqual(
    lbConfigProblems(
      cluster({
        lbPolicy: 'RING_HASH',
        ringHashLbConfig: {
          minimumRingSize: '4096',
          maximumRingSize: '1024',
          hashFunction: 'MURMUR_HASH_2',
        },
        commonLbConfig: { healthyPanicThreshold: { value: 150 } },
      }),
    ),
    [
      'common_lb_config.healthy_panic_threshold: must be between 0 and 100',
      'ring_hash_lb_config: minimum_ring_size (4096) > maximum_ring_size (1024)',
      'ring_hash_lb_config.hash_function: MURMUR_HASH_2 is not supported (use XX_HASH)',
    ],
  );
  assert.deepEqual(
    lbConfigProblems(
      cluster({ lbPolicy: 'LEAST_REQUEST', leastRequestLbConfig: { choiceCount: 1 } }),
    ),
    ['least_request_lb_config.choice_count: must be at least 2'],
  );
});

test('load_balancing_policy extensions select the same balancers', () => {
  const policy = (type: string, cfg: object = {}): Cluster =>
    cluster({
      lbPolicy: 'LOAD_BALANCING_POLICY_CONFIG',
      loadBalancingPolicy: {
        policies: [
          {
            typedExtensionConfig: {
              name: 'x',
              typedConfig: {
                '@type':
                  'type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin',
              },
            },
          },
          {
            typedExtensionConfig: {
              name: 'y',
              typedConfig: {
                '@type': `type.googleapis.com/envoy.extensions.load_balancing_policies.${type}`,
                ...cfg,
              },
            },
          },
        ],
      },
    });
  assert.equal(
    createLoadBalancer(policy('maglev.v3.Maglev', { tableSize: '251' })).policy,
    'MAGLEV',
  );
  assert.equal(createLoadBalancer(policy('ring_hash.v3.RingHash')).policy, 'RING_HASH');
  const lr = createLoadBalancer(policy('least_request.v3.LeastRequest', { choiceCount: 3 }));
  assert.deepEqual([lr.policy, lr.settings.choiceCount], ['LEAST_REQUEST', 3]);
  assert.equal(createLoadBalancer(policy('random.v3.Random')).policy, 'RANDOM');
  assert.deepEqual(lbConfigProblems(policy('nope.v3.Nope')), [
    'load_balancing_policy.policies: no supported policy (got type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin, type.googleapis.com/envoy.extensions.load_balancing_policies.nope.v3.Nope)',
  ]);
});

test('slow start ramps a new host up over the window (injected clock)', () => {
  let now = 0;
  const c = cluster({
    lbPolicy: 'ROUND_ROBIN',
    roundRobinLbConfig: {
      slowStartConfig: { slowStartWindow: '10s', minWeightPercent: { value: 10 } },
    },
  } as Partial<Cluster>);
  const clb = createLoadBalancer(c, cla(hostsN(2)), { random: seededRandom(1), now: () => now });
  now = 20_000; // both hosts are past their window
  clb.update(cla([...hostsN(2), { ip: '10.5.5.5' }])); // a new host at t = 20 s
  const share = (): number => {
    const t = tally(Array.from({ length: 2100 }, () => clb.lb.choose({})));
    return t.get('10.5.5.5:80')! / 2100;
  };
  now = 21_000; // 10% into the window: weight 0.1 against 1 and 1
  assert.ok(Math.abs(share() - 0.1 / 2.1) < 0.01);
  now = 25_000; // halfway: weight 0.5
  assert.ok(Math.abs(share() - 0.5 / 2.5) < 0.02);
  now = 40_000; // done: equal shares
  assert.ok(Math.abs(share() - 1 / 3) < 0.01);
});

test('a changed Cluster keeps the hosts of the previous balancer', () => {
  const first = createLoadBalancer(cluster(), cla(hostsN(3)), { random: seededRandom(1) });
  first.hosts[0]!.activeRequests = 4;
  first.hosts[1]!.ejected = true;
  const second = createLoadBalancer(cluster({ lbPolicy: 'LEAST_REQUEST' }), undefined, {
    hostSet: first.hostSet,
    random: seededRandom(2),
  });
  assert.equal(second.hosts[0], first.hosts[0]);
  assert.equal(second.hosts[0]!.activeRequests, 4);
  const c = tally(Array.from({ length: 500 }, () => second.lb.choose({})));
  assert.equal(c.get(first.hosts[1]!.id), undefined);
});
