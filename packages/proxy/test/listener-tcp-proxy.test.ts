// envoy.filters.network.tcp_proxy over real sockets: echo with large payloads, half-close in
// both directions, unknown cluster (NC), no host (UH), overflow (UO), connect failures and
// retries (UF, URX), weighted clusters, the idle timeout, stats and the StreamInfo it records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:net';
import type { Listener } from '@trellis/envoy';
import { ManualTimers } from '@trellis/core';
import { ListenerManager } from '../src/listener/listener-manager.js';
import { createNetworkFilterFactory } from '../src/listener/network-filters.js';
import { formatResponseFlags, type StreamInfo } from '../src/stream-info.js';
import {
  closed,
  closeServer,
  dial,
  echoServer,
  FakeClusterManager,
  FakeStats,
  host,
  listen,
  portOf,
  readAll,
  readBytes,
  tcpProxyFilter,
  until,
  withListeners,
} from './listener-fakes.js';

interface Setup {
  readonly cm: FakeClusterManager;
  readonly stats: FakeStats;
  readonly completed: StreamInfo[];
  readonly manager: ListenerManager;
  readonly servers: Server[];
  /** Applies one tcp_proxy listener on 127.0.0.1:0 and returns its port. */
  start(filterExtra?: Record<string, unknown>, cluster?: string): Promise<number>;
  done(): Promise<void>;
}

function setup(opts: { timers?: ManualTimers; random?: () => number } = {}): Setup {
  const cm = new FakeClusterManager();
  const stats = new FakeStats();
  const completed: StreamInfo[] = [];
  const servers: Server[] = [];
  const factory = createNetworkFilterFactory({
    tcpProxy: {
      clusterManager: cm,
      stats,
      onConnectionComplete: (info) => completed.push(info),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.random ? { random: opts.random } : {}),
    },
  });
  const manager = new ListenerManager({
    networkFilters: factory,
    stats,
    ...(opts.timers ? { timers: opts.timers } : {}),
  });
  return {
    cm,
    stats,
    completed,
    manager,
    servers,
    async start(filterExtra = {}, cluster = 'echo') {
      const l: Listener = {
        name: 'tcp',
        address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
        trafficDirection: 'OUTBOUND',
        filterChains: [{ name: 'chain-0', filters: [tcpProxyFilter(cluster, filterExtra)] }],
      };
      const r = await manager.update(withListeners(l));
      assert.deepEqual(r.errors, []);
      const port = manager.boundAddress('tcp')?.port;
      assert.ok(port !== undefined && port > 0);
      return port;
    },
    async done() {
      await manager.close();
      for (const s of servers) await closeServer(s);
    },
  };
}

test('tcp_proxy: a large payload echoes through intact, with bytes and stats recorded', async () => {
  const t = setup();
  const echo = await echoServer();
  t.servers.push(echo);
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(echo))] });
  const port = await t.start();
  const payload = randomBytes(8 * 1024 * 1024);
  const c = await dial(port);
  const got = readAll(c);
  c.end(payload);
  assert.ok((await got).equals(payload), 'echoed bytes differ');
  await until(() => t.completed.length === 1);
  const info = t.completed[0] as StreamInfo;
  assert.equal(info.bytesReceived, payload.length);
  assert.equal(info.bytesSent, payload.length);
  assert.equal(info.upstreamCluster, 'echo');
  assert.equal(info.upstreamHost, `127.0.0.1:${portOf(echo)}`);
  assert.match(info.upstreamLocalAddress ?? '', /^127\.0\.0\.1:\d+$/);
  assert.equal(info.listenerName, 'tcp');
  assert.equal(info.filterChainName, 'chain-0');
  assert.equal(info.direction, 'outbound');
  assert.equal(info.downstreamLocalAddress, `127.0.0.1:${port}`);
  assert.equal(formatResponseFlags(info.responseFlags), '-');
  assert.equal(info.attemptCount, 1);
  assert.ok((info.durationMs ?? -1) >= 0);
  assert.equal(t.stats.get('tcp.echo.downstream_cx_total'), 1);
  assert.equal(t.stats.get('tcp.echo.downstream_cx_rx_bytes_total'), payload.length);
  assert.equal(t.stats.get('tcp.echo.downstream_cx_tx_bytes_total'), payload.length);
  const l = `listener.127.0.0.1_${port}`;
  await until(() => t.stats.get(`${l}.downstream_cx_destroy`) === 1);
  assert.equal(t.stats.get(`${l}.downstream_cx_total`), 1);
  assert.equal(t.stats.get(`${l}.downstream_cx_active`), 0);
  await t.done();
});

