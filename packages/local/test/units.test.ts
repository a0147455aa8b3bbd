// Unit tests of the local runtime's pure parts: backoff, injection rules, pod naming, readiness
// (with an injected clock: no sleeping), app environment, command lookup, and a container whose
// command does not exist (a clear waiting reason and a backoff, not a busy loop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualTimers } from '@trellis/core';
import type { Container } from '@trellis/api';
import {
  ContainerRunner,
  CrashBackoff,
  ProcessTable,
  ReadinessProber,
  appEnv,
  explicitCapture,
  injectionDecision,
  podName,
  podTemplateHash,
  readinessSpec,
  resolveExecutable,
  type ProbeTarget,
} from '../src/index.js';

test('backoff: 1 s doubling to a 5 min cap, reset after 10 min up', () => {
  const b = new CrashBackoff();
  const delays = Array.from({ length: 11 }, () => b.next(500));
  assert.deepEqual(
    delays,
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300].map((s) => s * 1000),
  );
  assert.equal(b.next(9 * 60_000), 300_000, 'a 9 min run does not reset');
  assert.equal(b.next(10 * 60_000), 1_000, 'a 10 min run resets');
  assert.equal(b.next(0), 2_000);
});

test('injection follows Istio: namespace label, revision, pod label and annotation override', () => {
  const cases: [Parameters<typeof injectionDecision>[0], boolean][] = [
    [{}, false],
    [{ namespaceLabels: { 'istio-injection': 'enabled' } }, true],
    [{ namespaceLabels: { 'istio-injection': 'disabled', 'istio.io/rev': 'canary' } }, false],
    [{ namespaceLabels: { 'istio.io/rev': 'default' } }, true],
    [
      {
        namespaceLabels: { 'istio-injection': 'enabled' },
        podLabels: { 'sidecar.istio.io/inject': 'false' },
      },
      false,
    ],
    [{ podLabels: { 'sidecar.istio.io/inject': 'true' } }, true],
    [{ podAnnotations: { 'sidecar.istio.io/inject': 'true' } }, true],
    [
      {
        podLabels: { 'sidecar.istio.io/inject': 'false' },
        podAnnotations: { 'sidecar.istio.io/inject': 'true' },
      },
      false,
    ],
    [
      {
        namespaceLabels: { 'istio-injection': 'enabled' },
        podLabels: { 'sidecar.istio.io/inject': 'maybe' },
      },
      true,
    ],
  ];
  for (const [input, want] of cases)
    assert.equal(injectionDecision(input).inject, want, JSON.stringify(input));
});

