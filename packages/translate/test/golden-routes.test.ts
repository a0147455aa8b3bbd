// Golden tests of VirtualService HTTP features → Envoy routes, one feature per golden file
// (test/golden/route-*.json). Each golden holds the routes of one virtual host, and every
// generated resource is checked with verifyResource. REFRESH_GOLDEN=true rewrites the files.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generate, simulate } from '../src/index.js';
import { assertGolden, assertValidEnvoy, vhostRoutes, world } from './fixtures.js';

/** httpbin v1/v2 on port 8000, with subsets. */
const HTTPBIN = `
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin-v1}
spec:
  selector: {matchLabels: {app: httpbin, version: v1}}
  template:
    metadata: {labels: {app: httpbin, version: v1}}
    spec: {containers: [{name: httpbin, image: httpbin}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin-v2}
spec:
  selector: {matchLabels: {app: httpbin, version: v2}}
  template:
    metadata: {labels: {app: httpbin, version: v2}}
    spec: {containers: [{name: httpbin, image: httpbin}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

const VHOST = 'httpbin.default.svc.cluster.local:8000';

/** Generates for the sleep client with a VirtualService for httpbin and returns its routes. */
function routesWith(vsHttp: string, extra = ''): unknown[] {
  const w = world(`${HTTPBIN}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
${vsHttp}
${extra}`);
  const res = generate(w.snapshot, w.proxy());
  assertValidEnvoy(res);
  return vhostRoutes(res, '8000', VHOST);
}

describe('golden: VirtualService HTTP routes', () => {
  test('default route without a VirtualService', () => {
    const w = world(HTTPBIN);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    const rc = res.routes.find((r) => r.name === '8000');
    assert.ok(rc);
    assertGolden('route-config-default', rc);
  });

  test('match conditions: uri, scheme, method, authority, headers, withoutHeaders, queryParams, ignoreUriCase', () => {
    const routes = routesWith(`
  - name: all-conditions
    match:
    - name: exact
      uri: {exact: /status/200}
      method: {exact: GET}
      scheme: {exact: http}
      authority: {prefix: httpbin}
      headers:
        x-exact: {exact: a}
        x-prefix: {prefix: b}
        x-regex: {regex: "c[0-9]+"}
        x-present: {}
      withoutHeaders:
        x-absent: {regex: "*"}
        x-not-debug: {exact: "true"}
      queryParams:
        q: {exact: "1"}
        p: {regex: "^[a-z]+$"}
    - name: prefix-ignore-case
      uri: {prefix: /Anything}
      ignoreUriCase: true
    - name: regex
      uri: {regex: "/delay/[0-9]+"}
    route:
    - destination: {host: httpbin, subset: v1}
  - route:
    - destination: {host: httpbin, subset: v2}`);
    assertGolden('route-match', routes);
  });

  test('weighted destinations with per-destination headers', () => {
    const routes = routesWith(`
  - route:
    - destination: {host: httpbin, subset: v1}
      weight: 75
      headers:
        request: {set: {x-version: v1}}
        response: {add: {x-served-by: v1}, remove: [x-internal]}
    - destination: {host: httpbin, subset: v2}
      weight: 25
    - destination: {host: httpbin, subset: v2}
      weight: 0`);
    assertGolden('route-weighted', routes);
  });

  test('redirect and direct response', () => {
    const routes = routesWith(`
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.com, redirectCode: 302}
  - match: [{uri: {exact: /https}}]
    redirect: {scheme: https, port: 443}
  - match: [{uri: {exact: /same-port}}]
    redirect: {uri: /moved, derivePort: FROM_REQUEST_PORT}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "I am a teapot"}}
  - match: [{uri: {exact: /bytes}}]
    directResponse: {status: 200, body: {bytes: "aGVsbG8="}}
  - route:
    - destination: {host: httpbin}`);
    assertGolden('route-redirect-direct-response', routes);
  });

  test('rewrites: uri prefix, authority, regex', () => {
    const routes = routesWith(`
  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /, authority: httpbin.internal}
    route:
    - destination: {host: httpbin}
  - match: [{uri: {prefix: /users/}}]
    rewrite:
      uriRegexRewrite: {match: "^/users/([^/]+)/profile$", rewrite: "/profile?user=\\\\1"}
    route:
    - destination: {host: httpbin}`);
    assertGolden('route-rewrite', routes);
  });

  test('header operations on request and response', () => {
    const routes = routesWith(`
  - headers:
      request:
        set: {x-b: "2", x-a: "1", ":authority": "rewritten.example.com"}
        add: {x-added: yes}
        remove: [x-remove-me]
      response:
        set: {x-resp: ok}
        add: {x-resp-add: more}
        remove: [server]
    route:
    - destination: {host: httpbin}`);
    assertGolden('route-headers', routes);
  });

  test('timeout and retries (explicit, disabled, status codes)', () => {
    const routes = routesWith(`
  - match: [{uri: {prefix: /retry}}]
    timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "gateway-error,503,connect-failure"}
    route:
    - destination: {host: httpbin}
  - match: [{uri: {prefix: /codes}}]
    retries: {attempts: 1, retryOn: "502,504", retryIgnorePreviousHosts: false, backoff: 100ms}
    route:
    - destination: {host: httpbin}
  - match: [{uri: {prefix: /no-retry}}]
    timeout: 10s
    retries: {attempts: 0}
    route:
    - destination: {host: httpbin}
  - route:
    - destination: {host: httpbin}`);
    assertGolden('route-timeout-retries', routes);
  });

  test('fault injection: delay and abort with percentages', () => {
    const routes = routesWith(`
  - match: [{uri: {prefix: /delay}}]
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 12.5}}
    route:
    - destination: {host: httpbin}
  - match: [{uri: {prefix: /legacy}}]
    fault:
      delay: {fixedDelay: 100ms, percent: 30}
    route:
    - destination: {host: httpbin}
  - match: [{uri: {prefix: /grpc}}]
    fault:
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}
    route:
    - destination: {host: httpbin}
  - fault:
      abort: {httpStatus: 503, percentage: {value: 50}}
      delay: {fixedDelay: 1s, percentage: {value: 100}}
    route:
    - destination: {host: httpbin}`);
    assertGolden('route-fault', routes);
  });

  test('mirroring: mirror with percentage, mirrors, 0% mirrors nothing', () => {
    const routes = routesWith(`
  - match: [{uri: {prefix: /one}}]
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 25.5}
    route:
    - destination: {host: httpbin, subset: v1}
  - match: [{uri: {prefix: /many}}]
    mirrors:
    - destination: {host: httpbin, subset: v2}
    - destination: {host: httpbin, subset: v1}
      percentage: {value: 10}
    route:
    - destination: {host: httpbin}
  - mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 0}
    route:
    - destination: {host: httpbin}`);
    assertGolden('route-mirror', routes);
  });

  test('CORS policy', () => {
    const routes = routesWith(`
  - corsPolicy:
      allowOrigins: [{exact: "https://example.com"}, {regex: "https://.*\\\\.example\\\\.org"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom, authorization]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
    route:
    - destination: {host: httpbin}`);
    assertGolden('route-cors', routes);
  });

  test('consistent hash from the DestinationRule becomes a hash policy', () => {
    const w = world(`${HTTPBIN.replace(
      'host: httpbin\n  subsets:',
      'host: httpbin\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x-user}\n  subsets:',
    )}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}`);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    assertGolden('route-hash-policy', vhostRoutes(res, '8000', VHOST));
  });

  test('delegate VirtualServices merge under the root matches', () => {
    const w = world(`${HTTPBIN}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-root}
