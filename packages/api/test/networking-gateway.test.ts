// Gateway checks that must not trip over missing required fields (reported as "is required").
import { runInvalidCases, type InvalidCase } from './invalid-cases.js';

const head = 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n';

export const GATEWAY_MISSING_FIELD_CASES: InvalidCase[] = [
  {
    name: 'server without a port',
    yaml:
      head +
      '  servers:\n  - hosts: ["*"]\n  - hosts: ["*"]\n    port: {number: 80, protocol: HTTP}\n',
    errors: ['spec.servers[0].port: is required', 'spec.servers[1].port.name: is required'],
  },
  {
    name: 'server with caCertCredentialName for MUTUAL TLS',
    yaml:
      head +
      '  servers:\n  - hosts: ["*"]\n    port: {number: 443, name: https, protocol: HTTPS}\n    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertCredentialName: ca, unknownThing: 1}\n',
    errors: ['spec.servers[0].tls.unknownThing: unknown field'],
  },
  {
    name: 'certificate pins Envoy cannot read',
    yaml:
      head +
      '  servers:\n  - hosts: ["*"]\n    port: {number: 443, name: https, protocol: HTTPS}\n    tls: {mode: MUTUAL, credentialName: c, verifyCertificateSpki: [abc, "NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A="], verifyCertificateHash: [def, "df6ff72fe9116521268f6f2dd4966f51df479883fe7037b39f75916ac3049d1a", "DF:6F:F7:2F:E9:11:65:21:26:8F:6F:2D:D4:96:6F:51:DF:47:98:83:FE:70:37:B3:9F:75:91:6A:C3:04:9D:1A"]}\n',
    errors: [
      'spec.servers[0].tls.verifyCertificateHash[0]: must be the hex SHA-256 of a certificate (64 hex digits, colons allowed), not "def"',
      'spec.servers[0].tls.verifyCertificateSpki[0]: must be the base64 SHA-256 of a public key (44 characters), not "abc"',
    ],
  },
];

runInvalidCases('gateway (networking)', GATEWAY_MISSING_FIELD_CASES);
