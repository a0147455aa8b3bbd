// Proxyless gRPC clients (@grpc/grpc-js-xds, a real third-party xDS client) take their routing
// from `trellis control-plane` and call echo servers registered in the mesh as Pods: weighted
// splits, header routing, faults, retries, timeouts, circuit breaking, and live changes of
// routes and endpoints without reconnecting.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import type { KubeObject } from '@trellis/api';
import { TYPE_URL } from '@trellis/envoy';
import { keyOf, openFileStore, type ConfigStore } from '@trellis/config';
import {
  echoPackage,
  startEchoServer,
  type EchoReply,
  type EchoRequest,
  type EchoServer,
} from '@trellis/testing';
import { ControlPlane } from '../src/index.js';

grpcXds.register();

const HOST = 'echo.default.svc.cluster.local';
const TARGET = `xds:///${HOST}:7070`;
const BOOTSTRAP_KEY = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';

type EchoClient = grpc.Client & {
  Echo(
    req: EchoRequest,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r: EchoReply) => void,
  ): void;
};

let dir: string;
let store: ConfigStore;
let cp: ControlPlane;
const servers: EchoServer[] = [];
let clientSeq = 0;

async function put(o: KubeObject): Promise<void> {
  const cur = await store.get(keyOf(o));
  if (!cur) await store.create(o);
  else
    await store.update({
      ...o,
      metadata: { ...o.metadata, resourceVersion: cur.metadata.resourceVersion ?? '' },
    });
}

async function remove(o: KubeObject): Promise<void> {
  if (await store.get(keyOf(o))) await store.delete(keyOf(o));
}

function pod(name: string, version: string, port: number): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'echo', version } },
    spec: {
      serviceAccountName: 'echo',
      containers: [{ name: 'echo', image: 'echo', ports: [{ name: 'grpc', containerPort: port }] }],
    },
    status: {
      phase: 'Running',
      podIP: '127.0.0.1',
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function vs(http: unknown[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'echo', namespace: 'default' },
    spec: { hosts: ['echo'], http },
  };
}

function dr(trafficPolicy?: unknown): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'echo', namespace: 'default' },
    spec: {
      host: 'echo',
      ...(trafficPolicy ? { trafficPolicy } : {}),
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
}

const route = (subset: string, weight?: number) => ({
  destination: { host: 'echo', subset },
  ...(weight !== undefined ? { weight } : {}),
});

function newClient(): EchoClient {
  const bootstrap = {
    xds_servers: [
      {
        server_uri: `127.0.0.1:${cp.xdsPort}`,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    node: {
      id: `sidecar~127.0.0.1~client-${clientSeq++}.default~default.svc.cluster.local`,
      metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' },
      locality: {},
    },
  };
  const Echo = echoPackage().trellis.testing.v1.Echo;
  return new Echo(TARGET, grpc.credentials.createInsecure(), {
    [BOOTSTRAP_KEY]: JSON.stringify(bootstrap),
  }) as unknown as EchoClient;
}

function call(
  c: EchoClient,
  req: EchoRequest = {},
  headers: Record<string, string> = {},
  deadlineMs = 10_000,
): Promise<EchoReply> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve, reject) =>
    c.Echo(req, md, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r))),
  );
}

/** NACKs recorded by the control plane, for failure messages. */
function nacks(): string {
  return JSON.stringify({
    snapshot: cp.snapshot?.version,
    controller: cp.controllerStats,
    conns: cp.xds.connections().map((c) => ({
      id: c.proxy.id,
      types: c.types.map(
        (t) =>
          `${t.typeUrl.split('.').pop()} sent=${t.lastSent?.version} acked=${t.lastAcked?.version} nack=${t.lastNack?.message}`,
      ),
    })),
  });
}

