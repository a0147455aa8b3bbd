// The runtime daemon in-process with real processes and ports (all port 0): Deployments become
// local pods in the store with the contract's labels, annotations and status; apps get their
// environment; scaling, rolling and deleting work; an injected client reaches an injected
// server through both sidecars; the ingress gateway routes to an app; crash loops and missing
// commands are reported and backed off. Everything is stopped in after().
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@trellis/api';
import { keyOf, type ConfigStore } from '@trellis/config';
import {
  LocalRuntime,
  isAlive,
  readProcessRecords,
  runtimePaths,
  type PodStatusRow,
} from '../src/index.js';
import {
  CRASH_APP,
  HTTP_APP,
  TRELLIS_BIN,
  deployment,
  eventually,
  get,
  service,
} from './helpers.js';

let dir: string;
let rt: LocalRuntime;
let store: ConfigStore;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-local-rt-'));
  rt = await LocalRuntime.start({
    stateDir: join(dir, 'state'),
    trellisBin: TRELLIS_BIN,
    xdsPort: 0,
    monitoringPort: 0,
    ingress: { httpPort: 0, httpsPort: 0, tcpPort: 0 },
    backoff: { initialMs: 200, maxMs: 2_000 },
    proxyDrainMs: 100,
    maxGraceMs: 3_000,
    debounce: { quietMs: 10, maxMs: 500 },
  });
  store = rt.store;
});

after(async () => {
  const records = readProcessRecords(runtimePaths(join(dir, 'state')).processesFile);
  await rt?.stop();
  for (const r of records)
    assert.equal(isAlive(r.identity), false, `${r.role} ${r.pod} left running`);
  assert.equal(existsSync(runtimePaths(join(dir, 'state')).daemonFile), false);
  rmSync(dir, { recursive: true, force: true });
});

async function put(o: KubeObject): Promise<void> {
  const existing = await store.get(keyOf(o));
  if (existing) await store.update(o);
  else await store.create(o);
}

async function podsOf(ns: string, app: string): Promise<KubeObject[]> {
  const { items } = await store.list({ group: '', kind: 'Pod' }, { namespace: ns });
  return items.filter((p) => p.metadata.labels?.app === app);
}

function rows(ns: string, deploymentName: string): PodStatusRow[] {
  return rt.status().pods.filter((p) => p.namespace === ns && p.deployment === deploymentName);
}

