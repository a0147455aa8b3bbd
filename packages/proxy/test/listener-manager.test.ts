// The listener manager over real sockets: filter chain selection from real TLS ClientHellos
// (TLS passthrough to real TLS servers), http_inspector routing (and handing the peeked bytes
// to node's HTTP server), listener filter timeouts, original-destination hand-off to
// bind_to_port: false listeners and dispatch(), listener updates without dropping open
// connections (in place and full), removal, drain, port conflicts, no filter chain match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { existsSync, statSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FilterChain, Listener } from '@trellis/envoy';
import { ManualTimers } from '@trellis/core';
import { ListenerManager, type ListenerManagerOptions } from '../src/listener/listener-manager.js';
import { createNetworkFilterFactory } from '../src/listener/network-filters.js';
import type { ConnectionInfo, NetworkFilterFactory } from '../src/listener/types.js';
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
  track,
  readBytes,
  tcpProxyFilter,
  until,
  withListeners,
} from './listener-fakes.js';
import { TEST_CERT, TEST_KEY } from './listener-tls-fixture.js';

const TLS_INSPECTOR = {
  name: 'envoy.filters.listener.tls_inspector',
  typedConfig: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  },
};
const HTTP_INSPECTOR = {
  name: 'envoy.filters.listener.http_inspector',
  typedConfig: {
    '@type':
      'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  },
};

interface Harness {
  readonly cm: FakeClusterManager;
  readonly stats: FakeStats;
  readonly completed: StreamInfo[];
  readonly listenerLogs: StreamInfo[];
  readonly manager: ListenerManager;
  readonly servers: Server[];
  done(): Promise<void>;
}

function harness(
  opts: Partial<Omit<ListenerManagerOptions, 'stats'>> & { timers?: ManualTimers } = {},
): Harness {
  const cm = new FakeClusterManager();
  const stats = new FakeStats();
  const completed: StreamInfo[] = [];
  const listenerLogs: StreamInfo[] = [];
  const servers: Server[] = [];
  const networkFilters =
    opts.networkFilters ??
    createNetworkFilterFactory({
      tcpProxy: {
        clusterManager: cm,
        stats,
        onConnectionComplete: (i) => completed.push(i),
        ...(opts.timers ? { timers: opts.timers } : {}),
      },
    });
  const manager = new ListenerManager({
    ...opts,
    networkFilters,
    stats,
    onListenerAccessLog: (i) => listenerLogs.push(i),
  });
  return {
    cm,
    stats,
    completed,
    listenerLogs,
    manager,
    servers,
    async done() {
      await manager.close();
      for (const s of servers) await closeServer(s);
    },
  };
}

function tcpChain(cluster: string, extra: Partial<FilterChain> = {}): FilterChain {
  return { filters: [tcpProxyFilter(cluster)], ...extra };
}

function listenerAt(
  name: string,
  port: number,
  extra: Partial<Listener>,
  address = '127.0.0.1',
): Listener {
  return { name, address: { socketAddress: { address, portValue: port } }, ...extra };
}

/** A TLS server on 127.0.0.1:0 that greets with its name and echoes. */
async function tlsServer(
  name: string,
  seen: { sni?: string | false; alpn?: string | false | null }[],
  alpn = ['h2', 'http/1.1'],
): Promise<Server> {
  const server = track(
    createTlsServer({ key: TEST_KEY, cert: TEST_CERT, ALPNProtocols: alpn }, (s: TLSSocket) => {
      seen.push({
        sni: (s as TLSSocket & { servername?: string | false }).servername ?? false,
        alpn: s.alpnProtocol,
      });
      s.on('error', () => {});
      s.write(name);
      s.on('data', (d: Buffer) => s.write(d));
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function tlsDial(port: number, servername: string, alpn: string[]): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      { port, host: '127.0.0.1', servername, ca: TEST_CERT, ALPNProtocols: alpn },
      () => resolve(s),
    );
    s.once('error', reject);
  });
}

test('tls_inspector routing: TLS passthrough by SNI to real TLS servers', async () => {
  const h = harness();
  const seen: { sni?: string | false; alpn?: string | false | null }[] = [];
  const api = await tlsServer('api', seen);
  const cdn = await tlsServer('cdn', seen);
  const other = await tlsServer('passthrough', seen);
  h.servers.push(api, cdn, other);
  h.cm.clusters.set('outbound|443||api.example.com', { hosts: [host('127.0.0.1', portOf(api))] });
  h.cm.clusters.set('outbound|443||*.cdn.example.com', { hosts: [host('127.0.0.1', portOf(cdn))] });
  h.cm.clusters.set('PassthroughCluster', { hosts: [host('127.0.0.1', portOf(other))] });
  // The shape of the translate golden listener-outbound-tls-sni.json, on port 0.
  const l = listenerAt('0.0.0.0_443', 0, {
    trafficDirection: 'OUTBOUND',
    continueOnListenerFiltersTimeout: true,
    listenerFilters: [TLS_INSPECTOR],
    listenerFiltersTimeout: '0s',
    filterChains: [
      tcpChain('outbound|443||*.cdn.example.com', {
        name: 'cdn',
        filterChainMatch: { serverNames: ['*.cdn.example.com'] },
      }),
      tcpChain('outbound|443||api.example.com', {
        name: 'api',
        filterChainMatch: { serverNames: ['api.example.com'] },
      }),
    ],
    defaultFilterChain: { ...tcpChain('PassthroughCluster'), name: 'PassthroughFilterChain' },
  });
  const r = await h.manager.update(withListeners(l));
  assert.deepEqual(r.errors, []);
  const port = h.manager.boundAddress('0.0.0.0_443')?.port ?? 0;
  for (const [sni, want] of [
    ['api.example.com', 'api'],
    ['img.cdn.example.com', 'cdn'],
    ['other.example.org', 'passthrough'],
  ] as const) {
    const c = await tlsDial(port, sni, ['h2', 'http/1.1']);
    assert.equal(c.alpnProtocol, 'h2');
    assert.equal((await readBytes(c, want.length)).toString(), want, sni);
    c.write('round trip');
    assert.equal((await readBytes(c, 10)).toString(), 'round trip');
    c.destroy();
  }
  assert.deepEqual(
    seen.map((s) => s.sni),
    ['api.example.com', 'img.cdn.example.com', 'other.example.org'],
  );
  await until(() => h.completed.length === 3);
  const byName = h.completed.map((i) => [
    i.requestedServerName,
    i.filterChainName,
    i.upstreamCluster,
  ]);
  assert.deepEqual(byName.sort(), [
    ['api.example.com', 'api', 'outbound|443||api.example.com'],
    ['img.cdn.example.com', 'cdn', 'outbound|443||*.cdn.example.com'],
    ['other.example.org', 'PassthroughFilterChain', 'PassthroughCluster'],
  ]);
  assert.equal(h.stats.get('tls_inspector.tls_found'), 3);
  assert.equal(h.stats.get('tls_inspector.sni_found'), 3);
  assert.equal(h.stats.get('tls_inspector.alpn_found'), 3);
  await h.done();
});

test('tls_inspector: routing on ALPN, and plaintext is raw_buffer', async () => {
  const h = harness();
  const seen: { sni?: string | false; alpn?: string | false | null }[] = [];
  const mtls = await tlsServer('istio', seen, ['istio']);
  const plain = await echoServer('plain:');
  h.servers.push(mtls, plain);
  h.cm.clusters.set('istio', { hosts: [host('127.0.0.1', portOf(mtls))] });
  h.cm.clusters.set('plain', { hosts: [host('127.0.0.1', portOf(plain))] });
  const l = listenerAt('alpn', 0, {
    listenerFilters: [TLS_INSPECTOR],
    filterChains: [
      tcpChain('istio', {
        filterChainMatch: {
          transportProtocol: 'tls',
          applicationProtocols: ['istio-peer-exchange', 'istio'],
        },
      }),
      tcpChain('plain', { filterChainMatch: { transportProtocol: 'raw_buffer' } }),
    ],
  });
  assert.deepEqual((await h.manager.update(withListeners(l))).errors, []);
  const port = h.manager.boundAddress('alpn')?.port ?? 0;
  const t = await tlsDial(port, 'api.example.com', ['istio']);
  assert.equal((await readBytes(t, 5)).toString(), 'istio');
  t.destroy();
  const c = await dial(port);
  c.write('hi');
  assert.equal((await readBytes(c, 8)).toString(), 'plain:hi');
  c.destroy();
  assert.equal(h.stats.get('tls_inspector.tls_not_found'), 1);
  await h.done();
});

test('http_inspector routing: HTTP/1.1 and h2c to the HTTP chain, other bytes to the TCP chain', async () => {
  const h = harness();
  const httpServer = track(
    createHttpServer((req, res) => res.end(`hello ${req.method} ${req.url}`)),
  );
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const raw: Buffer[] = [];
  const h2 = await listen((s) => s.on('data', (d: Buffer) => raw.push(d)));
  const echo = await echoServer('tcp:');
  h.servers.push(httpServer, h2, echo);
  h.cm.clusters.set('http', {
    hosts: [host('127.0.0.1', (httpServer.address() as AddressInfo).port)],
  });
  h.cm.clusters.set('h2', { hosts: [host('127.0.0.1', portOf(h2))] });
  h.cm.clusters.set('tcp', { hosts: [host('127.0.0.1', portOf(echo))] });
  const l = listenerAt('sniff', 0, {
    listenerFilters: [TLS_INSPECTOR, HTTP_INSPECTOR],
    listenerFiltersTimeout: '0s',
    filterChains: [
      tcpChain('http', {
        filterChainMatch: {
          applicationProtocols: ['http/1.1', 'http/1.0'],
          transportProtocol: 'raw_buffer',
        },
      }),
      tcpChain('h2', {
        filterChainMatch: { applicationProtocols: ['h2c'], transportProtocol: 'raw_buffer' },
      }),
    ],
    defaultFilterChain: tcpChain('tcp'),
  });
  assert.deepEqual((await h.manager.update(withListeners(l))).errors, []);
  const port = h.manager.boundAddress('sniff')?.port ?? 0;
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ port, host: '127.0.0.1', path: '/x?y=1', method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    req.on('error', reject);
    req.end('payload');
  });
  assert.equal(body, 'hello POST /x?y=1');
  // The h2c preface, written in two pieces: the inspector waits for all 24 bytes.
  const c2 = await dial(port);
  c2.write('PRI * HTTP/2.0\r\n');
  await new Promise((r) => setTimeout(r, 20));
  c2.write('\r\nSM\r\n\r\nframes');
  await until(() => Buffer.concat(raw).length >= 30);
  assert.equal(Buffer.concat(raw).toString(), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nframes');
  c2.destroy();
  const c3 = await dial(port);
  c3.write('SSH-2.0-x\r\n');
  assert.equal((await readBytes(c3, 15)).toString(), 'tcp:SSH-2.0-x\r\n');
  c3.destroy();
  assert.equal(h.stats.get('http_inspector.http11_found'), 1);
  assert.equal(h.stats.get('http_inspector.http2_found'), 1);
  assert.equal(h.stats.get('http_inspector.http_not_found'), 1);
  await h.done();
});

