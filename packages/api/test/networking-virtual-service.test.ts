// VirtualService validation: Istio's rules with exact paths and messages, and valid uses of the
// less common fields (delegation, mirrors, CORS, direct responses, TLS and TCP routes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';
import { toReviews, virtualService as vs } from './networking-fixtures.js';

const two = (w1: number, w2: number) => [
  { destination: { host: 'reviews', subset: 'v1' }, weight: w1 },
  { destination: { host: 'reviews', subset: 'v2' }, weight: w2 },
];

export const VIRTUAL_SERVICE_CASES: InvalidCase[] = [
  {
    name: 'unknown field with a hint',
    yaml: vs({ hosts: ['reviews'], http: [{ ...toReviews, timeOut: '5s' }] }),
    errors: ['spec.http[0].timeOut: unknown field; did you mean "timeout"?'],
  },
  {
    name: 'weight of the wrong type',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ route: [{ destination: { host: 'reviews' }, weight: '50' }] }],
    }),
    errors: ['spec.http[0].route[0].weight: must be an integer, not a string ("50")'],
  },
  {
    name: 'no http, tcp or tls routes',
    yaml: vs({ hosts: ['reviews'] }),
    errors: ['spec: at least one of http, tcp or tls routes is required'],
  },
  {
    name: 'weights of several destinations add up to 0',
    yaml: vs({ hosts: ['reviews'], http: [{ route: two(0, 0) }] }),
    errors: [
      'spec.http[0].route: total weight of route destinations must be above 0 when there is more than one destination',
    ],
  },
  {
    name: 'negative weight',
    yaml: vs({ hosts: ['reviews'], http: [{ route: two(-10, 110) }] }),
    errors: ['spec.http[0].route[0].weight: must not be negative, not -10'],
  },
  {
    name: 'route and redirect together',
    yaml: vs({ hosts: ['reviews'], http: [{ ...toReviews, redirect: { uri: '/v2' } }] }),
    errors: ['spec.http[0]: cannot have both "redirect" and "route"'],
  },
  {
    name: 'redirect with rewrite and fault',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          redirect: { authority: 'new.example.com' },
          rewrite: { uri: '/x' },
          fault: { abort: { httpStatus: 500 } },
        },
      ],
    }),
    errors: [
      'spec.http[0]: cannot have both "redirect" and "fault"',
      'spec.http[0]: cannot have both "redirect" and "rewrite"',
    ],
  },
  {
    name: 'direct response with a route and a bad status',
    yaml: vs({ hosts: ['reviews'], http: [{ ...toReviews, directResponse: { status: 700 } }] }),
    errors: [
      'spec.http[0]: cannot have both "directResponse" and "route"',
      'spec.http[0].directResponse.status: must be an HTTP status between 200 and 599, not 700',
    ],
  },
  {
    name: 'status 600, which Istio lets through and Envoy refuses',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        { ...toReviews, fault: { abort: { httpStatus: 600, percentage: { value: 1 } } } },
        { directResponse: { status: 600 } },
      ],
    }),
    errors: [
      'spec.http[0].fault.abort.httpStatus: must be an HTTP status between 200 and 599, not 600',
      'spec.http[1].directResponse.status: must be an HTTP status between 200 and 599, not 600',
    ],
  },
  {
    name: 'a rule that does nothing',
    yaml: vs({ hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/api' } }] }] }),
    errors: ['spec.http[0]: one of "route", "redirect" or "directResponse" is required'],
  },
  {
    name: 'redirect with nothing to change and a bad code and scheme',
    yaml: vs({ hosts: ['reviews'], http: [{ redirect: { redirectCode: 200, scheme: 'ftp' } }] }),
    errors: [
      'spec.http[0].redirect.redirectCode: must be a redirect status code (300-399), not 200',
      'spec.http[0].redirect.scheme: must be "http" or "https", not "ftp"',
    ],
  },
  {
    name: 'redirect port and derivePort together, derivePort not in the enum',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ redirect: { uri: '/x', port: 8080, derivePort: 'FROM_SOMEWHERE' } }],
    }),
    errors: [
      'spec.http[0].redirect.derivePort: must be one of: FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT; not "FROM_SOMEWHERE"',
      'spec.http[0].redirect: only one of "port", "derivePort" may be set; found "port" and "derivePort"',
    ],
  },
  {
    name: 'delegate VirtualService with gateways and a TCP route',
    yaml: vs({
      gateways: ['istio-system/ingress'],
      http: [toReviews],
      tcp: [{ route: [{ destination: { host: 'db' } }] }],
    }),
    errors: [
      'spec.gateways: must not be set in a delegate VirtualService (one without hosts)',
      'spec.tcp: must not be set in a delegate VirtualService (one without hosts)',
    ],
  },
  {
    name: 'delegate VirtualService that delegates again',
    yaml: vs({ http: [{ delegate: { name: 'other', namespace: 'ns2' } }] }),
    errors: [
      'spec.http[0].delegate: must not be set in a delegate VirtualService (one without hosts): delegation is one level',
      'spec.http[0]: one of "route", "redirect" or "directResponse" is required',
    ],
  },
  {
    name: 'root rule with delegate and route',
    yaml: vs({ hosts: ['reviews'], http: [{ ...toReviews, delegate: { name: 'reviews-v2' } }] }),
    errors: [
      'spec.http[0].route: must not be set in a rule that delegates to another VirtualService',
    ],
  },
  {
    name: 'invalid header name in a match',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ ...toReviews, match: [{ headers: { 'end user': { exact: 'jason' } } }] }],
    }),
    errors: [
      'spec.http[0].match[0].headers["end user"]: invalid header name "end user": only letters, digits, \'-\' and \'_\' are allowed (or a JWT claim as "@request.auth.claims.<name>")',
    ],
  },
  {
    name: 'regex RE2 cannot compile, and an empty header prefix',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          match: [{ uri: { regex: '(a)\\1' }, headers: { 'x-user': { prefix: '' } } }],
        },
      ],
    }),
    errors: [
      'spec.http[0].match[0].uri.regex: invalid RE2 regular expression "(a)\\\\1": backreferences (\\1) are not supported by RE2',
      'spec.http[0].match[0].headers.x-user.prefix: must not be empty',
    ],
  },
  {
    name: 'StringMatch with two kinds of match',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ ...toReviews, match: [{ uri: { exact: '/a', prefix: '/b' } }] }],
    }),
    errors: [
      'spec.http[0].match[0].uri: only one of "exact", "prefix", "regex" may be set; found "exact" and "prefix"',
    ],
  },
  {
    name: 'timeouts that are not durations or too short',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ ...toReviews, timeout: '10 s', retries: { attempts: 2, perTryTimeout: '0s' } }],
    }),
    errors: [
      'spec.http[0].timeout: must be a duration such as "1.5s", "100ms" or "1m", not "10 s"',
      'spec.http[0].retries.perTryTimeout: must be at least 1ms, not "0s"',
    ],
  },
  {
    name: 'retryOn with an unknown condition',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ ...toReviews, retries: { attempts: 3, retryOn: '5xx,503,gateway_error' } }],
    }),
    errors: [
      'spec.http[0].retries.retryOn: "gateway_error" is not a retry condition; use HTTP status codes or: 5xx, gateway-error, reset, reset-before-request, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable',
    ],
  },
  {
    name: 'retry policy while attempts is 0',
    yaml: vs({
      hosts: ['reviews'],
      http: [{ ...toReviews, retries: { retryOn: '5xx', perTryTimeout: '2s' } }],
    }),
    errors: [
      'spec.http[0].retries: attempts is 0 (or unset), which disables retries, so perTryTimeout, retryOn must not be set',
    ],
  },
  {
    name: 'fault percentages out of range, and an empty fault',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        { ...toReviews, fault: { abort: { httpStatus: 503, percentage: { value: 150 } } } },
        { ...toReviews, fault: {} },
      ],
    }),
    errors: [
      'spec.http[0].fault.abort.percentage.value: must be 0 or between 0.0001 and 100, not 150',
      'spec.http[1].fault: must set abort, delay or both',
    ],
  },
  {
    name: 'fault abort with an unknown gRPC status and a delay with two kinds',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          fault: {
            abort: { grpcStatus: 'NOTFOUND' },
            delay: { fixedDelay: '1s', exponentialDelay: '2s' },
          },
        },
      ],
    }),
    errors: [
      'spec.http[0].fault.abort.grpcStatus: "NOTFOUND" is not a gRPC status; one of: OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED',
      'spec.http[0].fault.delay.exponentialDelay: is not supported yet; use fixedDelay',
      'spec.http[0].fault.delay: only one of "fixedDelay", "exponentialDelay" may be set; found "fixedDelay" and "exponentialDelay"',
    ],
  },
  {
    name: 'mirror to "*" and mirror with mirrors',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          mirror: { host: '*' },
          mirrors: [{ destination: { host: 'shadow' }, percentage: { value: 101 } }],
        },
      ],
    }),
    errors: [
      'spec.http[0].mirror.host: "*" is not a valid destination host: name one service',
      'spec.http[0].mirrors[0].percentage.value: must be between 0 and 100, not 101',
      'spec.http[0]: cannot have both "mirror" and "mirrors"',
    ],
  },
  {
    name: 'CORS with an unknown method, a bad header and a fractional max age',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          corsPolicy: {
            allowOrigins: [{ exact: '' }],
            allowMethods: ['GET', 'FETCH'],
            allowHeaders: ['x:y'],
            maxAge: '1500ms',
          },
        },
      ],
    }),
    errors: [
      'spec.http[0].corsPolicy.allowOrigins[0]: must set a non-empty exact, prefix or regex',
      'spec.http[0].corsPolicy.allowMethods[1]: "FETCH" is not an HTTP method; one of: GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE',
      'spec.http[0].corsPolicy.allowHeaders[0]: invalid header name "x:y": only letters, digits, \'-\' and \'_\' are allowed, or "*"',
      'spec.http[0].corsPolicy.maxAge: must be a whole number of seconds, not "1500ms"',
    ],
  },
  {
    name: 'exportTo with a bad namespace, a duplicate and "*" among others',
    yaml: vs({ hosts: ['reviews'], http: [toReviews], exportTo: ['.', 'Foo_Bar', 'default', '*'] }),
    errors: [
      'spec.exportTo[1]: must be ".", "*" or a namespace name (a DNS-1123 label), not "Foo_Bar"',
      'spec.exportTo[2]: duplicate of item [0]: "." is the object\'s own namespace (default)',
      'spec.exportTo: "*" exports to every namespace, so it cannot be listed with other entries',
    ],
  },
  {
    name: 'gateway names that are not valid',
    yaml: vs({
      hosts: ['reviews.example.com'],
      gateways: ['Istio_System/ingress', 'gw..bad'],
      http: [toReviews],
    }),
    errors: [
      'spec.gateways[0]: gateway "Istio_System/ingress": "Istio_System" is not a valid namespace name',
      'spec.gateways[1]: gateway name "gw..bad": "" is not a valid DNS label',
    ],
  },
  {
    name: 'host "*" for sidecars, and overlapping hosts',
    yaml:
      vs({ hosts: ['*'], http: [toReviews] }) +
      '\n---\n' +
      vs({ hosts: ['*.example.com', 'api.example.com'], http: [toReviews] }),
    errors: [
      'spec.hosts[0]: "*" is not allowed for a VirtualService that applies to sidecars (gateways empty or including "mesh")',
      'spec.hosts[1]: host "api.example.com" overlaps hosts[0] ("*.example.com")',
    ],
  },
  {
    name: 'destination with a bad subset, port and host',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'reviews_v1', subset: 'v1_beta', port: { number: 70000 } } },
          ],
        },
      ],
    }),
    errors: [
      'spec.http[0].route[0].destination.host: host "reviews_v1": "reviews_v1" is not a valid DNS label or wildcard (a wildcard is allowed only as, or at the start of, the first label)',
      'spec.http[0].route[0].destination.subset: subset name "v1_beta" must be a DNS-1123 label: at most 63 letters, digits and \'-\', starting and ending with a letter or digit',
      'spec.http[0].route[0].destination.port.number: must be between 1 and 65535, not 70000',
    ],
  },
  {
    name: 'TLS route without a route',
    yaml: vs({
      hosts: ['*.example.com'],
      gateways: ['mesh'],
      tls: [{ match: [{ sniHosts: ['login.example.com'], port: 443 }] }],
    }),
    errors: ['spec.tls[0].route: is required'],
  },
  {
    name: 'TLS SNI host outside the hosts',
    yaml: vs({
      hosts: ['*.example.com'],
      tls: [
        {
          match: [{ sniHosts: ['login.example.org'] }],
          route: [{ destination: { host: 'login' } }],
        },
      ],
    }),
    errors: [
      'spec.tls[0].match[0].sniHosts[0]: SNI host "login.example.org" is not covered by any of the VirtualService hosts [*.example.com]',
    ],
  },
  {
    name: 'rewrite with uri and uriRegexRewrite, and a bad regex',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          rewrite: { uri: '/v2', uriRegexRewrite: { match: '^/(?=x)', rewrite: '/' } },
        },
      ],
    }),
    errors: [
      'spec.http[0].rewrite.uriRegexRewrite.match: invalid RE2 regular expression "^/(?=x)": lookahead and lookbehind assertions are not supported by RE2',
      'spec.http[0].rewrite: only one of "uri", "uriRegexRewrite" may be set',
    ],
  },
  {
    name: 'header operations on pseudo-headers and Host, and the authority set twice',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          rewrite: { authority: 'a.example.com' },
          headers: {
            request: { set: { ':path': '/x', host: 'b.example.com' }, remove: ['Host'] },
            response: { add: { 'x-pct': '100%' } },
          },
        },
      ],
    }),
    errors: [
      'spec.http[0].headers.request.set[":path"]: header ":path" cannot be modified: it is a pseudo-header',
      'spec.http[0].headers.request.remove[0]: the Host header cannot be modified here',
      'spec.http[0].headers.response.add.x-pct: invalid header value "100%": a lone "%" must be written "%%"',
      'spec.http[0].headers.request.set.host: the authority is already set to "a.example.com" by rewrite.authority; it can be set only once',
    ],
  },
  {
    name: 'JWT claim routing in a VirtualService for sidecars',
    yaml: vs({
      hosts: ['reviews'],
      http: [
        {
          ...toReviews,
          match: [{ headers: { '@request.auth.claims.group': { exact: 'admin' } } }],
        },
      ],
    }),
    errors: [
      'spec.http[0].match[0].headers["@request.auth.claims.group"]: routing on JWT claims is supported only for VirtualServices bound to gateways (and not "mesh")',
    ],
  },
  {
    name: 'TCP route without a destination and a match with a bad subnet',
    yaml: vs({
      hosts: ['db.example.com'],
      tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/33'], port: 70000 }], route: [] }],
    }),
    errors: [
      'spec.tcp[0].match[0].destinationSubnets[0]: must be an IP address or CIDR range such as "10.0.0.0/8", not "10.0.0.0/33"',
      'spec.tcp[0].match[0].port: must be between 1 and 65535, not 70000',
      'spec.tcp[0].route: must have at least one item',
    ],
  },
  {
    name: 'TLS route without match conditions',
    yaml: vs({
      hosts: ['login.example.com'],
      tls: [{ route: [{ destination: { host: 'login' } }] }],
    }),
    errors: ['spec.tls[0].match: is required'],
  },
];

