// The journal's crash handling, staged by hand: a torn last line, a committed but unapplied
// change, an empty segment left by a rotation that crashed, a corrupt line, stray temp files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '@trellis/core';
import { keyOf, openFileStore, readJournal } from '../src/index.js';
import { CONFIG_MAP, EventLog, configMap, revOf, walkFiles, withStateDir } from './helpers.js';

const SEGMENT_1 = 'journal/0000000000000001.jsonl';

test('a torn last line is invisible to readers and repaired by the next writer', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 50 });
    try {
      let o = await store.create(configMap('a', 'default', { n: '0' }));
      o = await store.update({ ...o, data: { n: '1' } });
      const seg = join(dir, SEGMENT_1);
      await appendFile(seg, '{"rev":3,"type":"MODIFIED","object":{"apiVersion":"v1","ki');

      assert.deepEqual(
        (await readJournal(join(dir, 'journal'))).map((e) => e.rev),
        [1, 2],
      );
      const log = new EventLog();
      const w = await store.watch({ resourceVersion: '0' }, log.handlers);
      await log.until(() => log.events.length >= 2);

      const next = await store.update({ ...o, data: { n: '2' } });
      assert.equal(next.metadata.resourceVersion, '3');
      await log.until(() => log.events.length >= 3);
      assert.deepEqual(log.events.map(revOf), [1, 2, 3]);
      assert.deepEqual(log.errors, []);
      const text = await readFile(seg, 'utf8');
      assert.equal(text.split('\n').length, 4, 'three complete lines, torn bytes gone');
      assert.deepEqual(
        (await readJournal(join(dir, 'journal'))).map((e) => e.rev),
        [1, 2, 3],
      );
      await w.close();
    } finally {
      await store.close();
    }
  });
});

test('a change committed to the journal but not applied is finished on open', async () => {
  await withStateDir(async (dir) => {
    const s1 = await openFileStore(dir);
    const o = await s1.create(configMap('a', 'default', { n: '0' }));
    await s1.close();
    // What a writer killed between the journal fsync and the object rename leaves behind.
    const committed = { ...o, metadata: { ...o.metadata, resourceVersion: '2' }, data: { n: '1' } };
    await appendFile(
      join(dir, SEGMENT_1),
      JSON.stringify({ rev: 2, type: 'MODIFIED', object: committed }) + '\n',
    );
    await writeFile(join(dir, 'objects/_core/ConfigMap/default/.a.json.999.deadbeef.tmp'), '{"hal');

    const s2 = await openFileStore(dir);
    try {
      assert.deepEqual(await s2.get(keyOf(o)), committed);
      const files = await walkFiles(dir);
      assert.ok(!files.some((f) => f.endsWith('.tmp')), `temp swept: ${files.join(', ')}`);
      const next = await s2.update({ ...committed, data: { n: '2' } });
      assert.equal(next.metadata.resourceVersion, '3');
    } finally {
      await s2.close();
    }
  });
});

test('a committed but unapplied delete is finished by the next writer', async () => {
  await withStateDir(async (dir) => {
    const s1 = await openFileStore(dir);
    const o = await s1.create(configMap('a', 'default'));
    const key = keyOf(o);
    // Stage it after open so the open-time recovery does not see it: the next write must.
    const gone = { ...o, metadata: { ...o.metadata, resourceVersion: '2' } };
    await appendFile(
      join(dir, SEGMENT_1),
      JSON.stringify({ rev: 2, type: 'DELETED', object: gone }) + '\n',
    );
    try {
      const list = await s1.list(CONFIG_MAP);
      assert.equal(list.items.length, 0, 'list runs recovery first');
      assert.equal(list.resourceVersion, '2');
      assert.equal(await s1.get(key), undefined);
      const again = await s1.create(configMap('a', 'default'));
      assert.equal(again.metadata.resourceVersion, '3');
    } finally {
      await s1.close();
    }
  });
});

test('an empty segment left by a crashed rotation is removed and the revision continues', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { journal: { segmentMaxEntries: 2 } });
    try {
      let o = await store.create(configMap('a', 'default', { n: '0' }));
      o = await store.update({ ...o, data: { n: '1' } });
      await writeFile(join(dir, 'journal/0000000000000003.jsonl'), '{"rev":3,"ty');
      o = await store.update({ ...o, data: { n: '2' } });
      assert.equal(o.metadata.resourceVersion, '3');
      const entries = await readJournal(join(dir, 'journal'));
      assert.deepEqual(
        entries.map((e) => e.rev),
        [1, 2, 3],
      );
      assert.deepEqual(entries[2]?.object, o);
    } finally {
      await store.close();
    }
  });
});

test('a corrupt line followed by others is reported, not skipped', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 50 });
    try {
      await store.create(configMap('a', 'default'));
      await store.create(configMap('b', 'default'));
      const seg = join(dir, SEGMENT_1);
      const lines = (await readFile(seg, 'utf8')).split('\n');
      await writeFile(seg, ['{"garbage"', ...lines].join('\n'));
      await assert.rejects(readJournal(join(dir, 'journal')), { code: 'TRELLIS_STORE_CORRUPT' });
      const log = new EventLog();
      await assert.rejects(store.watch({ resourceVersion: '0' }, log.handlers), (e: Error) => {
        assert.equal(errorCode(e), 'TRELLIS_STORE_CORRUPT');
        assert.match(e.message, /0000000000000001\.jsonl is corrupt at byte 0/);
        return true;
      });
      await assert.rejects(store.create(configMap('c', 'default')), {
        code: 'TRELLIS_STORE_CORRUPT',
      });
    } finally {
      await store.close();
    }
  });
});

test('a journal removed by hand restarts above the highest stored revision', async () => {
  await withStateDir(async (dir) => {
    const s1 = await openFileStore(dir);
    await s1.create(configMap('a', 'default'));
    await s1.create(configMap('b', 'default'));
    await s1.close();
    for (const f of await readdir(join(dir, 'journal'))) await unlink(join(dir, 'journal', f));
    const s2 = await openFileStore(dir);
    try {
      assert.equal(await s2.revision(), '2');
      const c = await s2.create(configMap('c', 'default'));
      assert.equal(c.metadata.resourceVersion, '3');
      const log = new EventLog();
      await s2.watch({ resourceVersion: '1' }, log.handlers);
      await log.until(() => log.errors.length > 0);
      assert.equal(errorCode(log.errors[0]), 'TRELLIS_WATCH_EXPIRED');
    } finally {
      await s2.close();
    }
  });
});

test('an unknown state directory format is refused', async () => {
  await withStateDir(async (dir) => {
    await writeFile(join(dir, 'format.json'), '{"format":"trellis-state","version":99}');
    await assert.rejects(openFileStore(dir), { code: 'TRELLIS_STATE_DIR_UNUSABLE' });
    await writeFile(join(dir, 'file'), 'x');
    await assert.rejects(openFileStore(join(dir, 'file')), { code: 'TRELLIS_STATE_DIR_UNUSABLE' });
  });
});
