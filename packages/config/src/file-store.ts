// The file-backed config store: one JSON file per object under the state directory, a
// store-wide revision, a write-ahead change journal that watches follow, and a lock file that
// serialises writers across processes. See docs/config-store.md for the protocol and the
// crash-safety argument.
import { readFile, realpath } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describeObject, groupOf, type KubeObject } from '@trellis/api';
import {
  AlreadyExistsError,
  InvalidError,
  NotFoundError,
  TrellisError,
  deepEqual,
  deepFreeze,
  errorCode,
  errorMessage,
} from '@trellis/core';
import { mutexFor, type AsyncMutex } from './async-mutex.js';
import { signalLocalCommit } from './change-signal.js';
import { mkdirDurable, sweepTempFiles, unlinkDurable, writeFileAtomic } from './durable-fs.js';
import { FileWatch } from './file-watch.js';
import { JournalWriter, peekLastEntry, type JournalEntry, type JournalLimits } from './journal.js';
import { watchExpired } from './journal-follower.js';
import { FileLock, LOCK_LOST, type HeldLock } from './lock.js';
import {
  STORE_CORRUPT,
  checkKey,
  listKinds,
  listObjectNames,
  listScopes,
  objectPath,
  readObjectFile,
  scopeDir,
  serializeObject,
} from './object-files.js';
import { checkPreconditions, copyInput, forCreate, forUpdate } from './object-meta.js';
import {
  keyOf,
  type ConfigStore,
  type GroupKind,
  type ListOptions,
  type ListResult,
  type ObjectKey,
  type Watch,
  type WatchHandlers,
  type WatchOptions,
} from './store.js';

/** The error code for any use of a closed store. */
export const STORE_CLOSED = 'TRELLIS_STORE_CLOSED';
/** The error code for a state directory that cannot be used (not a directory, unknown format). */
export const STATE_DIR_UNUSABLE = 'TRELLIS_STATE_DIR_UNUSABLE';

/** The default interval of the watch poll that backs up fs.watch. */
export const DEFAULT_WATCH_POLL_MS = 1000;

const FORMAT_FILE = 'format.json';
const FORMAT = { format: 'trellis-state', version: 1 } as const;
const LOCK_FILE = 'store.lock';

export interface FileStoreOptions {
  /** How long a write (or list) waits for another process's lock before TRELLIS_LOCK_TIMEOUT (default 10 s). */
  readonly lockTimeoutMs?: number;
  /** The watch poll interval (default 1 s); fs.watch and in-process commits wake watches sooner. */
  readonly watchPollMs?: number;
  /** Journal segment size and retention (compaction) bounds. */
  readonly journal?: JournalLimits;
}

/** Opens (creating if needed) the file store in `dir`, finishing a change a crashed writer left half-applied. */
export async function openFileStore(dir: string, opts: FileStoreOptions = {}): Promise<FileStore> {
  const root = resolve(dir);
  let real: string;
  try {
    await mkdirDurable(join(root, 'objects'));
    await mkdirDurable(join(root, 'journal'));
    real = await realpath(root);
  } catch (e) {
    throw new TrellisError(
      STATE_DIR_UNUSABLE,
      `cannot use ${root} as the state directory: ${errorMessage(e)}`,
      { cause: e },
    );
  }
  await ensureFormat(real);
  const store = new FileStore(real, opts);
  await store.recover();
  return store;
}