test('tcp_proxy: downstream half-close — the host still answers after the client FIN', async () => {
  const t = setup();
  // Answers only once the client has finished sending.
  const server = await listen((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => s.end(`got:${Buffer.concat(chunks).toString()}`));
  });
  t.servers.push(server);
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(server))] });
  const port = await t.start();
  const c = await dial(port);
  const got = readAll(c);
  c.write('ping-');
  c.end('pong');
  assert.equal((await got).toString(), 'got:ping-pong');
  await t.done();
});

test('tcp_proxy: upstream half-close — the client can still send after the host FIN', async () => {
  const t = setup();
  let resolveLate: (s: string) => void = () => {};
  const late = new Promise<string>((r) => (resolveLate = r));
  // Says hello and half-closes at once, then reads what the client sends.
  const server = await listen((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolveLate(Buffer.concat(chunks).toString()));
    s.end('hello');
  });
  t.servers.push(server);
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(server))] });
  const port = await t.start();
  const c = await dial(port);
  const got = await new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => chunks.push(d));
    c.once('end', () => resolve(Buffer.concat(chunks).toString()));
  });
  assert.equal(got, 'hello');
  c.end('after the server FIN');
  assert.equal(await late, 'after the server FIN');
  await closed(c);
  await until(() => t.completed.length === 1);
  assert.equal(t.completed[0]?.bytesReceived, 'after the server FIN'.length);
  assert.equal(t.completed[0]?.bytesSent, 5);
  await t.done();
});

test('tcp_proxy: unknown cluster closes the connection with NC', async () => {
  const t = setup();
  const port = await t.start({}, 'missing');
  const c = await dial(port);
  c.write('data that must not go anywhere');
  await closed(c);
  await until(() => t.completed.length === 1);
  const info = t.completed[0] as StreamInfo;
  assert.equal(formatResponseFlags(info.responseFlags), 'NC');
  assert.equal(info.downstreamLocalCloseReason, 'tcp_initializion_failure:3');
  assert.equal(info.upstreamCluster, undefined);
  assert.equal(t.stats.get('tcp.missing.downstream_cx_no_route'), 1);
  await t.done();
});

test('tcp_proxy: no healthy host closes with UH; overflow closes with UO', async () => {
  const t = setup();
  t.cm.clusters.set('echo', { hosts: [] });
  const port = await t.start();
  await closed(await dial(port));
  await until(() => t.completed.length === 1);
  assert.equal(formatResponseFlags(t.completed[0]?.responseFlags ?? new Set()), 'UH');
  assert.equal(t.completed[0]?.downstreamLocalCloseReason, 'tcp_initializion_failure:1');
  assert.equal(t.cm.stats.get('cluster.echo.upstream_cx_none_healthy'), 1);

  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', 9)], overflow: true });
  await closed(await dial(port));
  await until(() => t.completed.length === 2);
  assert.equal(formatResponseFlags(t.completed[1]?.responseFlags ?? new Set()), 'UO');
  assert.equal(t.completed[1]?.downstreamLocalCloseReason, 'tcp_initializion_failure:2');
  assert.equal(t.cm.stats.get('cluster.echo.upstream_cx_overflow'), 1);
  assert.deepEqual(t.cm.attempts, []);
  await t.done();
});

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = await listen(() => {});
  const p = portOf(s);
  await closeServer(s);
  return p;
}

test('tcp_proxy: refused connect → UF,URX with the transport failure reason', async () => {
  const t = setup();
  const dead = await deadPort();
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', dead)] });
  const port = await t.start();
  await closed(await dial(port));
  await until(() => t.completed.length === 1);
  const info = t.completed[0] as StreamInfo;
  assert.equal(formatResponseFlags(info.responseFlags), 'UF,URX');
  assert.equal(info.upstreamTransportFailureReason, 'delayed connect error: 111');
  assert.equal(info.attemptCount, 1);
  assert.equal(info.downstreamLocalCloseReason, 'tcp_initializion_failure:0');
  assert.equal(t.cm.stats.get('cluster.echo.upstream_cx_connect_attempts_exceeded'), 1);
  await t.done();
});