runInvalidCases('virtual service', VIRTUAL_SERVICE_CASES);

test('virtual service: at least 14 invalid cases', () => {
  assert.ok(VIRTUAL_SERVICE_CASES.length >= 14);
});

test('virtual service: a root and its delegate are valid', () => {
  assertValid(
    vs({
      hosts: ['bookinfo.example.com'],
      gateways: ['istio-system/ingress'],
      http: [
        {
          match: [{ uri: { prefix: '/reviews' } }],
          delegate: { name: 'reviews', namespace: 'ns1' },
        },
        { directResponse: { status: 404, body: { string: 'not here' } } },
      ],
    }),
  );
  assertValid(
    vs({
      http: [
        {
          match: [{ uri: { prefix: '/reviews/v2' } }],
          route: [{ destination: { host: 'reviews', subset: 'v2' } }],
        },
        { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      ],
    }),
  );
});

test('virtual service: mirrors, CORS, retries, fault delay and header operations are valid', () => {
  assertValid(
    vs({
      hosts: ['reviews', 'reviews.prod.svc.cluster.local'],
      exportTo: ['.', 'istio-system'],
      http: [
        {
          name: 'main',
          match: [
            {
              name: 'v2-users',
              uri: { prefix: '' },
              method: { exact: 'GET' },
              headers: { 'end-user': { regex: '(?i)jason|.*@example\\.com' } },
              withoutHeaders: { 'x-canary': { regex: '*' } },
              queryParams: { debug: { exact: '1' } },
              ignoreUriCase: true,
              port: 9080,
              sourceLabels: { app: 'productpage' },
              sourceNamespace: 'bookinfo',
              statPrefix: 'v2',
            },
          ],
          route: [
            {
              destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } },
              weight: 75,
              headers: { request: { set: { 'x-route': 'v2' } }, response: { remove: ['x-debug'] } },
            },
            { destination: { host: 'reviews', subset: 'v3' }, weight: 25 },
          ],
          mirrors: [
            { destination: { host: 'reviews-shadow' }, percentage: { value: 10 } },
            { destination: { host: 'reviews-audit', port: { number: 9080 } } },
          ],
          corsPolicy: {
            allowOrigins: [
              { exact: 'https://example.com' },
              { regex: 'https://.*\\.example\\.com' },
            ],
            allowMethods: ['GET', 'POST'],
            allowHeaders: ['*'],
            exposeHeaders: ['x-request-id'],
            maxAge: '24h',
            allowCredentials: true,
            unmatchedPreflights: 'IGNORE',
          },
          retries: {
            attempts: 3,
            perTryTimeout: '2s',
            retryOn: 'gateway-error,connect-failure,refused-stream,503',
            retryRemoteLocalities: true,
            retryIgnorePreviousHosts: true,
            backoff: '25ms',
          },
          fault: { delay: { fixedDelay: '7s', percentage: { value: 0.5 } } },
          timeout: '10s',
          headers: {
            request: {
              add: { 'x-trace': '%REQ(x-request-id)%' },
              set: { ':authority': 'reviews' },
            },
            response: { set: { 'cache-control': 'no-store' } },
          },
          rewrite: {
            uriRegexRewrite: { match: '^/service/([^/]+)(/.*)$', rewrite: '/v2/\\2/\\1' },
          },
        },
      ],
    }),
  );
});

