// Route matching on compiled RouteConfigurations (no sockets): virtual host selection, every
// path specifier, headers, query parameters, runtime_fraction, weighted clusters, header
// mutation semantics, redirects and path normalization.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HeaderMatcher, Route, RouteConfiguration, RouteMatch } from '@trellis/envoy';
import { HeaderMutation, mapTarget } from '../src/http/header-mutation.js';
import { RequestHeaders, type HeaderMap } from '../src/http/headers.js';
import { normalizePath, redirectLocation, rewrittenPath } from '../src/http/path.js';
import {
  chooseWeightedCluster,
  compileRouteConfig,
  findRoute,
  parseQuery,
  type CompiledRoute,
  type CompiledRouteAction,
  type RouteRequest,
} from '../src/http/route-match.js';
import { parseGrpcTimeout } from '../src/http/router.js';
import { newStreamInfo } from '../src/stream-info.js';

function req(
  path: string,
  authority = 'host',
  headers: HeaderMap = {},
  method = 'GET',
): RouteRequest {
  return {
    headers: new RequestHeaders({ ...headers }, method, path, authority, 'http'),
    isConnect: method === 'CONNECT',
    isGrpc: false,
  };
}

function one(match: RouteMatch): (r: RouteRequest) => boolean {
  const rc = compileRouteConfig({
    virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match, route: { cluster: 'c' } }] }],
  });
  return (r) => findRoute(rc, r).route !== undefined;
}

test('virtual hosts: exact, then longest suffix wildcard, then longest prefix wildcard, then *', () => {
  const rc = compileRouteConfig({
    virtualHosts: [
      { name: 'exact', domains: ['a.example.com', 'reviews:9080'], routes: [] },
      { name: 'suffix', domains: ['*.example.com'], routes: [] },
      { name: 'longer-suffix', domains: ['*.b.example.com'], routes: [] },
      { name: 'dash', domains: ['*-bar.foo.com'], routes: [] },
      { name: 'prefix', domains: ['api.*'], routes: [] },
      { name: 'default', domains: ['*'], routes: [] },
    ],
  });
  const vh = (a: string): string | undefined => rc.findVirtualHost(a)?.name;
  assert.equal(vh('a.example.com'), 'exact');
  assert.equal(vh('A.Example.COM'), 'exact', 'case-insensitive');
  assert.equal(vh('reviews:9080'), 'exact');
  assert.equal(vh('x.example.com'), 'suffix');
  assert.equal(vh('x.b.example.com'), 'longer-suffix');
  assert.equal(vh('baz-bar.foo.com'), 'dash');
  assert.equal(vh('-bar.foo.com'), 'default', 'a wildcard never matches the empty string');
  assert.equal(vh('api.internal'), 'prefix');
  assert.equal(vh('a.example.com:80'), 'default', 'the port is part of the host unless ignored');
  assert.equal(vh('reviews'), 'default');
  const ignore = compileRouteConfig({
    ignorePortInHostMatching: true,
    virtualHosts: [{ name: 'exact', domains: ['a.example.com'], routes: [] }],
  });
  assert.equal(ignore.findVirtualHost('a.example.com:8080')?.name, 'exact');
  assert.equal(ignore.findVirtualHost('[::1]:80'), undefined);
  const noDefault = compileRouteConfig({
    virtualHosts: [{ name: 'only', domains: ['x'], routes: [] }],
  });
  assert.equal(noDefault.findVirtualHost('y'), undefined);
});

