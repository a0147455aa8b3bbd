// Several processes on one state directory: writers racing on one object lose no update, and a
// watcher in this process sees every change another process makes, in order, exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { errorCode } from '@trellis/core';
import { openFileStore, readJournal } from '../src/index.js';
import {
  CONFIG_MAP,
  EventLog,
  Worker,
  configMap,
  plantStaleLock,
  revOf,
  withStateDir,
} from './helpers.js';

const INCREMENTS = 60;

test('two writer processes incrementing one counter lose no update; a watcher sees each once', async (t) => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 200 });
    const created = await store.create(configMap('counter', 'default', { n: '0' }));
    const base = revOf({ type: 'ADDED', object: created });
    const log = new EventLog();
    const w = await store.watch(
      { kind: CONFIG_MAP, namespace: 'default', resourceVersion: String(base) },
      log.handlers,
    );
    // Both workers start by racing to break a lock left by a dead process.
    await plantStaleLock(dir);
    const workers = [1, 2].map(
      () => new Worker({ mode: 'counter', dir, name: 'counter', increments: INCREMENTS }),
    );
    try {
      const done = await Promise.all(workers.map((wk) => wk.next('done', 45_000)));
      t.diagnostic(`conflicts retried: ${done.map((d) => d.conflicts).join(' + ')}`);
      const final = await store.get({ ...CONFIG_MAP, namespace: 'default', name: 'counter' });
      assert.deepEqual(final?.data, { n: String(2 * INCREMENTS) });
      assert.equal(final?.metadata.resourceVersion, String(base + 2 * INCREMENTS));
      assert.equal(final?.metadata.uid, created.metadata.uid);
      assert.equal(final?.metadata.generation, 1 + 2 * INCREMENTS);

      await log.until(() => log.events.length >= 2 * INCREMENTS, 10_000);
      assert.deepEqual(
        log.events.map((e) => `${e.type} ${(e.object.data as Record<string, string>).n}`),
        Array.from({ length: 2 * INCREMENTS }, (_, i) => `MODIFIED ${i + 1}`),
      );
      assert.deepEqual(
        log.events.map(revOf),
        Array.from({ length: 2 * INCREMENTS }, (_, i) => base + i + 1),
      );
      assert.deepEqual(log.errors, []);
      for (const wk of workers) assert.equal((await wk.exited).code, 0);
    } finally {
      for (const wk of workers) await wk.kill();
      await w.close();
      await store.close();
    }
  });
});

test('a watcher follows another process’s creates, updates and deletes, and can resume', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 200 });
    await store.create(configMap('before', 'default'));
    const all = new EventLog();
    const w1 = await store.watch({}, all.handlers);
    const worker = new Worker({ mode: 'churn', dir, prefix: 'c', count: 80 });
    try {
      const { lastRev } = await worker.next('done', 30_000);
      const last = Number(lastRev);
      await all.until(
        () => all.events.length > 0 && revOf(all.events[all.events.length - 1]!) >= last,
      );
      const journal = await readJournal(join(dir, 'journal'));
      assert.equal(journal.length, last);
      // The initial ADDED for the existing object, then every journal entry after it, once.
      assert.deepEqual(
        all.events.map((e) => [e.type, e.object]),
        journal.map((e) => [e.type, e.object]),
      );
      const types = new Set(all.events.map((e) => e.type));
      assert.deepEqual([...types].sort(), ['ADDED', 'DELETED', 'MODIFIED']);

      // Resume from the middle: exactly the changes after that revision.
      const resumed = new EventLog();
      const w2 = await store.watch({ resourceVersion: '30' }, resumed.handlers);
      await resumed.until(() => resumed.events.length >= last - 30);
      assert.deepEqual(
        resumed.events.map(revOf),
        journal.slice(30).map((e) => e.rev),
      );
      await w2.close();
      assert.deepEqual(all.errors, []);
    } finally {
      await worker.kill();
      await w1.close();
      await store.close();
    }
  });
});

test('resuming from a revision another process compacted away gets TRELLIS_WATCH_EXPIRED', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 200 });
    const worker = new Worker({
      mode: 'churn',
      dir,
      prefix: 'x',
      count: 40,
      journal: { segmentMaxEntries: 4, retainSegments: 2 },
    });
    try {
      await worker.next('done', 30_000);
      const log = new EventLog();
      await store.watch({ resourceVersion: '2' }, log.handlers);
      await log.until(() => log.errors.length > 0);
      assert.equal(errorCode(log.errors[0]), 'TRELLIS_WATCH_EXPIRED');
      assert.match(log.errors[0]?.message ?? '', /list again/);
      // A fresh list and a watch from its version work.
      const list = await store.list(CONFIG_MAP);
      const fresh = new EventLog();
      await store.watch({ resourceVersion: list.resourceVersion }, fresh.handlers);
      await store.create(configMap('after', 'default'));
      await fresh.until(() => fresh.events.length >= 1);
      assert.equal(fresh.events[0]?.object.metadata.name, 'after');
    } finally {
      await worker.kill();
      await store.close();
    }
  });
});
