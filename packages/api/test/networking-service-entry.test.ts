// ServiceEntry validation: Istio's rules per resolution mode, with exact paths and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';
import { serviceEntry as se } from './networking-fixtures.js';

const http = { number: 80, name: 'http', protocol: 'HTTP' };
const https = { number: 443, name: 'https', protocol: 'HTTPS' };

export const SERVICE_ENTRY_CASES: InvalidCase[] = [
  {
    name: 'hosts missing, and a port of the wrong type',
    yaml: se({ ports: [{ number: '80', name: 'http' }] }),
    errors: [
      'spec.hosts: is required',
      'spec.ports[0].number: must be an integer, not a string ("80")',
    ],
  },
  {
    name: 'host "*" and a partial wildcard',
    yaml: se({ hosts: ['*', '*api.example.com'], ports: [http], resolution: 'NONE' }),
    errors: ['spec.hosts[0]: "*" is not allowed: a ServiceEntry host must name a service'],
    warnings: [
      'spec.hosts[1]: partial wildcard host "*api.example.com" is not supported; use "*.<domain>"',
    ],
  },
  {
    name: 'endpoints with resolution NONE (the default)',
    yaml: se({ hosts: ['db.example.com'], ports: [http], endpoints: [{ address: '10.0.0.1' }] }),
    errors: ['spec.endpoints: must not be set when resolution is NONE'],
  },
  {
    name: 'DNS resolution of a wildcard host without endpoints',
    yaml: se({ hosts: ['*.example.com'], ports: [https], resolution: 'DNS' }),
    errors: [
      'spec.hosts[0]: must be a fully qualified domain name (no wildcard) when resolution is DNS and no endpoints are given',
    ],
  },
  {
    name: 'STATIC endpoint with a DNS name and an undeclared port',
    yaml: se({
      hosts: ['db.example.com'],
      ports: [{ number: 5432, name: 'tcp-pg', protocol: 'TCP' }],
      resolution: 'STATIC',
      endpoints: [{ address: 'db1.example.com', ports: { postgres: 5433 } }],
    }),
    errors: [
      'spec.endpoints[0].address: must be an IP address (or unix:// socket) here, not "db1.example.com"',
      'spec.endpoints[0].ports.postgres: port name "postgres" is not one of the ServiceEntry\'s ports',
    ],
  },
  {
    name: 'duplicate port names and numbers, a bad port name and protocol',
    yaml: se({
      hosts: ['api.example.com'],
      resolution: 'DNS',
      ports: [
        http,
        { number: 80, name: 'http', protocol: 'HTTP' },
        { number: 8080, name: 'web_ui', protocol: 'HTTP3' },
      ],
    }),
    errors: [
      'spec.ports[1].name: port name "http" is already used by ports[0]',
      'spec.ports[1].number: port 80 is already used by ports[0]',
      'spec.ports[2].name: port name "web_ui" must be a DNS-1123 label: at most 63 letters, digits and \'-\', starting and ending with a letter or digit',
      'spec.ports[2].protocol: unknown protocol "HTTP3"; one of: HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, HTTP_PROXY, MONGO, MYSQL, REDIS, TCP, TLS, UDP',
    ],
  },
  {
    name: 'resolution not in the enum, and a location not in the enum',
    yaml: se({
      hosts: ['api.example.com'],
      ports: [http],
      resolution: 'DNS_ONLY',
      location: 'EXTERNAL',
    }),
    errors: [
      'spec.location: must be one of: MESH_EXTERNAL, MESH_INTERNAL; not "EXTERNAL"',
      'spec.resolution: must be one of: NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS; not "DNS_ONLY"',
    ],
  },
  {
    name: 'an address that is not an IP or CIDR range',
    yaml: se({
      hosts: ['api.example.com'],
      ports: [http],
      resolution: 'NONE',
      addresses: ['10.0.0.0/16', 'example.com'],
    }),
    errors: [
      'spec.addresses[1]: must be an IP address or CIDR range such as "10.0.0.0/8", not "example.com"',
    ],
  },
  {
    name: 'CIDR with DNS resolution',
    yaml: se({
      hosts: ['api.example.com'],
      ports: [http],
      resolution: 'DNS',
      addresses: ['10.0.0.0/16'],
    }),
    errors: [
      'spec.addresses: CIDR ranges are allowed only with resolution NONE or STATIC, not DNS',
    ],
  },
  {
    name: 'several hosts with a TCP port, and DNS_ROUND_ROBIN with two endpoints',
    yaml: se({
      hosts: ['a.example.com', 'b.example.com'],
      ports: [{ number: 9000, name: 'tcp', protocol: 'TCP' }],
      resolution: 'DNS_ROUND_ROBIN',
      endpoints: [{ address: 'a.example.com' }, { address: '10.0.0.2' }],
    }),
    errors: [
      'spec.endpoints: must have at most one endpoint when resolution is DNS_ROUND_ROBIN',
      'spec.ports[0]: with more than one host and resolution DNS_ROUND_ROBIN, every port must be HTTP- or TLS-based so the hosts can be told apart (by Host header or SNI)',
    ],
  },
  {
    name: 'workloadSelector with endpoints',
    yaml: se({
      hosts: ['vm.example.com'],
      ports: [http],
      resolution: 'STATIC',
      workloadSelector: { labels: { app: 'vm' } },
      endpoints: [{ address: '10.0.0.3' }],
    }),
    errors: [
      'spec: only one of "workloadSelector", "endpoints" may be set; found "workloadSelector" and "endpoints"',
    ],
  },
  {
    name: 'exportTo "~" with others',
    yaml: se({
      hosts: ['api.example.com'],
      ports: [http],
      resolution: 'DNS',
      exportTo: ['~', 'istio-system'],
    }),
    errors: [
      'spec.exportTo: "~" exports to no namespace, so it cannot be listed with other entries',
    ],
  },
];

