// VirtualService (networking.istio.io): HTTP, TLS and TCP routing rules for a set of hosts.
// Semantics: https://istio.io/latest/docs/reference/config/networking/virtual-service/
// The rules follow Istio's webhook (pilot/pkg/config/validation: validation.go, virtualservice.go).
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import { duration, isIpAddress, parseDuration } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import {
  bool,
  enumOf,
  int,
  list,
  map,
  num,
  obj,
  req,
  str,
  uint32,
  type ObjectOf,
} from '../../validation/schema.js';
import {
  checkExportTo,
  checkIstioDnsLabel,
  checkIstioRegex,
  checkPortNumber,
  checkWildcardDomain,
  fqdnProblem,
  headers,
  hostIsSubsetOf,
  hostsOverlap,
  ipOrCidr,
  isAuthorityHeader,
  isIstioDnsLabel,
  istioStringMatch,
  labels,
  objectNamespace,
  percent,
  portSelector,
  specOf,
  wildcardHostProblem,
  type StringMatch,
} from '../common.js';

// ---------- small field types ----------

/** A port in a match: 0 means "any", otherwise 1..65535. */
const matchPort = uint32({ check: (p, ctx) => p !== 0 && checkPortNumber(p, ctx) });

/** An int32 weight or count that must not be negative. */
function nonNegative() {
  return int({ check: (n, ctx) => n < 0 && ctx.error(`must not be negative, not ${n}`) });
}

/** The name of the mesh pseudo-gateway: sidecars. */
export const MESH_GATEWAY = 'mesh';

/**
 * A gateway reference: `namespace/name`, a bare `name` (same namespace), `mesh`, or the legacy
 * `name.namespace.svc.cluster.local` form (accepted with a warning).
 */
export function checkGatewayName(name: string, ctx: ValidationContext): void {
  const slash = name.indexOf('/');
  if (slash < 0) {
    if (name.includes('.')) {
      const [gw, ns] = name.split('.');
      ctx.warn(
        `${JSON.stringify(name)} uses the legacy gateway name form; prefer "<namespace>/<name>" (${JSON.stringify(`${ns}/${gw}`)})`,
      );
    }
    const p = fqdnProblem(name, 'gateway name');
    if (p) ctx.error(p);
    return;
  }
  const ns = name.slice(0, slash);
  const gw = name.slice(slash + 1);
  if (ns === '' || gw === '')
    return ctx.error(`gateway ${JSON.stringify(name)}: namespace and name must not be empty`);
  if (!isIstioDnsLabel(ns))
    ctx.error(
      `gateway ${JSON.stringify(name)}: ${JSON.stringify(ns)} is not a valid namespace name`,
    );
  if (!isIstioDnsLabel(gw))
    ctx.error(
      `gateway ${JSON.stringify(name)}: ${JSON.stringify(gw)} is not a valid gateway name (a DNS-1123 label)`,
    );
}

const gatewayNames = list(str({ check: checkGatewayName }));

// ---------- Destination ----------

function checkDestinationHost(host: string, ctx: ValidationContext): void {
  if (host === '*') ctx.error('"*" is not a valid destination host: name one service');
  else checkWildcardDomain(host, ctx);
}

const destinationFields = {
  host: req(str({ check: checkDestinationHost })),
  subset: str({ check: (s, ctx) => checkIstioDnsLabel(s, ctx, 'subset name') }),
  port: portSelector,
};
/** istio.networking.v1.Destination: a service (and optionally subset and port) to send traffic to. */
export type Destination = ObjectOf<typeof destinationFields>;
export const destination = obj(destinationFields);

// ---------- matches ----------

const VALID_HEADER_NAME = /^[-_A-Za-z0-9]+$/;
const JWT_CLAIM_HEADER = /^@request\.auth\.claims(?:(?:\.[^.[\]]+)+|(?:\[[^[\]]+\])+)$/;

