// Delta xDS with increments and shared sets: a proxy holding the set an increment starts from
// is compared in the changed names only; any other proxy (one that missed an increment, changed
// its subscription or NACKed) is compared in full, and every proxy converges. Also checks the
// server's direct delta response encoder against @trellis/envoy's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeDeltaDiscoveryResponse,
  decodeResource,
  encodeDeltaDiscoveryResponse,
  encodeResource,
  type DeltaDiscoveryResponse,
  type EncodedAny,
} from '@trellis/envoy';
import {
  XdsServer,
  resourceVersion,
  type ProxyInfo,
  type ResourceSet,
  type ResourceSource,
} from '../src/index.js';
import type { Connection } from '../src/connection.js';
import { DeltaConnection } from '../src/delta.js';
import { encodeDeltaResponse } from '../src/delta-wire.js';
import { CDS, EDS, HookRecorder, TestClient, sidecarNode, until, cla } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * One shared set per type, the same object for every proxy (as the control plane's shared
 * parts), moved on by `update`, which records the update as an increment of the previous set.
 */
class SharedSource implements ResourceSource {
  readonly sets = new Map<string, ResourceSet>();
  private n = 0;
  resources(_p: ProxyInfo, typeUrl: string, names: readonly string[] | undefined): ResourceSet {
    const set: ResourceSet = this.sets.get(typeUrl) ?? { version: '', resources: new Map() };
    if (!names) return set;
    const picked = new Map<string, EncodedAny>();
    for (const n of names) {
      const r = set.resources.get(n);
      if (r) picked.set(n, r);
    }
    return {
      version: set.version,
      resources: picked,
      ...(set.incremental ? { incremental: set.incremental } : {}),
    };
  }
  /** A new set; `changed` overrides what it declares as changed (to see which path is taken). */
  update(typeUrl: string, entries: Record<string, EncodedAny>, changed?: readonly string[]): void {
    const old = this.sets.get(typeUrl);
    const resources = new Map(old?.resources);
    for (const [n, r] of Object.entries(entries)) resources.set(n, r);
    const version = `v${++this.n}`;
    this.sets.set(typeUrl, {
      version,
      resources,
      ...(old
        ? { incremental: { from: old.version, changed: new Set(changed ?? Object.keys(entries)) } }
        : {}),
    });
  }
  /** A new set that is not an increment (names may go away). */
  replace(typeUrl: string, entries: Record<string, EncodedAny>): void {
    this.sets.set(typeUrl, {
      version: `v${++this.n}`,
      resources: new Map(Object.entries(entries)),
    });
  }
}

