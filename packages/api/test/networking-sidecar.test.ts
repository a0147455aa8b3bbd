// Sidecar validation: listeners, egress hosts and outbound policy, with exact paths and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';
import { sidecar } from './networking-fixtures.js';

export const SIDECAR_CASES: InvalidCase[] = [
  {
    name: 'empty configuration',
    yaml: sidecar({ workloadSelector: { labels: { app: 'ratings' } } }),
    errors: [
      'spec: must set at least one of ingress, egress, outboundTrafficPolicy or inboundConnectionPool',
    ],
  },
  {
    name: 'egress hosts not in namespace/dnsName form',
    yaml: sidecar({
      egress: [
        {
          hosts: [
            'reviews.default.svc.cluster.local',
            './reviews',
            'Prod_NS/*.example.com',
            'istio-system/*api.example.com',
          ],
        },
      ],
    }),
    errors: [
      'spec.egress[0].hosts[0]: host "reviews.default.svc.cluster.local" must be "namespace/dnsName" (for example "./*" or "istio-system/*")',
      'spec.egress[0].hosts[1]: host "./reviews": short names are not allowed; use a fully qualified name such as "reviews.<namespace>.svc.cluster.local"',
      'spec.egress[0].hosts[2]: host "Prod_NS/*.example.com": namespace must be "*", ".", "~" or a namespace name, not "Prod_NS"',
      'spec.egress[0].hosts[3]: host "istio-system/*api.example.com": partial wildcards are not allowed; use "*.<domain>"',
    ],
  },
  {
    name: 'catch-all egress listener not last',
    yaml: sidecar({
      egress: [
        { hosts: ['./*'] },
        { port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] },
      ],
    }),
    errors: [
      'spec.egress[0]: the egress listener without a port (the catch-all) must be the last one',
    ],
  },
  {
    name: 'egress proxy without ALLOW_ANY',
    yaml: sidecar({
      outboundTrafficPolicy: {
        mode: 'REGISTRY_ONLY',
        egressProxy: { host: 'egress.example.com', port: { number: 3128 } },
      },
    }),
    errors: ['spec.outboundTrafficPolicy.egressProxy: is allowed only with mode ALLOW_ANY'],
  },
  {
    name: 'ingress: duplicate ports, targetPort, bad default endpoint, bad bind',
    yaml: sidecar({
      ingress: [
        {
          port: { number: 9080, protocol: 'HTTP', name: 'http', targetPort: 8080 },
          defaultEndpoint: '10.0.0.1:8080',
        },
        { port: { number: 9080, protocol: 'HTTP', name: 'http2' }, bind: 'localhost' },
      ],
    }),
    errors: [
      'spec.ingress[0].port.targetPort: has no effect on a Sidecar; remove it',
      'spec.ingress[0].defaultEndpoint: must forward to a local address (127.0.0.1, 0.0.0.0, ::1 or ::) or a unix:// socket, not "10.0.0.1"',
      'spec.ingress[1].bind: must be an IP address, not "localhost"',
      'spec.ingress[1].port.number: port 9080 is already used by ingress[0]',
    ],
  },
  {
    name: 'ingress TLS with options sidecars do not support, and a missing port',
    yaml: sidecar({
      ingress: [
        {
          port: { number: 8443, protocol: 'HTTPS', name: 'https' },
          tls: { mode: 'ISTIO_MUTUAL', credentialName: 'cert', subjectAltNames: ['a'] },
        },
        { defaultEndpoint: '127.0.0.1:8080' },
      ],
    }),
    errors: [
      'spec.ingress[0].tls.subjectAltNames: is not supported for sidecar ingress TLS',
      'spec.ingress[0].tls.credentialName: is not supported for sidecar ingress TLS',
      'spec.ingress[0].tls.mode: must not be ISTIO_MUTUAL for sidecar ingress TLS',
      'spec.ingress[1].port: is required',
    ],
  },
  {
    name: 'egress on port 0 without a Unix socket, and a capture mode not in the enum',
    yaml: sidecar({
      egress: [
        { port: { number: 0, protocol: 'HTTP', name: 'http' }, bind: '127.0.0.1', hosts: ['./*'] },
        { port: { number: 9090, name: 'grpc' }, captureMode: 'TPROXY', hosts: ['./*'] },
      ],
    }),
    errors: [
      'spec.egress[0].bind: must be a unix:// socket when the port number is 0 (or unset)',
      'spec.egress[1].captureMode: must be one of: DEFAULT, IPTABLES, NONE; not "TPROXY"',
    ],
  },
];

runInvalidCases('sidecar', SIDECAR_CASES);

test('sidecar: at least 3 invalid cases', () => {
  assert.ok(SIDECAR_CASES.length >= 3);
});

test('sidecar: ingress, egress, pools and outbound policy are valid', () => {
  assertValid(
    sidecar({
      workloadSelector: { labels: { app: 'productpage' } },
      ingress: [
        {
          port: { number: 9080, protocol: 'HTTP', name: 'somename' },
          defaultEndpoint: 'unix:///var/run/someuds.sock',
          connectionPool: { http: { http1MaxPendingRequests: 10 } },
        },
        {
          port: { number: 8443, protocol: 'HTTPS', name: 'https' },
          defaultEndpoint: '127.0.0.1:8080',
          captureMode: 'IPTABLES',
          tls: { mode: 'SIMPLE', serverCertificate: '/etc/cert.pem', privateKey: '/etc/key.pem' },
        },
        { port: { number: 9090, protocol: 'GRPC', name: 'grpc' }, defaultEndpoint: '[::1]:9091' },
      ],
      egress: [
        {
          port: { number: 3306, protocol: 'MYSQL', name: 'egressmysql' },
          captureMode: 'NONE',
          bind: '127.0.0.1',
          hosts: ['*/mysql.foo.com'],
        },
        {
          port: { number: 0, protocol: 'HTTP', name: 'uds' },
          bind: 'unix:///var/run/egress.sock',
          hosts: ['istio-system/*'],
        },
        { hosts: ['./*', 'istio-system/*', '~/*.example.com'] },
      ],
      inboundConnectionPool: { tcp: { maxConnections: 100 }, http: { http2MaxRequests: 100 } },
      outboundTrafficPolicy: {
        mode: 'ALLOW_ANY',
        egressProxy: { host: 'egress.istio-system.svc.cluster.local', port: { number: 3128 } },
      },
    }),
  );
});

test('sidecar: HTTP pool settings on a TCP port and repeated egress hosts are warnings', () => {
  const { errors, warnings } = check(
    sidecar({
      ingress: [
        {
          port: { number: 5432, protocol: 'TCP', name: 'tcp' },
          connectionPool: { http: { maxRetries: 1 } },
        },
      ],
      egress: [{ hosts: ['./*', './reviews.default.svc.cluster.local'] }],
    }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.ingress[0].connectionPool.http: applies only to HTTP ports; port 5432 has protocol "TCP", so only the tcp settings are used',
    'spec.egress[0].hosts[1]: host "./reviews.default.svc.cluster.local" repeats or overlaps an earlier host',
  ]);
});
