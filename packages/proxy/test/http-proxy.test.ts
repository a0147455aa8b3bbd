// The HTTP connection manager, router and cluster manager end to end over real sockets:
// HTTP/1.1 keep-alive, chunked bodies and trailers both ways, large streamed bodies with
// backpressure, 100-continue, h2c, header handling (x-forwarded-*, x-request-id,
// x-envoy-upstream-service-time, server), stats and the StreamInfo handed to access logs.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import https from 'node:https';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import tls from 'node:tls';
import { HttpConnectionManagerImpl } from '../src/http/index.js';
import { ClusterManager } from '../src/upstream/index.js';
import {
  delay,
  downstreamProtocolOptions,
  edsCluster,
  eventually,
  h2request,
  hcmConfig,
  http2Options,
  FakeStats,
  loadAssignment,
  proxyConfig,
  request,
  route,
  routeConfig,
  sha256,
  simpleRoutes,
  startH1Backend,
  startH2Backend,
  startProxy,
  staticCluster,
  vhost,
} from './http-fixtures.js';

test('HTTP/1.1 request through the proxy: headers, stats and stream info', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  try {
    const done = proxy.nextCompleted();
    const res = await request(proxy.port, {
      path: '/hello?x=1',
      headers: { 'user-agent': 'ua-test', 'x-request-id': 'rid-1' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.server, 'envoy');
    assert.match(String(res.headers['x-envoy-upstream-service-time']), /^\d+$/);
    const body = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(body.url, '/hello?x=1');
    assert.equal(body.headers['x-request-id'], 'rid-1');
    assert.equal(body.headers['x-forwarded-proto'], 'http');
    assert.equal(body.headers.host, `127.0.0.1:${proxy.port}`);
    assert.equal(
      body.headers['x-envoy-expected-rq-timeout-ms'],
      undefined,
      'timeout 0s: no expected timeout',
    );
    const c = await done;
    assert.equal(c.info.responseCode, 200);
    assert.equal(c.info.responseCodeDetails, 'via_upstream');
    assert.equal(c.info.upstreamCluster, 'backend');
    assert.equal(c.info.upstreamHost, `127.0.0.1:${backend.port}`);
    assert.equal(c.info.method, 'GET');
    assert.equal(c.info.path, '/hello?x=1');
    assert.equal(c.info.userAgent, 'ua-test');
    assert.equal(c.info.requestId, 'rid-1');
    assert.equal(c.info.protocol, 'HTTP/1.1');
    assert.equal(c.info.listenerName, 'test_listener');
    assert.equal(c.info.responseFlags.size, 0);
    assert.ok(c.info.bytesSent > 0);
    assert.equal(c.headers.responseHeader('x-backend'), 'backend');
    assert.equal(c.headers.requestHeader(':authority'), `127.0.0.1:${proxy.port}`);
    const s = proxy.stats;
    assert.equal(s.get('cluster.backend.upstream_rq_total'), 1);
    assert.equal(s.get('cluster.backend.upstream_rq_200'), 1);
    assert.equal(s.get('cluster.backend.upstream_rq_2xx'), 1);
    assert.equal(s.get('cluster.backend.upstream_cx_total'), 1);
    assert.equal(s.get('cluster.backend.upstream_cx_http1_total'), 1);
    assert.equal(s.get('cluster.backend.membership_total'), 1);
    assert.equal(s.get('cluster.backend.membership_healthy'), 1);
    assert.equal(s.get('http.test.downstream_rq_total'), 1);
    assert.equal(s.get('http.test.downstream_rq_2xx'), 1);
    assert.equal(s.get('http.test.downstream_cx_http1_total'), 1);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('x-request-id is generated when absent; hop-by-hop headers do not cross', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  try {
    const res = await request(proxy.port, {
      headers: {
        connection: 'keep-alive, x-hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'x',
        te: 'gzip',
      },
    });
    const seen = backend.requests[0];
    assert.ok(seen);
    assert.match(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(seen.headers['x-hop'], undefined);
    assert.equal(seen.headers['proxy-connection'], undefined);
    assert.equal(seen.headers['keep-alive'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(res.status, 200);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('keep-alive: downstream requests reuse one upstream connection', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await request(proxy.port, { path: `/r${i}`, agent });
      assert.equal(r.status, 200);
    }
    assert.equal(backend.requests.length, 5);
    assert.equal(backend.connections(), 1);
    assert.equal(new Set(backend.requests.map((r) => r.remotePort)).size, 1);
    assert.equal(proxy.stats.get('cluster.backend.upstream_cx_total'), 1);
    assert.equal(proxy.stats.get('http.test.downstream_cx_total'), 1);
  } finally {
    agent.destroy();
    await proxy.close();
    await backend.close();
  }
});

test('max_requests_per_connection closes upstream connections after N requests', async () => {
  const backend = await startH1Backend();
  const cluster = staticCluster('backend', [backend.port], {
    typedExtensionProtocolOptions: downstreamProtocolOptions({
      commonHttpProtocolOptions: { maxRequestsPerConnection: 2 },
    }),
  });
  const proxy = await startProxy({ clusters: [cluster], routes: [simpleRoutes('backend')] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await request(proxy.port, { agent })).status, 200);
    assert.equal(backend.connections(), 3);
    assert.equal(proxy.stats.get('cluster.backend.upstream_cx_max_requests'), 2);
  } finally {
    agent.destroy();
    await proxy.close();
    await backend.close();
  }
});

test('upstream idle_timeout closes idle connections', async () => {
  const backend = await startH1Backend();
  const cluster = staticCluster('backend', [backend.port], {
    typedExtensionProtocolOptions: downstreamProtocolOptions({
      commonHttpProtocolOptions: { idleTimeout: '0.1s' },
    }),
  });
  const proxy = await startProxy({ clusters: [cluster], routes: [simpleRoutes('backend')] });
  try {
    assert.equal((await request(proxy.port)).status, 200);
    await eventually(() => proxy.stats.get('cluster.backend.upstream_cx_active') === 0);
    assert.equal(proxy.stats.get('cluster.backend.upstream_cx_idle_timeout'), 1);
    assert.equal((await request(proxy.port)).status, 200);
    assert.equal(backend.connections(), 2);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('chunked request and response bodies with trailers stream through', async () => {
  const backend = await startH1Backend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part1-');
      setTimeout(() => {
        res.write(Buffer.concat(chunks));
        res.addTrailers({ 'x-checksum': sha256(Buffer.concat(chunks)) });
        res.end();
      }, 20);
    });
  });
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  try {
    const res = await new Promise<{
      body: string;
      trailers: NodeJS.Dict<string>;
      te: string | undefined;
    }>((resolve, reject) => {
      const req = http.request(
        { port: proxy.port, host: '127.0.0.1', method: 'POST', path: '/up', agent: false },
        (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () =>
            resolve({ body, trailers: r.trailers, te: r.headers['transfer-encoding'] }),
          );
        },
      );
      req.on('error', reject);
      req.write('hello ');
      setTimeout(() => req.end('world'), 20);
    });
    assert.equal(res.body, 'part1-hello world');
    assert.equal(res.te, 'chunked');
    assert.equal(res.trailers['x-checksum'], sha256('hello world'));
    const seen = backend.requests[0];
    assert.equal(seen?.headers['transfer-encoding'], 'chunked');
    assert.equal(seen?.body.toString(), 'hello world');
  } finally {
    await proxy.close();
    await backend.close();
  }
});

/** A readable of `size` deterministic bytes, counting what was pulled from it. */
function pattern(size: number): { stream: Readable; pulled: () => number } {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, size - sent);
      sent += n;
      this.push(n === block.length ? block : block.subarray(0, n));
    },
  });
  return { stream, pulled: () => sent };
}