test('pod names: <deployment>-<10 hex>-<5 chars>, the hash follows the template', () => {
  const t1 = {
    metadata: { labels: { app: 'a' } },
    spec: { containers: [{ name: 'a', image: 'a' }] },
  };
  const t2 = {
    spec: { containers: [{ image: 'a', name: 'a' }] },
    metadata: { labels: { app: 'a' } },
  };
  const t3 = {
    metadata: { labels: { app: 'b' } },
    spec: { containers: [{ name: 'a', image: 'a' }] },
  };
  const h = podTemplateHash(t1);
  assert.match(h, /^[0-9a-f]{10}$/);
  assert.equal(podTemplateHash(t2), h, 'key order does not matter');
  assert.notEqual(podTemplateHash(t3), h);
  const name = podName('reviews-v1', h);
  assert.match(name, new RegExp(`^reviews-v1-${h}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
  let calls = 0;
  const seq = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
  const taken = podName(
    'x',
    h,
    (n) => n.endsWith('bbbbb'),
    () => seq[calls++ % seq.length]!,
  );
  assert.equal(taken, `x-${h}-ccccc`, 'a taken name gets a new suffix');
});

test('readiness spec: probe ports by number or name map to the actual ports', () => {
  const ports = new Map([
    [9080, 41000],
    [9090, 41001],
  ]);
  const c: Container = {
    name: 'app',
    image: 'x',
    ports: [{ containerPort: 9080, name: 'http' }, { containerPort: 9090 }],
    readinessProbe: {
      httpGet: { path: '/ready', port: 'http' },
      periodSeconds: 2,
      failureThreshold: 2,
      successThreshold: 2,
      initialDelaySeconds: 3,
    },
  };
  const s = readinessSpec(c, ports);
  assert.deepEqual(s.target, { kind: 'http', port: 41000, path: '/ready', headers: {} });
  assert.deepEqual(s.timing, {
    initialDelayMs: 3000,
    periodMs: 2000,
    timeoutMs: 1000,
    successThreshold: 2,
    failureThreshold: 2,
  });
  const tcp = readinessSpec({ ...c, readinessProbe: { tcpSocket: { port: 9090 } } }, ports);
  assert.deepEqual(tcp.target, { kind: 'tcp', port: 41001 });
  const { readinessProbe: _unused, ...noProbe } = c;
  assert.deepEqual(readinessSpec(noProbe, ports).target, {
    kind: 'tcp',
    port: 41000,
  });
  assert.deepEqual(readinessSpec({ name: 'a', image: 'a' }, ports).target, { kind: 'started' });
  assert.throws(
    () => readinessSpec({ ...c, readinessProbe: { httpGet: { port: 'nope' } } }, ports),
    /no container port is named "nope"/,
  );
});

test('readiness prober: initial delay, success and failure thresholds, on an injected clock', async () => {
  const timers = new ManualTimers();
  let answer = false;
  const seen: boolean[] = [];
  const checks: ProbeTarget[] = [];
  const p = new ReadinessProber({
    spec: {
      target: { kind: 'tcp', port: 1 },
      timing: {
        initialDelayMs: 5000,
        periodMs: 10_000,
        timeoutMs: 1000,
        successThreshold: 2,
        failureThreshold: 3,
      },
      explicit: true,
    },
    timers,
    check: (t) => {
      checks.push(t);
      return Promise.resolve(answer);
    },
    onChange: (r) => seen.push(r),
  });
  const tick = async (ms: number): Promise<void> => {
    timers.advance(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  p.start();
  await tick(4999);
  assert.equal(checks.length, 0, 'nothing before initialDelaySeconds');
  await tick(1);
  assert.equal(checks.length, 1);
  answer = true;
  await tick(1000); // before the first success the probe runs at most 1 s apart
  assert.deepEqual(seen, [], 'one success is not enough with successThreshold 2');
  await tick(1000);
  assert.deepEqual(seen, [true]);
  answer = false;
  await tick(10_000);
  await tick(10_000);
  assert.deepEqual(seen, [true], 'two failures are not enough with failureThreshold 3');
  await tick(10_000);
  assert.deepEqual(seen, [true, false]);
  p.stop();
  assert.equal(timers.pending, 0);
});

test('app environment: env values, fieldRefs, ports, capture and PATH', () => {
  const { env, warnings } = appEnv({
    container: {
      name: 'app',
      image: 'x',
      ports: [{ containerPort: 9080 }, { containerPort: 9090 }],
      env: [
        { name: 'GREETING', value: 'hi $(POD_NAME)' },
        { name: 'MY_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'MY_APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'MY_SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
        { name: 'SECRET', valueFrom: { secretKeyRef: { key: 'k', name: 's' } } },
      ],
    },
    podName: 'reviews-v1-abc',
    namespace: 'bookinfo',
    serviceAccount: 'bookinfo-reviews',
    labels: { app: 'reviews' },
    annotations: {},
    actualPorts: new Map([
      [9080, 41000],
      [9090, 41001],
    ]),
    captureEnv: explicitCapture.appEnv({
      admin: 1,
      status: 2,
      httpProxy: 15080,
      inbound: new Map(),
    }),
    baseEnv: { PATH: '/usr/bin', HTTP_PROXY: 'http://corp:3128', HOME: '/root' },
    binDirs: ['/trellis/node_modules/.bin'],
  });
  assert.equal(env.GREETING, 'hi reviews-v1-abc');
  assert.equal(env.MY_NS, 'bookinfo');
  assert.equal(env.MY_APP, 'reviews');
  assert.equal(env.MY_IP, '127.0.0.1');
  assert.equal(env.MY_SA, 'bookinfo-reviews');
  assert.equal(env.POD_NAME, 'reviews-v1-abc');
  assert.equal(env.POD_NAMESPACE, 'bookinfo');
  assert.equal(env.POD_IP, '127.0.0.1');
  assert.equal(env.HOST, '127.0.0.1');
  assert.equal(env.SERVICE_ACCOUNT, 'bookinfo-reviews');
  assert.equal(env.PORT, '41000');
  assert.equal(env.TRELLIS_PORT_9080, '41000');
  assert.equal(env.TRELLIS_PORT_9090, '41001');
  for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'grpc_proxy'])
    assert.equal(env[k], 'http://127.0.0.1:15080', k);
  assert.equal(env.NO_PROXY, 'localhost,127.0.0.1');
  assert.equal(env.PATH, '/trellis/node_modules/.bin:/usr/bin');
  assert.equal(env.HOME, '/root');
  assert.equal(env.SECRET, undefined);
  assert.match(warnings.join('\n'), /SECRET: only value and valueFrom.fieldRef/);
});

test('a missing command gets the kubelet message', () => {
  const e = resolveExecutable('no-such-command-trellis', '/usr/bin:/bin', '/');
  assert.ok(e instanceof Error);
  assert.equal(e.message, 'exec: "no-such-command-trellis": executable file not found in $PATH');
  assert.equal(
    resolveExecutable('sh', '/nonexistent:/bin:/usr/bin', '/').toString().endsWith('/sh'),
    true,
  );
});

test('a container whose command does not exist waits with RunContainerError and backs off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-local-'));
  try {
    const timers = new ManualTimers();
    let changes = 0;
    const logFile = join(dir, 'app.log');
    const r = new ContainerRunner(
      {
        name: 'app',
        role: 'app',
        pod: 'default/x',
        image: 'x',
        command: () => resolveExecutable('foo-not-here', '/usr/bin', dir) as Error,
        env: {},
        cwd: dir,
        logFile,
        readiness: {
          target: { kind: 'started' },
          timing: {
            initialDelayMs: 0,
            periodMs: 100,
            timeoutMs: 100,
            successThreshold: 1,
            failureThreshold: 1,
          },
          explicit: false,
        },
        graceMs: 100,
      },
      {
        table: new ProcessTable(join(dir, 'p.json')),
        timers,
        now: () => timers.now(),
        onChange: () => changes++,
      },
    );
    r.start();
    const state = r.state as { waiting?: { reason: string; message: string } };
    assert.equal(state.waiting?.reason, 'RunContainerError');
    assert.match(state.waiting?.message ?? '', /exec: "foo-not-here": executable file not found/);
    assert.match(readFileSync(logFile, 'utf8'), /exec: "foo-not-here": executable file not found/);
    assert.equal(timers.pending, 1, 'one restart scheduled, not a loop');
    timers.advance(999);
    assert.equal(r.restartCount, 0);
    timers.advance(1);
    assert.equal(r.restartCount, 1);
    timers.advance(1999);
    assert.equal(r.restartCount, 1, 'the second wait is 2 s');
    timers.advance(1);
    assert.equal(r.restartCount, 2);
    await r.stop();
    assert.equal(timers.pending, 0, 'stop cancels the restart');
    assert.ok(changes >= 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restartPolicy Never: a command that cannot start finishes the container (StartError)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-local-'));
  try {
    const timers = new ManualTimers();
    const logFile = join(dir, 'app.log');
    const r = new ContainerRunner(
      {
        name: 'app',
        role: 'app',
        pod: 'default/x',
        image: 'x',
        command: () => resolveExecutable('foo-not-here', '/usr/bin', dir) as Error,
        env: {},
        cwd: dir,
        logFile,
        readiness: {
          target: { kind: 'started' },
          timing: {
            initialDelayMs: 0,
            periodMs: 100,
            timeoutMs: 100,
            successThreshold: 1,
            failureThreshold: 1,
          },
          explicit: false,
        },
        graceMs: 100,
        restartPolicy: 'Never',
      },
      {
        table: new ProcessTable(join(dir, 'p.json')),
        timers,
        now: () => timers.now(),
        onChange: () => {},
      },
    );
    r.start();
    assert.equal(r.finished, true);
    assert.equal(r.exitCode, 128);
    const state = r.state as { terminated?: { reason: string; exitCode: number } };
    assert.deepEqual([state.terminated?.reason, state.terminated?.exitCode], ['StartError', 128]);
    assert.equal(timers.pending, 0, 'no restart scheduled');
    assert.match(readFileSync(logFile, 'utf8'), /not restarted \(restartPolicy Never\)/);
    r.start();
    assert.equal(r.restartCount, 0, 'a finished container does not start again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