test('peeked bytes reach a handler that gives the socket to node:http (request split across reads)', async () => {
  const httpServer = createHttpServer((req, res) => res.end(`served ${req.url}`));
  const seen: ConnectionInfo[] = [];
  const networkFilters: NetworkFilterFactory = () => (socket, conn) => {
    seen.push(conn);
    httpServer.emit('connection', socket);
  };
  const h = harness({ networkFilters });
  const l = listenerAt('http', 0, {
    listenerFilters: [HTTP_INSPECTOR],
    filterChains: [{ filterChainMatch: { applicationProtocols: ['http/1.1'] }, filters: [] }],
  });
  assert.deepEqual((await h.manager.update(withListeners(l))).errors, []);
  const port = h.manager.boundAddress('http')?.port ?? 0;
  const c = await dial(port);
  const got = readAll(c);
  c.write('GE');
  await new Promise((r) => setTimeout(r, 20));
  c.write('T /split HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const text = (await got).toString();
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /served \/split$/);
  assert.equal(seen[0]?.applicationProtocols[0], 'http/1.1');
  assert.equal(seen[0]?.transportProtocol, 'raw_buffer');
  assert.equal(seen[0]?.local.port, port);
  await h.done();
});

test('listener filter timeout: continue_on_listener_filters_timeout lets server-first protocols through', async () => {
  const timers = new ManualTimers();
  const h = harness({ timers });
  const greeter = await listen((s) => {
    s.on('error', () => {});
    s.write('220 ready\r\n');
  });
  h.servers.push(greeter);
  h.cm.clusters.set('db', { hosts: [host('127.0.0.1', portOf(greeter))] });
  const base = {
    listenerFilters: [HTTP_INSPECTOR],
    listenerFiltersTimeout: '5s',
    filterChains: [tcpChain('db')],
  };
  await h.manager.update(
    withListeners(
      listenerAt('continue', 0, { ...base, continueOnListenerFiltersTimeout: true }),
      listenerAt('close', 0, base),
    ),
  );
  const cont = h.manager.boundAddress('continue')?.port ?? 0;
  const shut = h.manager.boundAddress('close')?.port ?? 0;
  const a = await dial(cont);
  const b = await dial(shut);
  await until(
    () =>
      h.stats.get(`listener.127.0.0.1_${cont}.downstream_pre_cx_active`) === 1 &&
      h.stats.get(`listener.127.0.0.1_${shut}.downstream_pre_cx_active`) === 1,
  );
  timers.advance(4_999);
  assert.equal(h.stats.get(`listener.127.0.0.1_${cont}.downstream_pre_cx_timeout`), 0);
  const bClosed = closed(b);
  timers.advance(1);
  assert.equal((await readBytes(a, 11)).toString(), '220 ready\r\n');
  await bClosed;
  assert.equal(h.stats.get(`listener.127.0.0.1_${cont}.downstream_pre_cx_timeout`), 1);
  assert.equal(h.stats.get(`listener.127.0.0.1_${shut}.downstream_pre_cx_timeout`), 1);
  assert.equal(h.stats.get(`listener.127.0.0.1_${shut}.downstream_cx_total`), 0);
  a.destroy();
  await h.done();
});

