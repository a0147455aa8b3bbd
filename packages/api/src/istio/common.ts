// Message types and rules shared by several Istio kinds (istio.io/api type names in comments):
// selectors, string matches, ports, percentages, Istio's host-name rules, header operations,
// protocols and exportTo.
import {
  checkCidrOrIp,
  checkHeaderValue,
  checkLabelValue,
  checkQualifiedName,
  checkRegex,
} from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import {
  list,
  map,
  num,
  obj,
  str,
  uint32,
  type Infer,
  type ObjectOf,
} from '../validation/schema.js';

/** Kubernetes-style labels: `key: value` with Kubernetes' syntax rules for both. */
export const labels = map(str({ check: (v, ctx) => checkLabelValue(v, ctx) }), {
  key: (k, ctx) => checkQualifiedName(k, ctx),
});

/** istio.type.v1beta1.WorkloadSelector */
export const workloadSelector = obj({ matchLabels: labels });

/** istio.networking.v1.StringMatch: exactly one of exact, prefix, regex. */
export const stringMatch = obj(
  {
    exact: str(),
    prefix: str(),
    regex: str({ check: (r, ctx) => checkRegex(r, ctx) }),
  },
  { oneOf: [{ fields: ['exact', 'prefix', 'regex'] }] },
);

/** istio.networking.v1.PortSelector */
export const portSelector = obj({
  number: uint32({ min: 1, max: 65535 }),
});
/** istio.networking.v1.PortSelector */
export type PortSelector = Infer<typeof portSelector>;

/** istio.networking.v1.Percent: a double from 0 to 100. */
export const percent = obj({ value: num({ min: 0, max: 100 }) });
/** istio.networking.v1.Percent */
export type Percent = Infer<typeof percent>;

// ---------- Istio's DNS rules ----------

// Istio's DNS-1123 label accepts upper case (istio/pkg/config/labels), unlike Kubernetes'.
const ISTIO_DNS_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const ISTIO_WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

/** A DNS-1123 label as Istio checks it (letters of either case, digits and '-', at most 63). */
export function isIstioDnsLabel(s: string): boolean {
  return s.length <= 63 && ISTIO_DNS_LABEL.test(s);
}

/** Reports a name that is not an Istio DNS-1123 label (subset names, port names, namespaces). */
export function checkIstioDnsLabel(s: string, ctx: ValidationContext, what: string): void {
  if (s === '') ctx.error(`${what} must not be empty`);
  else if (!isIstioDnsLabel(s))
    ctx.error(
      `${what} ${JSON.stringify(s)} must be a DNS-1123 label: at most 63 letters, digits and '-', starting and ending with a letter or digit`,
    );
}

function dnsPreconditionProblem(name: string, what: string): string | undefined {
  if (name === '') return `${what} must not be empty`;
  if (name.length > 255) return `${what} must be at most 255 characters, not ${name.length}`;
  return undefined;
}

/** Istio's rule for the labels after the first: DNS labels, a trailing dot allowed, TLD not all digits. */
function dnsLabelsProblem(host: string, domain: string, what: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1]!;
  if (/^[0-9]+$/.test(tld))
    return `${what} ${JSON.stringify(host)}: the top-level domain ${JSON.stringify(tld)} must not be all digits`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isIstioDnsLabel(label))
      return `${what} ${JSON.stringify(host)}: ${JSON.stringify(label)} is not a valid DNS label`;
  }
  return undefined;
}

/**
 * Istio's host name with an optional wildcard first label (`reviews`, `*.example.com`,
 * `*`, `*-foo.example.com`): returns a message or undefined.
 */
export function wildcardHostProblem(host: string, what = 'host'): string | undefined {
  const pre = dnsPreconditionProblem(host, what);
  if (pre) return pre;
  const dot = host.indexOf('.');
  const first = dot < 0 ? host : host.slice(0, dot);
  if (first.length > 63 || !ISTIO_WILDCARD_LABEL.test(first))
    return `${what} ${JSON.stringify(host)}: ${JSON.stringify(first)} is not a valid DNS label or wildcard (a wildcard is allowed only as, or at the start of, the first label)`;
  return dot < 0 ? undefined : dnsLabelsProblem(host, host.slice(dot + 1), what);
}

