import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResource, type DiscoveryResponse, type EncodedAny } from '@trellis/envoy';
import { UnionMap, XdsServer, type ResourceSet, type ResourceSource } from '../src/index.js';
import {
  CDS,
  EDS,
  FakeSource,
  HookRecorder,
  ManualClock,
  TestClient,
  names,
  sidecarNode,
  cla,
} from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(): Promise<{
  server: XdsServer;
  source: FakeSource;
  client: TestClient;
  clock: ManualClock;
  rec: HookRecorder;
}> {
  const source = new FakeSource();
  source.set(CDS, 'outbound|9080||reviews', {
    name: 'outbound|9080||reviews',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {} } },
  });
  source.set(CDS, 'outbound|9080||ratings', {
    name: 'outbound|9080||ratings',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {} } },
  });
  source.set(EDS, 'a', { clusterName: 'a' });
  source.set(EDS, 'b', { clusterName: 'b' });
  source.set(EDS, 'c', { clusterName: 'c' });
  const clock = new ManualClock();
  const rec = new HookRecorder();
  const server = new XdsServer({ source, clock, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  return { server, source, client, clock, rec };
}

test('wildcard CDS: full set, ACK bookkeeping, no response to an ACK', async () => {
  const { server, client, clock, rec } = await setup();
  const s = client.sotw();
  s.send({ node: sidecarNode(), typeUrl: CDS });
  const r1 = await s.next();
  assert.equal(r1.typeUrl, CDS);
  assert.equal(r1.versionInfo, '2');
  assert.deepEqual(names(r1.resources), ['outbound|9080||ratings', 'outbound|9080||reviews']);
  assert.equal(r1.controlPlane?.identifier, 'trellis');
  clock.advance(5);
  const acked = rec.next('ack');
  s.send({ typeUrl: CDS, versionInfo: '2', responseNonce: r1.nonce ?? '' });
  await acked;
  await server.push({ proxies: 'all', typeUrls: 'all', reason: 'sync' }); // nothing changed: skipped
  const st = server.connections()[0]?.types.find((t) => t.typeUrl === CDS);
  assert.equal(st?.wildcard, true);
  assert.deepEqual(st?.lastSent, {
    version: '2',
    nonce: r1.nonce,
    time: clock.t - 5,
    resources: 2,
  });
  assert.deepEqual(st?.lastAcked, { version: '2', nonce: r1.nonce, time: clock.t });
  assert.equal(st?.lastNack, undefined);
  assert.equal(server.stats.pushes.get(CDS), 1);
  assert.equal(server.stats.acks.get(CDS), 1);
  assert.equal(s.buffered, 0);
  s.cancel();
});

test('named EDS subscription and a subscription change in an ACK', async () => {
  const { server, client } = await setup();
  const s = client.sotw();
  s.send({ node: sidecarNode('p2'), typeUrl: EDS, resourceNames: ['a', 'zzz'] });
  const r1 = await s.next();
  assert.deepEqual(names(r1.resources), ['a']);
  s.send({
    typeUrl: EDS,
    versionInfo: r1.versionInfo ?? '',
    responseNonce: r1.nonce ?? '',
    resourceNames: ['a', 'b'],
  });
  const r2 = await s.next();
  assert.deepEqual(names(r2.resources), ['a', 'b']);
  const st = server.connection(sidecarNode('p2').id ?? '')?.types[0];
  assert.deepEqual(st?.names, ['a', 'b']);
  assert.equal(st?.wildcard, false);
  s.cancel();
});

test('a push reaches a subscribed client; NACK keeps the last ACK and records the error', async () => {
  const { server, source, client, clock, rec } = await setup();
  const s = client.sotw();
  const node = sidecarNode('p3');
  s.send({ node, typeUrl: CDS });
  const r1 = await s.next();
  const acked = rec.next('ack');
  s.send({ typeUrl: CDS, versionInfo: r1.versionInfo ?? '', responseNonce: r1.nonce ?? '' });
  await acked;
  source.set(CDS, 'outbound|9080||details', {
    name: 'outbound|9080||details',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {} } },
  });
  clock.advance(40);
  await server.push({ proxies: [node.id ?? ''], typeUrls: [CDS], reason: 'config' });
  const r2 = await s.next();
  assert.equal(r2.versionInfo, '3');
  assert.deepEqual(names(r2.resources), [
    'outbound|9080||details',
    'outbound|9080||ratings',
    'outbound|9080||reviews',
  ]);
  clock.advance(7);
  s.send({
    typeUrl: CDS,
    versionInfo: r1.versionInfo ?? '',
    responseNonce: r2.nonce ?? '',
    errorDetail: { code: 13, message: 'cluster outbound|9080||details: bad config' },
  });
  // The next request (an unrelated subscription) is handled after the NACK on the same stream.
  s.send({ typeUrl: EDS, resourceNames: ['c'] });
  await s.next();
  const st = server.connection(node.id ?? '')?.types.find((t) => t.typeUrl === CDS);
  assert.deepEqual(st?.lastNack, {
    version: '3',
    nonce: r2.nonce,
    message: 'cluster outbound|9080||details: bad config',
    time: clock.t,
  });
  assert.equal(st?.lastAcked?.version, '2');
  assert.equal(server.stats.nacks.get(CDS), 1);
  s.cancel();
});

