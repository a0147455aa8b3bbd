// Downstream TLS (DownstreamTlsContext on filter chains), through a whole proxy configured over
// ADS: SNI-selected chains with their own certificates, ALPN h2 and http/1.1 through the HTTP
// connection manager (and clients whose ALPN does not overlap, as Istio's), mTLS with client
// certificate verification and SAN matching, TLS passthrough on SNI, handshake failures counted
// and survived, gRPC over TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '@trellis/envoy';
import {
  echoPackage,
  spiffeId,
  startEchoServer,
  type EchoReply,
  type EchoRequest,
} from '@trellis/testing';
import {
  CA,
  OTHER_CA,
  SLEEP_ID,
  Harness,
  ads,
  clientCert,
  downstreamTls,
  h2Get,
  httpProtocolOptions,
  handshake,
  httpsGet,
  inline,
  listener,
  plainBackend,
  routerHcm,
  serverCert,
  staticCluster,
  tcpProxy,
  tlsBackend,
  tlsCertificateSecret,
  waitFor,
} from './tls-fixtures.js';

test('tls: SNI selects the filter chain and its certificate; ALPN h2 and http/1.1 reach the HCM', async () => {
  const backend = await plainBackend();
  const h = await Harness.start();
  try {
    const certA = serverCert('a.test');
    const certB = serverCert('*.b.test');
    await h.configure(
      [staticCluster('backend', backend.port)],
      [
        listener('https', [
          {
            name: 'chain-a',
            filterChainMatch: { serverNames: ['a.test'], transportProtocol: 'tls' },
            filters: [{ name: 'hcm', typedConfig: routerHcm('backend', 'a') }],
            transportSocket: downstreamTls({
              commonTlsContext: {
                alpnProtocols: ['h2', 'http/1.1'],
                tlsCertificates: [
                  { certificateChain: inline(certA.chain), privateKey: inline(certA.key) },
                ],
              },
            }),
          },
          {
            name: 'chain-b',
            filterChainMatch: { serverNames: ['*.b.test'], transportProtocol: 'tls' },
            filters: [{ name: 'hcm', typedConfig: routerHcm('backend', 'b') }],
            transportSocket: downstreamTls({
              commonTlsContext: {
                alpnProtocols: ['h2', 'http/1.1'],
                tlsCertificates: [
                  { certificateChain: inline(certB.chain), privateKey: inline(certB.key) },
                ],
              },
            }),
          },
        ]),
      ],
    );
    const port = await h.port('https');
    const a1 = await httpsGet(port, '/one', {
      servername: 'a.test',
      ca: CA.cert,
      ALPNProtocols: ['http/1.1'],
    });
    assert.equal(a1.status, 200);
    assert.equal(a1.body, 'backend /one');
    assert.equal(a1.alpn, 'http/1.1');
    assert.equal(a1.peer, 'DNS:a.test');

    const b2 = await h2Get(port, '/two', { servername: 'x.b.test', ca: CA.cert });
    assert.equal(b2.status, 200);
    assert.equal(b2.body, 'backend /two');
    assert.equal(b2.alpn, 'h2');
    assert.equal(b2.peer, 'DNS:*.b.test');
    assert.equal(h.counter('http.a.downstream_cx_http1_total'), 1);
    assert.equal(h.counter('http.b.downstream_cx_http2_total'), 1);
    assert.equal(backend.seen.at(-1)?.headers['x-forwarded-proto'], 'https');

    // A name no chain serves: no filter chain matches, the connection is closed.
    const none = await handshake(port, { servername: 'c.test', ca: CA.cert });
    assert.equal(none.ok, false);

    // Istio's ALPN (no overlap with h2/http1.1): no ALPN rather than a fatal alert, and the
    // HCM tells HTTP/1.1 and HTTP/2 apart by the bytes.
    const istio1 = await httpsGet(port, '/istio', {
      servername: 'a.test',
      ca: CA.cert,
      ALPNProtocols: ['istio-peer-exchange', 'istio'],
    });
    assert.equal(istio1.status, 200);
    assert.equal(istio1.alpn, false);
    const stats = `listener.127.0.0.1_${port}.ssl`;
    assert.ok(h.counter(`${stats}.handshake`) >= 3);
    assert.ok(h.counter(`${stats}.versions.TLSv1.3`) >= 3);
  } finally {
    await h.close();
    await backend.close();
  }
});

