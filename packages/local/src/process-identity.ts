// The identity of a child process (@trellis/config's ProcessIdentity: pid + boot id + start time
// from /proc), so that a pid recorded by a killed run is only signalled if it is still that very
// process (not a pid the kernel has since reused), and signalling a process group.
import { hostname } from 'node:os';
import { identityOf, liveness, parseProcessIdentity, type ProcessIdentity } from '@trellis/config';

export { identityOf, type ProcessIdentity };

/**
 * Whether the process that `id` names still runs on this host (not a zombie, not a reused pid).
 * Another machine's identity is never taken for alive here: there is nothing to signal.
 */
export function isAlive(id: ProcessIdentity): boolean {
  if (id.host !== hostname() || !Number.isSafeInteger(id.pid) || id.pid <= 1) return false;
  return liveness(id) === 'alive';
}

/** Parses an identity written to the state directory; undefined if the shape is wrong. */
export const parseIdentity = parseProcessIdentity;

/**
 * Signals a process and its process group (children are started as group leaders, so a shell's
 * own children go too). Errors (already gone) are ignored.
 */
export function signalTree(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
    return;
  } catch {
    // not a group leader, or gone
  }
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}