test('a client that closes while the listener filters wait is dropped, not forwarded', async () => {
  const h = harness();
  const echo = await echoServer();
  h.servers.push(echo);
  h.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(echo))] });
  await h.manager.update(
    withListeners(
      listenerAt('l', 0, { listenerFilters: [HTTP_INSPECTOR], filterChains: [tcpChain('echo')] }),
    ),
  );
  const port = h.manager.boundAddress('l')?.port ?? 0;
  const c = await dial(port);
  c.end('GET /partial');
  await closed(c);
  await until(
    () => h.stats.get(`listener.127.0.0.1_${port}.downstream_listener_filter_remote_close`) === 1,
  );
  assert.equal(h.stats.get(`listener.127.0.0.1_${port}.downstream_cx_total`), 0);
  assert.equal(h.cm.attempts.length, 0);
  await h.done();
});

test('no matching filter chain: connection closed, no_filter_chain_match and an NR listener log', async () => {
  const h = harness();
  await h.manager.update(
    withListeners(
      listenerAt('l', 0, {
        filterChains: [tcpChain('x', { filterChainMatch: { destinationPort: 1 } })],
      }),
    ),
  );
  const port = h.manager.boundAddress('l')?.port ?? 0;
  await closed(await dial(port));
  await until(() => h.listenerLogs.length === 1);
  assert.equal(h.stats.get(`listener.127.0.0.1_${port}.no_filter_chain_match`), 1);
  const info = h.listenerLogs[0] as StreamInfo;
  assert.equal(formatResponseFlags(info.responseFlags), 'NR');
  assert.equal(info.responseCodeDetails, 'filter_chain_not_found');
  assert.equal(info.downstreamLocalAddress, `127.0.0.1:${port}`);
  await h.done();
});

