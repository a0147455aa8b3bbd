// The proxy's bootstrap: Istio's node id and metadata, validation of its inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidError } from '@trellis/core';
import {
  NODE_METADATA,
  decodeDiscoveryRequest,
  encodeDiscoveryRequest,
  parseNodeId,
} from '@trellis/envoy';
import { bootstrapOptionsFromEnv, buildBootstrap, parseLocality } from '../src/xds/index.js';

test('sidecar bootstrap: Istio node id, service cluster and metadata', () => {
  const b = buildBootstrap({
    ip: '10.1.2.3',
    podName: 'reviews-v1-7f6d9c',
    namespace: 'default',
    labels: { app: 'reviews', version: 'v1' },
    serviceAccount: 'bookinfo-reviews',
    workloadName: 'reviews-v1',
    httpProxyPort: 15080,
    istioVersion: '1.24.0',
    locality: 'us-east1/us-east1-b',
    xdsAddress: '127.0.0.1:15010',
  });
  assert.equal(b.node.id, 'sidecar~10.1.2.3~reviews-v1-7f6d9c.default~default.svc.cluster.local');
  assert.equal(b.node.cluster, 'reviews.default');
  assert.deepEqual(b.node.locality, { region: 'us-east1', zone: 'us-east1-b' });
  assert.deepEqual(b.node.metadata, {
    NAMESPACE: 'default',
    NAME: 'reviews-v1-7f6d9c',
    LABELS: { app: 'reviews', version: 'v1' },
    SERVICE_ACCOUNT: 'bookinfo-reviews',
    WORKLOAD_NAME: 'reviews-v1',
    CLUSTER_ID: 'Kubernetes',
    INSTANCE_IPS: '10.1.2.3',
    INTERCEPTION_MODE: 'REDIRECT',
    ISTIO_VERSION: '1.24.0',
    HTTP_PROXY_PORT: '15080',
    ENVOY_STATUS_PORT: 15021,
    ENVOY_PROMETHEUS_PORT: 15090,
  });
  assert.equal(b.adminPort, 15000);
  assert.equal(b.xdsAddress, '127.0.0.1:15010');
  assert.ok(Object.isFrozen(b) && Object.isFrozen(b.node) && Object.isFrozen(b.node.metadata));
  const parsed = parseNodeId(b.node.id ?? '');
  assert.ok(parsed.ok);
  assert.equal(parsed.value.type, 'sidecar');

  // The node travels in a request as the strict codec encodes it, metadata intact.
  const back = decodeDiscoveryRequest(encodeDiscoveryRequest({ node: b.node, typeUrl: 'x' }));
  assert.deepEqual(back.node?.metadata?.[NODE_METADATA.labels], { app: 'reviews', version: 'v1' });
  assert.equal(back.node?.metadata?.HTTP_PROXY_PORT, '15080');
  assert.equal(back.node?.cluster, 'reviews.default');
});

test('gateway bootstrap uses router~ and Istio defaults', () => {
  const b = buildBootstrap({
    type: 'router',
    ip: '10.0.0.9',
    podName: 'istio-ingressgateway-5d8c',
    namespace: 'istio-system',
    labels: { istio: 'ingressgateway' },
    adminPort: 0,
  });
  assert.equal(
    b.node.id,
    'router~10.0.0.9~istio-ingressgateway-5d8c.istio-system~istio-system.svc.cluster.local',
  );
  assert.equal(b.nodeType, 'router');
  assert.equal(b.node.cluster, 'istio-ingressgateway-5d8c.istio-system');
  assert.equal(b.xdsAddress, 'localhost:15010');
  assert.equal(b.adminPort, 0);
  assert.equal(b.node.metadata?.WORKLOAD_NAME, 'istio-ingressgateway-5d8c');
});

test('bad bootstrap input lists every problem', () => {
  assert.throws(
    () =>
      buildBootstrap({
        ip: 'not-an-ip',
        podName: '',
        namespace: 'a~b',
        adminPort: 70000,
        instanceIps: ['10.0.0.1', 'x'],
      }),
    (e: unknown) =>
      e instanceof InvalidError &&
      e.problems.length === 5 &&
      e.problems[0] === 'ip: must be an IP address, not "not-an-ip"' &&
      e.problems.some((p) => p.startsWith('adminPort: must be a port number')),
  );
});

test('options from a pilot-agent-like environment', () => {
  const o = bootstrapOptionsFromEnv({
    POD_NAME: 'productpage-v1-1',
    POD_NAMESPACE: 'bookinfo',
    INSTANCE_IP: '10.1.0.4',
    SERVICE_ACCOUNT: 'productpage',
    XDS_ADDRESS: 'istiod:15010',
    ISTIO_META_CLUSTER_ID: 'east',
    ISTIO_META_INTERCEPTION_MODE: 'NONE',
    ISTIO_META_HTTP_PROXY_PORT: '15080',
    ISTIO_META_MESH_ID: 'mesh1',
    ISTIO_LOCALITY: 'r/z/s',
  });
  const b = buildBootstrap(o);
  assert.equal(b.node.id, 'sidecar~10.1.0.4~productpage-v1-1.bookinfo~bookinfo.svc.cluster.local');
  assert.equal(b.node.metadata?.CLUSTER_ID, 'east');
  assert.equal(b.node.metadata?.INTERCEPTION_MODE, 'NONE');
  assert.equal(b.node.metadata?.HTTP_PROXY_PORT, '15080');
  assert.equal(b.node.metadata?.MESH_ID, 'mesh1');
  assert.equal(b.node.metadata?.SERVICE_ACCOUNT, 'productpage');
  assert.equal(b.xdsAddress, 'istiod:15010');
  assert.deepEqual(b.node.locality, parseLocality('r/z/s'));
  assert.deepEqual(parseLocality('r/z/s'), { region: 'r', zone: 'z', subZone: 's' });
});
