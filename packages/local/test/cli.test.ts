// The runtime verbs as a user runs them (`node packages/cli/bin/trellis.js ...`, real processes,
// port 0 everywhere): up in the background, up twice, status, apply + logs, a daemon killed with
// SIGKILL (status says so; the next up kills its leftovers), down, down with nothing running, and
// an xDS port already in use. Every process is stopped in after().
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isAlive,
  readDaemonInfo,
  readProcessRecords,
  runtimePaths,
  stopRuntime,
  type StatusReport,
} from '../src/index.js';
import { HTTP_APP, TRELLIS_BIN, eventually } from './helpers.js';

const PORTS = [
  '--xds-port',
  '0',
  '--monitoring-port',
  '0',
  '--ingress-port',
  '0',
  '--ingress-https-port',
  '0',
  '--ingress-tcp-port',
  '0',
];

let dir: string;
const stateDirs: string[] = [];

function trellis(
  args: readonly string[],
  stateDir: string,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TRELLIS_BIN, ...args, '--state-dir', stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: dir,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-local-cli-'));
});

after(async () => {
  for (const s of stateDirs) {
    const records = readProcessRecords(runtimePaths(s).processesFile);
    await stopRuntime(s, 10_000);
    for (const r of records)
      assert.equal(isAlive(r.identity), false, `${r.role} ${r.pod} left running`);
  }
  rmSync(dir, { recursive: true, force: true });
});

