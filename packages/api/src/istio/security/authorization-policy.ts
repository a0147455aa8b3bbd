// AuthorizationPolicy (security.istio.io): allow, deny, audit or delegate (CUSTOM) requests by
// source, operation and conditions.
// Semantics: https://istio.io/latest/docs/reference/config/security/authorization-policy/ and
// https://istio.io/latest/docs/reference/config/security/conditions/
import { istioKind, SECURITY_VERSIONS } from '../../kinds/istio-kind.js';
import { checkCidrOrIp } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import { enumOf, list, obj, req, str, type ObjectOf } from '../../validation/schema.js';
import { istioTypeWorkloadSelector } from '../common.js';
import { checkDryRunAnnotation } from './dry-run.js';
import {
  policyTargetReference,
  policyTargetReferences,
  SELECTOR_OR_TARGET,
} from './policy-target.js';

// ---------- value forms ----------

/**
 * Istio matches rule strings exactly, by prefix (`abc*`), by suffix (`*abc`) or by presence (`*`).
 * A `*` anywhere else is matched literally, which is almost never what was meant.
 */
function warnInnerWildcard(value: string, ctx: ValidationContext): void {
  if (value === '*' || !value.includes('*')) return;
  const stars = value.split('*').length - 1;
  if (stars !== 1 || !(value.startsWith('*') || value.endsWith('*')))
    ctx.warn(
      `${JSON.stringify(value)}: "*" matches only alone, as a prefix or as a suffix; elsewhere it is matched literally`,
    );
}

/** A string matched exactly, by prefix, suffix or presence. */
const matchValue = str({ nonEmpty: true, check: warnInnerWildcard });
/** A string Istio matches its own way (namespaces allow `*` anywhere). */
const plainValue = str({ nonEmpty: true });
/** A single IP address or a CIDR range. */
const ipValue = str({ nonEmpty: true, check: (v, ctx) => checkCidrOrIp(v, ctx) });

function checkPortString(v: string, ctx: ValidationContext): void {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535)
    ctx.error(`must be a port number from 0 to 65535, not ${JSON.stringify(v)}`);
}
/** A port number written as a string (`"8080"`). */
const portValue = str({ nonEmpty: true, check: checkPortString });

const UNSUPPORTED_PATH_TEMPLATE = /\/\{\w+=\*\*?\}|\{\w*\}|\/\*\*?|\*\*?\//;

/** A path: exact, prefix, suffix or presence, or a path template using `{*}` and `{**}` segments. */
function checkPath(p: string, ctx: ValidationContext): void {
  if (p.includes('{*}') || p.includes('{**}')) {
    if (UNSUPPORTED_PATH_TEMPLATE.test(p))
      ctx.error(
        `path template ${JSON.stringify(p)} is not supported: use {*} and {**} as whole path segments, without named variables or bare * segments`,
      );
    return;
  }
  warnInnerWildcard(p, ctx);
}
const pathValue = str({ nonEmpty: true, check: checkPath });

/** `<namespace>/<service account>`, matched exactly. */
function checkServiceAccount(v: string, ctx: ValidationContext): void {
  if (!/^[^/]+\/[^/]+$/.test(v))
    ctx.error(`must be "<namespace>/<service account>", not ${JSON.stringify(v)}`);
  else if (v.includes('*'))
    ctx.warn(
      `${JSON.stringify(v)}: service accounts are matched exactly; "*" is not a wildcard here`,
    );
}
const serviceAccountValue = str({ nonEmpty: true, check: checkServiceAccount });

// ---------- Source, Operation, Condition ----------

const sourceFields = {
  principals: list(matchValue),
  notPrincipals: list(matchValue),
  requestPrincipals: list(matchValue),
  notRequestPrincipals: list(matchValue),
  namespaces: list(plainValue),
  notNamespaces: list(plainValue),
  serviceAccounts: list(serviceAccountValue, { maxItems: 16 }),
  notServiceAccounts: list(serviceAccountValue, { maxItems: 16 }),
  ipBlocks: list(ipValue),
  notIpBlocks: list(ipValue),
  remoteIpBlocks: list(ipValue),
  notRemoteIpBlocks: list(ipValue),
};
/** istio.security.v1beta1.Source: who sent a request (peer identity, JWT identity, namespace, addresses). */
export type Source = ObjectOf<typeof sourceFields>;
export const source = obj(sourceFields, { check: checkSource });

function isSet(v: readonly unknown[] | undefined): boolean {
  return v !== undefined && v.length > 0;
}

function checkSource(s: Source, ctx: ValidationContext): void {
  if (!Object.values(s).some((v) => isSet(v))) ctx.error('must set at least one field');
  if (
    (isSet(s.serviceAccounts) || isSet(s.notServiceAccounts)) &&
    (isSet(s.principals) || isSet(s.notPrincipals) || isSet(s.namespaces) || isSet(s.notNamespaces))
  )
    ctx.error(
      'serviceAccounts and notServiceAccounts cannot be combined with principals, notPrincipals, namespaces or notNamespaces',
    );
}

