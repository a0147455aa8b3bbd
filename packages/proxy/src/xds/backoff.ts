// Exponential backoff with jitter for reconnecting to the xDS server.
//
// Envoy retries its xDS stream with a jittered exponential backoff (500 ms base, 30 s cap);
// here each delay is drawn between half and all of `min(base * 2^attempt, max)` ("equal
// jitter"), so proxies restarted together spread out without ever retrying in a hot loop.

/** Backoff settings. */
export interface BackoffOptions {
  /** First delay's upper bound (default 500 ms). */
  readonly baseMs?: number;
  /** Largest delay (default 30 s). */
  readonly maxMs?: number;
  /** Random source in [0, 1) (default Math.random): injectable for tests. */
  readonly random?: () => number;
}

/** A jittered exponential backoff: `next()` gives the next delay, `reset()` after a success. */
export class JitteredBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = Math.max(1, options.baseMs ?? 500);
    this.maxMs = Math.max(this.baseMs, options.maxMs ?? 30_000);
    this.#random = options.random ?? Math.random;
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The upper bound of the next delay. */
  ceiling(): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.#attempt, 30));
  }

  /** The next delay in ms. */
  next(): number {
    const ceiling = this.ceiling();
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(ceiling / 2 + (r * ceiling) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
