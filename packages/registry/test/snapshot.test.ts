// The push snapshot: immutability, purity, resolved VirtualServices, the gateway and host
// indexes, Gateways by selector, policies, and reuse of an unchanged registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@trellis/api';
import { buildSnapshot } from '../src/index.js';
import { istio, loadSample, obj, withPods } from './fixtures.js';

const bookinfo = (): KubeObject[] => [
  ...withPods(loadSample('bookinfo/platform/kube/bookinfo.yaml')),
  ...loadSample('bookinfo/networking/bookinfo-gateway.yaml'),
  ...loadSample('bookinfo/networking/destination-rule-all.yaml'),
  ...loadSample('bookinfo/networking/virtual-service-all-v1.yaml'),
];

test('snapshot: everything is deep-frozen, inputs included', () => {
  const objects = bookinfo();
  const snap = buildSnapshot(objects, { version: 'v7' });
  assert.equal(snap.version, 'v7');
  assert.ok(Object.isFrozen(snap));
  assert.ok(Object.isFrozen(objects[0]) && Object.isFrozen(objects[0]?.metadata));
  const svc = snap.services[0]!;
  assert.throws(() => {
    (svc as { hostname: string }).hostname = 'x';
  }, TypeError);
  assert.throws(() => {
    (svc.ports as unknown[]).push({});
  }, TypeError);
  assert.throws(() => {
    (snap.services as unknown[]).pop();
  }, TypeError);
  assert.throws(() => {
    (snap as unknown as { version: string }).version = 'x';
  }, TypeError);
  const vs = snap.virtualServices[0]!;
  assert.throws(() => {
    (vs.spec.http as unknown[]).length = 0;
  }, TypeError);
  const ep = snap.endpoints(svc)[0]!;
  assert.throws(() => {
    (ep.labels as Record<string, string>).version = 'evil';
  }, TypeError);
  assert.ok(Object.isFrozen(snap.servicesVisibleFrom('default')));
  assert.ok(Object.isFrozen(snap.virtualServicesForGateway('default')));
  const dr = snap.destinationRule('default', 'reviews.default.svc.cluster.local')!;
  assert.ok(Object.isFrozen(dr) && Object.isFrozen(dr.spec));
});

test('snapshot: pure: the same objects give the same snapshot', () => {
  const a = buildSnapshot(bookinfo(), { version: '1' });
  const b = buildSnapshot(bookinfo().reverse(), { version: '1' });
  assert.deepEqual(a.services, b.services);
  assert.deepEqual(a.virtualServices, b.virtualServices);
  assert.deepEqual(
    a.services.map((s) => a.endpoints(s)),
    b.services.map((s) => b.endpoints(s)),
  );
  assert.deepEqual(a.objects, b.objects);
});

test('snapshot: VirtualServices have hosts, destinations and gateways resolved', () => {
  const snap = buildSnapshot(bookinfo(), { version: '1' });
  const reviews = snap.virtualService('default', 'reviews')!;
  assert.deepEqual(reviews.hosts, ['reviews.default.svc.cluster.local']);
  assert.deepEqual(reviews.gateways, ['mesh']);
  assert.equal(
    reviews.spec.http?.[0]?.route?.[0]?.destination.host,
    'reviews.default.svc.cluster.local',
  );
  assert.equal(reviews.raw.http?.[0]?.route?.[0]?.destination.host, 'reviews');
  assert.deepEqual(reviews.raw.hosts, ['reviews']);
  const gw = snap.virtualService('default', 'bookinfo')!;
  assert.deepEqual(gw.hosts, ['*']);
  assert.deepEqual(gw.gateways, ['default/bookinfo-gateway']);
  assert.deepEqual(gw.spec.gateways, ['default/bookinfo-gateway']);
});

test('snapshot: VirtualServices by gateway and by host, with exportTo', () => {
  const snap = buildSnapshot(
    [
      ...bookinfo(),
      istio('VirtualService', 'team', 'private', {
        hosts: ['ratings.default.svc.cluster.local'],
        exportTo: ['.'],
        http: [{ route: [{ destination: { host: 'ratings.default.svc.cluster.local' } }] }],
      }),
      istio('VirtualService', 'team', 'delegate', {
        http: [{ route: [{ destination: { host: 'ratings' } }] }],
      }),
      istio('VirtualService', 'team', 'both', {
        hosts: ['both.example.com'],
        gateways: ['mesh', 'istio-system/edge'],
        http: [{ route: [{ destination: { host: 'both.example.com' } }] }],
      }),
    ],
    { version: '1' },
  );
  const names = (list: readonly { namespace: string; name: string }[]) =>
    list.map((v) => `${v.namespace}/${v.name}`);
  // Public ones, oldest first, then by name (none has a creation time here).
  assert.deepEqual(names(snap.virtualServicesForGateway('default')), [
    'team/both',
    'default/details',
    'default/productpage',
    'default/ratings',
    'default/reviews',
  ]);
  assert.deepEqual(names(snap.virtualServicesForGateway('team')).slice(0, 1), ['team/private']);
  assert.deepEqual(
    names(snap.virtualServicesForGateway('istio-system', 'default/bookinfo-gateway')),
    ['default/bookinfo'],
  );
  assert.deepEqual(names(snap.virtualServicesForGateway('istio-system', 'istio-system/edge')), [
    'team/both',
  ]);
  assert.deepEqual(
    names(snap.virtualServicesForHost('ratings.default.svc.cluster.local', 'team')),
    ['team/private', 'default/ratings'],
  );
  assert.deepEqual(
    names(snap.virtualServicesForHost('ratings.default.svc.cluster.local', 'default')),
    ['default/ratings'],
  );
  // A delegate is reachable by name only.
  assert.equal(snap.virtualService('team', 'delegate')?.isDelegate, true);
  assert.ok(!names(snap.virtualServicesForGateway('team')).includes('team/delegate'));
});

