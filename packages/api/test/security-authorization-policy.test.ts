// AuthorizationPolicy validation: Istio's rules for actions, providers, rules and value forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';

const head = (v = 'v1') =>
  `apiVersion: security.istio.io/${v}\nkind: AuthorizationPolicy\nmetadata:\n  name: ap\nspec:\n`;

test('authorization policy: the documented examples are valid', () => {
  assertValid(
    head() +
      `  selector:
    matchLabels: {app: httpbin, version: v1}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/curl"]
    - source:
        namespaces: ["dev", "test-*"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*", "/api/{*}/items/{**}"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
    - key: source.ip
      notValues: ["10.0.0.0/8", "2001:db8::1"]
    - key: destination.port
      values: ["8080"]
`,
  );
  assertValid(head('v1beta1') + '  {}\n');
  assertValid(
    head() +
      `  action: CUSTOM
  provider: {name: my-ext-authz}
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
  rules:
  - to:
    - operation: {paths: ["/admin/*"]}
`,
  );
  assertValid(
    head() +
      `  action: DENY
  rules:
  - from:
    - source: {serviceAccounts: ["default/curl"], ipBlocks: ["203.0.113.0/24"]}
    to:
    - operation: {ports: ["8080"], notPaths: ["/healthz"]}
`,
  );
});

test("authorization policy: an HTTP-only DENY rule gets Istio's TCP warning", () => {
  const { errors, warnings } = check(
    head() + '  action: DENY\n  rules:\n  - to:\n    - operation: {paths: ["/admin"]}\n',
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    "spec.rules[0]: this DENY rule uses only HTTP attributes, so it also denies every TCP connection in the policy's scope; add ports to the rule to limit it",
  ]);
});

test('authorization policy: a "*" inside a value is reported as matched literally', () => {
  const { errors, warnings } = check(
    head() +
      '  rules:\n  - to:\n    - operation: {hosts: ["api.*.example.com", "*.example.com"], methods: ["*"]}\n',
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.rules[0].to[0].operation.hosts[0]: "api.*.example.com": "*" matches only alone, as a prefix or as a suffix; elsewhere it is matched literally',
  ]);
});

test('authorization policy: a selector without labels is a warning', () => {
  const { errors, warnings } = check(head() + '  selector: {}\n');
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.selector: workload selector has no labels, so it selects every workload in the namespace',
  ]);
});

