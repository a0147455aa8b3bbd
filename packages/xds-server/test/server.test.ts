import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { XdsServer, parseProxyInfo } from '../src/index.js';
import { Semaphore } from '../src/push-queue.js';
import { CDS, EDS, FakeSource, HookRecorder, TestClient, names, sidecarNode } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function source(): FakeSource {
  const s = new FakeSource();
  s.set(CDS, 'c1', { name: 'c1' });
  s.set(EDS, 'a', { clusterName: 'a' });
  return s;
}

test('a malformed node id gets INVALID_ARGUMENT with the reason, and the server keeps serving', async () => {
  const server = new XdsServer({ source: source() });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const bad = client.sotw();
  bad.send({ node: { id: 'sidecar~not-an-ip~x.default~default.svc.cluster.local' }, typeUrl: CDS });
  const st = await bad.status;
  assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(st.details, 'node id IP must be an IP address, not "not-an-ip"');
  const noNode = client.sotw();
  noNode.send({ typeUrl: CDS });
  assert.equal((await noNode.status).code, grpc.status.INVALID_ARGUMENT);
  assert.equal(server.stats.rejectedStreams, 2);
  const good = client.sotw();
  good.send({ node: sidecarNode('ok'), typeUrl: CDS });
  assert.deepEqual(names((await good.next()).resources), ['c1']);
  good.cancel();
});

test('a client disconnect cleans up its state', async () => {
  const rec = new HookRecorder();
  const server = new XdsServer({ source: source(), hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const s = client.sotw();
  const node = sidecarNode('gone');
  s.send({ node, typeUrl: CDS });
  await s.next();
  assert.equal(server.connectedCount, 1);
  assert.ok(server.connection(node.id ?? ''));
  const disconnected = rec.next('disconnect');
  s.cancel();
  await disconnected;
  assert.equal(server.connectedCount, 0);
  assert.equal(server.connection(node.id ?? ''), undefined);
  await server.push({ proxies: 'all', typeUrls: 'all', reason: 'after disconnect' });
});

test('after a control-plane restart a reconnecting client gets a consistent config', async () => {
  const src = source();
  const server1 = new XdsServer({ source: src });
  const port = await server1.listen('127.0.0.1:0');
  const client1 = new TestClient(port);
  const s1 = client1.sotw();
  const node = sidecarNode('restart');
  s1.send({ node, typeUrl: CDS });
  const r1 = await s1.next();
  s1.send({ typeUrl: CDS, versionInfo: r1.versionInfo ?? '', responseNonce: r1.nonce ?? '' });
  await server1.close(1000);
  const st = await s1.status;
  assert.equal(st.code, grpc.status.UNAVAILABLE);
  client1.close();

  // Config changed while the control plane was down.
  src.set(CDS, 'c2', { name: 'c2' });
  const server2 = new XdsServer({ source: src });
  const port2 = await server2.listen(`127.0.0.1:${port}`);
  assert.equal(port2, port);
  const client2 = new TestClient(port2);
  cleanups.push(
    () => server2.close(100),
    () => client2.close(),
  );
  const s2 = client2.sotw();
  // Envoy's first request on the new stream carries its last version and the old nonce.
  s2.send({ node, typeUrl: CDS, versionInfo: r1.versionInfo ?? '', responseNonce: r1.nonce ?? '' });
  const r2 = await s2.next();
  assert.deepEqual(names(r2.resources), ['c1', 'c2']);
  assert.equal(r2.versionInfo, src.version(CDS));
  assert.notEqual(r2.nonce, r1.nonce);
  s2.cancel();
});

test('push throttling bounds concurrent pushes and merges pending ones', async () => {
  const src = source();
  const rec = new HookRecorder();
  const server = new XdsServer({ source: src, maxConcurrentPushes: 2, hooks: rec.hooks });
  const port = await server.listen('127.0.0.1:0');
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
  );
  const streams = [];
  for (let i = 0; i < 5; i++) {
    const s = client.sotw();
    s.send({ node: sidecarNode(`t${i}`), typeUrl: CDS });
    await s.next();
    streams.push(s);
  }
  let active = 0;
  let peak = 0;
  const gates: (() => void)[] = [];
  src.onCall = async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise<void>((r) => gates.push(r));
    active--;
  };
  src.set(CDS, 'c3', { name: 'c3' });
  const p1 = server.push({ proxies: 'all', typeUrls: [CDS], reason: 'one' });
  const p2 = server.push({ proxies: 'all', typeUrls: [CDS], reason: 'two' }); // merged while queued
  let done = false;
  void Promise.all([p1, p2]).then(() => (done = true));
  // Release the gates as they come: never more than 2 at a time.
  let calls = 0;
  while (!done) {
    await new Promise((r) => setImmediate(r));
    const g = gates.shift();
    if (g) {
      assert.ok(server.pushQueueDepth().active <= 2);
      calls++;
      g();
    }
  }
  src.onCall = undefined;
  assert.equal(peak, 2);
  // Five connections, and the second push merged into the first for those still queued.
  assert.ok(calls >= 5 && calls < 10, `calls ${calls}`);
  for (const s of streams) {
    assert.deepEqual(names((await s.next()).resources), ['c1', 'c3']);
    s.cancel();
  }
});