async function ensureFormat(dir: string): Promise<void> {
  const path = join(dir, FORMAT_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw e;
    await writeFileAtomic(path, JSON.stringify(FORMAT) + '\n');
    return;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const f = v as { format?: unknown; version?: unknown } | undefined;
  if (f?.format !== FORMAT.format || f.version !== FORMAT.version) {
    throw new TrellisError(
      STATE_DIR_UNUSABLE,
      `${path} does not describe a Trellis state directory of format version ${FORMAT.version}`,
    );
  }
}

/** The state-directory backend of ConfigStore. Safe to use from many processes at once. */
export class FileStore implements ConfigStore {
  /** The state directory (absolute, symlinks resolved). */
  readonly dir: string;
  private readonly objectsDir: string;
  private readonly journalDir: string;
  private readonly lock: FileLock;
  private readonly journal: JournalWriter;
  private readonly mutex: AsyncMutex;
  private readonly watchPollMs: number;
  private readonly watches = new Set<FileWatch>();
  /** Every journal entry up to this revision is known to be applied to the object files. */
  private appliedRev = 0;
  private closed = false;

  /** Use `openFileStore`. */
  constructor(dir: string, opts: FileStoreOptions = {}) {
    this.dir = dir;
    this.objectsDir = join(dir, 'objects');
    this.journalDir = join(dir, 'journal');
    this.lock = new FileLock(
      join(dir, LOCK_FILE),
      opts.lockTimeoutMs !== undefined ? { timeoutMs: opts.lockTimeoutMs } : {},
    );
    this.journal = new JournalWriter(this.journalDir, opts.journal);
    this.mutex = mutexFor(dir);
    this.watchPollMs = opts.watchPollMs ?? DEFAULT_WATCH_POLL_MS;
  }

  async get(key: ObjectKey): Promise<KubeObject | undefined> {
    this.checkOpen();
    checkKey(key);
    const o = await readObjectFile(objectPath(this.objectsDir, key), key);
    return o && deepFreeze(o);
  }

  async list(kind: GroupKind, opts: ListOptions = {}): Promise<ListResult> {
    this.checkOpen();
    checkKind(kind);
    if (opts.namespace !== undefined) checkKey({ ...kind, name: 'x', namespace: opts.namespace });
    return this.locked(async () => {
      const rev = await this.prepare();
      const items = await this.readKind(kind, opts.namespace);
      return { items, resourceVersion: String(rev) };
    });
  }

  /** The store's current revision: the resourceVersion of its latest change ('0' if none). */
  async revision(): Promise<string> {
    this.checkOpen();
    return String(await this.locked(() => this.prepare()));
  }

  async create(object: KubeObject): Promise<KubeObject> {
    this.checkOpen();
    const o = copyInput(object);
    const key = keyOf(o);
    checkKey(key);
    return this.commit(key, (current, rev) => {
      if (current) throw new AlreadyExistsError(`${describeObject(o)} already exists`);
      return { write: { rev, type: 'ADDED', object: forCreate(o, rev, new Date()) } };
    });
  }

  async update(object: KubeObject): Promise<KubeObject> {
    this.checkOpen();
    const desired = copyInput(object);
    const key = keyOf(desired);
    checkKey(key);
    return this.commit(key, (current, rev) => {
      if (!current) throw new NotFoundError(`cannot update ${describeObject(desired)}: not found`);
      checkPreconditions(current, desired.metadata, 'update');
      const next = forUpdate(current, desired, rev);
      const unchanged = {
        ...next,
        metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion },
      };
      // Like the API server: a write that changes nothing is not a change (no new revision).
      if (deepEqual(unchanged, current)) return { unchanged: current };
      return { write: { rev, type: 'MODIFIED', object: next } };
    });
  }

  async delete(
    key: ObjectKey,
    opts: { readonly resourceVersion?: string } = {},
  ): Promise<KubeObject> {
    this.checkOpen();
    checkKey(key);
    return this.commit(key, (current, rev) => {
      if (!current) throw new NotFoundError(`cannot delete ${describeKey(key)}: not found`);
      checkPreconditions(current, { resourceVersion: opts.resourceVersion }, 'delete');
      const last = { ...current, metadata: { ...current.metadata, resourceVersion: String(rev) } };
      return { write: { rev, type: 'DELETED', object: last } };
    });
  }

  async watch(opts: WatchOptions, handlers: WatchHandlers): Promise<Watch> {
    this.checkOpen();
    const { kind, namespace } = opts;
    if (kind) checkKind(kind);
    const filter = (o: KubeObject): boolean =>
      (kind === undefined || (o.kind === kind.kind && groupOf(o.apiVersion) === kind.group)) &&
      (namespace === undefined || o.metadata.namespace === namespace);
    let afterRev: number;
    let initial: readonly KubeObject[] = [];
    let startError: Error | undefined;
    if (opts.resourceVersion !== undefined && opts.resourceVersion !== '') {
      afterRev = parseRevision(opts.resourceVersion);
      const current = await this.locked(() => this.prepare());
      if (afterRev > current) {
        startError = watchExpired(
          afterRev,
          `it is newer than the store's revision ${current} (was the state directory replaced?)`,
        );
      }
    } else {
      const snap = await this.locked(async () => {
        const rev = await this.prepare();
        const items = kind ? await this.readKind(kind, namespace) : await this.readAll();
        return { rev, items };
      });
      afterRev = snap.rev;
      initial = snap.items.filter(filter);
    }
    const w = new FileWatch({
      journalDir: this.journalDir,
      afterRev,
      initial,
      filter,
      handlers,
      pollIntervalMs: this.watchPollMs,
      ...(startError ? { startError } : {}),
      onStopped: (stopped) => this.watches.delete(stopped),
    });
    this.watches.add(w);
    w.start();
    return w;
  }

  /** Stops every watch; later calls fail with TRELLIS_STORE_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watches].map((w) => w.close()));
  }

  /**
   * Finishes the last journal entry if a crashed writer committed it without applying it, so
   * that `get` agrees with the journal. Cheap when nothing is pending (no lock is taken).
   */
  async recover(): Promise<void> {
    const last = await peekLastEntry(this.journalDir);
    if (!last || (await this.isApplied(last))) {
      if (last) this.appliedRev = Math.max(this.appliedRev, last.rev);
      return;
    }
    await this.locked(() => this.prepare());
  }

  // ---- under the lock ----

  /** Runs `fn` holding this process's mutex for the directory and the lock file. */
  private locked<T>(fn: (held: HeldLock) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.checkOpen();
      const held = await this.lock.acquire();
      try {
        return await fn(held);
      } finally {
        await held.release();
      }
    });
  }

  /**
   * Brings this process up to date with the journal (repairing a torn tail), re-applies the last
   * entry if its writer died before applying it, and returns the current revision.
   */
  private async prepare(): Promise<number> {
    const tail = await this.journal.sync();
    if (tail.last && tail.last.rev > this.appliedRev) {
      if (!(await this.isApplied(tail.last))) await this.apply(tail.last, true);
      this.appliedRev = tail.last.rev;
    }
    // An empty journal (new store, or its journal removed by hand): continue above every object.
    return tail.lastRev > 0 ? tail.lastRev : await this.maxObjectRevision();
  }

  /** Makes one write: checks against the stored object, commits to the journal, applies. */
  private commit(
    key: ObjectKey,
    decide: (current: KubeObject | undefined, rev: number) => Decision,
  ): Promise<KubeObject> {
    return this.locked(async (held) => {
      const rev = (await this.prepare()) + 1;
      const path = objectPath(this.objectsDir, key);
      const current = await readObjectFile(path, key);
      const decided = decide(current, rev);
      if ('unchanged' in decided) return deepFreeze(decided.unchanged);
      const entry = decided.write;
      if (entry.type !== 'DELETED') await mkdirDurable(dirname(path));
      if (!(await held.stillHeld())) {
        throw new TrellisError(
          LOCK_LOST,
          `the lock ${this.lock.path} was taken over while writing ${describeKey(key)}; nothing was written, retry`,
        );
      }
      let rotated: boolean;
      try {
        rotated = await this.journal.append(entry); // the commit point
      } finally {
        signalLocalCommit(this.journalDir);
      }
      await this.apply(entry, false);
      this.appliedRev = entry.rev;
      if (rotated) {
        // The write is done; failing to drop old segments must not make it look failed.
        await this.journal.compact().catch((e: unknown) => {
          process.emitWarning(`config store journal compaction failed: ${errorMessage(e)}`);
        });
      }
      return deepFreeze(entry.object);
    });
  }

  /** Makes the object file reflect a committed entry. */
  private async apply(entry: JournalEntry, redo: boolean): Promise<void> {
    const key = keyOf(entry.object);
    const path = objectPath(this.objectsDir, key);
    // A redo follows a crash, which may have left a temp file beside the object: sweep it.
    if (redo) await sweepTempFiles(dirname(path));
    if (entry.type === 'DELETED') {
      await unlinkDurable(path);
    } else {
      await mkdirDurable(dirname(path));
      await writeFileAtomic(path, serializeObject(entry.object));
    }
  }

  private async isApplied(entry: JournalEntry): Promise<boolean> {
    const key = keyOf(entry.object);
    let onDisk: KubeObject | undefined;
    try {
      onDisk = await readObjectFile(objectPath(this.objectsDir, key), key);
    } catch (e) {
      if (errorCode(e) === STORE_CORRUPT) return false;
      throw e;
    }
    if (entry.type === 'DELETED') return onDisk === undefined;
    return onDisk?.metadata.resourceVersion === String(entry.rev);
  }

  private async maxObjectRevision(): Promise<number> {
    let max = 0;
    for (const o of await this.readAll()) {
      max = Math.max(max, Number(o.metadata.resourceVersion));
    }
    return max;
  }

  // ---- reading ----

  private async readKind(kind: GroupKind, namespace: string | undefined): Promise<KubeObject[]> {
    const scopes = namespace !== undefined ? [namespace] : await listScopes(this.objectsDir, kind);
    const out: KubeObject[] = [];
    for (const ns of scopes) {
      const dir = scopeDir(this.objectsDir, kind, ns);
      for (const name of await listObjectNames(dir)) {
        const key: ObjectKey = { ...kind, name, ...(ns !== undefined ? { namespace: ns } : {}) };
        const o = await readObjectFile(join(dir, `${name}.json`), key);
        if (o) out.push(deepFreeze(o));
      }
    }
    return out;
  }

  private async readAll(): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    for (const kind of await listKinds(this.objectsDir))
      out.push(...(await this.readKind(kind, undefined)));
    return out;
  }

  private checkOpen(): void {
    if (this.closed)
      throw new TrellisError(STORE_CLOSED, `the config store in ${this.dir} is closed`);
  }
}

/** What a write decided: a change to commit, or nothing to do. */
type Decision = { readonly write: JournalEntry } | { readonly unchanged: KubeObject };

function checkKind(kind: GroupKind): void {
  checkKey({ group: kind.group, kind: kind.kind, name: 'x' });
}

/** `VirtualService default/reviews`. */
function describeKey(key: ObjectKey): string {
  return `${key.kind} ${key.namespace !== undefined ? `${key.namespace}/` : ''}${key.name}`;
}

/** A resourceVersion as a revision number; InvalidError if it is not one. */
export function parseRevision(rv: string): number {
  const n = /^(0|[1-9][0-9]*)$/.test(rv) ? Number(rv) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new InvalidError(`resource version must be a revision number, not ${JSON.stringify(rv)}`);
  }
  return n;
}