const operationFields = {
  hosts: list(matchValue),
  notHosts: list(matchValue),
  ports: list(portValue),
  notPorts: list(portValue),
  methods: list(matchValue),
  notMethods: list(matchValue),
  paths: list(pathValue),
  notPaths: list(pathValue),
};
/** istio.security.v1beta1.Operation: what a request does (host, port, method, path). */
export type Operation = ObjectOf<typeof operationFields>;
export const operation = obj(operationFields, {
  check: (op, ctx) => {
    if (!Object.values(op).some((v) => isSet(v))) ctx.error('must set at least one field');
  },
});

/** How the values of a condition key are checked. */
type ValueForm = 'ip' | 'port' | 'string';

/** Keys whose name carries an argument in brackets: `request.headers[User-Agent]`. */
const BRACKET_KEYS = ['request.headers', 'request.auth.claims', 'experimental.envoy.filters.'];
const PLAIN_KEYS: Readonly<Record<string, ValueForm>> = {
  'source.ip': 'ip',
  'remote.ip': 'ip',
  'destination.ip': 'ip',
  'destination.port': 'port',
  'source.namespace': 'string',
  'source.principal': 'string',
  'request.auth.principal': 'string',
  'request.auth.audiences': 'string',
  'request.auth.presenter': 'string',
  'connection.sni': 'string',
};

/** The value form of a condition key, or a message saying why the key is not accepted. */
export function conditionKeyForm(key: string): ValueForm | { problem: string } {
  const plain = PLAIN_KEYS[key];
  if (plain) return plain;
  const bracket = BRACKET_KEYS.find((p) => key.startsWith(p));
  if (bracket !== undefined) {
    const open = key.indexOf('[');
    if (key.endsWith(']') && open > 0 && open < key.length - 2) return 'string';
    const name = bracket.endsWith('.') ? `${bracket}<name>` : bracket;
    return {
      problem: `key ${JSON.stringify(key)} must give its argument in brackets, as in ${name}[<argument>]`,
    };
  }
  if (key === 'destination.namespace')
    return {
      problem: `key "destination.namespace" is not supported: the policy's own namespace applies`,
    };
  if (key.startsWith('destination.labels'))
    return {
      problem: `key ${JSON.stringify(key)} is not supported: use the policy's selector instead`,
    };
  if (key === 'destination.name' || key === 'destination.user')
    return {
      problem: `key ${JSON.stringify(key)} is no longer supported (it existed only in v1alpha1)`,
    };
  return {
    problem: `unknown key ${JSON.stringify(key)}; supported keys: request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<claim>], destination.ip, destination.port, connection.sni, experimental.envoy.filters.*[<key>]`,
  };
}

const conditionFields = {
  key: req(
    str({
      nonEmpty: true,
      check: (key, ctx) => {
        const form = conditionKeyForm(key);
        if (typeof form !== 'string') ctx.error(form.problem);
      },
    }),
  ),
  values: list(str({ nonEmpty: true })),
  notValues: list(str({ nonEmpty: true })),
};
/** istio.security.v1beta1.Condition: an extra attribute (`key`) a request must (not) have. */
export type Condition = ObjectOf<typeof conditionFields>;
export const condition = obj(conditionFields, { check: checkCondition });

function checkCondition(c: Condition, ctx: ValidationContext): void {
  if (!isSet(c.values) && !isSet(c.notValues)) {
    ctx.error('must set values or notValues');
    return;
  }
  // Checks run even when a required field is missing (that is not a type error).
  if (c.key === undefined) return;
  const form = conditionKeyForm(c.key);
  if (typeof form !== 'string') return;
  for (const field of ['values', 'notValues'] as const) {
    c[field]?.forEach((v, i) => {
      if (v === '') return;
      const vc = ctx.at(field, i);
      if (form === 'ip') checkCidrOrIp(v, vc);
      else if (form === 'port') checkPortString(v, vc);
      else warnInnerWildcard(v, vc);
    });
  }
}

// ---------- Rule ----------

const fromFields = { source: req(source) };
/** istio.security.v1beta1.Rule.From: one source a rule accepts. */
export type RuleFrom = ObjectOf<typeof fromFields>;
const toFields = { operation: req(operation) };
/** istio.security.v1beta1.Rule.To: one operation a rule accepts. */
export type RuleTo = ObjectOf<typeof toFields>;

const ruleFields = {
  from: list(obj(fromFields)),
  to: list(obj(toFields)),
  when: list(condition),
};
/** istio.security.v1beta1.Rule: matches when one source, one operation and every condition match. */
export type Rule = ObjectOf<typeof ruleFields>;
export const rule = obj(ruleFields, {
  check: (r, ctx) => {
    if (r.from?.length === 0)
      ctx.field('from').error('must not be empty; leave it out to match any source');
    if (r.to?.length === 0)
      ctx.field('to').error('must not be empty; leave it out to match any operation');
  },
});

