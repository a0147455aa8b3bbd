// The file store in one process: CRUD, scopes, resource versions, generation, preconditions,
// read validation, and watches (initial list, filters, resume, close).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeObject } from '@trellis/api';
import { errorCode } from '@trellis/core';
import { keyOf, openFileStore, readJournal } from '../src/index.js';
import { CONFIG_MAP, EventLog, configMap, revOf, walkFiles, withStateDir } from './helpers.js';

const NAMESPACE = { group: '', kind: 'Namespace' } as const;
const VS = { group: 'networking.istio.io', kind: 'VirtualService' } as const;

function virtualService(name: string, namespace: string, hosts: string[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace },
    spec: { hosts },
  };
}

test('create sets uid, creationTimestamp, generation 1 and the next revision', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      const a = await store.create(configMap('a', 'default', { k: 'v' }));
      assert.match(a.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
      assert.match(a.metadata.creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(a.metadata.generation, 1);
      assert.equal(a.metadata.resourceVersion, '1');
      const b = await store.create(configMap('b', 'default'));
      assert.equal(b.metadata.resourceVersion, '2');
      assert.notEqual(b.metadata.uid, a.metadata.uid);
      assert.deepEqual(await store.get(keyOf(a)), a);
      assert.ok(Object.isFrozen(a) && Object.isFrozen(a.metadata), 'returned objects are frozen');
      await assert.rejects(store.create(configMap('a', 'default')), {
        code: 'TRELLIS_ALREADY_EXISTS',
      });
      assert.equal(
        await store.get({ ...CONFIG_MAP, namespace: 'default', name: 'zzz' }),
        undefined,
      );
      // The layout on disk.
      const files = await walkFiles(dir);
      assert.ok(files.includes('objects/_core/ConfigMap/default/a.json'), files.join(', '));
      assert.ok(files.includes('journal/0000000000000001.jsonl'), files.join(', '));
    } finally {
      await store.close();
    }
  });
});

test('the caller’s object is neither frozen nor changed', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      const input = configMap('a', 'default', { k: 'v' });
      await store.create(input);
      assert.ok(!Object.isFrozen(input) && !Object.isFrozen(input.data));
      assert.equal(input.metadata.resourceVersion, undefined);
    } finally {
      await store.close();
    }
  });
});

test('list by namespace, across namespaces, and cluster-scoped objects', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      await store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } });
      await store.create(virtualService('reviews', 'default', ['reviews']));
      await store.create(virtualService('ratings', 'default', ['ratings']));
      await store.create(virtualService('reviews', 'prod', ['reviews']));
      await store.create(configMap('reviews', 'default'));

      const ns = await store.list(NAMESPACE);
      assert.deepEqual(
        ns.items.map((o) => [o.metadata.name, o.metadata.namespace]),
        [['prod', undefined]],
      );
      assert.deepEqual(await store.get({ ...NAMESPACE, name: 'prod' }), ns.items[0]);
      assert.ok((await walkFiles(dir)).includes('objects/_core/Namespace/_cluster/prod.json'));

      const all = await store.list(VS);
      assert.deepEqual(
        all.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['default/ratings', 'default/reviews', 'prod/reviews'],
      );
      assert.equal(all.resourceVersion, '5');
      const inDefault = await store.list(VS, { namespace: 'default' });
      assert.equal(inDefault.items.length, 2);
      assert.equal((await store.list(VS, { namespace: 'nowhere' })).items.length, 0);
      assert.equal((await store.list({ group: 'x.io', kind: 'Nothing' })).items.length, 0);
      assert.ok(
        (await walkFiles(dir)).includes(
          'objects/networking.istio.io/VirtualService/prod/reviews.json',
        ),
      );
    } finally {
      await store.close();
    }
  });
});

