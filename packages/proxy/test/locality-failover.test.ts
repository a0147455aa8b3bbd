// Locality failover over real sockets, through the proxy's router: an EDS cluster shaped like
// the control plane's output for Istio's localityLbSetting with outlier detection (the local
// locality at priority 0, a remote one at priority 1, locality weights, panic threshold 0).
// Traffic stays on P0 while it is healthy, spills to P1 as consecutive 5xx eject P0's hosts
// (health × 1.4 per Envoy's priority levels), fails over completely when P0 is all ejected, and
// comes back once the ejections expire — outlier detection on an injected clock, no sleeps.
import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { ManualTimers } from '@trellis/core';
import type { Cluster, ClusterLoadAssignment, LocalityLbEndpoints } from '@trellis/envoy';
import { HttpConnectionManagerImpl } from '../src/http/index.js';
import { ClusterManager } from '../src/upstream/index.js';
import { seededRandom } from '../src/upstream/lb/index.js';
import {
  FakeStats,
  edsCluster,
  hcmConfig,
  proxyConfig,
  request,
  simpleRoutes,
  startH1Backend,
  type Backend,
} from './http-fixtures.js';

const CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';

/** A backend answering 200 with its name, or 503 while `failing`. */
interface Named {
  readonly name: string;
  readonly backend: Backend;
  failing: boolean;
}

async function named(name: string): Promise<Named> {
  const n: { name: string; backend?: Backend; failing: boolean } = { name, failing: false };
  n.backend = await startH1Backend((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('x-backend', name);
      if (n.failing) res.writeHead(503).end('down');
      else res.end(name);
    });
  });
  return n as Named;
}

function locality(
  priority: number,
  region: string,
  zone: string,
  backends: readonly Named[],
): LocalityLbEndpoints {
  return {
    locality: { region, zone },
    loadBalancingWeight: 1,
    priority,
    lbEndpoints: backends.map((b) => ({
      endpoint: {
        address: { socketAddress: { address: '127.0.0.1', portValue: b.backend.port } },
      },
      healthStatus: 'HEALTHY' as const,
    })),
  };
}

interface Harness {
  readonly port: number;
  readonly cm: ClusterManager;
  readonly stats: FakeStats;
  readonly timers: ManualTimers;
  close(): Promise<void>;
}

