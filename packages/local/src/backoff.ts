// Restart backoff of a crashing container (the kubelet's CrashLoopBackOff): the first restart
// waits 1 s, each further one doubles, capped at 5 min; a container that stayed up 10 min
// resets the count. Pure arithmetic on times given by the caller (an injected clock).

export interface BackoffOptions {
  /** First delay (default 1000 ms). */
  readonly initialMs?: number;
  /** Cap (default 300 000 ms: 5 min). */
  readonly maxMs?: number;
  /** A run at least this long resets the backoff (default 600 000 ms: 10 min). */
  readonly resetAfterMs?: number;
}

export const DEFAULT_BACKOFF = {
  initialMs: 1_000,
  maxMs: 300_000,
  resetAfterMs: 600_000,
} as const;

/** The delay before each restart of one container. */
export class CrashBackoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #reset: number;
  /** Consecutive short runs (crashes) since the last reset. */
  #crashes = 0;

  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? DEFAULT_BACKOFF.initialMs;
    this.#max = opts.maxMs ?? DEFAULT_BACKOFF.maxMs;
    this.#reset = opts.resetAfterMs ?? DEFAULT_BACKOFF.resetAfterMs;
  }

  /**
   * Records that the container exited after running `ranMs` (0 if it never started) and returns
   * how long to wait before starting it again.
   */
  next(ranMs: number): number {
    if (ranMs >= this.#reset) this.#crashes = 0;
    const delay = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#crashes, 40));
    this.#crashes++;
    return delay;
  }

  /** Crashes counted since the last reset. */
  get crashes(): number {
    return this.#crashes;
  }
}
