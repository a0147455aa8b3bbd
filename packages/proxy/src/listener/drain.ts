// A connection's drain state (the DrainSignal its network filter watches).
import type { DrainSignal } from './types.js';

export class ConnectionDrain implements DrainSignal {
  #draining = false;
  #fns: (() => void)[] | undefined;

  get draining(): boolean {
    return this.#draining;
  }

  onDrain(fn: () => void): void {
    if (this.#draining) fn();
    else (this.#fns ??= []).push(fn);
  }

  /** Starts draining: runs the callbacks once. */
  start(): void {
    if (this.#draining) return;
    this.#draining = true;
    const fns = this.#fns;
    this.#fns = undefined;
    for (const fn of fns ?? []) {
      try {
        fn();
      } catch {
        // A filter's drain callback must not break the others.
      }
    }
  }
}
