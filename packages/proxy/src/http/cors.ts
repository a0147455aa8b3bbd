// The CORS filter (Envoy's envoy.filters.http.cors, source/extensions/filters/http/cors): the
// policy is the CorsPolicy in typed_per_filter_config of the route, else of the virtual host
// (each setting from the most specific policy that has it). A request with an Origin that the
// policy's allow_origin_string_match accepts is a CORS request: a preflight (OPTIONS with
// Access-Control-Request-Method) is answered here with 200 and the Access-Control-Allow-*
// headers; any other request goes on and its response gets Access-Control-Allow-Origin,
// -Allow-Credentials and -Expose-Headers. A request whose Origin is not allowed goes on
// untouched, except a preflight when forward_not_matching_preflights is false (answered 200
// without CORS headers). filter_enabled / shadow_enabled are fractions drawn per request.
// Stats: `http.<stat_prefix>.cors.origin_valid` / `origin_invalid`.
import type { HttpFilter } from '@trellis/envoy';
import type { Counter, StatsScope } from '../observability/stats-api.js';
import type { HeaderMap, RequestHeaders } from './headers.js';
import { compileStringMatcher, type StringPredicate } from './string-matcher.js';

export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
const CORS_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';

/** Envoy's response code details of a preflight answer. */
export const CORS_RESPONSE_DETAILS = 'cors_response';

interface Fraction {
  readonly defaultValue?: { readonly numerator?: number; readonly denominator?: string };
}

/** `envoy.extensions.filters.http.cors.v3.CorsPolicy` as proto3 JSON. */
export interface CorsPolicyConfig {
  readonly allowOriginStringMatch?: readonly Parameters<typeof compileStringMatcher>[0][];
  readonly allowMethods?: string;
  readonly allowHeaders?: string;
  readonly exposeHeaders?: string;
  readonly maxAge?: string;
  readonly allowCredentials?: boolean;
  readonly filterEnabled?: Fraction;
  readonly shadowEnabled?: Fraction;
  readonly allowPrivateNetworkAccess?: boolean;
  readonly forwardNotMatchingPreflights?: boolean;
}

interface CompiledPolicy {
  readonly origins: readonly StringPredicate[];
  readonly config: CorsPolicyConfig;
}

/** The filter as configured in a connection manager's chain. */
export class CorsFilterConfig {
  readonly originValid: Counter;
  readonly originInvalid: Counter;
  constructor(scope: StatsScope) {
    const s = scope.scope('cors');
    this.originValid = s.counter('origin_valid');
    this.originInvalid = s.counter('origin_invalid');
  }
}

/** The CORS filter of an HCM's http_filters (undefined when the chain has none). */
export function corsFilterConfig(
  filters: readonly HttpFilter[] | undefined,
  scope: StatsScope,
): CorsFilterConfig | undefined {
  const present = (filters ?? []).some(
    (f) =>
      (f.typedConfig as { '@type'?: string } | undefined)?.['@type'] === CORS_TYPE ||
      (f.name === CORS_FILTER_NAME && f.typedConfig === undefined),
  );
  return present ? new CorsFilterConfig(scope) : undefined;
}

const compiled = new WeakMap<object, CompiledPolicy>();

function compile(p: CorsPolicyConfig): CompiledPolicy {
  let c = compiled.get(p);
  if (!c) {
    c = { origins: (p.allowOriginStringMatch ?? []).map(compileStringMatcher), config: p };
    compiled.set(p, c);
  }
  return c;
}

/** What the filter decided for a request. */
export interface CorsDecision {
  /** Answer now with 200 and these headers (a preflight). */
  readonly reply?: { readonly headers: HeaderMap; readonly details: string };
  /** Headers to set on the response (a CORS request that goes on). */
  readonly responseHeaders?: HeaderMap;
}

const NONE: CorsDecision = {};

function drawn(f: Fraction | undefined, random: () => number, absent: boolean): boolean {
  if (!f) return absent;
  const n = f.defaultValue?.numerator ?? 0;
  const d =
    f.defaultValue?.denominator === 'MILLION'
      ? 1_000_000
      : f.defaultValue?.denominator === 'TEN_THOUSAND'
        ? 10_000
        : 100;
  if (n >= d) return true;
  return random() * d < n;
}

/**
 * Envoy's CorsFilter::decodeHeaders. `perFilter`: the typed_per_filter_config maps of the
 * route, then the virtual host (most specific first).
 */
export function decideCors(
  filter: CorsFilterConfig,
  perFilter: readonly (Readonly<Record<string, unknown>> | undefined)[],
  headers: RequestHeaders,
  random: () => number,
): CorsDecision {
  const policies: CompiledPolicy[] = [];
  for (const m of perFilter) {
    const p = m?.[CORS_FILTER_NAME] as CorsPolicyConfig | undefined;
    if (p) policies.push(compile(p));
  }
  const first = policies[0];
  if (!first) return NONE;
  const pick = <K extends keyof CorsPolicyConfig>(k: K): CorsPolicyConfig[K] | undefined => {
    for (const p of policies) if (p.config[k] !== undefined) return p.config[k];
    return undefined;
  };
  const pickString = (k: 'allowMethods' | 'allowHeaders' | 'exposeHeaders' | 'maxAge'): string => {
    for (const p of policies) {
      const v = p.config[k];
      if (v) return v;
    }
    return '';
  };
  // The most specific policy decides whether the filter is on.
  const enabled = drawn(first.config.filterEnabled, random, true);
  const shadow = drawn(first.config.shadowEnabled, random, false);
  if (!enabled && !shadow) return NONE;
  const origin = headers.get('origin');
  if (!origin) return NONE;
  const origins = policies.find((p) => p.origins.length > 0)?.origins ?? [];
  const allowed = origins.some((o) => o('*') || o(origin));
  (allowed ? filter.originValid : filter.originInvalid).inc();
  if (!enabled) return NONE;
  const acrm = headers.get('access-control-request-method');
  const preflight = headers.method === 'OPTIONS' && acrm !== undefined && acrm !== '';
  if (!allowed) {
    if (preflight && pick('forwardNotMatchingPreflights') === false)
      return { reply: { headers: {}, details: CORS_RESPONSE_DETAILS } };
    return NONE;
  }
  const credentials = pick('allowCredentials') === true;
  if (preflight) {
    const h: HeaderMap = { 'access-control-allow-origin': origin };
    if (credentials) h['access-control-allow-credentials'] = 'true';
    const methods = pickString('allowMethods');
    if (methods) h['access-control-allow-methods'] = methods;
    const allowHeaders = pickString('allowHeaders');
    if (allowHeaders) h['access-control-allow-headers'] = allowHeaders;
    const maxAge = pickString('maxAge');
    if (maxAge) h['access-control-max-age'] = maxAge;
    if (
      pick('allowPrivateNetworkAccess') === true &&
      headers.get('access-control-request-private-network') === 'true'
    )
      h['access-control-allow-private-network'] = 'true';
    return { reply: { headers: h, details: CORS_RESPONSE_DETAILS } };
  }
  const r: HeaderMap = { 'access-control-allow-origin': origin };
  if (credentials) r['access-control-allow-credentials'] = 'true';
  const expose = pickString('exposeHeaders');
  if (expose) r['access-control-expose-headers'] = expose;
  return { responseHeaders: r };
}