test('proxy info from Istio node metadata', () => {
  const r = parseProxyInfo({
    id: 'router~10.0.0.9~istio-ingressgateway-5d7.istio-system~istio-system.svc.cluster.local',
    metadata: {
      LABELS: { istio: 'ingressgateway' },
      SERVICE_ACCOUNT: 'istio-ingressgateway-service-account',
      INSTANCE_IPS: '10.0.0.9,fd00::9',
      CLUSTER_ID: 'Kubernetes',
      ISTIO_VERSION: '1.24.0',
    },
  });
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.value.type, 'router');
  assert.equal(r.value.namespace, 'istio-system');
  assert.equal(r.value.podName, 'istio-ingressgateway-5d7');
  assert.deepEqual(r.value.ips, ['10.0.0.9', 'fd00::9']);
  assert.deepEqual(r.value.labels, { istio: 'ingressgateway' });
  assert.equal(r.value.proxyless, false);
  const grpcClient = parseProxyInfo(sidecarNode('client', 'default', { GENERATOR: 'grpc' }));
  assert.ok(grpcClient.ok && grpcClient.value.proxyless);
  const bad = parseProxyInfo({
    id: 'sidecar~10.0.0.1~x.default~default.svc',
    metadata: { LABELS: { a: 1 }, NAMESPACE: 7 },
  });
  assert.deepEqual(bad, {
    ok: false,
    error:
      'node metadata LABELS.a must be a string; node metadata NAMESPACE must be a string, not number',
  });
  assert.deepEqual(parseProxyInfo({ id: 'sidecar~10.0.0.1~pod~' }), {
    ok: false,
    error:
      'cannot tell the namespace of node "sidecar~10.0.0.1~pod~": set metadata NAMESPACE or use POD.NAMESPACE',
  });
});

test('the send semaphore hands out at most its limit, in arrival order', async () => {
  const sem = new Semaphore(2);
  const order: number[] = [];
  await sem.acquire();
  await sem.acquire();
  const third = sem.acquire().then(() => order.push(3));
  const fourth = sem.acquire().then(() => order.push(4));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  sem.release();
  await third;
  assert.deepEqual(order, [3]);
  sem.release();
  await fourth;
  assert.deepEqual(order, [3, 4]);
  assert.throws(() => new Semaphore(0), /positive integer/);
});

test('undecodable request bytes end that stream with an error; the server keeps serving', async () => {
  const server = new XdsServer({ source: source() });
  const port = await server.listen('127.0.0.1:0');
  const Raw = grpc.makeGenericClientConstructor(
    {
      StreamAggregatedResources: {
        path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'Raw',
  );
  const raw = new Raw(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    StreamAggregatedResources(): grpc.ClientDuplexStream<Buffer, Buffer>;
    close(): void;
  };
  const client = new TestClient(port);
  cleanups.push(
    () => server.close(100),
    () => client.close(),
    () => raw.close(),
  );
  // A resource_names entry (field 3) whose length runs past the end of the message.
  const call = raw.StreamAggregatedResources();
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  call.write(Buffer.from([0x1a, 0x7f, 0x61, 0x62]));
  const st = await status;
  assert.notEqual(st.code, grpc.status.OK);
  const good = client.sotw();
  good.send({ node: sidecarNode('after-garbage'), typeUrl: CDS });
  assert.deepEqual(names((await good.next()).resources), ['c1']);
  good.cancel();
});