test('path specifiers: prefix, path, safe_regex, path_separated_prefix, case_sensitive', () => {
  const prefix = one({ prefix: '/api' });
  assert.ok(prefix(req('/api')));
  assert.ok(prefix(req('/apix')));
  assert.ok(!prefix(req('/API')));
  const ci = one({ prefix: '/API', caseSensitive: false });
  assert.ok(ci(req('/api/v1')));
  const path = one({ path: '/status/200' });
  assert.ok(path(req('/status/200')));
  assert.ok(path(req('/status/200?x=1')), 'exact path ignores the query');
  assert.ok(!path(req('/status/2000')));
  const regex = one({ safeRegex: { regex: '/delay/[0-9]+' } });
  assert.ok(regex(req('/delay/12')));
  assert.ok(regex(req('/delay/12?q')), 'regex matches the path without query');
  assert.ok(!regex(req('/delay/12/x')), 'regex must match the whole path');
  assert.ok(!regex(req('/x/delay/12')));
  const sep = one({ pathSeparatedPrefix: '/api' });
  assert.ok(sep(req('/api')));
  assert.ok(sep(req('/api/x')));
  assert.ok(sep(req('/api?x')));
  assert.ok(!sep(req('/apix')));
  const connect = one({ connectMatcher: {} });
  assert.ok(connect(req('', 'h:1', {}, 'CONNECT')));
  assert.ok(!connect(req('/')));
  assert.ok(!prefix(req('', 'h:1', {}, 'CONNECT')), 'only connect_matcher routes take CONNECT');
});

test('header matchers: string_match kinds, present, invert, treat_missing_header_as_empty, range, pseudo-headers', () => {
  const m = (h: HeaderMatcher): ((headers: HeaderMap, method?: string) => boolean) => {
    const f = one({ prefix: '/', headers: [h] });
    return (headers, method = 'GET') => f(req('/', 'httpbin.default', headers, method));
  };
  assert.ok(m({ name: 'x', stringMatch: { exact: 'a' } })({ x: 'a' }));
  assert.ok(!m({ name: 'x', stringMatch: { exact: 'a' } })({ x: 'A' }));
  assert.ok(m({ name: 'x', stringMatch: { exact: 'a', ignoreCase: true } })({ x: 'A' }));
  assert.ok(m({ name: 'x', stringMatch: { prefix: 'b' } })({ x: 'bcd' }));
  assert.ok(m({ name: 'x', stringMatch: { suffix: 'd' } })({ x: 'bcd' }));
  assert.ok(m({ name: 'x', stringMatch: { contains: 'c' } })({ x: 'bcd' }));
  assert.ok(m({ name: 'x', stringMatch: { safeRegex: { regex: 'c[0-9]+' } } })({ x: 'c12' }));
  assert.ok(!m({ name: 'x', stringMatch: { safeRegex: { regex: 'c[0-9]+' } } })({ x: 'xc12' }));
  assert.ok(
    m({ name: 'x', stringMatch: { exact: 'a,b' } })({ x: ['a', 'b'] }),
    'repeated values are joined with ,',
  );
  assert.ok(m({ name: 'x', presentMatch: true })({ x: '' }));
  assert.ok(!m({ name: 'x', presentMatch: true })({}));
  assert.ok(m({ name: 'x', presentMatch: false })({}), 'present_match false: header absent');
  assert.ok(m({ name: 'x', presentMatch: true, invertMatch: true })({}));
  assert.ok(
    !m({ name: 'x', stringMatch: { exact: 'a' }, invertMatch: true })({}),
    'absent header never matches, even inverted',
  );
  assert.ok(
    m({
      name: 'x',
      stringMatch: { exact: 'true' },
      invertMatch: true,
      treatMissingHeaderAsEmpty: true,
    })({}),
  );
  assert.ok(
    !m({
      name: 'x',
      stringMatch: { exact: 'true' },
      invertMatch: true,
      treatMissingHeaderAsEmpty: true,
    })({ x: 'true' }),
  );
  assert.ok(m({ name: 'x', rangeMatch: { start: '0', end: '10' } })({ x: '9' }));
  assert.ok(!m({ name: 'x', rangeMatch: { start: '0', end: '10' } })({ x: '10' }));
  assert.ok(!m({ name: 'x', rangeMatch: { start: '0', end: '10' } })({ x: 'a' }));
  assert.ok(m({ name: ':method', stringMatch: { exact: 'POST' } })({}, 'POST'));
  assert.ok(m({ name: ':authority', stringMatch: { prefix: 'httpbin' } })({}));
  assert.ok(m({ name: 'host', stringMatch: { prefix: 'httpbin' } })({}));
  assert.ok(m({ name: ':scheme', stringMatch: { exact: 'http' } })({}));
});

