// WorkloadEntry and WorkloadGroup validation, with exact paths and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';
import { workloadEntry as we, workloadGroup as wg } from './networking-fixtures.js';

export const WORKLOAD_ENTRY_CASES: InvalidCase[] = [
  {
    name: 'neither address nor network',
    yaml: we({ labels: { app: 'vm' }, serviceAccount: 'vm' }),
    errors: ['spec.address: is required unless network is set'],
  },
  {
    name: 'bad port names and numbers',
    yaml: we({ address: '10.0.0.5', ports: { http_port: 8080, grpc: 0, admin: 70000 } }),
    errors: [
      'spec.ports.http_port: port name "http_port" must be a DNS-1123 label: at most 63 letters, digits and \'-\', starting and ending with a letter or digit',
      'spec.ports.grpc: must be between 1 and 65535, not 0',
      'spec.ports.admin: must be between 1 and 65535, not 70000',
    ],
  },
  {
    name: 'Unix socket address with ports, and a relative socket path',
    yaml: we({ address: 'unix://var/run/app.sock', ports: { http: 8080 } }),
    errors: [
      'spec.address: "var/run/app.sock" must be an absolute path to a socket file (or an abstract "@name")',
      'spec.ports: must not be set for a Unix domain socket address',
    ],
  },
  {
    name: 'address that is neither an IP nor a DNS name, and an unknown field',
    yaml: we({ address: 'vm 1.example.com', weigth: 5 }),
    errors: [
      'spec.address: must be an IP address, a fully qualified domain name or a unix:// socket, not "vm 1.example.com"',
      'spec.weigth: unknown field; did you mean "weight"?',
    ],
  },
];

export const WORKLOAD_GROUP_CASES: InvalidCase[] = [
  {
    name: 'template is required',
    yaml: wg({ metadata: { labels: { app: 'vm' } } }),
    errors: ['spec.template: is required'],
  },
  {
    name: 'probe with two methods and a negative period',
    yaml: wg({
      template: { serviceAccount: 'vm' },
      probe: { periodSeconds: -5, httpGet: { port: 8080 }, tcpSocket: { port: 8080 } },
    }),
    errors: [
      'spec.probe.periodSeconds: must not be negative, not -5',
      'spec.probe: only one of "httpGet", "tcpSocket", "exec", "grpc" may be set; found "httpGet" and "tcpSocket"',
    ],
  },
  {
    name: 'probe without a method, and httpGet with a bad scheme and no port',
    yaml:
      wg({ template: {}, probe: { timeoutSeconds: 3 } }) +
      '\n---\n' +
      wg({ template: {}, probe: { httpGet: { path: '/ready', scheme: 'TCP' } } }),
    errors: [
      'spec.probe: one of "httpGet", "tcpSocket", "exec", "grpc" must be set',
      'spec.probe.httpGet.port: is required',
      'spec.probe.httpGet.scheme: must be "HTTP" or "HTTPS", not "TCP"',
    ],
  },
  {
    name: 'bad metadata label and an empty exec command',
    yaml: wg({
      metadata: { labels: { 'app/': 'vm' } },
      template: { ports: { http: 8080 } },
      probe: { exec: { command: [] } },
    }),
    errors: [
      "spec.metadata.labels[\"app/\"]: label key \"app/\": name part must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      'spec.probe.exec.command: must have at least one item',
    ],
  },
];

runInvalidCases('workload entry', WORKLOAD_ENTRY_CASES);
runInvalidCases('workload group', WORKLOAD_GROUP_CASES);

test('workload: at least 2 invalid cases per kind', () => {
  assert.ok(WORKLOAD_ENTRY_CASES.length >= 2);
  assert.ok(WORKLOAD_GROUP_CASES.length >= 2);
});

test('workload entry: IP, DNS name, socket and network-only forms are valid', () => {
  assertValid(
    we({
      address: '2.2.2.2',
      ports: { http: 9080, 'grpc-api': 9090 },
      labels: { app: 'details', version: 'v1' },
      network: 'vm-net',
      locality: 'us-east/zone1/sub1',
      weight: 3,
      serviceAccount: 'bookinfo-details',
    }),
  );
  assertValid(we({ address: 'vm1.example.com' }));
  assertValid(we({ address: 'unix://@abstract-socket' }));
  const { errors, warnings } = check(we({ network: 'remote-net' }));
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.address: is not set; the workload is reached through network "remote-net"',
  ]);
});

test('workload group: template, metadata and each probe kind are valid', () => {
  const probes = [
    {
      initialDelaySeconds: 5,
      timeoutSeconds: 3,
      periodSeconds: 4,
      successThreshold: 3,
      failureThreshold: 3,
      httpGet: {
        path: '/ready',
        port: 8080,
        host: '127.0.0.1',
        scheme: 'HTTPS',
        httpHeaders: [{ name: 'x-probe', value: '1' }],
      },
    },
    { tcpSocket: { port: 3306, host: 'localhost' } },
    { exec: { command: ['cat', '/tmp/healthy'] } },
    { grpc: { port: 9090, service: 'health' } },
  ];
  for (const probe of probes)
    assertValid(
      wg({
        metadata: { labels: { app: 'reviews' }, annotations: { 'team.example.com/owner': 'x' } },
        template: { ports: { http: 9080 }, serviceAccount: 'reviews', network: 'vm-net' },
        probe,
      }),
    );
});
