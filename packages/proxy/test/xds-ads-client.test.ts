// The ADS client against a scriptable ADS server on a real socket: subscriptions, ACK/NACK
// with versions and nonces, Envoy's warming order, malformed responses, reconnection with
// backoff and resubscription, last good configuration kept.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualTimers, type TimerApi } from '@trellis/core';
import {
  CONFIG_TYPE_URL,
  TYPE_URL,
  encodeResource,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
} from '@trellis/envoy';
import {
  AdsClient,
  JitteredBackoff,
  buildBootstrap,
  edsServiceName,
  rdsNames,
  type AdsClientOptions,
  type ConfigType,
  type ProxyConfig,
} from '../src/xds/index.js';
import type { Counter, Gauge, StatsScope } from '../src/observability/stats-api.js';
import { FakeAdsServer, deltaResponse, sotwResponse, waitFor } from './xds-fake-ads.js';

const CDS = TYPE_URL.Cluster;
const EDS = TYPE_URL.ClusterLoadAssignment;
const LDS = TYPE_URL.Listener;
const RDS = TYPE_URL.RouteConfiguration;

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

function edsCluster(name: string, initialFetchTimeout?: string): object {
  return {
    name,
    type: 'EDS',
    connectTimeout: '1s',
    edsClusterConfig: {
      edsConfig: {
        ads: {},
        resourceApiVersion: 'V3',
        ...(initialFetchTimeout !== undefined ? { initialFetchTimeout } : {}),
      },
      serviceName: name,
    },
  };
}

const blackHole = { name: 'BlackHoleCluster', type: 'STATIC', connectTimeout: '10s' };

function cla(name: string, ip: string): object {
  return {
    clusterName: name,
    endpoints: [
      {
        lbEndpoints: [
          { endpoint: { address: { socketAddress: { address: ip, portValue: 9080 } } } },
        ],
      },
    ],
  };
}

function httpListener(port: number, route: string, extra: object = {}): object {
  return {
    name: `0.0.0.0_${port}`,
    address: { socketAddress: { address: '0.0.0.0', portValue: port } },
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typedConfig: {
              '@type': CONFIG_TYPE_URL.HttpConnectionManager,
              statPrefix: `outbound_0.0.0.0_${port}`,
              rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: route },
              httpFilters: [
                {
                  name: 'envoy.filters.http.router',
                  typedConfig: { '@type': CONFIG_TYPE_URL.Router },
                },
              ],
            },
          },
        ],
      },
    ],
    ...extra,
  };
}

function routeConfig(name: string, cluster: string): object {
  return {
    name,
    virtualHosts: [
      { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] },
    ],
  };
}

interface Seen {
  readonly config: ProxyConfig;
  readonly changed: readonly ConfigType[];
}

/** Envoy's warming invariant: no cluster before its EDS, no listener before its RDS. */
function assertWarm(s: Seen, allowMissing: ReadonlySet<string> = new Set()): void {
  for (const c of s.config.clusters.values()) {
    const n = edsServiceName(c);
    if (n !== undefined && !allowMissing.has(n))
      assert.ok(s.config.endpoints.has(n), `cluster ${c.name ?? ''} applied before its EDS "${n}"`);
  }
  for (const l of s.config.listeners.values())
    for (const n of rdsNames(l))
      if (!allowMissing.has(n))
        assert.ok(s.config.routes.has(n), `listener ${l.name ?? ''} applied before its RDS "${n}"`);
}

/** Timers moved by hand (ManualTimers), recording every delay asked for. */
class RecordingTimers implements TimerApi {
  readonly manual = new ManualTimers();
  readonly delays: number[] = [];
  now(): number {
    return this.manual.now();
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.delays.push(ms);
    return this.manual.setTimeout(fn, ms);
  }
  clearTimeout(h: unknown): void {
    this.manual.clearTimeout(h);
  }
}

