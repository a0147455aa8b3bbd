import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TYPE_URL,
  adsServiceDefinition,
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
  encodeResource,
  formatNodeId,
  parseNodeId,
  isWildcardType,
  shortName,
  typeUrlForShortName,
  PUSH_ORDER,
} from '../src/index.js';

const node = {
  id: 'sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local',
  cluster: 'reviews.default',
  metadata: {
    NAMESPACE: 'default',
    LABELS: { app: 'reviews', version: 'v1' },
    ISTIO_VERSION: '1.24.0',
  },
  userAgentName: 'trellis',
};

test('state-of-the-world request and response round trip', () => {
  const req = {
    versionInfo: 'v1',
    node,
    resourceNames: ['a', 'b'],
    typeUrl: TYPE_URL.ClusterLoadAssignment,
    responseNonce: 'n1',
    errorDetail: { code: 3, message: 'bad cluster' },
  };
  assert.deepEqual(decodeDiscoveryRequest(encodeDiscoveryRequest(req)), req);
  const res = {
    versionInfo: 'v2',
    resources: [
      encodeResource(TYPE_URL.Cluster, { name: 'c1' }),
      encodeResource(TYPE_URL.Cluster, { name: 'c2' }),
    ],
    typeUrl: TYPE_URL.Cluster,
    nonce: 'n2',
    controlPlane: { identifier: 'trellis' },
  };
  const back = decodeDiscoveryResponse(encodeDiscoveryResponse(res));
  assert.deepEqual(
    {
      ...back,
      resources: back.resources?.map((r) => ({ typeUrl: r.typeUrl, value: Buffer.from(r.value) })),
    },
    {
      ...res,
      resources: res.resources.map((r) => ({ typeUrl: r.typeUrl, value: Buffer.from(r.value) })),
    },
  );
});

test('delta request and response round trip', () => {
  const req = {
    node,
    typeUrl: TYPE_URL.ClusterLoadAssignment,
    resourceNamesSubscribe: ['a'],
    resourceNamesUnsubscribe: ['b'],
    initialResourceVersions: { a: '1', c: '2' },
    responseNonce: 'n',
  };
  assert.deepEqual(decodeDeltaDiscoveryRequest(encodeDeltaDiscoveryRequest(req)), req);
  const any = encodeResource(TYPE_URL.ClusterLoadAssignment, { clusterName: 'a' });
  const res = {
    systemVersionInfo: 's1',
    resources: [{ name: 'a', version: 'h1', resource: any, ttl: '30s' }],
    typeUrl: TYPE_URL.ClusterLoadAssignment,
    removedResources: ['b'],
    nonce: 'n3',
  };
  const back = decodeDeltaDiscoveryResponse(encodeDeltaDiscoveryResponse(res));
  assert.equal(back.systemVersionInfo, 's1');
  assert.deepEqual(back.removedResources, ['b']);
  assert.equal(back.resources?.[0]?.name, 'a');
  assert.equal(back.resources?.[0]?.version, 'h1');
  assert.deepEqual(Buffer.from(back.resources?.[0]?.resource?.value ?? []), Buffer.from(any.value));
});

test('requests are checked strictly when encoded', () => {
  assert.throws(
    () => encodeDiscoveryRequest({ typeUrl: 'x', node: { id: 'x', bogus: 1 } as never }),
    /node.bogus: unknown field/,
  );
});

test('the ADS service definition serialises through the codec', () => {
  const m = adsServiceDefinition.StreamAggregatedResources;
  assert.equal(
    m.path,
    '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  );
  const buf = m.requestSerialize({ typeUrl: TYPE_URL.Listener, node });
  assert.ok(Buffer.isBuffer(buf));
  assert.deepEqual(m.requestDeserialize(buf), { typeUrl: TYPE_URL.Listener, node });
  assert.throws(() => m.requestDeserialize(Buffer.from([0x0a, 0xff, 0xff])));
});

test('Istio node ids', () => {
  const parsed = parseNodeId(node.id);
  assert.deepEqual(parsed, {
    ok: true,
    value: {
      type: 'sidecar',
      ip: '10.1.2.3',
      id: 'reviews-v1-abc.default',
      domain: 'default.svc.cluster.local',
    },
  });
  if (parsed.ok) assert.equal(formatNodeId(parsed.value), node.id);
  assert.equal(
    parseNodeId('router~fd00::1~gw.istio-system~istio-system.svc.cluster.local').ok,
    true,
  );
  const errors = [
    '',
    'sidecar~10.1.2.3~x',
    'proxy~10.1.2.3~a.b~b.svc',
    'sidecar~ten~a.b~b.svc',
    'sidecar~10.0.0.1~~d',
  ].map((id) => {
    const r = parseNodeId(id);
    return r.ok ? 'ok' : r.error;
  });
  assert.deepEqual(errors, [
    'node id is empty; expected TYPE~IP~POD.NAMESPACE~DOMAIN',
    'node id "sidecar~10.1.2.3~x" must have 4 parts separated by "~" (TYPE~IP~POD.NAMESPACE~DOMAIN), not 3',
    'node id type must be one of sidecar, router, waypoint, ztunnel, not "proxy"',
    'node id IP must be an IP address, not "ten"',
    'node id must name the workload (POD.NAMESPACE) in its third part',
  ]);
});

test('type URLs and short names', () => {
  assert.equal(shortName(TYPE_URL.Listener), 'LDS');
  assert.equal(shortName(TYPE_URL.Secret), 'SDS');
  assert.equal(shortName('type.googleapis.com/x.Y'), 'type.googleapis.com/x.Y');
  assert.equal(typeUrlForShortName('EDS'), TYPE_URL.ClusterLoadAssignment);
  assert.ok(isWildcardType(TYPE_URL.Cluster) && !isWildcardType(TYPE_URL.RouteConfiguration));
  assert.deepEqual(PUSH_ORDER.map(shortName), ['CDS', 'EDS', 'LDS', 'RDS', 'SDS']);
});

test('request names are kept raw and decoded on first use; a repeat is recognised by its bytes', () => {
  const names = Array.from(
    { length: 50 },
    (_, i) => `outbound|9080||svc-${i}.ns.svc.cluster.local`,
  );
  const bytes = encodeDiscoveryRequest({ typeUrl: 'x', resourceNames: names, responseNonce: 'n1' });
  const a = decodeDiscoveryRequest(bytes);
  const b = decodeDiscoveryRequest(
    encodeDiscoveryRequest({ typeUrl: 'x', resourceNames: names, responseNonce: 'n2' }),
  );
  assert.ok(a.resourceNamesRaw && b.resourceNamesRaw);
  assert.ok(Buffer.from(a.resourceNamesRaw).equals(Buffer.from(b.resourceNamesRaw)));
  assert.deepEqual(a.resourceNames, names);
  assert.equal(a.responseNonce, 'n1');
  const other = decodeDiscoveryRequest(
    encodeDiscoveryRequest({ typeUrl: 'x', resourceNames: names.slice(1) }),
  );
  assert.ok(!Buffer.from(other.resourceNamesRaw ?? []).equals(Buffer.from(a.resourceNamesRaw)));
  // Truncated input is rejected, not half read.
  assert.throws(
    () => decodeDiscoveryRequest(bytes.subarray(0, bytes.length - 3)),
    /malformed|index out of range/,
  );
});
