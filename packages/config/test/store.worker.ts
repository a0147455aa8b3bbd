// A child process for the multi-process tests (forked by helpers.ts; not a test file itself).
// argv[2] is a JSON WorkerTask; progress is reported to the parent over IPC.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, errorMessage } from '@trellis/core';
import type { KubeObject } from '@trellis/api';
import { FileLock, openFileStore } from '../src/index.js';
import {
  CRASH_NAMESPACE,
  payloadHash,
  type WorkerMessage,
  type WorkerTask,
} from './worker-protocol.js';

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

async function counter(task: Extract<WorkerTask, { mode: 'counter' }>): Promise<void> {
  const store = await openFileStore(task.dir, { lockTimeoutMs: 20_000 });
  const key = { group: '', kind: 'ConfigMap', namespace: 'default', name: task.name };
  let conflicts = 0;
  let lastRev = '';
  for (let i = 0; i < task.increments; i++) {
    for (;;) {
      const cur = await store.get(key);
      if (!cur) throw new Error('counter object missing');
      const data = cur.data as Record<string, string>;
      await sleep(Math.random() * 3); // widen the read-modify-write window so the writers collide
      try {
        const next = await store.update({ ...cur, data: { n: String(Number(data.n) + 1) } });
        lastRev = next.metadata.resourceVersion ?? '';
        break;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        conflicts++;
      }
    }
  }
  await store.close();
  await send({ type: 'done', conflicts, lastRev });
}

async function churn(task: Extract<WorkerTask, { mode: 'churn' }>): Promise<void> {
  const store = await openFileStore(task.dir, task.journal ? { journal: task.journal } : {});
  await send({ type: 'ready' });
  const names = [0, 1, 2].map((i) => `${task.prefix}-${i}`);
  let lastRev = '';
  for (let i = 0; i < task.count; i++) {
    const name = names[i % names.length] ?? '';
    const key = { group: '', kind: 'ConfigMap', namespace: 'default', name };
    const cur = await store.get(key);
    let written: KubeObject;
    if (!cur) {
      written = await store.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: 'default' },
        data: { step: String(i) },
      });
    } else if (i % 7 === 6) {
      written = await store.delete(key);
    } else {
      written = await store.update({ ...cur, data: { step: String(i) } });
    }
    lastRev = written.metadata.resourceVersion ?? '';
  }
  await store.close();
  await send({ type: 'done', conflicts: 0, lastRev });
}

async function crash(task: Extract<WorkerTask, { mode: 'crash' }>): Promise<void> {
  const store = await openFileStore(task.dir, { journal: task.journal, lockTimeoutMs: 5_000 });
  await send({ type: 'ready' });
  for (let i = 0; ; i++) {
    const name = `obj-${i % task.objects}`;
    const key = { group: '', kind: 'ConfigMap', namespace: CRASH_NAMESPACE, name };
    const cur = await store.get(key);
    const seq = String(cur ? Number((cur.data as Record<string, string>).seq) + 1 : 1);
    const payload = randomBytes(Math.ceil((task.payloadBytes * 3) / 4)).toString('base64');
    const data = { seq, payload, hash: payloadHash(name, seq, payload) };
    if (cur) await store.update({ ...cur, data });
    else {
      await store.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: CRASH_NAMESPACE },
        data,
      });
    }
  }
}

async function holdLock(task: Extract<WorkerTask, { mode: 'hold-lock' }>): Promise<void> {
  await new FileLock(join(task.dir, 'store.lock')).acquire();
  await send({ type: 'locked' });
  await new Promise(() => setInterval(() => undefined, 60_000)); // hold it until killed
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '{}') as WorkerTask;
  switch (task.mode) {
    case 'counter':
      return counter(task);
    case 'churn':
      return churn(task);
    case 'crash':
      return crash(task);
    case 'hold-lock':
      return holdLock(task);
  }
}

main().then(
  () => {
    if (process.connected) process.disconnect();
  },
  async (e: unknown) => {
    process.exitCode = 1;
    await send({ type: 'error', message: errorMessage(e) });
    if (process.connected) process.disconnect();
  },
);