test('update bumps the revision, bumps generation only for spec changes, keeps uid', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      const v1 = await store.create(virtualService('r', 'default', ['a']));
      const v2 = await store.update({ ...v1, spec: { hosts: ['b'] } });
      assert.equal(v2.metadata.resourceVersion, '2');
      assert.equal(v2.metadata.generation, 2);
      assert.equal(v2.metadata.uid, v1.metadata.uid);
      assert.equal(v2.metadata.creationTimestamp, v1.metadata.creationTimestamp);

      const v3 = await store.update({
        ...v2,
        metadata: { ...v2.metadata, labels: { app: 'r' } },
        status: { ok: true },
      });
      assert.equal(v3.metadata.resourceVersion, '3');
      assert.equal(v3.metadata.generation, 2, 'metadata and status changes keep the generation');
      assert.deepEqual(v3.metadata.labels, { app: 'r' });
      // An update without status keeps the stored status (as a status subresource would).
      const { status: _st, ...noStatus } = v3;
      const v3b = await store.update({ ...noStatus, metadata: { ...v3.metadata, labels: {} } });
      assert.deepEqual(v3b.status, { ok: true });
      assert.equal(v3b.metadata.resourceVersion, '4');

      // uid and creationTimestamp cannot be changed by the caller; dropping them keeps them.
      const { uid: _u, creationTimestamp: _c, ...meta } = v3b.metadata;
      const v4 = await store.update({ ...v3b, metadata: meta, spec: { hosts: ['c'] } });
      assert.equal(v4.metadata.uid, v1.metadata.uid);
      assert.equal(v4.metadata.creationTimestamp, v1.metadata.creationTimestamp);
      assert.equal(v4.metadata.generation, 3);

      // Without a resourceVersion the update is unconditional.
      const { resourceVersion: _r, ...noRv } = v4.metadata;
      const v5 = await store.update({ ...v4, metadata: noRv, spec: { hosts: ['d'] } });
      assert.equal(v5.metadata.resourceVersion, '6');

      // A write that changes nothing is not a change.
      const same = await store.update(v5);
      assert.equal(same.metadata.resourceVersion, '6');
      assert.equal((await readJournal(join(dir, 'journal'))).length, 6);

      await assert.rejects(store.update(virtualService('ghost', 'default', [])), {
        code: 'TRELLIS_NOT_FOUND',
      });
    } finally {
      await store.close();
    }
  });
});

test('a stale update or delete is refused with ConflictError naming both versions', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      const v1 = await store.create(configMap('c', 'default', { n: '1' }));
      await store.update({ ...v1, data: { n: '2' } });
      await assert.rejects(store.update({ ...v1, data: { n: '3' } }), (e: Error) => {
        assert.equal(errorCode(e), 'TRELLIS_CONFLICT');
        assert.equal(e.name, 'ConflictError');
        assert.match(e.message, /ConfigMap default\/c/);
        assert.match(e.message, /resource version 1\b.*current one is 2\b/);
        return true;
      });
      await assert.rejects(store.delete(keyOf(v1), { resourceVersion: '1' }), {
        code: 'TRELLIS_CONFLICT',
      });
      // A write for a different incarnation (uid) is refused too.
      const cur = await store.get(keyOf(v1));
      assert.ok(cur);
      await assert.rejects(
        store.update({ ...cur, metadata: { ...cur.metadata, uid: 'other' }, data: { n: '9' } }),
        { code: 'TRELLIS_CONFLICT' },
      );
      assert.deepEqual((await store.get(keyOf(v1)))?.data, { n: '2' });
    } finally {
      await store.close();
    }
  });
});

test('delete returns the last state and removes the file', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      const v1 = await store.create(configMap('d', 'default', { n: '1' }));
      const gone = await store.delete(keyOf(v1), { resourceVersion: '1' });
      assert.deepEqual(gone.data, { n: '1' });
      assert.equal(gone.metadata.uid, v1.metadata.uid);
      assert.equal(gone.metadata.resourceVersion, '2', 'the deletion has its own revision');
      assert.equal(await store.get(keyOf(v1)), undefined);
      assert.ok(!(await walkFiles(dir)).some((f) => f.endsWith('d.json')));
      await assert.rejects(store.delete(keyOf(v1)), { code: 'TRELLIS_NOT_FOUND' });
      // Re-created objects get a new uid and generation 1.
      const again = await store.create(configMap('d', 'default'));
      assert.notEqual(again.metadata.uid, v1.metadata.uid);
      assert.equal(again.metadata.generation, 1);
      assert.equal(again.metadata.resourceVersion, '3');
    } finally {
      await store.close();
    }
  });
});