test('use_original_dst hands connections to bind_to_port: false listeners by original destination', async () => {
  let original = { address: '10.96.0.2', port: 9000 };
  const h = harness({ originalDestination: () => original });
  const svc = await echoServer('svc:');
  const wild = await echoServer('wild:');
  const passthrough = await echoServer('passthrough:');
  h.servers.push(svc, wild, passthrough);
  h.cm.clusters.set('outbound|9000||svc', { hosts: [host('127.0.0.1', portOf(svc))] });
  h.cm.clusters.set('outbound|7000||any', { hosts: [host('127.0.0.1', portOf(wild))] });
  h.cm.clusters.set('PassthroughCluster', { hosts: [], originalDst: true });
  const virtualOutbound = listenerAt('virtualOutbound', 0, {
    useOriginalDst: true,
    trafficDirection: 'OUTBOUND',
    filterChains: [
      tcpChain('BlackHoleCluster', {
        name: 'virtualOutbound-blackhole',
        filterChainMatch: { destinationPort: 15001 },
      }),
      tcpChain('PassthroughCluster', { name: 'virtualOutbound-catchall-tcp' }),
    ],
  });
  const service = listenerAt(
    '10.96.0.2_9000',
    9000,
    {
      bindToPort: false,
      trafficDirection: 'OUTBOUND',
      filterChains: [tcpChain('outbound|9000||svc')],
    },
    '10.96.0.2',
  );
  const wildcard = listenerAt(
    '0.0.0.0_7000',
    7000,
    { bindToPort: false, filterChains: [tcpChain('outbound|7000||any')] },
    '0.0.0.0',
  );
  const r = await h.manager.update(withListeners(virtualOutbound, service, wildcard));
  assert.deepEqual(r.errors, []);
  assert.deepEqual([...r.added].sort(), ['0.0.0.0_7000', '10.96.0.2_9000', 'virtualOutbound']);
  assert.equal(h.manager.boundAddress('10.96.0.2_9000'), undefined);
  const port = h.manager.boundAddress('virtualOutbound')?.port ?? 0;

  const ask = async (): Promise<string> => {
    const c = await dial(port);
    c.write('x');
    const first = await new Promise<string>((resolve) =>
      c.once('data', (d: Buffer) => resolve(d.toString())),
    );
    c.destroy();
    return first;
  };
  assert.match(await ask(), /^svc:/);
  original = { address: '10.1.2.3', port: 7000 };
  assert.match(await ask(), /^wild:/);
  // No listener for the destination: the receiving listener's own chains (passthrough to it).
  original = { address: '127.0.0.1', port: portOf(passthrough) };
  assert.match(await ask(), /^passthrough:/);
  await until(() => h.completed.length === 3);
  const svcInfo = h.completed.find((i) => i.listenerName === '10.96.0.2_9000');
  assert.equal(svcInfo?.downstreamLocalAddress, '10.96.0.2:9000');
  assert.equal(h.stats.get('listener.10.96.0.2_9000.downstream_cx_total'), 1);
  assert.equal(h.stats.get(`listener.127.0.0.1_${port}.downstream_cx_total`), 1);
  const pt = h.completed.find((i) => i.upstreamCluster === 'PassthroughCluster');
  assert.equal(pt?.upstreamHost, `127.0.0.1:${portOf(passthrough)}`);
  await h.done();
});

