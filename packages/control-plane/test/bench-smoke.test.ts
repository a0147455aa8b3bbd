// Keeps the control-plane benchmark (bench/control-plane/run.mjs) from rotting: runs it at a
// tiny size as a child process, with the real `trellis control-plane` and simulated proxies,
// and checks that it reports latency percentiles for both kinds of change. No speed is
// asserted: this is about the harness working, not about the figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

interface Quantiles {
  readonly p50: unknown;
  readonly p99: unknown;
}

interface PhaseSummary {
  readonly n: number;
  readonly complete: number;
  readonly verified: number;
  readonly lastRecvMs: Quantiles;
  readonly lastAckMs: Quantiles;
}

interface BenchResults {
  readonly configurations: readonly {
    readonly error?: string;
    readonly initialSync?: { readonly proxiesSynced: number };
    readonly phases: Readonly<Record<string, { readonly summary: PhaseSummary } | undefined>>;
    readonly memoryAfterSync?: { readonly rss: number };
  }[];
}

function assertQuantiles(q: Quantiles, what: string): void {
  for (const k of ['p50', 'p99'] as const) {
    const v = q[k];
    assert.ok(
      typeof v === 'number' && Number.isFinite(v) && v >= 0,
      `${what} ${k} is ${String(v)}`,
    );
  }
}

test('the control-plane benchmark runs end to end at a tiny size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-bench-smoke-'));
  const out = join(dir, 'results.json');
  try {
    const args = [
      'bench/control-plane/run.mjs',
      ...['--services', '10', '--endpoints', '2', '--proxies', '5'],
      ...['--changes', '2', '--full-pushes', '1', '--warmup', '0'],
      ...['--debounce-quiet', '10', '--gap-ms', '20', '--settle-ms', '100'],
      ...['--time-limit', '60', '--change-timeout', '15'],
      ...['--state-dir', dir, '--cache', join(dir, 'cache'), '--out', out],
    ];
    try {
      await promisify(execFile)(process.execPath, args, { cwd: REPO, timeout: 90_000 });
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string; message: string };
      assert.fail(`run.mjs failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`);
    }
    const results = JSON.parse(await readFile(out, 'utf8')) as BenchResults;
    assert.equal(results.configurations.length, 1);
    const conf = results.configurations[0]!;
    assert.equal(conf.error, undefined);
    assert.equal(conf.initialSync?.proxiesSynced, 5);
    for (const name of ['virtualService', 'endpoint']) {
      const s = conf.phases[name]?.summary;
      assert.ok(s, `no ${name} phase`);
      assert.equal(s.n, 2);
      assert.equal(s.complete, 2, `${name}: not every change reached every proxy`);
      assert.equal(s.verified, 2, `${name}: proxy 0 did not receive the changed content`);
      assertQuantiles(s.lastRecvMs, `${name} lastRecvMs`);
      assertQuantiles(s.lastAckMs, `${name} lastAckMs`);
    }
    assert.ok(conf.phases.fullPush?.summary.complete === 1, 'the full push did not complete');
    assert.ok((conf.memoryAfterSync?.rss ?? 0) > 0, 'no control-plane RSS reported');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