/** A fully qualified DNS name without wildcards: returns a message or undefined. */
export function fqdnProblem(name: string, what = 'host'): string | undefined {
  return dnsPreconditionProblem(name, what) ?? dnsLabelsProblem(name, name, what);
}

export function checkWildcardDomain(host: string, ctx: ValidationContext): void {
  const p = wildcardHostProblem(host);
  if (p) ctx.error(p);
}

export function checkFqdn(name: string, ctx: ValidationContext): void {
  const p = fqdnProblem(name);
  if (p) ctx.error(p);
}

/** Istio's `host.Name.Matches`: equal, or one wildcard host covering the other. */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw)
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Istio's `host.Name.SubsetOf`: every name `a` matches is also matched by `b`. */
export function hostIsSubsetOf(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw) return bw && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** IP address or CIDR block, as Istio's ValidateIPSubnet reads it. */
export const ipOrCidr = str({ check: (s, ctx) => checkCidrOrIp(s, ctx) });

// ---------- string matches ----------

/** Options for the StringMatch flavours Istio uses in different places. */
export interface StringMatchOptions {
  /** `prefix: ""` is allowed (URIs only: Envoy matches every path). */
  readonly allowEmptyPrefix?: boolean;
  /** `regex: "*"` means "header present" (withoutHeaders only). */
  readonly allowStarRegex?: boolean;
}

const MAX_REGEX_LENGTH = 1024;

/** Checks a regex the way Istio does: non-empty, at most 1024 characters, valid RE2. */
export function checkIstioRegex(re: string, ctx: ValidationContext): void {
  if (re === '') ctx.error('regex must not be empty');
  else if (re.length > MAX_REGEX_LENGTH)
    ctx.error(`regex must be at most ${MAX_REGEX_LENGTH} characters, not ${re.length}`);
  else checkRegex(re, ctx);
}

const stringMatchFields = { exact: str(), prefix: str(), regex: str() };
/** istio.networking.v1.StringMatch */
export type StringMatch = ObjectOf<typeof stringMatchFields>;

/** A StringMatch with Istio's per-field rules (empty prefix, regex length and syntax). */
export function istioStringMatch(opts: StringMatchOptions = {}) {
  return obj(stringMatchFields, {
    oneOf: [{ fields: ['exact', 'prefix', 'regex'] }],
    check: (m: StringMatch, ctx: ValidationContext) => {
      if (m.prefix === '' && !opts.allowEmptyPrefix) ctx.field('prefix').error('must not be empty');
      if (m.regex != null && !(opts.allowStarRegex && m.regex === '*'))
        checkIstioRegex(m.regex, ctx.field('regex'));
    },
  });
}

// ---------- selectors ----------

function checkSelectorLabels(l: Readonly<Record<string, string>>, ctx: ValidationContext): void {
  for (const [k, v] of Object.entries(l)) {
    if (k === '') ctx.field(k).error('label key must not be empty');
    if (k.includes('*') || v.includes('*'))
      ctx
        .field(k)
        .error(`wildcards are not supported in selectors: ${JSON.stringify(`${k}=${v}`)}`);
  }
}

const selectorLabels = map(str(), { check: checkSelectorLabels });

const networkingSelectorFields = { labels: selectorLabels };
/** istio.networking.v1.WorkloadSelector (ServiceEntry, Sidecar): `labels`, not `matchLabels`. */
export type NetworkingWorkloadSelector = ObjectOf<typeof networkingSelectorFields>;
export const networkingWorkloadSelector = obj(networkingSelectorFields, {
  check: (s, ctx) => {
    if (!s.labels || Object.keys(s.labels).length === 0)
      ctx.warn('workload selector has no labels, so it selects every workload in the namespace');
  },
});

const typeSelectorFields = { matchLabels: selectorLabels };
/** istio.type.v1beta1.WorkloadSelector as Istio checks it (DestinationRule): no wildcards. */
export type TypeWorkloadSelector = ObjectOf<typeof typeSelectorFields>;
export const istioTypeWorkloadSelector = obj(typeSelectorFields, {
  check: (s, ctx) => {
    if (!s.matchLabels || Object.keys(s.matchLabels).length === 0)
      ctx.warn('workload selector has no labels, so it selects every workload in the namespace');
  },
});

// ---------- protocols ----------