/** Whether a match header key routes on a JWT claim (`@request.auth.claims.groups`). */
export function isJwtClaimHeader(name: string): boolean {
  return JWT_CLAIM_HEADER.test(name);
}

function checkMatchHeaderName(name: string, ctx: ValidationContext): void {
  if (name === '') ctx.error('header name must not be empty');
  else if (!VALID_HEADER_NAME.test(name) && !isJwtClaimHeader(name))
    ctx.error(
      `invalid header name ${JSON.stringify(name)}: only letters, digits, '-' and '_' are allowed (or a JWT claim as "@request.auth.claims.<name>")`,
    );
}

const httpMatchRequestFields = {
  name: str(),
  uri: istioStringMatch({ allowEmptyPrefix: true }),
  scheme: istioStringMatch(),
  method: istioStringMatch(),
  authority: istioStringMatch(),
  headers: map(istioStringMatch(), { key: checkMatchHeaderName }),
  port: matchPort,
  sourceLabels: labels,
  gateways: gatewayNames,
  queryParams: map(istioStringMatch()),
  ignoreUriCase: bool(),
  withoutHeaders: map(istioStringMatch({ allowStarRegex: true }), { key: checkMatchHeaderName }),
  sourceNamespace: str({
    check: (ns, ctx) => ns !== '' && checkIstioDnsLabel(ns, ctx, 'namespace'),
  }),
  statPrefix: str(),
};
/** istio.networking.v1.HTTPMatchRequest: conditions on a request, all of which must hold. */
export type HTTPMatchRequest = ObjectOf<typeof httpMatchRequestFields>;
export const httpMatchRequest = obj(httpMatchRequestFields);

const l4MatchFields = {
  destinationSubnets: list(ipOrCidr),
  port: matchPort,
  sourceLabels: labels,
  gateways: gatewayNames,
  sourceNamespace: str(),
  /** Deprecated and ignored by Istio. */
  sourceSubnet: str(),
};
/** istio.networking.v1.L4MatchAttributes: conditions on a TCP connection. */
export type L4MatchAttributes = ObjectOf<typeof l4MatchFields>;
export const l4MatchAttributes = obj(l4MatchFields);

const tlsMatchFields = {
  sniHosts: req(list(str(), { minItems: 1 })),
  destinationSubnets: list(ipOrCidr),
  port: matchPort,
  sourceLabels: labels,
  gateways: gatewayNames,
  sourceNamespace: str(),
};
/** istio.networking.v1.TLSMatchAttributes: conditions on a TLS connection (SNI first of all). */
export type TLSMatchAttributes = ObjectOf<typeof tlsMatchFields>;
export const tlsMatchAttributes = obj(tlsMatchFields);

// ---------- destinations and weights ----------

const httpRouteDestinationFields = {
  destination: req(destination),
  weight: nonNegative(),
  headers,
};
/** istio.networking.v1.HTTPRouteDestination: a weighted destination of an HTTP rule. */
export type HTTPRouteDestination = ObjectOf<typeof httpRouteDestinationFields>;
export const httpRouteDestination = obj(httpRouteDestinationFields);

const routeDestinationFields = { destination: req(destination), weight: nonNegative() };
/** istio.networking.v1.RouteDestination: a weighted destination of a TLS or TCP rule. */
export type RouteDestination = ObjectOf<typeof routeDestinationFields>;
export const routeDestination = obj(routeDestinationFields);

/**
 * Istio's weight rule: weights are relative and must not be negative; with more than one
 * destination their total must be above 0 (a single destination gets all traffic).
 */
function checkWeights(
  dests: readonly { readonly weight?: number }[],
  ctx: ValidationContext,
): void {
  if (dests.length < 2) return;
  const total = dests.reduce((sum, d) => sum + (d.weight ?? 0), 0);
  if (total === 0)
    ctx.error(
      'total weight of route destinations must be above 0 when there is more than one destination',
    );
}