async function setup(): Promise<{
  server: XdsServer;
  source: SharedSource;
  client: TestClient;
  rec: HookRecorder;
}> {
  const source = new SharedSource();
  source.update(EDS, { a: cla('a', '10.0.0.1'), b: cla('b', '10.0.0.2'), c: cla('c', '10.0.0.3') });
  const rec = new HookRecorder();
  const server = new XdsServer({ source, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  return { server, source, client, rec };
}

/** The versions the server believes a proxy holds (sorted by name). */
function heldBy(server: XdsServer, nodeId: string, typeUrl: string): Map<string, string> {
  const conns = (server as unknown as { conns: Map<string, Connection> }).conns;
  for (const c of conns.values())
    if (c.proxy.nodeId === nodeId && c instanceof DeltaConnection)
      return new Map([...c.clientVersions(typeUrl)].sort(([a], [b]) => (a < b ? -1 : 1)));
  throw new Error(`no delta connection for ${nodeId}`);
}

const resNames = (r: DeltaDiscoveryResponse): string[] =>
  (r.resources ?? []).map((x) => x.name ?? '');

/** What the proxy should hold: every name of the set it subscribed to, at its content hash. */
function expected(set: ResourceSet | undefined, names?: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [n, r] of set?.resources ?? [])
    if (!names || names.includes(n)) out.set(n, resourceVersion(r));
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

test('delta increment: the proxy holding the previous set gets the changed names; one that missed an increment converges', async () => {
  const { server, source, client, rec } = await setup();
  const nodes = [sidecarNode('inc-0'), sidecarNode('inc-1')];
  const streams = nodes.map(() => client.delta());
  for (const [i, node] of nodes.entries()) {
    const s = streams[i] as (typeof streams)[number];
    s.send({ node, typeUrl: EDS, resourceNamesSubscribe: ['a', 'b', 'c'] });
    const r = await s.next();
    assert.deepEqual(resNames(r), ['a', 'b', 'c']);
    const acked = rec.next('ack', node.id);
    s.send({ typeUrl: EDS, responseNonce: r.nonce ?? '' });
    await acked;
  }
  const [s0, s1] = streams as [(typeof streams)[0], (typeof streams)[0]];
  const id0 = nodes[0]?.id ?? '';
  const id1 = nodes[1]?.id ?? '';

  // v2 changes "b" and goes to proxy 0 only: proxy 1 misses it.
  source.update(EDS, { b: cla('b', '10.0.0.9') });
  await server.push({ proxies: [id0], typeUrls: [EDS], reason: 'endpoints' });
  const r2 = await s0.next();
  assert.deepEqual(resNames(r2), ['b']);
  assert.equal(r2.systemVersionInfo, 'v2');
  let acked = rec.next('ack', id0);
  s0.send({ typeUrl: EDS, responseNonce: r2.nonce ?? '' });
  await acked;

  // v3, an increment of v2, declares only "c" changed although "a" changed too: proxy 0 holds
  // v2 and is compared in the declared names only (it trusts the increment), while proxy 1
  // holds v1 and is compared in full, so it gets "b" (missed) and both real changes.
  source.update(EDS, { a: cla('a', '10.0.0.7'), c: cla('c', '10.0.0.8') }, ['c']);
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r3a = await s0.next();
  const r3b = await s1.next();
  assert.deepEqual(resNames(r3a), ['c']);
  assert.deepEqual(resNames(r3b), ['a', 'b', 'c']);
  assert.equal(r3b.systemVersionInfo, 'v3');
  assert.deepEqual(
    (r3b.resources ?? []).map((x) => decodeResource(x.resource as EncodedAny)),
    ['a', 'b', 'c'].map((n) =>
      decodeResource(source.sets.get(EDS)?.resources.get(n) as EncodedAny),
    ),
  );
  assert.equal(server.connection(id1)?.types[0]?.lastSent?.resources, 3);
  acked = rec.next('ack', id1);
  s1.send({ typeUrl: EDS, responseNonce: r3b.nonce ?? '' });
  await acked;
  acked = rec.next('ack', id0);
  s0.send({ typeUrl: EDS, responseNonce: r3a.nonce ?? '' });
  await acked;
  assert.deepEqual(heldBy(server, id1, EDS), expected(source.sets.get(EDS)));

  // An honest increment after that: both proxies hold v3 and get just the changed name.
  source.update(EDS, { a: cla('a', '10.0.0.6') });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r4b = await s1.next();
  const r4a = await s0.next();
  assert.deepEqual(resNames(r4a), ['a']);
  assert.deepEqual(resNames(r4b), ['a']);
  for (const [s, r] of [
    [s0, r4a],
    [s1, r4b],
  ] as const)
    s.send({ typeUrl: EDS, responseNonce: r.nonce ?? '' });
  await until(() => server.connection(id0)?.types[0]?.lastAcked?.version === 'v4', 'ack');
  await until(() => server.connection(id1)?.types[0]?.lastAcked?.version === 'v4', 'ack');
  // Both now hold exactly v4 (proxy 0's unsent "a" of v3 was replaced by v4's).
  assert.deepEqual(heldBy(server, id0, EDS), expected(source.sets.get(EDS)));
  assert.deepEqual(heldBy(server, id1, EDS), expected(source.sets.get(EDS)));
  s0.cancel();
  s1.cancel();
});

test('delta increment: unsubscribe and resubscribe while in sync with a shared set', async () => {
  const { server, source, client, rec } = await setup();
  const node = sidecarNode('resub');
  const id = node.id ?? '';
  const s = client.delta();
  s.send({ node, typeUrl: EDS, resourceNamesSubscribe: ['a', 'b', 'c'] });
  const r1 = await s.next();
  let acked = rec.next('ack', id);
  s.send({ typeUrl: EDS, responseNonce: r1.nonce ?? '' });
  await acked;

  // Unsubscribing "b" is not answered; an increment changing "b" then sends nothing.
  s.send({ typeUrl: EDS, resourceNamesUnsubscribe: ['b'] });
  await until(() => server.connection(id)?.types[0]?.names.length === 2, 'unsubscribe');
  const pushes = server.stats.pushes.get(EDS);
  source.update(EDS, { b: cla('b', '10.0.0.5') });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  assert.equal(server.stats.pushes.get(EDS), pushes);
  assert.equal(s.buffered, 0);

  // An increment changing "b" and "c": only "c" is wanted.
  source.update(EDS, { b: cla('b', '10.0.0.4'), c: cla('c', '10.0.0.4') });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r2 = await s.next();
  assert.deepEqual(resNames(r2), ['c']);
  acked = rec.next('ack', id);
  s.send({ typeUrl: EDS, responseNonce: r2.nonce ?? '' });
  await acked;

  // Resubscribing "b" sends its current version at once.
  s.send({ typeUrl: EDS, resourceNamesSubscribe: ['b'] });
  const r3 = await s.next();
  assert.deepEqual(resNames(r3), ['b']);
  assert.equal(
    r3.resources?.[0]?.version,
    resourceVersion(source.sets.get(EDS)?.resources.get('b') as EncodedAny),
  );
  acked = rec.next('ack', id);
  s.send({ typeUrl: EDS, responseNonce: r3.nonce ?? '' });
  await acked;
  const conn = server.connection(id);
  assert.deepEqual(conn?.types[0]?.names, ['a', 'b', 'c']);
  s.cancel();
});

test('delta increment: a NACKed increment is sent again with the next one; removals still work', async () => {
  const source = new SharedSource();
  source.update(CDS, {
    c1: encodeResource(CDS, { name: 'c1' }),
    c2: encodeResource(CDS, { name: 'c2' }),
  });
  const rec = new HookRecorder();
  const server = new XdsServer({ source, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const node = sidecarNode('nack');
  const id = node.id ?? '';
  const s = client.delta();
  s.send({ node, typeUrl: CDS }); // wildcard
  const r1 = await s.next();
  assert.deepEqual(resNames(r1), ['c1', 'c2']);
  let acked = rec.next('ack', id);
  s.send({ typeUrl: CDS, responseNonce: r1.nonce ?? '' });
  await acked;

  source.update(CDS, { c1: encodeResource(CDS, { name: 'c1', connectTimeout: '2s' }) });
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'config' });
  const r2 = await s.next();
  assert.deepEqual(resNames(r2), ['c1']);
  const nacked = rec.next('nack', id);
  s.send({ typeUrl: CDS, responseNonce: r2.nonce ?? '', errorDetail: { code: 3, message: 'no' } });
  await nacked;

  // The next increment names only c2, but the proxy kept its old c1: it gets both.
  source.update(CDS, { c2: encodeResource(CDS, { name: 'c2', connectTimeout: '3s' }) });
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'config' });
  const r3 = await s.next();
  assert.deepEqual(resNames(r3), ['c1', 'c2']);
  acked = rec.next('ack', id);
  s.send({ typeUrl: CDS, responseNonce: r3.nonce ?? '' });
  await acked;

  // A set that is not an increment and drops c1: compared in full, c1 is removed.
  source.replace(CDS, {
    c2: source.sets.get(CDS)?.resources.get('c2') as EncodedAny,
    c3: encodeResource(CDS, { name: 'c3' }),
  });
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'config' });
  const r4 = await s.next();
  assert.deepEqual(resNames(r4), ['c3']);
  assert.deepEqual(r4.removedResources, ['c1']);
  // The server's view of what the proxy holds is exactly the current set.
  assert.deepEqual(heldBy(server, id, CDS), expected(source.sets.get(CDS)));
  s.cancel();
});

