// `trellis demo`: from a fresh clone to Istio's bookinfo running with sidecars behind the ingress
// gateway, in one command. It starts the runtime (`trellis up`, unless already running), turns on
// sidecar injection in `default` (the namespace label Istio users set with kubectl), applies the
// bookinfo sample, its Gateway + VirtualService and its DestinationRules, waits until the product
// page answers 200 through the gateway and prints what to open and what to try next.
import { request } from 'node:http';
import { join, relative } from 'node:path';
import { errorMessage } from '@trellis/core';
import { callControlApi, readDaemonInfo, runtimePaths, type StatusReport } from '@trellis/local';
import { parseArgs, UsageError, flagString, type FlagSpec } from '../args.js';
import type { Command, CommandContext } from '../command.js';
import { stateDirOf } from '../runtime-client.js';
import { applyCommand } from './apply.js';
import { upCommand } from './up.js';

/** The repository's samples/ (this file is packages/cli/dist/src/commands/demo.js). */
export const SAMPLES_DIR = join(import.meta.dirname, '..', '..', '..', '..', '..', 'samples');

const BOOKINFO = join(SAMPLES_DIR, 'bookinfo');

/** What the demo applies, in order. */
export const DEMO_MANIFESTS: readonly string[] = [
  join(BOOKINFO, 'platform', 'kube', 'bookinfo.yaml'),
  join(BOOKINFO, 'networking', 'bookinfo-gateway.yaml'),
  join(BOOKINFO, 'networking', 'destination-rule-all.yaml'),
];

const UP_FLAGS = [
  'xds-port',
  'monitoring-port',
  'ingress-port',
  'ingress-https-port',
  'ingress-tcp-port',
] as const;

