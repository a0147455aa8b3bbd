// `trellis proxy sidecar|router`: runs the data-plane proxy (Envoy's role, started by Istio's
// pilot-agent). Who it is comes from flags or pilot-agent's environment (POD_NAME,
// POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, ISTIO_META_*); everything it does comes from
// the control plane over xDS.
import {
  TrellisProxy,
  bootstrapOptionsFromEnv,
  buildBootstrap,
  type BootstrapOptions,
} from '@trellis/proxy';
import { inspect } from 'node:util';
import { InvalidError, errorMessage } from '@trellis/core';
import { UsageError, flagString, flagStrings } from '../args.js';
import type { Command } from '../command.js';
import { untilSignal } from '../signals.js';
import type { Io } from '../io.js';

/** The exit code of a proxy that died of an exception nothing caught (EX_SOFTWARE). */
export const PROXY_CRASH_EXIT_CODE = 70;

/**
 * Crashes loudly, as Envoy does: an exception nothing caught (or a rejection nothing handled)
 * is logged with its stack, cause and fields, then the process exits with
 * PROXY_CRASH_EXIT_CODE, so that its supervisor restarts it and the log says why. Installed once
 * per process, by the proxy verb only.
 */
function exitOnUncaughtError(io: Io): void {
  const die =
    (what: string) =>
    (err: unknown): void => {
      try {
        io.stderr(
          `${new Date().toISOString()} error proxy crashed: ${what}: ${inspect(err, { depth: 6 })}\n`,
        );
      } finally {
        process.exit(PROXY_CRASH_EXIT_CODE);
      }
    };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled promise rejection'));
}

function port(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(
      `--${name} must be a port number from 0 to 65535, not ${JSON.stringify(v)}`,
    );
  return n;
}