// ---------- redirect, direct response, rewrite ----------

const httpRedirectFields = {
  uri: str(),
  authority: str(),
  port: uint32({ check: (p, ctx) => p !== 0 && checkPortNumber(p, ctx) }),
  derivePort: enumOf(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'] as const),
  scheme: str({
    check: (s, ctx) =>
      s !== '' &&
      s !== 'http' &&
      s !== 'https' &&
      ctx.error(`must be "http" or "https", not ${JSON.stringify(s)}`),
  }),
  redirectCode: uint32({
    check: (c, ctx) =>
      c !== 0 &&
      (c < 300 || c > 399) &&
      ctx.error(`must be a redirect status code (300-399), not ${c}`),
  }),
};
/** istio.networking.v1.HTTPRedirect: answer with a redirect instead of forwarding. */
export type HTTPRedirect = ObjectOf<typeof httpRedirectFields>;
export const httpRedirect = obj(httpRedirectFields, {
  oneOf: [{ fields: ['port', 'derivePort'] }],
  check: (r, ctx) => {
    if (!r.uri && !r.authority && r.port == null && !r.derivePort && !r.scheme)
      ctx.error('must set at least one of uri, authority, scheme, port or derivePort');
  },
});

const MAX_BODY = 1024 * 1024;
const WARN_BODY = 100 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const httpBodyFields = {
  string: str(),
  bytes: str({
    check: (b, ctx) => !BASE64.test(b) && ctx.error('must be base64-encoded bytes'),
  }),
};
/** istio.networking.v1.HTTPBody: a response body as text or base64 bytes. */
export type HTTPBody = ObjectOf<typeof httpBodyFields>;
export const httpBody = obj(httpBodyFields, {
  oneOf: [{ fields: ['string', 'bytes'] }],
  check: (b, ctx) => {
    const size =
      b.string != null
        ? Buffer.byteLength(b.string, 'utf8')
        : b.bytes != null
          ? Buffer.from(b.bytes, 'base64').length
          : 0;
    if (size > MAX_BODY) ctx.error(`must be less than 1MB (${MAX_BODY} bytes), not ${size} bytes`);
    else if (size > WARN_BODY)
      ctx.warn(`a body of ${size} bytes is large; bodies over 100KB slow configuration pushes`);
  },
});

/** Istio's HTTP status rule for aborts and direct responses: 200..600. */
function checkHttpStatus(s: number, ctx: ValidationContext): void {
  // Istio's own check allows 600, which Envoy then refuses (its status codes stop at 599).
  if (s < 200 || s > 599) ctx.error(`must be an HTTP status between 200 and 599, not ${s}`);
}

const httpDirectResponseFields = {
  status: req(uint32({ check: checkHttpStatus })),
  body: httpBody,
};
/** istio.networking.v1.HTTPDirectResponse: answer with a fixed status and body. */
export type HTTPDirectResponse = ObjectOf<typeof httpDirectResponseFields>;
export const httpDirectResponse = obj(httpDirectResponseFields);

const regexRewriteFields = { match: str(), rewrite: str() };
/** istio.networking.v1.RegexRewrite: rewrite the path with an RE2 regex and replacement. */
export type RegexRewrite = ObjectOf<typeof regexRewriteFields>;
export const regexRewrite = obj(regexRewriteFields, {
  check: (r, ctx) => {
    if (!r.match) ctx.field('match').error('is required in uriRegexRewrite');
    else checkIstioRegex(r.match, ctx.field('match'));
    if (!r.rewrite) ctx.field('rewrite').error('is required in uriRegexRewrite');
  },
});

const httpRewriteFields = { uri: str(), authority: str(), uriRegexRewrite: regexRewrite };
/** istio.networking.v1.HTTPRewrite: rewrite the path or authority before forwarding. */
export type HTTPRewrite = ObjectOf<typeof httpRewriteFields>;
export const httpRewrite = obj(httpRewriteFields, {
  check: (r, ctx) => {
    if (r.uri && r.uriRegexRewrite) ctx.error('only one of "uri", "uriRegexRewrite" may be set');
    if (!r.uri && !r.uriRegexRewrite && !r.authority)
      ctx.error('must set at least one of uri, uriRegexRewrite or authority');
  },
});

// ---------- retries ----------

/** Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies that Istio accepts in retryOn. */
export const RETRY_ON_POLICIES = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

/** HTTP status codes with a standard name (Go's http.StatusText), accepted as retryOn entries. */
const KNOWN_STATUS_CODES = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
  305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
  416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
  506, 507, 508, 510, 511,
]);

