// The CORS filter (issue 6) through a real proxy: preflights answered with the policy's
// Access-Control-Allow-* headers, actual requests forwarded with Allow-Origin / Credentials /
// Expose-Headers added, origins that do not match, forward_not_matching_preflights,
// filter_enabled, route and virtual-host policies, and no CORS without the filter in the chain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpConnectionManager, Route, VirtualHost } from '@trellis/envoy';
import {
  hcmConfig,
  request,
  route,
  routeConfig,
  startH1Backend,
  startProxy,
  staticCluster,
  vhost,
  type Backend,
  type ProxyHarness,
} from './http-fixtures.js';

const CORS_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

/** The policy the translator emits for route-cors (packages/translate/test/golden). */
const GOLDEN_POLICY = {
  '@type': CORS_POLICY_TYPE,
  filterEnabled: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } },
  forwardNotMatchingPreflights: false,
  allowOriginStringMatch: [
    { exact: 'https://example.com' },
    { safeRegex: { regex: 'https://.*\\.example\\.org' } },
  ],
  allowCredentials: true,
  allowHeaders: 'x-custom,authorization',
  allowMethods: 'GET,POST',
  exposeHeaders: 'x-trace',
  maxAge: '86400',
};

function corsHcm(withFilter = true): HttpConnectionManager {
  const base = hcmConfig();
  return {
    ...base,
    httpFilters: [
      ...(withFilter
        ? [
            {
              name: 'envoy.filters.http.cors',
              typedConfig: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
              },
            },
          ]
        : []),
      ...(base.httpFilters ?? []),
    ],
  };
}

async function setup(
  routes: Route[],
  opts: { withFilter?: boolean; vhostExtra?: Partial<VirtualHost> } = {},
): Promise<{ backend: Backend; proxy: ProxyHarness }> {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    hcm: corsHcm(opts.withFilter ?? true),
    clusters: [staticCluster('c1', [backend.port])],
    routes: [routeConfig('routes', [vhost('all', ['*'], routes, opts.vhostExtra ?? {})])],
  });
  return { backend, proxy };
}

function corsRoute(policy: Record<string, unknown> | undefined, prefix = '/'): Route {
  return route(
    { prefix },
    {
      route: { cluster: 'c1', timeout: '0s' },
      ...(policy
        ? {
            typedPerFilterConfig: { 'envoy.filters.http.cors': policy } as unknown as NonNullable<
              Route['typedPerFilterConfig']
            >,
          }
        : {}),
    },
  );
}

const PREFLIGHT = (origin: string): Record<string, string> => ({
  origin,
  'access-control-request-method': 'POST',
  'access-control-request-headers': 'x-custom',
});

