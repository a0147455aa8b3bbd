// gRPC (unary, errors, server and bidirectional streaming, through grpc_proxy CONNECT),
// WebSocket with `ws`, CONNECT tunnels and absolute-form requests on the explicit HTTP proxy
// port, and HTTP/2 CONNECT — all through the proxy over real sockets.
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { echoPackage, startEchoServer, type EchoReply, type EchoRequest } from '@trellis/testing';
import type { RouteConfiguration } from '@trellis/envoy';
import {
  delay,
  eventually,
  h2request,
  hcmConfig,
  http2Options,
  rawExchange,
  request,
  route,
  routeConfig,
  simpleRoutes,
  startH1Backend,
  startProxy,
  staticCluster,
  statusOf,
  vhost,
} from './http-fixtures.js';
import { startStreamServer, STREAM_SERVICE } from './grpc-fixtures.js';

// ---- gRPC ----

type Unary = (
  req: EchoRequest,
  md: grpc.Metadata,
  cb: (err: grpc.ServiceError | null, res?: EchoReply) => void,
) => void;

function echoClient(target: string): grpc.Client & { Echo: Unary } {
  const Echo = echoPackage().trellis.testing.v1.Echo;
  return new Echo(target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Echo: Unary;
  };
}

function callEcho(
  client: grpc.Client & { Echo: Unary },
  req: EchoRequest,
  md = new grpc.Metadata(),
): Promise<EchoReply> {
  return new Promise((resolve, reject) =>
    client.Echo(req, md, (err, res) => (err ? reject(err) : resolve(res as EchoReply))),
  );
}

