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
import { TranslationSource, scopeKey, selectorLabelKeys, specialNamespaces } from '../src/index.js';

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
  src.setSnapshot(s2, {
    endpointsOnly: true,
    endpointHosts: ['ratings.default.svc.cluster.local'],
  });
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

test('an endpoint-only change is an increment naming only the changed load assignments', () => {
  const src = new TranslationSource();
  const s1 = buildSnapshot(BASE, { version: '1' });
  src.setSnapshot(s1);
  const p = info('details-0', '10.0.0.1', 'details');
  const v1 = src.resources(p, TYPE_URL.ClusterLoadAssignment, undefined);
  const moved = BASE.map((o) =>
    o.metadata.name === 'ratings-0'
      ? { ...o, status: { podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] } }
      : o,
  );
  const s2 = buildSnapshot(moved, { version: '2' }, s1);
  src.setSnapshot(s2, {
    endpointsOnly: true,
    endpointHosts: ['ratings.default.svc.cluster.local'],
  });
  const v2 = src.resources(p, TYPE_URL.ClusterLoadAssignment, undefined);
  assert.deepEqual(v2.incremental?.from, v1.version);
  assert.deepEqual(
    [...(v2.incremental?.changed ?? [])],
    ['outbound|9080||ratings.default.svc.cluster.local'],
  );
  assert.deepEqual(
    served(src, p, TYPE_URL.ClusterLoadAssignment),
    direct(s2, p, TYPE_URL.ClusterLoadAssignment),
  );
  // Two endpoint-only changes in a row (nothing asked in between) still end up exact.
  const s3 = buildSnapshot(
    moved.map((o) =>
      o.metadata.name === 'details-0'
        ? { ...o, status: { podIP: '10.0.0.8', conditions: [{ type: 'Ready', status: 'True' }] } }
        : o,
    ),
    { version: '3' },
    s2,
  );
  src.setSnapshot(s3, {
    endpointsOnly: true,
    endpointHosts: ['details.default.svc.cluster.local'],
  });
  const back = buildSnapshot(BASE, { version: '4' }, s3);
  src.setSnapshot(back, {
    endpointsOnly: true,
    endpointHosts: ['details.default.svc.cluster.local', 'ratings.default.svc.cluster.local'],
  });
  assert.deepEqual(
    served(src, p, TYPE_URL.ClusterLoadAssignment),
    direct(back, p, TYPE_URL.ClusterLoadAssignment),
  );
});

test('after an endpoint-only change the proxies of a scope are handed one set, exact for each', () => {
  const src = new TranslationSource();
  const s1 = buildSnapshot(BASE, { version: '1' });
  src.setSnapshot(s1);
  const a = info('details-0', '10.0.0.1', 'details');
  const b = info('reviews-0', '10.0.0.2', 'reviews');
  const c = info('ratings-0', '10.0.0.3', 'ratings');
  const before = [a, b, c].map((i) => src.resources(i, TYPE_URL.ClusterLoadAssignment, undefined));
  assert.equal(before[0], before[1]);
  // ratings-0 moves: its service's endpoints change, and its own workload changed too.
  const moved = BASE.map((o) =>
    o.metadata.name === 'ratings-0'
      ? { ...o, status: { podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] } }
      : o,
  );
  const s2 = buildSnapshot(moved, { version: '2' }, s1);
  src.setSnapshot(s2, {
    endpointsOnly: true,
    endpointHosts: ['ratings.default.svc.cluster.local'],
    workloads: [{ namespace: 'default', name: 'ratings-0' }],
  });
  const after = [a, b, c].map((i) => src.resources(i, TYPE_URL.ClusterLoadAssignment, undefined));
  assert.equal(after[0], after[1]);
  assert.notEqual(after[0], before[0]);
  assert.equal(after[0]?.incremental?.from, before[0]?.version);
  for (const i of [a, b, c])
    assert.deepEqual(
      served(src, i, TYPE_URL.ClusterLoadAssignment),
      direct(s2, i, TYPE_URL.ClusterLoadAssignment),
    );
});

