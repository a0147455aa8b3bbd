// Shared helpers for the config store tests: temp state directories, worker processes,
// a seeded random generator, and waiting for watch events.
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '@trellis/api';
import type { WatchEvent } from '../src/index.js';
import type { WorkerMessage, WorkerTask } from './worker-protocol.js';

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withStateDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-config-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A ConfigMap in `namespace` (cluster-scoped if undefined) with the given data. */
export function configMap(
  name: string,
  namespace: string | undefined,
  data: Record<string, string> = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ...(namespace !== undefined ? { namespace } : {}) },
    data,
  };
}

export const CONFIG_MAP = { group: '', kind: 'ConfigMap' } as const;

/** A worker process running one task of store.worker.ts, with its messages queued. */
export class Worker {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly inbox: WorkerMessage[] = [];
  private waiters: (() => void)[] = [];
  stderr = '';

  constructor(task: WorkerTask) {
    const script = fileURLToPath(new URL('./store.worker.js', import.meta.url));
    this.child = fork(script, [JSON.stringify(task)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.child.on('message', (m) => {
      this.inbox.push(m as WorkerMessage);
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        for (const w of this.waiters.splice(0)) w();
        resolve({ code, signal });
      });
    });
  }

  /** The next message of type `type` (earlier ones of other types are dropped). */
  async next<T extends WorkerMessage['type']>(
    type: T,
    timeoutMs = 20_000,
  ): Promise<Extract<WorkerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m) {
        if (m.type === 'error') throw new Error(`worker failed: ${m.message}`);
        if (m.type === type) return m as Extract<WorkerMessage, { type: T }>;
        continue;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`worker exited before sending "${type}": ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for "${type}" from the worker`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** SIGKILLs the worker and waits until it has been reaped. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** mulberry32: a small seeded generator, so a failing random schedule can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from TRELLIS_TEST_SEED, else a fresh one. */
export function testSeed(): number {
  const env = process.env.TRELLIS_TEST_SEED;
  return env !== undefined && env !== '' ? Number(env) : Math.floor(Math.random() * 2 ** 31);
}

/** Collects watch events and lets a test wait for a condition on them. */
export class EventLog {
  readonly events: WatchEvent[] = [];
  readonly errors: Error[] = [];
  private waiters: (() => void)[] = [];

  readonly handlers = {
    onEvent: (e: WatchEvent): void => {
      this.events.push(e);
      this.wake();
    },
    onError: (err: Error): void => {
      this.errors.push(err);
      this.wake();
    },
  };

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `cond` holds (checked after every event), failing after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs = 20_000, what = 'watch events'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; got ${this.events.length} events`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Every file under `dir`, as paths relative to it. */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(join(d, e.name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** The revision a watch event carries. */
export function revOf(e: WatchEvent): number {
  return Number(e.object.metadata.resourceVersion);
}

/** Leaves `DIR/store.lock` as a process killed while holding it would: naming a dead pid. */
export async function plantStaleLock(dir: string): Promise<number> {
  const pid = spawnSync(process.execPath, ['-e', '']).pid;
  if (pid === undefined) throw new Error('could not start a short-lived process');
  const owner = { pid, host: hostname(), nonce: 'dead', acquiredAt: new Date().toISOString() };
  await writeFile(join(dir, 'store.lock'), JSON.stringify(owner));
  return pid;
}