function labelsOf(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label must be KEY=VALUE, not ${JSON.stringify(v)}`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'Run the data-plane proxy (sidecar or gateway) configured by the control plane',
  usage: 'trellis proxy sidecar|router --pod NAME.NS --ip IP [--xds-address HOST:PORT] [flags]',
  description:
    'Starts the proxy: it connects to the control plane over xDS (ADS, delta by default), applies\n' +
    'listeners, routes, clusters and endpoints as they arrive, and serves the admin endpoint\n' +
    '(/config_dump, /clusters, /stats, /stats/prometheus, /ready, /quitquitquit) and\n' +
    '/healthz/ready on the status port. Identity falls back to the pilot-agent environment\n' +
    '(POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, XDS_ADDRESS, ISTIO_META_*).\n' +
    'SIGTERM drains: listeners stop accepting and open connections get the drain period.',
  flags: [
    { name: 'pod', type: 'string', value: 'NAME.NS', help: 'the workload (pod) this proxy serves' },
    { name: 'ip', type: 'string', value: 'IP', help: "the workload's IP address" },
    {
      name: 'xds-address',
      type: 'string',
      value: 'HOST:PORT',
      help: 'control plane xDS address (default $XDS_ADDRESS or 127.0.0.1:15010)',
    },
    {
      name: 'xds',
      type: 'string',
      value: 'delta|sotw',
      choices: ['delta', 'sotw'],
      help: 'xDS variant (default delta)',
    },
    { name: 'label', type: 'strings', value: 'KEY=VALUE', help: 'a workload label (repeatable)' },
    {
      name: 'service-account',
      type: 'string',
      value: 'NAME',
      help: "the workload's service account",
    },
    {
      name: 'admin-port',
      type: 'string',
      value: 'PORT',
      help: 'admin endpoint port (default 15000)',
    },
    {
      name: 'status-port',
      type: 'string',
      value: 'PORT',
      help: '/healthz/ready port (default 15021)',
    },
    {
      name: 'http-proxy-port',
      type: 'string',
      value: 'PORT',
      help: 'explicit capture: the outbound HTTP proxy port (metadata HTTP_PROXY_PORT)',
    },
    {
      name: 'access-log',
      type: 'string',
      value: 'PATH',
      help: "log every request and connection in Istio's format (/dev/stdout, a file)",
    },
    {
      name: 'drain-time',
      type: 'string',
      value: 'MS',
      help: 'drain period on SIGTERM (default 5000)',
    },
  ],
  examples: [
    'trellis proxy sidecar --pod reviews-v1-0.default --ip 127.0.0.1 --label app=reviews --label version=v1 --http-proxy-port 15080',
    'trellis proxy router --pod istio-ingressgateway-0.istio-system --ip 127.0.0.1 --label istio=ingressgateway',
  ],
  async run(args, { io }) {
    const [type, ...rest] = args.positional;
    if ((type !== 'sidecar' && type !== 'router') || rest.length > 0)
      throw new UsageError('proxy takes one argument: sidecar or router');
    const env = bootstrapOptionsFromEnv(process.env, type);
    const pod = flagString(args, 'pod');
    const dot = pod?.lastIndexOf('.') ?? -1;
    if (pod !== undefined && dot <= 0) throw new UsageError('--pod must be NAME.NAMESPACE');
    const labels = labelsOf(flagStrings(args, 'label'));
    const httpProxyPort = port(flagString(args, 'http-proxy-port'), 'http-proxy-port');
    const adminPort = port(flagString(args, 'admin-port'), 'admin-port');
    const statusPort = port(flagString(args, 'status-port'), 'status-port');
    const sa = flagString(args, 'service-account');
    const opts: BootstrapOptions = {
      ...env,
      type,
      ip: flagString(args, 'ip') ?? env.ip,
      podName: pod !== undefined ? pod.slice(0, dot) : env.podName,
      namespace: pod !== undefined ? pod.slice(dot + 1) : env.namespace,
      xdsAddress: flagString(args, 'xds-address') ?? env.xdsAddress ?? '127.0.0.1:15010',
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(sa !== undefined ? { serviceAccount: sa } : {}),
      ...(httpProxyPort !== undefined ? { httpProxyPort } : {}),
      ...(adminPort !== undefined ? { adminPort } : {}),
      ...(statusPort !== undefined ? { statusPort } : {}),
    };
    let bootstrap;
    try {
      bootstrap = buildBootstrap(opts);
    } catch (e) {
      const problems = e instanceof InvalidError ? e.problems : [];
      throw new UsageError(
        problems.length > 0 ? `${errorMessage(e)}: ${problems.join('; ')}` : errorMessage(e),
      );
    }
    const drain = flagString(args, 'drain-time');
    const drainTimeMs = drain === undefined ? 5_000 : Number(drain);
    if (!Number.isInteger(drainTimeMs) || drainTimeMs < 0)
      throw new UsageError(`--drain-time must be milliseconds, not ${JSON.stringify(drain)}`);
    const accessLog = flagString(args, 'access-log');
    exitOnUncaughtError(io);
    const proxy = await TrellisProxy.start({
      bootstrap,
      protocol: (flagString(args, 'xds') as 'delta' | 'sotw' | undefined) ?? 'delta',
      drainTimeMs,
      ...(accessLog !== undefined ? { accessLogFile: accessLog } : {}),
      log: (level, message, fields) =>
        io.stderr(
          `${new Date().toISOString()} ${level} ${message}${fields ? ' ' + JSON.stringify(fields) : ''}\n`,
        ),
    });
    io.stdout(
      `proxy ${bootstrap.node.id ?? ''} started: admin on http://127.0.0.1:${proxy.adminPort}` +
        (proxy.healthPort !== undefined ? `, health on :${proxy.healthPort}` : '') +
        `, xDS ${bootstrap.xdsAddress}\n`,
    );
    await untilSignal();
    io.stderr('proxy draining\n');
    await proxy.drain(drainTimeMs);
    await proxy.close();
    return 0;
  },
};
