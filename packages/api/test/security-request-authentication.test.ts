// RequestAuthentication validation: JWT rules, key sets and where tokens are read from.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertValid, runInvalidCases, type InvalidCase } from './invalid-cases.js';

const head =
  'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: ra\nspec:\n';

const RSA_KEY = '{"kty":"RSA","kid":"k1","e":"AQAB","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX"}';

test('request authentication: the documented examples are valid', () => {
  assertValid(
    head +
      `  selector:
    matchLabels: {app: httpbin}
  jwtRules:
  - issuer: "issuer-foo"
    jwksUri: https://example.com/.well-known/jwks.json
    audiences: [bookstore_android.apps.example.com]
    fromHeaders:
    - name: x-jwt-assertion
      prefix: "Bearer "
    fromParams: [my_token]
    fromCookies: [session]
    outputClaimToHeaders:
    - {header: x-jwt-claim-foo, claim: foo}
    forwardOriginalToken: true
    timeout: 5s
  - issuer: "issuer-bar"
    jwks: '{"keys": [${RSA_KEY}]}'
`,
  );
});

test("request authentication: Istio's sample key set is accepted inline", () => {
  const jwks = readFileSync(
    join(samplesDir(), 'security/tools/jwt/samples/jwks.json'),
    'utf8',
  ).trim();
  assertValid(
    head + `  jwtRules:\n  - issuer: testing@secure.istio.io\n    jwks: ${JSON.stringify(jwks)}\n`,
  );
});

function samplesDir(): string {
  return (
    (process.env.TRELLIS_SHARED ?? join(import.meta.dirname, '../../../../../shared')).replace(
      /\/$/,
      '',
    ) + '/istio-samples'
  );
}

export const REQUEST_AUTHENTICATION_CASES: InvalidCase[] = [
  {
    name: 'a rule without an issuer',
    yaml: head + '  jwtRules:\n  - jwksUri: https://example.com/jwks\n',
    errors: ['spec.jwtRules[0].issuer: is required'],
  },
  {
    name: 'jwksUri and jwks together',
    yaml:
      head +
      `  jwtRules:\n  - issuer: a\n    jwksUri: https://example.com/jwks\n    jwks: '{"keys": [${RSA_KEY}]}'\n`,
    errors: [
      'spec.jwtRules[0]: only one of "jwksUri", "jwks" may be set; found "jwksUri" and "jwks"',
    ],
  },
  {
    name: 'a jwksUri that is not an http(s) URL',
    yaml:
      head +
      '  jwtRules:\n  - issuer: a\n    jwksUri: ftp://example.com/jwks\n  - issuer: b\n    jwksUri: example.com/jwks\n',
    errors: [
      'spec.jwtRules[0].jwksUri: must use the http or https scheme, not "ftp"',
      'spec.jwtRules[1].jwksUri: must be an absolute http:// or https:// URL, not "example.com/jwks"',
    ],
  },
  {
    name: 'inline jwks that is not JSON',
    yaml: head + "  jwtRules:\n  - issuer: a\n    jwks: '{keys: []'\n",
    errors: [
      `spec.jwtRules[0].jwks: must be a JSON Web Key Set in JSON: ${jsonError('{keys: []')}`,
    ],
  },
  {
    name: 'inline jwks without a keys list, and with bad keys',
    yaml:
      head +
      `  jwtRules:\n  - issuer: a\n    jwks: '${RSA_KEY}'\n  - issuer: b\n    jwks: '{"keys": [{"kty": "RSA", "e": "AQAB"}, {"kty": "EC", "crv": "P-999", "x": "a", "y": "b"}, {"kid": "x"}]}'\n`,
    errors: [
      'spec.jwtRules[0].jwks: must be a JSON Web Key Set: a JSON object with a "keys" list',
      'spec.jwtRules[1].jwks: keys[0]: a RSA key must have "n"',
      'spec.jwtRules[1].jwks: keys[1]: unknown curve "P-999"; one of P-256, P-384, P-521',
      'spec.jwtRules[1].jwks: keys[2] must have a "kty" (RSA, EC, oct or OKP)',
    ],
  },
  {
    name: 'empty header name, query parameter, cookie and audience',
    yaml:
      head +
      '  jwtRules:\n  - issuer: a\n    audiences: [""]\n    fromHeaders: [{name: ""}]\n    fromParams: [""]\n    fromCookies: [""]\n',
    errors: [
      'spec.jwtRules[0].audiences[0]: must not be empty',
      'spec.jwtRules[0].fromHeaders[0].name: must not be empty',
      'spec.jwtRules[0].fromParams[0]: must not be empty',
      'spec.jwtRules[0].fromCookies[0]: must not be empty',
    ],
  },
  {
    name: 'outputClaimToHeaders with a bad header and no claim',
    yaml: head + '  jwtRules:\n  - issuer: a\n    outputClaimToHeaders:\n    - {header: "x jwt"}\n',
    errors: [
      "spec.jwtRules[0].outputClaimToHeaders[0].header: header name \"x jwt\" may contain only letters, digits, '-' and '_'",
      'spec.jwtRules[0].outputClaimToHeaders[0].claim: is required',
    ],
  },
  {
    name: 'a timeout below a millisecond',
    yaml: head + '  jwtRules:\n  - issuer: a\n    timeout: 100us\n',
    errors: [
      'spec.jwtRules[0].timeout: only durations to millisecond precision are supported, not "100us"',
    ],
  },
  {
    name: 'the dry-run annotation',
    yaml: 'apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\nmetadata:\n  name: ra\n  annotations: {istio.io/dry-run: "true"}\nspec: {}\n',
    errors: [
      'metadata.annotations["istio.io/dry-run"]: is only supported on AuthorizationPolicy, not RequestAuthentication',
    ],
  },
];

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

runInvalidCases('request authentication', REQUEST_AUTHENTICATION_CASES);
