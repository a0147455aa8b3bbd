// Route actions end to end over real sockets: rewrites, host rewrites, weighted clusters,
// cluster_header, redirects, direct responses, header manipulation at every level, timeouts,
// and the local replies with Envoy's response flags and details.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import type { Route, RouteConfiguration } from '@trellis/envoy';
import {
  delay,
  edsCluster,
  h2request,
  hcmConfig,
  http2Options,
  loadAssignment,
  request,
  route,
  routeConfig,
  simpleRoutes,
  startH1Backend,
  startH2Backend,
  startProxy,
  staticCluster,
  vhost,
  type Backend,
  type ProxyHarness,
} from './http-fixtures.js';

interface Echo {
  backend: string;
  url: string;
  headers: Record<string, string | string[]>;
  body: string;
}

const echo = (body: string): Echo => JSON.parse(body) as Echo;

async function withProxy(
  routes: Route[],
  fn: (p: ProxyHarness, backends: { v1: Backend; v2: Backend }) => Promise<void>,
  rcExtra: Partial<RouteConfiguration> = {},
  vhExtra: Parameters<typeof vhost>[3] = {},
): Promise<void> {
  const { echoJson } = await import('./http-fixtures.js');
  const v1 = await startH1Backend(echoJson('v1'));
  const v2 = await startH1Backend(echoJson('v2'));
  const proxy = await startProxy({
    clusters: [staticCluster('v1', [v1.port]), staticCluster('v2', [v2.port])],
    routes: [routeConfig('routes', [vhost('all', ['*'], routes, vhExtra)], rcExtra)],
  });
  try {
    await fn(proxy, { v1, v2 });
  } finally {
    await proxy.close();
    await v1.close();
    await v2.close();
  }
}

test('prefix_rewrite and regex_rewrite set x-envoy-original-path; host_rewrite_literal and x-forwarded-host', async () => {
  await withProxy(
    [
      route(
        { prefix: '/v1/' },
        {
          route: {
            cluster: 'v1',
            prefixRewrite: '/',
            hostRewriteLiteral: 'httpbin.internal',
            appendXForwardedHost: true,
          },
        },
      ),
      route(
        { prefix: '/users/' },
        {
          route: {
            cluster: 'v1',
            regexRewrite: {
              pattern: { regex: '^/users/([^/]+)/profile$' },
              substitution: '/profile?user=\\1',
            },
          },
        },
      ),
      route({ prefix: '/hdr' }, { route: { cluster: 'v1', hostRewriteHeader: 'x-target-host' } }),
      route(
        { prefix: '/pathhost' },
        {
          route: {
            cluster: 'v1',
            hostRewritePathRegex: {
              pattern: { regex: '^/pathhost/([^/]+)/.*$' },
              substitution: '\\1',
            },
          },
        },
      ),
    ],
    async (p) => {
      const a = echo(
        (await request(p.port, { path: '/v1/status/200?x=1', headers: { host: 'orig.host' } }))
          .body,
      );
      assert.equal(a.url, '/status/200?x=1');
      assert.equal(a.headers['x-envoy-original-path'], '/v1/status/200?x=1');
      assert.equal(a.headers.host, 'httpbin.internal');
      assert.equal(a.headers['x-forwarded-host'], 'orig.host');
      const b = echo((await request(p.port, { path: '/users/ann/profile' })).body);
      assert.equal(b.url, '/profile?user=ann');
      const c = echo(
        (await request(p.port, { path: '/hdr', headers: { 'x-target-host': 'from.header' } })).body,
      );
      assert.equal(c.headers.host, 'from.header');
      const d = echo((await request(p.port, { path: '/pathhost/svc.ns/x' })).body);
      assert.equal(d.headers.host, 'svc.ns');
    },
  );
});

