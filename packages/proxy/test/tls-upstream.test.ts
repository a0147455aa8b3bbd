// Upstream TLS (UpstreamTlsContext): origination with SNI and server verification (trusted CA,
// SANs: pass, 503 UF naming the TLS error), client certificates from agent-resolved files
// (file-cert / file-root), HTTP/2 by ALPN with auto_config, and Istio's mTLS ALPN between two
// Trellis listeners (sidecar to sidecar).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spiffeId, withTempDir } from '@trellis/testing';
import {
  CA,
  OTHER_CA,
  Harness,
  clientCert,
  downstreamTls,
  httpProtocolOptions,
  inline,
  listener,
  plainBackend,
  routerHcm,
  serverCert,
  staticCluster,
  tlsBackend,
  upstreamTls,
} from './tls-fixtures.js';
import http from 'node:http';

/** A plaintext listener in front of `cluster`, and a GET through it. */
function plainListener(name: string, cluster: string): ReturnType<typeof listener> {
  const l = listener(name, [{ filters: [{ name: 'hcm', typedConfig: routerHcm(cluster, name) }] }]);
  delete (l as { listenerFilters?: unknown }).listenerFilters;
  return l;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('tls upstream: SNI and SAN verification pass; a SAN mismatch or an unknown CA is 503 UF', async () => {
  const backend = await tlsBackend(serverCert('api.test'), { h2: false });
  const other = await tlsBackend(OTHER_CA.issue({ dnsNames: ['api.test'] }), { h2: false });
  const h = await Harness.start();
  try {
    const verify = (sans: string[]): Record<string, unknown> => ({
      sni: 'api.test',
      commonTlsContext: {
        validationContext: {
          trustedCa: inline(CA.cert),
          matchTypedSubjectAltNames: sans.map((s) => ({ sanType: 'DNS', matcher: { exact: s } })),
        },
      },
    });
    await h.configure(
      [
        staticCluster('good', backend.port, { transportSocket: upstreamTls(verify(['api.test'])) }),
        staticCluster('wrong-san', backend.port, {
          transportSocket: upstreamTls(verify(['other.test'])),
        }),
        staticCluster('untrusted', other.port, {
          transportSocket: upstreamTls(verify(['api.test'])),
        }),
      ],
      [
        listener('out', [
          {
            filters: [
              {
                name: 'hcm',
                typedConfig: {
                  ...routerHcm('good', 'out'),
                  routeConfig: {
                    name: 'r',
                    virtualHosts: [
                      {
                        name: 'v',
                        domains: ['*'],
                        routes: ['good', 'wrong-san', 'untrusted'].map((c) => ({
                          match: { prefix: `/${c}` },
                          route: { cluster: c },
                        })),
                      },
                    ],
                  },
                } as ReturnType<typeof routerHcm>,
              },
            ],
          },
        ]),
      ],
    );
    const port = await h.port('out');
    const ok = await get(port, '/good');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'tls backend /good HTTP/1.1');
    assert.equal(backend.seen[0]?.sni, 'api.test');
    assert.equal(h.counter('cluster.good.ssl.handshake'), 1);

    const san = await get(port, '/wrong-san');
    assert.equal(san.status, 503);
    assert.match(
      san.body,
      /transport failure reason: TLS_error:\|CERTIFICATE_VERIFY_FAILED:verify cert failed: verify SAN list:TLS_error_end/,
    );
    assert.equal(h.counter('cluster.wrong-san.ssl.fail_verify_san'), 1);
    assert.equal(backend.seen.length, 1, 'nothing reached the backend');

    const ca = await get(port, '/untrusted');
    assert.equal(ca.status, 503);
    assert.match(ca.body, /CERTIFICATE_VERIFY_FAILED/);
    assert.equal(h.counter('cluster.untrusted.ssl.fail_verify_error'), 1);
    assert.equal(h.counter('cluster.untrusted.upstream_cx_connect_fail'), 1);
    assert.equal(other.seen.length, 0);
  } finally {
    await h.close();
    await backend.close();
    await other.close();
  }
});

test('tls upstream: a client certificate from file-cert / file-root, HTTP/2 by ALPN with auto_config', async () => {
  await withTempDir(async (dir) => {
    const client = clientCert(spiffeId('default', 'tls'));
    await writeFile(join(dir, 'cert.pem'), client.chain);
    await writeFile(join(dir, 'key.pem'), client.key);
    await writeFile(join(dir, 'ca.pem'), CA.cert);
    const backend = await tlsBackend(serverCert('mtls.test'), { requireClientCa: CA });
    const h = await Harness.start();
    try {
      const ads = { ads: {}, resourceApiVersion: 'V3' as const };
      await h.configure(
        [
          staticCluster('mtls', backend.port, {
            typedExtensionProtocolOptions: httpProtocolOptions({ autoConfig: {} }),
            transportSocket: upstreamTls({
              sni: 'mtls.test',
              commonTlsContext: {
                tlsCertificateSdsSecretConfigs: [
                  {
                    name: `file-cert:${join(dir, 'cert.pem')}~${join(dir, 'key.pem')}`,
                    sdsConfig: ads,
                  },
                ],
                combinedValidationContext: {
                  defaultValidationContext: {
                    matchTypedSubjectAltNames: [
                      { sanType: 'DNS', matcher: { exact: 'mtls.test' } },
                    ],
                  },
                  validationContextSdsSecretConfig: {
                    name: `file-root:${join(dir, 'ca.pem')}`,
                    sdsConfig: ads,
                  },
                },
              },
            }),
          }),
        ],
        [plainListener('out', 'mtls')],
      );
      const port = await h.port('out');
      for (const path of ['/a', '/b']) {
        const r = await get(port, path);
        assert.equal(r.status, 200);
        assert.equal(r.body, `tls backend ${path} HTTP/2.0`);
      }
      assert.equal(backend.seen[0]?.alpn, 'h2');
      assert.equal(backend.seen[0]?.peer, `URI:${spiffeId('default', 'tls')}`);
      assert.equal(h.counter('cluster.mtls.upstream_cx_total'), 1, 'one multiplexed connection');
      // Agent-resolved names are read locally, never subscribed over SDS.
      const sds = await h.secretRequests();
      assert.ok(sds.every((r) => (r.resourceNamesSubscribe ?? []).length === 0));
    } finally {
      await h.close();
      await backend.close();
    }
  });
});