test('a request with a stale nonce is ignored', async () => {
  const { server, source, client } = await setup();
  const s = client.sotw();
  const node = sidecarNode('p4');
  s.send({ node, typeUrl: EDS, resourceNames: ['a'] });
  const r1 = await s.next();
  source.set(EDS, 'a', { clusterName: 'a', endpoints: [{ lbEndpoints: [] }] });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r2 = await s.next();
  assert.notEqual(r1.nonce, r2.nonce);
  // An answer to the first response arrives late, even asking for other names: ignored.
  s.send({
    typeUrl: EDS,
    versionInfo: r1.versionInfo ?? '',
    responseNonce: r1.nonce ?? '',
    resourceNames: ['a', 'b'],
  });
  // Then the ACK of the latest response with a new name is answered (and is the next message).
  s.send({
    typeUrl: EDS,
    versionInfo: r2.versionInfo ?? '',
    responseNonce: r2.nonce ?? '',
    resourceNames: ['a', 'c'],
  });
  const r3 = await s.next();
  assert.deepEqual(names(r3.resources), ['a', 'c']);
  assert.equal(server.stats.staleNonces, 1);
  const st = server.connection(node.id ?? '')?.types[0];
  assert.equal(st?.lastAcked?.nonce, r2.nonce);
  s.cancel();
});

test('a push of a type the client did not subscribe to sends nothing', async () => {
  const { server, source, client } = await setup();
  const s = client.sotw();
  s.send({ node: sidecarNode('p5'), typeUrl: EDS, resourceNames: ['a'] });
  await s.next();
  const before = server.stats.pushes.get(EDS) ?? 0;
  source.set(CDS, 'x', { name: 'x' });
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'config' });
  assert.equal(server.stats.pushes.get(EDS) ?? 0, before);
  assert.equal(s.buffered, 0);
  s.cancel();
});

test('push time is measured with the injected clock', async () => {
  const { server, source, client, clock } = await setup();
  const s = client.sotw();
  s.send({ node: sidecarNode('p6'), typeUrl: CDS });
  await s.next();
  const count = server.stats.pushTime.snapshot().count;
  source.onCall = () => clock.advance(300);
  source.set(CDS, 'y', { name: 'y' });
  await server.push({ proxies: 'all', typeUrls: 'all', reason: 'config' });
  await s.next();
  source.onCall = undefined;
  assert.equal(server.stats.pushTime.snapshot().count, count + 1);
  const bucket = (le: string) =>
    Number(
      new RegExp(`^pilot_xds_push_time_bucket\\{le="${le}"\\} (\\d+)$`, 'm').exec(
        server.stats.pushTime.render(),
      )?.[1],
    );
  assert.equal(bucket('0.1'), count);
  assert.equal(bucket('1'), count + 1);
  s.cancel();
});

/** A source whose sets are shared groups, with an optional increment. */
class GroupSource implements ResourceSource {
  set: ResourceSet = { version: '', resources: new Map() };
  resources(): ResourceSet {
    return this.set;
  }
}

test('shared groups are sent as the same bytes; an increment sends only the changed names', async () => {
  const source = new GroupSource();
  const g1 = new Map([
    ['a', cla('a', '10.0.0.1')],
    ['b', cla('b', '10.0.0.2')],
  ]);
  const g2 = new Map([['c', cla('c', '10.0.0.3')]]);
  source.set = { version: 'v1', resources: new UnionMap([g1, g2]), groups: [g1, g2] };
  const server = new XdsServer({ source });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const streams = [client.sotw(), client.sotw()];
  const first: DiscoveryResponse[] = [];
  for (const [i, s] of streams.entries()) {
    s.send({ node: sidecarNode(`p-${i}`), typeUrl: EDS, resourceNames: ['c', 'b', 'a'] });
    first.push(await s.next());
  }
  // Both went straight to their HTTP/2 streams, the groups' bytes uncopied (server.ts).
  assert.equal(server.stats.directWrites, 2);
  for (const r of first) {
    assert.equal(r.versionInfo, 'v1');
    assert.deepEqual(names(r.resources).sort(), ['a', 'b', 'c']);
    assert.deepEqual(
      (r.resources ?? []).map((x) => decodeResource(x)),
      ['a', 'b', 'c'].map((n) => decodeResource((g1.get(n) ?? g2.get(n)) as EncodedAny)),
    );
  }
  for (const [i, s] of streams.entries()) {
    const r = first[i]!;
    s.send({
      typeUrl: EDS,
      versionInfo: 'v1',
      responseNonce: r.nonce ?? '',
      resourceNames: ['a', 'b', 'c'],
    });
  }
  // v2 differs from v1 only in "b". Stream 0 holds v1 and gets "b" alone.
  const g1b = new Map(g1);
  g1b.set('b', cla('b', '10.0.0.9'));
  source.set = {
    version: 'v2',
    resources: new UnionMap([g1b, g2]),
    groups: [g1b, g2],
    incremental: { from: 'v1', changed: new Set(['b']) },
  };
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r2 = await streams[0]!.next();
  assert.equal(r2.versionInfo, 'v2');
  assert.deepEqual(names(r2.resources), ['b']);
  const ack = r2.nonce ?? '';
  await streams[1]!.next();
  // An increment from a version the proxy does not hold gets the full set.
  streams[0]!.send({
    typeUrl: EDS,
    versionInfo: 'v2',
    responseNonce: ack,
    resourceNames: ['a', 'b', 'c'],
  });
  source.set = {
    ...source.set,
    version: 'v3',
    incremental: { from: 'v1', changed: new Set(['b']) },
  };
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r3 = await streams[0]!.next();
  assert.deepEqual(names(r3.resources).sort(), ['a', 'b', 'c']);
  for (const s of streams) s.cancel();
});
