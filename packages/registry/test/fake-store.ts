// An in-memory ConfigStore for controller tests: revisions, ordered watches delivered
// asynchronously (as a real store does), a history that can be compacted (so that resuming
// fails with TRELLIS_WATCH_EXPIRED), and watches that can be broken on demand.
import { groupOf, type KubeObject } from '@trellis/api';
import {
  keyOf,
  keyString,
  type ConfigStore,
  type GroupKind,
  type ListResult,
  type ObjectKey,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
  type WatchOptions,
} from '@trellis/config';
import { NotFoundError, TrellisError, cloneJson, deepEqual, deepFreeze } from '@trellis/core';

interface Watcher {
  readonly filter: (o: KubeObject) => boolean;
  readonly handlers: WatchHandlers;
  closed: boolean;
}

export class FakeStore implements ConfigStore {
  #rev = 0;
  #compactedThrough = 0;
  readonly #objects = new Map<string, KubeObject>();
  readonly #history: { rev: number; event: WatchEvent }[] = [];
  readonly #watchers = new Set<Watcher>();
  listCalls = 0;
  watchCalls: WatchOptions[] = [];

  get revision(): number {
    return this.#rev;
  }

  get(key: ObjectKey): Promise<KubeObject | undefined> {
    return Promise.resolve(this.#objects.get(keyString(key)));
  }

  list(kind: GroupKind): Promise<ListResult> {
    this.listCalls++;
    const items = [...this.#objects.values()].filter(
      (o) => o.kind === kind.kind && groupOf(o.apiVersion) === kind.group,
    );
    return Promise.resolve({ items, resourceVersion: String(this.#rev) });
  }

  create(object: KubeObject): Promise<KubeObject> {
    return Promise.resolve(this.#write('ADDED', object));
  }

  /** Creates or replaces. */
  apply(object: KubeObject): Promise<KubeObject> {
    const exists = this.#objects.has(keyString(keyOf(object)));
    return Promise.resolve(this.#write(exists ? 'MODIFIED' : 'ADDED', object));
  }

  update(object: KubeObject): Promise<KubeObject> {
    const current = this.#objects.get(keyString(keyOf(object)));
    if (!current) return Promise.reject(new NotFoundError(`no ${object.metadata.name}`));
    const strip = (o: KubeObject) => ({ ...o, metadata: { ...o.metadata, resourceVersion: '' } });
    if (deepEqual(strip(current), strip(object))) return Promise.resolve(current);
    return Promise.resolve(this.#write('MODIFIED', object));
  }

  delete(key: ObjectKey): Promise<KubeObject> {
    const k = keyString(key);
    const current = this.#objects.get(k);
    if (!current) return Promise.reject(new NotFoundError(`no ${key.name}`));
    this.#objects.delete(k);
    const rev = ++this.#rev;
    const last = deepFreeze({
      ...current,
      metadata: { ...current.metadata, resourceVersion: String(rev) },
    });
    this.#record(rev, { type: 'DELETED', object: last });
    return Promise.resolve(last);
  }

  watch(opts: WatchOptions, handlers: WatchHandlers): Promise<Watch> {
    this.watchCalls.push(opts);
    const { kind, namespace } = opts;
    const w: Watcher = {
      filter: (o) =>
        (kind === undefined || (o.kind === kind.kind && groupOf(o.apiVersion) === kind.group)) &&
        (namespace === undefined || o.metadata.namespace === namespace),
      handlers,
      closed: false,
    };
    const rv = opts.resourceVersion;
    const backlog: WatchEvent[] = [];
    if (rv !== undefined && rv !== '') {
      const after = Number(rv);
      if (after < this.#compactedThrough) {
        queueMicrotask(() =>
          handlers.onError?.(new TrellisError('TRELLIS_WATCH_EXPIRED', `revision ${rv} is gone`)),
        );
        return Promise.resolve({ close: () => Promise.resolve() });
      }
      for (const h of this.#history) if (h.rev > after) backlog.push(h.event);
    } else {
      for (const o of this.#objects.values()) backlog.push({ type: 'ADDED', object: o });
    }
    this.#watchers.add(w);
    queueMicrotask(() => {
      for (const e of backlog) if (!w.closed && w.filter(e.object)) handlers.onEvent(e);
    });
    return Promise.resolve({
      close: () => {
        w.closed = true;
        this.#watchers.delete(w);
        return Promise.resolve();
      },
    });
  }

  close(): Promise<void> {
    for (const w of this.#watchers) w.closed = true;
    this.#watchers.clear();
    return Promise.resolve();
  }

  /** Forgets history through the current revision: older watches cannot resume. */
  compact(): void {
    this.#compactedThrough = this.#rev;
    this.#history.length = 0;
  }

  /** Ends every watch with an error (as a store failure or an expired revision would). */
  breakWatches(err: Error): void {
    const all = [...this.#watchers];
    this.#watchers.clear();
    for (const w of all) {
      w.closed = true;
      queueMicrotask(() => w.handlers.onError?.(err));
    }
  }

  #write(type: 'ADDED' | 'MODIFIED', object: KubeObject): KubeObject {
    const rev = ++this.#rev;
    const stored = deepFreeze({
      ...cloneJson(object),
      metadata: { ...cloneJson(object.metadata), resourceVersion: String(rev) },
    });
    this.#objects.set(keyString(keyOf(stored)), stored);
    this.#record(rev, { type, object: stored });
    return stored;
  }

  #record(rev: number, event: WatchEvent): void {
    this.#history.push({ rev, event });
    for (const w of this.#watchers) {
      if (!w.filter(event.object)) continue;
      queueMicrotask(() => {
        if (!w.closed) w.handlers.onEvent(event);
      });
    }
  }
}
