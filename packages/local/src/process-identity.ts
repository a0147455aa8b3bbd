// The identity of a child process (pid + boot id + start time from /proc), in the shape of
// @trellis/config's ProcessIdentity, so that a pid recorded by a killed run is only signalled
// if it is still that very process (not a pid the kernel has since reused).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { errorCode } from '@trellis/core';

/** Same fields as @trellis/config's ProcessIdentity. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly host: string;
  readonly bootId?: string;
  readonly startTicks?: string;
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function readStat(pid: number): { state: string; startTicks: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  if (state === undefined || startTicks === undefined) return undefined;
  return { state, startTicks };
}

/** The identity of a running process (e.g. a child just spawned). */
export function identityOf(pid: number): ProcessIdentity {
  const bootId = readBootId();
  const stat = readStat(pid);
  return {
    pid,
    host: hostname(),
    ...(bootId !== undefined ? { bootId } : {}),
    ...(stat ? { startTicks: stat.startTicks } : {}),
  };
}

/** Whether the process that `id` names still runs (and is not a zombie or a reused pid). */
export function isAlive(id: ProcessIdentity): boolean {
  if (id.host !== hostname()) return false; // another machine's state dir: nothing to signal here
  const boot = readBootId();
  if (id.bootId !== undefined && boot !== undefined && id.bootId !== boot) return false;
  if (!Number.isSafeInteger(id.pid) || id.pid <= 1) return false;
  try {
    process.kill(id.pid, 0);
  } catch (e) {
    if (errorCode(e) === 'ESRCH') return false;
  }
  const stat = readStat(id.pid);
  if (stat) {
    if (stat.state === 'Z' || stat.state === 'X') return false;
    if (id.startTicks !== undefined && stat.startTicks !== id.startTicks) return false;
  }
  return true;
}

export function parseIdentity(v: unknown): ProcessIdentity | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.pid !== 'number' || typeof o.host !== 'string') return undefined;
  return {
    pid: o.pid,
    host: o.host,
    ...(typeof o.bootId === 'string' ? { bootId: o.bootId } : {}),
    ...(typeof o.startTicks === 'string' ? { startTicks: o.startTicks } : {}),
  };
}

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