test('versions follow content: a route change leaves clusters and endpoints at their version', () => {
  const src = new TranslationSource();
  const s1 = buildSnapshot(BASE, { version: '1' });
  src.setSnapshot(s1);
  const p = info('details-0', '10.0.0.1', 'details');
  const before = new Map(TYPES.map((t) => [t, src.resources(p, t, undefined).version]));
  const changed = BASE.map((o) =>
    o.kind === 'VirtualService'
      ? {
          ...o,
          spec: {
            hosts: ['reviews'],
            http: [{ timeout: '5s', route: [{ destination: { host: 'reviews' } }] }],
          },
        }
      : o,
  );
  const s2 = buildSnapshot(changed, { version: '2' }, s1);
  src.setSnapshot(s2);
  for (const t of [TYPE_URL.Listener, TYPE_URL.Cluster, TYPE_URL.ClusterLoadAssignment])
    assert.equal(src.resources(p, t, undefined).version, before.get(t), t);
  assert.notEqual(
    src.resources(p, TYPE_URL.RouteConfiguration, undefined).version,
    before.get(TYPE_URL.RouteConfiguration),
  );
  for (const t of TYPES) assert.deepEqual(served(src, p, t), direct(s2, p, t), t);
});

test('a VirtualService change rebuilds routes and listeners only, and stays exact', () => {
  const src = new TranslationSource();
  const s1 = buildSnapshot(BASE, { version: '1' });
  src.setSnapshot(s1);
  const p = info('details-0', '10.0.0.1', 'details');
  for (const t of TYPES) src.resources(p, t, undefined);
  const builds = src.stats.generated.get(TYPE_URL.Cluster);
  const changed = BASE.map((o) =>
    o.kind === 'VirtualService'
      ? {
          ...o,
          spec: {
            hosts: ['reviews'],
            http: [{ timeout: '7s', route: [{ destination: { host: 'reviews' } }] }],
          },
        }
      : o,
  );
  const s2 = buildSnapshot(changed, { version: '2' }, s1);
  src.setSnapshot(s2, { kinds: ['VirtualService'] });
  for (const t of TYPES) assert.deepEqual(served(src, p, t), direct(s2, p, t), t);
  assert.equal(src.stats.generated.get(TYPE_URL.Cluster), builds, 'no cluster was generated again');
  // With a Sidecar in the mesh, VirtualServices shape the scope: clusters are rebuilt.
  const withSidecar: KubeObject[] = [
    ...changed,
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: 'default' },
      spec: { egress: [{ hosts: ['./*'] }] },
    },
  ];
  const s3 = buildSnapshot(withSidecar, { version: '3' }, s2);
  src.setSnapshot(s3, { kinds: ['Sidecar'] });
  for (const t of TYPES) assert.deepEqual(served(src, p, t), direct(s3, p, t), t);
  const s4 = buildSnapshot(
    withSidecar.map((o) => o),
    { version: '4' },
    s3,
  );
  const before = src.stats.generated.get(TYPE_URL.Cluster);
  src.setSnapshot(s4, { kinds: ['VirtualService'] });
  for (const t of TYPES) assert.deepEqual(served(src, p, t), direct(s4, p, t), t);
  assert.ok((src.stats.generated.get(TYPE_URL.Cluster) ?? 0) > (before ?? 0));
});

