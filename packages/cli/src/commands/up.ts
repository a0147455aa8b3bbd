// `trellis up`: starts the local runtime (control plane, ingress gateway, workload controller) in
// the background (a detached `trellis up --foreground`), waits until it is ready and prints where
// everything is; `--foreground` runs it in this process until SIGINT/SIGTERM. Idempotent.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import {
  AlreadyRunningError,
  LocalRuntime,
  TransparentCaptureUnavailableError,
  transparentPrerequisites,
  callControlApi,
  readDaemonInfo,
  runningDaemon,
  runtimePaths,
  type CaptureModeName,
  type DaemonInfo,
  type StatusReport,
} from '@trellis/local';
import { UsageError, flagBool, flagString, type ParsedArgs } from '../args.js';
import { untilSignal, type Command } from '../command.js';
import type { Io } from '../io.js';
import { TRELLIS_BIN, TRELLIS_BIN_DIRS, stateDirOf } from '../runtime-client.js';

/** Set in the environment of a daemon started by `trellis up`: its stderr is trellis.log. */
const DAEMON_ENV = 'TRELLIS_DAEMON';

function portFlag(args: ParsedArgs, name: string): number | undefined {
  const v = flagString(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(
      `--${name} must be a port number from 0 to 65535, not ${JSON.stringify(v)}`,
    );
  return n;
}

/** `--capture` (default explicit); transparent is checked here so nothing starts without it. */
function captureFlag(
  args: ParsedArgs,
  env: Readonly<Record<string, string | undefined>>,
): CaptureModeName {
  const v = flagString(args, 'capture') ?? 'explicit';
  if (v !== 'explicit' && v !== 'transparent')
    throw new UsageError(`--capture must be explicit or transparent, not ${JSON.stringify(v)}`);
  if (v === 'transparent') {
    const { missing } = transparentPrerequisites(env);
    if (missing.length > 0) throw new TransparentCaptureUnavailableError(missing);
  }
  return v;
}

const PORT_FLAGS = [
  'xds-port',
  'monitoring-port',
  'ingress-port',
  'ingress-https-port',
  'ingress-tcp-port',
] as const;

function summary(info: DaemonInfo, dir: string): string {
  const lines = [
    `control plane: xDS ${info.network?.hostIP ?? '127.0.0.1'}:${info.xdsPort}, monitoring http://127.0.0.1:${info.monitoringPort}`,
  ];
  if (info.network)
    lines.push(
      `capture: transparent (pods on ${info.network.subnet}, bridge ${info.network.bridge}; Services resolve to cluster IPs)`,
    );
  if (info.ingress)
    lines.push(
      `ingress gateway: http://127.0.0.1:${info.ingress.httpPort} (port 80), https 127.0.0.1:${info.ingress.httpsPort} (port 443)`,
    );
  if (info.egress) lines.push('egress gateway: running');
  lines.push(`state directory: ${dir} (logs in ${runtimePaths(dir).logsDir})`);
  lines.push('next: trellis apply -f app.yaml; trellis status; trellis down');
  return lines.map((l) => `  ${l}`).join('\n') + '\n';
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '';
  }
}

async function foreground(args: ParsedArgs, io: Io, dir: string): Promise<number> {
  const daemonized = io.env[DAEMON_ENV] === '1';
  const log = (level: string, message: string, fields?: Record<string, unknown>): void => {
    io.stderr(
      `${new Date().toISOString()} ${level} ${message}${fields ? ' ' + JSON.stringify(fields) : ''}\n`,
    );
  };
  const ingress = flagBool(args, 'no-ingress')
    ? false
    : {
        ...(portFlag(args, 'ingress-port') !== undefined
          ? { httpPort: portFlag(args, 'ingress-port')! }
          : {}),
        ...(portFlag(args, 'ingress-https-port') !== undefined
          ? { httpsPort: portFlag(args, 'ingress-https-port')! }
          : {}),
        ...(portFlag(args, 'ingress-tcp-port') !== undefined
          ? { tcpPort: portFlag(args, 'ingress-tcp-port')! }
          : {}),
      };
  let rt: LocalRuntime;
  try {
    rt = await LocalRuntime.start({
      stateDir: dir,
      trellisBin: TRELLIS_BIN,
      binDirs: TRELLIS_BIN_DIRS,
      ...(portFlag(args, 'xds-port') !== undefined ? { xdsPort: portFlag(args, 'xds-port')! } : {}),
      ...(portFlag(args, 'monitoring-port') !== undefined
        ? { monitoringPort: portFlag(args, 'monitoring-port')! }
        : {}),
      ingress,
      egress: flagBool(args, 'egress'),
      capture: captureFlag(args, io.env),
      baseEnv: Object.fromEntries(Object.entries(io.env).filter(([k]) => k !== DAEMON_ENV)),
      log,
    });
  } catch (e) {
    if (e instanceof AlreadyRunningError) {
      io.stdout(
        `Trellis is already running in ${dir} (pid ${e.info.pid})\n${summary(e.info, dir)}`,
      );
      return 0;
    }
    throw e;
  }
  if (!daemonized)
    io.stdout(`Trellis is running (pid ${process.pid}), Ctrl-C stops it\n${summary(rt.info, dir)}`);
  const signal = untilSignal();
  await Promise.race([signal, rt.done]);
  await rt.stop();
  return 0;
}