test("tls upstream: Istio's mTLS ALPN between two Trellis listeners, explicit HTTP/2", async () => {
  const backend = await plainBackend();
  const h = await Harness.start();
  try {
    const inboundCert = CA.issue({ uris: [spiffeId('default', 'reviews')] });
    const outboundCert = clientCert(spiffeId('default', 'productpage'));
    const inbound = listener(
      'inbound',
      [
        {
          filterChainMatch: { transportProtocol: 'tls' },
          filters: [{ name: 'hcm', typedConfig: routerHcm('backend', 'inbound') }],
          transportSocket: downstreamTls({
            requireClientCertificate: true,
            commonTlsContext: {
              alpnProtocols: ['h2', 'http/1.1'],
              tlsCertificates: [
                {
                  certificateChain: inline(inboundCert.chain),
                  privateKey: inline(inboundCert.key),
                },
              ],
              validationContext: { trustedCa: inline(CA.cert) },
            },
          }),
        },
      ],
      { address: { socketAddress: { address: '127.0.0.2', portValue: 0 } } },
    );
    // The inbound listener first, to learn its port.
    await h.configure([staticCluster('backend', backend.port)], [inbound]);
    const inboundPort = await h.port('inbound');
    const mesh = staticCluster('reviews', inboundPort, {
      typedExtensionProtocolOptions: httpProtocolOptions({
        explicitHttpConfig: { http2ProtocolOptions: {} },
      }),
      transportSocket: upstreamTls({
        sni: 'outbound_.9080_._.reviews.default.svc.cluster.local',
        commonTlsContext: {
          alpnProtocols: ['istio-peer-exchange', 'istio'],
          tlsCertificates: [
            { certificateChain: inline(outboundCert.chain), privateKey: inline(outboundCert.key) },
          ],
          validationContext: {
            trustedCa: inline(CA.cert),
            matchTypedSubjectAltNames: [
              { sanType: 'URI', matcher: { exact: spiffeId('default', 'reviews') } },
            ],
          },
        },
      }),
    });
    mesh.loadAssignment = {
      clusterName: 'reviews',
      endpoints: [
        {
          lbEndpoints: [
            {
              endpoint: {
                address: { socketAddress: { address: '127.0.0.2', portValue: inboundPort } },
              },
            },
          ],
        },
      ],
    };
    await h.configure(
      [staticCluster('backend', backend.port), mesh],
      [inbound, plainListener('out', 'reviews')],
    );
    const port = await h.port('out');
    const r = await get(port, '/reviews/1');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'backend /reviews/1');
    assert.equal(h.counter('http.inbound.downstream_cx_http2_total'), 1, 'HTTP/2 by its preface');
    assert.equal(h.counter('cluster.reviews.ssl.handshake'), 1);
  } finally {
    await h.close();
    await backend.close();
  }
});

test('tls upstream: connection pools are keyed on the transport socket', async () => {
  const { ClusterImpl } = await import('../src/upstream/index.js');
  const { FakeStats } = await import('./http-fixtures.js');
  const cluster = new ClusterImpl(
    {
      name: 'm',
      type: 'EDS',
      transportSocketMatches: [
        {
          name: 'tlsMode-istio',
          match: { tlsMode: 'istio' },
          transportSocket: upstreamTls({}),
        },
        {
          name: 'plain',
          match: {},
          transportSocket: { name: 'envoy.transport_sockets.raw_buffer' },
        },
      ],
    },
    { stats: new FakeStats() },
  );
  const cla = (tls: boolean): Parameters<typeof cluster.setLoadAssignment>[0] => ({
    endpoints: [
      {
        lbEndpoints: [
          {
            endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 9 } } },
            ...(tls
              ? {
                  metadata: {
                    filterMetadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } },
                  },
                }
              : {}),
          },
        ],
      },
    ],
  });
  cluster.setLoadAssignment(cla(false));
  const plainHost = cluster.hosts()[0];
  assert.ok(plainHost);
  const plainPool = cluster.httpPool(plainHost, 'http1');
  cluster.setLoadAssignment(cla(true));
  const tlsHost = cluster.hosts()[0];
  assert.ok(tlsHost);
  assert.equal(cluster.transportSocketFor(tlsHost), 'tls');
  assert.notEqual(cluster.httpPool(tlsHost, 'http1'), plainPool, 'a TLS pool of its own');
  assert.equal(cluster.httpPool(tlsHost, 'http1'), cluster.httpPool(tlsHost, 'http1'));
  cluster.close();
});
