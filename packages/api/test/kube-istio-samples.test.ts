// Istio's own sample manifests (bookinfo, httpbin, helloworld, curl, sleep, tcp-echo, jwt-server,
// extauthz, security/) must be accepted unmodified: every document of a Kubernetes, security,
// telemetry or extensions kind validates with no errors, and documents of kinds Trellis does not
// serve get a clear error. networking.istio.io kinds other than EnvoyFilter and ProxyConfig are
// checked by their own tests.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatProblem,
  groupOf,
  kindByGroup,
  loadManifests,
  validateLoaded,
} from '../src/index.js';
import type { KindInfo } from '../src/index.js';
import { SECURITY_KINDS } from '../src/istio/security/index.js';
import { TELEMETRY_KINDS } from '../src/istio/telemetry/index.js';
import { EXTENSIONS_KINDS } from '../src/istio/extensions/index.js';
import { KUBE_KINDS } from '../src/kube/index.js';

/** /work/shared, found from the compiled test (packages/api/dist/test/) or TRELLIS_SHARED. */
const SHARED = process.env.TRELLIS_SHARED ?? join(import.meta.dirname, '../../../../../shared');
const SAMPLES = join(SHARED, 'istio-samples');

const OURS: ReadonlySet<KindInfo> = new Set([
  ...SECURITY_KINDS,
  ...TELEMETRY_KINDS,
  ...EXTENSIONS_KINDS,
  ...KUBE_KINDS,
]);

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (name.endsWith('.yaml') || name.endsWith('.yml')) out.push(p);
  }
  return out;
}

test('istio samples: every document of our kinds is valid; unserved kinds get a clear error', (t) => {
  assert.ok(existsSync(SAMPLES), `samples directory ${SAMPLES} is missing (set TRELLIS_SHARED)`);
  const files = yamlFiles(SAMPLES);
  assert.ok(files.length > 0, `no YAML files under ${SAMPLES}`);

  const validated = new Map<string, number>();
  const unserved = new Map<string, number>();
  const errors: string[] = [];
  for (const file of files) {
    const name = relative(SAMPLES, file);
    const loaded = loadManifests(readFileSync(file, 'utf8'), name);
    assert.deepEqual(loaded.problems, [], `${name} does not parse`);
    for (const lo of loaded.objects) {
      const raw = lo.value as { apiVersion?: unknown; kind?: unknown };
      const apiVersion = typeof raw.apiVersion === 'string' ? raw.apiVersion : '';
      const kind = typeof raw.kind === 'string' ? raw.kind : '';
      const group = groupOf(apiVersion);
      const info = kindByGroup(group, kind);
      const { problems } = validateLoaded(lo);
      const errs = problems.filter((p) => p.severity === 'error');
      if (info && OURS.has(info)) {
        errors.push(...errs.map(formatProblem));
        validated.set(kind, (validated.get(kind) ?? 0) + 1);
      } else if (!info && group !== 'networking.istio.io') {
        // Not served at all: the document must be rejected on its kind (or for lacking one).
        const what = apiVersion && kind ? `${kind} (${apiVersion})` : '<not a Kubernetes object>';
        unserved.set(what, (unserved.get(what) ?? 0) + 1);
        const about = errs.filter((p) => p.path === 'kind' || p.path === 'apiVersion');
        assert.ok(about.length > 0, `${name}: ${what} got no error about its kind`);
        for (const p of about)
          assert.match(
            p.message,
            apiVersion && kind ? /Trellis does not (serve|support)/ : /^is required$/,
            `${name}: unclear error for ${what}: ${p.message}`,
          );
      }
    }
  }
  assert.deepEqual(errors, []);
  // The Kubernetes kinds of bookinfo, httpbin, helloworld, ... must all have been seen.
  for (const k of ['Deployment', 'Service', 'ServiceAccount', 'Secret'])
    assert.ok((validated.get(k) ?? 0) > 0, `no ${k} found in the samples`);
  t.diagnostic(`validated: ${[...validated].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  t.diagnostic(`not served: ${[...unserved].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
});