test('query parameters, grpc and runtime_fraction', () => {
  const q = one({
    prefix: '/',
    queryParameters: [
      { name: 'p', stringMatch: { safeRegex: { regex: '^[a-z]+$' } } },
      { name: 'q', stringMatch: { exact: '1' } },
    ],
  });
  assert.ok(q(req('/x?p=abc&q=1')));
  assert.ok(!q(req('/x?p=ab1&q=1')));
  assert.ok(!q(req('/x?p=abc')));
  const present = one({ prefix: '/', queryParameters: [{ name: 'debug', presentMatch: true }] });
  assert.ok(present(req('/?debug')));
  assert.ok(!present(req('/?nodebug=1')));
  assert.deepEqual(
    [...parseQuery('a=1&a=2&b=%41+c&e')],
    [
      ['a', '1'],
      ['b', 'A+c'],
      ['e', ''],
    ],
  );
  const grpc = compileRouteConfig({
    virtualHosts: [
      { domains: ['*'], routes: [{ match: { prefix: '/', grpc: {} }, route: { cluster: 'c' } }] },
    ],
  });
  assert.ok(findRoute(grpc, { ...req('/'), isGrpc: true }).route);
  assert.ok(!findRoute(grpc, req('/')).route);
  const frac = compileRouteConfig({
    virtualHosts: [
      {
        domains: ['*'],
        routes: [
          {
            match: {
              prefix: '/',
              runtimeFraction: { defaultValue: { numerator: 25, denominator: 'HUNDRED' } },
            },
            route: { cluster: 'c' },
          },
        ],
      },
    ],
  });
  assert.ok(findRoute(frac, { ...req('/'), random: () => 0.2 }).route);
  assert.ok(!findRoute(frac, { ...req('/'), random: () => 0.3 }).route);
  const full = one({
    prefix: '/',
    runtimeFraction: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } },
  });
  assert.ok(full(req('/')));
});

test('routes are tried in order; the first match wins', () => {
  const rc: RouteConfiguration = {
    virtualHosts: [
      {
        domains: ['*'],
        routes: [
          {
            name: 'a',
            match: { prefix: '/a', headers: [{ name: 'x-v', stringMatch: { exact: '2' } }] },
            route: { cluster: 'v2' },
          },
          { name: 'b', match: { prefix: '/a' }, route: { cluster: 'v1' } },
          { name: 'c', match: { prefix: '/' }, directResponse: { status: 418 } },
        ],
      },
    ],
  };
  const c = compileRouteConfig(rc);
  assert.equal(findRoute(c, req('/a', 'h', { 'x-v': '2' })).route?.name, 'a');
  assert.equal(findRoute(c, req('/a')).route?.name, 'b');
  assert.equal(findRoute(c, req('/z')).route?.name, 'c');
  assert.equal(compileRouteConfig(rc), c, 'compiled once per configuration object');
});

test('weighted clusters pick by cumulative weight (and by header_name when given)', () => {
  const rc = compileRouteConfig({
    virtualHosts: [
      {
        domains: ['*'],
        routes: [
          {
            match: { prefix: '/' },
            route: {
              weightedClusters: {
                clusters: [
                  { name: 'v1', weight: 75 },
                  { name: 'v2', weight: 25 },
                ],
                headerName: 'x-pick',
              },
            },
          },
        ],
      },
    ],
  });
  const r = findRoute(rc, req('/')).route as CompiledRoute;
  const action = r.action as CompiledRouteAction;
  const pick = (rand: number, headers: HeaderMap = {}): string | undefined =>
    chooseWeightedCluster(action, { ...req('/', 'h', headers), random: () => rand })?.name;
  assert.equal(pick(0), 'v1');
  assert.equal(pick(0.74), 'v1');
  assert.equal(pick(0.75), 'v2');
  assert.equal(pick(0.99), 'v2');
  assert.equal(pick(0.99, { 'x-pick': '10' }), 'v1');
  assert.equal(pick(0, { 'x-pick': '80' }), 'v2');
  assert.equal(pick(0, { 'x-pick': '170' }), 'v1', 'header value modulo the total weight');
  let v1 = 0;
  for (let i = 0; i < 1000; i++) if (pick(i / 1000) === 'v1') v1++;
  assert.equal(v1, 750);
});