test('dispatch() feeds a tunnel (CONNECT) into the listener for its destination', async () => {
  const h = harness();
  const svc = await echoServer('svc:');
  h.servers.push(svc);
  h.cm.clusters.set('svc', { hosts: [host('127.0.0.1', portOf(svc))] });
  await h.manager.update(
    withListeners(
      listenerAt(
        '10.96.0.2_9000',
        9000,
        { bindToPort: false, filterChains: [tcpChain('svc')] },
        '10.96.0.2',
      ),
    ),
  );
  const results: boolean[] = [];
  const front = await listen((s) => {
    const ok = h.manager.dispatch(s, { address: '10.96.0.2', port: 9000 });
    results.push(ok);
    if (!ok) s.destroy();
  });
  const unknown = await listen((s) => {
    results.push(h.manager.dispatch(s, { address: '10.96.0.3', port: 9000 }));
    s.destroy();
  });
  h.servers.push(front, unknown);
  const c = await dial(portOf(front));
  c.write('tunnelled');
  assert.equal((await readBytes(c, 13)).toString(), 'svc:tunnelled');
  c.destroy();
  await closed(await dial(portOf(unknown)));
  assert.deepEqual(results, [true, false]);
  await until(() => h.completed.length === 1);
  assert.equal(h.completed[0]?.downstreamLocalAddress, '10.96.0.2:9000');
  await h.done();
});