test('large bodies stream both ways with backpressure (no whole-message buffering)', async () => {
  const SIZE = 50 * 1024 * 1024;
  let releaseUpload: () => void = () => {};
  const uploadGate = new Promise<void>((r) => (releaseUpload = r));
  let received = 0;
  const backend = await startH1Backend((req, res) => {
    if (req.url === '/upload') {
      req.pause();
      void uploadGate.then(() => {
        req.on('data', (c: Buffer) => (received += c.length));
        req.resume();
      });
      req.on('end', () => res.end(String(received)));
      return;
    }
    // /download: 50 MB out, as fast as the client allows.
    const src = pattern(SIZE);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    src.stream.pipe(res);
    downloadPulled = src.pulled;
  });
  let downloadPulled: () => number = () => 0;
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  try {
    // Upload: the backend does not read; the client can only push what socket buffers and
    // stream high-water marks hold, far less than the body.
    const up = pattern(SIZE);
    const upload = new Promise<string>((resolve, reject) => {
      const req = http.request(
        { port: proxy.port, host: '127.0.0.1', method: 'POST', path: '/upload', agent: false },
        (r) => {
          let b = '';
          r.on('data', (c: Buffer) => (b += c.toString()));
          r.on('end', () => resolve(b));
        },
      );
      req.on('error', reject);
      up.stream.pipe(req);
    });
    await delay(500);
    const pushedWhilePaused = up.pulled();
    assert.ok(
      pushedWhilePaused < 16 * 1024 * 1024,
      `client pushed ${pushedWhilePaused} bytes into a paused upstream`,
    );
    releaseUpload();
    assert.equal(await upload, String(SIZE));
    assert.equal(received, SIZE);

    // Download: the client does not read at first; the backend can only produce a bounded amount.
    const download = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(
        { port: proxy.port, host: '127.0.0.1', path: '/download', agent: false },
        resolve,
      );
      req.on('error', reject);
    });
    download.pause();
    await delay(500);
    const producedWhilePaused = downloadPulled();
    assert.ok(
      producedWhilePaused < 16 * 1024 * 1024,
      `backend produced ${producedWhilePaused} bytes for a paused client`,
    );
    let got = 0;
    download.on('data', (c: Buffer) => (got += c.length));
    download.resume();
    await new Promise((r) => download.on('end', r));
    assert.equal(got, SIZE);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('Expect: 100-continue is answered by the proxy by default (Envoy) and not forwarded', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  try {
    const res = await new Promise<{ status: number; body: string; sawContinue: boolean }>(
      (resolve, reject) => {
        let sawContinue = false;
        const req = http.request(
          {
            port: proxy.port,
            host: '127.0.0.1',
            method: 'POST',
            path: '/c',
            headers: { expect: '100-continue', 'content-length': 5 },
            agent: false,
          },
          (r) => {
            let b = '';
            r.on('data', (c: Buffer) => (b += c.toString()));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b, sawContinue }));
          },
        );
        req.on('continue', () => {
          sawContinue = true;
          req.end('hello');
        });
        req.on('error', reject);
      },
    );
    assert.equal(res.status, 200);
    assert.ok(res.sawContinue);
    assert.equal(backend.requests[0]?.headers.expect, undefined);
    assert.equal(backend.requests[0]?.body.toString(), 'hello');
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('proxy_100_continue forwards Expect and relays the upstream 100 (or its early rejection)', async () => {
  // A backend that decides on `expect: 100-continue` itself (Node answers 100 on its own
  // unless 'checkContinue' has a listener).
  const seen: { url: string; expect: string | undefined; body: string }[] = [];
  const server = http.createServer();
  server.on('checkContinue', (req, res) => {
    const entry = { url: req.url ?? '', expect: req.headers.expect, body: '' };
    seen.push(entry);
    if (req.url === '/reject') {
      res.writeHead(417, { 'content-type': 'text/plain' });
      res.end('no');
      return;
    }
    res.writeContinue();
    req.on('data', (c: Buffer) => (entry.body += c.toString()));
    req.on('end', () => res.end(`got ${entry.body}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const backend = {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const proxy = await startProxy({
    hcm: { ...hcmConfig(), proxy100Continue: true } as ReturnType<typeof hcmConfig>,
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  try {
    const send = (path: string): Promise<{ status: number; body: string; sawContinue: boolean }> =>
      new Promise((resolve, reject) => {
        let sawContinue = false;
        const req = http.request(
          {
            port: proxy.port,
            host: '127.0.0.1',
            method: 'POST',
            path,
            headers: { expect: '100-continue', 'content-length': 5 },
            agent: false,
          },
          (r) => {
            let b = '';
            r.on('data', (c: Buffer) => (b += c.toString()));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b, sawContinue }));
          },
        );
        req.on('continue', () => {
          sawContinue = true;
          req.end('hello');
        });
        req.on('error', reject);
      });
    const ok = await send('/ok');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'got hello');
    assert.ok(ok.sawContinue);
    assert.equal(seen[0]?.expect, '100-continue');
    const rejected = await send('/reject');
    assert.equal(rejected.status, 417);
    assert.equal(rejected.sawContinue, false);
    assert.equal(seen[1]?.body, '', 'the body was never sent');
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('h2c with prior knowledge: to an HTTP/1.1 backend and to an HTTP/2 backend', async () => {
  const h1 = await startH1Backend();
  const h2 = await startH2Backend();
  const proxy = await startProxy({
    clusters: [
      staticCluster('h1', [h1.port]),
      staticCluster('h2', [h2.port], { typedExtensionProtocolOptions: http2Options() }),
      staticCluster('auto', [h2.port], {
        typedExtensionProtocolOptions: downstreamProtocolOptions(),
      }),
    ],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route({ prefix: '/h1' }, { route: { cluster: 'h1', timeout: '0s' } }),
            route({ prefix: '/h2' }, { route: { cluster: 'h2', timeout: '0s' } }),
            route({ prefix: '/auto' }, { route: { cluster: 'auto', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    const a = await h2request(
      session,
      { ':path': '/h1/x', ':method': 'POST', 'content-type': 'text/plain' },
      'to-h1',
    );
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-backend'], 'backend');
    assert.equal(h1.requests[0]?.httpVersion, '1.1');
    assert.equal(h1.requests[0]?.body.toString(), 'to-h1');
    assert.equal(h1.requests[0]?.headers.host, `127.0.0.1:${proxy.port}`);
    const b = await h2request(session, { ':path': '/h2/y' }, 'to-h2');
    assert.equal(b.status, 200);
    assert.equal(b.headers['x-backend'], 'h2');
    assert.equal(h2.requests[0]?.body.toString(), 'to-h2');
    const c = await h2request(session, { ':path': '/auto/z' });
    assert.equal(c.status, 200);
    assert.equal(
      c.headers['x-backend'],
      'h2',
      'use_downstream_protocol: HTTP/2 downstream → HTTP/2 upstream',
    );
    assert.equal(proxy.stats.get('http.test.downstream_cx_http2_total'), 1);
    assert.equal(proxy.stats.get('cluster.h2.upstream_cx_http2_total'), 1);
    // HTTP/1.1 downstream over use_downstream_protocol goes out as HTTP/1.1: the h2c-only
    // backend cannot answer it, so it fails as an upstream protocol error / reset.
    const viaH1 = await request(proxy.port, { path: '/auto/w' });
    assert.ok(viaH1.status === 502 || viaH1.status === 503, `status ${viaH1.status}`);
  } finally {
    session.close();
    await proxy.close();
    await h1.close();
    await h2.close();
  }
});

test('HTTP/2 upstream multiplexes streams on one connection and honours max_concurrent_streams', async () => {
  const h2 = await startH2Backend((stream) => {
    setTimeout(() => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }, 100);
  });
  const proxy = await startProxy({
    clusters: [
      staticCluster('one', [h2.port], { typedExtensionProtocolOptions: http2Options() }),
      staticCluster('two', [h2.port], {
        typedExtensionProtocolOptions: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicitHttpConfig: { http2ProtocolOptions: { maxConcurrentStreams: 2 } },
          },
        } as never,
      }),
    ],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route({ prefix: '/one' }, { route: { cluster: 'one', timeout: '0s' } }),
            route({ prefix: '/two' }, { route: { cluster: 'two', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  try {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => request(proxy.port, { path: '/one' })),
    );
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(proxy.stats.get('cluster.one.upstream_cx_http2_total'), 1);
    const r2 = await Promise.all(
      Array.from({ length: 6 }, () => request(proxy.port, { path: '/two' })),
    );
    assert.ok(r2.every((r) => r.status === 200));
    assert.equal(proxy.stats.get('cluster.two.upstream_cx_http2_total'), 3);
  } finally {
    await proxy.close();
    await h2.close();
  }
});

test('HTTP/2 upstream GOAWAY: the connection drains and new streams open a new one', async () => {
  const h2 = await startH2Backend((stream, headers) => {
    stream.respond({ ':status': 200 });
    stream.end('ok');
    if (headers[':path'] === '/bye') stream.session?.goaway();
  });
  const proxy = await startProxy({
    clusters: [staticCluster('h2', [h2.port], { typedExtensionProtocolOptions: http2Options() })],
    routes: [simpleRoutes('h2')],
  });
  try {
    assert.equal((await request(proxy.port, { path: '/a' })).status, 200);
    assert.equal((await request(proxy.port, { path: '/bye' })).status, 200);
    await delay(50);
    assert.equal((await request(proxy.port, { path: '/b' })).status, 200);
    assert.equal(h2.sessions(), 2);
  } finally {
    await proxy.close();
    await h2.close();
  }
});

test('EDS updates keep connections of unchanged clusters and drain removed ones', async () => {
  const b1 = await startH1Backend();
  const b2 = await startH1Backend();
  const cluster = edsCluster('svc');
  const routes = [simpleRoutes('svc')];
  const proxy = await startProxy({
    clusters: [cluster],
    endpoints: [loadAssignment('svc', [b1.port])],
    routes,
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal((await request(proxy.port, { agent })).status, 200);
    // Same cluster, new endpoints object with one more host: the first host's connection stays.
    await proxy.update({
      ...proxy.config,
      endpoints: new Map([['svc', loadAssignment('svc', [b1.port, b2.port])]]),
    });
    assert.equal(proxy.stats.get('cluster.svc.membership_total'), 2);
    for (let i = 0; i < 4; i++) assert.equal((await request(proxy.port, { agent })).status, 200);
    assert.equal(b1.connections(), 1, 'host kept its pool across the EDS update');
    assert.ok(b2.requests.length >= 1);
    // Endpoints gone: no healthy upstream.
    await proxy.update({
      ...proxy.config,
      endpoints: new Map([['svc', loadAssignment('svc', [])]]),
    });
    const r = await request(proxy.port, { agent });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
    // Cluster removed: NC.
    await proxy.update({ ...proxy.config, clusters: new Map() });
    assert.equal((await request(proxy.port, { agent })).status, 503);
    assert.equal(proxy.completed.at(-1)?.info.responseCodeDetails, 'cluster_not_found');
    assert.equal(proxy.stats.get('cluster_manager.cluster_removed'), 1);
  } finally {
    agent.destroy();
    await proxy.close();
    await b1.close();
    await b2.close();
  }
});

test('STRICT_DNS resolves names (auto_host_rewrite uses the name); ORIGINAL_DST uses the original destination', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [
      {
        name: 'dns',
        type: 'STRICT_DNS',
        connectTimeout: '1s',
        loadAssignment: {
          clusterName: 'dns',
          endpoints: [
            {
              lbEndpoints: [
                {
                  endpoint: {
                    address: {
                      socketAddress: { address: 'backend.test', portValue: backend.port },
                    },
                  },
                },
              ],
            },
          ],
        },
      },
      {
        name: 'passthrough',
        type: 'ORIGINAL_DST',
        lbPolicy: 'CLUSTER_PROVIDED',
        connectTimeout: '1s',
      },
    ],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/dns' },
              { route: { cluster: 'dns', autoHostRewrite: true, timeout: '0s' } },
            ),
            route({ prefix: '/' }, { route: { cluster: 'passthrough', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
    dns: (name) => Promise.resolve(name === 'backend.test' ? ['127.0.0.1'] : []),
    conn: { originalDestination: { address: '127.0.0.1', port: backend.port } },
  });
  try {
    const a = await request(proxy.port, { path: '/dns' });
    assert.equal(a.status, 200);
    assert.equal(backend.requests[0]?.headers.host, 'backend.test');
    const b = await request(proxy.port, { path: '/orig' });
    assert.equal(b.status, 200);
    assert.equal(backend.requests[1]?.url, '/orig');
    assert.equal(proxy.completed.at(-1)?.info.upstreamHost, `127.0.0.1:${backend.port}`);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

test('x-forwarded-for with use_remote_address; x-envoy-* from external clients stripped', async () => {
  const backend = await startH1Backend();
  const clusters = [staticCluster('backend', [backend.port])];
  const routes = [simpleRoutes('backend')];
  const edge = await startProxy({
    hcm: hcmConfig({ useRemoteAddress: true, xffNumTrustedHops: 0 }),
    clusters,
    routes,
  });
  const sidecar = await startProxy({ clusters, routes });
  try {
    await request(edge.port, {
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-envoy-retry-on': '5xx',
        'x-forwarded-proto': 'https',
      },
    });
    const e = backend.requests[0];
    assert.equal(e?.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(e?.headers['x-envoy-retry-on'], undefined, 'external request: x-envoy-* removed');
    assert.equal(e?.headers['x-envoy-external-address'], '127.0.0.1');
    assert.equal(e?.headers['x-forwarded-proto'], 'http', 'edge overwrites x-forwarded-proto');
    await request(edge.port);
    assert.equal(
      backend.requests[1]?.headers['x-envoy-internal'],
      'true',
      'loopback client without XFF is internal',
    );

    const done = sidecar.nextCompleted();
    await request(sidecar.port, {
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-envoy-foo': 'kept',
        'x-forwarded-proto': 'https',
      },
    });
    const s = backend.requests[2];
    assert.equal(
      s?.headers['x-forwarded-for'],
      '203.0.113.9',
      'use_remote_address false: XFF untouched',
    );
    assert.equal(s?.headers['x-envoy-foo'], 'kept');
    assert.equal(s?.headers['x-forwarded-proto'], 'https');
    const c = await done;
    assert.equal(c.info.downstreamRemoteAddress, '203.0.113.9:0');
    assert.equal(c.info.xForwardedFor, '203.0.113.9');
  } finally {
    await edge.close();
    await sidecar.close();
    await backend.close();
  }
});

test('server header: OVERWRITE with server_name, PASS_THROUGH keeps the upstream one', async () => {
  const backend = await startH1Backend((req, res) => {
    res.setHeader('server', 'backend-server');
    res.end('x');
  });
  const clusters = [staticCluster('backend', [backend.port])];
  const routes = [simpleRoutes('backend')];
  const a = await startProxy({ hcm: hcmConfig({ serverName: 'istio-envoy' }), clusters, routes });
  const b = await startProxy({
    hcm: hcmConfig({ serverHeaderTransformation: 'PASS_THROUGH' }),
    clusters,
    routes,
  });
  try {
    assert.equal((await request(a.port)).headers.server, 'istio-envoy');
    assert.equal((await request(b.port)).headers.server, 'backend-server');
  } finally {
    await a.close();
    await b.close();
    await backend.close();
  }
});

test('HTTP/1.0 is refused with 426 unless accept_http_10', async () => {
  const backend = await startH1Backend();
  const clusters = [staticCluster('backend', [backend.port])];
  const routes = [simpleRoutes('backend')];
  const strict = await startProxy({ clusters, routes });
  const lenient = await startProxy({
    hcm: hcmConfig({
      httpProtocolOptions: { acceptHttp10: true, defaultHostForHttp10: 'default.host' },
    }),
    clusters,
    routes,
  });
  try {
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(strict.port, '127.0.0.1', () => s.write('GET / HTTP/1.0\r\n\r\n'));
      let d = '';
      s.on('data', (c: Buffer) => (d += c.toString()));
      s.on('close', () => resolve(d));
    });
    assert.match(raw, /^HTTP\/1\.1 426 /);
    assert.equal(backend.requests.length, 0);
    const ok = await new Promise<string>((resolve) => {
      const s = net.connect(lenient.port, '127.0.0.1', () => s.write('GET /ten HTTP/1.0\r\n\r\n'));
      let d = '';
      s.on('data', (c: Buffer) => (d += c.toString()));
      s.on('close', () => resolve(d));
    });
    assert.match(ok, /^HTTP\/1\.1 200 /);
    assert.equal(backend.requests[0]?.headers.host, 'default.host');
  } finally {
    await strict.close();
    await lenient.close();
    await backend.close();
  }
});

test('drain: idle HTTP/1.1 connections close, in-flight ones finish with connection: close, HTTP/2 gets GOAWAY', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const backend = await startH1Backend((req, res) => {
    if (req.url === '/slow') void gate.then(() => res.end('slow done'));
    else res.end('ok');
  });
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const busyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    assert.equal((await request(proxy.port, { agent: idleAgent })).status, 200);
    assert.equal((await h2request(session, { ':path': '/h2' })).status, 200);
    const goaway = new Promise<void>((r) => session.once('goaway', () => r()));
    const slow = request(proxy.port, { path: '/slow', agent: busyAgent });
    await eventually(() => backend.requests.some((r) => r.url === '/slow'));
    assert.equal(proxy.hcm.activeConnections, 3);
    proxy.hcm.drain();
    await goaway;
    release();
    const r = await slow;
    assert.equal(r.body, 'slow done');
    assert.equal(r.headers.connection, 'close');
    await eventually(() => proxy.hcm.activeConnections === 0);
  } finally {
    session.close();
    idleAgent.destroy();
    busyAgent.destroy();
    await proxy.close();
    await backend.close();
  }
});

test('reused upstream connections do not accumulate listeners (no MaxListenersExceededWarning)', async () => {
  const backend = await startH1Backend();
  const proxy = await startProxy({
    clusters: [staticCluster('backend', [backend.port])],
    routes: [simpleRoutes('backend')],
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    for (let i = 0; i < 30; i++) assert.equal((await request(proxy.port, { agent })).status, 200);
    await delay(20);
    assert.equal(backend.connections(), 1);
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    agent.destroy();
    await proxy.close();
    await backend.close();
  }
});

test('TLS downstream: ALPN h2 is served as HTTP/2, http/1.1 as HTTP/1.1, x-forwarded-proto https', async () => {
  // The listener helper's throwaway self-signed certificate (SAN localhost).
  const { TEST_CERT, TEST_KEY } = await import('./listener-tls-fixture.js');
  const backend = await startH1Backend();
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats });
  const config = proxyConfig(
    [staticCluster('backend', [backend.port])],
    [],
    [simpleRoutes('backend')],
  );
  await cm.update(config);
  const hcm = new HttpConnectionManagerImpl({
    config: hcmConfig(),
    clusterManager: cm,
    routeConfig: (n) => config.routes.get(n),
    stats,
  });
  const server = tls.createServer(
    { key: TEST_KEY, cert: TEST_CERT, ALPNProtocols: ['h2', 'http/1.1'] },
    (socket) => hcm.handleConnection(socket, { listenerName: 'tls', direction: 'inbound' }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const session = http2.connect(`https://localhost:${port}`, { ca: TEST_CERT });
  try {
    const a = await h2request(session, { ':path': '/over-h2' });
    assert.equal(a.status, 200);
    assert.equal(stats.get('http.test.downstream_cx_http2_total'), 1);
    const b = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.get(
        { host: 'localhost', port, path: '/over-h1', ca: TEST_CERT, agent: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
    });
    assert.equal(b.status, 200);
    assert.equal(stats.get('http.test.downstream_cx_http1_total'), 1);
    assert.equal(
      backend.requests.find((r) => r.url === '/over-h1')?.headers['x-forwarded-proto'],
      'https',
    );
    assert.equal(
      backend.requests.find((r) => r.url === '/over-h2')?.headers['x-forwarded-proto'],
      'https',
    );
  } finally {
    session.close();
    hcm.close();
    cm.close();
    await new Promise<void>((r) => server.close(() => r()));
    await backend.close();
  }
});

test('HCM stats: downstream_cx_idle_timeout and downstream_rq_response_before_rq_complete', async () => {
  const proxy = await startProxy({
    clusters: [],
    routes: [
      routeConfig('routes', [
        vhost('all', ['*'], [route({ prefix: '/' }, { directResponse: { status: 413 } })]),
      ]),
    ],
    hcm: hcmConfig({ commonHttpProtocolOptions: { idleTimeout: '0.200s' } }),
  });
  try {
    // A complete request, then nothing: the idle timeout closes the connection.
    const idle = net.connect(proxy.port, '127.0.0.1');
    const idleClosed = new Promise<void>((r) => idle.once('close', () => r()));
    idle.on('data', () => {});
    idle.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await idleClosed;
    assert.equal(proxy.stats.get('http.test.downstream_cx_idle_timeout'), 1);
    assert.equal(proxy.stats.get('http.test.downstream_rq_response_before_rq_complete'), 0);

    // A body that never ends: the direct response completes first, and the connection closes.
    const early = net.connect(proxy.port, '127.0.0.1');
    let got = '';
    early.on('data', (d: Buffer) => (got += d.toString('latin1')));
    const earlyClosed = new Promise<void>((r) => early.once('close', () => r()));
    early.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789');
    await earlyClosed;
    assert.match(got, /^HTTP\/1\.1 413 /);
    assert.match(got, /\r\nconnection: close\r\n/);
    assert.equal(proxy.stats.get('http.test.downstream_rq_response_before_rq_complete'), 1);
    assert.equal(proxy.stats.get('http.test.downstream_cx_idle_timeout'), 1);
  } finally {
    await proxy.close();
  }
});
