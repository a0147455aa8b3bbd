// Who owns a lock, and whether that owner still runs: pid plus, where /proc exists, the boot id
// and the process start time, so a pid reused after a crash or a reboot is not taken for the owner.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { errorCode } from '@trellis/core';

/** Enough to tell later whether this very process is still alive. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly host: string;
  /** Linux: /proc/sys/kernel/random/boot_id. */
  readonly bootId?: string;
  /** Linux: the start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  readonly startTicks?: string;
}

export type Liveness = 'alive' | 'dead';

let self: ProcessIdentity | undefined;

/** The identity of a running process on this host (e.g. a child just spawned). */
export function identityOf(pid: number): ProcessIdentity {
  const bootId = readBootId();
  const stat = readProcStat(pid);
  return {
    pid,
    host: hostname(),
    ...(bootId !== undefined ? { bootId } : {}),
    ...(stat ? { startTicks: stat.startTicks } : {}),
  };
}

/** This process's identity (computed once). */
export function currentProcess(): ProcessIdentity {
  self ??= identityOf(process.pid);
  return self;
}

/**
 * Whether the process is still running. An owner on another host cannot be checked and counts as
 * alive (the caller then waits for its lock to be released or times out).
 */
export function liveness(owner: ProcessIdentity): Liveness {
  const me = currentProcess();
  if (owner.host !== me.host) return 'alive';
  if (owner.bootId !== undefined && me.bootId !== undefined && owner.bootId !== me.bootId) {
    return 'dead'; // written before a reboot
  }
  if (!Number.isSafeInteger(owner.pid) || owner.pid <= 0) return 'dead';
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if (errorCode(e) === 'ESRCH') return 'dead';
    // EPERM: it exists but belongs to someone else.
  }
  const stat = readProcStat(owner.pid);
  if (stat) {
    if (stat.state === 'Z' || stat.state === 'X') return 'dead'; // killed, not yet reaped
    if (owner.startTicks !== undefined && stat.startTicks !== owner.startTicks) return 'dead'; // pid reused
  }
  return 'alive';
}

/** Parses an identity written by `currentProcess()`; undefined if the shape is wrong. */
export function parseProcessIdentity(v: unknown): ProcessIdentity | undefined {
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

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function readProcStat(pid: number): { state: string; startTicks: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "PID (COMM) STATE PPID ..."; COMM may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  if (state === undefined || startTicks === undefined) return undefined;
  return { state, startTicks };
}