async function setup(
  protocol: 'sotw' | 'delta',
  options: Partial<AdsClientOptions> = {},
): Promise<{ server: FakeAdsServer; client: AdsClient; seen: Seen[] }> {
  const server = new FakeAdsServer();
  const port = await server.start();
  const seen: Seen[] = [];
  const client = new AdsClient({
    bootstrap: buildBootstrap({
      ip: '10.1.2.3',
      podName: 'reviews-v1-abc',
      namespace: 'default',
      labels: { app: 'reviews', version: 'v1' },
      xdsAddress: `127.0.0.1:${port}`,
    }),
    protocol,
    onConfig: (config, changed) => seen.push({ config, changed }),
    backoff: { baseMs: 20, maxMs: 200 },
    ...options,
  });
  cleanups.push(
    () => client.close(),
    () => server.stop(),
  );
  client.start();
  return { server, client, seen };
}

test('SotW: subscriptions, ACKs with version and nonce, Envoy warming order', async () => {
  const { server, client, seen } = await setup('sotw');
  const s = await server.sotwStream(0);

  const cdsReq = await s.next('initial CDS request');
  assert.equal(cdsReq.typeUrl, CDS);
  assert.equal(
    cdsReq.node?.id,
    'sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local',
  );
  assert.equal(cdsReq.node?.metadata?.NAMESPACE, 'default');
  assert.equal(cdsReq.resourceNames, undefined); // wildcard
  assert.equal(cdsReq.responseNonce, undefined);
  const ldsReq = await s.next('initial LDS request');
  assert.equal(ldsReq.typeUrl, LDS);
  assert.equal(ldsReq.node, undefined, 'the node goes on the first request only');

  s.send(sotwResponse(CDS, 'c1', 'n1', [edsCluster('outbound|9080||reviews'), blackHole]));
  const ack = await s.take((r) => r.typeUrl === CDS, 'CDS ACK');
  assert.deepEqual(
    { v: ack.versionInfo, n: ack.responseNonce, e: ack.errorDetail },
    { v: 'c1', n: 'n1', e: undefined },
  );
  const edsReq = await s.take((r) => r.typeUrl === EDS, 'EDS subscription');
  assert.deepEqual(edsReq.resourceNames, ['outbound|9080||reviews']);

  // The clusters warm: nothing is applied until the EDS of the new EDS cluster arrives.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 0);
  assert.deepEqual(client.status().types.clusters.warmingOn, ['outbound|9080||reviews']);
  // The whole update waits (applied atomically), the static cluster with it.
  assert.deepEqual([...client.warming().clusters.keys()].sort(), [
    'BlackHoleCluster',
    'outbound|9080||reviews',
  ]);
  assert.equal(client.status().types.clusters.version, 'c1');
  assert.equal(client.status().types.clusters.appliedVersion, '');

  s.send(sotwResponse(EDS, 'e1', 'n2', [cla('outbound|9080||reviews', '10.0.0.7')]));
  const edsAck = await s.take((r) => r.typeUrl === EDS, 'EDS ACK');
  assert.deepEqual([edsAck.versionInfo, edsAck.responseNonce], ['e1', 'n2']);
  assert.deepEqual(edsAck.resourceNames, ['outbound|9080||reviews']);
  await waitFor(() => seen.length === 1, 'clusters applied');
  assert.deepEqual([...(seen[0]?.changed ?? [])].sort(), ['clusters', 'endpoints']);
  assert.deepEqual([...(seen[0]?.config.clusters.keys() ?? [])].sort(), [
    'BlackHoleCluster',
    'outbound|9080||reviews',
  ]);

  s.send(sotwResponse(LDS, 'l1', 'n3', [httpListener(9080, '9080')]));
  await s.take((r) => r.typeUrl === LDS && r.responseNonce === 'n3', 'LDS ACK');
  const rdsReq = await s.take((r) => r.typeUrl === RDS, 'RDS subscription');
  assert.deepEqual(rdsReq.resourceNames, ['9080']);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 1, 'the listener waits for its RDS');

  const synced = client.whenSynced();
  s.send(sotwResponse(RDS, 'r1', 'n4', [routeConfig('9080', 'outbound|9080||reviews')]));
  const cfg = await synced;
  assert.equal(cfg.listeners.get('0.0.0.0_9080')?.name, '0.0.0.0_9080');
  assert.equal(cfg.routes.get('9080')?.name, '9080');
  assert.deepEqual(cfg.versions, {
    listeners: 'l1',
    routes: 'r1',
    clusters: 'c1',
    endpoints: 'e1',
    secrets: '',
  });
  assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.listeners.get('0.0.0.0_9080')));
  for (const x of seen) assertWarm(x);

  // An EDS update changes only endpoints; unchanged resources keep their identity.
  const before = client.config();
  s.send(sotwResponse(EDS, 'e2', 'n5', [cla('outbound|9080||reviews', '10.0.0.8')]));
  await waitFor(() => client.config() !== before, 'endpoints update');
  const last = seen[seen.length - 1];
  assert.deepEqual(last?.changed, ['endpoints']);
  assert.equal(client.config().clusters, before.clusters);
  assert.equal(client.config().listeners.get('0.0.0.0_9080'), before.listeners.get('0.0.0.0_9080'));
  assert.equal(client.status().connected, true);
  assert.equal(client.status().synced, true);
});

