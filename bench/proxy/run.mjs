#!/usr/bin/env node
// The data-plane benchmark (issue 4): Trellis's proxy against nginx on the same sidecar path,
// side by side in one run:
//
//   client ──► client-side proxy ──► server-side proxy ──► backend (nginx, static 1 KB / 1 MB)
//
// - Trellis: two `trellis proxy sidecar` processes configured only over xDS by a real
//   `trellis control-plane` (objects written to its file store before it starts). The client (pod sleep-0)
//   sends absolute-form requests (`GET http://echo:PORT/1k`, as an app with HTTP_PROXY does) to
//   its sidecar's explicit HTTP proxy port; the outbound route sends them to the endpoint of
//   Service echo, which is the server sidecar's inbound port (Pod annotation
//   trellis.io/inbound-ports); the server sidecar's inbound listener forwards to the backend.
// - nginx (Debian's package): two nginx instances, each one worker, `proxy_pass` to the next hop
//   with upstream keepalive. They receive the very same request bytes.
// - direct: the client straight to the backend, the baseline for added latency.
//
// CPU: both proxies of the peer under test are pinned (taskset) to one core (--proxy-cpu, 0);
// the load generator, the backend and the control plane to the other (--load-cpu, 1). Cases,
// for each peer one after the other against the same backend with the same load:
//   1. saturation: wrk, N keep-alive connections, 1 KB responses → requests/s, proxy CPU;
//   2. fixed rate: 1,000 requests/s open loop (fixed-rate.mjs) → latency p50/p90/p99 (added =
//      peer − direct), proxy CPU seconds per 1,000 requests, vCPU per proxy;
//   3. large bodies: wrk, 1 MB responses → MB/s;
//   4. memory: VmRSS, VmHWM and private memory (USS, smaps_rollup) of each proxy (nginx: master
//      + worker) at the end.
// Prints a table and writes everything as JSON to bench/results/.
//
//   node bench/proxy/run.mjs [--quick] [--duration 15] [--rounds 2] [--connections 64]
//        [--rate 1000,250] [--proxy-cpu 0] [--load-cpu 1] [--peers nginx,trellis] [--profile]
//        [--baseline DIR]
// --rate '' skips the fixed-rate cases and --large-connections 0 the 1 MB case (quick A/B loops).
// --peers may add `node-floor` (node-floor.mjs): two minimal Node.js forwarders on the same path,
// the least any proxy on Node.js can cost (a floor for Trellis, not a real proxy).
// --baseline DIR adds a peer `baseline`: the same Trellis path run from another built checkout
// (e.g. a copy of the tree before a change), so that an A/B comparison runs in the same minutes
// on the same busy machine; the table then has a trellis/baseline column.
// --profile writes a V8 CPU profile of each Trellis sidecar to bench/results/ (summarise with
// node bench/control-plane/profile-summary.mjs FILE).
// Installs nothing: nginx (apt-get install nginx-light) and wrk (apt-get install wrk) must be
// on PATH; build the workspace first (npx tsc -b).
import { Buffer } from 'node:buffer';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { cpus, hostname, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { openFileStore } from '@trellis/config';
import { PROXY_NODE_FLAGS } from '@trellis/local';

const HERE = import.meta.dirname;
const REPO = resolve(HERE, '../..');
const TRELLIS = join(REPO, 'packages/cli/bin/trellis.js');
const FIXED_RATE = join(HERE, 'fixed-rate.mjs');
const NODE_FLOOR = join(HERE, 'node-floor.mjs');
// Extra node flags for the Trellis sidecars only (e.g. BENCH_PROXY_NODE_ARGS=--trace-gc), after
// the flags `trellis up` starts every proxy with (PROXY_NODE_FLAGS; a later flag wins).
const PROXY_NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean);
const { fetch } = globalThis;
const CLK_TCK = 100; // USER_HZ (getconf CLK_TCK)
// Service echo's port: a name in the routes; nothing binds it (the client reaches it through its
// sidecar's HTTP proxy port).
const SERVICE_PORT = 9080;
const TARGET_1K = `http://echo:${SERVICE_PORT}/1k`;
const TARGET_1M = `http://echo:${SERVICE_PORT}/1m`;
const HOST = `echo:${SERVICE_PORT}`;