function checkRetryOn(retryOn: string, ctx: ValidationContext): void {
  for (const policy of retryOn.split(',')) {
    const isStatus = /^[0-9]+$/.test(policy) && KNOWN_STATUS_CODES.has(Number(policy));
    if (!isStatus && !(RETRY_ON_POLICIES as readonly string[]).includes(policy))
      ctx.error(
        `${JSON.stringify(policy)} is not a retry condition; use HTTP status codes or: ${RETRY_ON_POLICIES.join(', ')}`,
      );
  }
}

const httpRetryFields = {
  attempts: nonNegative(),
  perTryTimeout: duration(),
  retryOn: str({ check: (s, ctx) => s !== '' && checkRetryOn(s, ctx) }),
  retryRemoteLocalities: bool(),
  retryIgnorePreviousHosts: bool(),
  backoff: duration(),
};
/** istio.networking.v1.HTTPRetry: how often and when to retry a failed request. */
export type HTTPRetry = ObjectOf<typeof httpRetryFields>;
export const httpRetry = obj(httpRetryFields, {
  check: (r, ctx) => {
    if ((r.attempts ?? 0) === 0) {
      const set = (['perTryTimeout', 'retryOn', 'retryRemoteLocalities'] as const).filter((f) =>
        f === 'retryOn' ? !!r.retryOn : r[f] != null,
      );
      if (set.length > 0)
        ctx.error(
          `attempts is 0 (or unset), which disables retries, so ${set.join(', ')} must not be set`,
        );
    }
  },
});

// ---------- CORS ----------

const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
];

function checkCorsHeaderName(name: string, ctx: ValidationContext): void {
  if (name === '') ctx.error('header name must not be empty');
  else if (name !== '*' && !VALID_HEADER_NAME.test(name))
    ctx.error(
      `invalid header name ${JSON.stringify(name)}: only letters, digits, '-' and '_' are allowed, or "*"`,
    );
}

const corsOrigin = obj(
  { exact: str(), prefix: str(), regex: str() },
  {
    oneOf: [{ fields: ['exact', 'prefix', 'regex'] }],
    check: (m: StringMatch, ctx: ValidationContext) => {
      const value = m.exact ?? m.prefix ?? m.regex;
      if (!value) ctx.error('must set a non-empty exact, prefix or regex');
      else if (m.regex != null) checkIstioRegex(m.regex, ctx.field('regex'));
    },
  },
);

const corsPolicyFields = {
  allowOrigins: list(corsOrigin),
  /** Deprecated: exact origins; use allowOrigins. */
  allowOrigin: list(str()),
  allowMethods: list(
    str({
      check: (m, ctx) =>
        !HTTP_METHODS.includes(m) &&
        ctx.error(`${JSON.stringify(m)} is not an HTTP method; one of: ${HTTP_METHODS.join(', ')}`),
    }),
  ),
  allowHeaders: list(str({ check: checkCorsHeaderName })),
  exposeHeaders: list(str({ check: checkCorsHeaderName })),
  maxAge: str({
    check: (s, ctx) => {
      const before = ctx.errorCount;
      duration().validate(s, ctx);
      if (ctx.errorCount === before && (parseDuration(s) ?? 0) % 1000 !== 0)
        ctx.error(`must be a whole number of seconds, not ${JSON.stringify(s)}`);
    },
  }),
  allowCredentials: bool(),
  unmatchedPreflights: enumOf(['UNSPECIFIED', 'FORWARD', 'IGNORE'] as const),
};
/** istio.networking.v1.CorsPolicy: Cross-Origin Resource Sharing answered by the proxy. */
export type CorsPolicy = ObjectOf<typeof corsPolicyFields>;
export const corsPolicy = obj(corsPolicyFields);

