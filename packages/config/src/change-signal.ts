// In-process wake-ups: a write in this process pokes this process's watches of the same state
// directory at once, instead of leaving them to fs.watch or the poll.

const listeners = new Map<string, Set<() => void>>();

/** Calls `fn` after every commit to the journal at `journalDir` made by this process. */
export function onLocalCommit(journalDir: string, fn: () => void): () => void {
  let set = listeners.get(journalDir);
  if (!set) {
    set = new Set();
    listeners.set(journalDir, set);
  }
  set.add(fn);
  return () => {
    const s = listeners.get(journalDir);
    if (!s) return;
    s.delete(fn);
    if (s.size === 0) listeners.delete(journalDir);
  };
}

/** Tells this process's watches of `journalDir` that a commit landed. */
export function signalLocalCommit(journalDir: string): void {
  for (const fn of [...(listeners.get(journalDir) ?? [])]) fn();
}
