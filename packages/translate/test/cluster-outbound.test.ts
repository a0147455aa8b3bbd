// Outbound clusters of a sidecar and a gateway for bookinfo: names, discovery types, subsets from
// the sample DestinationRules, ServiceEntry resolutions, upstream HTTP/2, and the special
// clusters. Every generated cluster goes through verifyResource (in assertGolden).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '@trellis/envoy';
import { generateClusters } from '../src/cluster-builder.js';
import {
  assertGolden,
  assertValidResources,
  bookinfoObjects,
  bookinfoRules,
  proxyForPod,
  snapshotOf,
  standaloneProxy,
} from './cluster-fixtures.js';

const CDS = TYPE_URL.Cluster;
const REVIEWS = 'reviews.default.svc.cluster.local';

test('clusters: a bookinfo sidecar gets every service port, the special clusters and its inbound port', () => {
  const snap = snapshotOf(bookinfoObjects());
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'));
  assertValidResources(CDS, clusters);
  assert.deepEqual(
    clusters.map((c) => c.name),
    [
      'outbound|9080||details.default.svc.cluster.local',
      'outbound|9080||productpage.default.svc.cluster.local',
      'outbound|9080||ratings.default.svc.cluster.local',
      'outbound|9080||reviews.default.svc.cluster.local',
      'BlackHoleCluster',
      'PassthroughCluster',
      'inbound|9080||',
      'InboundPassthroughCluster',
    ],
  );
});

test('clusters: an outbound EDS cluster with auto mTLS and Istio defaults (golden)', () => {
  const snap = snapshotOf(bookinfoObjects());
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'), [
    `outbound|9080||${REVIEWS}`,
  ]);
  assertGolden('cluster-outbound-default', CDS, clusters);
});

test('clusters: destination-rule-all.yaml gives one cluster per subset (golden)', () => {
  const snap = snapshotOf([...bookinfoObjects(), ...bookinfoRules('destination-rule-all.yaml')]);
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'));
  assertValidResources(CDS, clusters);
  assert.deepEqual(
    clusters.map((c) => c.name).filter((n) => n?.includes('reviews')),
    [
      `outbound|9080||${REVIEWS}`,
      `outbound|9080|v1|${REVIEWS}`,
      `outbound|9080|v2|${REVIEWS}`,
      `outbound|9080|v3|${REVIEWS}`,
    ],
  );
  assert.equal(clusters.filter((c) => c.name?.includes('|v2-mysql|ratings')).length, 1);
  assertGolden(
    'cluster-subsets',
    CDS,
    clusters.filter((c) => c.name === `outbound|9080|v2|${REVIEWS}`),
  );
});

test('clusters: destination-rule-reviews.yaml applies RANDOM to the service and every subset', () => {
  const snap = snapshotOf([
    ...bookinfoObjects(),
    ...bookinfoRules('destination-rule-reviews.yaml'),
  ]);
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1')).filter((c) =>
    c.name?.endsWith(REVIEWS),
  );
  assertValidResources(CDS, clusters);
  assert.deepEqual(
    clusters.map((c) => [c.name, c.lbPolicy]),
    [
      [`outbound|9080||${REVIEWS}`, 'RANDOM'],
      [`outbound|9080|v1|${REVIEWS}`, 'RANDOM'],
      [`outbound|9080|v2|${REVIEWS}`, 'RANDOM'],
      [`outbound|9080|v3|${REVIEWS}`, 'RANDOM'],
    ],
  );
});

test('clusters: BlackHole, Passthrough and InboundPassthrough (golden)', () => {
  const snap = snapshotOf(bookinfoObjects());
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'), [
    'BlackHoleCluster',
    'PassthroughCluster',
    'InboundPassthroughCluster',
  ]);
  assertGolden('cluster-special', CDS, clusters);
});