test('tcp_proxy: max_connect_attempts retries on another host', async () => {
  const t = setup();
  const dead = await deadPort();
  const echo = await echoServer();
  t.servers.push(echo);
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', dead), host('127.0.0.1', portOf(echo))] });
  const port = await t.start({ maxConnectAttempts: 2 });
  const c = await dial(port);
  const got = readAll(c);
  c.end('retried');
  assert.equal((await got).toString(), 'retried');
  await until(() => t.completed.length === 1);
  const info = t.completed[0] as StreamInfo;
  assert.equal(info.attemptCount, 2);
  assert.equal(formatResponseFlags(info.responseFlags), 'UF');
  assert.equal(info.upstreamHost, `127.0.0.1:${portOf(echo)}`);
  assert.deepEqual(t.cm.attempts, [`127.0.0.1:${dead}`, `127.0.0.1:${portOf(echo)}`]);
  await t.done();
});

test('tcp_proxy: weighted_clusters pick by weight', async () => {
  let r = 0;
  const t = setup({ random: () => r });
  const a = await echoServer('A');
  const b = await echoServer('B');
  t.servers.push(a, b);
  t.cm.clusters.set('v1', { hosts: [host('127.0.0.1', portOf(a))] });
  t.cm.clusters.set('v2', { hosts: [host('127.0.0.1', portOf(b))] });
  const port = await t.start(
    {
      cluster: undefined,
      weightedClusters: {
        clusters: [
          { name: 'v1', weight: 80 },
          { name: 'v2', weight: 20 },
        ],
      },
    },
    'tcp-echo',
  );
  for (const [rv, want] of [
    [0.0, 'A'],
    [0.79, 'A'],
    [0.8, 'B'],
    [0.99, 'B'],
  ] as const) {
    r = rv;
    const c = await dial(port);
    assert.equal((await readBytes(c, 1)).toString(), want, `random ${rv}`);
    c.destroy();
  }
  await t.done();
});

test('tcp_proxy: idle_timeout closes both sides after inactivity', async () => {
  const timers = new ManualTimers();
  const t = setup({ timers });
  let upstreamClosed = false;
  const server = await listen((s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
    s.on('close', () => (upstreamClosed = true));
  });
  t.servers.push(server);
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(server))] });
  const port = await t.start({ idleTimeout: '10s' });
  const c = await dial(port);
  c.write('x');
  await readBytes(c, 1);
  timers.advance(9_999);
  c.write('y');
  await readBytes(c, 1);
  // Activity at t=9.999s: the connection lives until t=19.999s.
  timers.advance(9_999);
  assert.equal(c.destroyed, false);
  const gone = closed(c);
  timers.advance(1);
  await gone;
  await until(() => upstreamClosed && t.completed.length === 1);
  assert.equal(t.stats.get('tcp.echo.idle_timeout'), 1);
  assert.equal(t.completed[0]?.downstreamLocalCloseReason, 'tcp_session_idle_timeout');
  await t.done();
});

test('tcp_proxy: max_downstream_connection_duration closes the connection with DT', async () => {
  const timers = new ManualTimers();
  const t = setup({ timers });
  const echo = await echoServer();
  t.servers.push(echo);
  t.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(echo))] });
  const port = await t.start({ maxDownstreamConnectionDuration: '5s' });
  const c = await dial(port);
  c.write('x');
  await readBytes(c, 1);
  timers.advance(4_999);
  assert.equal(c.destroyed, false);
  const gone = closed(c);
  timers.advance(1);
  await gone;
  await until(() => t.completed.length === 1);
  assert.equal(formatResponseFlags(t.completed[0]?.responseFlags ?? new Set()), 'DT');
  assert.equal(t.completed[0]?.downstreamLocalCloseReason, 'max_connection_duration_reached');
  assert.equal(t.stats.get('tcp.echo.max_downstream_connection_duration'), 1);
  await t.done();
});

test('tcp_proxy: invalid configs are rejected when the listener is built', async () => {
  const t = setup();
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ statPrefix: '' }, /statPrefix/],
    [{ cluster: undefined }, /one of cluster or weightedClusters/],
    [{ cluster: undefined, weightedClusters: { clusters: [{ name: 'a', weight: 0 }] } }, /weight/],
    [{ maxConnectAttempts: 0 }, /maxConnectAttempts/],
    [{ idleTimeout: 'soon' }, /idleTimeout/],
  ];
  for (const [extra, re] of bad) {
    const r = await t.manager.update(
      withListeners({
        name: 'bad',
        address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
        filterChains: [{ filters: [tcpProxyFilter('echo', extra)] }],
      }),
    );
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]?.message ?? '', re);
    assert.match(r.errors[0]?.message ?? '', /^filterChains\[0\]: tcp_proxy: /);
  }
  await t.done();
});
