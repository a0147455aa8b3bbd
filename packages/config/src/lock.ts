// A cross-process mutex on a lock file. The file appears atomically with its owner record (pid,
// boot id, process start time, random nonce) by hard-linking a fully written temp file to the lock
// path, which fails with EEXIST exactly like open(O_CREAT|O_EXCL) but can never leave an empty
// lock behind. A lock whose owner no longer runs is broken under a second, short-lived "breaker"
// lock so that two waiters cannot both break it and then delete each other's fresh lock.
import { randomBytes } from 'node:crypto';
import { link, open, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TrellisError, errorCode } from '@trellis/core';
import {
  currentProcess,
  liveness,
  parseProcessIdentity,
  type ProcessIdentity,
} from './process-identity.js';

/** The error code when a live holder keeps the lock past the wait bound. */
export const LOCK_TIMEOUT = 'TRELLIS_LOCK_TIMEOUT';
/** The error code when the lock was taken from a holder (only if a stale-lock check misjudged). */
export const LOCK_LOST = 'TRELLIS_LOCK_LOST';

/** The default bound on waiting for a live holder. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

/** An unreadable lock record (written by hand, or by a crashed non-link fallback) is stale after this. */
const GARBAGE_GRACE_MS = 2_000;

export interface LockOptions {
  /** How long `acquire` waits for a live holder before failing with TRELLIS_LOCK_TIMEOUT. */
  readonly timeoutMs?: number;
}

/** What the lock file holds. */
export interface LockOwner extends ProcessIdentity {
  readonly nonce: string;
  readonly acquiredAt: string;
}

/** A held lock. */
export interface HeldLock {
  readonly owner: LockOwner;
  /** Whether the lock file is still ours (false only if someone broke it from under us). */
  stillHeld(): Promise<boolean>;
  /** Releases the lock (a no-op if it is no longer ours). */
  release(): Promise<void>;
}

type Observed =
  | { readonly kind: 'missing' }
  | { readonly kind: 'owner'; readonly raw: string; readonly owner: LockOwner }
  | { readonly kind: 'garbage'; readonly raw: string; readonly ageMs: number };

/** A lock file at `path`; the directory must exist. */
export class FileLock {
  readonly path: string;
  readonly timeoutMs: number;
  private readonly breakerPath: string;

  constructor(path: string, opts: LockOptions = {}) {
    this.path = path;
    this.breakerPath = `${path}.break`;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  }