const FLAGS: readonly FlagSpec[] = [
  ...UP_FLAGS.map((name): FlagSpec => ({
    name,
    type: 'string',
    value: 'PORT',
    help: `passed to 'trellis up --${name}'`,
  })),
  {
    name: 'capture',
    type: 'string',
    value: 'MODE',
    help: "passed to 'trellis up --capture' (explicit, the default, or transparent)",
  },
  {
    name: 'timeout',
    type: 'string',
    value: 'SECONDS',
    help: 'how long to wait for the product page (default 120)',
  },
];

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host: 'bookinfo.local' }, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Turns on sidecar injection in `default` (`istio-injection=enabled`), keeping other labels. */
async function enableInjection(ctx: CommandContext): Promise<void> {
  const store = await ctx.openStore();
  try {
    const key = { group: '', kind: 'Namespace', name: 'default' };
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await store.get(key);
      const labels = { ...(current?.metadata.labels ?? {}), 'istio-injection': 'enabled' };
      try {
        if (!current)
          await store.create({
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: 'default', labels },
          });
        else if (current.metadata.labels?.['istio-injection'] !== 'enabled')
          await store.update({ ...current, metadata: { ...current.metadata, labels } });
        return;
      } catch (e) {
        if (attempt === 4) throw e;
      }
    }
  } finally {
    await store.close();
  }
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run Istio’s bookinfo with sidecars and an ingress gateway, on this machine',
  usage: 'trellis demo [--ingress-port PORT] [--timeout SECONDS]',
  description:
    "Starts the mesh ('trellis up') unless it runs already, enables sidecar injection in the\n" +
    'default namespace, applies the bookinfo sample (samples/bookinfo: productpage, details,\n' +
    'reviews v1/v2/v3, ratings), its Gateway and VirtualService and its DestinationRules, waits\n' +
    'until the product page answers through the ingress gateway, then prints what to try next.\n' +
    "Stop everything with 'trellis down'.",
  flags: FLAGS,
  examples: [
    'trellis demo',
    'trellis demo --ingress-port 9080',
    'sudo trellis demo --capture transparent',
  ],
  async run(args, ctx) {
    const { io } = ctx;
    const timeoutText = flagString(args, 'timeout') ?? '120';
    const timeoutS = Number(timeoutText);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0)
      throw new UsageError(
        `--timeout must be a number of seconds, not ${JSON.stringify(timeoutText)}`,
      );
    const dir = stateDirOf(args, io);
    const started = performance.now();
    const pass = (extra: string[]): string[] => {
      const out = [...extra];
      const stateDir = flagString(args, 'state-dir');
      if (stateDir !== undefined) out.push('--state-dir', stateDir);
      return out;
    };

    io.stdout('==> starting the mesh (trellis up)\n');
    const upArgs: string[] = [];
    for (const f of [...UP_FLAGS, 'capture']) {
      const v = flagString(args, f);
      if (v !== undefined) upArgs.push(`--${f}`, v);
    }
    const up = await upCommand.run(
      parseArgs(pass(upArgs), [...upCommand.flags, STATE_DIR_FLAG], 'trellis up'),
      ctx,
    );
    if (up !== 0) return up;
    const info = readDaemonInfo(runtimePaths(dir));
    if (!info?.ingress) {
      io.stderr(
        "error: the running Trellis has no ingress gateway (started with --no-ingress?); run 'trellis down' and try again\n",
      );
      return 1;
    }
    const port = info.ingress.httpPort;

    io.stdout('==> enabling sidecar injection in namespace default (istio-injection=enabled)\n');
    await enableInjection(ctx);

    io.stdout('==> deploying bookinfo, its gateway and destination rules\n');
    const fileArgs = DEMO_MANIFESTS.flatMap((f) => ['-f', f]);
    const applied = await applyCommand.run(
      parseArgs(pass(fileArgs), [...applyCommand.flags, STATE_DIR_FLAG], 'trellis apply'),
      ctx,
    );
    if (applied !== 0) return applied;

    io.stdout(`==> waiting for http://127.0.0.1:${port}/productpage\n`);
    const deadline = performance.now() + timeoutS * 1000;
    let last = '';
    for (;;) {
      try {
        const r = await get(port, '/productpage');
        // The page is whole once details and reviews both answer through the sidecars (reviews
        // and ratings start last; before, the page shows "Error fetching product reviews").
        if (
          r.status === 200 &&
          r.body.includes('Book Details') &&
          r.body.includes('data-reviews-version=')
        )
          break;
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = errorMessage(e);
      }
      if (performance.now() > deadline) {
        io.stderr(
          `error: the product page did not answer within ${timeoutS} s (last: ${last}).\n` +
            "See 'trellis status' and 'trellis logs productpage -c proxy'.\n",
        );
        return 1;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    let productpage = 'productpage-v1-...';
    try {
      const report = (await callControlApi(info.controlPort, 'GET', '/status')) as StatusReport;
      productpage = report.pods.find((p) => p.deployment === 'productpage-v1')?.name ?? productpage;
    } catch {
      // the placeholder will do
    }
    const samples = relative(io.cwd, SAMPLES_DIR) || '.';
    io.stdout(
      [
        '',
        `Bookinfo is up (${seconds} s). Open the product page:`,
        '',
        `  http://127.0.0.1:${port}/productpage`,
        '',
        'Reload it a few times: reviews v1 (no stars), v2 (black stars) and v3 (red stars) take turns.',
        'Then try what Istio’s request-routing task does:',
        '',
        `  trellis apply -f ${samples}/bookinfo/networking/virtual-service-all-v1.yaml`,
        `  trellis apply -f ${samples}/bookinfo/networking/virtual-service-reviews-test-v2.yaml`,
        '',
        "and sign in as 'jason' (any password): jason sees v2, everyone else v1. More:",
        '',
        '  trellis status                      every workload, its sidecar and sync state',
        '  trellis get virtualservices -A      what is applied',
        `  trellis proxy-config route ${productpage}   what a sidecar was sent`,
        '  trellis logs productpage -c proxy   the sidecar’s access log',
        '  trellis down                        stop everything',
        '',
      ].join('\n'),
    );
    return 0;
  },
};

/** The global --state-dir flag, so the nested commands' parsers accept it. */
const STATE_DIR_FLAG: FlagSpec = {
  name: 'state-dir',
  type: 'string',
  value: 'DIR',
  help: 'state directory',
};