/** Protocol names Istio parses (case-insensitive); '' means "detect". */
export const ISTIO_PROTOCOLS = [
  'HTTP',
  'HTTPS',
  'GRPC',
  'GRPC-WEB',
  'HTTP2',
  'HTTP_PROXY',
  'MONGO',
  'MYSQL',
  'REDIS',
  'TCP',
  'TLS',
  'UDP',
] as const;

/** The protocol a port name or protocol field means, or undefined for an unknown one. */
export function parseProtocol(p: string): (typeof ISTIO_PROTOCOLS)[number] | undefined {
  const up = p.toUpperCase();
  return (ISTIO_PROTOCOLS as readonly string[]).includes(up)
    ? (up as (typeof ISTIO_PROTOCOLS)[number])
    : undefined;
}

export function isHttpProtocol(p: string): boolean {
  return ['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB'].includes(p.toUpperCase());
}

export function isTlsProtocol(p: string): boolean {
  return ['HTTPS', 'TLS'].includes(p.toUpperCase());
}

export function checkProtocol(p: string, ctx: ValidationContext): void {
  if (p !== '' && parseProtocol(p) === undefined)
    ctx.error(`unknown protocol ${JSON.stringify(p)}; one of: ${ISTIO_PROTOCOLS.join(', ')}`);
}

// ---------- header operations ----------

function isPseudoHeader(name: string): boolean {
  return name.startsWith(':');
}

/** Whether a header name sets the authority (`:authority` or `host`). */
export function isAuthorityHeader(name: string): boolean {
  const l = name.toLowerCase();
  return l === ':authority' || l === 'host';
}

/**
 * Checks a header value as Envoy's header formatter parses it: `%VAR%` and `%VAR(args)%`
 * expressions must be closed and a literal `%` is written `%%`. Returns a message or undefined.
 */
export function envoyHeaderValueProblem(value: string): string | undefined {
  type State = 'literal' | 'name' | 'array' | 'string' | 'inString' | 'delim' | 'argsEnd' | 'end';
  let state: State = 'literal';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    switch (state) {
      case 'literal':
        if (ch !== '%') break;
        if (i + 1 >= value.length) return 'a lone "%" must be written "%%"';
        if (value[i + 1] === '%') i++;
        else state = 'name';
        break;
      case 'name':
        if (ch === '%') state = 'literal';
        else if (ch === '(') state = 'array';
        break;
      case 'array':
        if (ch === '[') state = 'string';
        else if (ch !== ' ') state = 'inString';
        break;
      case 'delim':
        if (ch === ',') state = 'string';
        else if (ch === ']') state = 'argsEnd';
        else if (ch !== ' ') return 'expected ",", "]" or a space in the variable arguments';
        break;
      case 'string':
        if (ch === '"') state = 'inString';
        else if (ch !== ' ') return "expected '\"' to start a variable argument";
        break;
      case 'inString':
        if (ch === '\\') {
          if (i + 1 >= value.length) return 'unterminated backslash in a variable argument';
          i++;
        } else if (ch === ')') state = 'end';
        else if (ch === '"') state = 'delim';
        break;
      case 'argsEnd':
        if (ch === ')') state = 'end';
        else if (ch !== ' ') return 'expected ")" after the variable arguments';
        break;
      case 'end':
        if (ch === '%') state = 'literal';
        else if (ch !== ' ') return 'expected "%" to close the variable';
        break;
    }
  }
  return state === 'literal' ? undefined : 'unterminated %VARIABLE% expression';
}

function checkOperationValue(value: string, ctx: ValidationContext): void {
  const before = ctx.errorCount;
  checkHeaderValue(value, ctx);
  if (ctx.errorCount !== before) return;
  const p = envoyHeaderValueProblem(value);
  if (p) ctx.error(`invalid header value ${JSON.stringify(value)}: ${p}`);
}

/** A header name that may be set or added on a request: `:authority`/`host` yes, other pseudo-headers no. */
function checkRequestSetName(name: string, ctx: ValidationContext): void {
  if (name === '') ctx.error('header name must not be empty');
  else if (isPseudoHeader(name) && !isAuthorityHeader(name))
    ctx.error(`header ${JSON.stringify(name)} cannot be modified: it is a pseudo-header`);
}

