// A debouncer for bursts of changes: waits until events stop for a quiet period, but never
// longer than a maximum delay after the first one, then hands the merged reasons to one flush.
// It runs on an injected timer API so that tests drive time by hand instead of sleeping.
// The algorithm is istiod's push debounce (pilot/pkg/xds/discovery.go): one flush at a time;
// events during a flush start the next window.

/** The clock and timers a debouncer uses. */
export interface TimerApi {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `fn` once after `ms`; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers and `performance.now()`. Timers are unref'd: a pending debounce keeps no process alive. */
export const systemTimers: TimerApi = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What a flush is told besides the merged reasons. */
export interface FlushInfo {
  /** How many events were merged. */
  readonly events: number;
  /** When the first and the last of them arrived (TimerApi.now()). */
  readonly firstAt: number;
  readonly lastAt: number;
  /** When the flush started. */
  readonly flushedAt: number;
}

export interface DebounceOptions<R> {
  /** Flush once no event arrived for this long (default 100 ms). */
  readonly quietMs?: number;
  /** Flush at the latest this long after the first event of a burst (default 10 s). */
  readonly maxMs?: number;
  /** Combines the reasons of two events into one. */
  readonly merge: (a: R, b: R) => R;
  /** Receives the merged reasons. A returned promise holds later flushes until it settles. */
  readonly flush: (reasons: R, info: FlushInfo) => void | Promise<void>;
  /** Called when a flush throws or rejects; the debouncer keeps going. */
  readonly onError?: (err: unknown) => void;
  readonly timers?: TimerApi;
}

export const DEFAULT_DEBOUNCE_QUIET_MS = 100;
export const DEFAULT_DEBOUNCE_MAX_MS = 10_000;

/** Coalesces events into flushes: after `quietMs` of silence, or `maxMs` after the first event. */
export class Debouncer<R> {
  readonly quietMs: number;
  readonly maxMs: number;
  readonly #merge: (a: R, b: R) => R;
  readonly #flush: (reasons: R, info: FlushInfo) => void | Promise<void>;
  readonly #onError: (err: unknown) => void;
  readonly #timers: TimerApi;
  #pending: { reasons: R; events: number; firstAt: number; lastAt: number } | undefined;
  /** flushNow was called during a flush: the next one runs as soon as it ends. */
  #flushRequested = false;
  #timer: unknown;
  #timerSet = false;
  #flushing = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(opts: DebounceOptions<R>) {
    this.quietMs = opts.quietMs ?? DEFAULT_DEBOUNCE_QUIET_MS;
    this.maxMs = opts.maxMs ?? DEFAULT_DEBOUNCE_MAX_MS;
    if (!(this.quietMs >= 0) || !(this.maxMs >= 0))
      throw new RangeError('debounce quietMs and maxMs must be non-negative');
    this.#merge = opts.merge;
    this.#flush = opts.flush;
    this.#onError = opts.onError ?? (() => {});
    this.#timers = opts.timers ?? systemTimers;
  }

  /** Whether events are waiting for a flush. */
  get pending(): boolean {
    return this.#pending !== undefined;
  }

  /** Whether a flush is running (an async flush that has not settled). */
  get flushing(): boolean {
    return this.#flushing;
  }

  /** Records an event. */
  push(reason: R): void {
    if (this.#closed) return;
    const now = this.#timers.now();
    const p = this.#pending;
    if (p) {
      p.reasons = this.#merge(p.reasons, reason);
      p.events++;
      p.lastAt = now;
    } else this.#pending = { reasons: reason, events: 1, firstAt: now, lastAt: now };
    if (!this.#timerSet && !this.#flushing) this.#arm(this.quietMs);
  }

  /** Flushes pending events now (after the running flush, if one is running). */
  flushNow(): void {
    if (this.#closed || !this.#pending) return;
    this.#cancelTimer();
    if (this.#flushing) this.#flushRequested = true;
    else this.#run();
  }

  /** Resolves once nothing is pending and no flush is running. */
  whenIdle(): Promise<void> {
    if (!this.#pending && !this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops: drops pending events and cancels the timer. A running flush finishes. */
  close(): void {
    this.#closed = true;
    this.#pending = undefined;
    this.#cancelTimer();
    if (!this.#flushing) this.#notifyIdle();
  }

  #arm(ms: number): void {
    this.#timerSet = true;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timerSet = false;
      this.#check();
    }, ms);
  }

  #cancelTimer(): void {
    if (this.#timerSet) this.#timers.clearTimeout(this.#timer);
    this.#timerSet = false;
  }

  /** Flushes if the burst went quiet or is too old; otherwise waits for whichever comes first. */
  #check(): void {
    const p = this.#pending;
    if (this.#closed || this.#flushing || !p) return;
    const now = this.#timers.now();
    const sinceFirst = now - p.firstAt;
    const quiet = now - p.lastAt;
    if (sinceFirst >= this.maxMs || quiet >= this.quietMs) this.#run();
    else this.#arm(Math.min(this.quietMs - quiet, this.maxMs - sinceFirst));
  }

  #run(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    this.#flushing = true;
    const info: FlushInfo = {
      events: p.events,
      firstAt: p.firstAt,
      lastAt: p.lastAt,
      flushedAt: this.#timers.now(),
    };
    let result: void | Promise<void>;
    try {
      result = this.#flush(p.reasons, info);
    } catch (e) {
      this.#onError(e);
      result = undefined;
    }
    if (result instanceof Promise) {
      result.then(
        () => this.#afterFlush(),
        (e: unknown) => {
          this.#onError(e);
          this.#afterFlush();
        },
      );
    } else this.#afterFlush();
  }

  #afterFlush(): void {
    this.#flushing = false;
    const requested = this.#flushRequested;
    this.#flushRequested = false;
    if (this.#pending && !this.#closed) {
      if (requested) this.#run();
      else if (!this.#timerSet) this.#check();
    } else this.#notifyIdle();
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
