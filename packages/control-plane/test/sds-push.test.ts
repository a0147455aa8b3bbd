// Who hears of a Secret change, and what it rebuilds: only proxies of the Secret's namespace, and
// only their secrets (SDS), as istiod pushes SDS alone for Secret updates; a Secret never reaches
// every namespace from the root namespace. Secrets are versioned by content, and a Secret
// change keeps every other type's output (and version).
// Test certificates: test/fixtures/secret-test-* (test-only keys).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '@trellis/api';
import { TYPE_URL } from '@trellis/envoy';
import { affectsProxy, buildSnapshot, diffSnapshots, type ProxyView } from '@trellis/registry';
import { parseProxyInfo, type ProxyInfo } from '@trellis/xds-server';
import { TranslationSource } from '../src/index.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures');
const pem = (file: string): string =>
  Buffer.from(readFileSync(resolve(FIXTURES, file))).toString('base64');

function tlsSecret(name: string, namespace: string, which: 'a' | 'b'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': pem(`secret-test-${which}.crt`),
      'tls.key': pem(`secret-test-${which}.key`),
      'ca.crt': pem('secret-test-ca.crt'),
    },
  };
}

const BASE: KubeObject[] = [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] },
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'default', labels: { app: 'web' } },
    spec: { containers: [{ name: 'web', image: 'web', ports: [{ containerPort: 80 }] }] },
    status: { podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
  },
  tlsSecret('gw-cred', 'istio-system', 'a'),
  tlsSecret('app-cred', 'default', 'a'),
];

const router = (namespace: string): ProxyView => ({ namespace, type: 'router' });
const sidecar = (namespace: string): ProxyView => ({ namespace, type: 'sidecar' });

function replace(objects: KubeObject[], next: KubeObject): KubeObject[] {
  return objects.map((o) =>
    o.kind === next.kind &&
    o.metadata.name === next.metadata.name &&
    o.metadata.namespace === next.metadata.namespace
      ? next
      : o,
  );
}

