// `trellis status`: every component and workload pod of the local runtime with its readiness,
// state, restarts, ports and sidecar sync state, from the daemon's local API.
import { callControlApi, formatPorts, runningDaemon, type StatusReport } from '@trellis/local';
import { UsageError, flagString } from '../args.js';
import type { Command } from '../command.js';
import { renderTable } from '../printers.js';
import { notRunningMessage, stateDirOf } from '../runtime-client.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show the local mesh: control plane, gateways and workload pods',
  usage: 'trellis status [-o json]',
  description:
    'Lists the control plane, the gateways and every workload pod the runtime runs (the\n' +
    "Deployments' replicas and the Pods you applied, finished ones included): READY\n" +
    'containers (app and sidecar), STATUS (Running, PodInitializing, CrashLoopBackOff,\n' +
    'RunContainerError, Terminating; for a Pod that ran to completion Completed, or Error /\n' +
    'StartError when an app failed), RESTARTS, the local PORTS (app:PORT is where the app\n' +
    'listens, inbound:PORT the sidecar port peers dial, proxy the HTTP proxy the app uses,\n' +
    "admin the proxy's admin endpoint) and SYNC, the proxy's xDS state as proxy-status words it.\n" +
    "With --capture=transparent an IP column shows each pod's own address.\n" +
    'Exits with 1 when no runtime is running.',
  flags: [
    {
      name: 'output',
      short: 'o',
      type: 'string',
      value: 'FORMAT',
      choices: ['json'],
      help: 'json for the full report',
    },
  ],
  examples: ['trellis status', 'trellis status -o json'],
  async run(args, { io }) {
    if (args.positional.length > 0) throw new UsageError('status takes no arguments');
    const dir = stateDirOf(args, io);
    const info = runningDaemon(dir);
    if (!info || info.controlPort === 0) {
      io.stderr(`${notRunningMessage(dir)}\n`);
      return 1;
    }
    const report = (await callControlApi(info.controlPort, 'GET', '/status')) as StatusReport;
    if (flagString(args, 'output') === 'json') {
      io.stdout(JSON.stringify(report, null, 2) + '\n');
      return 0;
    }
    // Transparent capture: every pod has an address of its own (the IP column).
    const ips = report.daemon.capture === 'transparent';
    const ip = (v: string | undefined): string[] => (ips ? [v ?? '-'] : []);
    const rows: string[][] = [
      ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', ...ip('IP'), 'PORTS', 'SYNC'],
    ];
    for (const c of report.components)
      rows.push([
        c.namespace,
        c.name,
        c.ready,
        c.status,
        String(c.restarts),
        ...ip(report.daemon.network?.hostIP),
        formatPorts(c.ports),
        '-',
      ]);
    for (const p of [...report.gateways, ...report.pods])
      rows.push([
        p.namespace,
        p.name,
        p.ready,
        p.status,
        String(p.restarts),
        ...ip(p.podIP),
        formatPorts(p.ports),
        p.sync,
      ]);
    io.stdout(renderTable(rows) + '\n');
    const problems = [...report.gateways, ...report.pods].flatMap((p) =>
      p.containers.flatMap((c) => {
        const state = c.state as { waiting?: { reason?: string; message?: string } } | undefined;
        const w = state?.waiting;
        return w?.message && w.reason !== 'ContainerCreating'
          ? [`${p.namespace}/${p.name} ${String(c.name)}: ${w.message}`]
          : [];
      }),
    );
    if (problems.length > 0) io.stdout('\n' + problems.join('\n') + '\n');
    return 0;
  },
};