export const AUTHORIZATION_POLICY_CASES: InvalidCase[] = [
  {
    name: 'CUSTOM without a provider',
    yaml: head() + '  action: CUSTOM\n  rules:\n  - {}\n',
    errors: ['spec.provider: is required when action is CUSTOM'],
  },
  {
    name: 'a provider with a non-CUSTOM action',
    yaml: head() + '  action: DENY\n  provider: {name: ext}\n  rules:\n  - {}\n',
    errors: ['spec.provider: may only be set when action is CUSTOM, not DENY'],
  },
  {
    name: 'a provider with the default action',
    yaml: head() + '  provider: {name: ext}\n',
    errors: ['spec.provider: may only be set when action is CUSTOM, not ALLOW'],
  },
  {
    name: 'DENY without rules',
    yaml: head() + '  action: DENY\n',
    errors: [
      'spec.rules: is required when action is DENY (a policy without rules never matches; use rules: [{}] to match every request)',
    ],
  },
  {
    name: 'CUSTOM without rules and with an empty provider name',
    yaml: head() + '  action: CUSTOM\n  provider: {name: ""}\n',
    errors: [
      'spec.rules: is required when action is CUSTOM (a policy without rules never matches; use rules: [{}] to match every request)',
      'spec.provider.name: is required when action is CUSTOM',
    ],
  },
  {
    name: 'CUSTOM with identity matches it cannot evaluate',
    yaml:
      head() +
      '  action: CUSTOM\n  provider: {name: ext}\n  rules:\n  - from:\n    - source: {principals: ["a"], ipBlocks: ["10.0.0.1"]}\n    when:\n    - {key: "request.auth.claims[group]", values: [admin]}\n',
    errors: [
      'spec.rules[0].from[0].source.principals: is not supported with action CUSTOM',
      'spec.rules[0].when[0].key: "request.auth.claims[group]" is not supported with action CUSTOM',
    ],
  },
  {
    name: 'unknown action',
    yaml: head() + '  action: BLOCK\n',
    errors: ['spec.action: must be one of: ALLOW, DENY, AUDIT, CUSTOM; not "BLOCK"'],
  },
  {
    name: 'empty strings in a source and an operation',
    yaml:
      head() +
      '  rules:\n  - from:\n    - source: {principals: ["a", ""]}\n    to:\n    - operation: {methods: [""]}\n',
    errors: [
      'spec.rules[0].from[0].source.principals[1]: must not be empty',
      'spec.rules[0].to[0].operation.methods[0]: must not be empty',
    ],
  },
  {
    name: 'empty from, source and operation',
    yaml:
      head() +
      '  rules:\n  - from: []\n  - from:\n    - source: {}\n    to:\n    - operation: {}\n',
    errors: [
      'spec.rules[0].from: must not be empty; leave it out to match any source',
      'spec.rules[1].from[0].source: must set at least one field',
      'spec.rules[1].to[0].operation: must set at least one field',
    ],
  },
  {
    name: 'from without a source',
    yaml: head() + '  rules:\n  - from:\n    - {}\n',
    errors: ['spec.rules[0].from[0].source: is required'],
  },
  {
    name: 'bad IP blocks',
    yaml:
      head() +
      '  rules:\n  - from:\n    - source: {ipBlocks: ["10.0.0.0/33"], notRemoteIpBlocks: ["example.com"]}\n',
    errors: [
      'spec.rules[0].from[0].source.ipBlocks[0]: must be an IP address or CIDR range such as "10.0.0.0/8", not "10.0.0.0/33"',
      'spec.rules[0].from[0].source.notRemoteIpBlocks[0]: must be an IP address or CIDR range such as "10.0.0.0/8", not "example.com"',
    ],
  },
  {
    name: 'ports that are not port numbers',
    yaml:
      head() + '  rules:\n  - to:\n    - operation: {ports: ["http", "70000"], notPorts: ["*"]}\n',
    errors: [
      'spec.rules[0].to[0].operation.ports[0]: must be a port number from 0 to 65535, not "http"',
      'spec.rules[0].to[0].operation.ports[1]: must be a port number from 0 to 65535, not "70000"',
      'spec.rules[0].to[0].operation.notPorts[0]: must be a port number from 0 to 65535, not "*"',
    ],
  },
  {
    name: 'an unsupported path template',
    yaml: head() + '  rules:\n  - to:\n    - operation: {paths: ["/{*}/foo/{bar}"]}\n',
    errors: [
      'spec.rules[0].to[0].operation.paths[0]: path template "/{*}/foo/{bar}" is not supported: use {*} and {**} as whole path segments, without named variables or bare * segments',
    ],
  },
  {
    name: 'a condition without a key, and a DENY rule whose from has no source',
    yaml: head() + '  action: DENY\n  rules:\n  - when:\n    - values: [a]\n  - from:\n    - {}\n',
    errors: ['spec.rules[0].when[0].key: is required', 'spec.rules[1].from[0].source: is required'],
  },
  {
    name: 'a condition with neither values nor notValues',
    yaml: head() + '  rules:\n  - when:\n    - key: source.namespace\n',
    errors: ['spec.rules[0].when[0]: must set values or notValues'],
  },
  {
    name: 'unknown and malformed condition keys',
    yaml:
      head() +
      '  rules:\n  - when:\n    - {key: source.user, values: [a]}\n    - {key: request.headers, values: [a]}\n    - {key: "request.auth.claims[]", values: [a]}\n',
    errors: [
      'spec.rules[0].when[0].key: unknown key "source.user"; supported keys: request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<claim>], destination.ip, destination.port, connection.sni, experimental.envoy.filters.*[<key>]',
      'spec.rules[0].when[1].key: key "request.headers" must give its argument in brackets, as in request.headers[<argument>]',
      'spec.rules[0].when[2].key: key "request.auth.claims[]" must give its argument in brackets, as in request.auth.claims[<argument>]',
    ],
  },
  {
    name: 'condition keys Istio no longer supports',
    yaml:
      head() +
      '  rules:\n  - when:\n    - {key: destination.namespace, values: [a]}\n    - {key: "destination.labels[app]", values: [a]}\n    - {key: destination.user, values: [a]}\n',
    errors: [
      `spec.rules[0].when[0].key: key "destination.namespace" is not supported: the policy's own namespace applies`,
      `spec.rules[0].when[1].key: key "destination.labels[app]" is not supported: use the policy's selector instead`,
      'spec.rules[0].when[2].key: key "destination.user" is no longer supported (it existed only in v1alpha1)',
    ],
  },
  {
    name: 'condition values of the wrong form for their key',
    yaml:
      head() +
      '  rules:\n  - when:\n    - {key: destination.port, values: ["80", "eighty"]}\n    - {key: remote.ip, notValues: ["1.2.3"]}\n    - {key: connection.sni, values: [""]}\n',
    errors: [
      'spec.rules[0].when[0].values[1]: must be a port number from 0 to 65535, not "eighty"',
      'spec.rules[0].when[1].notValues[0]: must be an IP address or CIDR range such as "10.0.0.0/8", not "1.2.3"',
      'spec.rules[0].when[2].values[0]: must not be empty',
    ],
  },
  {
    name: 'selector and targetRef together',
    yaml: head() + '  selector: {matchLabels: {app: a}}\n  targetRef: {kind: Service, name: a}\n',
    errors: [
      'spec: only one of "selector", "targetRef", "targetRefs" may be set; found "selector" and "targetRef"',
    ],
  },
  {
    name: 'targetRefs to an unsupported kind, in another namespace',
    yaml:
      head() +
      '  targetRefs:\n  - {kind: Deployment, group: apps, name: a}\n  - {kind: Service, name: b, namespace: other}\n  - {kind: Gateway, group: gateway.networking.k8s.io}\n',
    errors: [
      'spec.targetRefs[0]: cannot target apps/Deployment; supported targets: Service, ServiceEntry (networking.istio.io), Gateway and GatewayClass (gateway.networking.k8s.io)',
      'spec.targetRefs[1].namespace: must not be set: a policy can only target resources in its own namespace',
      'spec.targetRefs[2].name: is required',
    ],
  },
  {
    name: 'serviceAccounts in the wrong form and mixed with principals',
    yaml:
      head() +
      '  rules:\n  - from:\n    - source: {serviceAccounts: ["curl"], principals: ["cluster.local/ns/a/sa/b"]}\n',
    errors: [
      'spec.rules[0].from[0].source.serviceAccounts[0]: must be "<namespace>/<service account>", not "curl"',
      'spec.rules[0].from[0].source: serviceAccounts and notServiceAccounts cannot be combined with principals, notPrincipals, namespaces or notNamespaces',
    ],
  },
  {
    name: 'a misspelt field',
    yaml: head() + '  rules:\n  - from:\n    - source: {principal: ["a"]}\n',
    errors: ['spec.rules[0].from[0].source.principal: unknown field; did you mean "principals"?'],
  },
  {
    name: 'dry-run with an AUDIT action',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ap\n  annotations: {istio.io/dry-run: "yes"}\nspec:\n  action: AUDIT\n  rules: [{}]\n',
    errors: [
      'metadata.annotations["istio.io/dry-run"]: is only supported with action ALLOW or DENY, not AUDIT',
    ],
  },
  {
    name: 'dry-run with a non-boolean value',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ap\n  annotations: {istio.io/dry-run: "yes"}\nspec:\n  action: DENY\n  rules: [{}]\n',
    errors: ['metadata.annotations["istio.io/dry-run"]: must be "true" or "false", not "yes"'],
  },
];

runInvalidCases('authorization policy', AUTHORIZATION_POLICY_CASES);
