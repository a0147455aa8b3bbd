// Telemetry validation: tracing, metrics overrides and access logging, with Istio's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';

const head = (v = 'v1') =>
  `apiVersion: telemetry.istio.io/${v}\nkind: Telemetry\nmetadata:\n  name: t\nspec:\n`;

test('telemetry: the documented examples are valid', () => {
  assertValid(
    head() +
      `  tracing:
  - randomSamplingPercentage: 10.00
    customTags:
      my_new_foo_tag:
        literal: {value: "foo"}
      env_tag:
        environment: {name: POD_NAME, defaultValue: unknown}
      header_tag:
        header: {name: x-user}
    match: {mode: SERVER}
    useRequestIdForTraceSampling: false
  metrics:
  - providers: [{name: prometheus}]
    reportingInterval: 10s
    overrides:
    - match: {metric: ALL_METRICS, mode: CLIENT}
      disabled: true
    - match: {customMetric: my_metric}
      tagOverrides:
        request_method: {value: "request.method"}
        response_code: {operation: REMOVE}
  accessLogging:
  - providers: [{name: envoy}]
    match: {mode: CLIENT_AND_SERVER}
    filter:
      expression: "response.code >= 400 || !has(request.useragent)"
`,
  );
  assertValid(head('v1alpha1') + '  accessLogging:\n  - disabled: true\n');
  assertValid(
    head() +
      '  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}\n  tracing:\n  - disableSpanReporting: true\n',
  );
});

test('telemetry: more than one tracing rule or provider is a warning, as in Istio', () => {
  const { errors, warnings } = check(
    head() + '  tracing:\n  - providers: [{name: a}, {name: b}]\n  - {}\n',
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings.sort(), [
    'spec.tracing: has more than one entry; Istio supports one tracing rule per Telemetry',
    'spec.tracing[0].providers: has more than one provider; Istio supports one tracing provider per rule',
  ]);
});

export const TELEMETRY_CASES: InvalidCase[] = [
  {
    name: 'sampling percentage above 100',
    yaml: head() + '  tracing:\n  - randomSamplingPercentage: 101\n',
    errors: ['spec.tracing[0].randomSamplingPercentage: must be between 0 and 100, not 101'],
  },
  {
    name: 'a provider without a name',
    yaml:
      head() + '  metrics:\n  - providers: [{}]\n  accessLogging:\n  - providers: [{name: ""}]\n',
    errors: [
      'spec.metrics[0].providers[0].name: is required',
      'spec.accessLogging[0].providers[0].name: must not be empty',
    ],
  },
  {
    name: 'unknown metric and mode',
    yaml: head() + '  metrics:\n  - overrides:\n    - match: {metric: REQUESTS, mode: BOTH}\n',
    errors: [
      'spec.metrics[0].overrides[0].match.metric: must be one of: ALL_METRICS, REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE, TCP_OPENED_CONNECTIONS, TCP_CLOSED_CONNECTIONS, TCP_SENT_BYTES, TCP_RECEIVED_BYTES, GRPC_REQUEST_MESSAGES, GRPC_RESPONSE_MESSAGES; not "REQUESTS"',
      'spec.metrics[0].overrides[0].match.mode: must be one of: CLIENT_AND_SERVER, CLIENT, SERVER; not "BOTH"',
    ],
  },
  {
    name: 'metric and customMetric together',
    yaml:
      head() +
      '  metrics:\n  - overrides:\n    - match: {metric: REQUEST_COUNT, customMetric: x}\n',
    errors: [
      'spec.metrics[0].overrides[0].match: only one of "metric", "customMetric" may be set; found "metric" and "customMetric"',
    ],
  },
  {
    name: 'tag overrides: UPSERT without a value, REMOVE with one',
    yaml:
      head() +
      '  metrics:\n  - overrides:\n    - tagOverrides:\n        a: {}\n        b: {operation: REMOVE, value: x}\n',
    errors: [
      'spec.metrics[0].overrides[0].tagOverrides.a.value: is required when operation is UPSERT (the default)',
      'spec.metrics[0].overrides[0].tagOverrides.b.value: must not be set when operation is REMOVE',
    ],
  },
  {
    name: 'custom tags with two sources and an empty literal',
    yaml:
      head() +
      '  tracing:\n  - customTags:\n      a: {literal: {value: x}, header: {name: y}}\n      b: {literal: {value: ""}}\n',
    errors: [
      'spec.tracing[0].customTags.a: only one of "literal", "environment", "header" may be set; found "literal" and "header"',
      'spec.tracing[0].customTags.b.literal.value: must not be empty',
    ],
  },
  {
    name: 'a bad reporting interval and an unbalanced filter',
    yaml:
      head() +
      '  metrics:\n  - reportingInterval: "10"\n  accessLogging:\n  - filter: {expression: "response.code >= (400"}\n',
    errors: [
      'spec.metrics[0].reportingInterval: must be a duration such as "1.5s", "100ms" or "1m", not "10"',
      'spec.accessLogging[0].filter.expression: invalid CEL expression: unclosed "("',
    ],
  },
  {
    name: 'selector and targetRefs together',
    yaml:
      head() +
      '  selector: {matchLabels: {app: a}}\n  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: w}\n',
    errors: [
      'spec: only one of "selector", "targetRef", "targetRefs" may be set; found "selector" and "targetRefs"',
    ],
  },
  {
    name: 'a misspelt field',
    yaml: head() + '  accesslogging:\n  - disabled: true\n',
    errors: ['spec.accesslogging: unknown field; did you mean "accessLogging"?'],
  },
];

runInvalidCases('telemetry', TELEMETRY_CASES);