test('the direct delta response encoder gives the same message as the generic one', () => {
  const big = encodeResource(CDS, { name: 'x'.repeat(300), connectTimeout: '1s' });
  // [response, whether the bytes are the same too (the generic encoder also writes fields
  // explicitly set to '', which decode as absent)]
  const responses: [DeltaDiscoveryResponse, boolean][] = [
    [{}, true],
    [
      { systemVersionInfo: 'v1', typeUrl: CDS, nonce: 'n-1', controlPlane: { identifier: 'cp' } },
      true,
    ],
    [
      {
        systemVersionInfo: 'é-versión',
        resources: [
          { name: 'a', version: 'h1', resource: cla('a', '10.0.0.1') },
          { name: 'x'.repeat(300), version: 'h2', resource: big },
          { name: 'gone-too' },
        ],
        typeUrl: EDS,
        removedResources: ['r1', '', 'r3'],
        nonce: 'abc-7',
        controlPlane: { identifier: 'trellis' },
      },
      true,
    ],
    [
      {
        resources: [{ name: 'a', version: '', resource: big }],
        controlPlane: { identifier: '' },
      },
      false,
    ],
    [
      { resources: [{ name: 'ttl', version: '1', resource: big, ttl: '30s', aliases: ['t'] }] },
      true,
    ],
  ];
  for (const [r, sameBytes] of responses) {
    const direct = encodeDeltaResponse(r);
    const generic = encodeDeltaDiscoveryResponse(r);
    assert.deepEqual(decodeDeltaDiscoveryResponse(direct), decodeDeltaDiscoveryResponse(generic));
    if (sameBytes) assert.ok(direct.equals(generic));
  }
});

