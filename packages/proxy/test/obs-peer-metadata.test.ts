// Istio's HTTP metadata exchange (x-envoy-peer-metadata / -id) and the EDS `istio.workload`
// endpoint metadata: encoding, decoding, the exchange over a real HTTP connection, and bad input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeMessage } from '@trellis/envoy';
import {
  DOWNSTREAM_PEER_KEY,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  PeerMetadataExchange,
  UPSTREAM_PEER_KEY,
  decodePeerMetadata,
  encodePeerMetadata,
  endpointWorkload,
  parseEndpointWorkload,
  workloadFromNodeMetadata,
  type WorkloadMetadata,
} from '../src/observability/index.js';
import { newStreamInfo, type StreamInfo } from '../src/stream-info.js';

const RATINGS = workloadFromNodeMetadata({
  NAME: 'ratings-v1-7d',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'ratings-v1',
  CLUSTER_ID: 'Kubernetes',
  OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/ratings-v1',
  LABELS: { app: 'ratings', version: 'v1', 'service.istio.io/canonical-name': 'ratings' },
});
const REVIEWS = workloadFromNodeMetadata({
  NAME: 'reviews-v3-9f',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'reviews-v3',
  CLUSTER_ID: 'Kubernetes',
  LABELS: { app: 'reviews', version: 'v3' },
});

function streamInfo(direction: 'inbound' | 'outbound'): StreamInfo {
  return newStreamInfo({
    protocol: 'HTTP/1.1',
    listenerName: 'l',
    direction,
    downstreamRemoteAddress: '127.0.0.1:1',
    downstreamLocalAddress: '127.0.0.1:2',
  });
}

describe('peer metadata', () => {
  test('the header is base64 of a google.protobuf.Struct with Istio keys', () => {
    const v = encodePeerMetadata(RATINGS);
    const struct = decodeMessage('google.protobuf.Struct', Buffer.from(v, 'base64'));
    assert.deepEqual(struct, {
      CLUSTER_ID: 'Kubernetes',
      LABELS: {
        app: 'ratings',
        'service.istio.io/canonical-name': 'ratings',
        'service.istio.io/canonical-revision': 'v1',
        version: 'v1',
      },
      NAME: 'ratings-v1-7d',
      NAMESPACE: 'default',
      OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/ratings-v1',
      WORKLOAD_NAME: 'ratings-v1',
    });
    // Deterministic: the same workload gives the same bytes.
    assert.equal(encodePeerMetadata(RATINGS), v);
    assert.deepEqual(decodePeerMetadata(v), RATINGS);
  });

  test('bad headers decode to nothing, never throw', () => {
    for (const bad of [
      '',
      '!!!notbase64',
      'AAAA',
      Buffer.from('hello world').toString('base64'),
      '////',
    ])
      assert.equal(decodePeerMetadata(bad), undefined, bad);
  });

  test('EDS istio.workload: name;namespace;canonical-service;canonical-revision;cluster', () => {
    assert.deepEqual(parseEndpointWorkload('reviews-v1;default;reviews;v1;Kubernetes'), {
      instanceName: '',
      namespace: 'default',
      workloadName: 'reviews-v1',
      clusterId: 'Kubernetes',
      canonicalName: 'reviews',
      canonicalRevision: 'v1',
      appName: '',
      appVersion: '',
      workloadType: 'unknown',
    });
    assert.equal(parseEndpointWorkload('reviews-v1;default;reviews'), undefined);
    assert.equal(endpointWorkload({ istio: { workload: 'a;b;c;d;e' } })?.workloadName, 'a');
    assert.equal(
      endpointWorkload({ 'envoy.transport_socket_match': { tlsMode: 'istio' } }),
      undefined,
    );
  });

  test('exchange over a real HTTP connection: client learns the server, server learns the client', async () => {
    const client = new PeerMetadataExchange(
      'sidecar~10.1.0.9~ratings-v1-7d.default~default.svc.cluster.local',
      RATINGS,
    );
    const server = new PeerMetadataExchange(
      'sidecar~10.1.0.5~reviews-v3-9f.default~default.svc.cluster.local',
      REVIEWS,
    );
    const serverInfo = streamInfo('inbound');
    let seenByApp: IncomingHttpHeaders | undefined;
    const srv = createServer((req, res) => {
      const headers = { ...req.headers };
      const had = server.onInboundRequest(serverInfo, headers);
      seenByApp = headers;
      for (const [k, v] of server.inboundResponseHeaders(had)) res.setHeader(k, v);
      res.end('ok');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const port = (srv.address() as AddressInfo).port;
      const clientInfo = streamInfo('outbound');
      const respHeaders = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/',
            headers: Object.fromEntries(client.outboundRequestHeaders()),
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.headers));
          },
        );
        req.on('error', reject);
        req.end();
      });
      const headers = { ...respHeaders };
      client.onOutboundResponse(clientInfo, headers);
      assert.deepEqual(serverInfo.metadata.get(DOWNSTREAM_PEER_KEY), RATINGS);
      assert.deepEqual(clientInfo.metadata.get(UPSTREAM_PEER_KEY), REVIEWS);
      // Neither the application nor the downstream client sees the exchange headers.
      assert.equal(seenByApp?.[PEER_METADATA_HEADER], undefined);
      assert.equal(seenByApp?.[PEER_METADATA_ID_HEADER], undefined);
      assert.equal(headers[PEER_METADATA_HEADER], undefined);
      assert.equal(respHeaders[PEER_METADATA_ID_HEADER], server.id);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test('no metadata in the request: none in the response', () => {
    const server = new PeerMetadataExchange('id', REVIEWS);
    const i = streamInfo('inbound');
    const had = server.onInboundRequest(i, { host: 'x' });
    assert.equal(had, false);
    assert.deepEqual(server.inboundResponseHeaders(had), []);
    assert.equal(i.metadata.has(DOWNSTREAM_PEER_KEY), false);
  });

  test('decoded peers are cached by id', () => {
    const ex = new PeerMetadataExchange('me', REVIEWS);
    const first = ex.lookup('peer-1', encodePeerMetadata(RATINGS));
    // Same id, different value: the cache answers (as Istio's does).
    const second = ex.lookup('peer-1', encodePeerMetadata(REVIEWS));
    assert.equal(second, first);
    const other: WorkloadMetadata | undefined = ex.lookup('peer-2', encodePeerMetadata(REVIEWS));
    assert.equal(other?.workloadName, 'reviews-v3');
    for (let n = 0; n < 1000; n++) ex.lookup(`p${n}`, encodePeerMetadata(RATINGS));
    assert.equal(ex.lookup(undefined, 'garbage!'), undefined);
  });
});
