// The gRPC-Web filter over real sockets: a browser-style client speaking HTTP/1.1 gRPC-Web
// (binary and base64 text) to the proxy, a @grpc/grpc-js server behind it over HTTP/2; trailers
// come back as a trailer frame, errors as grpc-status, a non-gRPC upstream as grpc-status and
// grpc-message headers, bad base64 as Envoy's local reply.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import {
  hcmConfig,
  http2Options,
  request,
  route,
  routeConfig,
  startH1Backend,
  startProxy,
  staticCluster,
  vhost,
  type ProxyHarness,
} from './http-fixtures.js';
import { startStreamServer } from './grpc-fixtures.js';
import { GrpcWebResponse, GrpcWebTextDecoder } from '../src/http/grpc-web.js';

const GRPC_WEB_FILTER = {
  name: 'envoy.filters.http.grpc_web',
  typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb' },
};

/** One gRPC message frame (flag 0) with a JSON payload. */
function frame(message: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

interface Frames {
  messages: unknown[];
  trailers: Record<string, string> | undefined;
}

/** Splits a gRPC-Web body into its message frames and its trailer frame. */
function parseFrames(body: Buffer): Frames {
  const out: Frames = { messages: [], trailers: undefined };
  let i = 0;
  while (i < body.length) {
    const flag = body[i]!;
    const len = body.readUInt32BE(i + 1);
    const payload = body.subarray(i + 5, i + 5 + len);
    i += 5 + len;
    if (flag & 0x80) {
      out.trailers = {};
      for (const line of payload.toString('latin1').split('\r\n').filter(Boolean)) {
        const colon = line.indexOf(':');
        out.trailers[line.slice(0, colon)] = line.slice(colon + 1);
      }
    } else out.messages.push(JSON.parse(payload.toString()) as unknown);
  }
  return out;
}

/** A grpc-web-text body: base64 groups, each padded frame on its own. */
function decodeText(text: string): Buffer {
  const parts: Buffer[] = [];
  for (const group of text.match(/[^=]*={0,2}/g) ?? [])
    if (group) parts.push(Buffer.from(group, 'base64'));
  return Buffer.concat(parts);
}

/** A POST through the proxy; `body` of the reply is its bytes. */
async function post(
  port: number,
  path: string,
  headers: http.OutgoingHttpHeaders,
  body: Buffer | string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const r = await request(port, { method: 'POST', path, headers, body });
  return { status: r.status, headers: r.headers, body: r.raw };
}

async function withGrpcWeb(
  fn: (proxy: ProxyHarness, plainPort: number) => Promise<void>,
): Promise<void> {
  const grpc = await startStreamServer();
  const plain = await startH1Backend((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end('<h1>down for maintenance</h1>');
    });
  });
  const proxy = await startProxy({
    hcm: hcmConfig({ httpFilters: [GRPC_WEB_FILTER, ...(hcmConfig().httpFilters ?? [])] }),
    clusters: [
      staticCluster('grpc', [grpc.port], { typedExtensionProtocolOptions: http2Options() }),
      staticCluster('plain', [plain.port]),
    ],
    routes: [
      routeConfig('routes', [
        vhost(
          'all',
          ['*'],
          [
            route({ prefix: '/plain' }, { route: { cluster: 'plain' } }),
            route({ prefix: '/' }, { route: { cluster: 'grpc', timeout: '0s' } }),
          ],
        ),
      ]),
    ],
  });
  try {
    await fn(proxy, plain.port);
  } finally {
    await proxy.close();
    await grpc.close();
    await plain.close();
  }
}