function info(type: 'router' | 'sidecar', pod: string, namespace: string): ProxyInfo {
  const r = parseProxyInfo({
    id: `${type}~10.0.0.9~${pod}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace },
  });
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

test("a Secret change reaches only its namespace's proxies, for SDS only", () => {
  const a = buildSnapshot(BASE, { version: '1' });
  const b = buildSnapshot(replace(BASE, tlsSecret('gw-cred', 'istio-system', 'b')), {
    version: '2',
  });
  const d = diffSnapshots(a, b);
  assert.equal(d.scope, 'full');
  assert.deepEqual(d.secrets, { all: false, namespaces: ['istio-system'] });
  assert.deepEqual(d.sidecars, { all: false, namespaces: [] });
  assert.deepEqual(d.routers, { all: false, namespaces: [] });
  assert.equal(affectsProxy(d, router('istio-system')), 'sds');
  // Sidecars may hold a namespace's CA bundles (`-cacert`), as istiod serves them.
  assert.equal(affectsProxy(d, sidecar('istio-system')), 'sds');
  assert.equal(affectsProxy(d, router('default')), 'none');
  assert.equal(affectsProxy(d, sidecar('default')), 'none');
});

test('a Secret of the root namespace is not seen mesh-wide; with other changes it is full', () => {
  const a = buildSnapshot(BASE, { version: '1' });
  // istio-system is the root namespace: configs there reach everyone, Secrets do not.
  const b = buildSnapshot(
    [
      ...replace(BASE, tlsSecret('gw-cred', 'istio-system', 'b')),
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'web', namespace: 'default' },
        spec: { hosts: ['web'], http: [{ route: [{ destination: { host: 'web' } }] }] },
      },
    ],
    { version: '2' },
  );
  const d = diffSnapshots(a, b);
  assert.deepEqual(d.secrets, { all: false, namespaces: ['istio-system'] });
  assert.equal(affectsProxy(d, sidecar('default')), 'full', 'the VirtualService is public');
  assert.equal(affectsProxy(d, router('istio-system')), 'full');

  // Endpoints and secrets of one namespace at once: everything.
  const c = buildSnapshot(
    replace(replace(BASE, tlsSecret('app-cred', 'default', 'b')), {
      ...(BASE[1] as KubeObject),
      status: { podIP: '10.0.0.2', conditions: [{ type: 'Ready', status: 'True' }] },
    }),
    { version: '3' },
  );
  const e = diffSnapshots(a, c);
  assert.equal(affectsProxy(e, sidecar('default')), 'full');
  assert.equal(affectsProxy(e, sidecar('other')), 'eds');
});

test('secrets are versioned by content; a Secret change keeps every other type', () => {
  const src = new TranslationSource();
  src.onSecretWarning = (m) => assert.fail(`unexpected warning: ${m}`);
  const a = buildSnapshot(BASE, { version: '1' });
  src.setSnapshot(a);
  const gw = info('router', 'ingress-0', 'istio-system');
  const sc = info('sidecar', 'sleep-0', 'default');
  const names = ['kubernetes://gw-cred'];
  const sds1 = src.resources(gw, TYPE_URL.Secret, names);
  assert.deepEqual([...sds1.resources.keys()], names);
  const others = [TYPE_URL.Cluster, TYPE_URL.Listener, TYPE_URL.ClusterLoadAssignment];
  const before = others.map((t) => src.resources(sc, t, undefined).version);
  const builds = src.stats.sharedBuilds;

  // A change to an unrelated Secret: SDS keeps its version, so nothing would be re-sent.
  const b = buildSnapshot(
    replace(BASE, tlsSecret('app-cred', 'default', 'b')),
    { version: '2' },
    a,
  );
  src.setSnapshot(b, { kinds: ['Secret'] });
  assert.equal(src.resources(gw, TYPE_URL.Secret, names).version, sds1.version);
  assert.deepEqual(
    others.map((t) => src.resources(sc, t, undefined).version),
    before,
    "the sidecar's other types keep their versions",
  );
  assert.equal(src.stats.sharedBuilds, builds, 'and are not even rebuilt');

  // The gateway's own Secret: a new version, with the new content.
  const c = buildSnapshot(
    replace(BASE, tlsSecret('gw-cred', 'istio-system', 'b')),
    {
      version: '3',
    },
    b,
  );
  src.setSnapshot(c, { kinds: ['Secret'] });
  const sds3 = src.resources(gw, TYPE_URL.Secret, names);
  assert.notEqual(sds3.version, sds1.version);
  assert.notDeepEqual(
    Buffer.from(sds3.resources.get(names[0]!)!.value),
    Buffer.from(sds1.resources.get(names[0]!)!.value),
  );
});

test('SDS is answered for the names asked, never as a wildcard', () => {
  const src = new TranslationSource();
  const warned: string[] = [];
  src.onSecretWarning = (m) => warned.push(m);
  src.setSnapshot(buildSnapshot(BASE, { version: '1' }));
  const gw = info('router', 'ingress-0', 'istio-system');
  assert.equal(src.resources(gw, TYPE_URL.Secret, undefined).resources.size, 0);
  const set = src.resources(gw, TYPE_URL.Secret, [
    'kubernetes://gw-cred',
    'kubernetes://default/app-cred',
    'default',
  ]);
  assert.deepEqual([...set.resources.keys()], ['kubernetes://gw-cred']);
  assert.equal(warned.length, 1);
  assert.match(
    warned[0]!,
    /kubernetes:\/\/default\/app-cred \(Secret default\/app-cred\): .*own namespace/,
  );
  // Warned once per snapshot, however often it is asked.
  src.resources(gw, TYPE_URL.Secret, ['kubernetes://default/app-cred']);
  assert.equal(warned.length, 1);
});
