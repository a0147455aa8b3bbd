// A small load generator for Istio's circuit-breaking task (where Istio uses fortio):
// `trellis-sample load [-c CONNECTIONS] [-n REQUESTS] [-qps RATE] [--json] URL` sends N requests
// from C concurrent workers (through HTTP_PROXY, i.e. the sidecar, when set), then prints the
// status codes as fortio does (`Code 200 : 17 (85.0 %)`) and latency percentiles.
import { UsageError } from './common/args.js';
import { OutboundError, fetchUrl } from './common/outbound.js';

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly requests: number;
  /** Requests per second over all workers; 0 = as fast as possible. */
  readonly qps: number;
  readonly json: boolean;
}

export interface LoadResult {
  readonly requests: number;
  /** Status code (or `-1` for a transport error) → count. */
  readonly codes: Record<string, number>;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number };
  readonly durationMs: number;
}

function positive(flag: string, v: string | undefined, allowZero = false): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < (allowZero ? 0 : 1))
    throw new UsageError(
      `load: ${flag} needs ${allowZero ? 'a whole number' : 'a positive whole number'}, not ${JSON.stringify(v)}`,
    );
  return n;
}

export function parseLoadArgs(args: readonly string[]): LoadOptions {
  let connections = 1;
  let requests = 10;
  let qps = 0;
  let json = false;
  let url: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-c') connections = positive('-c', args[++i]);
    else if (a === '-n') requests = positive('-n', args[++i]);
    else if (a === '-qps') qps = positive('-qps', args[++i], true);
    else if (a === '--json') json = true;
    else if (a !== undefined && !a.startsWith('-') && url === undefined) url = a;
    else throw new UsageError(`load: unexpected argument ${JSON.stringify(a)}`);
  }
  if (url === undefined) throw new UsageError('load: needs a URL');
  return { url, connections, requests, qps, json };
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);

export async function runLoadTest(o: LoadOptions): Promise<LoadResult> {
  const codes: Record<string, number> = {};
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const interval = o.qps > 0 ? 1000 / o.qps : 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= o.requests) return;
      if (interval > 0) {
        const due = started + i * interval;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const t0 = performance.now();
      let code = '-1';
      try {
        code = String((await fetchUrl(o.url, { timeoutMs: 30_000 })).status);
      } catch (e) {
        if (!(e instanceof OutboundError)) throw e;
      }
      latencies.push(performance.now() - t0);
      codes[code] = (codes[code] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: o.connections }, () => worker()));
  latencies.sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  return {
    requests: o.requests,
    codes,
    latencyMs: {
      p50: r(percentile(latencies, 50)),
      p90: r(percentile(latencies, 90)),
      p99: r(percentile(latencies, 99)),
      max: r(latencies.at(-1) ?? 0),
    },
    durationMs: r(performance.now() - started),
  };
}

export async function runLoad(args: readonly string[]): Promise<number> {
  const o = parseLoadArgs(args);
  const result = await runLoadTest(o);
  if (o.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  }
  const lines = [
    `${o.requests} requests to ${o.url} over ${o.connections} connection(s) in ${result.durationMs} ms`,
    `latency ms: p50 ${result.latencyMs.p50}, p90 ${result.latencyMs.p90}, p99 ${result.latencyMs.p99}, max ${result.latencyMs.max}`,
  ];
  for (const [code, n] of Object.entries(result.codes).sort())
    lines.push(
      `Code ${code === '-1' ? '-1 (transport error)' : code} : ${n} (${((100 * n) / o.requests).toFixed(1)} %)`,
    );
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