const isReady = (p: KubeObject): boolean =>
  (
    (p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []
  ).some((c) => c.type === 'Ready' && c.status === 'True');

test(
  'an uninjected Deployment runs, scales, rolls and is deleted',
  { timeout: 45_000 },
  async () => {
    await put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } });
    await put(service('web', 'plain', 9080));
    await put(deployment('web', 'plain', { command: ['node', HTTP_APP], port: 9080 }));
    const [pod] = await eventually('a ready web pod', async () => {
      const ps = await podsOf('plain', 'web');
      return ps.length === 1 && ps.every(isReady) ? ps : undefined;
    });
    assert.ok(pod);
    const hash = pod.metadata.labels?.['pod-template-hash'];
    assert.match(hash ?? '', /^[0-9a-f]{10}$/);
    assert.match(pod.metadata.name, new RegExp(`^web-${hash}-[a-z0-9]{5}$`));
    assert.equal(pod.metadata.labels?.['security.istio.io/tlsMode'], undefined);
    const inbound = JSON.parse(
      pod.metadata.annotations?.['trellis.io/inbound-ports'] ?? '{}',
    ) as Record<string, number>;
    const port = inbound['9080'];
    assert.ok(port && port !== 9080, 'the app runs on an allocated port');
    assert.equal(pod.metadata.annotations?.['trellis.io/app-ports'], undefined);
    const spec = pod.spec as {
      nodeName: string;
      serviceAccountName: string;
      containers: unknown[];
    };
    assert.equal(spec.nodeName, 'local');
    assert.equal(spec.serviceAccountName, 'default');
    const status = pod.status as Record<string, unknown>;
    assert.equal(status.phase, 'Running');
    assert.equal(status.podIP, '127.0.0.1');
    assert.deepEqual(status.podIPs, [{ ip: '127.0.0.1' }]);
    assert.equal(typeof status.startTime, 'string');
    const cs = (status.containerStatuses as { restartCount: number; ready: boolean }[])[0];
    assert.deepEqual([cs?.restartCount, cs?.ready], [0, true]);

    const env = JSON.parse((await get(`http://127.0.0.1:${port}/env`)).body) as {
      env: Record<string, string>;
    };
    assert.equal(env.env.POD_NAME, pod.metadata.name);
    assert.equal(env.env.MY_POD, pod.metadata.name);
    assert.equal(env.env.POD_NAMESPACE, 'plain');
    assert.equal(env.env.PORT, String(port));
    assert.equal(env.env.TRELLIS_PORT_9080, String(port));
    assert.equal(env.env.HOST, '127.0.0.1');
    assert.equal(env.env.SERVICE_ACCOUNT, 'default');
    assert.equal(env.env.HTTP_PROXY, undefined, 'no sidecar, no proxy');
    const row = rows('plain', 'web')[0];
    assert.deepEqual([row?.ready, row?.status, row?.sync], ['1/1', 'Running', '-']);
    assert.match(
      readFileSync(join(dir, 'state', 'logs', 'plain', pod.metadata.name, 'app.log'), 'utf8'),
      /web listening/,
    );

    // Scale up, then down.
    await put(deployment('web', 'plain', { command: ['node', HTTP_APP], port: 9080, replicas: 3 }));
    await eventually('3 ready pods', async () => {
      const ps = await podsOf('plain', 'web');
      return ps.length === 3 && ps.every(isReady) ? true : undefined;
    });
    await put(deployment('web', 'plain', { command: ['node', HTTP_APP], port: 9080, replicas: 2 }));
    await eventually('2 pods', async () =>
      (await podsOf('plain', 'web')).length === 2 ? true : undefined,
    );

    // A changed template rolls: new hash everywhere, old pods gone.
    await put(
      deployment('web', 'plain', {
        command: ['node', HTTP_APP],
        port: 9080,
        replicas: 2,
        env: { V: '2' },
      }),
    );
    const rolled = await eventually('2 ready pods of the new template', async () => {
      const ps = await podsOf('plain', 'web');
      return ps.length === 2 &&
        ps.every((p) => isReady(p) && p.metadata.labels?.['pod-template-hash'] !== hash)
        ? ps
        : undefined;
    });
    const newPort = (
      JSON.parse(rolled[0]!.metadata.annotations!['trellis.io/inbound-ports']!) as Record<
        string,
        number
      >
    )['9080'];
    const env2 = JSON.parse((await get(`http://127.0.0.1:${newPort}/env`)).body) as {
      env: Record<string, string>;
    };
    assert.equal(env2.env.V, '2');

    // Delete: pods and processes go.
    const pids = rows('plain', 'web').flatMap((r) => Object.values(r.pids));
    assert.equal(pids.length, 2);
    await store.delete({ group: 'apps', kind: 'Deployment', namespace: 'plain', name: 'web' });
    await eventually('no web pods', async () =>
      (await podsOf('plain', 'web')).length === 0 ? true : undefined,
    );
    await eventually('web processes exited', () =>
      pids.every((pid) => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      })
        ? true
        : undefined,
    );
  },
);

