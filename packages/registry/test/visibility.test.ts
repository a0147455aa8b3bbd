// exportTo: which namespaces see services, ServiceEntries, VirtualServices and
// DestinationRules; the mesh defaults; and the visible-service lookups built on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot, isExportedTo, visibilityOf } from '../src/index.js';
import { istio, service } from './fixtures.js';

test('visibility: exportTo entries and defaults, as Istio reads them', () => {
  const see = (exportTo: string[], from: string, defaults = ['*']) =>
    isExportedTo(exportTo, 'own', from, defaults);
  assert.ok(see([], 'other'));
  assert.ok(see(['*'], 'other'));
  assert.ok(see(['*', '.'], 'other'));
  assert.ok(see(['.'], 'own'));
  assert.ok(!see(['.'], 'other'));
  assert.ok(see(['own'], 'own'));
  assert.ok(see(['a', 'b'], 'b'));
  assert.ok(!see(['a', 'b'], 'own'));
  assert.ok(!see(['~'], 'own'));
  assert.ok(!see(['~'], 'other'));
  // Defaults: only "." and "*" are honoured.
  assert.ok(see([], 'own', ['.']));
  assert.ok(!see([], 'other', ['.']));
  assert.ok(!see([], 'own', ['some-ns']));
  assert.deepEqual(visibilityOf(['*', 'x'], 'own', ['.']), { kind: 'public' });
});

test('visibility: services by exportTo, from the mesh default or annotations', () => {
  const objects = [
    service('public', 'a', { clusterIP: '10.0.0.1', ports: [{ port: 80 }] }),
    service(
      'private',
      'a',
      { clusterIP: '10.0.0.2', ports: [{ port: 80 }] },
      { annotations: { 'networking.istio.io/exportTo': '.' } },
    ),
    service(
      'to-b',
      'a',
      { clusterIP: '10.0.0.3', ports: [{ port: 80 }] },
      { annotations: { 'networking.istio.io/exportTo': 'b' } },
    ),
    istio('ServiceEntry', 'a', 'hidden', {
      hosts: ['hidden.example.com'],
      ports: [{ number: 80, name: 'http' }],
      exportTo: ['~'],
    }),
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const names = (ns: string) => snap.servicesVisibleFrom(ns).map((s) => s.name);
  assert.deepEqual(names('a'), ['private', 'public']);
  assert.deepEqual(names('b'), ['to-b', 'public']);
  assert.deepEqual(names('c'), ['public']);
  const hidden = snap.service('hidden.example.com', 'a')!;
  assert.ok(!snap.isVisible(hidden, 'a'));
  assert.ok(snap.isVisible(snap.service('to-b.a.svc.cluster.local', 'a')!, 'b'));
  assert.ok(!snap.isVisible(snap.service('to-b.a.svc.cluster.local', 'a')!, 'a'));

  // A private mesh default hides services without exportTo outside their namespace.
  const strict = buildSnapshot(objects, { version: '1', defaultServiceExportTo: ['.'] });
  assert.deepEqual(
    strict.servicesVisibleFrom('c').map((s) => s.name),
    [],
  );
  assert.deepEqual(
    strict.servicesVisibleFrom('a').map((s) => s.name),
    ['private', 'public'],
  );
});

test('visibility: configs by exportTo; Sidecars and policies by namespace or root', () => {
  const snap = buildSnapshot(
    [
      istio('VirtualService', 'a', 'vs-private', { hosts: ['x'], exportTo: ['.'], http: [] }),
      istio('VirtualService', 'a', 'vs-public', { hosts: ['y'], http: [] }),
      istio('DestinationRule', 'a', 'dr-selector', {
        host: 'x',
        workloadSelector: { matchLabels: { app: 'x' } },
      }),
      istio('DestinationRule', 'a', 'dr-b', { host: 'x', exportTo: ['b'] }),
      istio('ServiceEntry', 'a', 'se', { hosts: ['se.example.com'], exportTo: ['c'] }),
      istio('Sidecar', 'a', 'default', { egress: [{ hosts: ['./*'] }] }),
      istio('Sidecar', 'istio-system', 'default', { egress: [{ hosts: ['./*'] }] }),
    ],
    { version: '1' },
  );
  const vs = (name: string) => snap.virtualService('a', name)!;
  assert.ok(snap.isVisible(vs('vs-private'), 'a'));
  assert.ok(!snap.isVisible(vs('vs-private'), 'b'));
  assert.ok(snap.isVisible(vs('vs-public'), 'b'));
  const dr = (name: string) => snap.destinationRules.find((d) => d.name === name)!;
  assert.ok(snap.isVisible(dr('dr-selector'), 'a'));
  assert.ok(!snap.isVisible(dr('dr-selector'), 'b'));
  assert.ok(snap.isVisible(dr('dr-b'), 'b'));
  assert.ok(!snap.isVisible(dr('dr-b'), 'c'));
  assert.ok(snap.isVisible(snap.serviceEntries[0]!, 'c'));
  assert.ok(!snap.isVisible(snap.serviceEntries[0]!, 'a'));
  const sidecar = snap.sidecars.find((s) => s.namespace === 'a')!;
  assert.ok(snap.isVisible(sidecar, 'a') && !snap.isVisible(sidecar, 'b'));
  const root = snap.sidecars.find((s) => s.namespace === 'istio-system')!;
  assert.ok(snap.isVisible(root, 'anything'));
});

test('visibility: the service a namespace reaches for a shared host name', () => {
  const entry = (ns: string, created: string) =>
    istio(
      'ServiceEntry',
      ns,
      'api',
      { hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] },
      { creationTimestamp: created },
    );
  const snap = buildSnapshot(
    [
      entry('new', '2024-02-01T00:00:00Z'),
      entry('old', '2024-01-01T00:00:00Z'),
      istio(
        'ServiceEntry',
        'mine',
        'api',
        {
          hosts: ['api.example.com'],
          ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
          exportTo: ['.'],
        },
        { creationTimestamp: '2024-03-01T00:00:00Z' },
      ),
    ],
    { version: '1' },
  );
  // Private services of the namespace come first; otherwise the oldest public one.
  assert.equal(snap.serviceForHostname('api.example.com', 'mine')?.namespace, 'mine');
  assert.equal(snap.serviceForHostname('api.example.com', 'other')?.namespace, 'old');
  assert.equal(snap.serviceForHostname('nope.example.com', 'other'), undefined);
  assert.equal(snap.registry.servicesForHostname('api.example.com').length, 3);
});
