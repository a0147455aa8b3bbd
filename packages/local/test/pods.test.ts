// Run-to-completion Pods in the local runtime (explicit capture; the daemon in-process, real
// processes, every port 0): a Pod the user applies runs as one local pod named as the Pod, its
// status written onto that object; an injected one whose app calls a mesh service through its
// sidecar and exits 0 becomes Succeeded only after its sidecar is gone, and its logs stay
// readable (`trellis logs`); restartPolicy Never / OnFailure decide restarts and the final phase;
// deleting a running Pod stops its processes; `trellis status` shows finished pods; a runtime
// started again on the same state directory does not run a finished Pod again but runs one the
// previous runtime stopped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KubeObject } from '@trellis/api';
import { keyOf, openFileStore, type ConfigStore } from '@trellis/config';
import {
  LocalRuntime,
  isAlive,
  readProcessRecords,
  runtimePaths,
  type PodStatusRow,
} from '../src/index.js';
import {
  HTTP_APP,
  JOB_APP,
  TRELLIS_BIN,
  deployment,
  eventually,
  pidAlive,
  pod,
  service,
} from './helpers.js';

const run = promisify(execFile);
let dir: string;
let stateDir: string;
let rt: LocalRuntime;
let store: ConfigStore;
/** Every pid seen per pod and container (sampled on each change the controller sees). */
const seen = new Map<string, Set<number>>();

const options = () => ({
  stateDir,
  trellisBin: TRELLIS_BIN,
  xdsPort: 0,
  monitoringPort: 0,
  ingress: false as const,
  backoff: { initialMs: 200, maxMs: 2_000 },
  proxyDrainMs: 100,
  maxGraceMs: 3_000,
  debounce: { quietMs: 10, maxMs: 500 },
});

function watchPids(r: LocalRuntime): void {
  r.controller.onReconcile = () => {
    for (const row of r.status().pods)
      for (const [c, pid] of Object.entries(row.pids)) {
        const k = `${row.namespace}/${row.name}/${c}`;
        seen.set(k, (seen.get(k) ?? new Set()).add(pid));
      }
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-local-pods-'));
  stateDir = join(dir, 'state');
  rt = await LocalRuntime.start(options());
  store = rt.store;
  watchPids(rt);
});

after(async () => {
  const records = readProcessRecords(runtimePaths(stateDir).processesFile);
  await rt?.stop();
  for (const r of records)
    assert.equal(isAlive(r.identity), false, `${r.role} ${r.pod} left running`);
  rmSync(dir, { recursive: true, force: true });
});

async function put(o: KubeObject): Promise<void> {
  const existing = await store.get(keyOf(o));
  if (existing) await store.update(o);
  else await store.create(o);
}

interface PodStatus {
  phase: string;
  podIP?: string;
  conditions: { type: string; status: string; reason?: string }[];
  containerStatuses: {
    name: string;
    restartCount: number;
    state: { terminated?: { exitCode: number; reason: string; finishedAt: string } };
    lastState?: { terminated?: { exitCode: number } };
  }[];
}

const getPod = (ns: string, name: string) =>
  store.get({ group: '', kind: 'Pod', namespace: ns, name });

async function finalPod(ns: string, name: string, ms = 30_000): Promise<KubeObject> {
  return eventually(
    `pod ${ns}/${name} finished`,
    async () => {
      const p = await getPod(ns, name);
      const phase = (p?.status as PodStatus | undefined)?.phase;
      return phase === 'Succeeded' || phase === 'Failed' ? p : undefined;
    },
    ms,
  );
}

const row = (ns: string, name: string): PodStatusRow | undefined =>
  rt.status().pods.find((p) => p.namespace === ns && p.name === name);

const pidsOf = (ns: string, name: string, container: string): number[] => [
  ...(seen.get(`${ns}/${name}/${container}`) ?? []),
];

const trellis = (...args: string[]) =>
  run(process.execPath, [TRELLIS_BIN, ...args, '--state-dir', stateDir], { timeout: 20_000 });

