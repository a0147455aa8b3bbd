// One container of a local pod as a supervised process (the kubelet's job for one container):
// start, readiness probing, restart after an exit with CrashLoopBackOff backoff as the pod's
// restartPolicy says (Always: every exit; OnFailure: a non-zero exit; Never: none, the
// container has then finished for good), a clear waiting reason when the command cannot be
// started (no busy loop), and stop with SIGTERM and a grace period. Reports every change through
// `onChange`.
import type { TimerApi } from '@trellis/core';
import { appendLogLine, Child, type ExitInfo } from './child.js';
import { CrashBackoff, type BackoffOptions } from './backoff.js';
import type { ProcessTable } from './process-table.js';
import { ReadinessProber, type ProbeCheck, type ReadinessSpec } from './readiness.js';

/** core/v1 ContainerState, as the runtime reports it. */
export type ContainerState =
  | { readonly waiting: { readonly reason: string; readonly message?: string } }
  | { readonly running: { readonly startedAt: string } }
  | {
      readonly terminated: {
        readonly exitCode: number;
        readonly signal?: number;
        readonly reason: string;
        readonly message?: string;
        readonly startedAt?: string;
        readonly finishedAt: string;
      };
    };

/** core/v1 RestartPolicy */
export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface RunnerSpec {
  readonly name: string;
  /** `app`, `proxy` or `gateway` (process table and log name). */
  readonly role: string;
  /** `namespace/pod` */
  readonly pod: string;
  readonly image: string;
  /** Resolved at each start (so a command installed later is found); an Error is a start failure. */
  readonly command: () => { file: string; args: readonly string[] } | Error;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly logFile: string;
  readonly readiness: ReadinessSpec;
  readonly graceMs: number;
  /** Default Always. */
  readonly restartPolicy?: RestartPolicy;
}