/** A minimal StatsScope recording values by full name. */
function fakeStats(values = new Map<string, number>(), prefix = ''): StatsScope {
  const name = (n: string): string => (prefix === '' ? n : `${prefix}.${n}`);
  const metric = (n: string): Counter & Gauge => ({
    inc: (by = 1) => void values.set(name(n), (values.get(name(n)) ?? 0) + by),
    dec: (by = 1) => void values.set(name(n), (values.get(name(n)) ?? 0) - by),
    set: (v: number) => void values.set(name(n), v),
    get value() {
      return values.get(name(n)) ?? 0;
    },
  });
  return {
    counter: metric,
    gauge: metric,
    histogram: () => ({ record: () => undefined }),
    scope: (p: string) => fakeStats(values, name(p)),
  };
}

test('SotW: a rejected update is NACKed with a precise message and the last good config stays', async () => {
  const stats = new Map<string, number>();
  const { server, client, seen } = await setup('sotw', { stats: fakeStats(stats) });
  const s = await server.sotwStream(0);
  await s.next();
  await s.next();
  s.send(sotwResponse(CDS, 'c1', 'n1', [blackHole]));
  s.send(sotwResponse(LDS, 'l1', 'n2', [httpListener(9080, '9080')]));
  await s.take((r) => r.typeUrl === RDS, 'RDS subscription');
  s.send(sotwResponse(RDS, 'r1', 'n3', [routeConfig('9080', 'BlackHoleCluster')]));
  const good = await client.whenSynced();
  const applied = seen.length;

  // Unsupported field: NACK, version stays l1.
  s.send(sotwResponse(LDS, 'l2', 'n4', [httpListener(9080, '9080', { transparent: true })]));
  const nack = await s.take((r) => r.typeUrl === LDS && r.responseNonce === 'n4', 'LDS NACK');
  assert.equal(nack.versionInfo, 'l1');
  assert.equal(nack.errorDetail?.code, 3);
  assert.equal(
    nack.errorDetail?.message,
    'listener "0.0.0.0_9080": transparent: field Listener.transparent is not implemented by the Trellis proxy',
  );
  const st = client.status().types.listeners;
  assert.equal(st.version, 'l1');
  assert.equal(st.nacks, 1);
  assert.equal(st.lastNack?.version, 'l2');
  assert.equal(st.lastNack?.nonce, 'n4');
  assert.match(st.lastNack?.message ?? '', /transparent/);

  // Undecodable Any.
  s.send({
    typeUrl: CDS,
    versionInfo: 'c2',
    nonce: 'n5',
    resources: [{ typeUrl: CDS, value: new Uint8Array([0x0a, 0x09, 0x41]) }],
  });
  const bad = await s.take((r) => r.typeUrl === CDS && r.responseNonce === 'n5', 'CDS NACK');
  assert.equal(bad.versionInfo, 'c1');
  assert.match(bad.errorDetail?.message ?? '', /^resources\[0\]: cannot decode cluster: /);

  // A resource of the wrong type in a CDS response.
  s.send({
    typeUrl: CDS,
    versionInfo: 'c3',
    nonce: 'n6',
    resources: [encodeResource(LDS, httpListener(80, '80'))],
  });
  const wrong = await s.take((r) => r.typeUrl === CDS && r.responseNonce === 'n6', 'CDS NACK 2');
  assert.equal(
    wrong.errorDetail?.message,
    `resources[0]: has type "${LDS}" in a response of type "${CDS}"`,
  );

  // A type the client never subscribed to (the proxy consumes LDS, RDS, CDS, EDS and SDS).
  const RUNTIME = 'type.googleapis.com/envoy.service.runtime.v3.Runtime';
  s.send({ typeUrl: RUNTIME, versionInfo: 's1', nonce: 'n7', resources: [] });
  const rtds = await s.take((r) => r.responseNonce === 'n7', 'RTDS NACK');
  assert.equal(rtds.typeUrl, RUNTIME);
  assert.match(rtds.errorDetail?.message ?? '', /was not subscribed to/);

  // Duplicate listener addresses.
  s.send(
    sotwResponse(LDS, 'l3', 'n8', [
      httpListener(9080, '9080'),
      { ...httpListener(9080, '9080'), name: 'other' },
    ]),
  );
  const dup = await s.take((r) => r.typeUrl === LDS && r.responseNonce === 'n8', 'LDS NACK 2');
  assert.equal(
    dup.errorDetail?.message,
    'listener "other": address 0.0.0.0:9080 is also used by listener "0.0.0.0_9080"',
  );

  assert.equal(seen.length, applied, 'nothing rejected was applied');
  assert.equal(client.config(), good);

  // The stream is healthy: a good update is still accepted.
  s.send(
    sotwResponse(CDS, 'c4', 'n9', [
      blackHole,
      {
        ...blackHole,
        name: 'PassthroughCluster',
        type: 'ORIGINAL_DST',
        lbPolicy: 'CLUSTER_PROVIDED',
      },
    ]),
  );
  const ok = await s.take((r) => r.typeUrl === CDS && r.responseNonce === 'n9', 'CDS ACK');
  assert.equal(ok.errorDetail, undefined);
  assert.equal(ok.versionInfo, 'c4');
  await waitFor(() => client.config().clusters.has('PassthroughCluster'), 'new clusters');
  assert.equal(client.config().versions.clusters, 'c4');
  assert.equal(client.status().types.clusters.nacks, 2);
  assert.equal(stats.get('control_plane.connected_state'), 1);
  assert.equal(stats.get('cluster_manager.cds.update_attempt'), 4);
  assert.equal(stats.get('cluster_manager.cds.update_success'), 2);
  assert.equal(stats.get('cluster_manager.cds.update_rejected'), 2);
  assert.equal(stats.get('listener_manager.lds.update_rejected'), 2);
});