test('snapshot: Gateways by the labels of the gateway workload', () => {
  const objects = [
    ...bookinfo(),
    istio('Gateway', 'istio-system', 'edge', {
      selector: { istio: 'edge' },
      servers: [
        {
          port: { number: 443, name: 'https', protocol: 'HTTPS' },
          hosts: ['*'],
          tls: { mode: 'SIMPLE', credentialName: 'edge-cert' },
        },
      ],
    }),
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const names = (ns: string, labels: Record<string, string>) =>
    snap.gatewaysFor(ns, labels).map((g) => g.ref);
  assert.deepEqual(names('istio-system', { istio: 'ingressgateway', app: 'x' }), [
    'default/bookinfo-gateway',
  ]);
  assert.deepEqual(names('istio-system', { istio: 'edge' }), ['istio-system/edge']);
  assert.deepEqual(names('istio-system', { app: 'reviews' }), []);
  assert.equal(snap.gateway('default/bookinfo-gateway')?.name, 'bookinfo-gateway');
  const scoped = buildSnapshot(objects, { version: '1', scopeGatewayToNamespace: true });
  assert.deepEqual(
    scoped.gatewaysFor('istio-system', { istio: 'ingressgateway' }).map((g) => g.ref),
    [],
  );
});

test('snapshot: policies of the root namespace and of the workload namespace', () => {
  const sec = (kind: string, ns: string, name: string) =>
    obj('security.istio.io/v1', kind, ns, name, {});
  const snap = buildSnapshot(
    [
      sec('PeerAuthentication', 'istio-system', 'mesh'),
      sec('PeerAuthentication', 'default', 'ns'),
      sec('PeerAuthentication', 'other', 'other'),
      sec('AuthorizationPolicy', 'default', 'deny'),
      obj('telemetry.istio.io/v1', 'Telemetry', 'istio-system', 'mesh-default', {}),
      obj('v1', 'Secret', 'istio-system', 'edge-cert', undefined),
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'default', labels: { 'istio-injection': 'enabled' } },
      },
    ],
    { version: '1' },
  );
  const names = (kind: Parameters<typeof snap.policies>[0], ns: string) =>
    snap.policies(kind, ns).map((p) => `${p.namespace}/${p.name}`);
  assert.deepEqual(names('PeerAuthentication', 'default'), ['istio-system/mesh', 'default/ns']);
  assert.deepEqual(names('PeerAuthentication', 'istio-system'), ['istio-system/mesh']);
  assert.deepEqual(names('AuthorizationPolicy', 'default'), ['default/deny']);
  assert.deepEqual(names('Telemetry', 'x'), ['istio-system/mesh-default']);
  assert.deepEqual(names('RequestAuthentication', 'default'), []);
  assert.equal(snap.secret('istio-system', 'edge-cert')?.metadata.name, 'edge-cert');
  assert.equal(snap.namespace('default')?.metadata.labels?.['istio-injection'], 'enabled');
});

test('snapshot: an unchanged registry is reused; a changed one is rebuilt', () => {
  const objects = bookinfo();
  const first = buildSnapshot(objects, { version: '1' });
  const vsChanged = [
    ...objects,
    istio('VirtualService', 'default', 'extra', { hosts: ['x.example.com'], http: [] }),
  ];
  const second = buildSnapshot(vsChanged, { version: '2' }, first);
  assert.equal(second.registry, first.registry);
  assert.equal(second.virtualServices.length, first.virtualServices.length + 1);
  const podGone = objects.filter((o) => o.metadata.name !== 'reviews-v3-0');
  const third = buildSnapshot(podGone, { version: '3' }, second);
  assert.notEqual(third.registry, second.registry);
  assert.equal(
    third.endpoints({ hostname: 'reviews.default.svc.cluster.local', namespace: 'default' }).length,
    2,
  );
});

test('snapshot: malformed objects are skipped, never fatal', () => {
  const snap = buildSnapshot(
    [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'odd', namespace: 'default' },
        spec: { ports: 'x', selector: 7 },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', namespace: 'default' },
        spec: null,
        status: 'x',
      },
      istio('ServiceEntry', 'default', 'se', {
        hosts: [1, 'ok.example.com'],
        ports: [{ number: 'x' }],
        endpoints: 'x',
      }),
      istio('VirtualService', 'default', 'vs', { hosts: 'x', http: 3 }),
      istio('DestinationRule', 'default', 'dr', { host: 3, subsets: 'x' }),
    ] as KubeObject[],
    { version: '1' },
  );
  assert.deepEqual(
    snap.services.map((s) => s.hostname),
    ['odd.default.svc.cluster.local', 'ok.example.com'],
  );
  assert.equal(snap.virtualServices.length, 1);
});
