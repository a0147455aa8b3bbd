// Istio's own sample YAML validates and applies unmodified; kinds Trellis does not serve get clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { withTempDir } from '@trellis/testing';
import { SAMPLES, trellis } from './harness.js';

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

test('the shared Istio samples are present', () => {
  assert.ok(existsSync(SAMPLES), `missing ${SAMPLES}: set TRELLIS_SHARED to the shared/ directory`);
});

/** The sample files that must apply unmodified. */
function mustApply(): string[] {
  const all = yamlFiles(SAMPLES);
  return all.filter((f) => {
    const rel = relative(SAMPLES, f);
    if (rel.includes('gateway-api/')) return false;
    if (rel === 'bookinfo/swagger.yaml') return false; // an OpenAPI document, not a manifest
    return (
      /^bookinfo\/networking\//.test(rel) ||
      rel === 'bookinfo/platform/kube/bookinfo.yaml' ||
      /^(httpbin|helloworld|sleep|curl|tcp-echo|jwt-server)\//.test(rel)
    );
  });
}

test('every required sample file validates and applies unmodified', async () => {
  const files = mustApply();
  assert.ok(files.length >= 35, `found only ${files.length} sample files`);
  await withTempDir(async (dir) => {
    for (const file of files) {
      const v = await trellis(dir, ['validate', '-f', file]);
      assert.equal(v.code, 0, `${relative(SAMPLES, file)}:\n${v.stderr}`);
      const a = await trellis(dir, ['apply', '-f', file]);
      assert.equal(a.code, 0, `${relative(SAMPLES, file)}:\n${a.stderr}`);
      assert.match(a.stdout, / (created|configured|unchanged)\n$/);
    }
    const vs = await trellis(dir, ['get', 'vs', '-o', 'name']);
    for (const name of [
      'bookinfo',
      'reviews',
      'ratings',
      'details',
      'productpage',
      'helloworld',
      'httpbin',
      'tcp-echo',
    ])
      assert.match(vs.stdout, new RegExp(`virtualservice\\.networking\\.istio\\.io/${name}\\n`));
    const deploys = await trellis(dir, ['get', 'deploy', '-o', 'name']);
    assert.match(deploys.stdout, /deployment\.apps\/reviews-v3\n/);
  });
});

test('all the rest of the bookinfo platform manifests apply, except kinds Trellis does not serve', async () => {
  await withTempDir(async (dir) => {
    for (const file of yamlFiles(join(SAMPLES, 'bookinfo', 'platform', 'kube'))) {
      const r = await trellis(dir, ['validate', '-f', file]);
      const rel = relative(SAMPLES, file);
      if (rel.endsWith('bookinfo-certificate.yaml')) {
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          /bookinfo-certificate\.yaml:20 Certificate istio-system\/istio-ingressgateway-certs: kind: unknown kind Certificate \(certmanager\.k8s\.io\/v1alpha1\); Trellis does not serve it/,
        );
      } else if (rel.endsWith('bookinfo-ingress.yaml')) {
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          /bookinfo-ingress\.yaml:\d+ Ingress gateway: kind: unknown kind Ingress \(networking\.k8s\.io\/v1\); Trellis does not serve it/,
        );
      } else assert.equal(r.code, 0, `${rel}:\n${r.stderr}`);
    }
  });
});

test('Gateway API samples are reported as not supported yet, clearly', async () => {
  await withTempDir(async (dir) => {
    const r = await trellis(dir, [
      'validate',
      '-f',
      join(SAMPLES, 'bookinfo', 'gateway-api', 'route-reviews-90-10.yaml'),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /route-reviews-90-10\.yaml:2 HTTPRoute reviews: kind: HTTPRoute \(gateway\.networking\.k8s\.io\/v1\) is a Kubernetes Gateway API kind, which Trellis does not support yet/,
    );
  });
});
