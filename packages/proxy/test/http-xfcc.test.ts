// x-forwarded-client-cert: each forward_client_cert_details mode on a mutual-TLS listener and on
// a plaintext one, through a whole proxy configured over ADS, with the element's fields checked
// against the client certificate; and the pure pieces (modes, RFC 2253 subjects).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { spiffeId } from '@trellis/testing';
import { applyXfcc, xfccConfig } from '../src/http/xfcc.js';
import { rfc2253 } from '../src/tls/cert-text.js';
import {
  CA,
  SLEEP_ID,
  Harness,
  clientCert,
  downstreamTls,
  httpsGet,
  inline,
  listener,
  plainBackend,
  routerHcm,
  staticCluster,
} from './tls-fixtures.js';
import type { AnyMessage } from '@trellis/envoy';

const REVIEWS_ID = spiffeId('default', 'reviews');

/** The reviews server certificate the inbound listener presents. */
function reviewsServerCert(): { chain: string; key: string } {
  return CA.issue({
    dnsNames: ['reviews.default.svc.cluster.local'],
    uris: [REVIEWS_ID],
    usages: ['server'],
  });
}

/**
 * One inbound listener: TLS connections take the mutual-TLS chain (tls_inspector), the rest the
 * plaintext one, both with `hcm`.
 */
function inboundListener(hcm: AnyMessage, server: { chain: string; key: string }) {
  return listener('inbound', [
    {
      name: 'mtls',
      filterChainMatch: { transportProtocol: 'tls' },
      filters: [{ name: 'hcm', typedConfig: hcm }],
      transportSocket: downstreamTls({
        requireClientCertificate: true,
        commonTlsContext: {
          tlsCertificates: [
            { certificateChain: inline(server.chain), privateKey: inline(server.key) },
          ],
          validationContext: { trustedCa: inline(CA.cert) },
        },
      }),
    },
    { name: 'plain', filters: [{ name: 'hcm', typedConfig: hcm }] },
  ]);
}

test('xfcc: modes on mutual TLS and plaintext, with Istio sidecar and gateway details', async () => {
  const backend = await plainBackend();
  const h = await Harness.start();
  try {
    const server = reviewsServerCert();
    const hcm = (xfcc: Record<string, unknown>): AnyMessage => ({
      ...routerHcm('backend', 'inbound'),
      ...xfcc,
    });
    const configure = async (xfcc: Record<string, unknown>) => {
      await h.configure(
        [staticCluster('backend', backend.port)],
        [inboundListener(hcm(xfcc), server)],
      );
      const port = await h.port('inbound');
      return { mtls: port, plain: port };
    };
    const sleep = clientCert(SLEEP_ID);
    const peer = new X509Certificate(sleep.cert);
    const hash = createHash('sha256').update(peer.raw).digest('hex');
    const incoming = 'By=spiffe://upstream.example;Hash=00ff';
    const send = async (port: number, tls: boolean): Promise<string | undefined> => {
      const before = backend.seen.length;
      if (tls) {
        const r = await httpsGet(
          port,
          '/x',
          {
            servername: 'reviews.default.svc.cluster.local',
            ca: CA.cert,
            key: sleep.key,
            cert: sleep.cert,
          },
          { 'x-forwarded-client-cert': incoming },
        );
        assert.equal(r.status, 200);
      } else {
        const res = await fetch(`http://127.0.0.1:${port}/x`, {
          headers: { 'x-forwarded-client-cert': incoming },
        });
        assert.equal(res.status, 200);
        await res.text();
      }
      assert.equal(backend.seen.length, before + 1);
      const v = backend.seen[before]?.headers['x-forwarded-client-cert'];
      return Array.isArray(v) ? v.join(',') : v;
    };

    // Istio's sidecar inbound: APPEND_FORWARD with Subject, DNS and URI.
    let ports = await configure({
      forwardClientCertDetails: 'APPEND_FORWARD',
      setCurrentClientCertDetails: { subject: true, dns: true, uri: true },
    });
    const subject = rfc2253(peer.subject);
    assert.equal(
      await send(ports.mtls, true),
      `${incoming},By=${REVIEWS_ID};Hash=${hash};Subject="${subject}";URI=${SLEEP_ID}`,
    );
    assert.equal(await send(ports.plain, false), undefined, 'not mutual TLS: removed');

    // Istio's gateways: SANITIZE_SET with Subject, Cert, DNS and URI.
    ports = await configure({
      forwardClientCertDetails: 'SANITIZE_SET',
      setCurrentClientCertDetails: { subject: true, cert: true, dns: true, uri: true },
    });
    const set = (await send(ports.mtls, true)) ?? '';
    assert.ok(set.startsWith(`By=${REVIEWS_ID};Hash=${hash};Cert="`), set);
    assert.ok(set.endsWith(`;Subject="${subject}";URI=${SLEEP_ID}`), set);
    assert.ok(!set.includes('upstream.example'), 'the incoming header is replaced');
    const cert = /Cert="([^"]*)"/.exec(set)?.[1];
    assert.equal(decodeURIComponent(cert ?? ''), peer.toString());

    // The default, SANITIZE, and the forwarding modes.
    ports = await configure({});
    assert.equal(await send(ports.mtls, true), undefined);
    ports = await configure({ forwardClientCertDetails: 'FORWARD_ONLY' });
    assert.equal(await send(ports.mtls, true), incoming);
    assert.equal(await send(ports.plain, false), undefined);
    ports = await configure({ forwardClientCertDetails: 'ALWAYS_FORWARD_ONLY' });
    assert.equal(await send(ports.plain, false), incoming);
  } finally {
    await h.close();
    await backend.close();
  }
});

