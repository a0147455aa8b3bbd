#!/usr/bin/env node
// The control-plane benchmark: one run end to end.
//
// 1. Generates the mesh (N services × E endpoints, generate.mjs) once into a cache, then copies
//    it into a fresh state directory for each configuration.
// 2. Starts the real `trellis control-plane` (node packages/cli/bin/trellis.js) on ephemeral
//    ports with the configuration's debounce window, and waits for it to be ready.
// 3. Forks proxies.mjs, which connects P simulated sidecars over gRPC (state-of-the-world ADS,
//    or incremental with --xds delta), and waits until every proxy has its initial config
//    (CDS, EDS, LDS, RDS received and ACKed).
// 4. Measures, writing through the file store as `trellis apply` would:
//    (a) VirtualService changes (a route weight): time from the write to the last proxy's
//        receipt (and ACK) of the new RDS version;
//    (b) endpoint changes (a Pod readiness flip): the same for EDS;
//    (c) full pushes (a DestinationRule with exportTo '*', which every sidecar sees): control
//        plane CPU (utime+stime from /proc) and wall time from the write until every proxy
//        has ACKed every type the change pushed;
//    (d) control-plane memory (VmRSS after the initial sync, VmHWM at the end).
// 5. Prints a table and writes the results as JSON (bench/results/ by default).
//
//   node bench/control-plane/run.mjs [--quick] [--xds sotw|delta] [--services 1000]
//        [--endpoints 10] [--proxies 500] [--changes 20] [--full-pushes 3] [--debounce-quiet 100,10] ...
// See bench/README.md for every flag.
import { Buffer } from 'node:buffer';
import { fork, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openFileStore } from '@trellis/config';
import { generate } from './generate.mjs';
import * as M from './model.mjs';
import { formatProfileSummary, summarizeProfileFile } from './profile-summary.mjs';

const HERE = import.meta.dirname;
const REPO = resolve(HERE, '../..');
const TRELLIS = join(REPO, 'packages/cli/bin/trellis.js');
const CLK_TCK = 100; // USER_HZ on Linux (getconf CLK_TCK)

const now = () => performance.timeOrigin + performance.now();
const { fetch } = globalThis;

// ---------------------------------------------------------------------------------------
// Options

const QUICK = {
  services: 50,
  endpoints: 3,
  proxies: 20,
  changes: 5,
  'full-pushes': 2,
  'gap-ms': 100,
  'settle-ms': 150,
};

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      xds: { type: 'string', default: 'sotw' },
      services: { type: 'string' },
      endpoints: { type: 'string' },
      namespaces: { type: 'string', default: '10' },
      proxies: { type: 'string' },
      changes: { type: 'string' },
      'vs-changes': { type: 'string' },
      'full-pushes': { type: 'string' },
      warmup: { type: 'string', default: '1' },
      'debounce-quiet': { type: 'string', default: '100,10' },
      'debounce-max': { type: 'string', default: '10000' },
      'eds-debounce': { type: 'string', default: 'true' },
      'streams-per-channel': { type: 'string', default: '1' },
      'gap-ms': { type: 'string' },
      'settle-ms': { type: 'string' },
      'time-limit': { type: 'string', default: '600' },
      'change-timeout': { type: 'string', default: '300' },
      'state-dir': { type: 'string' },
      cache: { type: 'string', default: join(REPO, 'bench/results/cache') },
      fresh: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'cpu-prof-proxies': { type: 'string' },
      'proxies-gc': { type: 'string', default: 'on' },
      'proxies-client': { type: 'string', default: 'lite' },
      'heap-snapshot': { type: 'boolean', default: false },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: node bench/control-plane/run.mjs [--quick] [--xds sotw|delta] [--services N]\n' +
        '  [--endpoints E] [--namespaces 10] [--proxies P] [--changes K] [--full-pushes F]\n' +
        '  [--vs-changes K] [--warmup 1] [--debounce-quiet 100,10] [--debounce-max 10000] [--eds-debounce true|false]\n' +
        '  [--streams-per-channel 1]\n' +
        '  [--gap-ms 200] [--settle-ms 300] [--time-limit 600] [--change-timeout 300]\n' +
        '  [--state-dir DIR] [--cache DIR] [--fresh] [--cpu-prof] [--cpu-prof-proxies DIR] [--heap-snapshot]\n' +
        '  [--proxies-gc on|off] [--proxies-client lite|grpc-js]\n' +
        '  [--out FILE.json] [--keep]\n' +
        'Defaults: 1000 services × 10 endpoints, 500 proxies, 20 changes, 3 full pushes\n' +
        '(--quick: 50 × 3, 20 proxies, 5 changes, 2 full pushes). See bench/README.md.',
    );
    process.exit(0);
  }
  const pick = (name, full) => Number(values[name] ?? (values.quick ? QUICK[name] : full));
  if (values['eds-debounce'] !== 'true' && values['eds-debounce'] !== 'false')
    throw new Error('--eds-debounce must be true or false');
  if (values['proxies-client'] !== 'lite' && values['proxies-client'] !== 'grpc-js')
    throw new Error('--proxies-client must be lite or grpc-js');
  if (values['proxies-gc'] !== 'on' && values['proxies-gc'] !== 'off')
    throw new Error('--proxies-gc must be on or off');
  if (values.xds !== 'sotw' && values.xds !== 'delta')
    throw new Error('--xds must be sotw (state of the world) or delta (incremental)');
  const o = {
    xds: values.xds,
    services: pick('services', 1000),
    endpoints: pick('endpoints', 10),
    namespaces: Number(values.namespaces),
    proxies: pick('proxies', 500),
    changes: pick('changes', 20),
    vsChanges: values['vs-changes'] === undefined ? undefined : Number(values['vs-changes']),
    fullPushes: pick('full-pushes', 3),
    warmup: Number(values.warmup),
    quiets: values['debounce-quiet'].split(',').map(Number),
    debounceMax: Number(values['debounce-max']),
    edsDebounce: values['eds-debounce'],
    streamsPerChannel: Number(values['streams-per-channel']),
    gapMs: pick('gap-ms', 200),
    settleMs: pick('settle-ms', 300),
    timeLimitMs: Number(values['time-limit']) * 1000,
    changeTimeoutMs: Number(values['change-timeout']) * 1000,
    stateDir: values['state-dir'],
    cache: values.cache,
    fresh: values.fresh,
    cpuProf: values['cpu-prof'],
    cpuProfProxies: values['cpu-prof-proxies'],
    proxiesGc: values['proxies-gc'] !== 'off',
    proxiesClient: values['proxies-client'],
    heapSnapshot: values['heap-snapshot'],
    out: values.out,
    keep: values.keep,
  };
  for (const [k, v] of Object.entries(o))
    if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0))
      throw new Error(`--${k} must be a non-negative number`);
  if (o.services < 1 || o.endpoints < 1 || o.proxies < 1)
    throw new Error('--services, --endpoints and --proxies must be at least 1');
  if (o.quiets.some((q) => !Number.isInteger(q) || q < 0))
    throw new Error('--debounce-quiet must be a comma-separated list of milliseconds');
  return o;
}