test('tls: mTLS verifies client certificates (trusted CA, SAN match) and counts failures', async () => {
  const backend = await plainBackend();
  const h = await Harness.start();
  try {
    const cert = CA.issue({
      dnsNames: ['reviews.default.svc.cluster.local'],
      uris: [spiffeId('default', 'reviews')],
    });
    await h.configure(
      [staticCluster('backend', backend.port)],
      [
        listener(
          'inbound',
          [
            {
              name: 'mtls',
              filterChainMatch: { transportProtocol: 'tls' },
              filters: [{ name: 'hcm', typedConfig: routerHcm('backend', 'inbound') }],
              transportSocket: downstreamTls({
                requireClientCertificate: true,
                commonTlsContext: {
                  alpnProtocols: ['h2', 'http/1.1'],
                  tlsCertificates: [
                    { certificateChain: inline(cert.chain), privateKey: inline(cert.key) },
                  ],
                  validationContext: {
                    trustedCa: inline(CA.cert),
                    matchTypedSubjectAltNames: [
                      { sanType: 'URI', matcher: { prefix: 'spiffe://cluster.local/ns/default/' } },
                    ],
                  },
                },
              }),
            },
          ],
          { trafficDirection: 'INBOUND' },
        ),
      ],
    );
    const port = await h.port('inbound');
    const ssl = `listener.127.0.0.1_${port}.ssl`;
    const sleep = clientCert(SLEEP_ID);
    const ok = await httpsGet(port, '/ok', {
      servername: 'reviews.default.svc.cluster.local',
      ca: CA.cert,
      key: sleep.key,
      cert: sleep.cert,
    });
    assert.equal(ok.status, 200);
    assert.equal(h.counter(`${ssl}.handshake`), 1);

    // The peer's identity reaches Istio's metrics (connection_security_policy mutual_tls).
    const line = await waitFor(
      () =>
        h.proxy.stats
          .renderPrometheus()
          .split('\n')
          .find((l) => l.startsWith('istio_requests_total{')),
      'istio_requests_total',
    );
    assert.match(line, /source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep"/);
    assert.match(line, /connection_security_policy="mutual_tls"/);
    assert.match(
      line,
      /destination_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/reviews"/,
    );

    const other = clientCert(spiffeId('prod', 'sleep'));
    const badSan = await handshake(port, {
      servername: 'reviews.default.svc.cluster.local',
      ca: CA.cert,
      key: other.key,
      cert: other.cert,
    });
    assert.equal(badSan.ok, false);
    await waitFor(() => h.counter(`${ssl}.fail_verify_san`) === 1, 'fail_verify_san');

    const untrusted = clientCert(SLEEP_ID, OTHER_CA);
    const badCa = await handshake(port, {
      servername: 'reviews.default.svc.cluster.local',
      ca: CA.cert,
      key: untrusted.key,
      cert: untrusted.cert,
    });
    assert.equal(badCa.ok, false);
    await waitFor(() => h.counter(`${ssl}.fail_verify_error`) === 1, 'fail_verify_error');

    const noCert = await handshake(port, {
      servername: 'reviews.default.svc.cluster.local',
      ca: CA.cert,
    });
    assert.equal(noCert.ok, false);
    await waitFor(() => h.counter(`${ssl}.fail_verify_no_cert`) === 1, 'fail_verify_no_cert');
    assert.ok(h.counter(`${ssl}.connection_error`) >= 3);
    assert.equal(backend.seen.length, 1, 'only the verified client reached the backend');

    // Plaintext and garbage on a TLS chain: closed, counted, the proxy goes on.
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('\x16\x03\x01\x00\x05hello-not-tls'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    const again = await httpsGet(port, '/again', {
      servername: 'reviews.default.svc.cluster.local',
      ca: CA.cert,
      key: sleep.key,
      cert: sleep.cert,
    });
    assert.equal(again.status, 200);
  } finally {
    await h.close();
    await backend.close();
  }
});

test('tls: passthrough on SNI (tcp_proxy, no termination) next to a terminating chain', async () => {
  const inner = serverCert('pass.test');
  const tlsServer = await tlsBackend(inner, { h2: false });
  const backend = await plainBackend();
  const h = await Harness.start();
  try {
    const edge = serverCert('edge.test');
    await h.configure(
      [staticCluster('pass', tlsServer.port), staticCluster('backend', backend.port)],
      [
        listener('gw', [
          {
            name: 'passthrough',
            filterChainMatch: { serverNames: ['pass.test'] },
            filters: [{ name: 'tcp', typedConfig: tcpProxy('pass') }],
          },
          {
            name: 'terminate',
            filterChainMatch: { serverNames: ['edge.test'] },
            filters: [{ name: 'hcm', typedConfig: routerHcm('backend') }],
            transportSocket: downstreamTls({
              commonTlsContext: {
                tlsCertificates: [
                  { certificateChain: inline(edge.chain), privateKey: inline(edge.key) },
                ],
              },
            }),
          },
        ]),
      ],
    );
    const port = await h.port('gw');
    const p = await httpsGet(port, '/through', { servername: 'pass.test', ca: CA.cert });
    assert.equal(p.status, 200);
    assert.equal(p.peer, 'DNS:pass.test', "the backend's own certificate");
    assert.equal(tlsServer.seen[0]?.sni, 'pass.test');
    const t = await httpsGet(port, '/edge', { servername: 'edge.test', ca: CA.cert });
    assert.equal(t.status, 200);
    assert.equal(t.peer, 'DNS:edge.test');
    assert.equal(t.body, 'backend /edge');
  } finally {
    await h.close();
    await backend.close();
    await tlsServer.close();
  }
});

test('tls: without tls_inspector the transport socket reads the ClientHello itself (SDS cert, gRPC)', async () => {
  const echo = await startEchoServer('echo-tls', 'v1');
  const h = await Harness.start();
  try {
    const cert = serverCert('grpc.test');
    const cluster = staticCluster('echo', echo.port, {
      typedExtensionProtocolOptions: httpProtocolOptions({
        explicitHttpConfig: { http2ProtocolOptions: {} },
      }),
    });
    const l = listener('grpc', [
      {
        filters: [{ name: 'hcm', typedConfig: routerHcm('echo', 'grpc') }],
        transportSocket: downstreamTls({
          commonTlsContext: {
            alpnProtocols: ['h2'],
            tlsCertificateSdsSecretConfigs: [{ name: 'grpc-cert', sdsConfig: ads }],
          },
        }),
      },
    ]);
    delete (l as { listenerFilters?: unknown }).listenerFilters;
    await h.configure([cluster], [l]);
    const sn = await h.push(TYPE_URL.Secret, [
      ['grpc-cert', tlsCertificateSecret('grpc-cert', cert)],
    ]);
    assert.equal((await h.answer(TYPE_URL.Secret, sn)).error, undefined);
    await waitFor(() => h.proxy.secrets.active().has('grpc-cert'), 'secret applied');
    const port = await h.port('grpc');
    const Echo = echoPackage().trellis.testing.v1.Echo;
    const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(CA.cert)), {
      'grpc.ssl_target_name_override': 'grpc.test',
      'grpc.default_authority': 'grpc.test',
    });
    try {
      const reply = await new Promise<EchoReply>((resolve, reject) =>
        (
          client as unknown as {
            Echo: (
              r: EchoRequest,
              o: grpc.CallOptions,
              cb: (e: grpc.ServiceError | null, r: EchoReply) => void,
            ) => void;
          }
        ).Echo({ message: 'over tls' }, { deadline: Date.now() + 5000 }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
      assert.equal(reply.message, 'over tls');
      assert.equal(reply.server, 'echo-tls');
    } finally {
      client.close();
    }
  } finally {
    await h.close();
    await echo.close();
  }
});
