// PeerAuthentication validation: mTLS modes and Istio's port-level rules.
import { test } from 'node:test';
import { assertValid, runInvalidCases, type InvalidCase } from './invalid-cases.js';

const head =
  'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: pa\nspec:\n';

test('peer authentication: the documented examples are valid', () => {
  assertValid(head + '  mtls:\n    mode: STRICT\n');
  assertValid(
    head +
      '  selector:\n    matchLabels: {app: finance}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n    "9090": {mode: PERMISSIVE}\n',
  );
  assertValid(head.replace('/v1', '/v1beta1') + '  {}\n');
});

export const PEER_AUTHENTICATION_CASES: InvalidCase[] = [
  {
    name: 'unknown mode',
    yaml: head + '  mtls: {mode: MUTUAL}\n',
    errors: ['spec.mtls.mode: must be one of: UNSET, DISABLE, PERMISSIVE, STRICT; not "MUTUAL"'],
  },
  {
    name: 'port-level mTLS without a selector',
    yaml: head + '  portLevelMtls:\n    8080: {mode: DISABLE}\n',
    errors: [
      'spec.portLevelMtls: requires a selector with matchLabels: a mesh-wide or namespace-wide policy cannot set port-level mTLS',
    ],
  },
  {
    name: 'port-level mTLS with a selector without labels',
    yaml: head + '  selector: {}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n',
    errors: [
      'spec.portLevelMtls: requires a selector with matchLabels: a mesh-wide or namespace-wide policy cannot set port-level mTLS',
    ],
    warnings: [
      'spec.selector: workload selector has no labels, so it selects every workload in the namespace',
    ],
  },
  {
    name: 'port keys that are not port numbers',
    yaml:
      head +
      '  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    http: {mode: DISABLE}\n    0: {mode: DISABLE}\n    70000: {mode: STRICT}\n',
    errors: [
      'spec.portLevelMtls.http: key must be a port number between 1 and 65535, not "http"',
      'spec.portLevelMtls["0"]: key must be a port number between 1 and 65535, not "0"',
      'spec.portLevelMtls["70000"]: key must be a port number between 1 and 65535, not "70000"',
    ],
  },
  {
    name: 'empty port-level mTLS',
    yaml: head + '  selector: {matchLabels: {app: a}}\n  portLevelMtls: {}\n',
    errors: ['spec.portLevelMtls: must name at least one port when set'],
  },
  {
    name: 'a wildcard in the selector',
    yaml: head + '  selector: {matchLabels: {app: "*"}}\n',
    errors: ['spec.selector.matchLabels.app: wildcards are not supported in selectors: "app=*"'],
  },
  {
    name: 'a targetRef, which PeerAuthentication does not have',
    yaml: head + '  targetRef: {kind: Service, name: a}\n',
    errors: ['spec.targetRef: unknown field'],
  },
];

runInvalidCases('peer authentication', PEER_AUTHENTICATION_CASES);