test('listener update: unchanged is a no-op; in-place chain update keeps connections; full update drains them', async () => {
  const timers = new ManualTimers();
  const h = harness({ timers, drainTimeMs: 30_000 });
  const a = await echoServer('A');
  const b = await echoServer('B');
  h.servers.push(a, b);
  h.cm.clusters.set('a', { hosts: [host('127.0.0.1', portOf(a))] });
  h.cm.clusters.set('b', { hosts: [host('127.0.0.1', portOf(b))] });
  const v1 = listenerAt('l', 0, {
    filterChains: [tcpChain('a', { filterChainMatch: { sourcePorts: [1] } })],
    defaultFilterChain: tcpChain('a'),
  });
  await h.manager.update(withListeners(v1));
  const port = h.manager.boundAddress('l')?.port ?? 0;
  const c1 = await dial(port);
  assert.equal((await readBytes(c1, 1)).toString(), 'A');

  const same = await h.manager.update(withListeners(structuredClone(v1)));
  assert.deepEqual([same.added, same.modified, same.removed], [[], [], []]);

  // In place: only the unused chain changes; c1 (on the default chain) is untouched.
  const v2 = { ...v1, filterChains: [tcpChain('b', { filterChainMatch: { sourcePorts: [1] } })] };
  const r2 = await h.manager.update(withListeners(v2));
  assert.deepEqual(r2.modified, ['l']);
  assert.equal(h.manager.boundAddress('l')?.port, port, 'same socket');
  assert.equal(h.stats.get('listener_manager.listener_in_place_updated'), 1);
  timers.advance(60_000);
  c1.write('still here');
  assert.equal((await readBytes(c1, 10)).toString(), 'still here');

  // Full update (listener filters change): c1 keeps working during the drain period, new
  // connections get the new version, and c1 is closed when the period ends.
  const v3: Listener = { ...v2, listenerFiltersTimeout: '1s', defaultFilterChain: tcpChain('b') };
  const r3 = await h.manager.update(withListeners(v3));
  assert.deepEqual(r3.modified, ['l']);
  assert.equal(h.manager.boundAddress('l')?.port, port);
  c1.write('during drain');
  assert.equal((await readBytes(c1, 12)).toString(), 'during drain');
  const c2 = await dial(port);
  assert.equal((await readBytes(c2, 1)).toString(), 'B');
  assert.deepEqual(
    h.manager.listeners().map((s) => [s.name, s.state, s.connections]),
    [
      ['l', 'active', 1],
      ['l', 'draining', 1],
    ],
  );
  assert.equal(h.stats.get('listener_manager.total_listeners_draining'), 1);
  const gone = closed(c1);
  timers.advance(29_999);
  assert.equal(c1.destroyed, false);
  timers.advance(1);
  await gone;
  await until(() =>
    h.completed.some((i) => i.downstreamLocalCloseReason === 'filter_chain_is_being_removed'),
  );
  assert.equal(h.stats.get('listener_manager.total_listeners_draining'), 0);
  c2.write('new');
  assert.equal((await readBytes(c2, 3)).toString(), 'new');
  assert.equal(h.stats.get('listener_manager.listener_modified'), 2);
  c2.destroy();
  await h.done();
});

