// An in-process FIFO mutex, so the async operations of one process queue up for the state
// directory before they contend for its lock file.

/** Runs critical sections one at a time, in the order they were requested. */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `fn` once every earlier `run` has settled; resolves or rejects with its outcome. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const byPath = new Map<string, AsyncMutex>();

/** The one mutex of this process for `path` (an absolute, resolved path). */
export function mutexFor(path: string): AsyncMutex {
  let m = byPath.get(path);
  if (!m) {
    m = new AsyncMutex();
    byPath.set(path, m);
  }
  return m;
}
