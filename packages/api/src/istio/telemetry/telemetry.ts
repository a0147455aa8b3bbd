// Telemetry (telemetry.istio.io): tracing, metrics and access logging settings per mesh, namespace
// or workload.
// Semantics: https://istio.io/latest/docs/reference/config/telemetry/
import { istioKind, TELEMETRY_VERSIONS } from '../../kinds/istio-kind.js';
import { duration } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import {
  bool,
  enumOf,
  list,
  map,
  num,
  obj,
  req,
  str,
  type ObjectOf,
} from '../../validation/schema.js';
import { istioTypeWorkloadSelector } from '../common.js';
import { checkDryRunAnnotation } from '../security/dry-run.js';
import {
  policyTargetReference,
  policyTargetReferences,
  SELECTOR_OR_TARGET,
} from '../security/policy-target.js';

export const WORKLOAD_MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;
/** istio.telemetry.v1.WorkloadMode: traffic direction relative to the workload. */
export type WorkloadMode = (typeof WORKLOAD_MODES)[number];

const providerRefFields = { name: req(str({ nonEmpty: true })) };
/** istio.telemetry.v1.ProviderRef: a provider named in MeshConfig's extensionProviders. */
export type ProviderRef = ObjectOf<typeof providerRefFields>;
const providers = list(obj(providerRefFields));

// ---------- tracing ----------

const literalFields = { value: req(str({ nonEmpty: true })) };
/** istio.telemetry.v1.Tracing.Literal: a fixed tag value. */
export type TracingLiteral = ObjectOf<typeof literalFields>;
const environmentFields = { name: req(str({ nonEmpty: true })), defaultValue: str() };
/** istio.telemetry.v1.Tracing.Environment: a tag value from the proxy's environment. */
export type TracingEnvironment = ObjectOf<typeof environmentFields>;
const requestHeaderFields = { name: req(str({ nonEmpty: true })), defaultValue: str() };
/** istio.telemetry.v1.Tracing.RequestHeader: a tag value from a request header. */
export type TracingRequestHeader = ObjectOf<typeof requestHeaderFields>;

const customTagFields = {
  literal: obj(literalFields),
  environment: obj(environmentFields),
  header: obj(requestHeaderFields),
};
/** istio.telemetry.v1.Tracing.CustomTag: one of literal, environment or header. */
export type CustomTag = ObjectOf<typeof customTagFields>;
export const customTag = obj(customTagFields, {
  oneOf: [{ fields: ['literal', 'environment', 'header'] }],
});

const tracingSelectorFields = { mode: enumOf(WORKLOAD_MODES) };
/** istio.telemetry.v1.Tracing.TracingSelector */
export type TracingSelector = ObjectOf<typeof tracingSelectorFields>;

const tracingFields = {
  match: obj(tracingSelectorFields),
  providers,
  randomSamplingPercentage: num({ min: 0, max: 100 }),
  disableSpanReporting: bool(),
  customTags: map(customTag, {
    key: (k, ctx) => {
      if (k === '') ctx.error('tag name must not be empty');
    },
  }),
  useRequestIdForTraceSampling: bool(),
};
/** istio.telemetry.v1.Tracing: providers, sampling and custom tags for spans. */
export type Tracing = ObjectOf<typeof tracingFields>;
export const tracing = obj(tracingFields, {
  check: (t, ctx) => {
    if ((t.providers?.length ?? 0) > 1)
      ctx
        .field('providers')
        .warn('has more than one provider; Istio supports one tracing provider per rule');
  },
});

// ---------- metrics ----------

export const ISTIO_METRICS = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
] as const;
/** istio.telemetry.v1.MetricSelector.IstioMetric */
export type IstioMetric = (typeof ISTIO_METRICS)[number];

const metricSelectorFields = {
  metric: enumOf(ISTIO_METRICS),
  customMetric: str({ nonEmpty: true }),
  mode: enumOf(WORKLOAD_MODES),
};
/** istio.telemetry.v1.MetricSelector: which metric(s) and direction an override applies to. */
export type MetricSelector = ObjectOf<typeof metricSelectorFields>;
export const metricSelector = obj(metricSelectorFields, {
  oneOf: [{ fields: ['metric', 'customMetric'] }],
});