runInvalidCases('service entry', SERVICE_ENTRY_CASES);

test('service entry: at least 5 invalid cases', () => {
  assert.ok(SERVICE_ENTRY_CASES.length >= 5);
});

test('service entry: each resolution mode in its valid form', () => {
  assertValid(
    se({
      hosts: ['www.googleapis.com', 'storage.googleapis.com'],
      ports: [http, https],
      location: 'MESH_EXTERNAL',
      resolution: 'DNS',
      exportTo: ['*'],
      subjectAltNames: ['spiffe://cluster.local/ns/ext/sa/api'],
    }),
  );
  assertValid(
    se({
      hosts: ['db.internal'],
      addresses: ['10.1.0.0/16', '2001:db8::/32', '192.168.1.10'],
      ports: [{ number: 5432, name: 'tcp-pg', protocol: 'TCP', targetPort: 15432 }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      endpoints: [
        {
          address: '10.1.0.5',
          ports: { 'tcp-pg': 5432 },
          labels: { app: 'db' },
          network: 'vm-net',
          locality: 'us-east/zone1',
          weight: 10,
          serviceAccount: 'db',
        },
        { address: 'unix:///var/run/pg.sock' },
      ],
      exportTo: ['~'],
    }),
  );
  assertValid(
    se({
      hosts: ['vm-app.example.com'],
      ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      workloadSelector: { labels: { app: 'vm-app' } },
    }),
  );
  assertValid(
    se({ hosts: ['*.example.com'], ports: [https], resolution: 'NONE', addresses: ['0.0.0.0/0'] }),
  );
  assertValid(se({ hosts: ['*.example.com'], ports: [http], resolution: 'DYNAMIC_DNS' }));
});

test('service entry: STATIC without endpoints or selector is a warning', () => {
  const { errors, warnings } = check(
    se({ hosts: ['vm.example.com'], ports: [http], resolution: 'STATIC' }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec: resolution is STATIC but there are no endpoints and no workloadSelector, so the service has no endpoints (unless WorkloadEntries are added)',
  ]);
});