// ---------- fault injection and mirroring ----------

/** Istio's fault percentage: 0, or between 0.0001 and 100. */
const faultPercent = obj({
  value: num({
    check: (v, ctx) => {
      if (v < 0 || v > 100 || (v > 0 && v < 0.0001))
        ctx.error(`must be 0 or between 0.0001 and 100, not ${v}`);
    },
  }),
});

const faultDelayFields = {
  fixedDelay: duration(),
  exponentialDelay: duration(),
  percentage: faultPercent,
  /** Deprecated: an integer percentage; use percentage. */
  percent: int({ min: 0, max: 100 }),
};
/** istio.networking.v1.HTTPFaultInjection.Delay */
export type HTTPFaultInjectionDelay = ObjectOf<typeof faultDelayFields>;
export const httpFaultInjectionDelay = obj(faultDelayFields, {
  oneOf: [{ fields: ['fixedDelay', 'exponentialDelay'] }],
  check: (d, ctx) => {
    if (d.exponentialDelay != null)
      ctx.field('exponentialDelay').error('is not supported yet; use fixedDelay');
  },
});

/** gRPC status names accepted in a fault abort. */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

const faultAbortFields = {
  httpStatus: int({ check: checkHttpStatus }),
  grpcStatus: str({
    check: (s, ctx) =>
      !(GRPC_STATUS_NAMES as readonly string[]).includes(s) &&
      ctx.error(
        `${JSON.stringify(s)} is not a gRPC status; one of: ${GRPC_STATUS_NAMES.join(', ')}`,
      ),
  }),
  http2Error: str({ check: (_s, ctx) => ctx.error('is not supported yet; use httpStatus') }),
  percentage: faultPercent,
};
/** istio.networking.v1.HTTPFaultInjection.Abort */
export type HTTPFaultInjectionAbort = ObjectOf<typeof faultAbortFields>;
export const httpFaultInjectionAbort = obj(faultAbortFields, {
  oneOf: [{ fields: ['httpStatus', 'grpcStatus', 'http2Error'] }],
  check: (a, ctx) => {
    if (a.httpStatus == null && a.grpcStatus == null && a.http2Error == null)
      ctx.warn('abort has no httpStatus or grpcStatus, so it does nothing');
  },
});

const faultFields = { delay: httpFaultInjectionDelay, abort: httpFaultInjectionAbort };
/** istio.networking.v1.HTTPFaultInjection: delays and aborts injected by the client proxy. */
export type HTTPFaultInjection = ObjectOf<typeof faultFields>;
export const httpFaultInjection = obj(faultFields, {
  check: (f, ctx) => {
    if (!f.delay && !f.abort) ctx.error('must set abort, delay or both');
  },
});

const mirrorPolicyFields = { destination: req(destination), percentage: percent };
/** istio.networking.v1.HTTPMirrorPolicy: one mirror destination and its share of traffic. */
export type HTTPMirrorPolicy = ObjectOf<typeof mirrorPolicyFields>;
export const httpMirrorPolicy = obj(mirrorPolicyFields);

// ---------- HTTP route ----------

const delegateFields = { name: str(), namespace: str() };
/** istio.networking.v1.Delegate: the VirtualService that holds this rule's routes. */
export type Delegate = ObjectOf<typeof delegateFields>;
export const delegate = obj(delegateFields);

