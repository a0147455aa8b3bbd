// EndpointSlice (discovery.k8s.io/v1): the fields the registry reads are validated as
// Kubernetes does; unknown fields are kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveKind } from '../src/index.js';
import { assertValid, runInvalidCases, type InvalidCase } from './invalid-cases.js';

const slice = (body: string) =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: reviews-abc\n  labels: {kubernetes.io/service-name: reviews}\n${body}`;

test('EndpointSlice: a complete slice is valid', () => {
  assertValid(
    slice(`addressType: IPv4
endpoints:
- addresses: [10.1.0.7]
  conditions: {ready: true, serving: true, terminating: false}
  hostname: reviews-0
  nodeName: node-1.example
  zone: us-east-1a
  targetRef: {kind: Pod, namespace: default, name: reviews-v1-abc, uid: "1234"}
  hints:
    forZones: [{name: us-east-1a}]
  somethingNew: kept
- addresses: [10.1.0.8]
ports:
- {name: http, protocol: TCP, port: 9080, appProtocol: http}
- {name: grpc, port: 9090}
`),
  );
});

test('EndpointSlice: IPv6, FQDN, no ports and no endpoints are valid', () => {
  assertValid(slice('addressType: IPv6\nendpoints:\n- addresses: ["fd00::7"]\n'));
  assertValid(slice('addressType: FQDN\nendpoints:\n- addresses: [db.example.com]\n'));
  assertValid(slice('addressType: IPv4\nendpoints: []\n'));
  assertValid(slice('addressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\n'));
});

test('EndpointSlice: kind lookup by its names', () => {
  assert.equal(resolveKind('endpointslice')?.group, 'discovery.k8s.io');
  assert.equal(resolveKind('endpointslices.discovery.k8s.io')?.kind, 'EndpointSlice');
});

const cases: InvalidCase[] = [
  {
    name: 'addressType missing and unknown',
    yaml: slice('endpoints: []\n'),
    errors: ['addressType: is required'],
  },
  {
    name: 'addressType not supported',
    yaml: slice('addressType: IP\n'),
    errors: ['addressType: must be one of: IPv4, IPv6, FQDN; not "IP"'],
  },
  {
    name: 'addresses of the wrong type, empty and unspecified',
    yaml: slice(`addressType: IPv4
endpoints:
- addresses: ["fd00::1", 10.0.0.300, 0.0.0.0]
- addresses: []
- conditions: {ready: true}
`),
    errors: [
      'endpoints[0].addresses[0]: must be an IPv4 address (addressType is IPv4), not "fd00::1"',
      'endpoints[0].addresses[1]: must be an IPv4 address (addressType is IPv4), not "10.0.0.300"',
      'endpoints[0].addresses[2]: must not be the unspecified address 0.0.0.0',
      'endpoints[1].addresses: must have at least one item',
      'endpoints[2].addresses: is required',
    ],
  },
  {
    name: 'FQDN addresses must be qualified domain names',
    yaml: slice('addressType: FQDN\nendpoints:\n- addresses: [db, Bad_Name.example]\n'),
    errors: [
      'endpoints[0].addresses[0]: address "db" must be a fully qualified domain name (at least two labels)',
      `endpoints[0].addresses[1]: address "Bad_Name.example" must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit`,
    ],
  },
  {
    name: 'ports: duplicate names, two unnamed ports, bad protocol and a number out of range',
    yaml: slice(`addressType: IPv4
ports:
- {name: http, port: 80}
- {name: http, port: 81}
- {port: 82}
- {port: 83, protocol: HTTP}
- {name: Web, port: 70000}
`),
    errors: [
      'ports[1].name: port name "http" is already used by ports[0]',
      'ports[3].name: only one port may be unnamed; ports[2] is unnamed too',
      'ports[3].protocol: must be one of: TCP, UDP, SCTP; not "HTTP"',
      `ports[4].name: port name "Web" must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
      'ports[4].port: must be between 0 and 65535, not 70000',
    ],
  },
  {
    name: 'endpoint hostname, conditions and duplicate zone hints',
    yaml: slice(`addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  hostname: Web.1
  conditions: {ready: "yes"}
  hints:
    forZones: [{name: a}, {name: a}]
`),
    errors: [
      `endpoints[0].hostname: hostname "Web.1" must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
      'endpoints[0].conditions.ready: must be a boolean (true or false), not a string ("yes")',
      'endpoints[0].hints.forZones[1].name: zone "a" is already listed at [0]',
    ],
  },
];

runInvalidCases('EndpointSlice', cases);