test('clusters: a gateway gets outbound clusters and BlackHoleCluster only; headless services use EDS', () => {
  const snap = snapshotOf(
    bookinfoObjects(),
    `apiVersion: v1
kind: Service
metadata: {name: headless}
spec:
  clusterIP: None
  selector: {app: ratings}
  ports: [{name: tcp-db, port: 3306}]`,
  );
  const gw = standaloneProxy(
    'istio-ingressgateway-abc',
    'istio-system',
    { istio: 'ingressgateway' },
    {
      type: 'router',
    },
  );
  const clusters = generateClusters(snap, gw);
  assertValidResources(CDS, clusters);
  assert.deepEqual(
    clusters.map((c) => c.name),
    [
      'outbound|9080||details.default.svc.cluster.local',
      'outbound|3306||headless.default.svc.cluster.local',
      'outbound|9080||productpage.default.svc.cluster.local',
      'outbound|9080||ratings.default.svc.cluster.local',
      `outbound|9080||${REVIEWS}`,
      'BlackHoleCluster',
    ],
  );
  assert.equal(clusters[1]?.type, 'EDS');
  const sidecar = generateClusters(snap, proxyForPod(snap, 'productpage-v1'), [
    'outbound|3306||headless.default.svc.cluster.local',
  ]);
  assert.equal(sidecar[0]?.type, 'ORIGINAL_DST');
  assert.equal(sidecar[0]?.lbPolicy, 'CLUSTER_PROVIDED');
});

const SERVICE_ENTRIES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-dns}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-rr}
spec:
  hosts: [rr.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-none}
spec:
  hosts: [any.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 8443, name: tcp, protocol: TCP}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm-static}
spec:
  hosts: [vm.internal]
  location: MESH_INTERNAL
  ports: [{number: 9090, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 10.2.0.1}, {address: 10.2.0.2}]
`;

test('clusters: ServiceEntry resolutions map to STRICT_DNS, LOGICAL_DNS, ORIGINAL_DST and EDS (golden)', () => {
  const snap = snapshotOf(bookinfoObjects(), SERVICE_ENTRIES);
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'), [
    'outbound|443||api.example.com',
    'outbound|80||rr.example.com',
    'outbound|8443||any.example.com',
    'outbound|9090||vm.internal',
  ]);
  assert.deepEqual(
    clusters.map((c) => [c.name, c.type]),
    [
      ['outbound|8443||any.example.com', 'ORIGINAL_DST'],
      ['outbound|443||api.example.com', 'STRICT_DNS'],
      ['outbound|80||rr.example.com', 'LOGICAL_DNS'],
      ['outbound|9090||vm.internal', 'EDS'],
    ],
  );
  assertGolden('cluster-serviceentry', CDS, clusters);
});

test('clusters: HTTP/2 upstream for grpc ports, h2UpgradePolicy and useClientProtocol (golden)', () => {
  const snap = snapshotOf(
    bookinfoObjects(),
    SERVICE_ENTRIES,
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy:
    connectionPool:
      http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 50}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details}
spec:
  host: details
  trafficPolicy:
    connectionPool:
      http: {useClientProtocol: true}`,
  );
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'), [
    'outbound|9090||vm.internal',
    'outbound|9080||ratings.default.svc.cluster.local',
    'outbound|9080||details.default.svc.cluster.local',
  ]);
  assertGolden('cluster-http2', CDS, clusters);
});

test('clusters: generation is deterministic, and every cluster a route names exists', async () => {
  const { generateRoutes } = await import('../src/index.js');
  const objects = [
    ...bookinfoObjects(),
    ...bookinfoRules('destination-rule-all.yaml'),
    ...bookinfoRules('virtual-service-reviews-80-20.yaml'),
  ];
  const snap = snapshotOf(objects);
  const proxy = proxyForPod(snap, 'productpage-v1');
  const first = generateClusters(snap, proxy);
  assert.equal(JSON.stringify(generateClusters(snapshotOf(objects), proxy)), JSON.stringify(first));
  const names = new Set(first.map((c) => c.name));
  const routed = new Set<string>();
  for (const rc of generateRoutes(snap, proxy))
    for (const vh of rc.virtualHosts ?? [])
      for (const r of vh.routes ?? []) {
        if (r.route?.cluster) routed.add(r.route.cluster);
        for (const w of r.route?.weightedClusters?.clusters ?? []) if (w.name) routed.add(w.name);
      }
  assert.ok(routed.has(`outbound|9080|v1|${REVIEWS}`));
  for (const c of routed) assert.ok(names.has(c), `route names ${c}, which CDS lacks`);
});
