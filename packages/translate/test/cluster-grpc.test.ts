// Clusters and endpoints for proxyless gRPC clients (GENERATOR: grpc): only what gRPC's xDS client
// accepts (EDS over ADS, ROUND_ROBIN or RING_HASH, max_requests, outlier detection, TLS from
// certificate providers), per subset, for the names the client asks for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '@trellis/envoy';
import { generateClusters } from '../src/cluster-builder.js';
import { generateEndpoints } from '../src/endpoint-builder.js';
import {
  assertGolden,
  assertGrpcAccepts,
  assertValidResources,
  bookinfoObjects,
  snapshotOf,
  standaloneProxy,
} from './cluster-fixtures.js';

const REVIEWS = 'reviews.default.svc.cluster.local';

const RULES = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool: {http: {http2MaxRequests: 1}}
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 1021}}}`;

function grpcClient() {
  return standaloneProxy('grpc-client-1', 'default', { app: 'grpc-client' }, { generator: 'grpc' });
}

test('grpc: the requested clusters only, built for gRPC (golden)', () => {
  const snap = snapshotOf(bookinfoObjects(), RULES);
  const clusters = generateClusters(snap, grpcClient(), [
    `outbound|9080||${REVIEWS}`,
    `outbound|9080|v1|${REVIEWS}`,
    `outbound|9080|v2|${REVIEWS}`,
  ]);
  assertGolden('cluster-grpc', TYPE_URL.Cluster, clusters);
  assertGrpcAccepts(TYPE_URL.Cluster, clusters);
  for (const c of clusters) {
    assert.ok(c.lbPolicy === 'ROUND_ROBIN' || c.lbPolicy === 'RING_HASH');
    assert.equal(c.transportSocketMatches, undefined);
  }
});

test('grpc: without names every service cluster and subset is listed, and nothing else', () => {
  const snap = snapshotOf(bookinfoObjects(), RULES);
  const clusters = generateClusters(snap, grpcClient());
  assertValidResources(TYPE_URL.Cluster, clusters);
  assertGrpcAccepts(TYPE_URL.Cluster, clusters);
  assert.deepEqual(
    clusters.map((c) => c.name),
    [
      'outbound|9080||details.default.svc.cluster.local',
      'outbound|9080||productpage.default.svc.cluster.local',
      'outbound|9080||ratings.default.svc.cluster.local',
      `outbound|9080||${REVIEWS}`,
      `outbound|9080|v1|${REVIEWS}`,
      `outbound|9080|v2|${REVIEWS}`,
    ],
  );
});

test('grpc: endpoints carry a locality and only IP addresses (golden)', () => {
  const snap = snapshotOf(bookinfoObjects(), RULES);
  const cla = generateEndpoints(snap, grpcClient(), [`outbound|9080|v1|${REVIEWS}`]);
  assertGolden('endpoint-grpc', TYPE_URL.ClusterLoadAssignment, cla);
  assertGrpcAccepts(TYPE_URL.ClusterLoadAssignment, cla);
  assert.ok(cla[0]?.endpoints?.every((e) => e.locality !== undefined));
});
