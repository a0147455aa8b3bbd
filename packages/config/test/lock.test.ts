// The store lock: a live holder makes writers time out with TRELLIS_LOCK_TIMEOUT within the
// bound (readers are not blocked); a lock left by a dead process is broken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '@trellis/core';
import { FileLock, keyOf, openFileStore } from '../src/index.js';
import { Worker, configMap, plantStaleLock, withStateDir } from './helpers.js';

test('a lock held by a live process times out within the bound; once it dies the lock is broken', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { lockTimeoutMs: 400 });
    const holder = new Worker({ mode: 'hold-lock', dir });
    try {
      const a = await store.create(configMap('a', 'default'));
      await holder.next('locked');
      const started = Date.now();
      await assert.rejects(store.update({ ...a, data: { x: '1' } }), (e: Error) => {
        assert.equal(errorCode(e), 'TRELLIS_LOCK_TIMEOUT');
        assert.ok(e.message.includes(`pid ${holder.child.pid}`), e.message);
        assert.ok(e.message.includes(join(dir, 'store.lock')), e.message);
        return true;
      });
      const waited = Date.now() - started;
      assert.ok(waited >= 390 && waited < 1500, `waited ${waited} ms for a 400 ms bound`);
      // Reads do not need the lock.
      assert.ok(await store.get(keyOf(a)));

      await holder.kill();
      const t0 = Date.now();
      const b = await store.update({ ...a, data: { x: '2' } });
      assert.equal(b.metadata.resourceVersion, '2');
      assert.ok(Date.now() - t0 < 400, 'the stale lock was broken at once');
      const left = (await readdir(dir)).filter((n) => n.includes('lock'));
      assert.deepEqual(left, [], 'lock, breaker and temp files are gone');
    } finally {
      await holder.kill();
      await store.close();
    }
  });
});

test('a lock file naming a dead pid is stale; an unreadable old one too', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { lockTimeoutMs: 1000 });
    try {
      await plantStaleLock(dir);
      await store.create(configMap('a', 'default'));

      const lockPath = join(dir, 'store.lock');
      await writeFile(lockPath, 'not json');
      const old = new Date(Date.now() - 60_000);
      await utimes(lockPath, old, old);
      await store.create(configMap('b', 'default'));

      // A fresh unreadable record is not broken at once (it may be mid-write by the fallback path).
      await writeFile(lockPath, '');
      await assert.rejects(store.create(configMap('c', 'default')), {
        code: 'TRELLIS_LOCK_TIMEOUT',
      });
    } finally {
      await store.close();
    }
  });
});

test('FileLock excludes other holders in the same process until released', async () => {
  await withStateDir(async (dir) => {
    const path = join(dir, 'test.lock');
    const first = await new FileLock(path).acquire();
    assert.equal(first.owner.pid, process.pid);
    await assert.rejects(new FileLock(path, { timeoutMs: 100 }).acquire(), {
      code: 'TRELLIS_LOCK_TIMEOUT',
    });
    assert.ok(await first.stillHeld());
    const waiting = new FileLock(path, { timeoutMs: 2000 }).acquire();
    await new Promise((r) => setTimeout(r, 30));
    await first.release();
    const second = await waiting;
    assert.ok(!(await first.stillHeld()));
    assert.ok(await second.stillHeld());
    await first.release(); // releasing twice does not touch the new holder's lock
    assert.ok(await second.stillHeld());
    await second.release();
    assert.deepEqual(await readdir(dir), []);
  });
});