test('weighted clusters split traffic with per-cluster header operations', async () => {
  let n = 0;
  const values = [0.1, 0.9, 0.5, 0.8, 0.2, 0.95, 0.3, 0.76];
  const { echoJson } = await import('./http-fixtures.js');
  const v1 = await startH1Backend(echoJson('v1'));
  const v2 = await startH1Backend(echoJson('v2'));
  const proxy = await startProxy({
    clusters: [staticCluster('v1', [v1.port]), staticCluster('v2', [v2.port])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/' },
              {
                route: {
                  weightedClusters: {
                    clusters: [
                      {
                        name: 'v1',
                        weight: 75,
                        requestHeadersToAdd: [
                          {
                            header: { key: 'x-version', value: 'v1' },
                            appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
                          },
                        ],
                        responseHeadersToAdd: [{ header: { key: 'x-served-by', value: 'v1' } }],
                        responseHeadersToRemove: ['x-backend'],
                      },
                      { name: 'v2', weight: 25 },
                    ],
                  },
                },
              },
            ),
          ],
        ),
      ]),
    ],
    random: () => values[n++ % values.length] ?? 0,
  });
  try {
    const seen: string[] = [];
    for (let i = 0; i < values.length; i++) {
      const r = await request(proxy.port);
      const e = echo(r.body);
      seen.push(e.backend);
      if (e.backend === 'v1') {
        assert.equal(e.headers['x-version'], 'v1');
        assert.equal(r.headers['x-served-by'], 'v1');
        assert.equal(r.headers['x-backend'], undefined);
      } else {
        assert.equal(e.headers['x-version'], undefined);
        assert.equal(r.headers['x-backend'], 'v2');
      }
    }
    assert.deepEqual(seen, ['v1', 'v2', 'v1', 'v2', 'v1', 'v2', 'v1', 'v2']);
  } finally {
    await proxy.close();
    await v1.close();
    await v2.close();
  }
});

test('cluster_header routes by a request header; missing or unknown → 503 NC', async () => {
  await withProxy(
    [route({ prefix: '/' }, { route: { clusterHeader: 'x-cluster' } })],
    async (p) => {
      assert.equal(
        echo((await request(p.port, { headers: { 'x-cluster': 'v2' } })).body).backend,
        'v2',
      );
      const r = await request(p.port, { headers: { 'x-cluster': 'nope' } });
      assert.equal(r.status, 503);
      assert.equal(r.body, '');
      const c = p.completed.at(-1);
      assert.equal(c?.info.responseCodeDetails, 'cluster_not_found');
      assert.ok(c?.info.responseFlags.has('NC'));
      assert.equal(p.stats.get('http.test.no_cluster'), 1);
      assert.equal((await request(p.port)).status, 503);
    },
  );
});

test('redirects and direct responses (with route response headers); HEAD gets no body', async () => {
  await withProxy(
    [
      route(
        { path: '/old' },
        { redirect: { hostRedirect: 'example.com', pathRedirect: '/new', responseCode: 'FOUND' } },
      ),
      route(
        { path: '/https' },
        { redirect: { schemeRedirect: 'https', responseCode: 'MOVED_PERMANENTLY' } },
      ),
      route(
        { path: '/teapot' },
        {
          directResponse: { status: 418, body: { inlineString: 'I am a teapot' } },
          responseHeadersToAdd: [{ header: { key: 'x-route', value: 'teapot' } }],
        },
      ),
      route(
        { path: '/bytes' },
        { directResponse: { status: 200, body: { inlineBytes: 'aGVsbG8=' } } },
      ),
      route({ path: '/empty' }, { directResponse: { status: 204 } }),
    ],
    async (p, { v1 }) => {
      const a = await request(p.port, { path: '/old?q=1', headers: { host: 'httpbin:8000' } });
      assert.equal(a.status, 302);
      assert.equal(a.headers.location, 'http://example.com/new?q=1');
      assert.equal(p.completed.at(-1)?.info.responseCodeDetails, 'direct_response');
      const b = await request(p.port, { path: '/https', headers: { host: 'httpbin:80' } });
      assert.equal(b.status, 301);
      assert.equal(b.headers.location, 'https://httpbin/https');
      const c = await request(p.port, { path: '/teapot' });
      assert.equal(c.status, 418);
      assert.equal(c.body, 'I am a teapot');
      assert.equal(c.headers['content-type'], 'text/plain');
      assert.equal(c.headers['x-route'], 'teapot');
      assert.equal((await request(p.port, { path: '/bytes' })).body, 'hello');
      const h = await request(p.port, { path: '/teapot', method: 'HEAD' });
      assert.equal(h.status, 418);
      assert.equal(h.body, '');
      assert.equal((await request(p.port, { path: '/empty' })).status, 204);
      assert.equal(v1.requests.length, 0);
      assert.equal(p.stats.get('http.test.rq_redirect'), 2);
      assert.equal(p.stats.get('http.test.rq_direct_response'), 4);
    },
  );
});

