// Change classification: endpoint-only changes (Pod readiness or IP, WorkloadEntry address,
// EndpointSlices) push EDS only; anything else is full; each change names the namespaces
// (and proxy types) that see it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@trellis/api';
import { affectsProxy, buildSnapshot, diffSnapshots, type ProxyView } from '../src/index.js';
import { istio, loadSample, pod, service, withPods } from './fixtures.js';

const base = (): KubeObject[] => [
  ...withPods(loadSample('bookinfo/platform/kube/bookinfo.yaml')),
  ...loadSample('bookinfo/networking/destination-rule-all.yaml'),
];

/** Diff of `before` → `after` (objects), each built into a snapshot. */
function diff(before: KubeObject[], after: KubeObject[]) {
  const a = buildSnapshot(before, { version: '1' });
  const b = buildSnapshot(after, { version: '2' }, a);
  return diffSnapshots(a, b);
}

/** Replaces the object named `name` (of `kind`) through `f`. */
function change(
  objects: KubeObject[],
  kind: string,
  name: string,
  f: (o: KubeObject) => KubeObject,
) {
  return objects.map((o) => (o.kind === kind && o.metadata.name === name ? f(o) : o));
}

const sidecarIn = (namespace: string): ProxyView => ({ namespace, type: 'sidecar' });

test('diff: nothing changed', () => {
  const objects = base();
  const d = diff(objects, objects);
  assert.equal(d.scope, 'none');
  assert.deepEqual(d.changed, []);
  // A copy of an object with the same resourceVersion is the same object.
  const a = [
    service(
      'x',
      'default',
      { clusterIP: '10.0.0.1', ports: [{ port: 80 }] },
      { resourceVersion: '5' },
    ),
  ];
  const b = [
    service(
      'x',
      'default',
      { clusterIP: '10.0.0.1', ports: [{ port: 80 }] },
      { resourceVersion: '5' },
    ),
  ];
  assert.equal(diff(a, b).scope, 'none');
  assert.equal(affectsProxy(diff(a, b), sidecarIn('default')), 'none');
});

test('diff: pod readiness is endpoint-only', () => {
  const before = base();
  const after = change(before, 'Pod', 'reviews-v2-0', (o) => ({
    ...o,
    status: { ...(o.status as object), conditions: [{ type: 'Ready', status: 'False' }] },
  }));
  const d = diff(before, after);
  assert.equal(d.scope, 'eds');
  assert.deepEqual(d.changed, [
    { type: 'MODIFIED', group: '', kind: 'Pod', namespace: 'default', name: 'reviews-v2-0' },
  ]);
  assert.deepEqual(d.services, []);
  assert.deepEqual(
    d.endpoints.map((e) => `${e.hostname} all=${e.audience.all}`),
    ['reviews.default.svc.cluster.local all=true'],
  );
  assert.deepEqual(d.workloads, [{ kind: 'Pod', namespace: 'default', name: 'reviews-v2-0' }]);
  assert.equal(affectsProxy(d, sidecarIn('other')), 'eds');
  assert.equal(affectsProxy(d, { namespace: 'istio-system', type: 'router' }), 'eds');
  // The pod's own proxy gets everything (its labels or identity may have changed).
  assert.equal(
    affectsProxy(d, {
      namespace: 'default',
      type: 'sidecar',
      workload: { kind: 'Pod', namespace: 'default', name: 'reviews-v2-0' },
    }),
    'full',
  );
});

test('diff: pod IP, a new replica and a removed pod are endpoint-only', () => {
  const before = base();
  const ip = change(before, 'Pod', 'ratings-v1-0', (o) => ({
    ...o,
    status: { ...(o.status as object), podIP: '10.9.9.9' },
  }));
  assert.equal(diff(before, ip).scope, 'eds');
  const replica = pod('ratings-v1-1', 'default', {
    labels: { app: 'ratings', version: 'v1' },
    ip: '10.9.9.8',
    serviceAccount: 'bookinfo-ratings',
  });
  const added = diff(before, [...before, replica]);
  assert.equal(added.scope, 'eds');
  assert.deepEqual(
    added.endpoints.map((e) => e.hostname),
    ['ratings.default.svc.cluster.local'],
  );
  const removed = diff(
    before,
    before.filter((o) => o.metadata.name !== 'reviews-v3-0'),
  );
  assert.equal(removed.scope, 'eds');
  assert.deepEqual(
    removed.changed.map((c) => c.type),
    ['DELETED'],
  );
  // Removing the last pod of an identity changes the service's identities: full.
  const last = diff(
    before,
    before.filter((o) => o.metadata.name !== 'details-v1-0'),
  );
  assert.equal(last.scope, 'full');
});

test('diff: a pod that brings a new identity to a service is a full change', () => {
  const before = base();
  const stranger = pod('ratings-x', 'default', {
    labels: { app: 'ratings', version: 'v9' },
    ip: '10.9.9.7',
    serviceAccount: 'someone-else',
  });
  const d = diff(before, [...before, stranger]);
  assert.equal(d.scope, 'full');
  assert.deepEqual(d.services, [
    { hostname: 'ratings.default.svc.cluster.local', namespace: 'default' },
  ]);
  assert.ok(d.sidecars.all);
});