test('revisions survive reopening', async () => {
  await withStateDir(async (dir) => {
    const s1 = await openFileStore(dir);
    await s1.create(configMap('a', 'default'));
    await s1.create(configMap('b', 'default'));
    await s1.close();
    await assert.rejects(s1.get(keyOf(configMap('a', 'default'))), {
      code: 'TRELLIS_STORE_CLOSED',
    });
    const s2 = await openFileStore(dir);
    try {
      assert.equal(await s2.revision(), '2');
      const c = await s2.create(configMap('c', 'default'));
      assert.equal(c.metadata.resourceVersion, '3');
    } finally {
      await s2.close();
    }
  });
});

test('bad keys and objects are refused with InvalidError', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      for (const name of ['', '.', '..', 'a/b', '.hidden', 'x\u0000']) {
        await assert.rejects(
          store.create(configMap(name, 'default')),
          { code: 'TRELLIS_INVALID' },
          name,
        );
      }
      await assert.rejects(store.create(configMap('ok', '_cluster')), { code: 'TRELLIS_INVALID' });
      await assert.rejects(store.get({ ...CONFIG_MAP, name: '../../etc' }), {
        code: 'TRELLIS_INVALID',
      });
      await assert.rejects(
        store.create({ apiVersion: 'v1', kind: 'ConfigMap' } as unknown as KubeObject),
        { code: 'TRELLIS_INVALID', message: /metadata is missing/ },
      );
    } finally {
      await store.close();
    }
  });
});

test('a corrupt object file gives a TrellisError naming the file; temp files are ignored', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      await store.create(configMap('good', 'default'));
      const bad = await store.create(configMap('bad', 'default'));
      const path = join(dir, 'objects/_core/ConfigMap/default/bad.json');
      await writeFile(
        join(dir, 'objects/_core/ConfigMap/default/.good.json.123.abc.tmp'),
        '{"half',
      );
      assert.equal((await store.list(CONFIG_MAP)).items.length, 2, 'temp files are not objects');

      await writeFile(path, '{"apiVersion": "v1", "kind": ');
      const corrupt = (e: Error): boolean => {
        assert.equal(errorCode(e), 'TRELLIS_STORE_CORRUPT');
        assert.ok(e.message.includes(path), e.message);
        return true;
      };
      await assert.rejects(store.get(keyOf(bad)), corrupt);
      await assert.rejects(store.list(CONFIG_MAP), corrupt);
      await assert.rejects(store.update(bad), corrupt);

      // An object in the wrong place is caught too.
      await writeFile(
        path,
        JSON.stringify({
          ...configMap('other', 'default'),
          metadata: { name: 'other', namespace: 'default', resourceVersion: '2' },
        }),
      );
      await assert.rejects(store.get(keyOf(bad)), /holds \/ConfigMap\/default\/other/);
      // The good object is still readable.
      assert.ok(await store.get(keyOf(configMap('good', 'default'))));
    } finally {
      await store.close();
    }
  });
});

test('concurrent writes in one process and from two store instances are serialised', async () => {
  await withStateDir(async (dir) => {
    const a = await openFileStore(dir);
    const b = await openFileStore(dir);
    try {
      const created = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).create(configMap(`o${i}`, 'default'))),
      );
      const revs = created.map((o) => Number(o.metadata.resourceVersion)).sort((x, y) => x - y);
      assert.deepEqual(
        revs,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test('watch without resourceVersion: ADDED for existing objects, then changes in order', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 100 });
    try {
      await store.create(configMap('a', 'default'));
      await store.create(configMap('b', 'prod'));
      await store.create(virtualService('r', 'default', ['r']));
      const log = new EventLog();
      const w = await store.watch({ kind: CONFIG_MAP }, log.handlers);
      await log.until(() => log.events.length >= 2);
      const a = await store.get(keyOf(configMap('a', 'default')));
      assert.ok(a);
      await store.update({ ...a, data: { x: '1' } });
      await store.create(virtualService('s', 'default', ['s'])); // another kind: filtered out
      await store.delete(keyOf(a));
      await log.until(() => log.events.length >= 4);
      assert.deepEqual(
        log.events.map(
          (e) => `${e.type} ${e.object.metadata.namespace}/${e.object.metadata.name} ${revOf(e)}`,
        ),
        ['ADDED default/a 1', 'ADDED prod/b 2', 'MODIFIED default/a 4', 'DELETED default/a 6'],
      );
      await w.close();
      await store.create(configMap('late', 'default'));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(log.events.length, 4, 'no event after close');
      assert.deepEqual(log.errors, []);
    } finally {
      await store.close();
    }
  });
});

