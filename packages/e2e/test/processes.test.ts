// `trellis control-plane` and `trellis proxy sidecar` as real processes: the proxy connects,
// becomes LIVE, carries a request routed by the mesh, and drains and exits on SIGTERM. Bad
// flags get a usage error (exit 2) naming the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { openFileStore } from '@trellis/config';
import { withTempDir } from '@trellis/testing';
import { freePort } from './mesh-fixture.js';

const BIN = join(import.meta.dirname, '..', '..', '..', 'cli', 'bin', 'trellis.js');

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function run(args: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => text, exited };
}

async function waitFor<T>(what: string, p: Proc, fn: () => T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; output:\n${p.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('bad proxy flags are usage errors naming the flag', async () => {
  for (const [args, message] of [
    [['proxy'], /sidecar or router/],
    [['proxy', 'sidecar', '--pod', 'nodots', '--ip', '127.0.0.1'], /--pod must be NAME\.NAMESPACE/],
    [
      ['proxy', 'sidecar', '--pod', 'a.b', '--ip', '127.0.0.1', '--admin-port', '70000'],
      /--admin-port/,
    ],
    [['proxy', 'sidecar', '--pod', 'a.b', '--ip', '127.0.0.1', '--label', 'novalue'], /KEY=VALUE/],
    [['proxy', 'sidecar', '--pod', 'a.b', '--ip', 'not-an-ip'], /ip/i],
  ] as const) {
    const p = run(args);
    assert.equal(await p.exited, 2, `${args.join(' ')}: ${p.out()}`);
    assert.match(p.out(), message);
  }
});

test('a proxy process goes LIVE, carries traffic, and drains on SIGTERM', { timeout: 90_000 }, () =>
  withTempDir(async (dir) => {
    const backend = createServer((_req, res) => res.end('hello from the backend'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const backendPort = (backend.address() as AddressInfo).port;
    const state = join(dir, 'state');
    const store = await openFileStore(state);
    await store.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'hello', namespace: 'default' },
      spec: { selector: { app: 'hello' }, ports: [{ name: 'http', port: 8000, targetPort: 8000 }] },
    });
    await store.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'hello-0',
        namespace: 'default',
        labels: { app: 'hello' },
        annotations: { 'trellis.io/inbound-ports': JSON.stringify({ 8000: backendPort }) },
      },
      spec: { containers: [{ name: 'app', image: 'app', ports: [{ containerPort: 8000 }] }] },
      status: {
        phase: 'Running',
        podIP: '127.0.0.1',
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
    await store.close();
    const cp = run(
      ['control-plane', '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0'],
      { TRELLIS_STATE_DIR: state },
    );
    let proxy: Proc | undefined;
    try {
      const xds = await waitFor(
        'the control plane',
        cp,
        () => /xDS on [\d.]+:(\d+)/.exec(cp.out())?.[1],
      );
      const httpProxyPort = await freePort();
      proxy = run([
        'proxy',
        'sidecar',
        '--pod',
        'client-0.default',
        '--ip',
        '127.0.0.1',
        '--label',
        'app=client',
        '--xds-address',
        `127.0.0.1:${xds}`,
        '--http-proxy-port',
        String(httpProxyPort),
        '--admin-port',
        '0',
        '--status-port',
        '0',
        '--access-log',
        '/dev/stdout',
      ]);
      const p = proxy;
      const admin = await waitFor(
        'the proxy',
        p,
        () => /admin on http:\/\/127\.0\.0\.1:(\d+)/.exec(p.out())?.[1],
      );
      let ready = '';
      const deadline = Date.now() + 20_000;
      while (ready.trim() !== 'LIVE' && Date.now() < deadline) {
        ready = await fetch(`http://127.0.0.1:${admin}/ready`).then((r) => r.text());
        if (ready.trim() !== 'LIVE') await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(ready.trim(), 'LIVE', p.out());
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: httpProxyPort,
            path: 'http://hello:8000/x',
            headers: { host: 'hello:8000' },
          },
          (res) => {
            let b = '';
            res.on('data', (c: Buffer) => (b += c.toString()));
            res.on('end', () => resolve(`${res.statusCode} ${b}`));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, '200 hello from the backend');
      // The access log line, in Istio's format, names the route's cluster and the flags.
      await waitFor('the access log line', p, () =>
        /"GET \/x HTTP\/1\.1" 200 - via_upstream .*outbound\|8000\|\|hello\.default\.svc\.cluster\.local/.test(
          p.out(),
        )
          ? true
          : undefined,
      );
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 0, p.out());
    } finally {
      proxy?.child.kill('SIGKILL');
      cp.child.kill('SIGTERM');
      await cp.exited;
      backend.close();
    }
  }),
);