test('listeners wait for the first clusters, then both apply together', async () => {
  const { server, client, seen } = await setup('delta');
  const s = await server.deltaStream(0);
  await s.next();
  await s.next();
  s.send(deltaResponse(CDS, 'c1', 'n1', [['a', 'va', edsCluster('a')]]));
  await s.take((r) => r.typeUrl === EDS, 'EDS subscribe');
  const tcp = {
    name: '0.0.0.0_3306',
    address: { socketAddress: { address: '0.0.0.0', portValue: 3306 } },
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typedConfig: { '@type': CONFIG_TYPE_URL.TcpProxy, statPrefix: 'a', cluster: 'a' },
          },
        ],
      },
    ],
  };
  s.send(deltaResponse(LDS, 'l1', 'n2', [['0.0.0.0_3306', 'vl', tcp]]));
  await s.take((r) => r.typeUrl === LDS && r.responseNonce === 'n2', 'LDS ACK');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 0, 'no listener before the first clusters are warm');
  assert.deepEqual([...client.warming().listeners.keys()], ['0.0.0.0_3306']);
  s.send(deltaResponse(EDS, 'e1', 'n3', [['a', 'ea', cla('a', '10.0.0.1')]]));
  const cfg = await client.whenSynced();
  assert.equal(seen.length, 1);
  assert.deepEqual([...(seen[0]?.changed ?? [])].sort(), ['clusters', 'endpoints', 'listeners']);
  assert.ok(cfg.listeners.has('0.0.0.0_3306') && cfg.endpoints.has('a'));
});

