// The registry controller: lists and watches a config store for every kind the snapshot reads,
// keeps the objects in memory, and emits a new snapshot (with its diff from the previous one)
// after each debounced burst of changes. The same code serves local mode (file store) and
// Kubernetes (a store backed by the API server).
//
// Each snapshot after the first is derived from the previous one and the keys that changed since
// (`updateSnapshot`), so its cost follows the size of the change; after a relist, the snapshot
// is built from every object (still sharing what is unchanged with the previous one).
//
// Watch errors never stop it: it resumes the watch from the last revision it saw, and lists
// everything again when the store says that revision is gone (TRELLIS_WATCH_EXPIRED), with a
// capped exponential backoff between attempts.
import { setImmediate } from 'node:timers';
import type { KubeObject } from '@trellis/api';
import { groupOf } from '@trellis/api';
import type { ConfigStore, Watch, WatchEvent } from '@trellis/config';
import {
  Debouncer,
  deepFreeze,
  errorCode,
  systemTimers,
  type FlushInfo,
  type TimerApi,
} from '@trellis/core';
import { diffSnapshots, type SnapshotDiff } from './diff.js';
import { SNAPSHOT_KINDS, kindKey, type KindRef } from './kinds.js';
import type { MeshOptions } from './options.js';
import { buildSnapshot, updateSnapshot, type Snapshot } from './snapshot.js';

/** The store's code for a watch that cannot resume from its revision. */
export const WATCH_EXPIRED = 'TRELLIS_WATCH_EXPIRED';

/** Why a snapshot was built: the objects that changed, and whether the store was listed again. */
export interface ChangeReasons {
  /** `group/Kind/namespace/name` of every changed object. */
  readonly keys: ReadonlySet<string>;
  readonly relist: boolean;
  /**
   * Only endpoint sources changed and EDS debounce is off: flushed at once, and emitted only if
   * the change proves endpoints-only (otherwise it goes back through the debounce).
   */
  readonly immediate?: boolean;
}

/**
 * Kinds whose changes are usually endpoint updates (Istio's EDS updates from the service
 * registry): a Pod's readiness or address, an EndpointSlice.
 */
const ENDPOINT_SOURCE_KINDS: ReadonlySet<string> = new Set([
  '/Pod',
  'discovery.k8s.io/EndpointSlice',
]);

export interface RegistryControllerOptions {
  readonly store: ConfigStore;
  /** Receives each new snapshot; a returned promise holds the next one until it settles. */
  readonly onSnapshot: (
    snapshot: Snapshot,
    diff: SnapshotDiff,
    info: SnapshotInfo,
  ) => void | Promise<void>;
  /** Watch and list failures (the controller retries by itself); for logs and counters. */
  readonly onError?: (err: unknown) => void;
  readonly mesh?: Partial<MeshOptions>;
  /** Debounce windows (default 100 ms quiet, 10 s max). */
  readonly debounce?: {
    readonly quietMs?: number;
    readonly maxMs?: number;
    /**
     * Whether endpoint-only changes wait for the debounce too (default true). False is
     * Istio's PILOT_ENABLE_EDS_DEBOUNCE=false: they are pushed at once, unless config changes
     * are already waiting (then they join them).
     */
    readonly eds?: boolean;
  };
  readonly timers?: TimerApi;
  /** Retry delays after a failure: doubling from `initialMs` (100) up to `maxMs` (5000). */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** The version string of the n-th snapshot (default: `String(n)`). */
  readonly version?: (n: number) => string;
  /** Kinds to read (default: every kind the snapshot reads). */
  readonly kinds?: readonly KindRef[];
}

/** Context of an emitted snapshot. */
export interface SnapshotInfo {
  readonly reasons: ChangeReasons;
  /** Debounce details; absent for the initial snapshot. */
  readonly debounce?: FlushInfo;
}

/** Counters for monitoring and tests. */
export interface ControllerStats {
  readonly snapshots: number;
  readonly events: number;
  readonly lists: number;
  readonly watchErrors: number;
}