test('diff: WorkloadEntry address and EndpointSlice changes are endpoint-only', () => {
  const se = istio('ServiceEntry', 'vms', 'db', {
    hosts: ['db.vms.example'],
    ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }],
    resolution: 'STATIC',
    workloadSelector: { labels: { app: 'db' } },
  });
  const we = (address: string) =>
    istio('WorkloadEntry', 'vms', 'db-1', { address, labels: { app: 'db' } });
  const d = diff([se, we('192.168.0.1')], [se, we('192.168.0.2')]);
  assert.equal(d.scope, 'eds');
  assert.deepEqual(
    d.endpoints.map((e) => e.hostname),
    ['db.vms.example'],
  );

  const svc = service('web', 'default', {
    clusterIP: '10.0.0.1',
    ports: [{ name: 'http', port: 80 }],
  });
  const slice = (address: string) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'web-1',
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': 'web' },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address] }],
    ports: [{ name: 'http', port: 8080 }],
  });
  const s = diff([svc, slice('10.1.0.1')], [svc, slice('10.1.0.2')]);
  assert.equal(s.scope, 'eds');
  assert.deepEqual(
    s.endpoints.map((e) => e.hostname),
    ['web.default.svc.cluster.local'],
  );
});

test('diff: a pod no service selects changes only its own proxy', () => {
  const before = base();
  const lonely = pod('lonely', 'default', { labels: { app: 'none' }, ip: '10.9.9.1' });
  const d = diff(before, [...before, lonely]);
  assert.equal(d.scope, 'eds');
  assert.deepEqual(d.endpoints, []);
  assert.equal(affectsProxy(d, sidecarIn('default')), 'none');
  assert.equal(
    affectsProxy(d, {
      ...sidecarIn('default'),
      workload: { kind: 'Pod', namespace: 'default', name: 'lonely' },
    }),
    'full',
  );
});

test('diff: config changes are full and reach the namespaces that see them', () => {
  const before = base();
  const vs = (exportTo?: string[]) =>
    istio('VirtualService', 'default', 'reviews', {
      hosts: ['reviews'],
      ...(exportTo ? { exportTo } : {}),
      http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
    });
  const pub = diff(before, [...before, vs()]);
  assert.equal(pub.scope, 'full');
  assert.ok(pub.sidecars.all && pub.routers.all);
  assert.equal(affectsProxy(pub, sidecarIn('anywhere')), 'full');

  const priv = diff(before, [...before, vs(['.'])]);
  assert.deepEqual(priv.sidecars, { all: false, namespaces: ['default'] });
  assert.equal(affectsProxy(priv, sidecarIn('default')), 'full');
  assert.equal(affectsProxy(priv, sidecarIn('other')), 'none');

  // Making it private reaches everyone who saw it before.
  const narrowed = diff([...before, vs()], [...before, vs(['.'])]);
  assert.ok(narrowed.sidecars.all);

  const sidecar = istio('Sidecar', 'team', 'default', { egress: [{ hosts: ['./*'] }] });
  assert.deepEqual(diff(before, [...before, sidecar]).sidecars, {
    all: false,
    namespaces: ['team'],
  });
  const rootSidecar = istio('Sidecar', 'istio-system', 'default', { egress: [{ hosts: ['./*'] }] });
  assert.ok(diff(before, [...before, rootSidecar]).sidecars.all);

  const dr = istio('DestinationRule', 'team', 'local', {
    host: 'reviews.default.svc.cluster.local',
    workloadSelector: { matchLabels: { app: 'x' } },
  });
  assert.deepEqual(diff(before, [...before, dr]).sidecars, { all: false, namespaces: ['team'] });
});

test('diff: Gateway changes reach gateway proxies only', () => {
  const before = base();
  const gw = loadSample('bookinfo/networking/bookinfo-gateway.yaml').filter(
    (o) => o.kind === 'Gateway',
  );
  const d = diff(before, [...before, ...gw]);
  assert.equal(d.scope, 'full');
  assert.deepEqual(d.sidecars, { all: false, namespaces: [] });
  assert.ok(d.routers.all);
  assert.equal(affectsProxy(d, sidecarIn('default')), 'none');
  assert.equal(affectsProxy(d, { namespace: 'istio-system', type: 'router' }), 'full');
});

test('diff: Service changes are full and reach the namespaces that see the service', () => {
  const before = base();
  const after = change(before, 'Service', 'details', (o) => ({
    ...o,
    metadata: { ...o.metadata, annotations: { 'networking.istio.io/exportTo': '.' } },
  }));
  const d = diff(before, after);
  assert.equal(d.scope, 'full');
  assert.deepEqual(d.services, [
    { hostname: 'details.default.svc.cluster.local', namespace: 'default' },
  ]);
  assert.ok(d.sidecars.all, 'it was public before');
  const ports = change(after, 'Service', 'details', (o) => ({
    ...o,
    spec: { ...(o.spec as object), ports: [{ port: 9081, name: 'http' }] },
  }));
  const p = diff(after, ports);
  assert.deepEqual(p.sidecars, { all: false, namespaces: ['default'] });
  assert.equal(affectsProxy(p, sidecarIn('other')), 'none');
});