test('watch filters by namespace and resumes from a resourceVersion', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 100 });
    try {
      await store.create(configMap('a', 'default'));
      const list = await store.list(CONFIG_MAP);
      await store.create(configMap('b', 'default'));
      await store.create(configMap('c', 'prod'));
      await store.create(virtualService('r', 'default', ['r']));

      const fromList = new EventLog();
      const w1 = await store.watch({ resourceVersion: list.resourceVersion }, fromList.handlers);
      const inDefault = new EventLog();
      const w2 = await store.watch(
        { namespace: 'default', resourceVersion: '0' },
        inDefault.handlers,
      );
      await fromList.until(() => fromList.events.length >= 3);
      await inDefault.until(() => inDefault.events.length >= 3);
      assert.deepEqual(fromList.events.map(revOf), [2, 3, 4], 'everything after the list');
      assert.deepEqual(
        inDefault.events.map((e) => e.object.metadata.name),
        ['a', 'b', 'r'],
        'only default, all kinds',
      );
      await w1.close();
      await w2.close();
    } finally {
      await store.close();
    }
  });
});

test('a watch from a compacted revision gets TRELLIS_WATCH_EXPIRED; so does one from the future', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, {
      watchPollMs: 100,
      journal: { segmentMaxEntries: 5, retainSegments: 2 },
    });
    try {
      let o = await store.create(configMap('a', 'default', { n: '0' }));
      for (let i = 1; i <= 30; i++) o = await store.update({ ...o, data: { n: String(i) } });
      const segments = (await walkFiles(join(dir, 'journal'))).length;
      assert.equal(segments, 2, 'old segments were compacted');
      const entries = await readJournal(join(dir, 'journal'));
      assert.equal(entries[entries.length - 1]?.rev, 31);
      assert.ok((entries[0]?.rev ?? 0) > 2);

      const old = new EventLog();
      await store.watch({ resourceVersion: '1' }, old.handlers);
      await old.until(() => old.errors.length > 0);
      assert.equal(errorCode(old.errors[0]), 'TRELLIS_WATCH_EXPIRED');
      assert.equal(old.events.length, 0);

      const future = new EventLog();
      await store.watch({ resourceVersion: '999' }, future.handlers);
      await future.until(() => future.errors.length > 0);
      assert.equal(errorCode(future.errors[0]), 'TRELLIS_WATCH_EXPIRED');

      // The oldest revision still kept works, across segment boundaries.
      const first = entries[0]?.rev ?? 0;
      const kept = new EventLog();
      const w = await store.watch({ resourceVersion: String(first - 1) }, kept.handlers);
      await kept.until(() => kept.events.length >= entries.length);
      assert.deepEqual(
        kept.events.map(revOf),
        entries.map((e) => e.rev),
      );
      await w.close();
      await assert.rejects(store.watch({ resourceVersion: 'abc' }, kept.handlers), {
        code: 'TRELLIS_INVALID',
      });
    } finally {
      await store.close();
    }
  });
});

test('a throwing handler ends the watch and is reported to onError', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir, { watchPollMs: 100 });
    try {
      await store.create(configMap('a', 'default'));
      const errors: Error[] = [];
      let calls = 0;
      await store.watch(
        {},
        {
          onEvent: () => {
            calls++;
            throw new Error('handler bug');
          },
          onError: (e) => errors.push(e),
        },
      );
      await store.create(configMap('b', 'default'));
      for (let i = 0; i < 50 && errors.length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      await store.create(configMap('c', 'default'));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(calls, 1);
      assert.equal(errors[0]?.message, 'handler bug');
    } finally {
      await store.close();
    }
  });
});

test('the object file is pretty JSON with the stored metadata', async () => {
  await withStateDir(async (dir) => {
    const store = await openFileStore(dir);
    try {
      const o = await store.create(configMap('p', 'default', { k: 'v' }));
      const text = await readFile(join(dir, 'objects/_core/ConfigMap/default/p.json'), 'utf8');
      assert.deepEqual(JSON.parse(text), o);
      assert.ok(text.includes('\n  "metadata": {'));
    } finally {
      await store.close();
    }
  });
});