test('a preflight from an allowed origin is answered by the proxy with the policy', async () => {
  const { backend, proxy } = await setup([corsRoute(GOLDEN_POLICY)]);
  try {
    const done = proxy.nextCompleted();
    const r = await request(proxy.port, {
      method: 'OPTIONS',
      headers: PREFLIGHT('https://example.com'),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://example.com');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(r.headers['access-control-allow-headers'], 'x-custom,authorization');
    assert.equal(r.headers['access-control-max-age'], '86400');
    assert.equal(r.headers['access-control-expose-headers'], undefined);
    assert.equal(r.body, '');
    assert.equal((await done).info.responseCodeDetails, 'cors_response');
    const regex = await request(proxy.port, {
      method: 'OPTIONS',
      headers: PREFLIGHT('https://api.example.org'),
    });
    assert.equal(regex.headers['access-control-allow-origin'], 'https://api.example.org');
    assert.equal(backend.requests.length, 0, 'preflights never reach the upstream');
    assert.equal(proxy.stats.values.get('http.test.cors.origin_valid')?.value, 2);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('an actual request from an allowed origin is forwarded; its response gets the CORS headers', async () => {
  const { backend, proxy } = await setup([corsRoute(GOLDEN_POLICY)]);
  try {
    const r = await request(proxy.port, { headers: { origin: 'https://example.com' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://example.com');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-expose-headers'], 'x-trace');
    assert.equal(r.headers['access-control-allow-methods'], undefined);
    assert.equal(backend.requests.length, 1);
    // An OPTIONS without Access-Control-Request-Method is not a preflight.
    const opts = await request(proxy.port, {
      method: 'OPTIONS',
      headers: { origin: 'https://example.com' },
    });
    assert.equal(opts.headers['x-backend'], 'backend');
    assert.equal(backend.requests.length, 2);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('origins that do not match: no CORS headers; preflights answered bare or forwarded', async () => {
  const forwarding = { ...GOLDEN_POLICY, forwardNotMatchingPreflights: true };
  const { backend, proxy } = await setup([
    corsRoute(forwarding, '/fwd'),
    corsRoute(GOLDEN_POLICY, '/'),
  ]);
  try {
    const get = await request(proxy.port, { headers: { origin: 'https://evil.com' } });
    assert.equal(get.status, 200);
    assert.equal(get.headers['access-control-allow-origin'], undefined);
    assert.equal(backend.requests.length, 1, 'forwarded untouched');
    const pre = await request(proxy.port, {
      method: 'OPTIONS',
      headers: PREFLIGHT('https://evil.com'),
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    assert.equal(pre.headers['x-backend'], undefined);
    assert.equal(
      backend.requests.length,
      1,
      'forward_not_matching_preflights false: not forwarded',
    );
    const fwd = await request(proxy.port, {
      method: 'OPTIONS',
      path: '/fwd',
      headers: PREFLIGHT('https://evil.com'),
    });
    assert.equal(fwd.headers['x-backend'], 'backend');
    assert.equal(backend.requests.length, 2);
    assert.equal(proxy.stats.values.get('http.test.cors.origin_invalid')?.value, 3);
    const noOrigin = await request(proxy.port, {
      method: 'OPTIONS',
      headers: { 'access-control-request-method': 'GET' },
    });
    assert.equal(noOrigin.headers['x-backend'], 'backend', 'no Origin: not CORS at all');
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('the virtual host policy applies; a route policy overrides it setting by setting', async () => {
  const vhostPolicy = {
    '@type': CORS_POLICY_TYPE,
    allowOriginStringMatch: [{ prefix: 'https://' }],
    allowMethods: 'GET',
    maxAge: '60',
  };
  const routePolicy = { '@type': CORS_POLICY_TYPE, allowMethods: 'PUT' };
  const { backend, proxy } = await setup(
    [corsRoute(routePolicy, '/override'), corsRoute(undefined, '/')],
    {
      vhostExtra: {
        typedPerFilterConfig: {
          'envoy.filters.http.cors': vhostPolicy,
        },
      },
    },
  );
  try {
    const plain = await request(proxy.port, {
      method: 'OPTIONS',
      headers: PREFLIGHT('https://a.io'),
    });
    assert.equal(plain.headers['access-control-allow-methods'], 'GET');
    assert.equal(plain.headers['access-control-max-age'], '60');
    const over = await request(proxy.port, {
      method: 'OPTIONS',
      path: '/override',
      headers: PREFLIGHT('https://a.io'),
    });
    assert.equal(
      over.headers['access-control-allow-origin'],
      'https://a.io',
      "the vhost's origins",
    );
    assert.equal(over.headers['access-control-allow-methods'], 'PUT');
    assert.equal(over.headers['access-control-max-age'], '60');
    assert.equal(over.headers['access-control-allow-credentials'], undefined);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('filter_enabled 0% and a chain without the CORS filter leave requests alone', async () => {
  const off = { ...GOLDEN_POLICY, filterEnabled: { defaultValue: { numerator: 0 } } };
  const a = await setup([corsRoute(off)]);
  const b = await setup([corsRoute(GOLDEN_POLICY)], { withFilter: false });
  try {
    for (const { proxy } of [a, b]) {
      const r = await request(proxy.port, {
        method: 'OPTIONS',
        headers: PREFLIGHT('https://example.com'),
      });
      assert.equal(r.headers['x-backend'], 'backend', 'forwarded');
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }
  } finally {
    for (const { proxy, backend } of [a, b]) {
      await proxy.close();
      await backend.close();
    }
  }
});
