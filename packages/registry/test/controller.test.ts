// The controller over a config store: the first snapshot, one debounced snapshot per burst,
// endpoint-only classification, no snapshot for no change, resuming and relisting after watch
// failures; then the same over the real file store.
import { test } from 'node:test';
import { setImmediate } from 'node:timers';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@trellis/api';
import { openFileStore } from '@trellis/config';
import { TrellisError } from '@trellis/core';
import {
  RegistryController,
  buildSnapshot,
  changedObjectKeys,
  type ChangeReasons,
  type Snapshot,
  type SnapshotDiff,
} from '../src/index.js';
import { FakeStore } from './fake-store.js';
import { ManualTimers, istio, loadSample, pod, service, settle, withPods } from './fixtures.js';

interface Emitted {
  readonly snapshot: Snapshot;
  readonly diff: SnapshotDiff;
  readonly reasons: ChangeReasons;
}

async function setup(
  objects: KubeObject[] = [],
  debounce?: { quietMs?: number; maxMs?: number; eds?: boolean },
) {
  const store = new FakeStore();
  for (const o of objects) await store.create(o);
  const timers = new ManualTimers();
  const emitted: Emitted[] = [];
  const errors: unknown[] = [];
  const controller = new RegistryController({
    store,
    timers,
    onSnapshot: (snapshot, diff, info) => {
      emitted.push({ snapshot, diff, reasons: info.reasons });
    },
    onError: (e) => errors.push(e),
    ...(debounce ? { debounce } : {}),
  });
  await controller.start();
  return { store, timers, emitted, errors, controller };
}

const bookinfo = () => withPods(loadSample('bookinfo/platform/kube/bookinfo.yaml'));
const reviewsHost = 'reviews.default.svc.cluster.local';

test('controller: the first snapshot comes from a list, without debounce', async () => {
  const { emitted, controller, store } = await setup(bookinfo());
  assert.equal(emitted.length, 1);
  const first = emitted[0]!;
  assert.equal(first.snapshot.version, '1');
  assert.equal(first.diff.scope, 'full');
  assert.equal(first.snapshot.services.length, 4);
  assert.equal(controller.snapshot, first.snapshot);
  assert.deepEqual(store.watchCalls, [{ resourceVersion: String(store.revision) }]);
  await controller.close();
});

test('controller: a burst of changes gives one snapshot after the quiet window', async () => {
  const { store, timers, emitted, controller } = await setup(bookinfo());
  await store.create(
    istio('VirtualService', 'default', 'reviews', {
      hosts: ['reviews'],
      http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
    }),
  );
  await settle();
  timers.advance(60);
  await store.create(
    istio('DestinationRule', 'default', 'reviews', {
      host: 'reviews',
      subsets: [{ name: 'v1', labels: { version: 'v1' } }],
    }),
  );
  await store.create(
    pod('reviews-v1-1', 'default', {
      labels: { app: 'reviews', version: 'v1' },
      ip: '10.1.1.1',
      serviceAccount: 'bookinfo-reviews',
    }),
  );
  await settle();
  timers.advance(60);
  await store.create(
    service('extra', 'default', { clusterIP: '10.96.0.99', ports: [{ port: 80 }] }),
  );
  await settle();
  timers.advance(99);
  assert.equal(emitted.length, 1, 'still quiet-waiting');
  timers.advance(1);
  await controller.whenIdle();
  assert.equal(emitted.length, 2);
  const e = emitted[1]!;
  assert.equal(e.snapshot.version, '2');
  assert.equal(e.diff.scope, 'full');
  assert.equal(e.reasons.keys.size, 4);
  assert.equal(e.diff.changed.length, 4);
  assert.equal(e.snapshot.virtualServices.length, 1);
  assert.equal(e.snapshot.endpoints({ hostname: reviewsHost, namespace: 'default' }).length, 4);
  assert.equal(controller.stats.snapshots, 2);
  await controller.close();
});

