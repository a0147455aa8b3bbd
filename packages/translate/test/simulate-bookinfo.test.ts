// Simulation of the bookinfo routing samples (samples/bookinfo/networking): requests from the
// productpage sidecar and through the ingress gateway, checked against what the samples intend.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '@trellis/api';
import {
  generate,
  simulate,
  type GeneratedResources,
  type SimulationRequest,
} from '../src/index.js';
import {
  assertValidEnvoy,
  bookinfoObjects,
  gatewayProxy,
  loadSample,
  proxyForPod,
  snapshotOf,
} from './fixtures.js';

const NET = 'samples/bookinfo/networking';

function sidecarResources(...files: string[]): GeneratedResources {
  const extra: KubeObject[][] = [
    loadSample(`${NET}/destination-rule-all.yaml`),
    ...files.map((f) => loadSample(`${NET}/${f}`)),
  ];
  const objects = bookinfoObjects(...extra);
  const snapshot = snapshotOf(objects);
  const res = generate(snapshot, proxyForPod(snapshot, objects, 'productpage-v1-0'));
  assertValidEnvoy(res);
  return res;
}

function gatewayResources(...files: string[]): GeneratedResources {
  const objects = bookinfoObjects(
    loadSample(`${NET}/destination-rule-all.yaml`),
    ...files.map((f) => loadSample(`${NET}/${f}`)),
  );
  const snapshot = snapshotOf(objects);
  const res = generate(snapshot, gatewayProxy(snapshot, objects));
  assertValidEnvoy(res);
  return res;
}

const toReviews = (headers: Record<string, string> = {}): SimulationRequest => ({
  port: 9080,
  host: 'reviews:9080',
  path: '/reviews/0',
  protocol: 'http',
  headers,
});

const toRatings = (headers: Record<string, string> = {}): SimulationRequest => ({
  port: 9080,
  host: 'ratings:9080',
  path: '/ratings/0',
  protocol: 'http',
  headers,
});