test('header manipulation: route → virtual host → route configuration order, and most_specific_header_mutations_wins', async () => {
  const routes = [
    route(
      { prefix: '/' },
      {
        route: { cluster: 'v1' },
        requestHeadersToAdd: [
          {
            header: { key: 'x-level', value: 'route' },
            appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
          },
          { header: { key: 'x-added', value: 'yes' } },
        ],
        requestHeadersToRemove: ['x-remove-me'],
        responseHeadersToAdd: [
          { header: { key: 'x-resp', value: 'ok' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-resp-add', value: 'more' } },
        ],
        responseHeadersToRemove: ['x-backend'],
      },
    ),
  ];
  const vhExtra = {
    requestHeadersToAdd: [
      {
        header: { key: 'x-level', value: 'vhost' },
        appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' as const,
      },
    ],
    responseHeadersToAdd: [{ header: { key: 'x-vh', value: '1' } }],
  };
  const rcHeaders = {
    requestHeadersToAdd: [
      {
        header: { key: 'x-level', value: 'config' },
        appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' as const,
      },
    ],
  };
  await withProxy(
    routes,
    async (p) => {
      const r = await request(p.port, { headers: { 'x-remove-me': '1', 'x-added': 'client' } });
      const e = echo(r.body);
      assert.equal(e.headers['x-level'], 'config', 'the outermost level is applied last');
      assert.equal(e.headers['x-added'], 'client, yes');
      assert.equal(e.headers['x-remove-me'], undefined);
      assert.equal(r.headers['x-resp'], 'ok');
      assert.equal(r.headers['x-resp-add'], 'more');
      assert.equal(r.headers['x-vh'], '1');
      assert.equal(r.headers['x-backend'], undefined);
    },
    rcHeaders,
    vhExtra,
  );
  await withProxy(
    routes,
    async (p) => {
      const e = echo((await request(p.port)).body);
      assert.equal(e.headers['x-level'], 'route', 'most specific wins: the route is applied last');
    },
    { ...rcHeaders, mostSpecificHeaderMutationsWins: true },
    vhExtra,
  );
});

test('header values with command operators: client address, request headers, start time, upstream host and metadata', async () => {
  const { echoJson } = await import('./http-fixtures.js');
  const v1 = await startH1Backend(echoJson('v1'));
  const metadata = { istio: { workload: 'reviews-v1;default;reviews;v1;Kubernetes' } };
  const proxy = await startProxy({
    clusters: [
      staticCluster('v1', [v1.port], { loadAssignment: loadAssignment('v1', [v1.port], metadata) }),
    ],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/' },
              {
                route: { cluster: 'v1' },
                requestHeadersToAdd: [
                  {
                    header: {
                      key: 'x-client-ip',
                      value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%',
                    },
                    appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
                  },
                  { header: { key: 'x-copy', value: '%REQ(x-in)% is 100%%' } },
                  { header: { key: 'x-start', value: '%START_TIME(%s)%' } },
                  { header: { key: 'x-nothing', value: '%REQ(x-absent)%' } },
                  // Envoy formats request headers before choosing the upstream host.
                  { header: { key: 'x-up-early', value: '%UPSTREAM_REMOTE_ADDRESS%' } },
                ],
                responseHeadersToAdd: [
                  { header: { key: 'x-upstream', value: '%UPSTREAM_REMOTE_ADDRESS%' } },
                  {
                    header: {
                      key: 'x-workload',
                      value: '%UPSTREAM_METADATA(["istio", "workload"])%',
                    },
                  },
                  { header: { key: 'x-seen', value: 'from %RESP(x-backend)%' } },
                ],
              },
            ),
          ],
        ),
      ]),
    ],
  });
  try {
    const before = Math.floor(Date.now() / 1000);
    const r = await request(proxy.port, { headers: { 'x-in': 'mine', 'x-client-ip': '6.6.6.6' } });
    const after = Math.floor(Date.now() / 1000);
    assert.equal(r.status, 200);
    const e = echo(r.body);
    assert.equal(e.headers['x-client-ip'], '127.0.0.1', 'overwritten with the connection address');
    assert.equal(e.headers['x-copy'], 'mine is 100%');
    const start = Number(e.headers['x-start']);
    assert.ok(start >= before && start <= after, `x-start ${String(e.headers['x-start'])}`);
    assert.equal(e.headers['x-nothing'], undefined, 'an empty value adds no header');
    assert.equal(e.headers['x-up-early'], undefined);
    assert.equal(r.headers['x-upstream'], `127.0.0.1:${v1.port}`);
    assert.equal(r.headers['x-workload'], metadata.istio.workload);
    assert.equal(r.headers['x-seen'], 'from v1');
    // The access log still sees the chosen upstream host.
    assert.equal(proxy.completed.at(-1)?.info.upstreamHost, `127.0.0.1:${v1.port}`);
  } finally {
    await proxy.close();
    await v1.close();
  }
});