test(
  'the ingress gateway routes a Gateway server on port 80 to an app',
  { timeout: 30_000 },
  async () => {
    await put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'edge' } });
    await put(service('front', 'edge', 8000));
    await put(deployment('front', 'edge', { command: ['node', HTTP_APP], port: 8000 }));
    await put({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'front', namespace: 'edge' },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['front.example.com'] },
        ],
      },
    });
    await put({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'front', namespace: 'edge' },
      spec: {
        hosts: ['front.example.com'],
        gateways: ['front'],
        http: [{ route: [{ destination: { host: 'front', port: { number: 8000 } } }] }],
      },
    });
    const svc = await store.get({
      group: '',
      kind: 'Service',
      namespace: 'istio-system',
      name: 'istio-ingressgateway',
    });
    const ports = (svc?.spec as { ports: { port: number; targetPort: number; name: string }[] })
      .ports;
    const http = ports.find((p) => p.port === 80);
    assert.equal(http?.name, 'http2');
    assert.equal(http?.targetPort, rt.info.ingress?.httpPort);
    const gw = rt.status().gateways[0];
    assert.match(gw?.name ?? '', /^istio-ingressgateway-[0-9a-f]{10}-[a-z0-9]{5}$/);
    const gwPod = await store.get({
      group: '',
      kind: 'Pod',
      namespace: 'istio-system',
      name: gw!.name,
    });
    assert.equal(gwPod?.metadata.labels?.istio, 'ingressgateway');
    assert.equal(gwPod?.metadata.labels?.app, 'istio-ingressgateway');
    const res = await eventually('a 200 through the ingress gateway', async () => {
      const r = await get(`http://127.0.0.1:${rt.info.ingress!.httpPort}/hello`, undefined, {
        host: 'front.example.com',
      });
      return r.status === 200 ? r : undefined;
    });
    assert.equal((JSON.parse(res.body) as { name: string }).name, 'front');
    await store.delete({ group: 'apps', kind: 'Deployment', namespace: 'edge', name: 'front' });
  },
);

test(
  'injected pods: sidecar first, contract annotations, traffic through both sidecars',
  { timeout: 40_000 },
  async () => {
    await put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'mesh', labels: { 'istio-injection': 'enabled' } },
    });
    await put(service('server', 'mesh', 9080));
    await put({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'server', namespace: 'mesh' },
      spec: { host: 'server', trafficPolicy: { tls: { mode: 'DISABLE' } } },
    });
    await put(deployment('server', 'mesh', { command: ['node', HTTP_APP], port: 9080 }));
    await put(deployment('client', 'mesh', { command: ['node', HTTP_APP], port: 8000 }));
    await put(
      deployment('plainclient', 'mesh', {
        command: ['node', HTTP_APP],
        port: 8001,
        labels: { 'sidecar.istio.io/inject': 'false' },
      }),
    );
    const [server] = await eventually('the server pod in the store', async () => {
      const ps = await podsOf('mesh', 'server');
      return ps.length === 1 ? ps : undefined;
    });
    const a = server!.metadata.annotations ?? {};
    assert.deepEqual(JSON.parse(a['sidecar.istio.io/status'] ?? '{}'), {
      containers: ['istio-proxy'],
    });
    assert.equal(server!.metadata.labels?.['security.istio.io/tlsMode'], 'disabled');
    const inbound = JSON.parse(a['trellis.io/inbound-ports'] ?? '{}') as Record<string, number>;
    const appPorts = JSON.parse(a['trellis.io/app-ports'] ?? '{}') as Record<string, number>;
    assert.ok(inbound['9080'] && appPorts['9080'] && inbound['9080'] !== appPorts['9080']);
    const [plain] = await eventually('the uninjected pod', async () => {
      const ps = await podsOf('mesh', 'plainclient');
      return ps.length === 1 && ps.every(isReady) ? ps : undefined;
    });
    assert.equal(plain!.metadata.annotations?.['sidecar.istio.io/status'], undefined);
    assert.equal(rows('mesh', 'plainclient')[0]?.ready, '1/1');

    // Ready 2/2 needs the sidecar to accept its configuration (/healthz/ready).
    const clientRow = await eventually(
      'client and server Ready 2/2',
      () => {
        const c = rows('mesh', 'client')[0];
        const s = rows('mesh', 'server')[0];
        return c?.ready === '2/2' && s?.ready === '2/2' ? c : undefined;
      },
      20_000,
    ).catch((e: Error) => {
      const r = rows('mesh', 'client')[0];
      throw new Error(`${e.message}; client: ${r?.ready} ${r?.status} sync ${r?.sync}`);
    });
    // A push can be in flight (another pod just became ready): STALE until the sidecar ACKs it.
    await eventually('the client sidecar SYNCED', () =>
      rows('mesh', 'client')[0]?.sync === 'SYNCED' ? true : undefined,
    );
    assert.equal(clientRow.injected, true);
    const proxyPort = clientRow.ports.proxy;
    assert.ok(proxyPort);
    const appPort = clientRow.ports['app:8000'];
    const env = JSON.parse((await get(`http://127.0.0.1:${appPort}/env`)).body) as {
      env: Record<string, string>;
    };
    assert.equal(env.env.HTTP_PROXY, `http://127.0.0.1:${proxyPort}`);
    assert.equal(env.env.grpc_proxy, `http://127.0.0.1:${proxyPort}`);
    // The client app calls the server by its service name through its sidecar.
    const res = await eventually('server reached through the sidecars', async () => {
      const r = await get(
        `http://127.0.0.1:${appPort}/call?url=${encodeURIComponent('http://server.mesh:9080/hi')}`,
      );
      return r.status === 200 ? r : undefined;
    });
    assert.equal((JSON.parse(res.body) as { name: string }).name, 'server');
    for (const d of ['server', 'client', 'plainclient'])
      await store.delete({ group: 'apps', kind: 'Deployment', namespace: 'mesh', name: d });
  },
);

