// Where the runtime keeps its files in the state directory, and atomic JSON writes:
// runtime/daemon.json (the daemon: pid, identity, ports), runtime/processes.json (every child
// process, so a SIGKILLed run leaves nothing behind), logs/trellis.log and
// logs/<namespace>/<pod>/<app|proxy>.log.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorCode } from '@trellis/core';
import { parseIdentity, type ProcessIdentity } from './process-identity.js';

export interface RuntimePaths {
  readonly stateDir: string;
  readonly runtimeDir: string;
  readonly daemonFile: string;
  readonly processesFile: string;
  readonly logsDir: string;
  readonly daemonLog: string;
}

export function runtimePaths(stateDir: string): RuntimePaths {
  const runtimeDir = join(stateDir, 'runtime');
  const logsDir = join(stateDir, 'logs');
  return {
    stateDir,
    runtimeDir,
    daemonFile: join(runtimeDir, 'daemon.json'),
    processesFile: join(runtimeDir, 'processes.json'),
    logsDir,
    daemonLog: join(logsDir, 'trellis.log'),
  };
}

/** `logs/<namespace>/<pod>/<container>.log` */
export function podLogPath(
  paths: RuntimePaths,
  namespace: string,
  pod: string,
  container: 'app' | 'proxy',
): string {
  return join(paths.logsDir, namespace, pod, `${container}.log`);
}

export type CaptureModeName = 'explicit' | 'transparent';

/** runtime/daemon.json */
export interface DaemonInfo {
  readonly pid: number;
  readonly identity: ProcessIdentity;
  readonly startedAt: string;
  /** The daemon's local HTTP API (127.0.0.1). */
  readonly controlPort: number;
  readonly xdsPort: number;
  readonly monitoringPort: number;
  readonly ingress?: {
    readonly httpPort: number;
    readonly httpsPort: number;
    readonly tcpPort: number;
  };
  readonly egress?: boolean;
  readonly capture: CaptureModeName;
  /** Transparent capture: the runtime's bridge, its subnet and the host's address on it. */
  readonly network?: {
    readonly bridge: string;
    readonly subnet: string;
    readonly hostIP: string;
  };
  /** 'starting' until the control plane and gateways are ready. */
  readonly state: 'starting' | 'running' | 'stopping';
}

export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    if (e instanceof SyntaxError) return undefined; // torn or hand-edited: treat as absent
    throw e;
  }
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
}

export function readDaemonInfo(paths: RuntimePaths): DaemonInfo | undefined {
  const v = readJson(paths.daemonFile) as Partial<DaemonInfo> | undefined;
  if (!v || typeof v !== 'object') return undefined;
  const identity = parseIdentity(v.identity);
  if (!identity || typeof v.controlPort !== 'number') return undefined;
  return { ...(v as DaemonInfo), identity };
}