test('namespaces with nothing of their own share clusters; one with a foreign DestinationRule does not', () => {
  const inNs = (o: KubeObject, ns: string): KubeObject => ({
    ...o,
    metadata: { ...o.metadata, namespace: ns },
  });
  const objects: KubeObject[] = [
    ...BASE,
    inNs(service('shop'), 'other'),
    inNs(pod('shop-0', 'shop', '10.0.1.1'), 'other'),
    inNs(service('cart'), 'third'),
    inNs(pod('cart-0', 'cart', '10.0.2.1'), 'third'),
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews-from-third', namespace: 'third' },
      spec: {
        host: 'reviews.default.svc.cluster.local',
        trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } },
      },
    },
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  assert.deepEqual([...(specialNamespaces(snap) ?? [])], ['third']);
  const src = new TranslationSource();
  src.setSnapshot(snap);
  const at = (podName: string, ns: string, ip: string, app: string): ProxyInfo => {
    const r = parseProxyInfo({
      id: `sidecar~${ip}~${podName}.${ns}~${ns}.svc.cluster.local`,
      metadata: { NAMESPACE: ns, LABELS: { app, version: 'v1' } },
    });
    assert.ok(r.ok);
    return r.value;
  };
  const proxies = [
    info('details-0', '10.0.0.1', 'details'),
    at('shop-0', 'other', '10.0.1.1', 'shop'),
    at('cart-0', 'third', '10.0.2.1', 'cart'),
  ];
  for (const p of proxies)
    for (const t of TYPES) assert.deepEqual(served(src, p, t), direct(snap, p, t), `${p.id} ${t}`);
  const cds = (p: ProxyInfo) => src.resources(p, TYPE_URL.Cluster, undefined).groups?.[0];
  assert.equal(
    cds(proxies[0]!),
    cds(proxies[1]!),
    'default and other share their outbound clusters',
  );
  assert.notEqual(cds(proxies[0]!), cds(proxies[2]!));
});

test('the config dump of a proxy is what it was served, translated again (no JSON kept)', () => {
  const snap = buildSnapshot(BASE, { version: '1' });
  const src = new TranslationSource();
  src.setSnapshot(snap);
  const p = info('reviews-0', '10.0.0.2', 'reviews');
  assert.equal(src.generatedFor(p.nodeId), undefined);
  for (const t of TYPES) src.resources(p, t, undefined);
  const dump = src.generatedFor(p.nodeId);
  assert.ok(dump);
  assert.equal(dump.version, src.resources(p, TYPE_URL.ClusterLoadAssignment, undefined).version);
  for (const t of TYPES) {
    const json: readonly { name?: string; clusterName?: string }[] = dump.byType.get(t) ?? [];
    const dumped = new Map<string, string>(
      json.map((x) => [
        x.name ?? x.clusterName ?? '',
        Buffer.from(encodeResource(t, x).value).toString('hex'),
      ]),
    );
    assert.deepEqual(dumped, served(src, p, t), t);
  }
  src.forget(p.nodeId);
  assert.equal(src.generatedFor(p.nodeId), undefined);
});

test('a resource that cannot be encoded is left out and reported; the rest of its type still goes out', () => {
  // A VirtualService the API refuses now (HTTP status 600) but that is in the store, e.g. from
  // before the check: its route configuration cannot be encoded.
  const snap = buildSnapshot(
    [
      ...BASE,
      // On its own port: its route configuration ("9090") is not the others' ("9080").
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'legacy', namespace: 'default' },
        spec: { selector: { app: 'legacy' }, ports: [{ name: 'http', port: 9090 }] },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'legacy', namespace: 'default' },
        spec: { hosts: ['legacy'], http: [{ directResponse: { status: 600 } }] },
      },
    ],
    { version: '1' },
  );
  const src = new TranslationSource();
  const errors: string[] = [];
  src.onEncodeError = (m) => errors.push(m);
  src.setSnapshot(snap);
  const p = info('details-0', '10.0.0.1', 'details');
  for (const t of TYPES) assert.ok(src.resources(p, t, undefined).resources.size > 0, t);
  const routes = src.resources(p, TYPE_URL.RouteConfiguration, undefined).resources;
  assert.ok(routes.has('9080'), 'the others are served');
  assert.ok(!routes.has('9090'), 'the broken one is left out');
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(
    errors[0] ?? '',
    /^cannot encode RouteConfiguration "9090", left out of the push: .*600/,
  );
  // Reported once per snapshot, however many proxies ask.
  src.resources(info('reviews-0', '10.0.0.2', 'reviews'), TYPE_URL.RouteConfiguration, undefined);
  assert.equal(errors.length, 1);
});