const httpRouteFields = {
  name: str(),
  match: list(httpMatchRequest),
  route: list(httpRouteDestination, { check: checkWeights }),
  redirect: httpRedirect,
  directResponse: httpDirectResponse,
  delegate,
  rewrite: httpRewrite,
  timeout: duration(),
  retries: httpRetry,
  fault: httpFaultInjection,
  mirror: destination,
  mirrors: list(httpMirrorPolicy),
  /** Deprecated: an integer percentage; use mirrorPercentage. */
  mirrorPercent: uint32(),
  /** Deprecated alias of mirrorPercent kept by Istio's CRD. */
  mirror_percent: uint32(),
  mirrorPercentage: percent,
  corsPolicy,
  headers,
};
/** istio.networking.v1.HTTPRoute: one HTTP rule: matches, then where and how to send traffic. */
export type HTTPRoute = ObjectOf<typeof httpRouteFields>;
export const httpRoute = obj(httpRouteFields, { check: checkHttpRoute });

function checkHttpRoute(r: HTTPRoute, ctx: ValidationContext): void {
  for (const field of ['mirrorPercent', 'mirror_percent'] as const) {
    const v = r[field];
    if (v == null) continue;
    if (v > 100) ctx.field(field).error(`must be at most 100, not ${v}`);
    ctx.field(field).warn('is deprecated; use mirrorPercentage');
  }
  // The authority may be rewritten in one place only.
  let authority = r.rewrite?.authority ?? '';
  let from = 'rewrite.authority';
  for (const op of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(r.headers?.request?.[op] ?? {})) {
      if (!isAuthorityHeader(name)) continue;
      if (authority !== '')
        ctx
          .at('headers', 'request', op, name)
          .error(
            `the authority is already set to ${JSON.stringify(authority)} by ${from}; it can be set only once`,
          );
      else {
        authority = value;
        from = `headers.request.${op}`;
      }
    }
  }
}

// ---------- TLS and TCP routes ----------

const tlsRouteFields = {
  match: req(list(tlsMatchAttributes, { minItems: 1 })),
  route: req(list(routeDestination, { minItems: 1, check: checkWeights })),
};
/** istio.networking.v1.TLSRoute: a rule for TLS traffic that is passed through, routed by SNI. */
export type TLSRoute = ObjectOf<typeof tlsRouteFields>;
export const tlsRoute = obj(tlsRouteFields);

const tcpRouteFields = {
  match: list(l4MatchAttributes),
  route: req(list(routeDestination, { minItems: 1, check: checkWeights })),
};
/** istio.networking.v1.TCPRoute: a rule for opaque TCP traffic. */
export type TCPRoute = ObjectOf<typeof tcpRouteFields>;
export const tcpRoute = obj(tcpRouteFields);

// ---------- VirtualService ----------

const virtualServiceFields = {
  hosts: list(str()),
  gateways: gatewayNames,
  http: list(httpRoute),
  tls: list(tlsRoute),
  tcp: list(tcpRoute),
  exportTo: list(str()),
};
/** istio.networking.v1.VirtualService: the spec of a VirtualService. */
export type VirtualServiceSpec = ObjectOf<typeof virtualServiceFields>;
export const virtualServiceSpec = obj(virtualServiceFields, { check: checkVirtualService });

/** Whether a VirtualService applies to gateways only (gateways set, `mesh` not among them). */
export function appliesToGatewaysOnly(spec: VirtualServiceSpec): boolean {
  return (spec.gateways?.length ?? 0) > 0 && !spec.gateways!.includes(MESH_GATEWAY);
}

/** A delegate VirtualService is one without hosts: a root's `delegate` points at it. */
export function isDelegateVirtualService(spec: VirtualServiceSpec): boolean {
  return (spec.hosts?.length ?? 0) === 0;
}