test('controller: each snapshot is derived from the last one and equals a fresh build', async () => {
  const { store, timers, emitted, controller } = await setup(bookinfo());
  const current = (await store.get({
    group: '',
    kind: 'Pod',
    namespace: 'default',
    name: 'reviews-v2-0',
  }))!;
  await store.update({
    ...current,
    status: { ...(current.status as object), conditions: [{ type: 'Ready', status: 'False' }] },
  });
  await store.delete({ group: '', kind: 'Pod', namespace: 'default', name: 'ratings-v1-0' });
  await settle();
  timers.advance(100);
  await controller.whenIdle();
  const [first, second] = [emitted[0]!.snapshot, emitted[1]!.snapshot];
  const diff = emitted[1]!.diff;
  assert.equal(diff.scope, 'full', 'removing the only ratings pod changes its identities');
  assert.deepEqual(changedObjectKeys(first, second), [
    '/Pod/default/reviews-v2-0',
    '/Pod/default/ratings-v1-0',
  ]);
  const fresh = buildSnapshot([...second.objects], { version: second.version });
  assert.deepEqual(second.services, fresh.services);
  assert.deepEqual(
    second.services.map((s) => second.endpoints(s)),
    fresh.services.map((s) => fresh.endpoints(s)),
  );
  // Services whose endpoints did not change keep their objects and endpoint arrays.
  const changed = new Set(diff.endpoints.map((e) => e.hostname));
  assert.deepEqual([...changed].sort(), [
    'ratings.default.svc.cluster.local',
    'reviews.default.svc.cluster.local',
  ]);
  for (const s of second.services) {
    if (changed.has(s.hostname)) continue;
    assert.equal(s, first.service(s.hostname, s.namespace));
    assert.equal(second.endpoints(s), first.endpoints(s));
  }
  await controller.close();
});

/** Lets setImmediate callbacks (the controller's immediate flush) and the flush itself run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Flips a default-namespace pod's readiness to False: an endpoint-only change. */
async function markNotReady(store: FakeStore, name: string): Promise<void> {
  const current = (await store.get({ group: '', kind: 'Pod', namespace: 'default', name }))!;
  await store.update({
    ...current,
    status: { ...(current.status as object), conditions: [{ type: 'Ready', status: 'False' }] },
  });
}

test('controller: with EDS debounce off, endpoint-only changes are emitted at once', async () => {
  const { store, emitted, controller, timers } = await setup(bookinfo(), { eds: false });
  await markNotReady(store, 'reviews-v2-0');
  await settle();
  await nextTurn();
  await controller.whenIdle();
  assert.equal(emitted.length, 2, 'no quiet window');
  assert.equal(timers.now(), 0);
  assert.equal(emitted[1]!.diff.scope, 'eds');
  assert.equal(emitted[1]!.reasons.immediate, true);

  // Deleting the only ratings pod changes the service's identities: not endpoints-only, so it
  // waits for the debounce like a config change.
  await store.delete({ group: '', kind: 'Pod', namespace: 'default', name: 'ratings-v1-0' });
  await settle();
  await nextTurn();
  await settle();
  assert.equal(emitted.length, 2, 'a full change is debounced');
  timers.advance(100);
  await controller.whenIdle();
  assert.equal(emitted.length, 3);
  assert.equal(emitted[2]!.diff.scope, 'full');
  assert.equal(emitted[2]!.reasons.immediate, false);
  await controller.close();
});

test('controller: with EDS debounce off, endpoint changes join config changes already waiting', async () => {
  const { store, emitted, controller, timers } = await setup(bookinfo(), { eds: false });
  await store.create(
    istio('VirtualService', 'default', 'reviews', {
      hosts: ['reviews'],
      http: [{ route: [{ destination: { host: 'reviews' } }] }],
    }),
  );
  await markNotReady(store, 'reviews-v2-0');
  await settle();
  await nextTurn();
  assert.equal(emitted.length, 1, 'the pod change waits with the VirtualService');
  timers.advance(100);
  await controller.whenIdle();
  assert.equal(emitted.length, 2);
  assert.equal(emitted[1]!.reasons.keys.size, 2);
  assert.equal(emitted[1]!.diff.scope, 'full');
  await controller.close();
});

test('controller: by default (EDS debounce on), endpoint changes wait for the quiet window', async () => {
  const { store, emitted, controller, timers } = await setup(bookinfo());
  await markNotReady(store, 'reviews-v2-0');
  await settle();
  await nextTurn();
  assert.equal(emitted.length, 1);
  timers.advance(100);
  await controller.whenIdle();
  assert.equal(emitted.length, 2);
  assert.equal(emitted[1]!.diff.scope, 'eds');
  await controller.close();
});

