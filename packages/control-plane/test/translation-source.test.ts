// The shared (per-scope) translation cache gives every proxy exactly what direct translation
// would, builds outbound parts once per scope, and versions each type on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@trellis/api';
import { TYPE_URL, encodeResource } from '@trellis/envoy';
import { buildSnapshot, type Snapshot } from '@trellis/registry';
import {
  generateClusters,
  generateEndpoints,
  generateListeners,
  generateRoutes,
  proxyFromNode,
} from '@trellis/translate';
import { parseProxyInfo, type ProxyInfo } from '@trellis/xds-server';
import { TranslationSource, scopeKey, selectorLabelKeys } from '../src/index.js';

function service(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
  };
}

function pod(name: string, app: string, ip: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app, version: 'v1' } },
    spec: { containers: [{ name: 'app', image: 'app', ports: [{ containerPort: 9080 }] }] },
    status: { podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const BASE: KubeObject[] = [
  service('details'),
  service('reviews'),
  service('ratings'),
  pod('details-0', 'details', '10.0.0.1'),
  pod('reviews-0', 'reviews', '10.0.0.2'),
  pod('ratings-0', 'ratings', '10.0.0.3'),
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews'],
      http: [{ timeout: '3s', route: [{ destination: { host: 'reviews' } }] }],
    },
  },
];

function info(podName: string, ip: string, app: string): ProxyInfo {
  const r = parseProxyInfo({
    id: `sidecar~${ip}~${podName}.default~default.svc.cluster.local`,
    metadata: { NAMESPACE: 'default', LABELS: { app, version: 'v1' } },
  });
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

/** What direct, uncached translation gives a proxy for a type: name → bytes. */
function direct(snapshot: Snapshot, i: ProxyInfo, typeUrl: string): Map<string, string> {
  const workload = snapshot.workload('Pod', i.namespace, i.podName);
  const r = proxyFromNode({ id: i.nodeId, metadata: i.metadata }, workload ? { workload } : {});
  assert.ok(r.ok);
  const p = r.value;
  const json: { name?: string; clusterName?: string }[] =
    typeUrl === TYPE_URL.Listener
      ? generateListeners(snapshot, p)
      : typeUrl === TYPE_URL.RouteConfiguration
        ? generateRoutes(snapshot, p)
        : typeUrl === TYPE_URL.Cluster
          ? generateClusters(snapshot, p)
          : generateEndpoints(snapshot, p);
  return new Map(
    json.map((x) => [
      x.name ?? x.clusterName ?? '',
      Buffer.from(encodeResource(typeUrl, x).value).toString('hex'),
    ]),
  );
}

function served(src: TranslationSource, i: ProxyInfo, typeUrl: string): Map<string, string> {
  const set = src.resources(i, typeUrl, undefined);
  return new Map([...set.resources].map(([n, r]) => [n, Buffer.from(r.value).toString('hex')]));
}

const TYPES = [
  TYPE_URL.Listener,
  TYPE_URL.RouteConfiguration,
  TYPE_URL.Cluster,
  TYPE_URL.ClusterLoadAssignment,
];

test('every sidecar gets exactly what direct translation gives it; outbound parts are built once per scope', () => {
  const snap = buildSnapshot(BASE, { version: '1' });
  const src = new TranslationSource();
  src.setSnapshot(snap);
  const proxies = [
    info('details-0', '10.0.0.1', 'details'),
    info('reviews-0', '10.0.0.2', 'reviews'),
    info('ratings-0', '10.0.0.3', 'ratings'),
  ];
  for (const p of proxies)
    for (const t of TYPES) assert.deepEqual(served(src, p, t), direct(snap, p, t), `${p.id} ${t}`);
  // Three proxies of one scope: each type's shared part built once, reused twice.
  assert.equal(src.stats.sharedBuilds, TYPES.length);
  assert.equal(src.stats.sharedHits, TYPES.length * 2);
  // Their inbound parts differ, so their listener and cluster versions differ.
  const v = (p: ProxyInfo, t: string) => src.resources(p, t, undefined).version;
  assert.notEqual(v(proxies[0]!, TYPE_URL.Cluster), v(proxies[1]!, TYPE_URL.Cluster));
  assert.equal(
    v(proxies[0]!, TYPE_URL.RouteConfiguration),
    v(proxies[1]!, TYPE_URL.RouteConfiguration),
  );
});

test('labels split scopes only when a selector looks at them', () => {
  const plain = buildSnapshot(BASE, { version: '1' });
  const keys = selectorLabelKeys(plain);
  assert.deepEqual(keys, []);
  const withSelector = buildSnapshot(
    [
      ...BASE,
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: { name: 'details', namespace: 'default' },
        spec: {
          workloadSelector: { labels: { app: 'details' } },
          egress: [{ hosts: ['./details.default.svc.cluster.local'] }],
        },
      },
    ],
    { version: '2' },
  );
  assert.deepEqual(selectorLabelKeys(withSelector), ['app']);
  const src = new TranslationSource();
  src.setSnapshot(withSelector);
  const d = info('details-0', '10.0.0.1', 'details');
  const r = info('reviews-0', '10.0.0.2', 'reviews');
  for (const p of [d, r])
    for (const t of TYPES)
      assert.deepEqual(served(src, p, t), direct(withSelector, p, t), `${p.id} ${t}`);
  const proxyOf = (i: ProxyInfo) => {
    const x = proxyFromNode({ id: i.nodeId, metadata: i.metadata });
    assert.ok(x.ok);
    return x.value;
  };
  assert.notEqual(scopeKey(proxyOf(d), ['app']), scopeKey(proxyOf(r), ['app']));
});

test('an endpoint-only change moves the EDS version and keeps the others', () => {
  const src = new TranslationSource();
  const s1 = buildSnapshot(BASE, { version: '1' });
  src.setSnapshot(s1);
  const p = info('details-0', '10.0.0.1', 'details');
  const before = new Map(TYPES.map((t) => [t, src.resources(p, t, undefined).version]));
  const moved = BASE.map((o) =>
    o.metadata.name === 'ratings-0'
      ? { ...o, status: { podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] } }
      : o,
  );
  const s2 = buildSnapshot(moved, { version: '2' }, s1);
  src.setSnapshot(s2, true);
  for (const t of [TYPE_URL.Listener, TYPE_URL.RouteConfiguration, TYPE_URL.Cluster])
    assert.equal(src.resources(p, t, undefined).version, before.get(t), t);
  assert.notEqual(
    src.resources(p, TYPE_URL.ClusterLoadAssignment, undefined).version,
    before.get(TYPE_URL.ClusterLoadAssignment),
  );
  assert.deepEqual(
    served(src, p, TYPE_URL.ClusterLoadAssignment),
    direct(s2, p, TYPE_URL.ClusterLoadAssignment),
  );
});
