// Gateway validation: valid shapes accepted, invalid ones reported with exact paths.
import { runInvalidCases, assertValid, type InvalidCase } from './invalid-cases.js';
import { test } from 'node:test';

const head = 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n';

test('gateway: a TLS server with credentialName is valid', () => {
  assertValid(
    head +
      '  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["bookinfo/*.example.com"]\n    tls: {mode: SIMPLE, credentialName: cert}\n',
  );
});

export const GATEWAY_CASES: InvalidCase[] = [
  {
    name: 'server without hosts',
    yaml: head + '  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n',
    errors: ['spec.servers[0].hosts: is required'],
  },
  {
    name: 'unknown protocol',
    yaml:
      head + '  servers:\n  - port: {number: 80, name: http, protocol: HTTP3}\n    hosts: ["*"]\n',
    errors: [
      'spec.servers[0].port.protocol: unknown protocol "HTTP3"; one of: HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS, REDIS, MYSQL',
    ],
  },
  {
    name: 'HTTPS server without tls',
    yaml:
      head +
      '  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n',
    errors: ['spec.servers[0].tls: is required for a server with protocol HTTPS'],
  },
  {
    name: 'SIMPLE TLS without any certificate',
    yaml:
      head +
      '  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n    tls: {mode: SIMPLE}\n',
    errors: [
      'spec.servers[0].tls.serverCertificate: is required when mode is SIMPLE and no credentialName is set',
      'spec.servers[0].tls.privateKey: is required when mode is SIMPLE and no credentialName is set',
    ],
  },
  {
    name: 'duplicate port names',
    yaml:
      head +
      '  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["a.com"]\n  - port: {number: 81, name: http, protocol: HTTP}\n    hosts: ["b.com"]\n',
    errors: ['spec.servers[1].port.name: port name "http" is already used by servers[0]'],
  },
  {
    name: 'bad namespace part of a host',
    yaml:
      head +
      '  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["Foo_Bar/x.com"]\n',
    errors: [
      'spec.servers[0].hosts[0]: host "Foo_Bar/x.com": namespace part must be "*", "." or a namespace name',
    ],
  },
  {
    name: 'bad tls mode',
    yaml:
      head +
      '  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n    tls: {mode: STRICT, credentialName: c}\n',
    errors: [
      'spec.servers[0].tls.mode: must be one of: PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL; not "STRICT"',
    ],
  },
];

runInvalidCases('gateway', GATEWAY_CASES);