export interface RunnerDeps {
  readonly table: ProcessTable;
  readonly timers: TimerApi;
  readonly backoff?: BackoffOptions;
  readonly check?: ProbeCheck;
  /** Wall clock for timestamps. */
  readonly now: () => number;
  readonly onChange: () => void;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export class ContainerRunner {
  readonly spec: RunnerSpec;
  readonly #d: RunnerDeps;
  readonly #backoff: CrashBackoff;
  #child: Child | undefined;
  #prober: ReadinessProber | undefined;
  #restartTimer: unknown;
  #stopping = false;
  #state: ContainerState = { waiting: { reason: 'ContainerCreating' } };
  #lastState: ContainerState | undefined;
  #ready = false;
  #started = false;
  #finished = false;
  restartCount = 0;

  constructor(spec: RunnerSpec, deps: RunnerDeps) {
    this.spec = spec;
    this.#d = deps;
    this.#backoff = new CrashBackoff(deps.backoff);
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Exited and, by the restart policy, never restarted (state `terminated`). */
  get finished(): boolean {
    return this.#finished;
  }

  /** The exit code of a finished container. */
  get exitCode(): number | undefined {
    return this.#finished && 'terminated' in this.#state
      ? this.#state.terminated.exitCode
      : undefined;
  }

  get state(): ContainerState {
    return this.#state;
  }

  get pid(): number | undefined {
    return this.#child && !this.#child.exit ? this.#child.pid : undefined;
  }

  /** core/v1 ContainerStatus */
  status(): Record<string, unknown> {
    return {
      name: this.spec.name,
      image: this.spec.image,
      ready: this.#ready,
      started: this.#started,
      restartCount: this.restartCount,
      state: this.#state,
      ...(this.#lastState ? { lastState: this.#lastState } : {}),
    };
  }

  start(): void {
    if (this.#stopping || this.#finished) return;
    const cmd = this.spec.command();
    if (cmd instanceof Error) {
      appendLogLine(this.spec.logFile, `[trellis] ${iso(this.#d.now())} ${cmd.message}`);
      this.#failed(
        { code: 128, signal: null, error: cmd.message },
        0,
        'RunContainerError',
        undefined,
      );
      return;
    }
    const child = Child.spawn(
      {
        file: cmd.file,
        args: cmd.args,
        env: this.spec.env,
        cwd: this.spec.cwd,
        logFile: this.spec.logFile,
        role: this.spec.role,
        pod: this.spec.pod,
      },
      this.#d.table,
      this.#d.now,
    );
    this.#child = child;
    const startedAt = iso(child.startedAt);
    this.#state = { running: { startedAt } };
    this.#started = true;
    this.#prober = new ReadinessProber({
      spec: this.spec.readiness,
      timers: this.#d.timers,
      ...(this.#d.check ? { check: this.#d.check } : {}),
      onChange: (ready) => {
        this.#ready = ready;
        this.#d.onChange();
      },
    });
    this.#prober.start();
    this.#d.onChange();
    void child.exited.then((exit) => {
      this.#prober?.stop();
      this.#prober = undefined;
      this.#ready = false;
      this.#started = false;
      if (this.#stopping) {
        this.#state = terminated(exit, child.startedAt, this.#d.now());
        this.#d.onChange();
        return;
      }
      const ranMs = this.#d.now() - child.startedAt;
      this.#failed(
        exit,
        ranMs,
        exit.error !== undefined ? 'StartError' : 'CrashLoopBackOff',
        child.startedAt,
      );
    });
  }

  #failed(exit: ExitInfo, ranMs: number, reason: string, started: number | undefined): void {
    const ended = terminated(exit, started, this.#d.now());
    const why =
      exit.error ??
      (exit.signal ? `killed by ${exit.signal}` : `exited with code ${String(exit.code)}`);
    const policy = this.spec.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && ended.terminated.exitCode === 0)) {
      // Finished for good: the pod decides its phase from every container's exit code.
      this.#finished = true;
      this.#state = ended;
      appendLogLine(
        this.spec.logFile,
        `[trellis] ${iso(this.#d.now())} container ${this.spec.name} ${why}; not restarted (restartPolicy ${policy})`,
      );
      this.#d.onChange();
      return;
    }
    const delay = this.#backoff.next(ranMs);
    this.#lastState = ended;
    this.#state = {
      waiting: {
        reason,
        message: `back-off ${formatDelay(delay)} restarting failed container=${this.spec.name} pod=${this.spec.pod.replace('/', '_')}: ${why}`,
      },
    };
    appendLogLine(
      this.spec.logFile,
      `[trellis] ${iso(this.#d.now())} container ${this.spec.name} ${why}; restarting in ${formatDelay(delay)}`,
    );
    this.#d.onChange();
    this.#restartTimer = this.#d.timers.setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopping) return;
      this.restartCount++;
      this.start();
    }, delay);
  }

  /** Stops the container (SIGTERM, SIGKILL after the grace period) and any pending restart. */
  async stop(graceMs = this.spec.graceMs): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer !== undefined) this.#d.timers.clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.#prober?.stop();
    this.#ready = false;
    const child = this.#child;
    if (child && !child.exit) await child.stop(graceMs);
  }

  /** SIGKILL now (daemon crash paths). */
  kill(): void {
    this.#stopping = true;
    this.#child?.kill();
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function formatDelay(ms: number): string {
  return ms >= 60_000
    ? `${Math.round(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
    : `${ms / 1000}s`;
}

function terminated(
  exit: ExitInfo,
  startedAt: number | undefined,
  now: number,
): Extract<ContainerState, { terminated: unknown }> {
  const exitCode = exit.code ?? (exit.signal ? 128 + (SIGNALS[exit.signal] ?? 0) : 128);
  return {
    terminated: {
      exitCode,
      ...(exit.signal ? { signal: SIGNALS[exit.signal] ?? 0 } : {}),
      reason: exit.error !== undefined ? 'StartError' : exitCode === 0 ? 'Completed' : 'Error',
      ...(exit.error !== undefined ? { message: exit.error } : {}),
      ...(startedAt !== undefined ? { startedAt: iso(startedAt) } : {}),
      finishedAt: iso(now),
    },
  };
}
