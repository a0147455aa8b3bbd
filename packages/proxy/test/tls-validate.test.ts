// TLS configuration is checked before it is accepted: unsupported TLS fields are NACKed with
// their path, bad inline material and impossible settings with Envoy's reasons; SAN parsing and
// matching follow Envoy (wildcard DNS SANs, typed and untyped matchers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIG_TYPE_URL, TYPE_URL, type Cluster, type Listener } from '@trellis/envoy';
import { createCa } from '@trellis/testing';
import { validateResource } from '../src/xds/index.js';
import {
  compilePeerVerification,
  dnsNameMatch,
  parseSubjectAltNames,
  referencedSecrets,
  verifyPeerCertificate,
} from '../src/tls/index.js';

const ca = createCa();
const leaf = ca.issue({ dnsNames: ['a.test'] });
const other = ca.issue({ dnsNames: ['b.test'] });

function cluster(ctx: Record<string, unknown>): Cluster {
  return {
    name: 'c',
    type: 'STATIC',
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: { '@type': CONFIG_TYPE_URL.UpstreamTlsContext, ...ctx },
    },
  };
}

function tlsListener(ctx: Record<string, unknown>): Listener {
  return {
    name: 'l',
    address: { socketAddress: { address: '0.0.0.0', portValue: 443 } },
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typedConfig: {
              '@type': CONFIG_TYPE_URL.TcpProxy,
              statPrefix: 's',
              cluster: 'c',
            } as never,
          },
        ],
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: { '@type': CONFIG_TYPE_URL.DownstreamTlsContext, ...ctx },
        },
      },
    ],
  };
}

const TS = 'transport_socket.typed_config';
const FCTS = 'filter_chains[0].transport_socket.typed_config';

test('tls validation: unsupported fields are NACKed with their path', () => {
  const problems = validateResource(
    TYPE_URL.Cluster,
    cluster({
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { inlineString: leaf.cert },
            privateKeyProvider: { providerName: 'x' },
          },
        ],
        validationContext: { customValidatorConfig: { name: 'spiffe' } },
      },
      allowRenegotiation: true,
    }),
  );
  assert.ok(
    problems.some((p) =>
      p.startsWith(
        `${TS}.common_tls_context.tls_certificates[0].private_key_provider: field TlsCertificate.private_key_provider is not implemented`,
      ),
    ),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) =>
      p.startsWith(`${TS}.common_tls_context.validation_context.custom_validator_config:`),
    ),
  );
  assert.ok(problems.some((p) => p.startsWith(`${TS}.allow_renegotiation:`)));
  const down = validateResource(
    TYPE_URL.Listener,
    tlsListener({
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { inlineString: leaf.cert },
            privateKey: { inlineString: leaf.key },
            ocspStaple: { inlineString: 'x' },
          },
        ],
      },
      sessionTicketKeys: { keys: [{ inlineString: 'k' }] },
      ocspStaplePolicy: 'MUST_STAPLE',
    }),
  );
  for (const f of ['tls_certificates[0].ocsp_staple', 'session_ticket_keys', 'ocsp_staple_policy'])
    assert.ok(
      down.some((p) => p.includes(f) && p.includes('not implemented')),
      `${f}: ${down.join('\n')}`,
    );
});