/** ClusterManager (seeded randomness, manual outlier detection clock) + HCM on port 0. */
async function startHarness(cluster: Cluster, cla: ClusterLoadAssignment): Promise<Harness> {
  const stats = new FakeStats();
  const timers = new ManualTimers();
  const cm = new ClusterManager({ stats, random: seededRandom(11), timers });
  const config = proxyConfig([cluster], [cla], [simpleRoutes(CLUSTER)]);
  const result = await cm.update(config);
  assert.deepEqual(result.errors, []);
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
    hcm.handleConnection(socket, { listenerName: 'locality_listener', direction: 'outbound' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    cm,
    stats,
    timers,
    close: () =>
      new Promise<void>((r) => {
        hcm.close();
        cm.close();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** `n` sequential requests: the answering backend (or the status when not 200) of each. */
async function send(port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(port, { path: `/r${i}` });
    out.push(res.status === 200 ? String(res.headers['x-backend']) : String(res.status));
  }
  return out;
}

const tally = (xs: readonly string[]): Record<string, number> => {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
};

test('real sockets: P0 (local locality) while healthy, P1 (remote) once outlier detection ejects P0, and back', async () => {
  const a1 = await named('local-a1');
  const a2 = await named('local-a2');
  const b = await named('remote-b');
  const cluster = edsCluster(CLUSTER, {
    lbPolicy: 'ROUND_ROBIN',
    // What the control plane sets for outlier detection with locality failover.
    commonLbConfig: { localityWeightedLbConfig: {}, healthyPanicThreshold: { value: 0 } },
    outlierDetection: {
      consecutive5xx: 2,
      interval: '10s',
      baseEjectionTime: '30s',
      maxEjectionPercent: 100,
      enforcingConsecutive5xx: 100,
    },
  });
  const cla: ClusterLoadAssignment = {
    clusterName: CLUSTER,
    endpoints: [locality(0, 'us-east', 'zone1', [a1, a2]), locality(1, 'us-west', 'zone1', [b])],
  };
  const h = await startHarness(cluster, cla);
  const impl = h.cm.get(CLUSTER);
  assert.ok(impl);
  const stat = (name: string): number | undefined =>
    h.stats.values.get(`cluster.${CLUSTER}.${name}`)?.value;
  try {
    // Healthy: round robin over the local locality only.
    assert.deepEqual(tally(await send(h.port, 20)), { 'local-a1': 10, 'local-a2': 10 });
    assert.deepEqual(impl.loadBalancer.priorityLoad().healthy, [100, 0]);

    // a1 starts failing: its two consecutive 503s eject it. Half of P0 left → health 70:
    // 70% stays local (on a2), 30% spills to the remote locality.
    a1.failing = true;
    const failing = await send(h.port, 6);
    assert.equal(failing.filter((s) => s === '503').length, 2, failing.join(','));
    assert.equal(stat('outlier_detection.ejections_enforced_consecutive_5xx'), 1);
    assert.deepEqual(impl.loadBalancer.priorityLoad().healthy, [70, 30]);
    const spill = tally(await send(h.port, 200));
    assert.equal(spill['503'], undefined, 'the ejected host gets nothing');
    assert.equal((spill['local-a2'] ?? 0) + (spill['remote-b'] ?? 0), 200);
    assert.ok(Math.abs((spill['remote-b'] ?? 0) / 200 - 0.3) < 0.08, JSON.stringify(spill));

    // a2 fails too: once ejected, P0 has no healthy host and everything fails over to P1.
    a2.failing = true;
    let before = 0;
    for (let i = 0; i < 50 && impl.loadBalancer.priorityLoad().healthy[1] !== 100; i++) {
      const [r] = await send(h.port, 1);
      if (r === '503') before++;
    }
    assert.equal(before, 2, 'a2 answers two 503s before it is ejected');
    assert.deepEqual(impl.loadBalancer.priorityLoad().healthy, [0, 100]);
    assert.deepEqual(impl.loadBalancer.priorityLoad().panic, [false, false]);
    assert.deepEqual(tally(await send(h.port, 20)), { 'remote-b': 20 });
    assert.equal(stat('outlier_detection.ejections_active'), 2);
    assert.equal(stat('membership_healthy'), 1);

    // The local hosts recover; after the base ejection time (30s, seen at the interval check)
    // they are back and the traffic returns to the local locality.
    a1.failing = false;
    a2.failing = false;
    h.timers.advance(20_000);
    assert.deepEqual(tally(await send(h.port, 4)), { 'remote-b': 4 }, 'still ejected at 20s');
    h.timers.advance(20_000);
    assert.equal(stat('outlier_detection.ejections_active'), 0);
    assert.deepEqual(impl.loadBalancer.priorityLoad().healthy, [100, 0]);
    assert.deepEqual(tally(await send(h.port, 20)), { 'local-a1': 10, 'local-a2': 10 });
  } finally {
    await h.close();
    for (const n of [a1, a2, b]) await n.backend.close();
  }
});

test('real sockets: with every host ejected and panic disabled the router answers 503 UH', async () => {
  const a = await named('local-a');
  const b = await named('remote-b');
  const cluster = edsCluster(CLUSTER, {
    commonLbConfig: { localityWeightedLbConfig: {}, healthyPanicThreshold: { value: 0 } },
    outlierDetection: {
      consecutive5xx: 1,
      interval: '10s',
      baseEjectionTime: '30s',
      maxEjectionPercent: 100,
    },
  });
  const h = await startHarness(cluster, {
    clusterName: CLUSTER,
    endpoints: [locality(0, 'us-east', 'zone1', [a]), locality(1, 'us-west', 'zone1', [b])],
  });
  try {
    a.failing = true;
    b.failing = true;
    // a fails (ejected), then b takes over and fails (ejected): nothing is left.
    assert.deepEqual(await send(h.port, 2), ['503', '503']);
    assert.equal(
      h.stats.values.get(`cluster.${CLUSTER}.outlier_detection.ejections_active`)?.value,
      2,
    );
    const res = await request(h.port, { path: '/none' });
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-backend'], undefined, 'no backend was reached');
    assert.match(res.body, /no healthy upstream/);
    assert.equal(h.stats.values.get(`cluster.${CLUSTER}.upstream_cx_none_healthy`)?.value, 1);
  } finally {
    await h.close();
    for (const n of [a, b]) await n.backend.close();
  }
});
