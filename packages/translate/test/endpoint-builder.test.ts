// EDS: ClusterLoadAssignments for service and subset clusters, health filtering, weights,
// ServiceEntry endpoints, mTLS metadata, and locality-aware priorities and weights relative to
// the calling proxy. Every assignment goes through verifyResource (in assertGolden).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@trellis/api';
import { TYPE_URL } from '@trellis/envoy';
import { generateClusters } from '../src/cluster-builder.js';
import { generateEndpoints } from '../src/endpoint-builder.js';
import {
  assertGolden,
  assertValidResources,
  bookinfoObjects,
  bookinfoRules,
  deployment,
  podFor,
  proxyForPod,
  snapshotOf,
} from './cluster-fixtures.js';

const EDS = TYPE_URL.ClusterLoadAssignment;
const REVIEWS = 'reviews.default.svc.cluster.local';

test('endpoints: one assignment per EDS cluster, in CDS order, subsets included', () => {
  const snap = snapshotOf([...bookinfoObjects(), ...bookinfoRules('destination-rule-all.yaml')]);
  const proxy = proxyForPod(snap, 'productpage-v1');
  const cla = generateEndpoints(snap, proxy);
  assertValidResources(EDS, cla);
  const eds = generateClusters(snap, proxy)
    .filter((c) => c.type === 'EDS')
    .map((c) => c.name);
  assert.deepEqual(
    cla.map((c) => c.clusterName),
    eds,
  );
});

test('endpoints: the reviews service cluster with tlsMode and workload metadata (golden)', () => {
  const snap = snapshotOf(bookinfoObjects());
  const cla = generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
    `outbound|9080||${REVIEWS}`,
  ]);
  assertGolden('endpoint-default', EDS, cla);
  assert.equal(cla[0]?.endpoints?.[0]?.lbEndpoints?.length, 3);
});

test('endpoints: subset clusters keep the endpoints with the subset labels (golden)', () => {
  const snap = snapshotOf([...bookinfoObjects(), ...bookinfoRules('destination-rule-all.yaml')]);
  const cla = generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
    `outbound|9080|v2|${REVIEWS}`,
    `outbound|9080|v3|${REVIEWS}`,
  ]);
  assertGolden('endpoint-subsets', EDS, cla);
});

test('endpoints: unknown names get nothing or an empty assignment; DNS services have no EDS', () => {
  const snap = snapshotOf(
    bookinfoObjects(),
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS`,
  );
  const cla = generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
    'PassthroughCluster',
    'inbound|9080||',
    'outbound|9080||nowhere.default.svc.cluster.local',
    `outbound|9999||${REVIEWS}`,
    'outbound|443||api.example.com',
    `outbound|9080||${REVIEWS}`,
    `outbound|9080||${REVIEWS}`,
  ]);
  assertValidResources(EDS, cla);
  assert.deepEqual(
    cla.map((c) => [c.clusterName, c.endpoints?.length ?? 0]),
    [
      ['outbound|9080||nowhere.default.svc.cluster.local', 0],
      [`outbound|9999||${REVIEWS}`, 0],
      ['outbound|443||api.example.com', 0],
      [`outbound|9080||${REVIEWS}`, 1],
    ],
  );
});

test('endpoints: unready and terminating pods are left out; weights and ServiceEntry endpoints (golden)', () => {
  const base = bookinfoObjects();
  const ratings = deployment(base, 'ratings-v1');
  const unready = podFor(ratings, { ip: '10.1.1.1', ready: false, suffix: 'unrdy' });
  const ready = podFor(ratings, { ip: '10.1.1.2', suffix: 'ready' });
  const terminating: KubeObject = {
    ...podFor(ratings, { ip: '10.1.1.3', suffix: 'termi' }),
  };
  const term = {
    ...terminating,
    metadata: { ...terminating.metadata, deletionTimestamp: '2024-01-02T00:00:00Z' },
  };
  const snap = snapshotOf(
    [...base, unready, ready, term],
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms}
spec:
  hosts: [vm.internal]
  location: MESH_INTERNAL
  ports: [{number: 8080, name: http, protocol: HTTP, targetPort: 9090}]
  resolution: STATIC
  endpoints:
  - {address: 10.3.0.1, weight: 3, locality: us-east/zone1, labels: {version: v1}}
  - {address: 10.3.0.2, ports: {http: 7070}, labels: {security.istio.io/tlsMode: istio}}
  - {address: vm-by-name.internal}`,
  );
  const cla = generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
    'outbound|9080||ratings.default.svc.cluster.local',
    'outbound|8080||vm.internal',
  ]);
  assertGolden('endpoint-health-weights', EDS, cla);
  const ratingsIps = cla[0]?.endpoints
    ?.flatMap((e) => e.lbEndpoints ?? [])
    .map((e) => e.endpoint?.address?.socketAddress?.address);
  assert.deepEqual(ratingsIps?.sort(), ['10.1.0.2', '10.1.1.2']);
});