test('listener removal stops accepting at once and drains open connections', async () => {
  const timers = new ManualTimers();
  const h = harness({ timers, drainTimeMs: 10_000 });
  const a = await echoServer();
  h.servers.push(a);
  h.cm.clusters.set('a', { hosts: [host('127.0.0.1', portOf(a))] });
  await h.manager.update(withListeners(listenerAt('l', 0, { filterChains: [tcpChain('a')] })));
  const port = h.manager.boundAddress('l')?.port ?? 0;
  const c = await dial(port);
  c.write('1');
  await readBytes(c, 1);
  const r = await h.manager.update(withListeners());
  assert.deepEqual(r.removed, ['l']);
  await assert.rejects(dial(port), /ECONNREFUSED/);
  c.write('2');
  assert.equal((await readBytes(c, 1)).toString(), '2');
  const gone = closed(c);
  timers.advance(10_000);
  await gone;
  assert.equal(h.stats.get('listener_manager.listener_removed'), 1);
  assert.equal(h.stats.get('listener_manager.total_listeners_active'), 0);
  await h.done();
});

test('drain(): stop accepting, tell connections to drain, close them at the deadline', async () => {
  const timers = new ManualTimers();
  const drained: number[] = [];
  const open = new Set<Socket>();
  const networkFilters: NetworkFilterFactory = () => (socket, conn) => {
    open.add(socket);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
    socket.on('close', () => open.delete(socket));
    conn.drain.onDrain(() => drained.push(conn.id));
  };
  const h = harness({ timers, networkFilters });
  await h.manager.update(
    withListeners(
      listenerAt('in', 0, { trafficDirection: 'INBOUND', filterChains: [{ filters: [] }] }),
      listenerAt('out', 0, { trafficDirection: 'OUTBOUND', filterChains: [{ filters: [] }] }),
    ),
  );
  const inPort = h.manager.boundAddress('in')?.port ?? 0;
  const outPort = h.manager.boundAddress('out')?.port ?? 0;
  const i1 = await dial(inPort);
  const i2 = await dial(inPort);
  const o1 = await dial(outPort);
  await until(() => open.size === 3);

  // Inbound only (pilot-agent at SIGTERM): outbound keeps working.
  const inboundDone = h.manager.drain(5_000, { inboundOnly: true });
  assert.equal(drained.length, 2);
  await assert.rejects(dial(inPort), /ECONNREFUSED/);
  const o2 = await dial(outPort);
  o2.destroy();
  // One inbound connection finishes by itself; the other is closed at the deadline.
  i1.end();
  await closed(i1);
  const gone = closed(i2);
  timers.advance(5_000);
  await gone;
  await inboundDone;

  // Then everything.
  const all = h.manager.drain(1_000);
  await assert.rejects(dial(outPort), /ECONNREFUSED/);
  o1.end();
  await closed(o1);
  await all; // resolves without the deadline: the last connection closed by itself
  assert.equal(
    (
      await h.manager.update(
        withListeners(listenerAt('late', 0, { filterChains: [{ filters: [] }] })),
      )
    ).added.length,
    0,
  );
  await h.done();
});

