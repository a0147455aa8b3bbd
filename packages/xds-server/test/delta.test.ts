import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { XdsServer, resourceVersion } from '../src/index.js';
import { CDS, EDS, FakeSource, HookRecorder, TestClient, sidecarNode } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(): Promise<{
  server: XdsServer;
  source: FakeSource;
  client: TestClient;
  rec: HookRecorder;
  port: number;
}> {
  const source = new FakeSource();
  source.set(EDS, 'a', { clusterName: 'a' });
  source.set(CDS, 'c1', { name: 'c1' });
  source.set(CDS, 'c2', { name: 'c2' });
  const rec = new HookRecorder();
  const server = new XdsServer({ source, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  return { server, source, client, rec, port };
}

const resNames = (r: { resources?: { name?: string }[] }): string[] =>
  (r.resources ?? []).map((x) => x.name ?? '');

test('delta: subscribe, changes only, removals, unsubscribe', async () => {
  const { server, source, client, rec } = await setup();
  const s = client.delta();
  const node = sidecarNode('d1');
  s.send({ node, typeUrl: EDS, resourceNamesSubscribe: ['a', 'b'] });
  const r1 = await s.next();
  assert.deepEqual(resNames(r1), ['a']);
  assert.deepEqual(r1.removedResources, ['b']); // b does not exist
  assert.equal(r1.systemVersionInfo, '1');
  let acked = rec.next('ack');
  s.send({ typeUrl: EDS, responseNonce: r1.nonce ?? '' });
  await acked;

  source.set(EDS, 'b', { clusterName: 'b' });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r2 = await s.next();
  assert.deepEqual(resNames(r2), ['b']); // a did not change
  assert.equal(r2.removedResources, undefined);
  acked = rec.next('ack');
  s.send({ typeUrl: EDS, responseNonce: r2.nonce ?? '' });
  await acked;

  source.remove(EDS, 'a');
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const r3 = await s.next();
  assert.deepEqual(resNames(r3), []);
  assert.deepEqual(r3.removedResources, ['a']);

  // Unsubscribing is not answered; later changes of b are no longer sent.
  s.send({ typeUrl: EDS, responseNonce: r3.nonce ?? '', resourceNamesUnsubscribe: ['b'] });
  const pushes = server.stats.pushes.get(EDS);
  source.set(EDS, 'b', { clusterName: 'b', policy: { overprovisioningFactor: 200 } });
  await rec.next('ack');
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  assert.equal(server.stats.pushes.get(EDS), pushes);
  const st = server.connection(node.id ?? '')?.types[0];
  assert.deepEqual(st?.names, ['a']);
  assert.equal(st?.lastSent?.removed, 1);
  s.cancel();
});

test('delta: wildcard CDS and a NACK that makes the server resend', async () => {
  const { server, source, client, rec } = await setup();
  const s = client.delta();
  const node = sidecarNode('d2');
  s.send({ node, typeUrl: CDS });
  const r1 = await s.next();
  assert.deepEqual(resNames(r1).sort(), ['c1', 'c2']);
  let acked = rec.next('ack');
  s.send({ typeUrl: CDS, responseNonce: r1.nonce ?? '' });
  await acked;
  source.set(CDS, 'c1', { name: 'c1', connectTimeout: '2s' });
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'config' });
  const r2 = await s.next();
  assert.deepEqual(resNames(r2), ['c1']);
  const nacked = rec.next('nack');
  s.send({
    typeUrl: CDS,
    responseNonce: r2.nonce ?? '',
    errorDetail: { code: 3, message: 'c1: no' },
  });
  await nacked;
  const st = server.connection(node.id ?? '')?.types[0];
  assert.equal(st?.lastNack?.message, 'c1: no');
  assert.equal(st?.lastNack?.version, r2.systemVersionInfo);
  assert.equal(st?.lastAcked?.nonce, r1.nonce);
  // The proxy kept the old c1, so the next change resends c1 along with c2.
  source.set(CDS, 'c2', { name: 'c2', connectTimeout: '3s' });
  await server.push({ proxies: 'all', typeUrls: [CDS], reason: 'config' });
  const r3 = await s.next();
  assert.deepEqual(resNames(r3), ['c1', 'c2']);
  acked = rec.next('ack');
  s.send({ typeUrl: CDS, responseNonce: r3.nonce ?? '' });
  await acked;
  s.cancel();
});

test('delta reconnect with initial_resource_versions sends only what differs', async () => {
  const { source, client } = await setup();
  source.set(EDS, 'b', { clusterName: 'b' });
  const s1 = client.delta();
  const node = sidecarNode('d3');
  s1.send({ node, typeUrl: EDS, resourceNamesSubscribe: ['a', 'b'] });
  const r1 = await s1.next();
  const versions = Object.fromEntries(
    (r1.resources ?? []).map((r) => [r.name ?? '', r.version ?? '']),
  );
  assert.equal(
    versions.a,
    resourceVersion((r1.resources ?? [])[0]?.resource ?? { typeUrl: '', value: new Uint8Array() }),
  );
  s1.cancel();
  source.set(EDS, 'b', { clusterName: 'b', policy: { overprovisioningFactor: 150 } });
  const s2 = client.delta();
  s2.send({
    node,
    typeUrl: EDS,
    resourceNamesSubscribe: ['a', 'b', 'gone'],
    initialResourceVersions: { ...versions, gone: 'x' },
  });
  const r2 = await s2.next();
  assert.deepEqual(resNames(r2), ['b']);
  assert.deepEqual(r2.removedResources, ['gone']);
  s2.cancel();
});

test('delta: a stream without a type URL is refused', async () => {
  const { client } = await setup();
  const s = client.delta();
  s.send({ node: sidecarNode('d4') });
  const status = await s.status;
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.match(status.details, /type_url is required/);
});
