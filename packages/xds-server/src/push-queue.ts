// Bounded concurrency for pushes: at most `limit` connections compute and send at once.
// A connection is queued once however many pushes it accumulates while waiting; they are
// merged into one push when its turn comes.
import type { Connection } from './connection.js';

export class PushQueue {
  private readonly limit: number;
  private readonly queue: Connection[] = [];
  private running = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`push concurrency must be a positive integer, not ${limit}`);
    this.limit = limit;
  }

  /** Pushes waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Pushes in progress. */
  get active(): number {
    return this.running;
  }

  schedule(conn: Connection): void {
    if (conn.queued) return;
    conn.queued = true;
    this.queue.push(conn);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.limit && this.queue.length > 0) {
      const conn = this.queue.shift() as Connection;
      conn.queued = false;
      this.running++;
      void conn.runPendingPush().finally(() => {
        this.running--;
        if (conn.hasPendingPush() && !conn.closed) this.schedule(conn);
        this.pump();
      });
    }
  }
}

/** A counting semaphore: `acquire` waits for one of `limit` slots, in arrival order. */
export class Semaphore {
  private readonly limit: number;
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`the limit must be a positive integer, not ${limit}`);
    this.limit = limit;
  }

  acquire(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }
}