test('endpoints: PeerAuthentication DISABLE and DestinationRule TLS decide the tlsMode metadata', () => {
  const tlsModes = (...yaml: string[]) => {
    const snap = snapshotOf(bookinfoObjects(), ...yaml);
    const cla = generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
      `outbound|9080||${REVIEWS}`,
    ]);
    assertValidResources(EDS, cla);
    return (cla[0]?.endpoints ?? [])
      .flatMap((e) => e.lbEndpoints ?? [])
      .map((e) => e.metadata?.filterMetadata?.['envoy.transport_socket_match']?.tlsMode ?? 'none');
  };
  assert.deepEqual(tlsModes(), ['istio', 'istio', 'istio']);
  assert.deepEqual(
    tlsModes(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews-v2}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  mtls: {mode: STRICT}
  portLevelMtls: {"9080": {mode: DISABLE}}`),
    ['istio', 'none', 'istio'],
  );
  assert.deepEqual(
    tlsModes(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: SIMPLE}}`),
    ['none', 'none', 'none'],
  );
});

/** reviews pods spread over localities, and productpage in us-east/zone1/sub1. */
function localityObjects(): KubeObject[] {
  const base = bookinfoObjects().filter(
    (o) => o.kind !== 'Pod' || !/^(reviews|productpage)-/.test(o.metadata.name),
  );
  const v1 = deployment(base, 'reviews-v1');
  const v2 = deployment(base, 'reviews-v2');
  return [
    ...base,
    podFor(deployment(base, 'productpage-v1'), { ip: '10.2.0.1', locality: 'us-east.zone1.sub1' }),
    podFor(v1, { ip: '10.2.1.1', locality: 'us-east.zone1.sub1', suffix: 'a' }),
    podFor(v1, { ip: '10.2.1.2', locality: 'us-east.zone2', suffix: 'b' }),
    podFor(v2, { ip: '10.2.1.3', locality: 'us-west.zone1', suffix: 'c' }),
    podFor(v2, { ip: '10.2.1.4', locality: 'eu-west.zone1', suffix: 'd' }),
  ];
}

const reviewsRule = (policy: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
${policy}`;

function localityEndpoints(policy: string) {
  const snap = snapshotOf(localityObjects(), reviewsRule(policy));
  return generateEndpoints(snap, proxyForPod(snap, 'productpage-v1'), [
    `outbound|9080||${REVIEWS}`,
  ]);
}

const summary = (cla: ReturnType<typeof generateEndpoints>) =>
  (cla[0]?.endpoints ?? []).map((e) => ({
    locality: [e.locality?.region, e.locality?.zone, e.locality?.subZone].filter(Boolean).join('/'),
    priority: e.priority ?? 0,
    weight: e.loadBalancingWeight,
    ips: (e.lbEndpoints ?? []).map((l) => l.endpoint?.address?.socketAddress?.address),
  }));

test('locality: default failover (outlier detection set) ranks localities from the proxy (golden)', () => {
  // Same sub-zone 0, same zone 1, same region 2, other regions 3; then renumbered without gaps.
  const cla = localityEndpoints('    outlierDetection: {consecutive5xxErrors: 5}');
  assertGolden('endpoint-locality-failover', EDS, cla);
  assert.deepEqual(
    summary(cla).map((s) => [s.locality, s.priority]),
    [
      ['eu-west/zone1', 2],
      ['us-east/zone1/sub1', 0],
      ['us-east/zone2', 1],
      ['us-west/zone1', 2],
    ],
  );
});

test('locality: failover rules make other regions than the target the lowest priority', () => {
  const cla = localityEndpoints(`    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: eu-west}]`);
  assertValidResources(EDS, cla);
  assert.deepEqual(
    summary(cla).map((s) => [s.locality, s.priority]),
    [
      ['eu-west/zone1', 2],
      ['us-east/zone1/sub1', 0],
      ['us-east/zone2', 1],
      ['us-west/zone1', 3],
    ],
  );
});

test('locality: no priorities without outlier detection, or when locality balancing is disabled', () => {
  for (const policy of [
    '    loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: eu-west}]}}',
    '    outlierDetection: {}\n    loadBalancer: {localityLbSetting: {enabled: false}}',
  ]) {
    const cla = localityEndpoints(policy);
    assertValidResources(EDS, cla);
    assert.deepEqual(
      summary(cla).map((s) => s.priority),
      [0, 0, 0, 0],
    );
  }
});

test("locality: distribute sets locality weights for the proxy's locality (golden)", () => {
  const cla = localityEndpoints(`    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/zone1/*
          to: {us-east/*: 90, us-west/zone1: 10}`);
  assertGolden('endpoint-locality-distribute', EDS, cla, ['endpoints']);
  assert.deepEqual(
    summary(cla).map((s) => [s.locality, s.weight, s.ips.length]),
    [
      ['eu-west/zone1', 1, 0],
      ['us-east/zone1/sub1', 45, 1],
      ['us-east/zone2', 45, 1],
      ['us-west/zone1', 10, 1],
    ],
  );
});

test('locality: failoverPriority splits localities by the labels shared with the proxy (golden)', () => {
  // version=v2 is compared as written (v2 pods match), then the region: v2 pods (other region) rank
  // 1, v1 pods (version differs) rank 2; renumbered 0 and 1.
  const cla = localityEndpoints(`    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        failoverPriority: [version=v2, topology.kubernetes.io/region]`);
  assertGolden('endpoint-failover-priority', EDS, cla, ['endpoints']);
  assert.deepEqual(
    summary(cla).map((s) => [s.locality, s.priority]),
    [
      ['eu-west/zone1', 0],
      ['us-east/zone1/sub1', 1],
      ['us-east/zone2', 1],
      ['us-west/zone1', 0],
    ],
  );
});