spec:
  hosts: [httpbin]
  http:
  - name: api
    match: [{uri: {prefix: /api}}]
    timeout: 3s
    delegate: {name: httpbin-api}
  - route:
    - destination: {host: httpbin}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-api}
spec:
  http:
  - name: v2
    match: [{uri: {prefix: /api/v2}}]
    route:
    - destination: {host: httpbin, subset: v2}
  - name: conflicting
    match: [{uri: {prefix: /api/x}}, {uri: {prefix: /other}}]
    route:
    - destination: {host: httpbin, subset: v2}
  - name: rest
    route:
    - destination: {host: httpbin, subset: v1}`);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    const routes = vhostRoutes(res, '8000', VHOST);
    assertGolden('route-delegate', routes);
    const r = simulate(res, {
      port: 8000,
      host: 'httpbin:8000',
      path: '/api/v2/x',
      protocol: 'http',
    });
    assert.equal(r.routeName, 'api-v2');
    assert.equal(r.cluster, 'outbound|8000|v2|httpbin.default.svc.cluster.local');
    assert.equal(r.timeout, '3s');
    // A delegate rule with one match outside the root's prefix is dropped entirely (Istio).
    const rest = simulate(res, {
      port: 8000,
      host: 'httpbin:8000',
      path: '/api/x',
      protocol: 'http',
    });
    assert.equal(rest.routeName, 'api-rest');
    assert.equal(rest.cluster, 'outbound|8000|v1|httpbin.default.svc.cluster.local');
    assert.equal(rest.timeout, '3s');
    const other = simulate(res, {
      port: 8000,
      host: 'httpbin:8000',
      path: '/other',
      protocol: 'http',
    });
    assert.equal(other.cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
  });
});