test('delta: a proxy new to a grouped set gets the groups as shared entries, then increments', async () => {
  const g1 = new Map([
    ['b', cla('b', '10.0.0.2')],
    ['a', cla('a', '10.0.0.1')],
  ]);
  const g2 = new Map([['c', cla('c', '10.0.0.3')]]);
  const union = new Map([...g1, ...g2]);
  let set: ResourceSet = { version: 'g1', resources: union, groups: [g1, g2] };
  const source: ResourceSource = { resources: () => set };
  const rec = new HookRecorder();
  const server = new XdsServer({ source, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const streams = [client.delta(), client.delta()];
  const first: DeltaDiscoveryResponse[] = [];
  for (const [i, s] of streams.entries()) {
    s.send({ node: sidecarNode(`g-${i}`), typeUrl: CDS, resourceNamesSubscribe: ['*'] });
    first.push(await s.next());
  }
  assert.equal(server.stats.directWrites, 2);
  for (const r of first) {
    assert.equal(r.systemVersionInfo, 'g1');
    assert.deepEqual(resNames(r).sort(), ['a', 'b', 'c']);
    for (const x of r.resources ?? []) {
      const sent = union.get(x.name ?? '') as EncodedAny;
      assert.equal(x.version, resourceVersion(sent));
      assert.deepEqual(decodeResource(x.resource as EncodedAny), decodeResource(sent));
    }
  }
  assert.deepEqual(heldBy(server, sidecarNode('g-0').id ?? '', CDS), expected(set));
  // Stream 0 ACKs; stream 1 rejects the whole set, so it is taken as holding none of it.
  const acked = rec.next('ack');
  streams[0]!.send({ typeUrl: CDS, responseNonce: first[0]!.nonce ?? '' });
  await acked;
  const nacked = rec.next('nack');
  streams[1]!.send({
    typeUrl: CDS,
    responseNonce: first[1]!.nonce ?? '',
    errorDetail: { code: 3, message: 'rejected' },
  });
  await nacked;
  assert.deepEqual(heldBy(server, sidecarNode('g-1').id ?? '', CDS), new Map());
  // An increment: only "b" changed, and only "b" is sent to the proxy holding the set.
  const g1b = new Map(g1);
  g1b.set('b', cla('b', '10.0.0.9'));
  set = {
    version: 'g2',
    resources: new Map([...g1b, ...g2]),
    groups: [g1b, g2],
    incremental: { from: 'g1', changed: new Set(['b']) },
  };
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'change' });
  assert.deepEqual(resNames(await streams[0]!.next()), ['b']);
  assert.deepEqual(resNames(await streams[1]!.next()).sort(), ['a', 'b', 'c']);
  for (const s of streams) s.cancel();
});

test('delta: a large resource is sent whole and right to every proxy, before and after a change', async () => {
  const big = (octet: number): EncodedAny =>
    encodeResource(EDS, {
      clusterName: 'big',
      endpoints: [
        {
          lbEndpoints: Array.from({ length: 1500 }, (_, i) => ({
            endpoint: {
              address: {
                socketAddress: {
                  address: `10.${octet}.${Math.floor(i / 250)}.${i % 250}`,
                  portValue: 80,
                },
              },
            },
          })),
        },
      ],
    });
  const { server, source, client, rec } = await setup();
  source.update(EDS, { big: big(1) });
  assert.ok((source.sets.get(EDS)?.resources.get('big')?.value.byteLength ?? 0) > 16 * 1024);
  const streams = [client.delta(), client.delta()];
  for (const [round, octet] of [1, 2].entries()) {
    if (round > 0) {
      source.update(EDS, { big: big(octet) });
      await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
    }
    const want = source.sets.get(EDS)?.resources.get('big') as EncodedAny;
    for (const [i, s] of streams.entries()) {
      if (round === 0)
        s.send({ node: sidecarNode(`big-${i}`), typeUrl: EDS, resourceNamesSubscribe: ['big'] });
      const r = await s.next();
      assert.deepEqual(resNames(r), ['big']);
      const got = r.resources?.[0];
      assert.equal(got?.version, resourceVersion(want));
      assert.deepEqual(Buffer.from(got?.resource?.value ?? []), Buffer.from(want.value));
      const acked = rec.next('ack');
      s.send({ typeUrl: EDS, responseNonce: r.nonce ?? '' });
      await acked;
    }
  }
  for (const s of streams) s.cancel();
});