function checkVirtualService(vs: VirtualServiceSpec, ctx: ValidationContext): void {
  const isDelegate = isDelegateVirtualService(vs);
  if (isDelegate) {
    const why = 'in a delegate VirtualService (one without hosts)';
    if ((vs.gateways?.length ?? 0) > 0) ctx.field('gateways').error(`must not be set ${why}`);
    if ((vs.tls?.length ?? 0) > 0) ctx.field('tls').error(`must not be set ${why}`);
    if ((vs.tcp?.length ?? 0) > 0) ctx.field('tcp').error(`must not be set ${why}`);
  }
  const gatewayOnly = appliesToGatewaysOnly(vs);
  if ((vs.http?.length ?? 0) === 0 && (vs.tcp?.length ?? 0) === 0 && (vs.tls?.length ?? 0) === 0)
    ctx.error('at least one of http, tcp or tls routes is required');

  checkHosts(vs, gatewayOnly, ctx.field('hosts'));

  vs.http?.forEach((r, i) => {
    const c = ctx.at('http', i);
    checkRouteConflicts(r, isDelegate ? 'delegate' : r.delegate ? 'root' : 'independent', c);
    if (!gatewayOnly) {
      r.match?.forEach((m, j) => {
        for (const field of ['headers', 'withoutHeaders'] as const) {
          for (const key of Object.keys(m[field] ?? {})) {
            if (isJwtClaimHeader(key))
              c.at('match', j, field, key).error(
                'routing on JWT claims is supported only for VirtualServices bound to gateways (and not "mesh")',
              );
          }
        }
      });
    }
  });
  vs.tls?.forEach((r, i) =>
    (r.match as TLSRoute['match'] | undefined)?.forEach((m, j) =>
      (m.sniHosts as readonly string[] | undefined)?.forEach((sni, k) =>
        checkSniHost(sni, vs, gatewayOnly, ctx.at('tls', i, 'match', j, 'sniHosts', k)),
      ),
    ),
  );
  warnUnreachable(vs, ctx);
}

function checkHosts(vs: VirtualServiceSpec, gatewayOnly: boolean, ctx: ValidationContext): void {
  const hosts = vs.hosts ?? [];
  let allValid = true;
  const sni = (vs.tls ?? []).some((r) =>
    (r.match as TLSRoute['match'] | undefined)?.some((m) => (m.sniHosts?.length ?? 0) > 0),
  );
  hosts.forEach((h, i) => {
    const c = ctx.index(i);
    const p = gatewayOnly ? gatewayHostProblem(h, sni) : wildcardHostProblem(h);
    if (p) {
      if (!isIpAddress(h)) {
        c.error(p);
        allValid = false;
      }
    } else if (!gatewayOnly && h === '*') {
      c.error(
        '"*" is not allowed for a VirtualService that applies to sidecars (gateways empty or including "mesh")',
      );
      allValid = false;
    }
  });
  if (!allValid) return;
  for (let i = 0; i < hosts.length; i++)
    for (let j = i + 1; j < hosts.length; j++)
      if (hostsOverlap(hosts[i]!, hosts[j]!))
        ctx
          .index(j)
          .error(
            `host ${JSON.stringify(hosts[j])} overlaps hosts[${i}] (${JSON.stringify(hosts[i])})`,
          );
}

/** Gateway-bound hosts also accept Istio's generated `outbound_.<port>_...` SNI names. */
function gatewayHostProblem(host: string, sni: boolean): string | undefined {
  if (sni && host.split('.')[0] === 'outbound_' && host.length <= 255) {
    return /outbound_.[0-8]/.test(host) ? undefined : wildcardHostProblem(host);
  }
  return wildcardHostProblem(host);
}

