// Delta xDS: an increment of a set shared by many proxies is built once and sent to each of them
// as the same response (same bytes, same nonce, as istiod's per-push nonces). A proxy with a
// narrower subscription gets a response of its own; ACK and NACK bookkeeping stay per stream
// although the nonce is shared. Also: the server's per-node lookups with two streams of one node,
// and the direct decoding of ACKs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryRequest,
  type DeltaDiscoveryRequest,
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
import { decodeDeltaRequest } from '../src/delta-wire.js';
import { EDS, HookRecorder, TestClient, sidecarNode, until, cla } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * As the control plane's source: one set object per version, handed as it is to every proxy
 * whose subscription names all of it (a narrower subscription gets a set of its own), and each
 * new version an increment of the previous one. Counts how often each proxy asked.
 */
class CoveringSource implements ResourceSource {
  set: ResourceSet = { version: '', resources: new Map() };
  private n = 0;
  resources(_p: ProxyInfo, _typeUrl: string, names: readonly string[] | undefined): ResourceSet {
    const set = this.set;
    if (!names || (names.length === set.resources.size && names.every((n) => set.resources.has(n))))
      return set;
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
  update(entries: Record<string, EncodedAny>): void {
    const old = this.set;
    const resources = new Map(old.resources);
    for (const [n, r] of Object.entries(entries)) resources.set(n, r);
    this.set = {
      version: `v${++this.n}`,
      resources,
      ...(old.version !== ''
        ? { incremental: { from: old.version, changed: new Set(Object.keys(entries)) } }
        : {}),
    };
  }
}

const resNames = (r: DeltaDiscoveryResponse): string[] =>
  (r.resources ?? []).map((x) => x.name ?? '');

function heldBy(server: XdsServer, nodeId: string): Map<string, string> {
  const conns = (server as unknown as { conns: Map<string, Connection> }).conns;
  for (const c of conns.values())
    if (c.proxy.nodeId === nodeId && c instanceof DeltaConnection)
      return new Map([...c.clientVersions(EDS)].sort(([a], [b]) => (a < b ? -1 : 1)));
  throw new Error(`no delta connection for ${nodeId}`);
}

test('delta: an increment is sent as one shared response; ACK and NACK stay per stream', async () => {
  const source = new CoveringSource();
  source.update({ a: cla('a', '10.0.0.1'), b: cla('b', '10.0.0.2'), c: cla('c', '10.0.0.3') });
  const rec = new HookRecorder();
  const server = new XdsServer({ source, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const nodes = [sidecarNode('full-0'), sidecarNode('full-1'), sidecarNode('narrow')];
  const subs = [
    ['a', 'b', 'c'],
    ['c', 'b', 'a'],
    ['a', 'b'],
  ];
  const ids = nodes.map((n) => n.id ?? '');
  const streams = nodes.map(() => client.delta());
  for (const [i, node] of nodes.entries()) {
    const s = streams[i] as (typeof streams)[number];
    s.send({ node, typeUrl: EDS, resourceNamesSubscribe: subs[i] ?? [] });
    const r = await s.next();
    assert.deepEqual(resNames(r), [...(subs[i] ?? [])].sort());
    const acked = rec.next('ack', node.id);
    s.send({ typeUrl: EDS, responseNonce: r.nonce ?? '' });
    await acked;
  }
  const [s0, s1, s2] = streams as [(typeof streams)[0], (typeof streams)[0], (typeof streams)[0]];

  // "c" changes: both full subscribers get the same response; the narrow one nothing.
  source.update({ c: cla('c', '10.0.0.9') });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const [r0, r1] = [await s0.next(), await s1.next()];
  assert.deepEqual(resNames(r0), ['c']);
  assert.deepEqual(r1, r0);
  assert.equal(r0.systemVersionInfo, 'v2');
  assert.equal(s2.buffered, 0);
  assert.equal(server.connection(ids[2] ?? '')?.types[0]?.lastSent?.version, 'v1');

  // Proxy 0 ACKs the shared nonce, proxy 1 NACKs it: only proxy 1 takes "c" back.
  const acked = rec.next('ack', ids[0] ?? '');
  const nacked = rec.next('nack', ids[1] ?? '');
  s0.send({ typeUrl: EDS, responseNonce: r0.nonce ?? '' });
  s1.send({ typeUrl: EDS, responseNonce: r1.nonce ?? '', errorDetail: { message: 'bad c' } });
  await acked;
  await nacked;
  const st0 = server.connection(ids[0] ?? '')?.types[0];
  const st1 = server.connection(ids[1] ?? '')?.types[0];
  assert.equal(st0?.lastAcked?.version, 'v2');
  assert.equal(st0?.lastNack, undefined);
  assert.equal(st1?.lastAcked?.version, 'v1');
  assert.equal(st1?.lastNack?.message, 'bad c');
  const v2c = resourceVersion(source.set.resources.get('c') as EncodedAny);
  assert.equal(heldBy(server, ids[0] ?? '').get('c'), v2c);
  assert.notEqual(heldBy(server, ids[1] ?? '').get('c'), v2c);

  // "b" changes: proxy 0 (in sync) gets "b" alone; proxy 1 (after its NACK) "b" and "c" again;
  // the narrow proxy "b" in a response of its own.
  source.update({ b: cla('b', '10.0.0.8') });
  await server.push({ proxies: 'all', typeUrls: [EDS], reason: 'endpoints' });
  const [q0, q1, q2] = [await s0.next(), await s1.next(), await s2.next()];
  assert.deepEqual(resNames(q0), ['b']);
  assert.deepEqual(resNames(q1), ['b', 'c']);
  assert.deepEqual(resNames(q2), ['b']);
  assert.notEqual(q1.nonce, q0.nonce);
  for (const [s, q] of [
    [s0, q0],
    [s1, q1],
    [s2, q2],
  ] as const)
    s.send({ typeUrl: EDS, responseNonce: q.nonce ?? '' });
  for (const id of ids)
    await until(() => server.connection(id)?.types[0]?.lastAcked?.version === 'v3', 'ACK of v3');
  const want = new Map(
    [...source.set.resources].map(([n, r]) => [n, resourceVersion(r)] as [string, string]),
  );
  assert.deepEqual(heldBy(server, ids[0] ?? ''), want);
  assert.deepEqual(heldBy(server, ids[1] ?? ''), want);
  want.delete('c');
  assert.deepEqual(heldBy(server, ids[2] ?? ''), want);
  for (const s of streams) s.cancel();
});

test('per-node lookups follow the newest stream of a node, and the older one after it ends', async () => {
  const source = new CoveringSource();
  source.update({ a: cla('a', '10.0.0.1') });
  const rec = new HookRecorder();
  const server = new XdsServer({ source, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const node = sidecarNode('twice');
  const id = node.id ?? '';
  const first = client.delta();
  first.send({ node, typeUrl: EDS, resourceNamesSubscribe: ['a'] });
  const r = await first.next();
  const acked = rec.next('ack', id);
  first.send({ typeUrl: EDS, responseNonce: r.nonce ?? '' });
  await acked;
  const firstId = server.connection(id)?.connectionId;
  assert.equal(server.convergedSince(id, 0), true);

  const second = client.delta();
  second.send({ node, typeUrl: EDS, resourceNamesSubscribe: ['a'] });
  await second.next();
  assert.notEqual(server.connection(id)?.connectionId, firstId);
  assert.equal(server.convergedSince(id, 0), false); // the newest has not ACKed
  second.cancel();
  await until(() => server.connectedCount === 1, 'the second stream to end');
  assert.equal(server.connection(id)?.connectionId, firstId);
  assert.equal(server.hasProxy(id), true);
  first.cancel();
  await until(() => server.connectedCount === 0, 'the first stream to end');
  assert.equal(server.hasProxy(id), false);
  assert.equal(server.connection(id), undefined);
});

test('requests decode as @trellis/envoy decodes them, ACKs directly from the wire', () => {
  const requests: DeltaDiscoveryRequest[] = [
    {},
    { typeUrl: EDS },
    { typeUrl: EDS, responseNonce: 'abc-1' },
    { typeUrl: EDS, responseNonce: 'é'.repeat(200) }, // a two-byte length, multi-byte UTF-8
    { typeUrl: EDS, responseNonce: 'n', errorDetail: { code: 3, message: 'bad' } },
    { typeUrl: EDS, resourceNamesSubscribe: ['a', 'b'], resourceNamesUnsubscribe: ['c'] },
    { node: sidecarNode('decode'), typeUrl: EDS, initialResourceVersions: { a: '1' } },
  ];
  for (const r of requests) {
    const bytes = Buffer.from(encodeDeltaDiscoveryRequest(r));
    assert.deepEqual(decodeDeltaRequest(bytes), decodeDeltaDiscoveryRequest(bytes));
  }
  // Truncated input is left to the full decoder: the same result as it gives.
  const ack = Buffer.from(encodeDeltaDiscoveryRequest({ typeUrl: EDS, responseNonce: 'abc' }));
  for (const cut of [1, 4, ack.length - 1]) {
    const part = ack.subarray(0, cut);
    const outcome = (f: (b: Buffer) => DeltaDiscoveryRequest): unknown => {
      try {
        return f(part);
      } catch (e) {
        return e instanceof Error ? e.message : e;
      }
    };
    assert.deepEqual(outcome(decodeDeltaRequest), outcome(decodeDeltaDiscoveryRequest));
  }
});