// ---------- AuthorizationPolicy ----------

export const AUTHORIZATION_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
/** istio.security.v1beta1.AuthorizationPolicy.Action */
export type AuthorizationAction = (typeof AUTHORIZATION_ACTIONS)[number];

const extensionProviderFields = { name: str() };
/** istio.security.v1beta1.AuthorizationPolicy.ExtensionProvider: the CUSTOM action's provider (from MeshConfig). */
export type ExtensionProvider = ObjectOf<typeof extensionProviderFields>;

const authorizationPolicyFields = {
  selector: istioTypeWorkloadSelector,
  targetRef: policyTargetReference,
  targetRefs: policyTargetReferences,
  rules: list(rule, { maxItems: 512 }),
  action: enumOf(AUTHORIZATION_ACTIONS),
  provider: obj(extensionProviderFields),
};
/** istio.security.v1beta1.AuthorizationPolicy: the spec of an AuthorizationPolicy. */
export type AuthorizationPolicySpec = ObjectOf<typeof authorizationPolicyFields>;
export const authorizationPolicySpec = obj(authorizationPolicyFields, {
  oneOf: [SELECTOR_OR_TARGET],
  check: checkAuthorizationPolicy,
});

/** Source fields that name identities the CUSTOM action cannot see. */
const CUSTOM_UNSUPPORTED_SOURCE = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
] as const;

/** Source fields that also apply to TCP traffic (everything but the JWT identities). */
const TCP_SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
] as const;

const NEVER_MATCHES =
  'a policy without rules never matches; use rules: [{}] to match every request';

function checkAuthorizationPolicy(spec: AuthorizationPolicySpec, ctx: ValidationContext): void {
  const action = spec.action ?? 'ALLOW';
  const noRules = spec.rules === undefined || spec.rules.length === 0;
  if (action === 'CUSTOM') {
    if (noRules) ctx.field('rules').error(`is required when action is CUSTOM (${NEVER_MATCHES})`);
    if (spec.provider === undefined)
      ctx.field('provider').error('is required when action is CUSTOM');
    else if (!spec.provider.name)
      ctx.at('provider', 'name').error('is required when action is CUSTOM');
    spec.rules?.forEach((r, i) => checkCustomRule(r, ctx.at('rules', i)));
  } else if (spec.provider !== undefined) {
    ctx.field('provider').error(`may only be set when action is CUSTOM, not ${action}`);
  }
  if (action === 'DENY' && noRules)
    ctx.field('rules').error(`is required when action is DENY (${NEVER_MATCHES})`);
  if (action === 'DENY') spec.rules?.forEach((r, i) => warnHttpOnlyDenyRule(r, ctx.at('rules', i)));
}

/** The CUSTOM action (an external authorizer) cannot match on peer or JWT identities. */
function checkCustomRule(r: Rule, ctx: ValidationContext): void {
  r.from?.forEach((f, i) => {
    for (const field of CUSTOM_UNSUPPORTED_SOURCE) {
      if (isSet(f.source?.[field]))
        ctx.at('from', i, 'source', field).error('is not supported with action CUSTOM');
    }
  });
  r.when?.forEach((c, i) => {
    if (
      c.key === 'source.namespace' ||
      c.key === 'source.principal' ||
      c.key?.startsWith('request.auth.')
    )
      ctx
        .at('when', i, 'key')
        .error(`${JSON.stringify(c.key)} is not supported with action CUSTOM`);
  });
}

/**
 * Istio's warning: a DENY rule made only of HTTP attributes cannot be evaluated on TCP
 * connections, so Istio denies every TCP connection the policy covers.
 */
function warnHttpOnlyDenyRule(r: Rule, ctx: ValidationContext): void {
  const hasFrom = (r.from?.length ?? 0) > 0;
  const hasTo = (r.to?.length ?? 0) > 0;
  const tcpFrom = r.from?.some((f) => TCP_SOURCE_FIELDS.some((k) => isSet(f.source?.[k])));
  const tcpTo = r.to?.some((t) => isSet(t.operation?.ports) || isSet(t.operation?.notPorts));
  if ((hasFrom && !hasTo && !tcpFrom) || (hasTo && !tcpTo))
    ctx.warn(
      "this DENY rule uses only HTTP attributes, so it also denies every TCP connection in the policy's scope; add ports to the rule to limit it",
    );
}

export const AUTHORIZATION_POLICY = istioKind({
  group: 'security.istio.io',
  kind: 'AuthorizationPolicy',
  versions: SECURITY_VERSIONS,
  plural: 'authorizationpolicies',
  shortNames: ['ap'],
  spec: authorizationPolicySpec,
  check: (object, ctx) => {
    const spec = object.spec as AuthorizationPolicySpec | undefined;
    checkDryRunAnnotation(object, ctx, 'AuthorizationPolicy', spec?.action ?? 'ALLOW');
  },
});
