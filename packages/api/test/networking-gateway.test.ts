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
];

runInvalidCases('gateway (networking)', GATEWAY_MISSING_FIELD_CASES);