/** Calls until `ok` holds for a reply (config reached the client), or fails after `ms`. */
async function eventually(
  c: EchoClient,
  ok: (r: EchoReply) => boolean,
  req: EchoRequest = {},
  headers: Record<string, string> = {},
  ms = 15_000,
): Promise<void> {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await call(c, req, headers, 2_000);
      if (ok(r)) return;
      last = `reply from ${r.server}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`config did not reach the client within ${ms} ms (last: ${last})`);
}

async function counts(c: EchoClient, n: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await call(c);
    out.set(r.version, (out.get(r.version) ?? 0) + 1);
  }
  return out;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-grpc-xds-'));
  store = await openFileStore(dir);
  servers.push(await startEchoServer('echo-v1-0', 'v1'), await startEchoServer('echo-v2-0', 'v2'));
  await put({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'default', labels: { app: 'echo' } },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc' }] },
  });
  await put(pod('echo-v1-0', 'v1', servers[0]!.port));
  await put(pod('echo-v2-0', 'v2', servers[1]!.port));
  await put(dr());
  cp = await ControlPlane.start({
    store,
    xdsAddress: '127.0.0.1:0',
    monitoringPort: 0,
    debounce: { quietMs: 20, maxMs: 500 },
  });
});

after(async () => {
  await cp?.close();
  await store?.close();
  for (const s of servers) await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('proxyless gRPC through trellis control-plane', () => {
  test('without a VirtualService calls reach both versions', async () => {
    const c = newClient();
    try {
      await remove(vs([]));
      const seen = await counts(c, 40);
      assert.ok((seen.get('v1') ?? 0) > 0 && (seen.get('v2') ?? 0) > 0, JSON.stringify([...seen]));
    } finally {
      c.close();
    }
  });

  test('weighted split 80/20 within tolerance', async () => {
    const c = newClient();
    try {
      await put(vs([{ route: [route('v1', 80), route('v2', 20)] }]));
      await eventually(c, () => true);
      // Wait until the split is in force: at least one call each way.
      await eventually(c, (r) => r.version === 'v2');
      const seen = await counts(c, 300);
      const v1 = (seen.get('v1') ?? 0) / 300;
      assert.ok(v1 >= 0.7 && v1 <= 0.9, `v1 share ${v1} not within 0.7..0.9`);
    } finally {
      c.close();
    }
  });

  test('header-match routing sends x-user: jason to v2 and others to v1', async () => {
    const c = newClient();
    try {
      await put(
        vs([
          { match: [{ headers: { 'x-user': { exact: 'jason' } } }], route: [route('v2')] },
          { route: [route('v1')] },
        ]),
      );
      await eventually(c, (r) => r.version === 'v2', {}, { 'x-user': 'jason' });
      await eventually(c, (r) => r.version === 'v1');
      for (let i = 0; i < 10; i++) {
        assert.equal((await call(c, {}, { 'x-user': 'jason' })).version, 'v2');
        assert.equal((await call(c, {}, { 'x-user': 'bob' })).version, 'v1');
      }
    } finally {
      c.close();
    }
  });

  test('a VirtualService change reaches a connected client without reconnecting', async () => {
    const c = newClient();
    try {
      await put(vs([{ route: [route('v1')] }]));
      await eventually(c, (r) => r.version === 'v1');
      const before = cp.xds
        .connections()
        .map((x) => x.connectionId)
        .sort();
      await put(vs([{ route: [route('v2')] }]));
      await eventually(c, (r) => r.version === 'v2');
      const afterIds = cp.xds
        .connections()
        .map((x) => x.connectionId)
        .sort();
      assert.deepEqual(afterIds, before, 'the xDS stream was not re-established');
      // The proxy acknowledged the change, so its convergence time was recorded.
      const converged = /^pilot_proxy_convergence_time_count (\d+)$/m.exec(cp.metrics.render());
      assert.ok(converged && Number(converged[1]) > 0, 'no convergence time recorded');
    } finally {
      c.close();
    }
  });

  test('fault injection: abort with a gRPC status, and a fixed delay', async () => {
    const c = newClient();
    try {
      await put(
        vs([
          {
            fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 100 } } },
            route: [route('v1')],
          },
        ]),
      );
      const end = Date.now() + 15_000;
      let code: number | undefined;
      while (Date.now() < end && code !== grpc.status.UNAVAILABLE) {
        try {
          await call(c);
        } catch (e) {
          code = (e as grpc.ServiceError).code;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(code, grpc.status.UNAVAILABLE, 'abort fault never applied');
      await put(
        vs([
          {
            fault: { delay: { fixedDelay: '700ms', percentage: { value: 100 } } },
            route: [route('v1')],
          },
        ]),
      );
      let took = 0;
      let outcome = '';
      const end2 = Date.now() + 15_000;
      while (Date.now() < end2 && took < 650) {
        const t0 = Date.now();
        outcome = await call(c).then(
          (r) => `reply from ${r.server}`,
          (e: Error) => e.message,
        );
        took = Date.now() - t0;
        // Aborted calls fail without I/O: yield so the in-process control plane can run.
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(
        took >= 650 && took < 5_000,
        `delay fault: call took ${took} ms (${outcome}); NACKs: ${nacks()}`,
      );
    } finally {
      c.close();
    }
  });

  test('retries: a transient failure is retried when retryOn says so, and not otherwise', async () => {
    const c = newClient();
    try {
      await put(vs([{ retries: { attempts: 3, retryOn: 'unavailable' }, route: [route('v1')] }]));
      await eventually(c, (r) => r.message === 'probe-a', { message: 'probe-a', failFirst: 1 });
      const r = await call(c, { message: 'once', failFirst: 2 });
      assert.equal(r.message, 'once');
      await put(vs([{ retries: { attempts: 0 }, route: [route('v2')] }]));
      await eventually(c, (x) => x.version === 'v2');
      await assert.rejects(
        call(c, { message: 'no-retry', failFirst: 1 }),
        (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
      );
    } finally {
      c.close();
    }
  });

  test('timeouts: a route timeout cuts a slow call with DEADLINE_EXCEEDED', async () => {
    const c = newClient();
    try {
      await put(vs([{ timeout: '300ms', route: [route('v1')] }]));
      const end = Date.now() + 15_000;
      let code: number | undefined;
      let took = 0;
      while (Date.now() < end && code !== grpc.status.DEADLINE_EXCEEDED) {
        const t0 = Date.now();
        try {
          await call(c, { delayMs: 1_500 });
        } catch (e) {
          code = (e as grpc.ServiceError).code;
        }
        took = Date.now() - t0;
      }
      assert.equal(code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(took < 1_400, `the call took ${took} ms, longer than the route timeout allows`);
    } finally {
      c.close();
    }
  });

  test('circuit breaking: http2MaxRequests 1 rejects concurrent calls beyond it', async () => {
    const c = newClient();
    try {
      await put(vs([{ route: [route('v1')] }]));
      await put(dr({ connectionPool: { http: { http2MaxRequests: 1 } } }));
      const end = Date.now() + 15_000;
      let rejected = 0;
      let ok = 0;
      while (Date.now() < end && rejected === 0) {
        // Staggered, so each call is counted as in flight before the next one is picked.
        const calls: Promise<PromiseSettledResult<EchoReply>>[] = [];
        for (let i = 0; i < 6; i++) {
          calls.push(Promise.allSettled([call(c, { delayMs: 400 })]).then((r) => r[0]));
          await new Promise((r) => setTimeout(r, 30));
        }
        const results = await Promise.all(calls);
        ok = results.filter((r) => r.status === 'fulfilled').length;
        rejected = results.filter(
          (r) =>
            r.status === 'rejected' &&
            (r.reason as grpc.ServiceError).code === grpc.status.UNAVAILABLE,
        ).length;
      }
      assert.ok(rejected > 0, `no call was rejected by the circuit breaker; NACKs: ${nacks()}`);
      assert.ok(ok > 0, 'the circuit breaker rejected every call');
    } finally {
      await put(dr());
      c.close();
    }
  });

  test('an endpoint change reaches the client: a new v1 replica starts serving', async () => {
    const c = newClient();
    try {
      await put(vs([{ route: [route('v1')] }]));
      await eventually(c, (r) => r.version === 'v1');
      const extra = await startEchoServer('echo-v1-1', 'v1');
      servers.push(extra);
      const pushesBefore = new Map(cp.xds.stats.pushes);
      await put(pod('echo-v1-1', 'v1', extra.port));
      await eventually(c, (r) => r.server === 'echo-v1-1');
      // Only endpoints changed, so only EDS was sent again.
      const sent = (t: string) => (cp.xds.stats.pushes.get(t) ?? 0) - (pushesBefore.get(t) ?? 0);
      assert.ok(sent(TYPE_URL.ClusterLoadAssignment) > 0, 'EDS was not pushed');
      for (const t of [TYPE_URL.Cluster, TYPE_URL.Listener, TYPE_URL.RouteConfiguration])
        assert.equal(sent(t), 0, `${t} was pushed`);
      await remove(pod('echo-v1-1', 'v1', extra.port));
      // Once the endpoint is gone, calls only reach the first replica.
      await eventually(c, (r) => r.server === 'echo-v1-0');
    } finally {
      c.close();
    }
  });
});