/** A header name that may be removed from a request, or changed on a response. */
function checkPlainOperationName(name: string, ctx: ValidationContext): void {
  if (name === '') ctx.error('header name must not be empty');
  else if (name.toLowerCase() === 'host') ctx.error('the Host header cannot be modified here');
  else if (isPseudoHeader(name))
    ctx.error(`header ${JSON.stringify(name)} cannot be modified: it is a pseudo-header`);
}

const headerOperationFields = {
  set: map(str()),
  add: map(str()),
  remove: list(str()),
};
/** istio.networking.v1.Headers.HeaderOperations */
export type HeaderOperations = ObjectOf<typeof headerOperationFields>;

function headerOperations(request: boolean) {
  const setName = request ? checkRequestSetName : checkPlainOperationName;
  return obj(headerOperationFields, {
    check: (ops: HeaderOperations, ctx: ValidationContext) => {
      for (const field of ['set', 'add'] as const) {
        for (const [name, value] of Object.entries(ops[field] ?? {})) {
          const c = ctx.at(field, name);
          setName(name, c);
          checkOperationValue(value, c);
        }
      }
      ops.remove?.forEach((name, i) => checkPlainOperationName(name, ctx.at('remove', i)));
    },
  });
}

const headersFields = { request: headerOperations(true), response: headerOperations(false) };
/** istio.networking.v1.Headers */
export type Headers = ObjectOf<typeof headersFields>;
export const headers = obj(headersFields);

// ---------- exportTo ----------

/** Options for exportTo: ServiceEntry allows `~`; a DestinationRule with a workloadSelector stays local. */
export interface ExportToOptions {
  readonly allowNone?: boolean;
  readonly localOnly?: boolean;
}

/**
 * Istio's exportTo rules: each entry `.`, `*` or a namespace name (`~` for ServiceEntry), no
 * duplicates (`.` is the object's own namespace), and `*` or `~` alone.
 * `namespace` is the object's namespace when known.
 */
export function checkExportTo(
  exportTo: readonly string[],
  namespace: string | undefined,
  ctx: ValidationContext,
  opts: ExportToOptions = {},
): void {
  const seen = new Map<string, number>();
  const keyOf = (e: string): string =>
    e === '.' || (namespace !== undefined && e === namespace) ? '.' : e;
  exportTo.forEach((e, i) => {
    const c = ctx.index(i);
    const key = keyOf(e);
    const first = seen.get(key);
    if (first !== undefined) {
      c.error(
        exportTo[first] === e
          ? `duplicate of item [${first}]`
          : `duplicate of item [${first}]: "." is the object's own namespace (${namespace ?? ''})`,
      );
      return;
    }
    if (e === '~') {
      if (!opts.allowNone)
        return c.error('"~" (export to no namespace) is allowed only for ServiceEntry');
    } else if (e !== '.' && e !== '*' && !isIstioDnsLabel(e)) {
      return c.error(
        `must be ".", "*" or a namespace name (a DNS-1123 label), not ${JSON.stringify(e)}`,
      );
    }
    seen.set(key, i);
  });
  if (exportTo.length > 1 && seen.has('*'))
    ctx.error('"*" exports to every namespace, so it cannot be listed with other entries');
  if (exportTo.length > 1 && seen.has('~'))
    ctx.error('"~" exports to no namespace, so it cannot be listed with other entries');
  if (opts.localOnly && seen.size > 0) {
    if (!seen.has('.'))
      ctx.error(
        'a DestinationRule with a workloadSelector can be exported only to its own namespace (".")',
      );
    else if (seen.size > 1)
      ctx.error('a DestinationRule with a workloadSelector can have only one exportTo entry (".")');
  }
}

/** The object's namespace from metadata, when it is a string. */
export function objectNamespace(object: Readonly<Record<string, unknown>>): string | undefined {
  const meta = object.metadata as { namespace?: unknown } | undefined;
  return typeof meta?.namespace === 'string' ? meta.namespace : undefined;
}

/** The spec of an already well-typed object, for kind-level checks. */
export function specOf<T>(object: Readonly<Record<string, unknown>>): T | undefined {
  const s = object.spec;
  return s !== null && typeof s === 'object' ? (s as T) : undefined;
}

// ---------- small shared checks ----------

/** A port number as Istio checks it: 1..65535. */
export function checkPortNumber(n: number, ctx: ValidationContext): void {
  if (n < 1 || n > 65535) ctx.error(`must be between 1 and 65535, not ${n}`);
}
