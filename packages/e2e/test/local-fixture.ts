// Shared by the end-to-end tests on the local runtime: the `trellis` CLI as a real process against
// a temporary state directory, a mesh started with `trellis up` on kernel-chosen ports, plain HTTP
// and TCP clients, and `eventually`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readDaemonInfo, runtimePaths } from '@trellis/local';
import { eventually as poll } from '@trellis/testing';

export const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
export const TRELLIS = join(ROOT, 'packages', 'cli', 'bin', 'trellis.js');
/** Trellis's own samples (apps and manifests). */
export const SAMPLES = join(ROOT, 'samples');
/** Istio's sample YAML beside the repository (TRELLIS_SHARED overrides `../shared`). */
export const ISTIO = join(
  process.env.TRELLIS_SHARED ?? join(ROOT, '..', 'shared'),
  'istio-samples',
  'samples',
);

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `trellis ARGS --state-dir DIR` as a process, in DIR's parent directory. */
export function trellis(dir: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [TRELLIS, ...args, '--state-dir', dir],
      { cwd: dirname(dir), timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `trellis ARGS`, asserting exit 0; resolves with stdout. */
export async function mustTrellis(dir: string, ...args: string[]): Promise<string> {
  const r = await trellis(dir, ...args);
  assert.equal(r.code, 0, `trellis ${args.join(' ')}: ${r.stderr.slice(0, 2000)}`);
  return r.stdout;
}

/** `trellis apply -f` of YAML text (written to a file in the state directory's parent). */
export async function applyYaml(dir: string, name: string, yaml: string): Promise<void> {
  const file = join(dir, '..', `${name}.yaml`);
  writeFileSync(file, yaml);
  await mustTrellis(dir, 'apply', '-f', file);
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP/1.1 request to 127.0.0.1:PORT (a fresh connection). */
export function http(
  port: number,
  path: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        agent: false,
        timeout: opts.timeoutMs ?? 20_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Polls `fn` every 200 ms until it returns a value (not undefined), or fails after `ms`. */
export function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  return poll(what, fn, ms, 200);
}

/** A running local mesh (`trellis up`) in a temporary state directory. */
export interface LocalMesh {
  readonly dir: string;
  readonly ingress: {
    readonly httpPort: number;
    readonly httpsPort: number;
    readonly tcpPort: number;
  };
  /** `trellis status -o json`. */
  status(): Promise<StatusJson>;
  /** `trellis down`, then the temporary directory is removed. */
  down(): Promise<void>;
}

export interface PodJson {
  namespace: string;
  name: string;
  deployment?: string;
  ready: string;
  status: string;
  ports: Record<string, number>;
  podIP?: string;
}

export interface StatusJson {
  pods: PodJson[];
  gateways: PodJson[];
}

/** `trellis up` with every port chosen by the kernel, injection on in `default`. */
export async function startLocalMesh(upFlags: readonly string[] = []): Promise<LocalMesh> {
  const parent = mkdtempSync(join(tmpdir(), 'trellis-e2e-'));
  const dir = join(parent, 'state');
  const zero = [
    'xds-port',
    'monitoring-port',
    'ingress-port',
    'ingress-https-port',
    'ingress-tcp-port',
  ];
  await mustTrellis(dir, 'up', ...zero.flatMap((f) => [`--${f}`, '0']), ...upFlags);
  const info = readDaemonInfo(runtimePaths(dir));
  assert.ok(info?.ingress, 'the daemon records its ingress ports');
  // `kubectl label namespace default istio-injection=enabled`, as a manifest.
  await applyYaml(
    dir,
    'namespace-default',
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels:\n    istio-injection: enabled\n',
  );
  return {
    dir,
    ingress: {
      httpPort: info.ingress.httpPort,
      httpsPort: info.ingress.httpsPort,
      tcpPort: info.ingress.tcpPort,
    },
    status: async () => JSON.parse(await mustTrellis(dir, 'status', '-o', 'json')) as StatusJson,
    down: async () => {
      const r = await trellis(dir, 'down');
      // Debugging: TRELLIS_E2E_KEEP=1 keeps the state directory (pod logs) for a look afterwards.
      if (process.env.TRELLIS_E2E_KEEP) process.stderr.write(`kept ${parent}\n`);
      else rmSync(parent, { recursive: true, force: true });
      assert.equal(r.code, 0, r.stderr);
    },
  };
}

/** The running pod of a Deployment (the first, by name). */
export async function podOf(mesh: LocalMesh, deployment: string): Promise<PodJson> {
  return eventually(`a ready pod of ${deployment}`, async () => {
    const s = await mesh.status();
    return s.pods.find(
      (p) =>
        (p.deployment === deployment || p.name.startsWith(`${deployment}-`)) &&
        p.status === 'Running',
    );
  });
}