test('route timeout, x-envoy-upstream-rq-timeout-ms and grpc-timeout → 504 UT; the default 15 s and 0s', async () => {
  const slow = await startH1Backend((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? '0');
    setTimeout(() => res.end('late'), ms);
  });
  const proxy = await startProxy({
    clusters: [staticCluster('slow', [slow.port])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route({ prefix: '/short' }, { route: { cluster: 'slow', timeout: '0.2s' } }),
            route(
              { prefix: '/grpc' },
              {
                route: {
                  cluster: 'slow',
                  timeout: '0s',
                  maxStreamDuration: { grpcTimeoutHeaderMax: '0s' },
                },
              },
            ),
            route({ prefix: '/default' }, { route: { cluster: 'slow' } }),
            route({ prefix: '/' }, { route: { cluster: 'slow', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  try {
    const a = await request(proxy.port, { path: '/short?ms=1000' });
    assert.equal(a.status, 504);
    assert.equal(a.body, 'upstream request timeout');
    const ca = proxy.completed.at(-1);
    assert.ok(ca?.info.responseFlags.has('UT'));
    assert.equal(ca?.info.responseCodeDetails, 'upstream_response_timeout');
    assert.equal(proxy.stats.get('cluster.slow.upstream_rq_timeout'), 1);
    assert.equal(slow.requests[0]?.headers['x-envoy-expected-rq-timeout-ms'], '200');
    const b = await request(proxy.port, {
      path: '/none?ms=300',
      headers: { 'x-envoy-upstream-rq-timeout-ms': '100' },
    });
    assert.equal(b.status, 504);
    assert.equal(
      slow.requests[1]?.headers['x-envoy-upstream-rq-timeout-ms'],
      undefined,
      'control header not forwarded',
    );
    const c = await request(proxy.port, {
      path: '/grpc?ms=400',
      headers: { 'content-type': 'application/grpc', 'grpc-timeout': '100m' },
    });
    assert.equal(c.status, 200, 'gRPC local replies are HTTP 200');
    assert.equal(c.headers['grpc-status'], '14');
    assert.equal(c.headers['grpc-message'], 'upstream request timeout');
    assert.equal(
      (await request(proxy.port, { path: '/none?ms=300' })).status,
      200,
      'timeout 0s disables it',
    );
    assert.equal((await request(proxy.port, { path: '/default?ms=10' })).status, 200);
    assert.equal(
      slow.requests.at(-1)?.headers['x-envoy-expected-rq-timeout-ms'],
      '15000',
      'Envoy default route timeout',
    );
  } finally {
    await proxy.close();
    await slow.close();
  }
});

test('local replies: NR, UH, UF (connection refused), UC, UPE, upstream reset after headers, DC, TLS → UF', async () => {
  const closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  let slowReq: http.IncomingMessage | undefined;
  const weird = await startH1Backend((req, res) => {
    switch (req.url) {
      case '/hangup':
        req.socket.destroy();
        return;
      case '/garbage':
        req.socket.end('HTTP/1.1 abc\r\n\r\n');
        return;
      case '/half':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 50);
        return;
      case '/slow':
        slowReq = req;
        return;
      default:
        res.end('ok');
    }
  });
  const proxy = await startProxy({
    clusters: [
      staticCluster('weird', [weird.port]),
      staticCluster('closed', [closedPort]),
      edsCluster('empty'),
      staticCluster('mtls', [weird.port], {
        transportSocketMatches: [
          {
            name: 'tlsMode-istio',
            match: { tlsMode: 'istio' },
            transportSocket: { name: 'envoy.transport_sockets.tls' },
          },
          {
            name: 'tlsMode-disabled',
            match: {},
            transportSocket: { name: 'envoy.transport_sockets.raw_buffer' },
          },
        ],
        loadAssignment: loadAssignment('mtls', [weird.port], {
          'envoy.transport_socket_match': { tlsMode: 'istio' },
        }),
      }),
    ],
    endpoints: [loadAssignment('empty', [])],
    routes: [
      routeConfig('routes', [
        vhost(
          'known',
          ['known.host'],
          [
            route({ prefix: '/closed' }, { route: { cluster: 'closed', timeout: '0s' } }),
            route({ prefix: '/empty' }, { route: { cluster: 'empty', timeout: '0s' } }),
            route({ prefix: '/mtls' }, { route: { cluster: 'mtls', timeout: '0s' } }),
            route({ prefix: '/' }, { route: { cluster: 'weird', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  const last = (): ProxyHarness['completed'][number] | undefined => proxy.completed.at(-1);
  const host = { host: 'known.host' };
  try {
    const nr = await request(proxy.port, { headers: { host: 'other.host' } });
    assert.equal(nr.status, 404);
    assert.equal(nr.body, '');
    assert.ok(last()?.info.responseFlags.has('NR'));
    assert.equal(last()?.info.responseCodeDetails, 'route_not_found');

    const uh = await request(proxy.port, { path: '/empty', headers: host });
    assert.equal(uh.status, 503);
    assert.equal(uh.body, 'no healthy upstream');
    assert.ok(last()?.info.responseFlags.has('UH'));
    assert.equal(last()?.info.responseCodeDetails, 'no_healthy_upstream');

    const uf = await request(proxy.port, { path: '/closed', headers: host });
    assert.equal(uf.status, 503);
    assert.equal(
      uf.body,
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: delayed connect error: 111',
    );
    assert.ok(last()?.info.responseFlags.has('UF'));
    assert.equal(
      last()?.info.responseCodeDetails,
      'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}',
    );
    assert.equal(last()?.info.upstreamTransportFailureReason, 'delayed connect error: 111');
    assert.equal(proxy.stats.get('cluster.closed.upstream_cx_connect_fail'), 1);

    const uc = await request(proxy.port, { path: '/hangup', headers: host });
    assert.equal(uc.status, 503);
    assert.equal(
      uc.body,
      'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
    );
    assert.ok(last()?.info.responseFlags.has('UC'));
    assert.equal(
      last()?.info.responseCodeDetails,
      'upstream_reset_before_response_started{connection_termination}',
    );

    const upe = await request(proxy.port, { path: '/garbage', headers: host });
    assert.equal(upe.status, 502);
    assert.ok(last()?.info.responseFlags.has('UPE'));

    const half = await request(proxy.port, { path: '/half', headers: host }).then(
      () => 'completed',
      (e: NodeJS.ErrnoException) => e.code ?? 'error',
    );
    assert.notEqual(half, 'completed', 'a reset after the response started resets the downstream');
    await delay(20);
    assert.ok(last()?.info.responseFlags.has('UC'));
    assert.equal(last()?.info.responseCode, 200);
    assert.equal(
      last()?.info.responseCodeDetails,
      'upstream_reset_after_response_started{connection_termination}',
    );

    // TLS to a plaintext server: the handshake fails (503 UF naming the TLS error).
    const tls = await request(proxy.port, { path: '/mtls', headers: host });
    assert.equal(tls.status, 503);
    assert.match(tls.body, /reset reason: connection failure, transport failure reason: TLS_error/);
    assert.ok(last()?.info.responseFlags.has('UF'));
    assert.match(
      last()?.info.responseCodeDetails ?? '',
      /^upstream_reset_before_response_started\{connection_failure,TLS_error:/,
    );
    assert.equal(weird.requests.filter((r) => r.url === '/mtls').length, 0);

    // DC: the client goes away while the upstream is still working.
    const dc = proxy.nextCompleted();
    const req = http.request({
      port: proxy.port,
      host: '127.0.0.1',
      path: '/slow',
      headers: host,
      agent: false,
    });
    req.on('error', () => {});
    req.end();
    while (!slowReq) await delay(5);
    const upstreamClosed = new Promise((r) => slowReq?.socket.once('close', r));
    req.destroy();
    const c = await dc;
    assert.ok(c.info.responseFlags.has('DC'));
    assert.equal(c.info.responseCode, 0);
    assert.equal(c.info.responseCodeDetails, 'downstream_remote_disconnect');
    await upstreamClosed;
  } finally {
    await proxy.close();
    await weird.close();
  }
});

test('client disconnect mid-response is DC, never DPE (HTTP/1.1 close and reset, HTTP/2 cancel)', async () => {
  // A slow streaming response: headers and a first chunk, then nothing until the test ends.
  const pending: http.ServerResponse[] = [];
  const backend = await startH1Backend((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first chunk');
    pending.push(res);
  });
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  const check = (c: Awaited<ReturnType<ProxyHarness['nextCompleted']>>): void => {
    assert.ok(c.info.responseFlags.has('DC'), [...c.info.responseFlags].join(','));
    assert.ok(!c.info.responseFlags.has('DPE'), [...c.info.responseFlags].join(','));
    assert.equal(c.info.responseCode, 200);
  };
  try {
    // HTTP/1.1: read the response headers, then close (FIN) or reset (RST) the socket.
    for (const how of ['destroy', 'reset'] as const) {
      const done = proxy.nextCompleted();
      const socket = net.connect(proxy.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET /stream HTTP/1.1\r\nhost: example.com\r\n\r\n');
      let got = '';
      await new Promise<void>((resolve) => {
        socket.on('data', (b: Buffer) => {
          got += b.toString('latin1');
          if (got.includes('\r\n\r\n')) resolve();
        });
      });
      assert.match(got, /^HTTP\/1\.1 200 /);
      if (how === 'reset') socket.resetAndDestroy();
      else socket.destroy();
      check(await done);
    }

    // HTTP/2: the client cancels the stream after the headers, then closes its session.
    const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
    session.on('error', () => {});
    for (const how of ['cancel', 'session'] as const) {
      const done = proxy.nextCompleted();
      const req = session.request({ ':path': '/stream', ':authority': 'example.com' });
      req.on('error', () => {});
      await new Promise((r) => req.once('response', r));
      if (how === 'cancel') req.close(http2.constants.NGHTTP2_CANCEL);
      else session.destroy();
      check(await done);
    }
  } finally {
    for (const res of pending) res.destroy();
    await proxy.close();
    await backend.close();
  }
});

test('gRPC requests get gRPC local replies (trailers-only, grpc-status from the HTTP code)', async () => {
  const proxy = await startProxy({
    clusters: [edsCluster('empty')],
    endpoints: [loadAssignment('empty', [])],
    routes: [
      routeConfig('routes', [
        vhost('v', ['svc'], [route({ prefix: '/' }, { route: { cluster: 'empty' } })]),
      ]),
    ],
  });
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    const uh = await h2request(session, {
      ':path': '/pkg.Svc/Method',
      ':authority': 'svc',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    assert.equal(uh.status, 200);
    assert.equal(uh.headers['grpc-status'], '14');
    assert.equal(uh.headers['grpc-message'], 'no healthy upstream');
    assert.equal(uh.body, '');
    const nr = await h2request(session, {
      ':path': '/pkg.Svc/Method',
      ':authority': 'nope',
      'content-type': 'application/grpc',
    });
    assert.equal(nr.headers['grpc-status'], '12');
    assert.equal(proxy.completed.at(-1)?.info.grpcStatus, 12);
  } finally {
    session.close();
    await proxy.close();
  }
});

test('HTTP/2 upstream RST_STREAM before headers → 503 UR', async () => {
  const h2 = await startH2Backend((stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  const proxy = await startProxy({
    clusters: [staticCluster('h2', [h2.port], { typedExtensionProtocolOptions: http2Options() })],
    routes: [simpleRoutes('h2')],
  });
  try {
    const r = await request(proxy.port);
    assert.equal(r.status, 503);
    assert.equal(
      r.body,
      'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
    );
    assert.ok(proxy.completed.at(-1)?.info.responseFlags.has('UR'));
    assert.equal(proxy.stats.get('cluster.h2.upstream_rq_rx_reset'), 1);
  } finally {
    await proxy.close();
    await h2.close();
  }
});

test('RDS: a route configuration not received yet answers 404 NR; inline route_config works', async () => {
  const backend = await startH1Backend();
  const rds = await startProxy({ clusters: [staticCluster('b', [backend.port])], routes: [] });
  const inline = await startProxy({
    hcm: hcmConfig({ rds: undefined as never, routeConfig: simpleRoutes('b') }),
    clusters: [staticCluster('b', [backend.port])],
  });
  try {
    assert.equal((await request(rds.port)).status, 404);
    rds.config = { ...rds.config, routes: new Map([['routes', simpleRoutes('b')]]) };
    assert.equal((await request(rds.port)).status, 200, 'the next request sees the new routes');
    assert.equal((await request(inline.port)).status, 200);
  } finally {
    await rds.close();
    await inline.close();
    await backend.close();
  }
});

test('x-envoy-attempt-count, x-request-id handling (edge regeneration, preserve, always set in response), via', async () => {
  const { echoJson } = await import('./http-fixtures.js');
  const backend = await startH1Backend(echoJson('b'));
  const routes = [
    routeConfig('routes', [
      vhost('all', ['*'], [route({ prefix: '/' }, { route: { cluster: 'b', timeout: '0s' } })], {
        includeRequestAttemptCount: true,
        includeAttemptCountInResponse: true,
      }),
    ]),
  ];
  const clusters = [staticCluster('b', [backend.port])];
  const edge = await startProxy({
    hcm: hcmConfig({ useRemoteAddress: true, alwaysSetRequestIdInResponse: true, via: 'trellis' }),
    clusters,
    routes,
  });
  const preserving = await startProxy({
    hcm: hcmConfig({ useRemoteAddress: true, preserveExternalRequestId: true }),
    clusters,
    routes,
  });
  const noIds = await startProxy({
    hcm: hcmConfig({ generateRequestId: false }),
    clusters,
    routes,
  });
  try {
    // A client with an XFF chain is external at the edge: its x-request-id is replaced.
    const ext = { 'x-forwarded-for': '203.0.113.1', 'x-request-id': 'from-client' };
    const a = await request(edge.port, { headers: ext });
    const ea = echo(a.body);
    assert.equal(ea.headers['x-envoy-attempt-count'], '1');
    assert.equal(a.headers['x-envoy-attempt-count'], '1');
    assert.notEqual(ea.headers['x-request-id'], 'from-client');
    assert.equal(a.headers['x-request-id'], ea.headers['x-request-id']);
    assert.equal(ea.headers.via, 'trellis');
    assert.equal(a.headers.via, 'trellis');
    const b = echo((await request(preserving.port, { headers: ext })).body);
    assert.equal(b.headers['x-request-id'], 'from-client');
    const c = echo((await request(noIds.port)).body);
    assert.equal(c.headers['x-request-id'], undefined);
  } finally {
    await edge.close();
    await preserving.close();
    await noIds.close();
    await backend.close();
  }
});