test('port conflicts and duplicate addresses are reported for the NACK; other listeners apply', async () => {
  const h = harness();
  const squatter = await listen(() => {});
  h.servers.push(squatter);
  const taken = portOf(squatter);
  const r = await h.manager.update(
    withListeners(
      listenerAt('busy', taken, { filterChains: [tcpChain('x')] }),
      listenerAt('fine', 0, { filterChains: [tcpChain('x')] }),
      listenerAt(
        'virtual-a',
        9000,
        { bindToPort: false, filterChains: [tcpChain('x')] },
        '10.0.0.1',
      ),
      listenerAt(
        'virtual-b',
        9000,
        { bindToPort: false, filterChains: [tcpChain('x')] },
        '10.0.0.1',
      ),
      {
        name: 'grpc-api',
        address: { socketAddress: { address: '10.0.0.1', portValue: 7070 } },
        apiListener: {},
      },
    ),
  );
  assert.deepEqual([...r.added].sort(), ['fine', 'virtual-a']);
  assert.deepEqual(
    r.errors.map((e) => e.name),
    ['virtual-b', 'busy'],
  );
  assert.equal(
    r.errors[1]?.message,
    `cannot bind '127.0.0.1:${taken}': Address already in use (EADDRINUSE)`,
  );
  assert.match(r.errors[0]?.message ?? '', /duplicate address/);
  assert.deepEqual(
    r.ignored.map((e) => e.name),
    ['grpc-api'],
  );
  assert.equal(h.manager.boundAddress('busy'), undefined);
  assert.equal(h.stats.get('listener_manager.listener_create_failure'), 1);
  // An invalid update keeps the previous version serving.
  const fine = h.manager.boundAddress('fine');
  const bad = await h.manager.update(
    withListeners(
      listenerAt('fine', 0, {
        filterChains: [tcpChain('x', { filterChainMatch: { serverNames: ['a*b'] } })],
      }),
    ),
  );
  assert.match(bad.errors[0]?.message ?? '', /partial wildcards/);
  assert.deepEqual(h.manager.boundAddress('fine'), fine);
  const invalid = h.manager.validate(
    withListeners(
      listenerAt('v', 0, { listenerFilters: [{ name: 'envoy.filters.listener.proxy_protocol' }] }),
    ),
  );
  assert.deepEqual(invalid, [
    {
      name: 'v',
      message:
        "listenerFilters[0]: listener filter 'envoy.filters.listener.proxy_protocol' is not supported",
    },
  ]);
  await h.done();
});

test('a listener moving to another address releases the old port; its new port serves', async () => {
  const h = harness({ drainTimeMs: 0 });
  const a = await echoServer('A');
  h.servers.push(a);
  h.cm.clusters.set('a', { hosts: [host('127.0.0.1', portOf(a))] });
  await h.manager.update(withListeners(listenerAt('l', 0, { filterChains: [tcpChain('a')] })));
  const first = h.manager.boundAddress('l')?.port ?? 0;
  await h.manager.update(
    withListeners(listenerAt('l', 0, { filterChains: [tcpChain('a')] }, '127.0.0.2')),
  );
  const second = h.manager.boundAddress('l');
  assert.equal(second?.address, '127.0.0.2');
  await assert.rejects(dial(first), /ECONNREFUSED/);
  const c = await dial(second?.port ?? 0, '127.0.0.2');
  assert.equal((await readBytes(c, 1)).toString(), 'A');
  c.destroy();
  await h.done();
});

test('a Unix domain socket listener (address.pipe): tcp_proxy over it, its path in the logs, a stale socket file replaced', async () => {
  const h = harness();
  const echo = await echoServer();
  h.servers.push(echo);
  h.cm.clusters.set('echo', { hosts: [host('127.0.0.1', portOf(echo))] });
  const path = join(tmpdir(), `trellis-pipe-${process.pid}-${Date.now()}.sock`);
  // A socket file an earlier process still holds (as after a crash): the listener takes the path.
  const stale = createNetServer((s) => s.end('stale'));
  await new Promise<void>((r) => stale.listen(path, r));
  const l: Listener = {
    name: 'uds',
    address: { pipe: { path, mode: 0o660 } },
    filterChains: [tcpChain('echo')],
  };
  const r = await h.manager.update(withListeners(l));
  assert.deepEqual(r.errors, []);
  assert.equal((statSync(path).mode & 0o777).toString(8), '660');
  const c = netConnect({ path });
  await new Promise<void>((res, rej) => {
    c.once('connect', res);
    c.once('error', rej);
  });
  c.end('over a unix socket');
  assert.equal((await readAll(c)).toString(), 'over a unix socket');
  await until(() => h.completed.length === 1);
  assert.equal(h.completed[0]?.downstreamLocalAddress, path);
  assert.equal(h.completed[0]?.downstreamRemoteAddress, path);
  assert.equal(h.stats.get(`listener.${path}.downstream_cx_total`), 1);
  // Two listeners on one path: the second is refused like a duplicate address.
  const dup = await h.manager.update(withListeners(l, { ...l, name: 'uds2' }));
  assert.equal(dup.errors.length, 1);
  assert.match(dup.errors[0]?.message ?? '', /duplicate address/);
  await h.done();
  assert.equal(existsSync(path), false, 'the socket file goes with the listener');
  stale.close();
});