test('controller: endpoint-only changes are classified as EDS; no change, no snapshot', async () => {
  const { store, timers, emitted, controller } = await setup(bookinfo());
  const current = (await store.get({
    group: '',
    kind: 'Pod',
    namespace: 'default',
    name: 'reviews-v2-0',
  }))!;
  await store.update({
    ...current,
    status: { ...(current.status as object), conditions: [{ type: 'Ready', status: 'False' }] },
  });
  await settle();
  timers.advance(100);
  await controller.whenIdle();
  assert.equal(emitted.length, 2);
  assert.equal(emitted[1]?.diff.scope, 'eds');
  assert.deepEqual(
    emitted[1]?.diff.endpoints.map((x) => x.hostname),
    [reviewsHost],
  );

  // An object of a kind the snapshot does not read: no snapshot.
  await store.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'x', namespace: 'default' },
    data: {},
  });
  // An update that changes nothing: the store keeps the object, no event.
  const again = (await store.get({
    group: '',
    kind: 'Pod',
    namespace: 'default',
    name: 'reviews-v2-0',
  }))!;
  await store.update(again);
  await settle();
  timers.advance(1000);
  await controller.whenIdle();
  assert.equal(emitted.length, 2);
  await controller.close();
});

test('controller: resumes from the last revision after a watch failure', async () => {
  const { store, timers, emitted, errors, controller } = await setup(bookinfo());
  store.breakWatches(new Error('connection reset'));
  await settle();
  assert.equal(errors.length, 1);
  // Changes while the watch is down are replayed when it resumes.
  await store.create(
    service('late', 'default', { clusterIP: '10.96.0.50', ports: [{ port: 80 }] }),
  );
  timers.advance(100); // retry backoff
  await settle();
  assert.equal(store.listCalls, 16, 'no relist: one list per kind at start only');
  assert.deepEqual(store.watchCalls.at(-1), { resourceVersion: String(store.revision - 1) });
  timers.advance(100);
  await controller.whenIdle();
  assert.equal(emitted.length, 2);
  assert.ok(emitted[1]?.snapshot.service('late.default.svc.cluster.local', 'default'));
  assert.equal(controller.stats.watchErrors, 1);
  await controller.close();
});

test('controller: relists when the watch revision expired', async () => {
  const { store, timers, emitted, controller } = await setup(bookinfo());
  store.breakWatches(new Error('down'));
  await settle();
  await store.delete({ group: '', kind: 'Service', namespace: 'default', name: 'details' });
  await store.create(service('new', 'default', { clusterIP: '10.96.0.51', ports: [{ port: 80 }] }));
  store.compact();
  timers.advance(100); // resume attempt: the revision is gone → expired
  await settle();
  const listsBefore = store.listCalls;
  timers.advance(200); // backoff, then relist
  await settle();
  assert.ok(store.listCalls > listsBefore, 'listed again');
  timers.advance(100);
  await controller.whenIdle();
  const last = emitted.at(-1)!;
  assert.equal(emitted.length, 2);
  assert.ok(last.reasons.relist);
  assert.deepEqual(
    last.snapshot.services.map((s) => s.name),
    ['new', 'productpage', 'ratings', 'reviews'],
  );
  assert.deepEqual(
    last.diff.changed.map((c) => `${c.type} ${c.name}`),
    ['DELETED details', 'ADDED new'],
  );
  await controller.close();
});

test('controller: over the file store, a burst gives one snapshot', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-registry-'));
  const store = await openFileStore(dir, { watchPollMs: 50 });
  try {
    for (const o of bookinfo()) await store.create(o);
    const snapshots: Snapshot[] = [];
    let wake: () => void = () => {};
    const controller = new RegistryController({
      store,
      // A quiet window long enough that three sequential creates fall into one burst even on
      // a loaded machine.
      debounce: { quietMs: 1000, maxMs: 5000 },
      onSnapshot: (s) => {
        snapshots.push(s);
        wake();
      },
    });
    await controller.start();
    assert.equal(snapshots.length, 1);
    const next = new Promise<void>((r) => {
      wake = r;
    });
    for (const name of ['a', 'b', 'c'])
      await store.create(
        istio('VirtualService', 'default', name, { hosts: [`${name}.example.com`], http: [] }),
      );
    await next;
    await controller.whenIdle();
    assert.equal(snapshots.length, 2);
    assert.deepEqual(
      snapshots[1]?.virtualServices.map((v) => v.name),
      ['a', 'b', 'c'],
    );
    await controller.close();
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('controller: a failing first list rejects start', async () => {
  const store = new FakeStore();
  store.list = () => Promise.reject(new TrellisError('TRELLIS_STORE_CLOSED', 'closed'));
  const controller = new RegistryController({ store, onSnapshot: () => {} });
  await assert.rejects(controller.start(), /closed/);
  await controller.close();
});
