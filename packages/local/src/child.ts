// One supervised child process: its own process group (so stopping it stops what it started),
// stdout and stderr appended to a log file, recorded in the process table while it runs, and
// stopped with SIGTERM, then SIGKILL after the grace period.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '@trellis/core';
import { signalTree } from './process-identity.js';
import type { ProcessTable } from './process-table.js';

export interface SpawnSpec {
  /** Absolute path of the executable. */
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly logFile: string;
  /** For the process table: `app`, `proxy`, `gateway`. */
  readonly role: string;
  /** `namespace/pod` */
  readonly pod: string;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  readonly error?: string;
}

/** Appends one line to a log file (creating its directory). */
export function appendLogLine(file: string, line: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, line.endsWith('\n') ? line : line + '\n');
  } finally {
    closeSync(fd);
  }
}

export class Child {
  readonly pid: number | undefined;
  readonly startedAt: number;
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  readonly #proc: ChildProcess;

  private constructor(proc: ChildProcess, exited: Promise<ExitInfo>, startedAt: number) {
    this.#proc = proc;
    this.pid = proc.pid;
    this.startedAt = startedAt;
    this.exited = exited.then((e) => (this.#exit = e));
  }

  /** The exit, once it happened. */
  get exit(): ExitInfo | undefined {
    return this.#exit;
  }

  static spawn(spec: SpawnSpec, table: ProcessTable, now: () => number = Date.now): Child {
    mkdirSync(dirname(spec.logFile), { recursive: true });
    const fd = openSync(spec.logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(spec.file, [...spec.args], {
        env: spec.env,
        cwd: spec.cwd,
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const pid = proc.pid;
    if (pid !== undefined) table.add(pid, spec.role, spec.pod);
    const exited = new Promise<ExitInfo>((resolve) => {
      let done = false;
      proc.once('error', (e) => {
        if (done) return;
        done = true;
        if (pid !== undefined) table.remove(pid);
        appendLogLine(spec.logFile, `[trellis] cannot start ${spec.file}: ${errorMessage(e)}`);
        resolve({ code: null, signal: null, error: errorMessage(e) });
      });
      proc.once('exit', (code, signal) => {
        if (done) return;
        done = true;
        if (pid !== undefined) table.remove(pid);
        resolve({ code, signal });
      });
    });
    return new Child(proc, exited, now());
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once it exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.#exit) return this.#exit;
    if (this.pid === undefined) return this.exited;
    signalTree(this.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.pid !== undefined) signalTree(this.pid, 'SIGKILL');
        resolve();
      }, graceMs);
    });
    const exit = await Promise.race([this.exited, killed.then(() => this.exited)]);
    clearTimeout(timer);
    // The group leader is gone; make sure nothing it started lingers.
    signalTree(this.pid, 'SIGKILL');
    return exit;
  }

  /** Immediate SIGKILL of the process group. */
  kill(): void {
    if (this.pid !== undefined && !this.#exit) signalTree(this.pid, 'SIGKILL');
    this.#proc.unref();
  }
}