// ---------------------------------------------------------------------------------------
// Small helpers

/** The q-quantile (nearest rank) of numbers; undefined for none. */
export function quantile(xs, q) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

const round = (x, d = 1) => (x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d)));
const fmtMs = (x) => (x === null || x === undefined ? '—' : `${Math.round(x)} ms`);
const fmtS = (x) => (x === null || x === undefined ? '—' : `${(x / 1000).toFixed(2)} s`);
const fmtMB = (b) => (b === null || b === undefined ? '—' : `${Math.round(b / 1048576)} MB`);

function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

/** The 1-minute load average (other work on the machine moves every wall-clock figure). */
async function loadAverage() {
  return Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]);
}

/** CPU time (utime + stime) of a process, in ms. */
async function cpuMs(pid) {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
async function memory(pid) {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The control plane's /metrics as a map from `name{labels}` to value. */
async function scrape(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Sums every series of a metric name in a scrape. */
function metricSum(m, name) {
  let sum = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) sum += v;
  return sum;
}

/** Selected counters of a scrape, for the report. */
function counters(m) {
  const pick = {};
  for (const [k, v] of m)
    if (
      /^pilot_(xds|xds_pushes|xds_acks|total_xds_rejects|xds_resources_generated|push_triggers|xds_generate_errors|xds_push_time_sum|xds_push_time_count|services|virt_services|config_problems)(_total)?(\{|$)/.test(
        k,
      )
    )
      pick[k] = v;
  return pick;
}

// ---------------------------------------------------------------------------------------
// The control plane and the proxies as child processes

class ControlPlaneProcess {
  static async start(dir, quietMs, maxMs, edsDebounce, profDir, heapDir, deadline) {
    const args = [
      ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
      ...(heapDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`] : []),
      // BENCH_CP_NODE_ARGS: extra node flags for the control plane (its stdout is echoed then).
      ...(process.env.BENCH_CP_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      TRELLIS,
      'control-plane',
      '--xds-address',
      '127.0.0.1:0',
      '--monitoring-address',
      '127.0.0.1:0',
      '--debounce-quiet',
      String(quietMs),
      '--debounce-max',
      String(maxMs),
      '--eds-debounce',
      edsDebounce,
    ];
    const cp = new ControlPlaneProcess();
    cp.args = args;
    cp.profiling = profDir !== undefined;
    cp.heapDir = heapDir;
    cp.startedAt = now();
    cp.child = spawn(process.execPath, args, {
      env: { ...process.env, TRELLIS_STATE_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cp.pid = cp.child.pid;
    cp.stderrTail = [];
    cp.child.stderr.setEncoding('utf8');
    cp.child.stderr.on('data', (d) => {
      for (const line of d.split('\n')) if (line) cp.stderrTail.push(line);
      if (cp.stderrTail.length > 40) cp.stderrTail.splice(0, cp.stderrTail.length - 40);
    });
    cp.exited = new Promise((res) => cp.child.on('exit', (code, sig) => res({ code, sig })));
    const ready = await new Promise((res, rej) => {
      let out = '';
      const timer = setTimeout(
        () => rej(new Error('the control plane did not start in time')),
        Math.max(1000, deadline - now()),
      );
      cp.child.stdout.setEncoding('utf8');
      cp.child.stdout.on('data', (d) => {
        if (process.env.BENCH_CP_NODE_ARGS) process.stderr.write(d);
        out += d;
        const m = /xDS on (\S+):(\d+), monitoring on http:\/\/(\S+):(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          res({ xds: `127.0.0.1:${m[2]}`, monitoringPort: Number(m[4]) });
        }
      });
      void cp.exited.then(({ code, sig }) => {
        clearTimeout(timer);
        rej(
          new Error(
            `the control plane exited (${code ?? sig}) before it was ready:\n${cp.stderrTail.join('\n')}`,
          ),
        );
      });
    });
    cp.readyAt = now();
    cp.xds = ready.xds;
    cp.monitoringPort = ready.monitoringPort;
    const r = await fetch(`http://127.0.0.1:${cp.monitoringPort}/ready`);
    if (r.status !== 200) throw new Error(`/ready answered ${r.status}`);
    return cp;
  }

  /** `promise`, or a rejection as soon as the control plane exits (e.g. out of memory). */
  guard(promise) {
    return Promise.race([
      promise,
      this.exited.then(({ code, sig }) => {
        throw new Error(
          `the control plane exited (${code ?? sig}):\n${this.stderrTail.slice(-15).join('\n')}`,
        );
      }),
    ]);
  }

  /**
   * Writes a V8 heap snapshot of the control plane (started with a heap directory) and copies it
   * to `dest`. The snapshot is written on the main thread: once /metrics answers again it is done.
   */
  async heapSnapshot(dest) {
    const before = new Set(await readdir(this.heapDir));
    this.child.kill('SIGUSR2');
    for (let i = 0; i < 600; i++) {
      await sleep(500);
      const file = (await readdir(this.heapDir)).find(
        (f) => f.endsWith('.heapsnapshot') && !before.has(f),
      );
      if (!file) continue;
      // The first request after the pause may meet a keep-alive socket closed meanwhile.
      for (let k = 0; ; k++) {
        const ok = await scrape(this.monitoringPort).then(
          () => true,
          () => false,
        );
        if (ok) break;
        if (k === 10) throw new Error('the control plane did not answer after its heap snapshot');
        await sleep(1000);
      }
      await cp(join(this.heapDir, file), dest);
      await rm(join(this.heapDir, file), { force: true });
      return dest;
    }
    throw new Error('the control plane wrote no heap snapshot in 5 minutes');
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      // A profiled process writes its profile on exit: give it time.
      const t = setTimeout(() => this.child.kill('SIGKILL'), this.profiling ? 180_000 : 30_000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

class ProxiesProcess {
  /** `profDir`: run the proxies under `node --cpu-prof`, the profile written there on exit. */
  constructor(profDir) {
    this.child = fork(join(HERE, 'proxies.mjs'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // BENCH_PROXIES_NODE_ARGS: extra node flags for this process (e.g. --trace-gc).
      execArgv: [
        ...(process.env.BENCH_PROXIES_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
        ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
        '--expose-gc',
      ],
    });
    this.pid = this.child.pid;
    this.seq = 0;
    this.pending = new Map();
    this.child.on('message', (m) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`proxies: ${m.error}`));
      else p.resolve(m);
    });
    this.child.on('exit', (code, sig) => {
      for (const p of this.pending.values())
        p.reject(new Error(`the proxies process exited (${code ?? sig})`));
      this.pending.clear();
    });
  }
  ask(msg) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...msg, id });
    });
  }
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.on('exit', r));
    await this.ask({ type: 'stop' }).catch(() => undefined);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------------------------------
// Changes

/** Protobuf bytes of `name` (field 1) then weight (field 2, UInt32Value) in a ClusterWeight. */
function clusterWeightNeedle(cluster, weight) {
  const name = Buffer.from(cluster, 'utf8');
  if (name.length > 127 || weight > 127 || weight < 1) return undefined;
  return Buffer.concat([
    Buffer.from([0x0a, name.length]),
    name,
    Buffer.from([0x12, 0x02, 0x08, weight]),
  ]).toString('hex');
}

/** Protobuf bytes of SocketAddress.address (field 2) = ip. */
const addressNeedle = (ip) =>
  Buffer.concat([Buffer.from([0x12, ip.length]), Buffer.from(ip, 'utf8')]).toString('hex');

class Changer {
  constructor(size, proxies, store) {
    this.size = size;
    this.proxies = proxies;
    this.store = store;
    this.vsCount = 0;
    this.epCount = 0;
    this.drCount = 0;
    this.ready = new Map();
  }

  /** A route weight of one service's VirtualService. */
  async virtualService() {
    const k = this.vsCount++;
    const i = (k * 7 + 1) % this.size.services;
    const w1 = 89 - (k % 80);
    const s = M.service(this.size, i);
    await this.store.update(M.virtualServiceObject(this.size, i, w1));
    const host = `${s.name}.${s.namespace}.svc.cluster.local`;
    return {
      target: `VirtualService ${s.namespace}/${s.name} weights ${w1}/${100 - w1}`,
      check: {
        typeUrl: 'RDS',
        needles: [
          clusterWeightNeedle(`outbound|${M.SERVICE_PORT}|v1|${host}`, w1),
          clusterWeightNeedle(`outbound|${M.SERVICE_PORT}|v2|${host}`, 100 - w1),
        ].filter(Boolean),
        expect: true,
      },
    };
  }

  /** A Pod's readiness flip (a pod no proxy stands for). */
  async endpoint() {
    const k = this.epCount++;
    const { services, endpoints } = this.size;
    let i = (k * 13 + 5) % services;
    let j = endpoints - 1;
    for (let tries = 0; M.isProxyPod(this.size, this.proxies, i, j) && tries < services; tries++)
      i = (i + 1) % services;
    const key = `${i}/${j}`;
    const ready = !(this.ready.get(key) ?? true);
    this.ready.set(key, ready);
    const pd = M.pod(this.size, i, j);
    await this.store.update(M.podObject(this.size, i, j, ready));
    return {
      target: `Pod ${pd.namespace}/${pd.name} (${pd.ip}) Ready=${ready ? 'True' : 'False'}`,
      check: { typeUrl: 'EDS', needles: [addressNeedle(pd.ip)], expect: ready },
    };
  }

  /** A mesh-wide DestinationRule change: every sidecar sees it (exportTo '*'). */
  async meshWide() {
    const k = this.drCount++;
    const dr = M.destinationRuleObject(this.size, 0, {
      connectionPool: { tcp: { maxConnections: 1000 + k } },
    });
    dr.spec.exportTo = ['*'];
    await this.store.update(dr);
    const s = M.service(this.size, 0);
    return {
      target: `DestinationRule ${s.namespace}/${s.name} (exportTo '*') maxConnections ${1000 + k}`,
    };
  }
}

// ---------------------------------------------------------------------------------------
// One configuration

/**
 * Makes one change and measures it: time from just before the store write to the last proxy's
 * receipt and ACK of the key type, every type's arrival, and control-plane CPU meanwhile.
 */
async function measureChange(ctx, kind, make, keyType, required) {
  const { cp, proxies, opts } = ctx;
  const before = await scrape(cp.monitoringPort);
  const arm = await proxies.ask({ type: 'arm', gc: opts.proxiesGc });
  const cpu0 = await cpuMs(cp.pid);
  const pcpu0 = await cpuMs(proxies.pid);
  const load0 = await loadAverage();
  const t0 = now();
  const change = await make();
  const written = now();
  const r = await cp.guard(
    proxies.ask({
      type: 'await',
      arm: arm.id,
      types: required,
      timeoutMs: Math.max(1000, Math.min(opts.changeTimeoutMs, ctx.deadline - now())),
      settleMs: opts.settleMs,
    }),
  );
  const cpu1 = await cpuMs(cp.pid);
  const pcpu1 = await cpuMs(proxies.pid);
  const after = await scrape(cp.monitoringPort);
  const mem = await memory(cp.pid);
  const key = r.byType[keyType] ?? {};
  const rel = (t) => (t === undefined || t === null ? undefined : t - t0);
  const lastPush = after.get('pilot_last_push_timestamp_seconds');
  const convCount =
    (after.get('pilot_proxy_convergence_time_count') ?? 0) -
    (before.get('pilot_proxy_convergence_time_count') ?? 0);
  const convSum =
    (after.get('pilot_proxy_convergence_time_sum') ?? 0) -
    (before.get('pilot_proxy_convergence_time_sum') ?? 0);
  let verified;
  if (change.check && r.ok) {
    const c = await proxies.ask({ type: 'check', proxy: 0, ...change.check });
    verified = c.found.length > 0 && c.found.every((f) => f === change.check.expect);
  }
  const pushed = lastPush !== before.get('pilot_last_push_timestamp_seconds');
  const allAcks = Object.values(r.byType)
    .map((x) => x.lastAckAt)
    .filter((x) => x !== undefined);
  return {
    kind,
    target: change.target,
    complete: r.ok,
    missing: r.missing,
    writeMs: round(written - t0, 2),
    pushStartMs: pushed && lastPush ? round(lastPush * 1000 - t0) : null,
    firstRecvMs: round(rel(key.firstRecvAt)),
    medianRecvMs: round(rel(key.medianRecvAt)),
    lastRecvMs: round(rel(key.lastRecvAt)),
    lastAckMs: round(rel(key.lastAckAt)),
    allTypesLastAckMs: round(allAcks.length ? Math.max(...allAcks) - t0 : undefined),
    cpMeanConvergenceMs: convCount > 0 ? round((convSum / convCount) * 1000) : null,
    cpuMs: round(cpu1 - cpu0, 0),
    proxiesCpuMs: round(pcpu1 - pcpu0, 0),
    // The control plane's memory once the change settled: RSS, peak RSS so far, V8 heap, Buffers.
    memoryAfter: {
      rss: mem.rss,
      hwm: mem.hwm,
      heapUsed: after.get('nodejs_heap_size_used_bytes'),
      heapTotal: after.get('nodejs_heap_size_total_bytes'),
      external: after.get('nodejs_external_memory_bytes'),
    },
    loadAverage1m: load0,
    versions: key.versions,
    proxiesReached: Object.fromEntries(Object.entries(r.byType).map(([t, x]) => [t, x.proxies])),
    responsesAfterWrite: r.responsesAfterArm,
    verified,
  };
}

/** Percentiles over the changes that reached every proxy (p99 is the nearest rank: with fewer than 100 samples, the maximum). */
function summarize(samples) {
  const done = samples.filter((s) => s.complete);
  const col = (f) => done.map(f).filter((x) => x !== null && x !== undefined);
  const q = (f) => ({ p50: round(quantile(col(f), 0.5)), p99: round(quantile(col(f), 0.99)) });
  return {
    n: done.length,
    complete: done.length,
    incomplete: samples.length - done.length,
    verified: done.filter((s) => s.verified === true).length,
    lastRecvMs: q((s) => s.lastRecvMs),
    lastAckMs: q((s) => s.lastAckMs),
    firstRecvMs: q((s) => s.firstRecvMs),
    pushStartMs: q((s) => s.pushStartMs),
    allTypesLastAckMs: q((s) => s.allTypesLastAckMs),
    cpMeanConvergenceMs: q((s) => s.cpMeanConvergenceMs),
    cpuMs: q((s) => s.cpuMs),
    proxiesCpuMs: q((s) => s.proxiesCpuMs),
  };
}

async function runConfiguration(opts, size, template, quietMs, deadline, results) {
  const conf = {
    debounceQuietMs: quietMs,
    debounceMaxMs: opts.debounceMax,
    edsDebounce: opts.edsDebounce === 'true',
    stage: 'starting',
    phases: {},
  };
  results.configurations.push(conf);
  const base = opts.stateDir ?? tmpdir();
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, 'trellis-bench-'));
  conf.stateDir = dir;
  await cp(template, dir, { recursive: true });
  const profDir = opts.cpuProf ? await mkdtemp(join(base, 'trellis-bench-prof-')) : undefined;
  const heapDir = opts.heapSnapshot ? await mkdtemp(join(base, 'trellis-bench-heap-')) : undefined;
  let cpProc;
  let proxies;
  let store;
  try {
    log(
      `configuration: debounce quiet ${quietMs} ms, max ${opts.debounceMax} ms, EDS debounce ${opts.edsDebounce}; state ${dir}`,
    );
    cpProc = await ControlPlaneProcess.start(
      dir,
      quietMs,
      opts.debounceMax,
      opts.edsDebounce,
      profDir,
      heapDir,
      deadline,
    );
    conf.command = `TRELLIS_STATE_DIR=${dir} node ${cpProc.args.join(' ').replace(REPO + '/', '')}`;
    conf.controlPlaneStartMs = round(cpProc.readyAt - cpProc.startedAt);
    conf.memoryAtReady = await memory(cpProc.pid);
    conf.cpuAtReadyMs = await cpuMs(cpProc.pid);
    log(
      `control plane ready in ${fmtMs(conf.controlPlaneStartMs)} (pid ${cpProc.pid}, xDS ${cpProc.xds}), ` +
        `RSS ${fmtMB(conf.memoryAtReady.rss)}`,
    );

    conf.stage = 'initial sync';
    proxies = new ProxiesProcess(opts.cpuProfProxies);
    const started = await proxies.ask({
      type: 'start',
      xds: cpProc.xds,
      xdsMode: opts.xds,
      size,
      proxies: opts.proxies,
      streamsPerChannel: opts.streamsPerChannel,
      keepResources: 1,
      client: opts.proxiesClient,
    });
    conf.channels = started.channels;
    conf.proxiesClient = started.client;
    log(
      `${opts.proxies} proxies connecting over ${started.channels} channels (${started.xdsMode} xDS, ${started.client} gRPC client)`,
    );
    // Report progress while the initial sync runs, so a slow run shows how far it got.
    const syncPromise = proxies.ask({
      type: 'waitSynced',
      timeoutMs: Math.max(1000, deadline - now()),
    });
    let synced;
    const progress = { samples: [] };
    for (;;) {
      const winner = await cpProc.guard(
        Promise.race([syncPromise, sleep(10_000).then(() => undefined)]),
      );
      if (winner) {
        synced = winner;
        break;
      }
      const m = await scrape(cpProc.monitoringPort).catch(() => new Map());
      const mem = await memory(cpProc.pid);
      const sample = {
        atS: round((now() - started.startedAt) / 1000),
        connected: metricSum(m, 'pilot_xds'),
        pushes: metricSum(m, 'pilot_xds_pushes') || metricSum(m, 'pilot_xds_pushes_total'),
        acks: metricSum(m, 'pilot_xds_acks') || metricSum(m, 'pilot_xds_acks_total'),
        cpuS: round((await cpuMs(cpProc.pid)) / 1000),
        rssMB: Math.round(mem.rss / 1048576),
      };
      progress.samples.push(sample);
      log(`  initial sync: ${JSON.stringify(sample)}`);
    }
    conf.initialSync = {
      complete: synced.ok,
      proxiesSynced: synced.synced,
      streamsEnded: synced.ended,
      endedReasons: synced.endedReasons,
      firstProxyMs: round(synced.firstSyncedAt - started.startedAt),
      allProxiesMs: round(synced.lastSyncedAt - started.startedAt),
      resourcesPerProxy: synced.resources,
      responseBytesOfProxy0: synced.responseBytes,
      controlPlaneCpuMs: round((await cpuMs(cpProc.pid)) - conf.cpuAtReadyMs, 0),
      progress: progress.samples,
    };
    conf.memoryAfterSync = await memory(cpProc.pid);
    const afterSync = await scrape(cpProc.monitoringPort);
    conf.metricsAfterSync = counters(afterSync);
    conf.memoryAfterSync.heapUsed = afterSync.get('nodejs_heap_size_used_bytes');
    conf.memoryAfterSync.heapTotal = afterSync.get('nodejs_heap_size_total_bytes');
    conf.memoryAfterSync.external = afterSync.get('nodejs_external_memory_bytes');
    log(
      `initial sync: ${synced.synced}/${opts.proxies} proxies in ${fmtS(conf.initialSync.allProxiesMs)}, ` +
        `CP CPU ${fmtS(conf.initialSync.controlPlaneCpuMs)}, RSS ${fmtMB(conf.memoryAfterSync.rss)}; ` +
        `resources per proxy ${JSON.stringify(synced.resources)}`,
    );
    log(
      `  memory after sync: V8 heap used ${fmtMB(conf.memoryAfterSync.heapUsed)} of ` +
        `${fmtMB(conf.memoryAfterSync.heapTotal)}, external (Buffers) ${fmtMB(conf.memoryAfterSync.external)}`,
    );
    if (!synced.ok)
      throw new Error(`initial sync incomplete: ${synced.synced}/${opts.proxies} proxies`);
    if (heapDir) {
      await mkdir(join(REPO, 'bench/results'), { recursive: true });
      conf.heapSnapshot = await cpProc.heapSnapshot(
        join(REPO, 'bench/results', `control-plane-q${quietMs}-${Date.now()}.heapsnapshot`),
      );
      log(`  heap snapshot after sync: ${conf.heapSnapshot}`);
    }

    store = await openFileStore(dir);
    const changer = new Changer(size, opts.proxies, store);
    const ctx = { cp: cpProc, proxies, opts, deadline };
    const phases = [
      ['endpoint', opts.changes, 'Pod readiness flip', () => changer.endpoint(), 'EDS', ['EDS']],
      [
        'virtualService',
        opts.vsChanges ?? opts.changes,
        'VirtualService route weight',
        () => changer.virtualService(),
        'RDS',
        ['RDS'],
      ],
      [
        'fullPush',
        opts.fullPushes,
        'mesh-wide DestinationRule',
        () => changer.meshWide(),
        'CDS',
        ['CDS'],
      ],
    ];
    for (const [k, [name, count, kind, make, keyType, required]] of phases.entries()) {
      // Each phase gets a fair share of the time left; a change that has started may finish
      // until the configuration's deadline, but no new one starts after the phase's.
      const phaseDeadline = now() + (deadline - now()) / (phases.length - k);
      conf.stage = name;
      const warm = [];
      const samples = [];
      let lastDuration = 0;
      const record = () =>
        (conf.phases[name] = {
          kind,
          planned: count,
          truncated: samples.filter((x) => x.complete).length < count,
          warmup: warm,
          samples,
          // With no measured sample in the time share, the warm-up is all there is.
          summaryOf: samples.some((x) => x.complete) || !warm.length ? 'measured' : 'warm-up',
          summary: summarize(samples.some((x) => x.complete) ? samples : warm),
        });
      for (let n = 0; n < opts.warmup + count; n++) {
        // After the first measured change, start another only if it fits: in the phase's
        // share, and (judging by the last one) before the configuration's deadline.
        if (n > opts.warmup && (now() > phaseDeadline || now() + 1.5 * lastDuration > deadline)) {
          log(`  ${name}: time share used up after ${samples.length} of ${count} changes`);
          break;
        }
        const started = now();
        const s = await measureChange(ctx, kind, make, keyType, required);
        lastDuration = now() - started;
        (n < opts.warmup ? warm : samples).push(s);
        log(
          `  ${name} ${n < opts.warmup ? 'warm-up' : n - opts.warmup + 1}: ${s.target}: ` +
            `${keyType} at all proxies ${fmtMs(s.lastRecvMs)} (first ${fmtMs(s.firstRecvMs)}, ` +
            `push start ${fmtMs(s.pushStartMs)}), all ACKed ${fmtMs(s.allTypesLastAckMs)}, ` +
            `CP CPU ${fmtMs(s.cpuMs)}, proxies CPU ${fmtMs(s.proxiesCpuMs)}, load ${s.loadAverage1m}, ` +
            `CP RSS ${fmtMB(s.memoryAfter.rss)} (peak ${fmtMB(s.memoryAfter.hwm)}, heap ${fmtMB(s.memoryAfter.heapUsed)})` +
            `${s.verified === false ? ', NOT VERIFIED' : ''}` +
            `${s.complete ? '' : `, INCOMPLETE (${s.missing} missing)`}`,
        );
        record();
        if (!s.complete) {
          // Cut by the run's time limit: stop here, keep what was measured.
          if (now() >= deadline - 1000) {
            conf.cutByTimeLimit = `${name}: a change was still being pushed at the time limit`;
            log(`  ${conf.cutByTimeLimit}; not counted`);
            break;
          }
          throw new Error(`${name}: a change did not reach every proxy in time`);
        }
        await sleep(opts.gapMs);
      }
      record();
      if (conf.cutByTimeLimit) break;
    }
    conf.stage = 'done';
  } catch (e) {
    conf.error = String(e?.message ?? e);
    log(`configuration stopped at ${conf.stage}: ${conf.error}`);
    if (cpProc) {
      conf.metricsAtError = counters(await scrape(cpProc.monitoringPort).catch(() => new Map()));
      if (cpProc.stderrTail.length) conf.controlPlaneStderrTail = cpProc.stderrTail.slice(-10);
    }
  } finally {
    if (proxies) conf.proxiesProcess = await proxies.ask({ type: 'stats' }).catch(() => undefined);
    if (cpProc) {
      conf.memoryAtEnd = await memory(cpProc.pid).catch(() => undefined);
      conf.controlPlaneCpuTotalMs = await cpuMs(cpProc.pid).catch(() => undefined);
    }
    await store?.close();
    await proxies?.stop();
    await cpProc?.stop();
    if (profDir) {
      const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
      if (files[0]) {
        const dest = join(
          REPO,
          'bench/results',
          `control-plane-q${quietMs}-${Date.now()}.cpuprofile`,
        );
        await mkdir(join(REPO, 'bench/results'), { recursive: true });
        await cp(join(profDir, files[0]), dest);
        conf.cpuProfile = dest;
        conf.profileSummary = await summarizeProfileFile(dest, 20);
        log(formatProfileSummary(conf.profileSummary));
      }
      await rm(profDir, { recursive: true, force: true });
    }
    if (heapDir) await rm(heapDir, { recursive: true, force: true });
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Report

function table(results) {
  const lines = [];
  const s = results.size;
  lines.push(
    `Control-plane benchmark: ${s.services} services × ${s.endpoints} endpoints in ${s.namespaces} ` +
      `namespaces, ${results.proxies} proxies, ${results.xds === 'delta' ? 'delta' : 'state-of-the-world'} ` +
      `xDS (${results.machine.cpus} cores, Node ${results.machine.node})`,
  );
  for (const c of results.configurations) {
    lines.push('');
    lines.push(
      `debounce quiet ${c.debounceQuietMs} ms / max ${c.debounceMaxMs} ms` +
        (c.edsDebounce === false ? ', endpoint changes not debounced' : '') +
        (c.error ? `  — stopped at ${c.stage}: ${c.error}` : '') +
        (c.cutByTimeLimit ? `  — time limit: ${c.cutByTimeLimit}` : ''),
    );
    const rows = [['measure', 'p50', 'p99', 'goal']];
    const sync = c.initialSync;
    if (sync)
      rows.push([
        `initial sync (${sync.proxiesSynced}/${results.proxies} proxies), CP CPU ${fmtS(sync.controlPlaneCpuMs)}`,
        fmtS(sync.allProxiesMs),
        '',
        '',
      ]);
    const ph = c.phases;
    const q = (label, sum, key, fmt, goal = '') =>
      rows.push([label, fmt(sum[key].p50), fmt(sum[key].p99), goal]);
    const n = (p) =>
      `n=${p.summary.n}${p.summaryOf === 'warm-up' ? ', warm-up only' : p.truncated ? ` of ${p.planned}` : ''}`;
    if (ph.endpoint) {
      const e = ph.endpoint.summary;
      q(
        `endpoint change → new EDS at all proxies (${n(ph.endpoint)})`,
        e,
        'lastRecvMs',
        fmtMs,
        'p99 < 100 ms',
      );
      q('  … and ACKed', e, 'lastAckMs', fmtMs);
      q('  write → push start (watch+debounce+build)', e, 'pushStartMs', fmtMs);
      q('  first proxy has it', e, 'firstRecvMs', fmtMs);
      q('  CP CPU per change (incl. settle time)', e, 'cpuMs', fmtMs);
      q('  proxies process CPU per change', e, 'proxiesCpuMs', fmtMs);
    }
    if (ph.virtualService) {
      const v = ph.virtualService.summary;
      q(`VS change → new RDS at all proxies (${n(ph.virtualService)})`, v, 'lastRecvMs', fmtMs);
      q('  … and ACKed', v, 'lastAckMs', fmtMs);
      q('  write → push start (watch+debounce+build)', v, 'pushStartMs', fmtMs);
      q('  all types ACKed by all proxies', v, 'allTypesLastAckMs', fmtMs);
      q('  CP CPU', v, 'cpuMs', fmtS);
    }
    if (ph.fullPush) {
      const f = ph.fullPush.summary;
      q(`full push: CP CPU (${n(ph.fullPush)})`, f, 'cpuMs', fmtS, '< 2 s');
      q('full push: wall, write → all ACKed', f, 'allTypesLastAckMs', fmtS);
    }
    if (c.memoryAfterSync) {
      rows.push(['CP RSS after initial sync', fmtMB(c.memoryAfterSync.rss), '', '< 500 MB']);
      if (c.memoryAfterSync.heapUsed !== undefined)
        rows.push([
          '  … V8 heap used / external (Buffers)',
          fmtMB(c.memoryAfterSync.heapUsed),
          fmtMB(c.memoryAfterSync.external),
          '',
        ]);
    }
    if (c.memoryAtEnd) rows.push(['CP peak RSS (VmHWM)', fmtMB(c.memoryAtEnd.hwm), '', '< 500 MB']);
    if (c.proxiesProcess)
      rows.push([
        'proxies process: CPU total, RSS',
        fmtS(c.proxiesProcess.cpuUserMs + c.proxiesProcess.cpuSystemMs),
        fmtMB(c.proxiesProcess.rssBytes),
        '',
      ]);
    const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows)
      lines.push(
        '  ' +
          r
            .map((x, i) => x.padEnd(w[i]))
            .join('  ')
            .trimEnd(),
      );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------

async function main() {
  const opts = options();
  const t0 = now();
  const deadline = t0 + opts.timeLimitMs;
  const size = {
    services: opts.services,
    endpoints: opts.endpoints,
    namespaces: Math.min(opts.namespaces, opts.services),
  };
  const results = {
    benchmark: 'control-plane',
    startedAt: new Date().toISOString(),
    command: `node bench/control-plane/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    size,
    proxies: opts.proxies,
    xds: opts.xds,
    changes: opts.changes,
    fullPushes: opts.fullPushes,
    warmup: opts.warmup,
    streamsPerChannel: opts.streamsPerChannel,
    configurations: [],
  };

  // The mesh: generated once per size into the cache, copied for each configuration.
  const template = join(opts.cache, `mesh-${size.services}x${size.endpoints}-ns${size.namespaces}`);
  if (opts.fresh || !existsSync(join(template, 'format.json'))) {
    await rm(template, { recursive: true, force: true });
    log(`generating ${size.services} services × ${size.endpoints} endpoints into ${template}`);
    const g = await generate({
      dir: `${template}.tmp`,
      ...size,
      onProgress: (d, t) => log(`  ${d}/${t} objects`),
    }).catch(async (e) => {
      await rm(`${template}.tmp`, { recursive: true, force: true });
      throw e;
    });
    await cp(`${template}.tmp`, template, { recursive: true });
    await rm(`${template}.tmp`, { recursive: true, force: true });
    results.generate = { objects: g.objects, ms: round(g.ms) };
    log(`generated ${g.objects} objects in ${fmtS(g.ms)}`);
  } else log(`using the generated mesh in ${template}`);

  // Each configuration gets an equal share of the time left.
  for (const [k, q] of opts.quiets.entries()) {
    if (now() > deadline) {
      results.configurations.push({ debounceQuietMs: q, error: 'time limit reached before start' });
      continue;
    }
    const share = now() + (deadline - now()) / (opts.quiets.length - k);
    await runConfiguration(opts, size, template, q, share, results);
  }
  results.wallS = round((now() - t0) / 1000);

  const out =
    opts.out ??
    join(REPO, 'bench/results', `control-plane-${results.startedAt.replace(/[:.]/g, '-')}.json`);
  await mkdir(resolve(out, '..'), { recursive: true });
  await writeFile(out, JSON.stringify(results, null, 2) + '\n');
  console.log(table(results));
  console.log(`\nresults: ${out}`);
  process.exitCode = results.configurations.every((c) => !c.error) ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