test('initial fetch timeout: applied without EDS after it; 0s waits forever', async () => {
  const timers = new RecordingTimers();
  const { server, client, seen } = await setup('sotw', { timers, initialFetchTimeoutMs: 2000 });
  const s = await server.sotwStream(0);
  await s.next();
  await s.next();
  s.send(sotwResponse(CDS, 'c1', 'n1', [edsCluster('a'), edsCluster('forever', '0s')]));
  await s.take((r) => r.typeUrl === EDS, 'EDS subscription');
  assert.ok(timers.delays.includes(2000), `warming timer: ${timers.delays.join(',')}`);
  // 'forever' (0s) waits: advancing far does not apply the update.
  timers.manual.advance(1_000_000);
  assert.equal(seen.length, 0);
  assert.deepEqual(client.status().types.clusters.warmingOn, ['forever']);
  // Its EDS arrives (a's timed out): now the update applies, a without endpoints.
  s.send(sotwResponse(EDS, 'e1', 'n2', [cla('forever', '10.0.0.9')]));
  await waitFor(() => seen.length === 1, 'clusters applied');
  const cfg = seen[0]?.config;
  assert.ok(cfg);
  assert.ok(cfg.clusters.has('a') && cfg.clusters.has('forever'));
  assert.equal(cfg.endpoints.has('a'), false);
  assert.ok(cfg.endpoints.has('forever'));
  assertWarm(seen[0] as Seen, new Set(['a']));
});

test('delta: subscriptions, removals, reconnect with backoff and initial_resource_versions', async () => {
  const timers = new RecordingTimers();
  const { server, client, seen } = await setup('delta', {
    timers,
    backoff: { baseMs: 1000, maxMs: 8000, random: () => 0.5 },
    initialFetchTimeoutMs: 0,
  });
  const s = await server.deltaStream(0);
  const first = await s.next();
  assert.equal(first.typeUrl, CDS);
  assert.equal(first.node?.id, 'sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local');
  assert.equal(first.resourceNamesSubscribe, undefined); // legacy wildcard
  assert.equal((await s.next()).typeUrl, LDS);

  s.send(
    deltaResponse(CDS, 'c1', 'n1', [
      ['a', 'va1', edsCluster('a')],
      ['b', 'vb1', edsCluster('b')],
    ]),
  );
  const ack = await s.take((r) => r.typeUrl === CDS, 'CDS ACK');
  assert.deepEqual(ack, { typeUrl: CDS, responseNonce: 'n1' });
  const sub = await s.take((r) => r.typeUrl === EDS, 'EDS subscribe');
  assert.deepEqual(sub.resourceNamesSubscribe, ['a', 'b']);
  // "b" does not exist: the server says so, the cluster warms without endpoints.
  s.send(deltaResponse(EDS, 'e1', 'n2', [['a', 'ea1', cla('a', '10.0.0.1')]], ['b']));
  await waitFor(() => seen.length === 1, 'clusters applied');
  assert.deepEqual([...(seen[0]?.config.endpoints.keys() ?? [])], ['a']);

  s.send(deltaResponse(LDS, 'l1', 'n3', [['0.0.0.0_9080', 'vl1', httpListener(9080, '9080')]]));
  const rds = await s.take((r) => r.typeUrl === RDS, 'RDS subscribe');
  assert.deepEqual(rds.resourceNamesSubscribe, ['9080']);
  s.send(deltaResponse(RDS, 'r1', 'n4', [['9080', 'vr1', routeConfig('9080', 'a')]]));
  await client.whenSynced();
  for (const x of seen) assertWarm(x, new Set(['b']));

  // Cluster b removed: its EDS subscription goes away.
  s.send(deltaResponse(CDS, 'c2', 'n5', [], ['b']));
  const unsub = await s.take(
    (r) => r.typeUrl === EDS && r.resourceNamesUnsubscribe !== undefined,
    'EDS unsubscribe',
  );
  assert.deepEqual(unsub.resourceNamesUnsubscribe, ['b']);
  await waitFor(() => !client.config().clusters.has('b'), 'b removed');
  const held = client.config();
  const applied = seen.length;

  // The control plane goes away: the config stays, reconnects back off with jitter.
  server.stop();
  await waitFor(() => client.status().retryInMs !== undefined, 'a scheduled reconnect');
  assert.equal(client.status().connected, false);
  assert.equal(client.status().retryInMs, 750); // ceiling 1000, jitter 0.5: 500 + 250
  assert.equal(client.config(), held);
  timers.manual.advance(750);
  await waitFor(
    () => client.status().connectAttempts === 2 && client.status().retryInMs !== undefined,
    'a failed attempt',
  );
  assert.equal(client.status().retryInMs, 1500); // ceiling 2000
  assert.match(client.status().lastError ?? '', /UNAVAILABLE/);
  assert.equal(client.config(), held);

  await server.start(); // same port
  timers.manual.advance(1500);
  const s2 = await server.deltaStream(1);
  const reqs: DeltaDiscoveryRequest[] = [];
  for (let i = 0; i < 4; i++) reqs.push(await s2.next(`resubscription ${i}`));
  assert.deepEqual(
    reqs.map((r) => [r.typeUrl, r.resourceNamesSubscribe, r.initialResourceVersions]),
    [
      [CDS, undefined, { a: 'va1' }],
      [EDS, ['a'], { a: 'ea1' }],
      [LDS, undefined, { '0.0.0.0_9080': 'vl1' }],
      [RDS, ['9080'], { '9080': 'vr1' }],
    ],
  );
  assert.equal(
    reqs[0]?.node?.id,
    'sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local',
  );
  await waitFor(() => client.status().connected, 'connected again');
  // The server has nothing new: the client's configuration is untouched.
  s2.send(deltaResponse(CDS, 'c2', 'm1', []));
  await s2.take((r) => r.responseNonce === 'm1', 'ACK on the new stream');
  assert.equal(seen.length, applied);
  assert.equal(client.config(), held);
  // A NACK on delta carries the nonce and the error.
  const badRoutes = {
    name: '9080',
    virtualHosts: [
      {
        name: 'x',
        domains: ['*', 'a.*.b'],
        routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }],
      },
    ],
  };
  s2.send(deltaResponse(RDS, 'r2', 'm2', [['9080', 'vr2', badRoutes]]));
  const nack = await s2.take((r) => r.responseNonce === 'm2', 'delta NACK');
  assert.equal(nack.typeUrl, RDS);
  assert.equal(
    nack.errorDetail?.message,
    'route configuration "9080": virtual_hosts[0].domains[1]: invalid domain "a.*.b": a wildcard may only start or end it',
  );
  assert.equal(client.config(), held);
});

