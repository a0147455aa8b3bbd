// RequestAuthentication (security.istio.io): which JWTs a workload accepts, where it finds them and
// what it forwards.
// Semantics: https://istio.io/latest/docs/reference/config/security/request_authentication/ and
// https://istio.io/latest/docs/reference/config/security/jwt/
import { istioKind, SECURITY_VERSIONS } from '../../kinds/istio-kind.js';
import { duration } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import { bool, list, obj, req, str, type ObjectOf } from '../../validation/schema.js';
import { istioTypeWorkloadSelector } from '../common.js';
import { checkDryRunAnnotation } from './dry-run.js';
import { jwksProblems } from './jwks.js';
import {
  policyTargetReference,
  policyTargetReferences,
  SELECTOR_OR_TARGET,
} from './policy-target.js';

const jwtHeaderFields = { name: req(str({ nonEmpty: true })), prefix: str() };
/** istio.security.v1beta1.JWTHeader: a header a JWT is read from, with an optional prefix (`Bearer `). */
export type JwtHeader = ObjectOf<typeof jwtHeaderFields>;

const claimToHeaderFields = {
  header: req(
    str({
      nonEmpty: true,
      check: (h, ctx) => {
        if (!/^[-_A-Za-z0-9]+$/.test(h))
          ctx.error(
            `header name ${JSON.stringify(h)} may contain only letters, digits, '-' and '_'`,
          );
      },
    }),
  ),
  claim: req(str({ nonEmpty: true })),
};
/** istio.security.v1beta1.ClaimToHeader: copies a JWT claim into a request header. */
export type ClaimToHeader = ObjectOf<typeof claimToHeaderFields>;

function checkJwksUri(uri: string, ctx: ValidationContext): void {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return ctx.error(`must be an absolute http:// or https:// URL, not ${JSON.stringify(uri)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    ctx.error(`must use the http or https scheme, not ${JSON.stringify(u.protocol.slice(0, -1))}`);
  else if (u.hostname === '') ctx.error(`must name a host: ${JSON.stringify(uri)}`);
}

const jwtRuleFields = {
  issuer: req(str({ nonEmpty: true })),
  audiences: list(str({ nonEmpty: true })),
  jwksUri: str({ nonEmpty: true, maxLength: 2048, check: checkJwksUri }),
  jwks: str({
    check: (text, ctx) => {
      // An empty key set counts as unset, as in Istio.
      if (text !== '') for (const p of jwksProblems(text)) ctx.error(p);
    },
  }),
  fromHeaders: list(obj(jwtHeaderFields)),
  fromParams: list(str({ nonEmpty: true })),
  fromCookies: list(str({ nonEmpty: true })),
  outputPayloadToHeader: str(),
  outputClaimToHeaders: list(obj(claimToHeaderFields)),
  forwardOriginalToken: bool(),
  timeout: duration(),
};
/** istio.security.v1beta1.JWTRule: one accepted issuer, its keys, and where tokens are found. */
export type JwtRule = ObjectOf<typeof jwtRuleFields>;
export const jwtRule = obj(jwtRuleFields, { oneOf: [{ fields: ['jwksUri', 'jwks'] }] });

const requestAuthenticationFields = {
  selector: istioTypeWorkloadSelector,
  targetRef: policyTargetReference,
  targetRefs: policyTargetReferences,
  jwtRules: list(jwtRule, { maxItems: 4096 }),
};
/** istio.security.v1beta1.RequestAuthentication: the spec of a RequestAuthentication. */
export type RequestAuthenticationSpec = ObjectOf<typeof requestAuthenticationFields>;
export const requestAuthenticationSpec = obj(requestAuthenticationFields, {
  oneOf: [SELECTOR_OR_TARGET],
});

export const REQUEST_AUTHENTICATION = istioKind({
  group: 'security.istio.io',
  kind: 'RequestAuthentication',
  versions: SECURITY_VERSIONS,
  plural: 'requestauthentications',
  shortNames: ['ra'],
  spec: requestAuthenticationSpec,
  check: (object, ctx) => checkDryRunAnnotation(object, ctx, 'RequestAuthentication'),
});