test('gRPC unary through the proxy (HTTP/2 upstream): replies, metadata and error statuses', async () => {
  const echo = await startEchoServer('echo-0', 'v1');
  const proxy = await startProxy({
    clusters: [
      staticCluster('echo', [echo.port], { typedExtensionProtocolOptions: http2Options() }),
    ],
    routes: [simpleRoutes('echo')],
  });
  const client = echoClient(`127.0.0.1:${proxy.port}`);
  try {
    const md = new grpc.Metadata();
    md.set('x-user', 'jason');
    const reply = await callEcho(client, { message: 'hi' }, md);
    assert.equal(reply.message, 'hi');
    assert.equal(reply.server, 'echo-0');
    assert.equal(reply.metadata['x-user'], 'jason');
    assert.match(reply.metadata['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    const c = proxy.completed.at(-1);
    assert.equal(c?.info.grpcStatus, 0);
    assert.equal(c?.info.protocol, 'HTTP/2');
    await assert.rejects(
      callEcho(client, { message: 'x', failCode: grpc.status.PERMISSION_DENIED }),
      (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.PERMISSION_DENIED);
        assert.match(e.details, /failed on request/);
        return true;
      },
    );
    await delay(10);
    assert.equal(proxy.completed.at(-1)?.info.grpcStatus, grpc.status.PERMISSION_DENIED);
    assert.equal(proxy.completed.at(-1)?.info.responseCode, 200);
  } finally {
    client.close();
    await proxy.close();
    await echo.close();
  }
});

test('gRPC server streaming and bidirectional streaming with trailing metadata', async () => {
  const server = await startStreamServer();
  const proxy = await startProxy({
    clusters: [
      staticCluster('stream', [server.port], { typedExtensionProtocolOptions: http2Options() }),
    ],
    routes: [simpleRoutes('stream')],
  });
  const Client = grpc.makeGenericClientConstructor(STREAM_SERVICE, 'Stream');
  const client = new Client(
    `127.0.0.1:${proxy.port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Count: (req: { n: number }) => grpc.ClientReadableStream<{ i: number }>;
    Chat: () => grpc.ClientDuplexStream<{ text: string }, { echo: string }>;
  };
  try {
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.Count({ n: 20 });
      call.on('data', (m: { i: number }) => got.push(m.i));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    assert.deepEqual(
      got,
      Array.from({ length: 20 }, (_, i) => i),
    );

    const chat = client.Chat();
    const answers: string[] = [];
    let trailer: string | undefined;
    const done = new Promise<void>((resolve, reject) => {
      chat.on('data', (m: { echo: string }) => answers.push(m.echo));
      chat.on('status', (s: grpc.StatusObject) => {
        trailer = s.metadata.get('x-final')[0] as string | undefined;
        if (s.code === grpc.status.OK) resolve();
        else reject(new Error(s.details));
      });
      chat.on('error', reject);
    });
    // Interleaved: each answer arrives before the next message is sent.
    for (const word of ['one', 'two', 'three']) {
      const before = answers.length;
      chat.write({ text: word });
      while (answers.length === before) await delay(2);
    }
    chat.end();
    await done;
    assert.deepEqual(answers, ['ONE', 'TWO', 'THREE']);
    assert.equal(trailer, 'bye');
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

/** The explicit HTTP proxy's route configuration, like translate's `http_proxy`. */
function httpProxyRoutes(services: Record<string, string>): RouteConfiguration {
  return routeConfig('routes', [
    ...Object.entries(services).map(([domain, cluster]) =>
      vhost(domain, [domain], [route({ prefix: '/' }, { route: { cluster, timeout: '0s' } })]),
    ),
    vhost(
      'allow_any',
      ['*'],
      [route({ prefix: '/' }, { route: { cluster: 'PassthroughCluster', timeout: '0s' } })],
    ),
  ]);
}

const EXPLICIT_PROXY_HCM = hcmConfig({ httpProtocolOptions: { allowAbsoluteUrl: true } });
const PASSTHROUGH = {
  name: 'PassthroughCluster',
  type: 'ORIGINAL_DST' as const,
  lbPolicy: 'CLUSTER_PROVIDED' as const,
  connectTimeout: '1s',
};

test('gRPC through grpc_proxy: HTTP/1.1 CONNECT to the explicit proxy port, routed by authority', async () => {
  const echo = await startEchoServer('echo-proxy', 'v2');
  const proxy = await startProxy({
    hcm: EXPLICIT_PROXY_HCM,
    clusters: [staticCluster('outbound|7070||echo', [echo.port]), PASSTHROUGH],
    routes: [httpProxyRoutes({ 'echo.default:7070': 'outbound|7070||echo' })],
  });
  const saved = process.env.grpc_proxy;
  process.env.grpc_proxy = `http://127.0.0.1:${proxy.port}`;
  let client: (grpc.Client & { Echo: Unary }) | undefined;
  try {
    client = echoClient('echo.default:7070');
    delete process.env.grpc_proxy;
    const reply = await callEcho(client, { message: 'via connect' });
    assert.equal(reply.server, 'echo-proxy');
    client.close();
    await eventually(() => proxy.completed.some((x) => x.info.method === 'CONNECT'));
    const c = proxy.completed.find((x) => x.info.method === 'CONNECT');
    assert.equal(c?.info.authority, 'echo.default:7070');
    assert.equal(c?.info.upstreamCluster, 'outbound|7070||echo');
    assert.equal(c?.info.responseCode, 200);
    assert.ok((c?.info.bytesSent ?? 0) > 0);
  } finally {
    if (saved === undefined) delete process.env.grpc_proxy;
    else process.env.grpc_proxy = saved;
    client?.close();
    await proxy.close();
    await echo.close();
  }
});

// ---- WebSocket ----

interface WsLike {
  on(event: 'message', cb: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'open' | 'close', cb: () => void): void;
  on(event: 'error', cb: (e: Error) => void): void;
  on(event: 'unexpected-response', cb: (req: unknown, res: { statusCode?: number }) => void): void;
  send(data: string | Buffer): void;
  close(): void;
}
interface WsServerLike {
  on(
    event: 'connection',
    cb: (ws: WsLike, req: { url?: string; headers: Record<string, string | undefined> }) => void,
  ): void;
  address(): net.AddressInfo;
  close(cb?: () => void): void;
}
interface WsModule {
  WebSocket: new (url: string) => WsLike;
  WebSocketServer: new (opts: { port: number; host: string }, cb?: () => void) => WsServerLike;
}

async function loadWs(): Promise<WsModule> {
  const name = 'ws';
  return (await import(name)) as WsModule;
}

test('WebSocket upgrade tunnels both ways; a route that disables it answers 403', async () => {
  const { WebSocket, WebSocketServer } = await loadWs();
  const seenHeaders: Record<string, string | undefined>[] = [];
  const wss = await new Promise<WsServerLike>((resolve) => {
    const s: WsServerLike = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => resolve(s));
  });
  wss.on('connection', (ws, req) => {
    seenHeaders.push(req.headers);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${data.toString()}`));
  });
  const proxy = await startProxy({
    clusters: [staticCluster('ws', [wss.address().port])],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route(
              { prefix: '/nows' },
              {
                route: {
                  cluster: 'ws',
                  upgradeConfigs: [{ upgradeType: 'websocket', enabled: false }],
                },
              },
            ),
            route({ prefix: '/' }, { route: { cluster: 'ws', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/chat`);
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    const messages: string[] = [];
    const big = Buffer.alloc(256 * 1024, 7);
    let bigBack: Buffer | undefined;
    const allIn = new Promise<void>((resolve) =>
      ws.on('message', (d, isBinary) => {
        if (isBinary) bigBack = d;
        else messages.push(d.toString());
        if (messages.length === 2 && bigBack) resolve();
      }),
    );
    ws.send('hello');
    ws.send(big);
    ws.send('bye');
    await allIn;
    assert.deepEqual(messages, ['echo:hello', 'echo:bye']);
    assert.ok(bigBack?.equals(big));
    assert.equal(seenHeaders[0]?.upgrade, 'websocket');
    assert.match(seenHeaders[0]?.['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    ws.close();
    await closed;
    await delay(20);
    const c = proxy.completed.find((x) => x.info.responseCode === 101);
    assert.ok((c?.info.bytesReceived ?? 0) > big.length);
    assert.equal(proxy.stats.get('http.test.downstream_cx_upgrades_total'), 1);

    const refused = new WebSocket(`ws://127.0.0.1:${proxy.port}/nows`);
    const status = await new Promise<number | undefined>((resolve) => {
      refused.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      refused.on('error', () => resolve(undefined));
    });
    assert.equal(status, 403);
    await delay(20);
    assert.equal(
      proxy.completed.find((c) => c.info.responseCode === 403)?.info.responseCodeDetails,
      'upgrade_failed',
    );
  } finally {
    await proxy.close();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});

test('an Upgrade the upstream declines is answered as a normal response', async () => {
  const backend = await startH1Backend((req, res) => {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('no upgrade here');
  });
  const proxy = await startProxy({
    clusters: [staticCluster('b', [backend.port])],
    routes: [simpleRoutes('b')],
  });
  try {
    const raw = await rawExchange(
      proxy.port,
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.equal(statusOf(raw), 400);
    assert.match(raw, /no upgrade here/);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

// ---- CONNECT and absolute-form on the explicit proxy port ----

async function tcpEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function connectThrough(
  proxyPort: number,
  authority: string,
): Promise<{ head: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, '127.0.0.1', () =>
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`),
    );
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      resolve({ head: buf.slice(0, end), socket });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('close', () => resolve({ head: buf, socket }));
  });
}

function roundTrip(socket: net.Socket, msg: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.write(msg);
  });
}

test('CONNECT on the explicit proxy port: routed by authority to a cluster, or passed through', async () => {
  const reviews = await tcpEcho();
  const other = await tcpEcho();
  const proxy = await startProxy({
    hcm: EXPLICIT_PROXY_HCM,
    clusters: [staticCluster('outbound|9080||reviews', [reviews.port]), PASSTHROUGH],
    routes: [httpProxyRoutes({ 'reviews:9080': 'outbound|9080||reviews' })],
  });
  try {
    const a = await connectThrough(proxy.port, 'reviews:9080');
    assert.match(a.head, /^HTTP\/1\.1 200 /);
    assert.equal(await roundTrip(a.socket, 'ping'), 'echo:ping');
    assert.equal(await roundTrip(a.socket, 'again'), 'echo:again');
    a.socket.destroy();
    const b = await connectThrough(proxy.port, `127.0.0.1:${other.port}`);
    assert.match(b.head, /^HTTP\/1\.1 200 /);
    assert.equal(await roundTrip(b.socket, 'x'), 'echo:x');
    b.socket.destroy();
    await delay(20);
    const c = proxy.completed.filter((x) => x.info.method === 'CONNECT');
    assert.equal(c[0]?.info.upstreamCluster, 'outbound|9080||reviews');
    assert.equal(c[1]?.info.upstreamCluster, 'PassthroughCluster');
    assert.equal(c[1]?.info.upstreamHost, `127.0.0.1:${other.port}`);
    const bad = await connectThrough(proxy.port, 'reviews');
    assert.match(bad.head, /^HTTP\/1\.1 400 /);
  } finally {
    await proxy.close();
    await reviews.close();
    await other.close();
  }
});

test('absolute-form requests take :authority from the URI; CONNECT elsewhere needs a connect route', async () => {
  const reviews = await startH1Backend();
  const direct = await startH1Backend();
  const proxy = await startProxy({
    hcm: EXPLICIT_PROXY_HCM,
    clusters: [staticCluster('outbound|9080||reviews', [reviews.port]), PASSTHROUGH],
    routes: [httpProxyRoutes({ 'reviews:9080': 'outbound|9080||reviews' })],
  });
  const plain = await startProxy({
    clusters: [staticCluster('b', [reviews.port])],
    routes: [simpleRoutes('b')],
  });
  try {
    const raw = await rawExchange(
      proxy.port,
      'GET http://reviews:9080/x?y=1 HTTP/1.1\r\nHost: ignored\r\nProxy-Connection: keep-alive\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(raw), 200);
    assert.equal(reviews.requests[0]?.url, '/x?y=1');
    assert.equal(reviews.requests[0]?.headers.host, 'reviews:9080');
    assert.equal(reviews.requests[0]?.headers['proxy-connection'], undefined);
    const raw2 = await rawExchange(
      proxy.port,
      `GET http://127.0.0.1:${direct.port}/direct HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(raw2), 200);
    assert.equal(direct.requests[0]?.url, '/direct');
    assert.equal(proxy.completed.at(-1)?.info.upstreamCluster, 'PassthroughCluster');
    // Via Node's own client with an absolute path:
    const r = await request(proxy.port, { path: 'http://reviews:9080/abs' });
    assert.equal(r.status, 200);
    assert.equal(reviews.requests.at(-1)?.url, '/abs');
    // A regular HTTP port routes CONNECT only to connect_matcher routes.
    const c = await connectThrough(plain.port, 'reviews:9080');
    assert.match(c.head, /^HTTP\/1\.1 404 /);
  } finally {
    await proxy.close();
    await plain.close();
    await reviews.close();
    await direct.close();
  }
});

test('HTTP/2 CONNECT tunnels a stream to the routed cluster', async () => {
  const echo = await tcpEcho();
  const proxy = await startProxy({
    hcm: EXPLICIT_PROXY_HCM,
    clusters: [staticCluster('outbound|9080||reviews', [echo.port]), PASSTHROUGH],
    routes: [httpProxyRoutes({ 'reviews:9080': 'outbound|9080||reviews' })],
  });
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    const stream = session.request({ ':method': 'CONNECT', ':authority': 'reviews:9080' });
    const status = await new Promise<number>((resolve) =>
      stream.on('response', (h) => resolve(Number(h[':status']))),
    );
    assert.equal(status, 200);
    const answer = await new Promise<string>((resolve) => {
      stream.once('data', (d: Buffer) => resolve(d.toString()));
      stream.write('over h2');
    });
    assert.equal(answer, 'echo:over h2');
    stream.close();
    const bad = await h2request(session, { ':method': 'CONNECT', ':authority': 'nohost' }).catch(
      () => undefined,
    );
    assert.equal(bad?.status, 400);
  } finally {
    session.close();
    await proxy.close();
    await echo.close();
  }
});