test(
  'an injected Pod calls a mesh service through its sidecar, exits 0: Succeeded, sidecar gone',
  { timeout: 120_000 },
  async () => {
    await put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'jobs', labels: { 'istio-injection': 'enabled' } },
    });
    await put(service('server', 'jobs', 9080));
    await put({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'server', namespace: 'jobs' },
      spec: { host: 'server', trafficPolicy: { tls: { mode: 'DISABLE' } } },
    });
    await put(deployment('server', 'jobs', { command: ['node', HTTP_APP], port: 9080 }));
    await put(
      pod('caller', 'jobs', {
        command: ['node', JOB_APP, 'call', 'http://server.jobs:9080/from-job'],
        restartPolicy: 'Never',
      }),
    );
    // Generous: with the whole suite running, the server and both sidecars can take many seconds
    // to start; the caller retries for up to 45 s and exits at its first 200.
    const done = await finalPod('jobs', 'caller', 90_000);
    const st = done.status as PodStatus;
    const app = st.containerStatuses.find((c) => c.name === 'caller');
    const proxy = st.containerStatuses.find((c) => c.name === 'istio-proxy');
    assert.equal(st.phase, 'Succeeded', JSON.stringify(st));
    assert.equal(app?.state.terminated?.exitCode, 0);
    assert.equal(app?.state.terminated?.reason, 'Completed');
    assert.equal(app?.restartCount, 0);
    assert.ok(proxy?.state.terminated, 'the sidecar was stopped');
    assert.ok(
      proxy.state.terminated.finishedAt >= app.state.terminated.finishedAt,
      'the sidecar stops after the app',
    );
    const ready = st.conditions.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['False', 'PodCompleted']);
    // The runtime wrote onto the user's own object: injection's marks and the node.
    assert.equal(done.metadata.labels?.app, 'caller');
    assert.equal(done.metadata.labels?.['security.istio.io/tlsMode'], 'disabled');
    assert.equal(done.metadata.labels?.['pod-template-hash'], undefined);
    assert.equal(done.metadata.ownerReferences, undefined);
    assert.deepEqual(JSON.parse(done.metadata.annotations?.['sidecar.istio.io/status'] ?? '{}'), {
      containers: ['istio-proxy'],
    });
    assert.equal((done.spec as { nodeName?: string }).nodeName, 'local');

    // Both processes ran, and neither is left.
    const sidecars = pidsOf('jobs', 'caller', 'istio-proxy');
    assert.equal(sidecars.length, 1, 'one sidecar process');
    for (const pid of [...sidecars, ...pidsOf('jobs', 'caller', 'caller')])
      assert.equal(pidAlive(pid), false, `pid ${pid} is gone`);
    assert.deepEqual(row('jobs', 'caller')?.pids, {});

    // The app reached the server through its sidecar; the log stays readable.
    const log = readFileSync(join(stateDir, 'logs', 'jobs', 'caller', 'app.log'), 'utf8');
    assert.match(log, /status 200 body .*"name":"server".*"path":"\/from-job"/);
    const logs = await trellis('logs', 'caller', '-n', 'jobs');
    assert.match(logs.stdout, /status 200 body/);
    const proxyLog = await trellis('logs', 'caller', '-n', 'jobs', '-c', 'proxy');
    assert.match(proxyLog.stdout, /from-job/, 'the call is in the sidecar access log');

    // `trellis status` shows it Completed.
    const status = await trellis('status');
    assert.match(status.stdout, /^jobs\s+caller\s+0\/2\s+Completed\s+0\s/m);
    await store.delete({ group: 'apps', kind: 'Deployment', namespace: 'jobs', name: 'server' });
  },
);

test('restartPolicy Never with exit 1: Failed, not restarted', { timeout: 30_000 }, async () => {
  await put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'batch' } });
  await put(
    pod('fails', 'batch', { command: ['node', JOB_APP, 'exit', '1'], restartPolicy: 'Never' }),
  );
  const done = await finalPod('batch', 'fails');
  const st = done.status as PodStatus;
  assert.equal(st.phase, 'Failed');
  assert.equal(st.containerStatuses.length, 1, 'not injected: the app alone');
  const [app] = st.containerStatuses;
  assert.deepEqual(
    [app?.restartCount, app?.state.terminated?.exitCode, app?.state.terminated?.reason],
    [0, 1, 'Error'],
  );
  assert.equal(pidsOf('batch', 'fails', 'fails').length <= 1, true);
  await new Promise((r) => setTimeout(r, 600)); // longer than the first backoff
  const later = (await getPod('batch', 'fails'))?.status as PodStatus;
  assert.equal(later.containerStatuses[0]?.restartCount, 0, 'no restart');
  const r = row('batch', 'fails');
  assert.deepEqual([r?.status, r?.ready, r?.restarts], ['Error', '0/1', 0]);
  const log = readFileSync(join(stateDir, 'logs', 'batch', 'fails', 'app.log'), 'utf8');
  assert.match(log, /exited with code 1; not restarted \(restartPolicy Never\)/);
});