test('gRPC-Web binary over HTTP/1.1: a server stream with its trailers as the last frame', async () => {
  await withGrpcWeb(async (proxy) => {
    const r = await post(
      proxy.port,
      '/test.Stream/Count',
      { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' },
      frame({ n: 3 }),
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
    assert.equal(r.headers['content-length'], undefined);
    const f = parseFrames(r.body);
    assert.deepEqual(f.messages, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    assert.equal(f.trailers?.['grpc-status'], '0');
    assert.equal(r.headers['grpc-status'], undefined, 'the status travels in the body');
    assert.equal(proxy.completed.at(-1)?.info.grpcStatus, 0);
  });
});

test('gRPC-Web text: a base64 request, a base64 response frame by frame; error statuses', async () => {
  await withGrpcWeb(async (proxy) => {
    const text = {
      'content-type': 'application/grpc-web-text',
      accept: 'application/grpc-web-text',
    };
    const r = await post(
      proxy.port,
      '/test.Stream/Count',
      text,
      frame({ n: 2 }).toString('base64'),
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/grpc-web-text+proto');
    const f = parseFrames(decodeText(r.body.toString('latin1')));
    assert.deepEqual(f.messages, [{ i: 0 }, { i: 1 }]);
    assert.equal(f.trailers?.['grpc-status'], '0');

    const e = await post(
      proxy.port,
      '/test.Stream/Fail',
      text,
      frame({ code: 7, message: 'not yours' }).toString('base64'),
    );
    assert.equal(e.status, 200);
    const t = parseFrames(decodeText(e.body.toString('latin1')));
    // grpc-js may answer a failure as a trailers-only response: the status is then in the
    // headers, else in the trailer frame.
    const status = t.trailers?.['grpc-status'] ?? e.headers['grpc-status'];
    const message = t.trailers?.['grpc-message'] ?? e.headers['grpc-message'];
    assert.equal(status, '7');
    assert.equal(decodeURIComponent(String(message)), 'not yours');
    assert.equal(proxy.completed.at(-1)?.info.grpcStatus, 7);
  });
});

test('gRPC-Web: a non-gRPC upstream reply becomes grpc-status and grpc-message; bad base64 is refused', async () => {
  await withGrpcWeb(async (proxy) => {
    const r = await post(
      proxy.port,
      '/plain/x',
      { 'content-type': 'application/grpc-web+proto' },
      frame({}),
    );
    assert.equal(r.status, 503);
    assert.equal(r.headers['grpc-status'], '14', 'UNAVAILABLE for 503');
    assert.equal(r.headers['grpc-message'], '<h1>down for maintenance</h1>');
    assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
    assert.equal(r.body.length, 0);

    const bad = await post(
      proxy.port,
      '/test.Stream/Count',
      { 'content-type': 'application/grpc-web-text' },
      'AAAA*not base64*',
    );
    const c = proxy.completed.at(-1);
    assert.equal(c?.info.responseCodeDetails, 'grpc_base_64_decode_failed');
    assert.equal(bad.headers['grpc-message'], 'Bad gRPC-web request, invalid base64 data.');
    const cut = await post(
      proxy.port,
      '/test.Stream/Count',
      { 'content-type': 'application/grpc-web-text' },
      frame({ n: 1 }).toString('base64').slice(0, -1),
    );
    // Envoy's local reply to a gRPC request: 200 with grpc-status INTERNAL (400's mapping).
    for (const reply of [bad, cut]) {
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['grpc-status'], '13');
      assert.equal(reply.headers['content-type'], 'application/grpc-web+proto');
      assert.equal(reply.headers['grpc-message'], 'Bad gRPC-web request, invalid base64 data.');
    }
    assert.equal(
      proxy.completed.at(-1)?.info.responseCodeDetails,
      'grpc_base_64_decode_failed_bad_size',
    );

    // Not gRPC-Web: untouched.
    const plain = await post(proxy.port, '/plain/y', { 'content-type': 'text/plain' }, 'hi');
    assert.equal(plain.status, 503);
    assert.equal(plain.headers['content-type'], 'text/html');
    assert.equal(plain.headers['grpc-status'], undefined);
  });
});

test('gRPC-Web text codecs: any chunking of the request and of the response frames', async () => {
  const frames = Buffer.concat([frame({ a: 1 }), frame({ b: 'two' }), frame({ c: [3] })]);
  // Each frame encoded on its own (padding inside), as gRPC-Web clients and Envoy send them.
  const text = [frame({ a: 1 }), frame({ b: 'two' }), frame({ c: [3] })]
    .map((f) => f.toString('base64'))
    .join('');
  for (let cut = 1; cut < text.length; cut += 3) {
    const decoder = new GrpcWebTextDecoder();
    const out: Buffer[] = [];
    decoder.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((r) => decoder.on('end', r));
    decoder.write(Buffer.from(text.slice(0, cut)));
    decoder.end(Buffer.from(text.slice(cut)));
    await done;
    assert.deepEqual(Buffer.concat(out), frames, `cut at ${cut}`);
  }
  for (let cut = 1; cut < frames.length; cut += 2) {
    const web = new GrpcWebResponse({ textRequest: true, textResponse: true });
    const parts = [web.onData(frames.subarray(0, cut)), web.onData(frames.subarray(cut))];
    const body = Buffer.concat([
      ...parts.filter((p) => p !== undefined),
      web.onEnd({ 'grpc-status': '0' }),
    ]);
    const f = parseFrames(decodeText(body.toString('latin1')));
    assert.deepEqual(f.messages, [{ a: 1 }, { b: 'two' }, { c: [3] }], `cut at ${cut}`);
    assert.deepEqual(f.trailers, { 'grpc-status': '0' });
  }
});
