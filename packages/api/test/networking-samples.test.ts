// Istio's own sample YAML must validate unmodified: every networking.istio.io document under
// the shared istio-samples tree (bookinfo, helloworld, httpbin, tcp-echo, sleep, ...).
// Other groups (Kubernetes, security, Gateway API) are left to their own tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProblem, groupOf, loadManifests, validateLoaded } from '../src/index.js';

/** The shared directory: $TRELLIS_SHARED, or /work/shared relative to packages/api/dist/test/. */
const shared =
  process.env.TRELLIS_SHARED ??
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..', 'shared');
const samples = join(shared, 'istio-samples');

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (name.endsWith('.yaml') || name.endsWith('.yml')) out.push(p);
  }
  return out;
}

test('istio samples: every networking.istio.io document validates with no errors', () => {
  // Fails (ENOENT) rather than passing vacuously when the samples are not there.
  assert.ok(statSync(samples).isDirectory(), `${samples} is not a directory`);
  const files = yamlFiles(samples);
  assert.ok(files.length > 0, `no YAML files under ${samples}`);

  const problems: string[] = [];
  const kinds = new Map<string, number>();
  for (const file of files) {
    const loaded = loadManifests(readFileSync(file, 'utf8'), relative(samples, file));
    for (const p of loaded.problems)
      problems.push(`${p.source.file}:${p.source.line} ${p.message}`);
    for (const lo of loaded.objects) {
      const o = lo.value as { apiVersion?: unknown; kind?: unknown } | null;
      if (typeof o?.apiVersion !== 'string' || groupOf(o.apiVersion) !== 'networking.istio.io')
        continue;
      kinds.set(String(o.kind), (kinds.get(String(o.kind)) ?? 0) + 1);
      for (const p of validateLoaded(lo).problems)
        if (p.severity === 'error') problems.push(formatProblem(p));
    }
  }
  assert.deepEqual(problems, []);
  // The tree really was read: the kinds the samples are known to contain were all seen.
  for (const kind of ['VirtualService', 'DestinationRule', 'ServiceEntry', 'Gateway'])
    assert.ok((kinds.get(kind) ?? 0) > 0, `no ${kind} found under ${samples}`);
});