test('xfcc: applyXfcc per mode; subjects in RFC 2253 order with escapes', () => {
  const cfg = (mode: string) => xfccConfig({ forwardClientCertDetails: mode } as never);
  const run = (mode: string, element: string | undefined, cur?: string) => {
    const h: Record<string, string | undefined> = cur ? { 'x-forwarded-client-cert': cur } : {};
    applyXfcc(h, cfg(mode), element);
    return h['x-forwarded-client-cert'];
  };
  assert.equal(run('SANITIZE', 'E', 'C'), undefined);
  assert.equal(run('FORWARD_ONLY', 'E', 'C'), 'C');
  assert.equal(run('FORWARD_ONLY', undefined, 'C'), undefined);
  assert.equal(run('APPEND_FORWARD', 'E', 'C'), 'C,E');
  assert.equal(run('APPEND_FORWARD', 'E'), 'E');
  assert.equal(run('APPEND_FORWARD', undefined, 'C'), undefined);
  assert.equal(run('SANITIZE_SET', 'E', 'C'), 'E');
  assert.equal(run('ALWAYS_FORWARD_ONLY', undefined, 'C'), 'C');
  assert.equal(xfccConfig({}).mode, 'SANITIZE');
  assert.equal(rfc2253('C=US\nO=Acme, Inc.\nCN=test'), 'CN=test,O=Acme\\, Inc.,C=US');
});

test('command operators on the TLS connection in header values: peer certificate, version, connection id', async () => {
  const backend = await plainBackend();
  const h = await Harness.start();
  try {
    const server = reviewsServerCert();
    const ops: Record<string, string> = {
      'x-version': '%DOWNSTREAM_TLS_VERSION%',
      'x-cipher': '%DOWNSTREAM_TLS_CIPHER%',
      'x-subject': '%DOWNSTREAM_PEER_SUBJECT%',
      'x-issuer': '%DOWNSTREAM_PEER_ISSUER%',
      'x-local': '%DOWNSTREAM_LOCAL_SUBJECT%',
      'x-serial': '%DOWNSTREAM_PEER_SERIAL%',
      'x-fp256': '%DOWNSTREAM_PEER_FINGERPRINT_256%',
      'x-fp1': '%DOWNSTREAM_PEER_FINGERPRINT_1%',
      'x-cert': '%DOWNSTREAM_PEER_CERT%',
      'x-not-after': '%DOWNSTREAM_PEER_CERT_V_END(%s)%',
      'x-uri': '%DOWNSTREAM_PEER_URI_SAN%',
      'x-local-dns': '%DOWNSTREAM_LOCAL_DNS_SAN%',
      'x-conn': '%CONNECTION_ID%',
      'x-unique': '%UNIQUE_ID%',
    };
    const base = routerHcm('backend', 'inbound') as unknown as {
      routeConfig: { virtualHosts: Record<string, unknown>[] };
    };
    const hcm = {
      ...base,
      routeConfig: {
        ...base.routeConfig,
        virtualHosts: base.routeConfig.virtualHosts.map((v) => ({
          ...v,
          requestHeadersToAdd: Object.entries(ops).map(([key, value]) => ({
            header: { key, value },
          })),
        })),
      },
    } as unknown as AnyMessage;
    await h.configure([staticCluster('backend', backend.port)], [inboundListener(hcm, server)]);
    const port = await h.port('inbound');
    const sleep = clientCert(SLEEP_ID);
    const peer = new X509Certificate(sleep.cert);
    const r = await httpsGet(port, '/x', {
      servername: 'reviews.default.svc.cluster.local',
      ca: CA.cert,
      key: sleep.key,
      cert: sleep.cert,
    });
    assert.equal(r.status, 200);
    const got = backend.seen.at(-1)?.headers ?? {};
    assert.match(String(got['x-version']), /^TLSv1\.[23]$/);
    assert.match(String(got['x-cipher']), /^[A-Z0-9_-]+$/);
    // An empty subject (SPIFFE certificates often have none) adds no header.
    assert.equal(got['x-subject'], rfc2253(peer.subject) || undefined);
    assert.equal(got['x-issuer'], rfc2253(peer.issuer) || undefined);
    assert.ok(got['x-issuer'] !== undefined, 'the CA has a subject');
    assert.equal(got['x-local'], rfc2253(new X509Certificate(server.chain).subject) || undefined);
    assert.equal(got['x-serial'], peer.serialNumber.toLowerCase());
    assert.equal(got['x-fp256'], createHash('sha256').update(peer.raw).digest('hex'));
    assert.equal(got['x-fp1'], createHash('sha1').update(peer.raw).digest('hex'));
    assert.equal(decodeURIComponent(String(got['x-cert'])), peer.toString());
    assert.equal(got['x-not-after'], String(Math.floor(Date.parse(peer.validTo) / 1000)));
    assert.equal(got['x-uri'], SLEEP_ID);
    assert.equal(got['x-local-dns'], 'reviews.default.svc.cluster.local');
    assert.match(String(got['x-conn']), /^\d+$/);
    assert.match(String(got['x-unique']), /^[0-9a-f-]{36}$/);

    // Plaintext: the TLS values are not there, so their headers are not added.
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    assert.equal(res.status, 200);
    await res.text();
    const plain = backend.seen.at(-1)?.headers ?? {};
    for (const k of ['x-version', 'x-subject', 'x-cert', 'x-fp256', 'x-not-after'])
      assert.equal(plain[k], undefined, k);
    assert.match(String(plain['x-conn']), /^\d+$/);
    assert.notEqual(plain['x-conn'], got['x-conn'], 'another connection');
  } finally {
    await h.close();
    await backend.close();
  }
});