test('virtual service: a redirect, TLS and TCP routes for a gateway are valid', () => {
  assertValid(
    vs({
      hosts: ['*.example.com'],
      gateways: ['istio-system/ingress', 'mesh'],
      http: [
        { redirect: { scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT', redirectCode: 308 } },
      ],
      tls: [
        {
          match: [{ sniHosts: ['login.example.com', '*.api.example.com'], port: 443 }],
          route: [
            { destination: { host: 'login', port: { number: 443 } }, weight: 90 },
            { destination: { host: 'login-canary', port: { number: 443 } }, weight: 10 },
          ],
        },
      ],
      tcp: [
        {
          match: [
            { port: 27017, destinationSubnets: ['10.0.0.0/8'], sourceLabels: { app: 'api' } },
          ],
          route: [
            { destination: { host: 'mongo.backend.svc.cluster.local', port: { number: 5555 } } },
          ],
        },
      ],
    }),
  );
});

test('virtual service: null fields count as absent', () => {
  assertValid(
    vs({
      hosts: ['reviews'],
      gateways: null,
      http: [
        {
          ...toReviews,
          redirect: null,
          mirrors: null,
          fault: null,
          retries: { attempts: 2, retryOn: null },
        },
      ],
    }),
  );
});

test('virtual service: an unreachable rule is a warning, not an error', () => {
  const { errors, warnings } = check(vs({ hosts: ['reviews'], http: [toReviews, toReviews] }));
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.http[1]: rule is never used: http[0] has no match conditions and comes first',
  ]);
});

test('virtual service: a legacy gateway name and mirrorPercent are warnings', () => {
  const { errors, warnings } = check(
    vs({
      hosts: ['reviews.example.com'],
      gateways: ['ingress.istio-system.svc.cluster.local'],
      http: [{ ...toReviews, mirror: { host: 'shadow' }, mirrorPercent: 5 }],
    }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.gateways[0]: "ingress.istio-system.svc.cluster.local" uses the legacy gateway name form; prefer "<namespace>/<name>" ("istio-system/ingress")',
    'spec.http[0].mirrorPercent: is deprecated; use mirrorPercentage',
  ]);
});