// ---------------------------------------------------------------------------------------
// Options

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string', default: '64' },
    'large-connections': { type: 'string', default: '8' },
    rate: { type: 'string', default: '1000,250' },
    'rate-connections': { type: 'string', default: '16' },
    'proxy-cpu': { type: 'string', default: '0' },
    'load-cpu': { type: 'string', default: '1' },
    peers: { type: 'string', default: 'nginx,trellis' },
    out: { type: 'string', default: join(REPO, 'bench/results') },
    'keep-temp': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    baseline: { type: 'string' },
  },
});
const opt = {
  quick: argv.quick,
  duration: Number(argv.duration ?? (argv.quick ? 5 : 15)),
  warmup: Number(argv.warmup ?? (argv.quick ? 3 : 5)),
  rounds: Number(argv.rounds ?? (argv.quick ? 1 : 2)),
  connections: Number(argv.connections),
  largeConnections: Number(argv['large-connections']),
  rates: argv.rate
    .split(',')
    .filter((x) => x !== '')
    .map(Number),
  rateConnections: Number(argv['rate-connections']),
  proxyCpu: argv['proxy-cpu'],
  loadCpu: argv['load-cpu'],
  peers: argv.peers.split(',').filter((p) => p !== ''),
  baseline: argv.baseline ? resolve(argv.baseline) : undefined,
};
if (opt.baseline && !opt.peers.includes('baseline')) opt.peers.push('baseline');
const BASELINE_TRELLIS = opt.baseline ? join(opt.baseline, 'packages/cli/bin/trellis.js') : '';
// Each tree's sidecars run with that tree's own launch flags (none before PROXY_NODE_FLAGS).
const BASELINE_NODE_FLAGS = opt.baseline
  ? ((
      await import(
        pathToFileURL(join(opt.baseline, 'packages/local/dist/src/index.js')).href
      ).catch(() => ({}))
    ).PROXY_NODE_FLAGS ?? [])
  : [];
if (opt.baseline && !existsSync(BASELINE_TRELLIS)) {
  console.error(`bench/proxy: --baseline: no ${BASELINE_TRELLIS}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------
// Preflight: tools and build

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
}
const missing = [];
if (!which('nginx')) missing.push('nginx (apt-get install -y nginx-light, or nginx)');
if (!which('wrk')) missing.push('wrk (apt-get install -y wrk)');
if (!which('taskset')) missing.push('taskset (apt-get install -y util-linux)');
if (missing.length > 0) {
  console.error(`bench/proxy: missing tools, install them first:\n  ${missing.join('\n  ')}`);
  process.exit(2);
}
if (!existsSync(join(REPO, 'packages/cli/dist/src/commands/proxy.js'))) {
  console.error('bench/proxy: the workspace is not built; run `npx tsc -b` first');
  process.exit(2);
}
const ncpu = cpus().length;
const pin = ncpu >= 2;
if (!pin) console.error(`bench/proxy: ${ncpu} CPU: running without pinning (figures are weaker)`);
const NGINX_VERSION = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim();
const WRK_VERSION = spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim();

// ---------------------------------------------------------------------------------------
// Processes

const children = new Set();

/** Starts `cmd args` pinned to `cpu` (taskset execs, so the pid is the command's own). */
function start(name, cpu, cmd, args, { env, cwd } = {}) {
  const full = pin ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args];
  const child = spawn(full[0], full[1], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    cwd: cwd ?? REPO,
  });
  const proc = { name, child, pid: child.pid, out: '', err: '', exited: false };
  child.stdout.on('data', (d) => (proc.out = (proc.out + d.toString()).slice(-20_000)));
  // With BENCH_PROXY_NODE_ARGS (tracing flags), the sidecars' whole output goes to a file too.
  if (PROXY_NODE_ARGS.length > 0 && name.startsWith('trellis-')) {
    mkdirSync(argv.out, { recursive: true });
    const log = createWriteStream(join(argv.out, `${name}-${process.pid}.log`));
    child.stdout.pipe(log);
    child.stderr.pipe(log);
  }
  child.stderr.on('data', (d) => (proc.err = (proc.err + d.toString()).slice(-20_000)));
  child.on('exit', (code, sig) => {
    proc.exited = true;
    proc.exit = code ?? sig;
    children.delete(proc);
  });
  children.add(proc);
  return proc;
}

async function stop(proc, signal = 'SIGTERM') {
  if (proc.exited) return;
  proc.child.kill(signal);
  for (let i = 0; i < 100 && !proc.exited; i++) await sleep(50);
  if (!proc.exited) proc.child.kill('SIGKILL');
}

async function stopAll() {
  await Promise.all(
    [...children].map((p) => stop(p, p.name.startsWith('nginx') ? 'SIGQUIT' : 'SIGTERM')),
  );
}
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    void stopAll().then(() => process.exit(130));
  });

/** Runs a command to completion (pinned), returning stdout; throws with stderr on failure. */
function run(cpu, cmd, args) {
  return new Promise((res, rej) => {
    const p = start(cmd, cpu, cmd, args);
    p.child.on('exit', (code) => {
      if (code === 0) res(p.out);
      else rej(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${p.err}${p.out}`));
    });
  });
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor(what, fn, ms = 30_000, proc) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    if (proc?.exited)
      throw new Error(`${proc.name} exited (${proc.exit}) while waiting for ${what}:\n${proc.err}`);
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(100);
  }
}

