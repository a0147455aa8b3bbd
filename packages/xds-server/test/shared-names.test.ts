// Identical subscriptions are kept once and shared between streams (names.ts): the sharing must
// be visible to the source (one names array for equal subscriptions) and must never let one
// stream's subscription change leak into another's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DeltaDiscoveryResponse } from '@trellis/envoy';
import { XdsServer } from '../src/index.js';
import { shareNames } from '../src/names.js';
import { EDS, FakeSource, HookRecorder, TestClient, names, sidecarNode } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(): Promise<{
  server: XdsServer;
  source: FakeSource;
  client: TestClient;
  rec: HookRecorder;
}> {
  const source = new FakeSource();
  for (const n of ['a', 'b', 'c', 'd']) source.set(EDS, n, { clusterName: n });
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

/** The names arrays the source was asked for, per proxy, for EDS. */
function asked(source: FakeSource, nodeId: string): (readonly string[] | undefined)[] {
  return source.calls.filter((c) => c.proxy === nodeId && c.typeUrl === EDS).map((c) => c.names);
}

const deltaNames = (r: DeltaDiscoveryResponse): string[] =>
  (r.resources ?? []).map((x) => x.name ?? '').sort();

test('shareNames: one object per distinct set of names, whatever the order', () => {
  const a = shareNames(['x-2', 'x-1', 'x-3']);
  const b = shareNames(['x-3', 'x-1', 'x-2', 'x-1']);
  assert.equal(a, b);
  assert.deepEqual(a.sorted, ['x-1', 'x-2', 'x-3']);
  assert.deepEqual([...a.set].sort(), ['x-1', 'x-2', 'x-3']);
  const c = shareNames(['x-1', 'x-2']);
  assert.notEqual(c, a);
  assert.deepEqual(c.sorted, ['x-1', 'x-2']);
  assert.equal(shareNames([]).sorted.length, 0);
});

test('SotW: streams with the same subscription share it; a change on one leaves the other', async () => {
  const { server, source, client, rec } = await setup();
  const s1 = client.sotw();
  const s2 = client.sotw();
  const n1 = sidecarNode('p-1');
  const n2 = sidecarNode('p-2');
  s1.send({ node: n1, typeUrl: EDS, resourceNames: ['c', 'a', 'b'] });
  s2.send({ node: n2, typeUrl: EDS, resourceNames: ['c', 'a', 'b'] });
  const r1 = await s1.next();
  const r2 = await s2.next();
  assert.deepEqual(names(r1.resources), ['a', 'b', 'c']);
  assert.deepEqual(names(r2.resources), ['a', 'b', 'c']);
  const [a1] = asked(source, n1.id ?? '');
  const [a2] = asked(source, n2.id ?? '');
  assert.deepEqual(a1, ['a', 'b', 'c']);
  assert.equal(a1, a2, 'equal subscriptions reach the source as one array');

  // Stream 1 drops "b" and adds "d" in its ACK; stream 2 keeps its names.
  s1.send({
    typeUrl: EDS,
    versionInfo: r1.versionInfo ?? '',
    responseNonce: r1.nonce ?? '',
    resourceNames: ['a', 'c', 'd'],
  });
  const r1b = await s1.next();
  assert.deepEqual(names(r1b.resources), ['a', 'c', 'd']);
  const acked = rec.next('ack');
  s2.send({
    typeUrl: EDS,
    versionInfo: r2.versionInfo ?? '',
    responseNonce: r2.nonce ?? '',
    resourceNames: ['c', 'a', 'b'],
  });
  await acked;
  source.set(EDS, 'b', { clusterName: 'b', policy: { overprovisioningFactor: 150 } });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  assert.deepEqual(names((await s2.next()).resources), ['a', 'b', 'c']);
  assert.deepEqual(names((await s1.next()).resources), ['a', 'c', 'd']);
  assert.deepEqual(server.connection(n1.id ?? '')?.types[0]?.names, ['a', 'c', 'd']);
  assert.deepEqual(server.connection(n2.id ?? '')?.types[0]?.names, ['a', 'b', 'c']);
  s1.cancel();
  s2.cancel();
});

test('delta: equal subscriptions built differently are shared; unsubscribing on one stream leaves the other', async () => {
  const { server, source, client, rec } = await setup();
  const s1 = client.delta();
  const s2 = client.delta();
  const n1 = sidecarNode('d-1');
  const n2 = sidecarNode('d-2');
  s1.send({ node: n1, typeUrl: EDS, resourceNamesSubscribe: ['a', 'b', 'c'] });
  const r1 = await s1.next();
  assert.deepEqual(deltaNames(r1), ['a', 'b', 'c']);
  // Stream 2 reaches the same names in two steps.
  s2.send({ node: n2, typeUrl: EDS, resourceNamesSubscribe: ['c', 'a'] });
  const r2 = await s2.next();
  assert.deepEqual(deltaNames(r2), ['a', 'c']);
  s2.send({ typeUrl: EDS, responseNonce: r2.nonce ?? '', resourceNamesSubscribe: ['b'] });
  const r2b = await s2.next();
  assert.deepEqual(deltaNames(r2b), ['b']);
  const last1 = asked(source, n1.id ?? '').at(-1);
  const last2 = asked(source, n2.id ?? '').at(-1);
  assert.deepEqual(last2, ['a', 'b', 'c']);
  assert.equal(last1, last2, 'equal subscriptions reach the source as one array');

  let acked = rec.next('ack');
  s1.send({ typeUrl: EDS, responseNonce: r1.nonce ?? '', resourceNamesUnsubscribe: ['b'] });
  await acked;
  acked = rec.next('ack');
  s2.send({ typeUrl: EDS, responseNonce: r2b.nonce ?? '' });
  await acked;
  source.set(EDS, 'b', { clusterName: 'b', policy: { overprovisioningFactor: 150 } });
  source.set(EDS, 'a', { clusterName: 'a', policy: { overprovisioningFactor: 150 } });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  assert.deepEqual(deltaNames(await s1.next()), ['a']);
  assert.deepEqual(deltaNames(await s2.next()), ['a', 'b']);
  assert.deepEqual(server.connection(n1.id ?? '')?.types[0]?.names, ['a', 'c']);
  assert.deepEqual(server.connection(n2.id ?? '')?.types[0]?.names, ['a', 'b', 'c']);
  s1.cancel();
  s2.cancel();
});
