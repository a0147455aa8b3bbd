// @trellis/config: the config store interface and its backends.
export * from './store.js';
export {
  resolveStateDir,
  STATE_DIR_ENV,
  DEFAULT_STATE_DIR,
  type StateDirSources,
} from './state-dir.js';
export {
  openFileStore,
  FileStore,
  parseRevision,
  STORE_CLOSED,
  STATE_DIR_UNUSABLE,
  DEFAULT_WATCH_POLL_MS,
  type FileStoreOptions,
} from './file-store.js';
export { FileLock, LOCK_TIMEOUT, LOCK_LOST, DEFAULT_LOCK_TIMEOUT_MS } from './lock.js';
export type { LockOptions, LockOwner, HeldLock } from './lock.js';
export { readJournal, type JournalEntry, type JournalLimits } from './journal.js';
export { WATCH_EXPIRED } from './journal-follower.js';
export { STORE_CORRUPT } from './object-files.js';
export {
  currentProcess,
  identityOf,
  liveness,
  parseProcessIdentity,
  type Liveness,
  type ProcessIdentity,
} from './process-identity.js';
