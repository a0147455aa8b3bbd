// Gateway listeners the Trellis proxy used to reject (NACK): certificates from
// `tls.tlsCertificates`, `bind: unix://...` servers, and two servers claiming the same host on
// one port. Each case goes through generate() for the ingress gateway of a small world.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DownstreamTlsContext, FilterChain, Listener } from '@trellis/envoy';
import { generate, gatewayProblems, type GeneratedResources } from '../src/index.js';
import { INGRESS_GATEWAY_YAML, assertValidEnvoy, world, type World } from './fixtures.js';

const INGRESS = `${INGRESS_GATEWAY_YAML}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sleep}
spec:
  hosts: ["*.example.com"]
  gateways: [a, b]
  http:
  - route:
    - destination: {host: sleep}
`;

function gatewayWorld(configs: string): { w: World; res: GeneratedResources } {
  const w = world(`${INGRESS}\n---\n${configs}`);
  const res = generate(
    w.snapshot,
    w.proxy('istio-ingressgateway-0', 'istio-system', { type: 'router' }),
  );
  assertValidEnvoy(res);
  return { w, res };
}

function listener(res: GeneratedResources, name: string): Listener {
  const l = res.listeners.find((x) => x.name === name);
  assert.ok(l, `no listener ${name}; have ${res.listeners.map((x) => x.name).join(', ')}`);
  return l;
}

function tlsContext(c: FilterChain): DownstreamTlsContext | undefined {
  return c.transportSocket?.typedConfig as DownstreamTlsContext | undefined;
}

function tlsContexts(l: Listener): (DownstreamTlsContext | undefined)[] {
  return (l.filterChains ?? []).map(tlsContext);
}

describe('gateway listeners', () => {
  test('tlsCertificates: one file certificate (SDS file-cert:) each, the CA validates clients', () => {
    const { res } = gatewayWorld(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-mutual, protocol: HTTPS}
    hosts: [a.example.com]
    tls:
      mode: MUTUAL
      caCertificates: /etc/certs/ca.pem
      tlsCertificates:
      - {serverCertificate: /etc/certs/rsa.pem, privateKey: /etc/certs/rsa.key}
      - {serverCertificate: /etc/certs/ecdsa.pem, privateKey: /etc/certs/ecdsa.key}
  - port: {number: 443, name: https-simple, protocol: HTTPS}
    hosts: [b.example.com]
    tls:
      mode: SIMPLE
      tlsCertificates:
      - {serverCertificate: /etc/certs/b.pem, privateKey: /etc/certs/b.key}
  - port: {number: 443, name: https-entry-ca, protocol: HTTPS}
    hosts: [c.example.com]
    tls:
      mode: MUTUAL
      tlsCertificates:
      - {serverCertificate: /etc/certs/c.pem, privateKey: /etc/certs/c.key, caCertificates: /etc/certs/c-ca.pem}`);
    const [mutual, simple, entryCa] = tlsContexts(listener(res, '0.0.0.0_8443'));
    const certs = (c: DownstreamTlsContext | undefined): (string | undefined)[] =>
      (c?.commonTlsContext?.tlsCertificateSdsSecretConfigs ?? []).map((s) => s.name);
    const ca = (c: DownstreamTlsContext | undefined): string | undefined =>
      c?.commonTlsContext?.combinedValidationContext?.validationContextSdsSecretConfig?.name;
    assert.deepEqual(certs(mutual), [
      'file-cert:/etc/certs/rsa.pem~/etc/certs/rsa.key',
      'file-cert:/etc/certs/ecdsa.pem~/etc/certs/ecdsa.key',
    ]);
    assert.equal(ca(mutual), 'file-root:/etc/certs/ca.pem');
    assert.equal(mutual?.requireClientCertificate, true);
    assert.deepEqual(certs(simple), ['file-cert:/etc/certs/b.pem~/etc/certs/b.key']);
    assert.equal(simple?.commonTlsContext?.combinedValidationContext, undefined);
    assert.equal(simple?.requireClientCertificate, false);
    // Without a server-level caCertificates, the CA an entry names validates clients.
    assert.deepEqual(certs(entryCa), ['file-cert:/etc/certs/c.pem~/etc/certs/c.key']);
    assert.equal(ca(entryCa), 'file-root:/etc/certs/c-ca.pem');
  });

  test('bind unix://PATH: a pipe address (prefix stripped), the listener named BIND_PORT', () => {
    const { res } = gatewayWorld(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    bind: unix:///var/run/gateway.sock
    hosts: ["*"]
  - port: {number: 80, name: http-wildcard, protocol: HTTP}
    hosts: ["*"]`);
    const l = listener(res, 'unix:///var/run/gateway.sock_8080');
    assert.deepEqual(l.address, { pipe: { path: '/var/run/gateway.sock' } });
    assert.deepEqual(
      res.routes.map((r) => r.name),
      ['http.8080', 'http.8080.unix:///var/run/gateway.sock'],
    );
    // Servers without a bind keep the wildcard socket address.
    assert.deepEqual(listener(res, '0.0.0.0_8080').address, {
      socketAddress: { address: '0.0.0.0', portValue: 8080 },
    });
  });

  test('two servers claiming a host on one port: the first is kept, the later reported', () => {
    const { w, res } = gatewayWorld(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: cert-a}
  - port: {number: 443, name: https-again, protocol: HTTPS}
    hosts: [other.example.com, a.example.com]
    tls: {mode: SIMPLE, credentialName: cert-a2}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: cert-b}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: cert-b}`);
    const l = listener(res, '0.0.0.0_8443');
    const matches = (l.filterChains ?? []).map((c) => JSON.stringify(c.filterChainMatch));
    assert.equal(new Set(matches).size, matches.length, 'one filter chain per distinct match');
    assert.deepEqual(
      (l.filterChains ?? []).map((c) => [
        c.filterChainMatch?.serverNames,
        tlsContext(c)?.commonTlsContext?.tlsCertificateSdsSecretConfigs?.[0]?.name,
      ]),
      [
        [['a.example.com'], 'kubernetes://cert-a'],
        [['b.example.com'], 'kubernetes://cert-b'],
      ],
    );
    assert.deepEqual(
      res.routes.map((r) => r.name),
      ['https.443.https-b.b.default', 'https.443.https.a.default'],
    );
    const proxy = w.proxy('istio-ingressgateway-0', 'istio-system', { type: 'router' });
    assert.deepEqual(gatewayProblems(w.snapshot, proxy), [
      {
        object: { kind: 'Gateway', namespace: 'default', name: 'a' },
        message:
          'server https-again (port 443) is ignored: host a.example.com is already served by Gateway default/a server https (port 443)',
      },
      {
        object: { kind: 'Gateway', namespace: 'default', name: 'b' },
        message:
          'server https (port 443) is ignored: host a.example.com is already served by Gateway default/a server https (port 443)',
      },
    ]);
    // A sidecar has no gateway servers, hence no problems.
    assert.deepEqual(gatewayProblems(w.snapshot, w.proxy()), []);
  });
});