async function background(args: ParsedArgs, io: Io, dir: string): Promise<number> {
  const paths = runtimePaths(dir);
  mkdirSync(paths.logsDir, { recursive: true });
  const passthrough: string[] = [];
  for (const f of PORT_FLAGS) {
    const v = portFlag(args, f);
    if (v !== undefined) passthrough.push(`--${f}`, String(v));
  }
  if (flagBool(args, 'no-ingress')) passthrough.push('--no-ingress');
  if (flagBool(args, 'egress')) passthrough.push('--egress');
  passthrough.push('--capture', captureFlag(args, io.env));
  const fd = openSync(paths.daemonLog, 'a');
  const child = spawn(
    process.execPath,
    [TRELLIS_BIN, 'up', '--foreground', '--state-dir', dir, ...passthrough],
    {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: io.cwd,
      env: { ...io.env, [DAEMON_ENV]: '1' },
    },
  );
  closeSync(fd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code ?? 1));
  child.unref();
  const deadline = Date.now() + 90_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const info = readDaemonInfo(paths);
    if (info && info.pid === child.pid && info.state === 'running') {
      try {
        const report = (await callControlApi(info.controlPort, 'GET', '/status')) as StatusReport;
        io.stdout(`Trellis is running (pid ${info.pid})\n${summary(report.daemon, dir)}`);
        return 0;
      } catch {
        // not answering yet
      }
    }
    if (exited !== undefined) {
      const log = tail(paths.daemonLog, 15);
      const already = /already running/.test(log.split('\n').slice(-4).join('\n'));
      if (already && exited === 0) {
        const running = runningDaemon(dir);
        if (running) {
          io.stdout(
            `Trellis is already running in ${dir} (pid ${running.pid})\n${summary(running, dir)}`,
          );
          return 0;
        }
      }
      const lastError = log
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('error: '));
      io.stderr(
        `${lastError ?? 'error: the Trellis runtime exited before it was ready'}\n` +
          `(see ${paths.daemonLog})\n`,
      );
      return 1;
    }
    if (Date.now() > deadline) {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      io.stderr(`error: the Trellis runtime was not ready within 90 s; see ${paths.daemonLog}\n`);
      return 1;
    }
  }
}

export const upCommand: Command = {
  name: 'up',
  summary: 'Start the local mesh: control plane, ingress gateway and the Deployments of the store',
  usage:
    'trellis up [--foreground] [--capture explicit|transparent] [--xds-port N] [--monitoring-port N] [--ingress-port N] [--no-ingress] [--egress]',
  description:
    'Starts the Trellis runtime for the state directory: the control plane (xDS on 15010, monitoring\n' +
    'on 15014), an ingress gateway (istio: ingressgateway) whose Service maps Gateway port 80 to\n' +
    '127.0.0.1:8080, 443 to 8443 and 31400 to 31400, and the workload controller that runs the\n' +
    "command of every Deployment's containers as local processes, with a sidecar where Istio's\n" +
    'injection rules say so (namespace label istio-injection=enabled). Runs in the background\n' +
    'unless --foreground; prints where everything listens once ready. Port 0 picks free ports.\n' +
    'Capture: explicit (default, anywhere) hands apps their sidecar as HTTP_PROXY; transparent\n' +
    '(Linux as root, needs ip and iptables) gives each pod a network namespace and address,\n' +
    'resolves Service names to cluster IPs and redirects traffic to the sidecar as istio-iptables does.\n' +
    'Running `up` again while it runs only says so.',
  flags: [
    { name: 'foreground', type: 'bool', help: 'run in this process until interrupted' },
    {
      name: 'capture',
      type: 'string',
      value: 'MODE',
      choices: ['explicit', 'transparent'],
      help: 'how pods reach their sidecars: explicit (default) or transparent (Linux, root)',
    },
    { name: 'xds-port', type: 'string', value: 'N', help: 'xDS port (default 15010)' },
    {
      name: 'monitoring-port',
      type: 'string',
      value: 'N',
      help: 'control plane monitoring port (default 15014)',
    },
    {
      name: 'ingress-port',
      type: 'string',
      value: 'N',
      help: 'local port of Gateway servers on port 80 (default 8080)',
    },
    {
      name: 'ingress-https-port',
      type: 'string',
      value: 'N',
      help: 'local port of Gateway servers on port 443 (default 8443)',
    },
    {
      name: 'ingress-tcp-port',
      type: 'string',
      value: 'N',
      help: 'local port of Gateway servers on port 31400 (default 31400)',
    },
    { name: 'no-ingress', type: 'bool', help: 'do not start the ingress gateway' },
    { name: 'egress', type: 'bool', help: 'also start an egress gateway (istio: egressgateway)' },
  ],
  examples: [
    'trellis up',
    'trellis up --ingress-port 9080 --egress',
    'sudo trellis up --capture=transparent',
    'trellis up --foreground --xds-port 0 --monitoring-port 0 --ingress-port 0',
  ],
  async run(args, { io }) {
    if (args.positional.length > 0) throw new UsageError('up takes no arguments');
    for (const f of PORT_FLAGS) portFlag(args, f);
    captureFlag(args, io.env);
    const dir = stateDirOf(args, io);
    if (flagBool(args, 'foreground')) return foreground(args, io, dir);
    const running = runningDaemon(dir);
    if (running) {
      io.stdout(
        `Trellis is already running in ${dir} (pid ${running.pid})\n${summary(running, dir)}`,
      );
      return 0;
    }
    return background(args, io, dir);
  },
};
