// Inbound clusters of sidecars: one per workload port to the application on 127.0.0.1, the
// connection pool from the DestinationRule or the Sidecar resource, Sidecar ingress listeners
// with their default endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '@trellis/envoy';
import { generateClusters } from '../src/cluster-builder.js';
import { generateEndpoints } from '../src/endpoint-builder.js';
import { generateListeners } from '../src/index.js';
import {
  assertGolden,
  assertValidResources,
  bookinfoObjects,
  deployment,
  podFor,
  proxyForPod,
  snapshotOf,
} from './cluster-fixtures.js';

const CDS = TYPE_URL.Cluster;
const inbound = (c: { name?: string }) => c.name?.startsWith('inbound|') === true;

test('inbound: a bookinfo workload gets inbound|9080|| to 127.0.0.1:9080 (golden)', () => {
  const snap = snapshotOf(bookinfoObjects());
  const clusters = generateClusters(snap, proxyForPod(snap, 'reviews-v1')).filter(inbound);
  assertGolden('cluster-inbound', CDS, clusters);
});

test('inbound: local mode: peers dial the sidecar inbound port, the inbound cluster forwards to the app port', () => {
  const objects = bookinfoObjects().filter(
    (o) => !(o.kind === 'Pod' && o.metadata.name.startsWith('ratings-v1')),
  );
  const pod = podFor(deployment(objects, 'ratings-v1'), { ip: '127.0.0.1' });
  const local = {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: { ...pod.metadata.annotations, 'trellis.io/inbound-ports': '{"9080": 15106}' },
    },
  };
  const snap = snapshotOf([...objects, local]);
  const clusters = generateClusters(snap, proxyForPod(snap, 'ratings-v1')).filter(inbound);
  assertValidResources(CDS, clusters);
  assert.deepEqual(
    clusters.map((c) => [
      c.name,
      c.loadAssignment?.endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address?.socketAddress,
    ]),
    [['inbound|9080||', { address: '127.0.0.1', portValue: 9080 }]],
  );
  const eds = generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
    'outbound|9080||ratings.default.svc.cluster.local',
  ]);
  assertValidResources(TYPE_URL.ClusterLoadAssignment, eds);
  assert.deepEqual(eds[0]?.endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address?.socketAddress, {
    address: '127.0.0.1',
    portValue: 15106,
  });
});

test('inbound: the Sidecar inboundConnectionPool replaces the DestinationRule pool (golden)', () => {
  const snap = snapshotOf(
    bookinfoObjects(),
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 7}}
    loadBalancer: {simple: RANDOM}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings}
spec:
  workloadSelector: {labels: {app: ratings}}
  inboundConnectionPool:
    http: {http1MaxPendingRequests: 5, idleTimeout: 20s}`,
  );
  const reviews = generateClusters(snap, proxyForPod(snap, 'reviews-v1')).filter(inbound);
  const ratings = generateClusters(snap, proxyForPod(snap, 'ratings-v1')).filter(inbound);
  assertGolden(
    'cluster-inbound-connection-pool',
    CDS,
    [...reviews, ...ratings],
    ['lbPolicy', 'circuitBreakers', 'typedExtensionProtocolOptions', 'metadata'],
  );
});

test('inbound: Sidecar ingress listeners set the ports and default endpoints (golden)', () => {
  const snap = snapshotOf(
    bookinfoObjects(),
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: details}
spec:
  workloadSelector: {labels: {app: details}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
    connectionPool: {tcp: {maxConnections: 3}}
  - port: {number: 9443, protocol: TCP, name: tcp}
    defaultEndpoint: 0.0.0.0:9443
  - port: {number: 9999, protocol: GRPC, name: grpc}
    defaultEndpoint: unix:///var/run/app.sock
  - port: {number: 7070, protocol: TCP, name: orig}`,
  );
  const clusters = generateClusters(snap, proxyForPod(snap, 'details-v1')).filter(inbound);
  assertGolden('cluster-inbound-sidecar-ingress', CDS, clusters);
});

test('inbound: no inbound clusters for gateways or for interception mode NONE without ingress', () => {
  const snap = snapshotOf(bookinfoObjects());
  const none = generateClusters(
    snap,
    proxyForPod(snap, 'reviews-v1', { metadata: { INTERCEPTION_MODE: 'NONE' } }),
  );
  assert.deepEqual(none.filter(inbound), []);
  const router = generateClusters(snap, proxyForPod(snap, 'reviews-v1', { type: 'router' }));
  assert.deepEqual(router.filter(inbound), []);
  assert.ok(
    !router.some((c) => c.name === 'PassthroughCluster' || c.name === 'InboundPassthroughCluster'),
  );
});

test('inbound: explicit local mode (NONE): listeners on the inbound ports, clusters to the app ports', () => {
  const objects = bookinfoObjects().filter(
    (o) => !(o.kind === 'Pod' && o.metadata.name.startsWith('ratings-v1')),
  );
  const pod = podFor(deployment(objects, 'ratings-v1'), { ip: '127.0.0.1' });
  const local = {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: {
        ...pod.metadata.annotations,
        'trellis.io/inbound-ports': '{"9080": 15106}',
        'trellis.io/app-ports': '{"9080": 41234}',
      },
    },
  };
  const snap = snapshotOf([...objects, local]);
  const proxy = proxyForPod(snap, 'ratings-v1', { metadata: { INTERCEPTION_MODE: 'NONE' } });
  const clusters = generateClusters(snap, proxy).filter(inbound);
  assertValidResources(CDS, clusters);
  assert.deepEqual(
    clusters.map((c) => [
      c.name,
      c.loadAssignment?.endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address?.socketAddress,
    ]),
    [['inbound|9080||', { address: '127.0.0.1', portValue: 41234 }]],
  );
  const listeners = generateListeners(snap, proxy);
  const names = listeners.map((l) => l.name);
  assert.ok(!names.includes('virtualInbound') && !names.includes('virtualOutbound'), String(names));
  const bound = listeners.find((l) => l.address?.socketAddress?.portValue === 15106);
  assert.ok(bound, `no listener on 15106 among ${String(names)}`);
  assert.equal(bound.address?.socketAddress?.address, '127.0.0.1');
  assert.match(JSON.stringify(bound.filterChains), /inbound\|9080\|\|/);
  // NONE alone binds an outbound listener per service port on 127.0.0.1 (Istio's NONE mode);
  // Trellis's explicit capture binds only the sidecar's own ports.
  assert.ok(names.includes('127.0.0.1_9080'), String(names));
  const explicit = proxyForPod(snap, 'ratings-v1', {
    metadata: { INTERCEPTION_MODE: 'NONE', TRELLIS_CAPTURE: 'explicit', HTTP_PROXY_PORT: '15080' },
  });
  assert.deepEqual(
    generateListeners(snap, explicit)
      .map((l) => l.name)
      .sort(),
    ['127.0.0.1_15080', '127.0.0.1_15106'],
  );
});
