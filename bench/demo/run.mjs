#!/usr/bin/env node
// `trellis demo` from cold: the time from the command to the product page's first 200 through
// the ingress gateway, then the resident memory of the whole mesh while idle (the runtime daemon
// with its control plane, the gateway, every sidecar and every app) and per sidecar.
//
// Usage: node bench/demo/run.mjs [--runs N] [--capture explicit|transparent] [--idle SECONDS]
// Each run uses a fresh state directory and ports chosen by the kernel, and ends with
// `trellis down`. Results: stdout and bench/results/demo-<time>.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const ROOT = join(import.meta.dirname, '..', '..');
const TRELLIS = join(ROOT, 'packages', 'cli', 'bin', 'trellis.js');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    capture: { type: 'string', default: 'explicit' },
    idle: { type: 'string', default: '5' },
  },
});

/** pid → { ppid, rssKb, cmd } for every process. */
function processes() {
  const out = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.set(Number(name), { ppid, rssKb: rss, cmd });
    } catch {
      // gone
    }
  }
  return out;
}

/** The daemon and all its descendants. */
function tree(rootPid) {
  const all = processes();
  const keep = new Map();
  const visit = (pid) => {
    const p = all.get(pid);
    if (!p || keep.has(pid)) return;
    keep.set(pid, p);
    for (const [child, q] of all) if (q.ppid === pid) visit(child);
  };
  visit(rootPid);
  return keep;
}

const mb = (kb) => Math.round(kb / 102.4) / 10;
const runs = [];
for (let i = 0; i < Number(values.runs); i++) {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-demo-bench-'));
  const state = join(dir, '.trellis');
  const started = performance.now();
  const args = [TRELLIS, 'demo', '--state-dir', state];
  for (const f of [
    'xds-port',
    'monitoring-port',
    'ingress-port',
    'ingress-https-port',
    'ingress-tcp-port',
  ])
    args.push(`--${f}`, '0');
  if (values.capture !== 'explicit') args.push('--capture', values.capture);
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  const wallS = (performance.now() - started) / 1000;
  if (r.status !== 0) {
    console.error(r.stdout, r.stderr);
    spawnSync(process.execPath, [TRELLIS, 'down', '--state-dir', state]);
    throw new Error(`trellis demo failed (exit ${r.status})`);
  }
  await new Promise((res) => setTimeout(res, Number(values.idle) * 1000));
  const daemon = JSON.parse(readFileSync(join(state, 'runtime', 'daemon.json'), 'utf8'));
  const procs = tree(daemon.pid);
  let total = 0;
  const sidecars = [];
  const apps = [];
  let gateway = 0;
  for (const p of procs.values()) {
    total += p.rssKb;
    if (/ proxy sidecar /.test(p.cmd)) sidecars.push(p.rssKb);
    else if (/ proxy router /.test(p.cmd)) gateway += p.rssKb;
    else if (/trellis-sample/.test(p.cmd)) apps.push(p.rssKb);
  }
  const daemonKb = procs.get(daemon.pid)?.rssKb ?? 0;
  execFileSync(process.execPath, [TRELLIS, 'down', '--state-dir', state], { cwd: dir });
  rmSync(dir, { recursive: true, force: true });
  const run = {
    coldToFirst200S: Math.round(wallS * 10) / 10,
    processes: procs.size,
    meshRssMb: mb(total),
    daemonRssMb: mb(daemonKb),
    gatewayRssMb: mb(gateway),
    sidecars: sidecars.length,
    sidecarRssMbAvg: mb(sidecars.reduce((a, b) => a + b, 0) / Math.max(1, sidecars.length)),
    appsRssMbAvg: mb(apps.reduce((a, b) => a + b, 0) / Math.max(1, apps.length)),
  };
  console.log(JSON.stringify(run));
  runs.push(run);
}
const median = (k) => {
  const v = runs.map((r) => r[k]).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
const summary = {
  capture: values.capture,
  runs: runs.length,
  coldToFirst200S: { median: median('coldToFirst200S'), all: runs.map((r) => r.coldToFirst200S) },
  meshRssMb: median('meshRssMb'),
  daemonRssMb: median('daemonRssMb'),
  gatewayRssMb: median('gatewayRssMb'),
  sidecarRssMbAvg: median('sidecarRssMbAvg'),
  appsRssMbAvg: median('appsRssMbAvg'),
  processes: median('processes'),
};
console.log(JSON.stringify(summary, null, 2));
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(ROOT, 'bench', 'results', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  JSON.stringify({ summary, runs }, null, 2) + '\n',
);