test("tls validation: Envoy's checks of material and settings", () => {
  const problems = (ctx: Record<string, unknown>): string[] =>
    validateResource(TYPE_URL.Cluster, cluster(ctx));
  assert.deepEqual(
    problems({
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { inlineString: leaf.cert },
            privateKey: { inlineString: other.key },
          },
        ],
      },
    }),
    [
      `${TS}.common_tls_context.tls_certificates[0].private_key: does not match the certificate (key values mismatch)`,
    ],
  );
  assert.deepEqual(
    problems({
      commonTlsContext: { validationContext: { trustedCa: { inlineString: 'garbage' } } },
    }),
    [`${TS}.common_tls_context.validation_context.trusted_ca: no PEM certificate found`],
  );
  assert.deepEqual(
    problems({
      commonTlsContext: {
        validationContext: {
          matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'a' } }],
        },
      },
    }),
    [
      `${TS}.common_tls_context.validation_context: SAN-based verification of peer certificates without trusted CA is insecure and not allowed`,
    ],
  );
  const params = problems({
    commonTlsContext: {
      tlsParams: {
        tlsMinimumProtocolVersion: 'TLSv1_3',
        tlsMaximumProtocolVersion: 'TLSv1_2',
        cipherSuites: ['[ECDHE-ECDSA-AES128-GCM-SHA256|NOPE-CIPHER]'],
        ecdhCurves: ['P-256', 'CURVE-X'],
      },
    },
  });
  assert.ok(
    params.some((p) =>
      p.includes(
        'tls_minimum_protocol_version (TLSv1.3) is above tls_maximum_protocol_version (TLSv1.2)',
      ),
    ),
  );
  assert.ok(params.some((p) => p.includes("cipher_suites[0]: unknown cipher suite 'NOPE-CIPHER'")));
  assert.ok(params.some((p) => p.includes("ecdh_curves: unknown curve in 'P-256:CURVE-X'")));
  assert.ok(
    problems({
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: [{ name: 'x', sdsConfig: { path: '/etc/sds' } }],
      },
    }).some((p) => p.includes('sds_config: must be ads') || p.includes('sds_config.path')),
  );
  const down = validateResource(TYPE_URL.Listener, tlsListener({ requireClientCertificate: true }));
  assert.ok(
    down.includes(
      `${FCTS}.common_tls_context: a downstream (server) TLS context needs a certificate`,
    ),
  );
  assert.ok(
    down.some((p) =>
      p.startsWith(`${FCTS}.require_client_certificate: needs a validation context`),
    ),
  );
  // A good context is accepted.
  assert.deepEqual(
    problems({
      sni: 'a.test',
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { inlineString: leaf.chain },
            privateKey: { inlineString: leaf.key },
          },
        ],
        validationContext: {
          trustedCa: { inlineString: ca.cert },
          matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { prefix: 'spiffe://' } }],
          verifyCertificateHash: ['a'.repeat(64)],
        },
        alpnProtocols: ['h2'],
      },
    }),
    [],
  );
  // Secrets: a bad one names why; the SDS names a resource references (not file-cert/file-root).
  assert.deepEqual(validateResource(TYPE_URL.Secret, { name: 's' }), [
    'a secret needs a tls_certificate or a validation_context',
  ]);
  assert.deepEqual(
    referencedSecrets(
      cluster({
        commonTlsContext: {
          tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: { ads: {} } }],
          combinedValidationContext: {
            defaultValidationContext: {},
            validationContextSdsSecretConfig: {
              name: 'file-root:/etc/ca.pem',
              sdsConfig: { ads: {} },
            },
          },
        },
      }),
    ),
    ['default'],
  );
});

test('tls: SAN parsing and matching as Envoy', () => {
  assert.deepEqual(
    parseSubjectAltNames(
      'DNS:a.test, URI:spiffe://td/ns/x/sa/y, IP Address:0:0:0:0:0:0:0:1, email:a@b, DNS:"x, y"',
    ),
    [
      { type: 'DNS', value: 'a.test' },
      { type: 'URI', value: 'spiffe://td/ns/x/sa/y' },
      { type: 'IP_ADDRESS', value: '::1' },
      { type: 'EMAIL', value: 'a@b' },
      { type: 'DNS', value: 'x, y' },
    ],
  );
  assert.ok(dnsNameMatch('api.example.com', '*.example.com'));
  assert.ok(!dnsNameMatch('a.api.example.com', '*.example.com'));
  assert.ok(!dnsNameMatch('example.com', '*.example.com'));
  const wild = ca.issue({ dnsNames: ['*.example.com'] });
  const v = compilePeerVerification(
    { matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'api.example.com' } }] },
    true,
  );
  assert.equal(verifyPeerCertificate(v, wild.certificate, undefined), undefined);
  assert.equal(verifyPeerCertificate(v, leaf.certificate, undefined)?.stat, 'fail_verify_san');
  assert.equal(
    verifyPeerCertificate(v, wild.certificate, 'CERT_HAS_EXPIRED')?.stat,
    'fail_verify_error',
  );
  const lenient = compilePeerVerification({ allowExpiredCertificate: true }, true);
  assert.equal(verifyPeerCertificate(lenient, wild.certificate, 'CERT_HAS_EXPIRED'), undefined);
  const untyped = compilePeerVerification(
    { matchSubjectAltNames: [{ suffix: '.example.com' }] } as never,
    true,
  );
  assert.equal(verifyPeerCertificate(untyped, wild.certificate, undefined), undefined);
  const pinned = compilePeerVerification(
    { verifyCertificateHash: [wild.certificate.fingerprint256] },
    false,
  );
  assert.equal(
    verifyPeerCertificate(pinned, wild.certificate, 'ANY'),
    undefined,
    'no CA: the chain is not checked',
  );
  assert.equal(
    verifyPeerCertificate(pinned, leaf.certificate, undefined)?.stat,
    'fail_verify_cert_hash',
  );
});
