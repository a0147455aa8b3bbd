// `trellis proxy-status`: what each proxy was sent and whether it acknowledged it (istioctl proxy-status).
import { syncWord, type SyncStatus, type TypeSync } from '@trellis/control-plane';
import { UsageError, flagString } from '../args.js';
import type { Command } from '../command.js';
import { CONTROL_PLANE_FLAG, controlPlaneAddress, getJson } from '../control-plane-client.js';
import { formatAge, renderTable } from '../printers.js';

function cell(t: TypeSync, now: number): string {
  const word = syncWord(t);
  return word === 'SYNCED' && t.sentAt ? `SYNCED (${formatAge(t.sentAt, now)})` : word;
}

export const proxyStatusCommand: Command = {
  name: 'proxy-status',
  summary: 'Show the xDS sync status of every connected proxy',
  usage: 'trellis proxy-status [POD[.NS]] [-o json]',
  description:
    'Lists connected proxies with, for CDS, LDS, EDS, RDS and SDS, whether the last version sent was\n' +
    'acknowledged: SYNCED, STALE (sent, no answer yet), NACKED (rejected; the reason is shown for one\n' +
    "proxy) or NOT SENT. Reads the control plane's /debug/syncz.",
  flags: [
    CONTROL_PLANE_FLAG,
    {
      name: 'output',
      short: 'o',
      type: 'string',
      value: 'FORMAT',
      choices: ['json'],
      help: 'json for the raw status',
    },
  ],
  examples: ['trellis proxy-status', 'trellis proxy-status productpage-v1-0.default'],
  async run(args, { io }) {
    if (args.positional.length > 1) throw new UsageError('proxy-status takes at most one POD[.NS]');
    const address = controlPlaneAddress(args, io);
    const { body } = await getJson(address, '/debug/syncz');
    let statuses = body as SyncStatus[];
    const want = args.positional[0];
    if (want) {
      statuses = statuses.filter(
        (s) => s.proxy === want || s.proxy === `${want}.default` || s.node_id === want,
      );
      if (statuses.length === 0) {
        io.stderr(`error: proxy ${want} is not connected to the control plane at ${address}\n`);
        return 1;
      }
    }
    if (flagString(args, 'output') === 'json') {
      io.stdout(JSON.stringify(statuses, null, 2) + '\n');
      return 0;
    }
    const now = io.now();
    const rows = statuses.map((s) => [
      s.proxy,
      s.cluster_id,
      cell(s.types.CDS, now),
      cell(s.types.LDS, now),
      cell(s.types.EDS, now),
      cell(s.types.RDS, now),
      s.proxyless ? 'proxyless' : s.proxy_type,
      s.istio_version || '-',
    ]);
    io.stdout(
      renderTable([['NAME', 'CLUSTER', 'CDS', 'LDS', 'EDS', 'RDS', 'TYPE', 'VERSION'], ...rows]) +
        '\n',
    );
    if (want) {
      for (const s of statuses)
        for (const [type, t] of Object.entries(s.types))
          if (t.nack)
            io.stdout(
              `${type} NACK of version ${t.nack.version} at ${t.nack.time}: ${t.nack.message}\n`,
            );
    }
    return 0;
  },
};
