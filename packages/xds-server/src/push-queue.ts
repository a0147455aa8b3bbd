// Bounded concurrency for pushes: at most `limit` connections compute and send at once.
// A connection is queued once however many pushes it accumulates while waiting; they are
// merged into one push when its turn comes.
//
// At most `batch` pushes start per turn of the event loop. A small push (an endpoint change)
// completes without waiting for I/O, so without this every proxy's response would be computed in
// one turn and reach the sockets only at its end (HTTP/2 sessions flush between turns): in
// batches, the first proxies receive theirs, and answer, while the next ones are computed.
import { setImmediate } from 'node:timers';
import type { Connection } from './connection.js';

export class PushQueue {
  private readonly limit: number;
  private readonly batch: number;
  private readonly queue: Connection[] = [];
  private running = 0;
  /** Pushes started in this turn of the event loop. */
  private startedThisTurn = 0;

  constructor(limit: number, batch = 32) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`push concurrency must be a positive integer, not ${limit}`);
    if (!Number.isInteger(batch) || batch < 1)
      throw new Error(`push batch must be a positive integer, not ${batch}`);
    this.limit = limit;
    this.batch = batch;
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
      if (this.startedThisTurn >= this.batch) return; // resumed by the next turn (below)
      if (this.startedThisTurn++ === 0)
        setImmediate(() => {
          this.startedThisTurn = 0;
          this.pump();
        });
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
