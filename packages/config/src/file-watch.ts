// One watch on a file store: optional initial ADDED events, then every journal entry after the
// start revision that passes the filter, in order, exactly once. Woken by commits in this
// process, by fs.watch on the journal directory (other processes), and by a slow poll in case
// fs.watch misses something or is unavailable.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import type { KubeObject } from '@trellis/api';
import { TrellisError, deepFreeze, errorMessage } from '@trellis/core';
import { onLocalCommit } from './change-signal.js';
import { JournalFollower } from './journal-follower.js';
import type { Watch, WatchEvent, WatchHandlers } from './store.js';

export interface FileWatchParams {
  readonly journalDir: string;
  /** Deliver journal entries with a revision above this. */
  readonly afterRev: number;
  /** Objects to announce as ADDED before any change (a watch without resourceVersion). */
  readonly initial: readonly KubeObject[];
  readonly filter: (o: KubeObject) => boolean;
  readonly handlers: WatchHandlers;
  readonly pollIntervalMs: number;
  /** Reported through onError right after start (the watch then ends). */
  readonly startError?: Error;
  /** Called once the watch has stopped. */
  readonly onStopped: (w: FileWatch) => void;
}

export class FileWatch implements Watch {
  private readonly p: FileWatchParams;
  private readonly follower: JournalFollower;
  private initial: readonly KubeObject[];
  private stopped = false;
  private running: Promise<void> | undefined;
  private again = false;
  private fsWatcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(params: FileWatchParams) {
    this.p = params;
    this.follower = new JournalFollower(params.journalDir, params.afterRev);
    this.initial = params.initial;
  }

  /** Starts following; the first events are delivered asynchronously. */
  start(): void {
    const startError = this.p.startError;
    if (startError) {
      setImmediate(() => this.fail(startError));
      return;
    }
    this.unsubscribe = onLocalCommit(this.p.journalDir, () => this.kick());
    try {
      this.fsWatcher = fsWatch(this.p.journalDir, () => this.kick());
      this.fsWatcher.on('error', () => this.dropFsWatcher());
    } catch {
      this.fsWatcher = undefined; // the poll covers for it
    }
    this.timer = setInterval(() => this.kick(), this.p.pollIntervalMs);
    setImmediate(() => this.kick());
  }

  async close(): Promise<void> {
    this.stop();
    await this.running;
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.dropFsWatcher();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.p.onStopped(this);
  }

  private dropFsWatcher(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pump().finally(() => {
      this.running = undefined;
    });
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.again = false;
        const initial = this.initial;
        this.initial = [];
        for (const object of initial) {
          if (!this.deliver({ type: 'ADDED', object })) return;
        }
        for (;;) {
          if (this.stopped) return;
          const entries = await this.follower.read();
          if (entries.length === 0) break;
          for (const e of entries) {
            if (!this.p.filter(e.object)) continue;
            if (!this.deliver({ type: e.type, object: deepFreeze(e.object) })) return;
          }
        }
      } while (this.again && !this.stopped);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Hands one event to the caller; false once the watch has stopped. */
  private deliver(event: WatchEvent): boolean {
    if (this.stopped) return false;
    try {
      this.p.handlers.onEvent(event);
    } catch (e) {
      // A throwing handler is a bug in the caller: end the watch and make it loud.
      this.stop();
      const { handlers } = this.p;
      if (handlers.onError) {
        handlers.onError(e instanceof Error ? e : new Error(String(e)));
      } else {
        process.nextTick(() => {
          throw e;
        });
      }
      return false;
    }
    return !this.stopped;
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stop();
    const { handlers } = this.p;
    if (handlers.onError) {
      handlers.onError(err);
    } else {
      const code = err instanceof TrellisError ? `${err.code}: ` : '';
      process.emitWarning(`config store watch ended: ${code}${errorMessage(err)}`);
    }
  }
}