const tagOverrideFields = { operation: enumOf(['UPSERT', 'REMOVE'] as const), value: str() };
/** istio.telemetry.v1.MetricsOverrides.TagOverride: upsert (with a CEL value) or remove a metric label. */
export type TagOverride = ObjectOf<typeof tagOverrideFields>;
export const tagOverride = obj(tagOverrideFields, {
  check: (t, ctx) => {
    const op = t.operation ?? 'UPSERT';
    if (op === 'UPSERT' && !t.value)
      ctx.field('value').error('is required when operation is UPSERT (the default)');
    if (op === 'REMOVE' && t.value !== undefined)
      ctx.field('value').error('must not be set when operation is REMOVE');
  },
});

const metricsOverridesFields = {
  match: metricSelector,
  disabled: bool(),
  tagOverrides: map(tagOverride, {
    key: (k, ctx) => {
      if (k === '') ctx.warn('tag name is empty');
    },
  }),
};
/** istio.telemetry.v1.MetricsOverrides: disable metrics or change their labels. */
export type MetricsOverrides = ObjectOf<typeof metricsOverridesFields>;

const metricsFields = {
  providers,
  overrides: list(obj(metricsOverridesFields)),
  reportingInterval: duration(),
};
/** istio.telemetry.v1.Metrics: metric providers and overrides. */
export type Metrics = ObjectOf<typeof metricsFields>;

// ---------- access logging ----------

/**
 * A light check of a CEL expression: Trellis does not parse CEL here, but catches empty
 * expressions and unbalanced brackets or quotes, which can never parse.
 */
function checkCelExpression(expr: string, ctx: ValidationContext): void {
  if (expr.trim() === '') return ctx.error('must not be empty');
  const closing: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  let quote: string | undefined;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[' || c === '{') stack.push(c);
    else if (c in closing) {
      if (stack.pop() !== closing[c])
        return ctx.error(`invalid CEL expression: unbalanced ${JSON.stringify(c)} at offset ${i}`);
    }
  }
  if (quote) return ctx.error('invalid CEL expression: unterminated string');
  if (stack.length > 0)
    ctx.error(`invalid CEL expression: unclosed ${JSON.stringify(stack.pop())}`);
}

const filterFields = { expression: req(str({ check: checkCelExpression })) };
/** istio.telemetry.v1.AccessLogging.Filter: a CEL expression choosing what to log. */
export type AccessLoggingFilter = ObjectOf<typeof filterFields>;
const logSelectorFields = { mode: enumOf(WORKLOAD_MODES) };
/** istio.telemetry.v1.AccessLogging.LogSelector */
export type LogSelector = ObjectOf<typeof logSelectorFields>;

const accessLoggingFields = {
  match: obj(logSelectorFields),
  providers,
  disabled: bool(),
  filter: obj(filterFields),
};
/** istio.telemetry.v1.AccessLogging: access log providers, on/off and a filter. */
export type AccessLogging = ObjectOf<typeof accessLoggingFields>;

// ---------- Telemetry ----------

const telemetryFields = {
  selector: istioTypeWorkloadSelector,
  targetRef: policyTargetReference,
  targetRefs: policyTargetReferences,
  tracing: list(tracing),
  metrics: list(obj(metricsFields)),
  accessLogging: list(obj(accessLoggingFields)),
};
/** istio.telemetry.v1.Telemetry: the spec of a Telemetry resource. */
export type TelemetrySpec = ObjectOf<typeof telemetryFields>;
export const telemetrySpec = obj(telemetryFields, {
  oneOf: [SELECTOR_OR_TARGET],
  check: (spec, ctx) => {
    if ((spec.tracing?.length ?? 0) > 1)
      ctx
        .field('tracing')
        .warn('has more than one entry; Istio supports one tracing rule per Telemetry');
  },
});

export const TELEMETRY = istioKind({
  group: 'telemetry.istio.io',
  kind: 'Telemetry',
  versions: TELEMETRY_VERSIONS,
  plural: 'telemetries',
  shortNames: ['telemetry'],
  spec: telemetrySpec,
  check: (object, ctx) => checkDryRunAnnotation(object, ctx, 'Telemetry'),
});