describe('bookinfo from the productpage sidecar', () => {
  test('without VirtualServices reviews goes to all versions through the service cluster', () => {
    const res = sidecarResources();
    const r = simulate(res, toReviews());
    assert.equal(r.outcome, 'forward');
    assert.equal(r.listener, '0.0.0.0_9080');
    assert.equal(r.routeConfig, '9080');
    assert.equal(r.virtualHost, 'reviews.default.svc.cluster.local:9080');
    assert.equal(r.routeName, 'default');
    assert.equal(r.cluster, 'outbound|9080||reviews.default.svc.cluster.local');
    assert.equal(r.clusters[0]?.endpoints.length, 3);
  });

  test('virtual-service-all-v1: every service at v1', () => {
    const res = sidecarResources('virtual-service-all-v1.yaml');
    for (const svc of ['productpage', 'reviews', 'ratings', 'details']) {
      const r = simulate(res, {
        port: 9080,
        host: `${svc}.default.svc.cluster.local`,
        path: '/',
        protocol: 'http',
      });
      assert.equal(r.cluster, `outbound|9080|v1|${svc}.default.svc.cluster.local`, svc);
      assert.equal(r.clusters[0]?.endpoints.length, 1, svc);
    }
    const v1 = simulate(res, toReviews({ 'end-user': 'jason' }));
    assert.equal(v1.cluster, 'outbound|9080|v1|reviews.default.svc.cluster.local');
    assert.deepEqual(v1.clusters[0]?.endpoints, ['10.1.0.3:9080']);
  });

  test('virtual-service-reviews-test-v2: jason sees v2, everybody else v1', () => {
    const res = sidecarResources('virtual-service-reviews-test-v2.yaml');
    assert.equal(
      simulate(res, toReviews({ 'end-user': 'jason' })).cluster,
      'outbound|9080|v2|reviews.default.svc.cluster.local',
    );
    assert.equal(
      simulate(res, toReviews({ 'end-user': 'jasonx' })).cluster,
      'outbound|9080|v1|reviews.default.svc.cluster.local',
    );
    assert.equal(
      simulate(res, toReviews()).cluster,
      'outbound|9080|v1|reviews.default.svc.cluster.local',
    );
    // Every name of the service reaches the same virtual host.
    for (const host of [
      'reviews',
      'reviews.default',
      'reviews.default.svc',
      'reviews.default.svc.cluster.local',
      '10.96.0.3',
    ]) {
      for (const h of [host, `${host}:9080`]) {
        const r = simulate(res, { ...toReviews({ 'end-user': 'jason' }), host: h });
        assert.equal(r.virtualHost, 'reviews.default.svc.cluster.local:9080', h);
        assert.equal(r.cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local', h);
      }
    }
  });

  test('virtual-service-reviews-50-v3: half to v1, half to v3', () => {
    const res = sidecarResources('virtual-service-reviews-50-v3.yaml');
    const r = simulate(res, toReviews());
    assert.equal(r.outcome, 'forward');
    assert.deepEqual(
      r.clusters.map((c) => [c.name, c.weight]),
      [
        ['outbound|9080|v1|reviews.default.svc.cluster.local', 50],
        ['outbound|9080|v3|reviews.default.svc.cluster.local', 50],
      ],
    );
    assert.deepEqual(
      r.clusters.map((c) => c.endpoints.length),
      [1, 1],
    );
  });

  test('virtual-service-reviews-80-20 and 90-10 keep their weights', () => {
    const r80 = simulate(sidecarResources('virtual-service-reviews-80-20.yaml'), toReviews());
    assert.deepEqual(
      r80.clusters.map((c) => c.weight),
      [80, 20],
    );
    const r90 = simulate(sidecarResources('virtual-service-reviews-90-10.yaml'), toReviews());
    assert.deepEqual(
      r90.clusters.map((c) => c.weight),
      [90, 10],
    );
  });

  test('virtual-service-reviews-jason-v2-v3: jason v2, others v3', () => {
    const res = sidecarResources('virtual-service-reviews-jason-v2-v3.yaml');
    assert.equal(
      simulate(res, toReviews({ 'end-user': 'jason' })).cluster,
      'outbound|9080|v2|reviews.default.svc.cluster.local',
    );
    assert.equal(
      simulate(res, toReviews()).cluster,
      'outbound|9080|v3|reviews.default.svc.cluster.local',
    );
  });

  test('virtual-service-ratings-test-delay: a 7s delay on 100% of jason requests', () => {
    const res = sidecarResources('virtual-service-ratings-test-delay.yaml');
    const jason = simulate(res, toRatings({ 'end-user': 'jason' }));
    assert.equal(jason.cluster, 'outbound|9080|v1|ratings.default.svc.cluster.local');
    assert.deepEqual(jason.fault, {
      delay: { fixedDelay: '7s', percentage: { numerator: 1000000, denominator: 'MILLION' } },
    });
    const other = simulate(res, toRatings());
    assert.equal(other.cluster, 'outbound|9080|v1|ratings.default.svc.cluster.local');
    assert.equal(other.fault, undefined);
  });

  test('virtual-service-ratings-test-abort: HTTP 500 for 100% of jason requests', () => {
    const res = sidecarResources('virtual-service-ratings-test-abort.yaml');
    const jason = simulate(res, toRatings({ 'end-user': 'jason' }));
    assert.deepEqual(jason.fault, {
      abort: { httpStatus: 500, percentage: { numerator: 1000000, denominator: 'MILLION' } },
    });
    assert.equal(simulate(res, toRatings()).fault, undefined);
  });

  test('fault-injection-details-v1: details aborts 555 for everybody', () => {
    const res = sidecarResources('fault-injection-details-v1.yaml');
    const r = simulate(res, {
      port: 9080,
      host: 'details:9080',
      path: '/details/0',
      protocol: 'http',
    });
    assert.equal(r.fault?.abort?.httpStatus, 555);
    assert.equal(r.cluster, 'outbound|9080|v1|details.default.svc.cluster.local');
  });

  test('unknown hosts pass through under ALLOW_ANY', () => {
    const res = sidecarResources();
    const r = simulate(res, { port: 9080, host: 'example.com', protocol: 'http' });
    assert.equal(r.virtualHost, 'allow_any');
    assert.equal(r.cluster, 'PassthroughCluster');
    const tcp = simulate(res, { port: 5432, address: '192.0.2.1', protocol: 'tcp' });
    assert.equal(tcp.listener, 'virtualOutbound');
    assert.equal(tcp.filterChain, 'virtualOutbound-catchall-tcp');
    assert.equal(tcp.cluster, 'PassthroughCluster');
  });
});

describe('bookinfo through the ingress gateway (bookinfo-gateway.yaml)', () => {
  const res = gatewayResources('bookinfo-gateway.yaml');
  const get = (path: string, host = 'bookinfo.example.com'): ReturnType<typeof simulate> =>
    simulate(res, { port: 8080, host, path, protocol: 'http', direction: 'direct' });

  test('the gateway listens on 8080 with route config http.8080', () => {
    assert.deepEqual(
      res.listeners.map((l) => l.name),
      ['0.0.0.0_8080'],
    );
    assert.deepEqual(
      res.routes.map((r) => r.name),
      ['http.8080'],
    );
  });

  for (const path of [
    '/productpage',
    '/login',
    '/logout',
    '/static/css/style.css',
    '/api/v1/products/0',
  ]) {
    test(`${path} goes to productpage`, () => {
      const r = get(path);
      assert.equal(r.outcome, 'forward');
      assert.equal(r.listener, '0.0.0.0_8080');
      assert.equal(r.routeConfig, 'http.8080');
      assert.equal(r.cluster, 'outbound|9080||productpage.default.svc.cluster.local');
      assert.equal(r.clusters[0]?.endpoints.length, 1);
    });
  }

  for (const path of ['/', '/reviews/0', '/productpagex', '/loginx']) {
    test(`${path} is not routed (404)`, () => {
      const r = get(path);
      assert.equal(r.outcome, 'error');
      assert.equal(r.error, 'no route');
      assert.equal(r.status, 404);
    });
  }

  test('any host name and a port in the Host header still match (ignore_port_in_host_matching)', () => {
    assert.equal(
      get('/productpage', 'foo.bar:8080').cluster,
      'outbound|9080||productpage.default.svc.cluster.local',
    );
  });
});