test('SotW reconnect resubscribes with versions and the full subscription', async () => {
  const { server, client } = await setup('sotw');
  const s = await server.sotwStream(0);
  await s.next();
  await s.next();
  s.send(sotwResponse(CDS, 'c1', 'n1', [edsCluster('a')]));
  await s.take((r) => r.typeUrl === EDS, 'EDS subscription');
  s.send(sotwResponse(EDS, 'e1', 'n2', [cla('a', '10.0.0.1')]));
  s.send(sotwResponse(LDS, 'l1', 'n3', []));
  await client.whenSynced();
  server.stop();
  await server.start();
  const s2 = await server.sotwStream(1);
  const reqs: DiscoveryRequest[] = [];
  for (let i = 0; i < 3; i++) reqs.push(await s2.next(`resubscription ${i}`));
  assert.deepEqual(
    reqs.map((r) => [r.typeUrl, r.versionInfo, r.resourceNames, r.responseNonce]),
    [
      [CDS, 'c1', undefined, undefined],
      [EDS, 'e1', ['a'], undefined],
      [LDS, 'l1', undefined, undefined],
    ],
  );
  assert.ok(reqs[0]?.node);
  assert.ok(client.status().connectAttempts >= 2);
});

test('jittered backoff doubles up to the cap and resets', () => {
  let r = 0;
  const b = new JitteredBackoff({ baseMs: 100, maxMs: 1000, random: () => r });
  assert.deepEqual(
    [b.next(), b.next(), b.next(), b.next(), b.next(), b.next()],
    [50, 100, 200, 400, 500, 500],
  );
  b.reset();
  r = 0.999;
  assert.equal(b.next(), 100);
  const d = new JitteredBackoff();
  for (let i = 0; i < 20; i++) {
    const ceiling = d.ceiling();
    const x = d.next();
    assert.ok(x >= ceiling / 2 && x <= ceiling, `${x} within [${ceiling / 2}, ${ceiling}]`);
  }
  assert.equal(d.ceiling(), 30_000);
});