test('header mutations: removals first, then append actions in order', () => {
  const m = HeaderMutation.compile(
    [
      { header: { key: 'X-A', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-b', value: '2' } },
      { header: { key: 'x-c', value: '3' }, appendAction: 'ADD_IF_ABSENT' },
      { header: { key: 'x-d', value: '4' }, appendAction: 'OVERWRITE_IF_EXISTS' },
      { header: { key: 'x-e', value: '5' }, appendAction: 'OVERWRITE_IF_EXISTS' },
      { header: { key: 'x-f', value: '6' }, append: false },
      { header: { key: 'x-empty', value: '' } },
      { header: { key: 'x-kept-empty', value: '' }, keepEmptyValue: true },
      { header: { key: 'x-pct', value: '100%%' } },
    ],
    ['x-remove', 'X-A'],
  );
  const h: HeaderMap = {
    'x-a': 'old',
    'x-b': 'old',
    'x-c': 'old',
    'x-e': 'old',
    'x-f': 'old',
    'x-remove': 'gone',
  };
  m.apply(mapTarget(h));
  assert.deepEqual(h, {
    'x-a': '1',
    'x-b': ['old', '2'],
    'x-c': 'old',
    'x-e': '5',
    'x-f': '6',
    'x-kept-empty': '',
    'x-pct': '100%',
  });
  const rh = new RequestHeaders({}, 'GET', '/', 'a', 'http');
  HeaderMutation.compile(
    [{ header: { key: ':authority', value: 'b' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    [],
  ).apply(rh);
  assert.equal(rh.authority, 'b');
});

test('header mutations: values with command operators are formatted per stream; empty ones add nothing', () => {
  const m = HeaderMutation.compile(
    [
      { header: { key: 'x-client', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' } },
      { header: { key: 'x-both', value: '%REQ(x-in)%/%REQ(:path)% (100%%)' } },
      { header: { key: 'x-missing', value: '%REQ(x-absent)%' } },
      { header: { key: 'x-kept', value: '%REQ(x-absent)%' }, keepEmptyValue: true },
      {
        header: { key: 'x-over', value: '%PROTOCOL%' },
        appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
      },
      { header: { key: 'x-pod', value: '%UPSTREAM_METADATA(["istio", "workload"])%' } },
      { header: { key: 'x-pod2', value: '%UPSTREAM_METADATA(istio:workload)%' } },
      { header: { key: 'x-struct', value: '%UPSTREAM_METADATA(["istio", "nested"])%' } },
      { header: { key: 'x-code', value: 'code=%RESP(x-status)%' } },
    ],
    [],
  );
  assert.equal(m.dynamic, true);
  assert.equal(HeaderMutation.compile([{ header: { key: 'a', value: '1%%' } }], []).dynamic, false);
  const info = newStreamInfo({
    protocol: 'HTTP/1.1',
    listenerName: 'l',
    direction: 'outbound',
    downstreamRemoteAddress: '10.1.2.3:4567',
    downstreamLocalAddress: '10.0.0.1:80',
  });
  const req = new RequestHeaders({ 'x-in': 'v' }, 'GET', '/p?q=1', 'a', 'http');
  const h: HeaderMap = { 'x-over': 'old' };
  let built = 0;
  m.apply(mapTarget(h), () => {
    built++;
    return {
      info,
      requestHeader: (n) => req.get(n),
      responseHeader: (n) => (n === 'x-status' ? '201' : undefined),
      upstreamHostMetadata: { istio: { workload: 'reviews-v1;default', nested: { a: 1 } } },
    };
  });
  assert.equal(built, 1, 'one context per application, built only when a value needs it');
  assert.deepEqual(h, {
    'x-client': '10.1.2.3',
    'x-both': 'v//p?q=1 (100%)',
    'x-kept': '',
    'x-over': 'HTTP/1.1',
    'x-pod': 'reviews-v1;default',
    'x-pod2': 'reviews-v1;default',
    'x-code': 'code=201',
  });
});

test('prefix and regex rewrites (RE2 substitution), query kept', () => {
  const rc = compileRouteConfig({
    virtualHosts: [
      {
        domains: ['*'],
        routes: [
          { match: { prefix: '/v1/' }, route: { cluster: 'c', prefixRewrite: '/' } },
          {
            match: { prefix: '/users/' },
            route: {
              cluster: 'c',
              regexRewrite: {
                pattern: { regex: '^/users/([^/]+)/profile$' },
                substitution: '/profile?user=\\1',
              },
            },
          },
          {
            match: { prefix: '/multi' },
            route: { cluster: 'c', regexRewrite: { pattern: { regex: 'a' }, substitution: 'b' } },
          },
        ],
      },
    ],
  });
  const rw = (path: string): string | undefined => {
    const r = findRoute(rc, req(path)).route as CompiledRoute;
    const a = r.action as CompiledRouteAction;
    return rewrittenPath(path, r, a.prefixRewrite, a.regexRewrite);
  };
  assert.equal(rw('/v1/status?x=1'), '/status?x=1');
  assert.equal(rw('/users/ann/profile'), '/profile?user=ann');
  assert.equal(rw('/users/ann/other'), '/users/ann/other');
  assert.equal(rw('/multi/aaa?a=a'), '/multi/bbb?a=a', 'every match replaced, query untouched');
});

test('redirects build Location like Envoy', () => {
  const routes: Route[] = [
    {
      match: { path: '/old' },
      redirect: { hostRedirect: 'example.com', pathRedirect: '/new', responseCode: 'FOUND' },
    },
    {
      match: { path: '/https' },
      redirect: { schemeRedirect: 'https', responseCode: 'MOVED_PERMANENTLY' },
    },
    { match: { path: '/same-port' }, redirect: { pathRedirect: '/moved', portRedirect: 8000 } },
    { match: { prefix: '/pre/' }, redirect: { prefixRewrite: '/post/', stripQuery: true } },
    { match: { path: '/q' }, redirect: { pathRedirect: '/n?z=1' } },
  ];
  const rc = compileRouteConfig({ virtualHosts: [{ domains: ['*'], routes }] });
  const loc = (path: string, authority: string, proto = 'http'): [number, string] => {
    const r = findRoute(rc, req(path, authority)).route as CompiledRoute;
    assert.equal(r.action.kind, 'redirect');
    if (r.action.kind !== 'redirect') return [0, ''];
    return [r.action.status, redirectLocation(req(path, authority).headers, proto, r, r.action)];
  };
  assert.deepEqual(loc('/old?a=1', 'httpbin:8000'), [302, 'http://example.com/new?a=1']);
  assert.deepEqual(
    loc('/https', 'httpbin:80'),
    [301, 'https://httpbin/https'],
    'the default port of the old scheme goes',
  );
  assert.deepEqual(loc('/https', 'httpbin:8080'), [301, 'https://httpbin:8080/https']);
  assert.deepEqual(loc('/same-port', 'httpbin:9000'), [301, 'http://httpbin:8000/moved']);
  assert.deepEqual(loc('/pre/x?y=1', 'h'), [301, 'http://h/post/x']);
  assert.deepEqual(loc('/q?a=1', 'h'), [301, 'http://h/n?z=1']);
});

test('path normalization: dot segments, backslashes, unreserved escapes, merge_slashes', () => {
  assert.equal(normalizePath('/a/./b/../c?x=/../', false), '/a/c?x=/../');
  assert.equal(normalizePath('/a/b/..', false), '/a/');
  assert.equal(normalizePath('/../../etc/passwd', false), '/etc/passwd');
  assert.equal(normalizePath('/a/%2e%2E/b', false), '/b');
  assert.equal(normalizePath('/%61pi/%2f', false), '/api/%2F');
  assert.equal(normalizePath('\\a\\..\\b', false), '/b');
  assert.equal(normalizePath('/a//b///c', true), '/a/b/c');
  assert.equal(normalizePath('/a//b', false), '/a//b');
  assert.equal(normalizePath('/a#frag', false), '/a');
  assert.equal(normalizePath('a', false), undefined);
});

test('grpc-timeout parsing', () => {
  assert.equal(parseGrpcTimeout('1S'), 1000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('1500u'), 2);
  assert.equal(parseGrpcTimeout('5n'), 1);
  assert.equal(parseGrpcTimeout('1x'), undefined);
  assert.equal(parseGrpcTimeout('123456789S'), undefined, 'at most 8 digits');
});