export class RegistryController {
  readonly #opts: RegistryControllerOptions;
  readonly #timers: TimerApi;
  readonly #kinds: ReadonlySet<string>;
  readonly #objects = new Map<string, KubeObject>();
  readonly #debouncer: Debouncer<ChangeReasons>;
  #snapshot: Snapshot | undefined;
  /** Keys changed since `#snapshot` was built (all of them are stale after a relist). */
  readonly #unsynced = new Set<string>();
  #relisted = true;
  #count = 0;
  #watch: Watch | undefined;
  #lastRevision: string | undefined;
  #retryMs: number;
  #retryTimer: unknown;
  #retrying = false;
  #closed = false;
  #generation = 0;
  #stats = { snapshots: 0, events: 0, lists: 0, watchErrors: 0 };
  /** An immediate (EDS debounce off) flush is scheduled for this turn ... */
  #immediateTurn = false;
  /** ... and no config change has joined it since. */
  #immediateValid = false;

  constructor(opts: RegistryControllerOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
    this.#kinds = new Set((opts.kinds ?? SNAPSHOT_KINDS).map(kindKey));
    this.#retryMs = opts.retry?.initialMs ?? 100;
    this.#debouncer = new Debouncer<ChangeReasons>({
      ...(opts.debounce?.quietMs !== undefined ? { quietMs: opts.debounce.quietMs } : {}),
      ...(opts.debounce?.maxMs !== undefined ? { maxMs: opts.debounce.maxMs } : {}),
      timers: this.#timers,
      merge: (a, b) => ({
        keys: new Set([...a.keys, ...b.keys]),
        relist: a.relist || b.relist,
        immediate: (a.immediate ?? false) && (b.immediate ?? false),
      }),
      flush: (reasons, info) => this.#emit(reasons, info),
      onError: (e) => this.#reportError(e),
    });
  }

  /** The latest snapshot (undefined before `start` resolves). */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  get stats(): ControllerStats {
    return { ...this.#stats };
  }

  /**
   * Lists every kind, emits the first snapshot (without debounce) and starts watching.
   * Rejects if the first list fails.
   */
  async start(): Promise<void> {
    const rv = await this.#list();
    await this.#emit({ keys: new Set(), relist: true });
    await this.#startWatch(rv);
  }

  /** Resolves when no change is waiting and no snapshot is being emitted. */
  whenIdle(): Promise<void> {
    return this.#debouncer.whenIdle();
  }

  /** Emits a snapshot for pending changes now, without waiting for the quiet window. */
  flushNow(): void {
    this.#debouncer.flushNow();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#debouncer.close();
    if (this.#retrying) this.#timers.clearTimeout(this.#retryTimer);
    this.#retrying = false;
    const w = this.#watch;
    this.#watch = undefined;
    if (w) await w.close();
  }

  /** Lists every kind into a fresh object map; returns the revision to watch from. */
  async #list(): Promise<string> {
    const objects = new Map<string, KubeObject>();
    let first: string | undefined;
    for (const k of this.#opts.kinds ?? SNAPSHOT_KINDS) {
      const r = await this.#opts.store.list(k);
      first ??= r.resourceVersion;
      for (const o of r.items) objects.set(keyOf(o), deepFreeze(o));
    }
    this.#stats.lists++;
    this.#objects.clear();
    for (const [k, o] of objects) this.#objects.set(k, o);
    this.#relisted = true;
    this.#lastRevision = first;
    return first ?? '';
  }

  async #startWatch(revision: string): Promise<void> {
    const generation = ++this.#generation;
    const w = await this.#opts.store.watch(revision !== '' ? { resourceVersion: revision } : {}, {
      onEvent: (e) => {
        if (generation === this.#generation) this.#onEvent(e);
      },
      onError: (err) => {
        if (generation === this.#generation) this.#onWatchError(err);
      },
    });
    if (this.#closed || generation !== this.#generation) {
      await w.close();
      return;
    }
    this.#watch = w;
  }

  #onEvent(e: WatchEvent): void {
    if (this.#closed) return;
    const o = e.object;
    const rv = o.metadata.resourceVersion;
    if (rv !== undefined && rv !== '') this.#lastRevision = rv;
    this.#retryMs = this.#opts.retry?.initialMs ?? 100;
    if (!this.#kinds.has(kindKey({ group: groupOf(o.apiVersion), kind: o.kind }))) return;
    this.#stats.events++;
    const key = keyOf(o);
    if (e.type === 'DELETED') this.#objects.delete(key);
    else this.#objects.set(key, deepFreeze(o));
    this.#unsynced.add(key);
    const immediate =
      this.#opts.debounce?.eds === false &&
      ENDPOINT_SOURCE_KINDS.has(`${groupOf(o.apiVersion)}/${o.kind}`) &&
      (!this.#debouncer.pending || (this.#immediateTurn && this.#immediateValid));
    this.#debouncer.push({ keys: new Set([key]), relist: false, immediate });
    if (!immediate) {
      // A config change joined: the whole batch waits for the debounce.
      this.#immediateValid = false;
      return;
    }
    // Endpoint events of one turn (a batch from the watch) are flushed together.
    if (this.#immediateTurn) return;
    this.#immediateTurn = true;
    this.#immediateValid = true;
    setImmediate(() => {
      this.#immediateTurn = false;
      if (this.#immediateValid && !this.#closed) this.#debouncer.flushNow();
    });
  }

  #onWatchError(err: Error): void {
    this.#stats.watchErrors++;
    this.#reportError(err);
    const w = this.#watch;
    this.#watch = undefined;
    this.#generation++;
    if (w) w.close().catch((e: unknown) => this.#reportError(e));
    this.#scheduleRestart(errorCode(err) === WATCH_EXPIRED);
  }

  #scheduleRestart(relist: boolean): void {
    if (this.#closed || this.#retrying) return;
    this.#retrying = true;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(delay * 2, this.#opts.retry?.maxMs ?? 5000);
    this.#retryTimer = this.#timers.setTimeout(() => {
      this.#retrying = false;
      this.#restart(relist).catch((e: unknown) => {
        this.#reportError(e);
        this.#scheduleRestart(relist || errorCode(e) === WATCH_EXPIRED);
      });
    }, delay);
  }

  async #restart(relist: boolean): Promise<void> {
    if (this.#closed) return;
    if (relist || this.#lastRevision === undefined) {
      const rv = await this.#list();
      if (this.#closed) return;
      this.#debouncer.push({ keys: new Set(), relist: true });
      await this.#startWatch(rv);
    } else await this.#startWatch(this.#lastRevision);
  }

  async #emit(reasons: ChangeReasons, info?: FlushInfo): Promise<void> {
    if (this.#closed) return;
    const prev = this.#snapshot;
    const n = this.#count + 1;
    const version = this.#opts.version ? this.#opts.version(n) : String(n);
    const opts = { ...this.#opts.mesh, version };
    let next: Snapshot;
    if (prev && !this.#relisted) {
      const changes = new Map<string, KubeObject | undefined>();
      for (const key of this.#unsynced) changes.set(key, this.#objects.get(key));
      next = updateSnapshot(prev, changes, opts);
    } else next = buildSnapshot([...this.#objects.values()], opts, prev);
    const diff = diffSnapshots(prev, next);
    if (reasons.immediate && prev && diff.scope !== 'eds' && diff.scope !== 'none') {
      // Not endpoints-only after all (labels, a new workload): debounced like any config change.
      this.#debouncer.push({ ...reasons, immediate: false });
      return;
    }
    if (prev && diff.scope === 'none') return;
    this.#count = n;
    this.#snapshot = next;
    this.#unsynced.clear();
    this.#relisted = false;
    this.#stats.snapshots++;
    await this.#opts.onSnapshot(next, diff, { reasons, ...(info ? { debounce: info } : {}) });
  }

  #reportError(e: unknown): void {
    try {
      this.#opts.onError?.(e);
    } catch {
      // A failing error handler must not stop the controller.
    }
  }
}

function keyOf(o: KubeObject): string {
  return `${groupOf(o.apiVersion)}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}
