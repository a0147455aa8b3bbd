// VirtualService corsPolicy → the per-route config of Envoy's CORS filter (Istio route.go
// TranslateCORSPolicy): origins as string matchers (the deprecated `allowOrigin` as exact
// matches), lists joined with ",", max age in whole seconds, the filter enabled for 100% of
// requests, and unmatched preflights forwarded unless `unmatchedPreflights: IGNORE`.
import type { CorsPolicy } from '@trellis/api';
import type { StringMatcher } from '@trellis/envoy';
import { wholeSecondsFromIstio } from './http-duration.js';
import { toStringMatcher } from './route-match.js';

/** Type URL of `envoy.extensions.filters.http.cors.v3.CorsPolicy`. */
export const CORS_POLICY_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

/** `envoy.extensions.filters.http.cors.v3.CorsPolicy` as generated. */
export type CorsPolicyConfig = {
  '@type': string;
  allowOriginStringMatch?: StringMatcher[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials?: boolean;
  filterEnabled: { defaultValue: { numerator: number; denominator: 'HUNDRED' } };
  forwardNotMatchingPreflights: boolean;
};

/** Translates a CORS policy. */
export function translateCors(c: CorsPolicy): CorsPolicyConfig {
  const out: CorsPolicyConfig = {
    '@type': CORS_POLICY_TYPE_URL,
    filterEnabled: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } },
    forwardNotMatchingPreflights: c.unmatchedPreflights !== 'IGNORE',
  };
  if (c.allowOrigins !== undefined)
    out.allowOriginStringMatch = c.allowOrigins
      .map((o) => toStringMatcher(o))
      .filter((m): m is StringMatcher => m !== undefined);
  else if (c.allowOrigin !== undefined)
    out.allowOriginStringMatch = c.allowOrigin.map((exact) => ({ exact }));
  if (c.allowCredentials !== undefined) out.allowCredentials = c.allowCredentials;
  const join = (l: readonly string[] | undefined): string | undefined =>
    l && l.length > 0 ? l.join(',') : undefined;
  const headers = join(c.allowHeaders);
  if (headers !== undefined) out.allowHeaders = headers;
  const methods = join(c.allowMethods);
  if (methods !== undefined) out.allowMethods = methods;
  const expose = join(c.exposeHeaders);
  if (expose !== undefined) out.exposeHeaders = expose;
  if (c.maxAge !== undefined) {
    const s = wholeSecondsFromIstio(c.maxAge);
    if (s !== undefined) out.maxAge = String(s);
  }
  return out;
}
