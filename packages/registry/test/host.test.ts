// Host names: Istio's short-name resolution, gateway references, wildcard matching and the
// most-specific-host rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareHostSpecificity,
  hostMatches,
  hostSubsetOf,
  kubeServiceHostname,
  mostSpecificHostMatch,
  resolveGatewayName,
  resolveShortName,
} from '../src/index.js';

test('host: short names resolve relative to the config namespace, as Istio does', () => {
  const table: [string, string, string | undefined, string][] = [
    ['reviews', 'default', undefined, 'reviews.default.svc.cluster.local'],
    ['reviews', 'bookinfo', undefined, 'reviews.bookinfo.svc.cluster.local'],
    ['reviews', 'default', 'example.org', 'reviews.default.svc.example.org'],
    // Istio completes only names without a dot: a partial name stays as written.
    ['reviews.bookinfo', 'default', undefined, 'reviews.bookinfo'],
    ['reviews.bookinfo.svc', 'default', undefined, 'reviews.bookinfo.svc'],
    ['reviews.default.svc.cluster.local', 'x', undefined, 'reviews.default.svc.cluster.local'],
    ['www.google.com', 'default', undefined, 'www.google.com'],
    ['*', 'default', undefined, '*'],
    ['*.example.com', 'default', undefined, '*.example.com'],
    ['10.1.2.3', 'default', undefined, '10.1.2.3'],
    ['::1', 'default', undefined, '::1'],
    ['', 'default', undefined, ''],
    // Empty parts are left out, as in Istio.
    ['reviews', '', undefined, 'reviews.svc.cluster.local'],
    ['reviews', 'default', '', 'reviews.default'],
  ];
  for (const [host, ns, suffix, want] of table)
    assert.equal(resolveShortName(host, ns, suffix), want, `${host} in ${ns}`);
  assert.equal(kubeServiceHostname('reviews', 'default'), 'reviews.default.svc.cluster.local');
});

test('host: gateway references resolve to namespace/name', () => {
  const table: [string, string][] = [
    ['mesh', 'mesh'],
    ['bookinfo-gateway', 'default/bookinfo-gateway'],
    ['./bookinfo-gateway', 'default/bookinfo-gateway'],
    ['istio-system/ingress', 'istio-system/ingress'],
    ['ingress.istio-system.svc.cluster.local', 'istio-system/ingress'],
    ['ingress.istio-system', 'istio-system/ingress'],
  ];
  for (const [gw, want] of table) assert.equal(resolveGatewayName(gw, 'default'), want, gw);
});

test('host: wildcard matching and subsets (Istio host.Name)', () => {
  assert.ok(hostMatches('foo.com', 'foo.com'));
  assert.ok(!hostMatches('foo.com', 'bar.com'));
  assert.ok(hostMatches('*.com', 'foo.com'));
  assert.ok(hostMatches('bar.com', '*.com'));
  assert.ok(!hostMatches('*.foo.com', 'foo.com'));
  assert.ok(hostMatches('*', 'foo.com'));
  assert.ok(hostMatches('*', '*.com'));
  assert.ok(hostMatches('*.bar.com', '*.com'));
  assert.ok(!hostMatches('*.bar.com', '*.net'));
  assert.ok(hostSubsetOf('foo.com', '*.com'));
  assert.ok(!hostSubsetOf('*.com', 'foo.com'));
  assert.ok(hostSubsetOf('*.foo.com', '*.com'));
  assert.ok(!hostSubsetOf('*.com', '*.foo.com'));
});

test('host: most specific match and ordering', () => {
  const specific = new Map([['reviews.default.svc.cluster.local', 'exact']]);
  const wildcard = new Map([
    ['*', 'all'],
    ['*.svc.cluster.local', 'svc'],
    ['*.default.svc.cluster.local', 'ns'],
  ]);
  const m = (h: string) => mostSpecificHostMatch(h, specific, wildcard)?.value;
  assert.equal(m('reviews.default.svc.cluster.local'), 'exact');
  assert.equal(m('ratings.default.svc.cluster.local'), 'ns');
  assert.equal(m('ratings.other.svc.cluster.local'), 'svc');
  assert.equal(m('www.google.com'), 'all');
  assert.equal(m('*.default.svc.cluster.local'), 'ns');
  assert.equal(m('*.other.svc.cluster.local'), 'svc');
  assert.equal(mostSpecificHostMatch('x.com', new Map(), new Map()), undefined);

  const hosts = ['*', 'b.com', '*.com', 'aa.com', 'a.com', '*.foo.com'];
  assert.deepEqual(hosts.sort(compareHostSpecificity), [
    'aa.com',
    'a.com',
    'b.com',
    '*.foo.com',
    '*.com',
    '*',
  ]);
});