test(
  'restartPolicy OnFailure: a failure is restarted, then the pod Succeeded',
  { timeout: 30_000 },
  async () => {
    await put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'batch' } });
    const marker = join(dir, 'fail-once.marker');
    await put(
      pod('retries', 'batch', {
        command: ['node', JOB_APP, 'fail-once', marker],
        restartPolicy: 'OnFailure',
      }),
    );
    const done = await finalPod('batch', 'retries');
    const st = done.status as PodStatus;
    assert.equal(st.phase, 'Succeeded');
    const [app] = st.containerStatuses;
    assert.equal(app?.restartCount, 1);
    assert.equal(app?.lastState?.terminated?.exitCode, 1);
    assert.equal(app?.state.terminated?.exitCode, 0);
    assert.equal(pidsOf('batch', 'retries', 'retries').length, 2, 'two runs');
    assert.deepEqual(
      [row('batch', 'retries')?.status, row('batch', 'retries')?.restarts],
      ['Completed', 1],
    );
  },
);

test(
  'deleting a running injected Pod stops the app, then its sidecar',
  { timeout: 40_000 },
  async () => {
    await put(
      pod('sleeper', 'jobs', { command: ['node', JOB_APP, 'sleep'], restartPolicy: 'Never' }),
    );
    const running = await eventually(
      'sleeper Running 2/2',
      () => {
        const r = row('jobs', 'sleeper');
        return r?.ready === '2/2' && r.status === 'Running' ? r : undefined;
      },
      20_000,
    );
    const stored = await eventually('sleeper Running in the store', async () => {
      const st = (await getPod('jobs', 'sleeper'))?.status as PodStatus | undefined;
      return st?.phase === 'Running' ? st : undefined;
    });
    assert.equal(stored.podIP, '127.0.0.1');
    const pids = Object.values(running.pids);
    assert.equal(pids.length, 2);
    const appLog = join(stateDir, 'logs', 'jobs', 'sleeper', 'app.log');
    // Ready once started (no ports): wait until node runs the app (its SIGTERM handler is set).
    await eventually('the sleeper app running', () =>
      /sleeping until SIGTERM/.test(readFileSync(appLog, 'utf8')) ? true : undefined,
    );
    await store.delete({ group: '', kind: 'Pod', namespace: 'jobs', name: 'sleeper' });
    await eventually('sleeper processes gone', () =>
      pids.every((p) => !pidAlive(p)) ? true : undefined,
    );
    await eventually('sleeper out of status', () =>
      row('jobs', 'sleeper') === undefined ? true : undefined,
    );
    assert.equal(await getPod('jobs', 'sleeper'), undefined, 'not written again after deletion');
    assert.match(readFileSync(appLog, 'utf8'), /job-app got SIGTERM/);
  },
);

test(
  'a new runtime keeps finished Pods finished and runs again a Pod the last one stopped',
  { timeout: 60_000 },
  async () => {
    await put(pod('forever', 'batch', { command: ['node', JOB_APP, 'sleep'] }));
    await eventually('forever Running', () =>
      row('batch', 'forever')?.status === 'Running' ? true : undefined,
    );
    await rt.stop();
    const closed = await openFileStore(stateDir);
    const stopped = await closed.get({
      group: '',
      kind: 'Pod',
      namespace: 'batch',
      name: 'forever',
    });
    await closed.close();
    assert.equal((stopped?.status as PodStatus).phase, 'Pending', 'a stopped runtime runs nothing');
    assert.equal((stopped?.status as PodStatus).podIP, undefined);
    rt = await LocalRuntime.start(options());
    store = rt.store;
    watchPids(rt);
    const again = await eventually('forever Running again', () =>
      row('batch', 'forever')?.status === 'Running' ? row('batch', 'forever') : undefined,
    );
    assert.equal(again.restarts, 0, 'a new run, not a restart');
    const fails = row('batch', 'fails');
    assert.deepEqual([fails?.status, fails?.ready], ['Error', '0/1']);
    assert.equal(row('batch', 'retries')?.status, 'Completed');
    assert.equal(
      ((await getPod('batch', 'retries'))?.status as PodStatus).phase,
      'Succeeded',
      'not run again',
    );
    assert.deepEqual(Object.keys(row('batch', 'retries')?.pids ?? {}), []);
    await store.delete({ group: '', kind: 'Pod', namespace: 'batch', name: 'forever' });
  },
);