test(
  'a crash loop restarts with backoff and shows CrashLoopBackOff',
  { timeout: 20_000 },
  async () => {
    await put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'faults' } });
    await put(deployment('crasher', 'faults', { command: ['node', CRASH_APP] }));
    const row = await eventually('two restarts', () => {
      const r = rows('faults', 'crasher')[0];
      return r && r.restarts >= 2 && r.status === 'CrashLoopBackOff' ? r : undefined;
    });
    assert.equal(row.ready, '0/1');
    const [pod] = await podsOf('faults', 'crasher');
    const cs = (
      pod!.status as {
        containerStatuses: {
          restartCount: number;
          lastState?: { terminated?: { exitCode: number } };
        }[];
      }
    ).containerStatuses[0];
    assert.ok((cs?.restartCount ?? 0) >= 1);
    assert.equal(cs?.lastState?.terminated?.exitCode, 3);
    await store.delete({ group: 'apps', kind: 'Deployment', namespace: 'faults', name: 'crasher' });
  },
);

test(
  'a command that does not exist: clear status and log, no busy loop',
  { timeout: 20_000 },
  async () => {
    await put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'faults' } });
    await put(deployment('missing', 'faults', { command: ['foo-trellis-missing', '--flag'] }));
    const row = await eventually('RunContainerError', () => {
      const r = rows('faults', 'missing')[0];
      return r?.status === 'RunContainerError' ? r : undefined;
    });
    const waiting = (row.containers[0]?.state as { waiting: { message: string } }).waiting;
    assert.match(waiting.message, /exec: "foo-trellis-missing": executable file not found/);
    await new Promise((r) => setTimeout(r, 1_000));
    const later = rows('faults', 'missing')[0]!;
    assert.ok(later.restarts <= 3, `backoff, not a loop: ${later.restarts} restarts in ~1 s`);
    const log = readFileSync(join(dir, 'state', 'logs', 'faults', row.name, 'app.log'), 'utf8');
    assert.match(log, /exec: "foo-trellis-missing": executable file not found/);
    await store.delete({ group: 'apps', kind: 'Deployment', namespace: 'faults', name: 'missing' });
  },
);
