// Which DestinationRule applies: client namespace, then the service's namespace (exported),
// then the root namespace; most specific host within a namespace; merging of rules for one
// host; workload selectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from '../src/index.js';
import { istio, loadSample, service, withPods } from './fixtures.js';

const dr = (ns: string, name: string, spec: Record<string, unknown>, created?: string) =>
  istio('DestinationRule', ns, name, spec, created ? { creationTimestamp: created } : {});

const reviews = 'reviews.default.svc.cluster.local';
const svc = service('reviews', 'default', {
  clusterIP: '10.0.0.1',
  ports: [{ name: 'http', port: 9080 }],
});

/** The name of the rule that applies (`namespace/name`), or 'none'. */
function applied(
  objects: Parameters<typeof buildSnapshot>[0],
  from: string,
  host = reviews,
): string {
  const r = buildSnapshot(objects, { version: '1' }).destinationRule(from, host);
  return r ? `${r.rule.namespace}/${r.rule.name}` : 'none';
}

test('destination rule: client namespace, then service namespace, then root namespace', () => {
  const client = dr('client', 'in-client', { host: reviews });
  const owner = dr('default', 'in-service-ns', { host: 'reviews' });
  const root = dr('istio-system', 'in-root', { host: '*.svc.cluster.local' });
  assert.equal(applied([svc, client, owner, root], 'client'), 'client/in-client');
  assert.equal(applied([svc, owner, root], 'client'), 'default/in-service-ns');
  assert.equal(applied([svc, root], 'client'), 'istio-system/in-root');
  assert.equal(applied([svc], 'client'), 'none');
  // The client's own namespace wins even with a less specific host.
  const broad = dr('client', 'broad', { host: '*.svc.cluster.local' });
  assert.equal(applied([svc, broad, owner], 'client'), 'client/broad');
  // A rule private to the service's namespace is not seen from elsewhere.
  const priv = dr('default', 'private', { host: 'reviews', exportTo: ['.'] });
  assert.equal(applied([svc, priv, root], 'client'), 'istio-system/in-root');
  assert.equal(applied([svc, priv, root], 'default'), 'default/private');
  // Exported to a list of namespaces.
  const listed = dr('default', 'listed', { host: 'reviews', exportTo: ['client'] });
  assert.equal(applied([svc, listed, root], 'client'), 'default/listed');
  assert.equal(applied([svc, listed, root], 'third'), 'istio-system/in-root');
  // A private rule of the root namespace applies only to the root namespace's own proxies.
  const rootPrivate = dr('istio-system', 'root-private', { host: reviews, exportTo: ['.'] });
  assert.equal(applied([svc, rootPrivate], 'client'), 'none');
  assert.equal(applied([svc, rootPrivate], 'istio-system'), 'istio-system/root-private');
});

test('destination rule: the most specific host wins within a namespace', () => {
  const rules = [
    svc,
    dr('default', 'all', { host: '*' }),
    dr('default', 'cluster', { host: '*.svc.cluster.local' }),
    dr('default', 'ns', { host: '*.default.svc.cluster.local' }),
    dr('default', 'exact', { host: reviews }),
  ];
  assert.equal(applied(rules, 'default'), 'default/exact');
  assert.equal(applied(rules, 'default', 'ratings.default.svc.cluster.local'), 'default/ns');
  assert.equal(applied(rules, 'default', 'ratings.x.svc.cluster.local'), 'default/cluster');
  assert.equal(applied(rules, 'default', 'www.google.com'), 'default/all');
  assert.equal(applied(rules, 'elsewhere', 'www.google.com'), 'none');
});

test('destination rule: rules for one host merge subsets; the first traffic policy wins', () => {
  const snap = buildSnapshot(
    [
      svc,
      dr(
        'default',
        'second',
        {
          host: 'reviews',
          trafficPolicy: { loadBalancer: { simple: 'RANDOM' } },
          subsets: [
            { name: 'v2', labels: { version: 'v2' } },
            { name: 'v1', labels: { version: 'other' } },
          ],
        },
        '2024-02-01T00:00:00Z',
      ),
      dr(
        'default',
        'first',
        { host: reviews, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
        '2024-01-01T00:00:00Z',
      ),
    ],
    { version: '1' },
  );
  const r = snap.destinationRule('default', reviews)!;
  assert.equal(r.rule.name, 'first');
  assert.equal(r.host, reviews);
  assert.deepEqual(
    r.from.map((f) => f.name),
    ['first', 'second'],
  );
  assert.deepEqual(r.spec.subsets, [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v2', labels: { version: 'v2' } },
  ]);
  assert.deepEqual(r.spec.trafficPolicy, { loadBalancer: { simple: 'RANDOM' } });
  assert.deepEqual(
    snap.problems.map((p) => `${p.object.name}: ${p.message}`),
    [
      `second: subset v1 of host ${reviews} is ignored: DestinationRule default/first already defines it`,
    ],
  );
  // The stored rules are untouched.
  assert.equal(snap.destinationRules.find((d) => d.name === 'first')?.spec.subsets?.length, 1);
});

test('destination rule: a workloadSelector rule applies to matching clients of its namespace', () => {
  const objects = [
    svc,
    dr('default', 'catch-all', { host: reviews }, '2024-01-01T00:00:00Z'),
    dr(
      'default',
      'for-productpage',
      { host: reviews, workloadSelector: { matchLabels: { app: 'productpage' } } },
      '2024-02-01T00:00:00Z',
    ),
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const pick = (ns: string, labels: Record<string, string>) =>
    snap.destinationRule(ns, reviews, { clientLabels: labels })?.rule.name ?? 'none';
  assert.equal(pick('default', { app: 'productpage', version: 'v1' }), 'for-productpage');
  assert.equal(pick('default', { app: 'ratings' }), 'catch-all');
  assert.equal(pick('default', {}), 'catch-all');
  // From another namespace the selector rule is invisible (it is never exported).
  assert.equal(pick('other', { app: 'productpage' }), 'catch-all');
  assert.equal(snap.destinationRuleEntries('default', reviews).length, 2);
});

test('destination rule: bookinfo destination-rule-all subsets per service', () => {
  const objects = [
    ...withPods(loadSample('bookinfo/platform/kube/bookinfo.yaml')),
    ...loadSample('bookinfo/networking/destination-rule-all.yaml'),
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const subsets = (host: string) =>
    snap
      .destinationRule('default', `${host}.default.svc.cluster.local`)
      ?.spec.subsets?.map((s) => s.name);
  assert.deepEqual(subsets('reviews'), ['v1', 'v2', 'v3']);
  assert.deepEqual(subsets('ratings'), ['v1', 'v2', 'v2-mysql', 'v2-mysql-vm']);
  assert.deepEqual(subsets('productpage'), ['v1']);
  // Clients elsewhere see the rules too (exported by default).
  assert.deepEqual(
    snap.destinationRule('istio-system', reviews)?.spec.subsets?.map((s) => s.name),
    ['v1', 'v2', 'v3'],
  );
});
