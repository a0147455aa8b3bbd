// The Proxy model from an xDS node: Istio's node id and metadata.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isProxylessGrpc, proxyFromNode, wildcardAddress } from '../src/index.js';

describe('proxyFromNode', () => {
  test('reads the node id and Istio metadata', () => {
    const r = proxyFromNode({
      id: 'sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local',
      metadata: {
        NAMESPACE: 'default',
        LABELS: { app: 'reviews', version: 'v1', bad: 3 },
        SERVICE_ACCOUNT: 'bookinfo-reviews',
        WORKLOAD_NAME: 'reviews-v1',
        INSTANCE_IPS: '10.1.2.3,fd00::3',
        ISTIO_VERSION: '1.24.0',
        CLUSTER_ID: 'east',
        HTTP_PROXY_PORT: '15080',
      },
    });
    assert.ok(r.ok);
    const p = r.value;
    assert.equal(p.type, 'sidecar');
    assert.equal(p.id, 'reviews-v1-abc.default');
    assert.deepEqual(p.ipAddresses, ['10.1.2.3', 'fd00::3']);
    assert.equal(p.namespace, 'default');
    assert.deepEqual(p.labels, { app: 'reviews', version: 'v1' });
    assert.equal(p.serviceAccount, 'bookinfo-reviews');
    assert.equal(p.workloadName, 'reviews-v1');
    assert.equal(p.istioVersion, '1.24.0');
    assert.equal(p.clusterId, 'east');
    assert.equal(p.dnsDomain, 'default.svc.cluster.local');
    assert.equal(p.interceptionMode, 'REDIRECT');
    assert.equal(p.httpProxyPort, 15080);
    assert.equal(isProxylessGrpc(p), false);
    assert.equal(wildcardAddress(p), '0.0.0.0');
  });

  test('defaults from the node id; gRPC generator; gateways', () => {
    const r = proxyFromNode({
      id: 'router~10.0.0.9~gw-0.istio-system~istio-system.svc.cluster.local',
      metadata: { GENERATOR: 'grpc', INTERCEPTION_MODE: 'NONE' },
    });
    assert.ok(r.ok);
    assert.equal(r.value.type, 'router');
    assert.equal(r.value.namespace, 'istio-system');
    assert.equal(r.value.clusterId, 'Kubernetes');
    assert.equal(r.value.interceptionMode, 'NONE');
    assert.ok(isProxylessGrpc(r.value));
  });

  test('malformed nodes are errors, not crashes', () => {
    for (const id of [
      '',
      'sidecar~x',
      'ztunnel~10.0.0.1~a.b~b.svc.cluster.local',
      'sidecar~notanip~a.b~d',
    ]) {
      const r = proxyFromNode({ id, metadata: { LABELS: 'not-an-object' } });
      assert.equal(r.ok, false, id);
    }
  });
});