function checkSniHost(
  sni: string,
  vs: VirtualServiceSpec,
  gatewayOnly: boolean,
  ctx: ValidationContext,
): void {
  const p = gatewayOnly ? gatewayHostProblem(sni, true) : wildcardHostProblem(sni);
  if (p) {
    if (isIpAddress(sni))
      ctx.warn(
        `SNI host ${JSON.stringify(sni)} is an IP address, which the SNI specification forbids and most clients do not send`,
      );
    else ctx.error(p);
    return;
  }
  const hosts = vs.hosts ?? [];
  if (!hosts.some((h) => hostIsSubsetOf(sni, h)))
    ctx.error(
      `SNI host ${JSON.stringify(sni)} is not covered by any of the VirtualService hosts [${hosts.join(', ')}]`,
    );
}

type RouteKind = 'independent' | 'root' | 'delegate';

/** What an HTTP rule does: exactly one of route, redirect, directResponse (or delegate). */
function checkRouteConflicts(r: HTTPRoute, kind: RouteKind, ctx: ValidationContext): void {
  if (kind === 'root') {
    const why = 'in a rule that delegates to another VirtualService';
    if (r.redirect) ctx.field('redirect').error(`must not be set ${why}`);
    if (r.route) ctx.field('route').error(`must not be set ${why}`);
    return;
  }
  if (kind === 'delegate' && r.delegate)
    ctx
      .field('delegate')
      .error(
        'must not be set in a delegate VirtualService (one without hosts): delegation is one level',
      );
  const hasRoute = (r.route?.length ?? 0) > 0;
  const action = r.redirect ? 'redirect' : r.directResponse ? 'directResponse' : undefined;
  if (action) {
    const others = [
      hasRoute && 'route',
      r.fault && 'fault',
      r.rewrite && 'rewrite',
      action === 'redirect' && r.directResponse && 'directResponse',
    ].filter((x): x is string => typeof x === 'string');
    for (const other of others) ctx.error(`cannot have both "${action}" and "${other}"`);
  } else if (!hasRoute) {
    ctx.error('one of "route", "redirect" or "directResponse" is required');
  }
  if (r.mirror && (r.mirrors?.length ?? 0) > 0)
    ctx.error('cannot have both "mirror" and "mirrors"');
}

// ---------- unreachable rules (warnings, as Istio's analyzer gives) ----------

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined && x !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function warnUnreachable(vs: VirtualServiceSpec, ctx: ValidationContext): void {
  const groups: [string, readonly { readonly match?: readonly object[] }[] | undefined][] = [
    ['http', vs.http],
    ['tcp', vs.tcp],
    ['tls', vs.tls],
  ];
  for (const [field, rules] of groups) {
    const seen = new Map<string, number>();
    let catchAll = -1;
    rules?.forEach((rule, i) => {
      const c = ctx.at(field, i);
      const matches = rule.match ?? [];
      if (matches.length === 0) {
        if (catchAll >= 0)
          c.warn(
            `rule is never used: ${field}[${catchAll}] has no match conditions and comes first`,
          );
        catchAll = i;
        return;
      }
      let duplicates = 0;
      matches.forEach((m, j) => {
        const { name: _name, ...rest } = m as { name?: unknown };
        const key = stableJson(rest);
        const first = seen.get(key);
        if (first !== undefined) {
          duplicates++;
          c.at('match', j).warn(`match is never used: ${field}[${first}] has the same match`);
        } else seen.set(key, i);
      });
      if (duplicates === matches.length)
        c.warn('rule is never used: all of its matches are used by earlier rules');
    });
  }
}

export const VIRTUAL_SERVICE = istioKind({
  group: 'networking.istio.io',
  kind: 'VirtualService',
  versions: NETWORKING_VERSIONS,
  plural: 'virtualservices',
  shortNames: ['vs'],
  spec: virtualServiceSpec,
  check: (object, ctx) => {
    const spec = specOf<VirtualServiceSpec>(object);
    if (spec?.exportTo)
      checkExportTo(spec.exportTo, objectNamespace(object), ctx.at('spec', 'exportTo'));
  },
});