test(
  'up, up again, status, apply + logs, kill -9, up cleans leftovers, down, down',
  { timeout: 60_000 },
  async () => {
    const state = join(dir, 'state');
    stateDirs.push(state);
    const paths = runtimePaths(state);

    const none = await trellis(['down'], state);
    assert.equal(none.code, 0, none.err);
    assert.equal(none.out, `no Trellis runtime is running in ${state}\n`);
    const st0 = await trellis(['status'], state);
    assert.equal(st0.code, 1);
    assert.match(st0.err, /no Trellis runtime is running in .*trellis up/);

    const up = await trellis(['up', ...PORTS], state);
    assert.equal(up.code, 0, up.err + up.out);
    const info = readDaemonInfo(paths);
    assert.ok(info);
    assert.match(up.out, /^Trellis is running \(pid \d+\)/);
    assert.ok(up.out.includes(`xDS 127.0.0.1:${info.xdsPort}`), up.out);
    assert.ok(up.out.includes(`http://127.0.0.1:${info.ingress?.httpPort}`), up.out);
    assert.ok(up.out.includes(state));

    const again = await trellis(['up', ...PORTS], state);
    assert.equal(again.code, 0);
    assert.match(again.out, new RegExp(`already running in .* \\(pid ${info.pid}\\)`));
    assert.equal(readDaemonInfo(paths)?.pid, info.pid);

    const manifest = join(dir, 'app.yaml');
    writeFileSync(
      manifest,
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'hello', namespace: 'default' },
        spec: {
          selector: { matchLabels: { app: 'hello' } },
          template: {
            metadata: { labels: { app: 'hello' } },
            spec: {
              containers: [
                {
                  name: 'hello',
                  image: 'example/hello',
                  command: ['node', HTTP_APP],
                  env: [{ name: 'APP_NAME', value: 'hello-cli' }],
                  ports: [{ containerPort: 8080 }],
                },
              ],
            },
          },
        },
      }),
    );
    const applied = await trellis(['apply', '-f', manifest], state);
    assert.equal(applied.code, 0, applied.err);
    const report = await eventually('hello Running in status', async () => {
      const r = await trellis(['status', '-o', 'json'], state);
      const rep = JSON.parse(r.out) as StatusReport;
      return rep.pods.some((p) => p.deployment === 'hello' && p.ready === '1/1') ? rep : undefined;
    });
    assert.equal(report.components[0]?.name, 'trellis-control-plane');
    assert.equal(report.gateways[0]?.status, 'Running');
    const table = await trellis(['status'], state);
    assert.equal(table.code, 0);
    assert.match(table.out, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+PORTS\s+SYNC/);
    assert.match(table.out, /istio-system\s+trellis-control-plane\s+1\/1\s+Running/);
    assert.match(
      table.out,
      /istio-system\s+istio-ingressgateway-\S+\s+1\/1\s+Running\s+0\s+http2=\d+/,
    );
    assert.match(
      table.out,
      /default\s+hello-[0-9a-f]{10}-\S+\s+1\/1\s+Running\s+0\s+app:8080=\d+\s+-/,
    );
    const logs = await eventually('the app log', async () => {
      const r = await trellis(['logs', 'hello', '--tail', '1'], state);
      return r.code === 0 && r.out.includes('hello-cli listening') ? r : undefined;
    });
    assert.equal(logs.out.trim().split('\n').length, 1);
    const gwLogs = await trellis(['logs', 'istio-ingressgateway', '-n', 'istio-system'], state);
    assert.equal(gwLogs.code, 0);
    assert.match(gwLogs.out, /proxy .* started/);
    const noLogs = await trellis(['logs', 'nope'], state);
    assert.equal(noLogs.code, 1);
    assert.match(noLogs.err, /no logs for pod or deployment "nope"/);

    // SIGKILL the daemon: its children live on until the next up or down.
    const children = readProcessRecords(paths.processesFile);
    assert.ok(children.length >= 2, 'gateway and app recorded');
    process.kill(info.pid, 'SIGKILL');
    await eventually('the daemon to die', () => (isAlive(info.identity) ? undefined : true));
    const st1 = await trellis(['status'], state);
    assert.equal(st1.code, 1);
    assert.match(st1.err, /no Trellis runtime is running/);
    const up2 = await trellis(['up', ...PORTS], state);
    assert.equal(up2.code, 0, up2.err + up2.out);
    for (const c of children)
      assert.equal(isAlive(c.identity), false, `${c.role} ${c.pod} survived`);
    const info2 = readDaemonInfo(paths);
    assert.ok(info2 && info2.pid !== info.pid);
    // The Deployment is still in the store: the new runtime runs it again.
    await eventually('hello running again', async () => {
      const r = await trellis(['status', '-o', 'json'], state);
      const rep = JSON.parse(r.out) as StatusReport;
      return rep.pods.filter((p) => p.deployment === 'hello' && p.ready === '1/1').length === 1
        ? true
        : undefined;
    });

    const down = await trellis(['down'], state);
    assert.equal(down.code, 0, down.err);
    assert.match(down.out, /Trellis stopped/);
    assert.equal(isAlive(info2.identity), false);
    assert.equal(existsSync(paths.daemonFile), false);
    for (const c of readProcessRecords(paths.processesFile))
      assert.equal(isAlive(c.identity), false);
    const down2 = await trellis(['down'], state);
    assert.equal(down2.out, `no Trellis runtime is running in ${state}\n`);
  },
);

test(
  'an xDS port in use: a clear error naming the flag, nothing left running',
  { timeout: 30_000 },
  async () => {
    const state = join(dir, 'busy');
    stateDirs.push(state);
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const args = [...PORTS];
      args[1] = String(port);
      const r = await trellis(['up', ...args], state);
      assert.equal(r.code, 1);
      assert.match(r.err, new RegExp(`port ${port} \\(xDS\\) is in use .*--xds-port`));
      assert.equal(existsSync(runtimePaths(state).daemonFile), false);
      for (const c of readProcessRecords(runtimePaths(state).processesFile))
        assert.equal(isAlive(c.identity), false);
      const fg = await trellis(['up', '--foreground', ...args], state);
      assert.equal(fg.code, 1);
      assert.match(fg.err, /is in use/);
    } finally {
      blocker.close();
    }
  },
);
