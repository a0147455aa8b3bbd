// `trellis logs POD|DEPLOYMENT`: prints a local pod's app or proxy log from the state directory
// (logs/<namespace>/<pod>/<app|proxy>.log; they survive restarts), optionally following it.
import {
  existsSync,
  openSync,
  readSync,
  closeSync,
  readdirSync,
  statSync,
  readFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { runtimePaths, runningDaemon, callControlApi, type StatusReport } from '@trellis/local';
import { UsageError, flagBool, flagString } from '../args.js';
import { NAMESPACE_FLAG, untilSignal, type Command } from '../command.js';
import type { Io } from '../io.js';
import { stateDirOf } from '../runtime-client.js';

const POD_OF = (deployment: string): RegExp =>
  new RegExp(`^${deployment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{10}-[a-z0-9]{5}$`);

/** The pod directory for NAME: the pod itself, else a running (or the latest) pod of a Deployment. */
async function podDir(
  logsDir: string,
  ns: string,
  name: string,
  dir: string,
): Promise<string | undefined> {
  const nsDir = join(logsDir, ns);
  if (existsSync(join(nsDir, name))) return join(nsDir, name);
  if (!existsSync(nsDir)) return undefined;
  const re = POD_OF(name);
  const candidates = readdirSync(nsDir).filter((d) => re.test(d));
  if (candidates.length === 0) return undefined;
  const info = runningDaemon(dir);
  if (info && info.controlPort !== 0) {
    try {
      const report = (await callControlApi(info.controlPort, 'GET', '/status')) as StatusReport;
      const live = [...report.pods, ...report.gateways]
        .filter((p) => p.namespace === ns && candidates.includes(p.name))
        .sort((a, b) => Number(b.ready.split('/')[0]) - Number(a.ready.split('/')[0]));
      if (live[0]) return join(nsDir, live[0].name);
    } catch {
      // fall back to the newest log
    }
  }
  const newest = candidates
    .map((d) => ({ d, t: statSync(join(nsDir, d)).mtimeMs }))
    .sort((a, b) => b.t - a.t)[0];
  return newest ? join(nsDir, newest.d) : undefined;
}

function lastLines(text: string, n: number | undefined): string {
  if (n === undefined || n < 0) return text;
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
  const kept = n === 0 ? [] : lines.slice(-n);
  return kept.join('\n') + (trailing !== undefined && kept.length > 0 ? '\n' : '');
}

async function follow(file: string, from: number, io: Io): Promise<void> {
  let offset = from;
  const stop = untilSignal();
  let stopped = false;
  void stop.then(() => (stopped = true));
  const buf = Buffer.alloc(64 * 1024);
  while (!stopped) {
    const size = existsSync(file) ? statSync(file).size : 0;
    if (size < offset) offset = 0; // truncated
    if (size > offset) {
      const fd = openSync(file, 'r');
      try {
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, offset);
          if (n <= 0) break;
          offset += n;
          io.stdout(buf.subarray(0, n).toString('utf8'));
        }
      } finally {
        closeSync(fd);
      }
    }
    await Promise.race([stop, new Promise((r) => setTimeout(r, 200))]);
  }
}

export const logsCommand: Command = {
  name: 'logs',
  summary: "Print a local pod's app or sidecar log",
  usage: 'trellis logs POD|DEPLOYMENT [-n NS] [-c app|proxy] [-f] [--tail N]',
  description:
    "Prints the log of a pod run by 'trellis up' (a Deployment name picks one of its pods, a\n" +
    "running one first). -c proxy shows the sidecar's log (with its access log). Logs are kept\n" +
    'in the state directory (logs/NAMESPACE/POD/) across restarts and after the pod stops.',
  flags: [
    NAMESPACE_FLAG,
    {
      name: 'container',
      short: 'c',
      type: 'string',
      value: 'app|proxy',
      choices: ['app', 'proxy', 'istio-proxy'],
      help: 'which log (default app; gateways have only proxy)',
    },
    { name: 'follow', short: 'f', type: 'bool', help: 'keep printing what is appended' },
    { name: 'tail', type: 'string', value: 'N', help: 'only the last N lines (default all)' },
  ],
  examples: [
    'trellis logs reviews-v1',
    'trellis logs productpage-v1-5c8d7e9f0a-x7k2p -c proxy --tail 20',
    'trellis logs istio-ingressgateway -n istio-system -f',
  ],
  async run(args, { io }) {
    const [target, ...rest] = args.positional;
    if (target === undefined || rest.length > 0)
      throw new UsageError('logs takes one argument: a pod or deployment name');
    const name = target.replace(/^(pods?|deployments?|deploy)\//, '');
    const ns = flagString(args, 'namespace') ?? 'default';
    const tailFlag = flagString(args, 'tail');
    const tail = tailFlag === undefined ? undefined : Number(tailFlag);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < -1))
      throw new UsageError(`--tail must be a number of lines, not ${JSON.stringify(tailFlag)}`);
    const dir = stateDirOf(args, io);
    const pod = await podDir(runtimePaths(dir).logsDir, ns, name, dir);
    if (!pod) {
      io.stderr(
        `error: no logs for pod or deployment "${name}" in namespace "${ns}" (in ${dir})\n`,
      );
      return 1;
    }
    const wanted = flagString(args, 'container');
    let container = wanted === 'istio-proxy' ? 'proxy' : (wanted ?? 'app');
    if (
      wanted === undefined &&
      !existsSync(join(pod, 'app.log')) &&
      existsSync(join(pod, 'proxy.log'))
    )
      container = 'proxy';
    const file = join(pod, `${container}.log`);
    if (!existsSync(file)) {
      io.stderr(
        `error: pod ${ns}/${pod.split('/').pop() ?? ''} has no ${container} log` +
          (container === 'proxy' ? ' (it has no sidecar)' : '') +
          '\n',
      );
      return 1;
    }
    const text = readFileSync(file, 'utf8');
    io.stdout(lastLines(text, tail));
    if (flagBool(args, 'follow')) await follow(file, Buffer.byteLength(text), io);
    return 0;
  },
};