/** One HTTP/1.1 request over a fresh socket; resolves { status, bodyBytes, head }. */
function probe(port, target) {
  return new Promise((res, rej) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('connect', () =>
      s.write(`GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`),
    );
    s.on('data', (d) => (buf = Buffer.concat([buf, d])));
    s.on('error', rej);
    s.on('close', () => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return rej(new Error(`no response: ${buf.toString().slice(0, 200)}`));
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(head.split(' ')[1]);
      let body = buf.subarray(end + 4);
      if (/transfer-encoding:\s*chunked/i.test(head)) {
        const parts = [];
        let rest = body;
        for (;;) {
          const eol = rest.indexOf('\r\n');
          const size = parseInt(rest.subarray(0, eol).toString(), 16);
          if (!(size > 0)) break;
          parts.push(rest.subarray(eol + 2, eol + 2 + size));
          rest = rest.subarray(eol + 4 + size);
        }
        body = Buffer.concat(parts);
      }
      res({ status, bodyBytes: body.length, head, body: body.subarray(0, 300).toString() });
    });
  });
}

// ---------------------------------------------------------------------------------------
// /proc readings

async function cpuTicks(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

async function memory(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (text, k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  // Private memory (USS: pages no other process maps): what one more proxy costs. RSS also
  // counts the executable's and libraries' pages, which every process of the same binary shares.
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return {
    rssKb: kb(status, 'VmRSS'),
    hwmKb: kb(status, 'VmHWM'),
    ussKb: kb(rollup, 'Private_Clean') + kb(rollup, 'Private_Dirty'),
  };
}

/** Memory of each proxy (nginx: master + worker), by proxy name. */
async function proxiesMemory(proxies) {
  const out = {};
  for (const proc of proxies) {
    let rssKb = 0;
    let hwmKb = 0;
    let ussKb = 0;
    for (const pid of await proxyPids(proc)) {
      const m = await memory(pid);
      rssKb += m.rssKb;
      hwmKb += m.hwmKb;
      ussKb += m.ussKb;
    }
    out[proc.name] = { rssKb, hwmKb, ussKb };
  }
  return out;
}

async function childPids(pid) {
  try {
    const s = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return s.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every pid of a proxy: the process and (nginx) its workers. */
async function proxyPids(proxy) {
  return [proxy.pid, ...(await childPids(proxy.pid))];
}

async function cpuOf(proxies) {
  const out = {};
  for (const p of proxies) {
    let t = 0;
    for (const pid of await proxyPids(p)) t += await cpuTicks(pid);
    out[p.name] = t;
  }
  return out;
}

async function coreTicks() {
  const stat = await readFile('/proc/stat', 'utf8');
  const out = {};
  for (const m of stat.matchAll(/^cpu(\d+) (.*)$/gm)) {
    const f = m[2].trim().split(/\s+/).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    out[m[1]] = { busy: f.reduce((a, b) => a + b, 0) - idle, total: f.reduce((a, b) => a + b, 0) };
  }
  return out;
}

/** Runs fn while measuring the proxies' CPU ticks and each core's utilization. */
async function measured(proxies, fn) {
  const c0 = await cpuOf(proxies);
  const k0 = await coreTicks();
  const t0 = performance.now();
  const result = await fn();
  const wallS = (performance.now() - t0) / 1000;
  const c1 = await cpuOf(proxies);
  const k1 = await coreTicks();
  const cpuS = {};
  for (const p of proxies) cpuS[p.name] = (c1[p.name] - c0[p.name]) / CLK_TCK;
  const coreUtil = {};
  for (const [k, v] of Object.entries(k1)) {
    const a = k0[k];
    if (a) coreUtil[`cpu${k}`] = round((v.busy - a.busy) / Math.max(1, v.total - a.total), 3);
  }
  return { ...result, wallS: round(wallS, 3), proxyCpuS: cpuS, coreUtil };
}

// ---------------------------------------------------------------------------------------
// Load generators

const WRK_LUA = (target) => `
wrk.method = "GET"
wrk.path = "${target}"
wrk.headers["Host"] = "${HOST}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

async function wrk(dir, port, target, connections, seconds) {
  const script = join(dir, `wrk-${target.endsWith('1m') ? '1m' : '1k'}.lua`);
  if (!existsSync(script)) await writeFile(script, WRK_LUA(target));
  const out = await run(opt.loadCpu, 'wrk', [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    script,
    `http://127.0.0.1:${port}`,
  ]);
  const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${out}`);
  const r = JSON.parse(line.slice(8));
  const s = r.durationUs / 1e6;
  return {
    ...r,
    errors: r.connect + r.read + r.write + r.status + r.timeout,
    rps: round(r.requests / s, 0),
    mbPerS: round(r.bytes / s / 1e6, 1),
  };
}

async function fixedRate(port, seconds, rate) {
  const out = await run(opt.loadCpu, process.execPath, [
    FIXED_RATE,
    '--port',
    String(port),
    '--request-target',
    TARGET_1K,
    '--host-header',
    HOST,
    '--rate',
    String(rate),
    '--duration',
    String(seconds),
    '--connections',
    String(opt.rateConnections),
    '--body-bytes',
    '1024',
  ]);
  return JSON.parse(out.trim().split('\n').pop());
}

// ---------------------------------------------------------------------------------------
// nginx

function nginxConf(dir, name, listen, body) {
  const root = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `# ${name}: generated by bench/proxy/run.mjs
${root}worker_processes 1;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/${name}-body;
  proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fastcgi;
  uwsgi_temp_path ${dir}/${name}-uwsgi;
  scgi_temp_path ${dir}/${name}-scgi;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
${body}
  server {
    listen 127.0.0.1:${listen} backlog=4096;
    location / { LOCATION }
  }
}
`;
}

/** A proxy hop: proxy_pass to the next hop, upstream connections kept alive and reused. */
function nginxHop(dir, name, listen, next) {
  return nginxConf(
    dir,
    name,
    listen,
    `  upstream next {
    server 127.0.0.1:${next};
    keepalive 1024;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }`,
  ).replace(
    'LOCATION',
    'proxy_pass http://next; proxy_http_version 1.1; proxy_set_header Connection ""; ' +
      'proxy_max_temp_file_size 0;',
  );
}

function nginxBackend(dir, listen, www) {
  return nginxConf(
    dir,
    'nginx-backend',
    listen,
    '  sendfile on;\n  tcp_nopush on;\n  open_file_cache max=16;',
  ).replace('LOCATION', `root ${www};`);
}

async function startNginx(dir, name, cpu, conf, port) {
  const file = join(dir, `${name}.conf`);
  await writeFile(file, conf);
  const proc = start(name, cpu, 'nginx', ['-p', dir, '-c', file, '-g', 'daemon off;']);
  await waitFor(
    `${name} on :${port}`,
    () =>
      new Promise((res) => {
        const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), res(true)));
        s.on('error', () => res(false));
      }),
    10_000,
    proc,
  );
  return proc;
}

// ---------------------------------------------------------------------------------------
// Trellis: control plane, objects, sidecars

function objects(backendPort, inboundPort) {
  const pod = (name, labels, annotations, ports) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels, ...(annotations ? { annotations } : {}) },
    spec: {
      serviceAccountName: labels.app,
      containers: [{ name: 'app', image: 'app', ...(ports ? { ports } : {}) }],
    },
    status: {
      phase: 'Running',
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        selector: { app: 'echo' },
        ports: [{ name: 'http', port: SERVICE_PORT, targetPort: backendPort }],
      },
    },
    // The backend's sidecar receives on inboundPort and forwards to the app on backendPort.
    pod(
      'echo-0',
      { app: 'echo', version: 'v1' },
      { 'trellis.io/inbound-ports': JSON.stringify({ [backendPort]: inboundPort }) },
      [{ containerPort: backendPort }],
    ),
    pod('sleep-0', { app: 'sleep', version: 'v1' }),
  ];
}

async function startControlPlane(dir, backendPort, inboundPort, bin = TRELLIS, tag = '') {
  const state = join(dir, `state${tag}`);
  await mkdir(state, { recursive: true });
  // Written through the file store, as `trellis apply` does, but with the Pods' status (their
  // IP and readiness, which the local runtime or the kubelet would report): apply drops status.
  const store = await openFileStore(state);
  try {
    for (const o of objects(backendPort, inboundPort)) await store.create(o);
  } finally {
    await store.close();
  }
  const cp = start(`trellis-control-plane${tag}`, opt.loadCpu, process.execPath, [
    bin,
    'control-plane',
    '--xds-address',
    '127.0.0.1:0',
    '--monitoring-address',
    '127.0.0.1:0',
    '--state-dir',
    state,
  ]);
  cp.xds = await waitFor(
    'the control plane',
    () => /xDS on (\S+:\d+)/.exec(cp.out)?.[1],
    30_000,
    cp,
  );
  return cp;
}

function startSidecar(name, xds, pod, labels, extra, bin = TRELLIS) {
  const prof = argv.profile
    ? [
        '--cpu-prof',
        '--cpu-prof-dir',
        argv.out,
        '--cpu-prof-name',
        `${name}-${Date.now()}.cpuprofile`,
      ]
    : [];
  return start(
    name,
    opt.proxyCpu,
    process.execPath,
    [
      ...prof,
      ...(bin === TRELLIS ? PROXY_NODE_FLAGS : BASELINE_NODE_FLAGS),
      ...PROXY_NODE_ARGS,
      bin,
      'proxy',
      'sidecar',
      '--pod',
      pod,
      '--ip',
      '127.0.0.1',
      '--xds-address',
      xds,
      ...labels.flatMap((l) => ['--label', l]),
      '--admin-port',
      '0',
      '--status-port',
      '0',
      ...extra,
    ],
    // Interception mode stays REDIRECT (the default, as the local runtime and the e2e tests use):
    // the control plane then also sends virtualOutbound/virtualInbound on 0.0.0.0:15001/15006,
    // which only one sidecar on this host can bind (the other logs a rejected listener). Mode
    // NONE would avoid that, but then the control plane builds no inbound cluster for the server
    // sidecar and binds the service port for outbound on every sidecar.
    {},
  );
}

// ---------------------------------------------------------------------------------------
// Report helpers

const round = (x, d = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? x : Math.round(x * 10 ** d) / 10 ** d;
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ratio = (a, b) =>
  typeof a === 'number' && typeof b === 'number' && b !== 0 ? round(a / b, 2) : null;

// ---------------------------------------------------------------------------------------
// Main

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-bench-proxy-'));
  const www = join(dir, 'www');
  await mkdir(www);
  await writeFile(join(www, '1k'), Buffer.alloc(1024, 'x'));
  await writeFile(join(www, '1m'), Buffer.alloc(1024 * 1024, 'y'));
  const ports = {
    backend: await freePort(),
    trellisInbound: await freePort(),
    trellisOutbound: await freePort(),
    baselineInbound: await freePort(),
    baselineOutbound: await freePort(),
    nginxServer: await freePort(),
    nginxClient: await freePort(),
    floorServer: await freePort(),
    floorClient: await freePort(),
  };
  const startedAt = new Date().toISOString();
  const result = {
    benchmark: 'proxy',
    startedAt,
    options: opt,
    machine: {
      hostname: hostname(),
      cpus: ncpu,
      cpuModel: cpus()[0]?.model,
      memGb: round(totalmem() / 2 ** 30, 1),
      kernel: release(),
      node: process.version,
      nginx: NGINX_VERSION,
      wrk: WRK_VERSION,
      trellisNodeFlags: [...PROXY_NODE_FLAGS, ...PROXY_NODE_ARGS],
      baselineNodeFlags: opt.baseline ? [...BASELINE_NODE_FLAGS, ...PROXY_NODE_ARGS] : undefined,
      pinned: pin ? { proxies: opt.proxyCpu, loadBackendControlPlane: opt.loadCpu } : null,
      loadavgAtStart: (await readFile('/proc/loadavg', 'utf8')).trim(),
    },
    ports,
    rounds: [],
  };
  try {
    // Backend, shared by every peer.
    await startNginx(
      dir,
      'nginx-backend',
      opt.loadCpu,
      nginxBackend(dir, ports.backend, www),
      ports.backend,
    );

    const peers = {};
    if (opt.peers.includes('nginx')) {
      const server = await startNginx(
        dir,
        'nginx-server-side',
        opt.proxyCpu,
        nginxHop(dir, 'nginx-server-side', ports.nginxServer, ports.backend),
        ports.nginxServer,
      );
      const client = await startNginx(
        dir,
        'nginx-client-side',
        opt.proxyCpu,
        nginxHop(dir, 'nginx-client-side', ports.nginxClient, ports.nginxServer),
        ports.nginxClient,
      );
      peers.nginx = { port: ports.nginxClient, proxies: [client, server] };
    }
    if (opt.peers.includes('node-floor')) {
      const hop = async (name, listen, upstream) => {
        const proc = start(name, opt.proxyCpu, process.execPath, [
          NODE_FLOOR,
          '--listen',
          String(listen),
          '--upstream',
          String(upstream),
        ]);
        await waitFor(
          `${name} on :${listen}`,
          () => proc.out.includes('node-floor on'),
          10_000,
          proc,
        );
        return proc;
      };
      const server = await hop('node-floor-server-side', ports.floorServer, ports.backend);
      const client = await hop('node-floor-client-side', ports.floorClient, ports.floorServer);
      peers['node-floor'] = { port: ports.floorClient, proxies: [client, server] };
    }
    for (const [peer, bin, inbound, outbound] of [
      ['trellis', TRELLIS, ports.trellisInbound, ports.trellisOutbound],
      ['baseline', BASELINE_TRELLIS, ports.baselineInbound, ports.baselineOutbound],
    ]) {
      if (!opt.peers.includes(peer)) continue;
      const tag = peer === 'trellis' ? '' : `-${peer}`;
      const cp = await startControlPlane(dir, ports.backend, inbound, bin, tag);
      const server = startSidecar(
        `trellis-server-side${tag}`,
        cp.xds,
        'echo-0.default',
        ['app=echo', 'version=v1'],
        [],
        bin,
      );
      const client = startSidecar(
        `trellis-client-side${tag}`,
        cp.xds,
        'sleep-0.default',
        ['app=sleep', 'version=v1'],
        ['--http-proxy-port', String(outbound)],
        bin,
      );
      peers[peer] = { port: outbound, proxies: [client, server], controlPlane: cp };
    }
    peers.direct = { port: ports.backend, proxies: [] };

    // Every path answers 200 with the whole body before anything is measured.
    for (const [name, p] of Object.entries(peers)) {
      for (const [target, bytes] of [
        [TARGET_1K, 1024],
        [TARGET_1M, 1024 * 1024],
      ]) {
        const r = await waitFor(
          `a 200 through ${name} for ${target}`,
          async () => {
            for (const proc of p.proxies)
              if (proc.exited) throw new Error(`${proc.name} exited (${proc.exit}):\n${proc.err}`);
            const r = await probe(p.port, target);
            if (r.status === 200 && r.bodyBytes === bytes) return r;
            throw new Error(`status ${r.status}, ${r.bodyBytes} bytes: ${r.body}`);
          },
          30_000,
        ).catch((e) => {
          const logs = p.proxies.map((x) => `\n--- ${x.name} stderr:\n${x.err.slice(-3000)}`);
          throw new Error(`${e.message}${logs.join('')}`);
        });
        if (target === TARGET_1K) p.sampleResponseHead = r.head;
      }
    }
    result.responseHeads = Object.fromEntries(
      Object.entries(peers).map(([k, p]) => [k, p.sampleResponseHead]),
    );
    console.error(
      `paths ready; pinned: proxies on cpu ${opt.proxyCpu}, load+backend+control plane on cpu ${opt.loadCpu}`,
    );

    const order = ['direct', ...opt.peers];
    for (let round_ = 0; round_ < opt.rounds; round_++) {
      // Alternate the proxies' order between rounds so drift does not favour one.
      const peersOrder = round_ % 2 === 0 ? order : ['direct', ...[...opt.peers].reverse()];
      const rr = { round: round_ + 1, order: peersOrder, peers: {} };
      for (const name of peersOrder) {
        const p = peers[name];
        const r = {};
        console.error(`round ${round_ + 1}: ${name}: warm-up`);
        r.warmup = await wrk(dir, p.port, TARGET_1K, opt.connections, opt.warmup);
        console.error(`round ${round_ + 1}: ${name}: saturation (${opt.connections} connections)`);
        r.saturation = await measured(p.proxies, () =>
          wrk(dir, p.port, TARGET_1K, opt.connections, opt.duration),
        );
        r.fixedRate = {};
        for (const rate of opt.rates) {
          console.error(`round ${round_ + 1}: ${name}: ${rate} rps fixed rate`);
          r.fixedRate[rate] = await measured(p.proxies, () =>
            fixedRate(p.port, opt.duration, rate),
          );
          // Memory at the first fixed rate (Istio's reference point is 1,000 req/s).
          if (rate === opt.rates[0]) r.memoryAtRate = await proxiesMemory(p.proxies);
        }
        if (opt.largeConnections > 0) {
          console.error(
            `round ${round_ + 1}: ${name}: 1 MB bodies (${opt.largeConnections} connections)`,
          );
          r.large = await measured(p.proxies, () =>
            wrk(dir, p.port, TARGET_1M, opt.largeConnections, opt.duration),
          );
        }
        r.memory = await proxiesMemory(p.proxies);
        for (const proc of p.proxies)
          if (proc.exited)
            throw new Error(`${proc.name} exited (${proc.exit}) under load:\n${proc.err}`);
        rr.peers[name] = r;
      }
      result.rounds.push(rr);
    }
    for (const [name, p] of Object.entries(peers))
      if (p.proxies.length > 0) {
        result[`${name}Stderr`] = Object.fromEntries(
          p.proxies.map((x) => [x.name, x.err.slice(-4000)]),
        );
      }
    if (peers.trellis) {
      const admin = /admin on (http:\/\/\S+?),/.exec(peers.trellis.proxies[0].out)?.[1];
      if (admin) {
        const prom = await (await fetch(`${admin}/stats/prometheus`)).text();
        result.trellisClientStats = prom
          .split('\n')
          .filter((l) =>
            /^(istio_requests_total|envoy_cluster_upstream_(rq_total|cx_total|cx_active))/.test(l),
          );
      }
    }
  } finally {
    await stopAll();
    if (!argv['keep-temp']) await rm(dir, { recursive: true, force: true });
    else console.error(`kept ${dir}`);
  }
  result.summary = summarize(result);
  await mkdir(argv.out, { recursive: true });
  const file = join(argv.out, `proxy-${startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  printTable(result);
  console.log(`\nresults: ${file}`);
}

/** Medians over rounds of every figure the table shows. */
/** One figure of each proxy's memory record in MB (null when not measured). */
function memoryAt(memory, key) {
  return memory
    ? Object.fromEntries(Object.entries(memory).map(([p, m]) => [p, m[key] / 1024]))
    : null;
}

function summarize(result) {
  const names = Object.keys(result.rounds[0]?.peers ?? {});
  const s = {};
  for (const name of names) {
    const rs = result.rounds.map((r) => r.peers[name]);
    const direct = result.rounds.map((r) => r.peers.direct);
    const proxies = Object.keys(rs[0].memory);
    const atRate = {};
    for (const rate of opt.rates) {
      const fr = (r) => r.fixedRate[rate];
      const added = (p) =>
        median(rs.map((r, i) => (fr(r).latency[p] - fr(direct[i]).latency[p]) / 1000));
      const cpu = rs.map((r) => Object.values(fr(r).proxyCpuS).reduce((a, b) => a + b, 0));
      atRate[rate] = {
        achievedRps: median(rs.map((r) => fr(r).achievedRps)),
        errors: rs.reduce((a, r) => a + (fr(r).completed - fr(r).ok) + fr(r).missing, 0),
        p50Ms: median(rs.map((r) => fr(r).latency.p50Us / 1000)),
        p90Ms: median(rs.map((r) => fr(r).latency.p90Us / 1000)),
        p99Ms: median(rs.map((r) => fr(r).latency.p99Us / 1000)),
        addedP50Ms: added('p50Us'),
        addedP90Ms: added('p90Us'),
        addedP99Ms: added('p99Us'),
        cpuSPer1000:
          proxies.length > 0
            ? median(rs.map((r, i) => (cpu[i] / Math.max(1, fr(r).ok)) * 1000))
            : null,
        vcpuPerProxy: Object.fromEntries(
          proxies.map((p) => [p, median(rs.map((r) => fr(r).proxyCpuS[p] / fr(r).wallS))]),
        ),
      };
    }
    s[name] = {
      rps: median(rs.map((r) => r.saturation.rps)),
      saturationErrors: rs.reduce((a, r) => a + r.saturation.errors, 0),
      saturationP99Ms: median(rs.map((r) => r.saturation.p99Us / 1000)),
      proxyCoreUtilAtSaturation: median(rs.map((r) => r.saturation.coreUtil[`cpu${opt.proxyCpu}`])),
      loadCoreUtilAtSaturation: median(rs.map((r) => r.saturation.coreUtil[`cpu${opt.loadCpu}`])),
      atRate,
      largeMBps: rs[0].large ? median(rs.map((r) => r.large.mbPerS)) : null,
      largeErrors: rs.reduce((a, r) => a + (r.large?.errors ?? 0), 0),
      rssMbPerProxy: Object.fromEntries(proxies.map((p) => [p, rs.at(-1).memory[p].rssKb / 1024])),
      peakRssMbPerProxy: Object.fromEntries(
        proxies.map((p) => [p, rs.at(-1).memory[p].hwmKb / 1024]),
      ),
      ussMbPerProxy: Object.fromEntries(proxies.map((p) => [p, rs.at(-1).memory[p].ussKb / 1024])),
      // The first round's: later rounds reuse processes that already carried the 1 MB case.
      rssMbPerProxyAtRate: memoryAt(rs[0].memoryAtRate, 'rssKb'),
      ussMbPerProxyAtRate: memoryAt(rs[0].memoryAtRate, 'ussKb'),
    };
  }
  // Trellis / another peer, per proxy (both peers have two).
  const ratiosTo = (o) => {
    const mean = (m) =>
      m ? Object.values(m).reduce((x, y) => x + y, 0) / Object.values(m).length : null;
    const t = s.trellis.atRate[opt.rates[0]] ?? {};
    const b = o.atRate[opt.rates[0]] ?? {};
    return {
      rps: ratio(s.trellis.rps, o.rps),
      addedP50: ratio(t.addedP50Ms, b.addedP50Ms),
      addedP90: ratio(t.addedP90Ms, b.addedP90Ms),
      addedP99: ratio(t.addedP99Ms, b.addedP99Ms),
      cpuPer1000: ratio(t.cpuSPer1000, b.cpuSPer1000),
      rssPerProxy: ratio(mean(s.trellis.rssMbPerProxy), mean(o.rssMbPerProxy)),
      ussPerProxy: ratio(mean(s.trellis.ussMbPerProxy), mean(o.ussMbPerProxy)),
      rssAtRate: ratio(mean(s.trellis.rssMbPerProxyAtRate), mean(o.rssMbPerProxyAtRate)),
      ussAtRate: ratio(mean(s.trellis.ussMbPerProxyAtRate), mean(o.ussMbPerProxyAtRate)),
      largeMBps: ratio(s.trellis.largeMBps, o.largeMBps),
    };
  };
  if (s.trellis && s.nginx) s.ratios = ratiosTo(s.nginx);
  if (s.trellis && s.baseline) s.ratiosToBaseline = ratiosTo(s.baseline);
  return s;
}

function printTable(result) {
  const s = result.summary;
  const cols = ['direct', ...opt.peers].filter((c) => s[c]);
  const rows = [];
  const f = (x, d = 2) =>
    x === null || x === undefined ? '-' : typeof x === 'number' ? String(round(x, d)) : String(x);
  const sideBySide = (o, d = 1) =>
    o && Object.keys(o).length > 0
      ? Object.values(o)
          .map((v) => f(v, d))
          .join(' / ')
      : '-';
  const R = s.ratios ?? {};
  const RB = s.ratiosToBaseline;
  // `key`: the ratio (trellis / nginx, and trellis / baseline with --baseline) on this row.
  const add = (label, get, key) =>
    rows.push([
      label,
      ...cols.map((c) => get(s[c])),
      key === undefined ? '' : f(R[key]),
      ...(RB ? [key === undefined ? '' : f(RB[key])] : []),
    ]);
  add(`req/s at saturation (${opt.connections} conns, 1 KB)`, (x) => f(x.rps, 0), 'rps');
  add('  errors (non-2xx, socket)', (x) => f(x.saturationErrors, 0));
  add(
    '  proxy core / load core busy',
    (x) => `${f(x.proxyCoreUtilAtSaturation)} / ${f(x.loadCoreUtilAtSaturation)}`,
  );
  for (const [i, rate] of opt.rates.entries()) {
    const first = i === 0;
    const a = (x) => x.atRate[rate];
    add(`latency at ${rate} rps p50 / p90 / p99 ms`, (x) =>
      [a(x).p50Ms, a(x).p90Ms, a(x).p99Ms].map((v) => f(v, 2)).join(' / '),
    );
    if (cols.length > 1) {
      add(`  added p50 ms`, (x) => f(a(x).addedP50Ms, 3), first ? 'addedP50' : undefined);
      add(`  added p90 ms`, (x) => f(a(x).addedP90Ms, 3), first ? 'addedP90' : undefined);
      add(`  added p99 ms`, (x) => f(a(x).addedP99Ms, 3), first ? 'addedP99' : undefined);
    }
    add(`  achieved rps / errors`, (x) => `${f(a(x).achievedRps, 0)} / ${f(a(x).errors, 0)}`);
    add(
      `  CPU s per 1,000 req (both proxies)`,
      (x) => f(a(x).cpuSPer1000, 3),
      first ? 'cpuPer1000' : undefined,
    );
    add(`  vCPU per proxy (client / server)`, (x) => sideBySide(a(x).vcpuPerProxy, 3));
  }
  if (opt.rates.length > 0) {
    const at = `at ${opt.rates[0]} rps`;
    add(`RSS MB per proxy ${at}`, (x) => sideBySide(x.rssMbPerProxyAtRate), 'rssAtRate');
    add(`private MB per proxy ${at} (USS)`, (x) => sideBySide(x.ussMbPerProxyAtRate), 'ussAtRate');
  }
  const end = opt.largeConnections > 0 ? 'after 1 MB bodies' : 'at the end';
  add(`RSS MB per proxy ${end}`, (x) => sideBySide(x.rssMbPerProxy), 'rssPerProxy');
  add('peak RSS MB per proxy', (x) => sideBySide(x.peakRssMbPerProxy));
  add(`private MB per proxy ${end} (USS)`, (x) => sideBySide(x.ussMbPerProxy), 'ussPerProxy');
  add(`1 MB bodies MB/s (${opt.largeConnections} conns)`, (x) => f(x.largeMBps, 0), 'largeMBps');
  add('  errors', (x) => f(x.largeErrors, 0));
  const header = ['', ...cols, 'trellis/nginx', ...(RB ? ['trellis/baseline'] : [])];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) =>
    '| ' +
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') +
    ' |';
  console.log(line(header));
  console.log(
    '|' +
      widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') +
      '|',
  );
  for (const r of rows) console.log(line(r));
  console.log(
    `\n${result.machine.cpus} × ${result.machine.cpuModel}, ${result.machine.node}, ${result.machine.nginx}, ` +
      `${result.machine.wrk}; proxies pinned to cpu ${opt.proxyCpu}, load generator + backend + control plane ` +
      `to cpu ${opt.loadCpu}; ${opt.rounds} round(s) × ${opt.duration} s per case (medians); ` +
      `Trellis sidecars run with node ${result.machine.trellisNodeFlags.join(' ')}` +
      (opt.baseline ? `, the baseline's with [${result.machine.baselineNodeFlags.join(' ')}]` : ''),
  );
}

main().catch(async (e) => {
  console.error(e instanceof Error ? e.stack : e);
  await stopAll();
  process.exit(1);
});