  /** Waits for the lock (breaking a stale one) up to `timeoutMs`, then fails with TRELLIS_LOCK_TIMEOUT. */
  async acquire(): Promise<HeldLock> {
    const nonce = randomBytes(8).toString('hex');
    const owner: LockOwner = { ...currentProcess(), nonce, acquiredAt: new Date().toISOString() };
    const raw = JSON.stringify(owner) + '\n';
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.${nonce}.tmp`);
    await writeFile(tmp, raw, { flag: 'wx' });
    const started = Date.now();
    let delay = 1;
    try {
      for (;;) {
        if (await this.tryCreate(this.path, tmp, raw)) {
          await this.sweepDeadTemps();
          return this.held(owner, raw);
        }
        const seen = await this.observe(this.path);
        if (seen.kind === 'missing') continue;
        const waited = Date.now() - started;
        if (isStale(seen) && waited < this.timeoutMs) {
          await this.breakStale(seen.raw, tmp, raw);
          continue;
        }
        if (waited >= this.timeoutMs) throw this.timeoutError(seen, waited);
        await sleep(Math.min(delay, this.timeoutMs - waited) * (0.5 + Math.random()));
        delay = Math.min(delay * 2, 50);
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  private held(owner: LockOwner, raw: string): HeldLock {
    const path = this.path;
    let released = false;
    return {
      owner,
      stillHeld: async () => !released && (await readOrUndefined(path)) === raw,
      release: async () => {
        if (released) return;
        released = true;
        if ((await readOrUndefined(path)) === raw) await unlink(path).catch(ignoreMissing);
      },
    };
  }

  /** Creates `target` holding `raw` iff it does not exist. */
  private async tryCreate(target: string, tmp: string, raw: string): Promise<boolean> {
    try {
      await link(tmp, target);
      return true;
    } catch (e) {
      const code = errorCode(e);
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') {
        throw e;
      }
    }
    // No hard links on this file system: O_EXCL, then write (a crash in between leaves an
    // unreadable record, which counts as stale after GARBAGE_GRACE_MS).
    let handle;
    try {
      handle = await open(target, 'wx');
    } catch (e) {
      if (errorCode(e) === 'EEXIST') return false;
      throw e;
    }
    try {
      await handle.writeFile(raw);
    } finally {
      await handle.close();
    }
    return true;
  }

  private async observe(path: string): Promise<Observed> {
    let raw: string;
    let ageMs: number;
    try {
      raw = await readFile(path, 'utf8');
      ageMs = Date.now() - (await stat(path)).mtimeMs;
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return { kind: 'missing' };
      throw e;
    }
    const owner = parseOwner(raw);
    return owner ? { kind: 'owner', raw, owner } : { kind: 'garbage', raw, ageMs };
  }

  /**
   * Removes the lock file iff it still holds `staleRaw`, while holding the breaker lock. The
   * breaker is held for a few system calls; if its own holder died, it is removed outright.
   */
  private async breakStale(staleRaw: string, tmp: string, raw: string): Promise<void> {
    if (!(await this.tryCreate(this.breakerPath, tmp, raw))) {
      const breaker = await this.observe(this.breakerPath);
      if (breaker.kind !== 'missing' && isStale(breaker)) {
        if ((await readOrUndefined(this.breakerPath)) === breaker.raw) {
          await unlink(this.breakerPath).catch(ignoreMissing);
        }
      } else {
        await sleep(1);
      }
      return;
    }
    try {
      if ((await readOrUndefined(this.path)) === staleRaw)
        await unlink(this.path).catch(ignoreMissing);
    } finally {
      await unlink(this.breakerPath).catch(ignoreMissing);
    }
  }

  /** Removes temp records left by processes that died between writing and linking them. */
  private async sweepDeadTemps(): Promise<void> {
    const dir = dirname(this.path);
    const prefix = `.${basename(this.path)}.`;
    const host = currentProcess().host;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
      const pid = Number(name.slice(prefix.length).split('.')[0]);
      if (pid !== process.pid && liveness({ pid, host }) === 'dead') {
        await unlink(join(dir, name)).catch(() => undefined);
      }
    }
  }

  private timeoutError(seen: Observed, waitedMs: number): TrellisError {
    const holder =
      seen.kind === 'owner'
        ? `pid ${seen.owner.pid} on ${seen.owner.host} since ${seen.owner.acquiredAt}`
        : 'an unreadable owner record';
    return new TrellisError(
      LOCK_TIMEOUT,
      `timed out after ${waitedMs} ms waiting for the lock ${this.path}, held by ${holder}; ` +
        'if no trellis process is using this state directory, remove the lock file',
    );
  }
}

function isStale(seen: Exclude<Observed, { kind: 'missing' }>): boolean {
  return seen.kind === 'owner' ? liveness(seen.owner) === 'dead' : seen.ageMs > GARBAGE_GRACE_MS;
}

function parseOwner(raw: string): LockOwner | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const id = parseProcessIdentity(v);
  const o = v as Record<string, unknown>;
  if (!id || typeof o.nonce !== 'string' || typeof o.acquiredAt !== 'string') return undefined;
  return { ...id, nonce: o.nonce, acquiredAt: o.acquiredAt };
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

function ignoreMissing(e: unknown): void {
  if (errorCode(e) !== 'ENOENT') throw e;
}
