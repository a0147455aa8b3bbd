// The lean HTTP/1.1 upstream codec (src/upstream/http1-codec.ts): the response parser fed each
// response whole and one byte at a time, its strictness on malformed responses, request head
// serialisation, and the HTTP/1.1 pool (pool-http1.ts) against raw-socket backends: one write
// for head and small body, pipelined extra bytes, early responses, connection: close, upgrades,
// close-delimited bodies and parse errors reported as protocol_error.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import type { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Cluster } from '@trellis/envoy';
import type {
  UpstreamRequestHead,
  UpstreamResetReason,
  UpstreamResponseBody,
} from '../src/upstream/api.js';
import { ClusterStats } from '../src/upstream/cluster-stats.js';
import { upstreamHttpSettings } from '../src/upstream/http-protocol-options.js';
import {
  Http1ParseError,
  Http1ResponseParser,
  Http1SerializeError,
  MAX_RESPONSE_HEADER_BYTES,
  addHeaderField,
  serializeRequestHead,
  type ResponseParserHandler,
} from '../src/upstream/http1-codec.js';
import type { LbHost } from '../src/upstream/lb/types.js';
import { Http1ConnectionPool, type PoolContext } from '../src/upstream/pool-http1.js';
import { ResourceManager } from '../src/upstream/resource-manager.js';
import { FakeStats } from './http-fixtures.js';

// ---- Parser ----

interface Parsed {
  informational: number[];
  status?: number;
  headers?: IncomingHttpHeaders;
  keepAlive?: boolean;
  upgrade?: boolean;
  body: string;
  complete: boolean;
  trailers?: IncomingHttpHeaders | undefined;
  extra: boolean;
  rest?: string;
  error?: string;
}

function recorder(): { parsed: Parsed; handler: ResponseParserHandler } {
  const parsed: Parsed = { informational: [], body: '', complete: false, extra: false };
  const handler: ResponseParserHandler = {
    onInformational: (s) => parsed.informational.push(s),
    onHead: (status, headers, keepAlive, upgrade) => {
      Object.assign(parsed, { status, headers, keepAlive, upgrade });
    },
    onBody: (chunk) => {
      parsed.body += chunk.toString('latin1');
    },
    onComplete: (trailers, extra) => {
      parsed.complete = true;
      parsed.trailers = trailers;
      parsed.extra = extra;
    },
  };
  return { parsed, handler };
}

/** Parses `raw` fed in pieces of `step` bytes (0: whole), then the connection's end if `eof`. */
function parse(
  raw: string | Buffer,
  step: number,
  opts: { method?: string; upgrade?: boolean; eof?: boolean } = {},
): Parsed {
  const { parsed, handler } = recorder();
  const parser = new Http1ResponseParser(handler);
  parser.start(opts.method ?? 'GET', opts.upgrade ?? false);
  const buf = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  let rest = '';
  try {
    for (let i = 0; i < buf.length; i += step || buf.length) {
      parser.execute(buf.subarray(i, step ? i + step : buf.length));
      if (parser.rest) {
        rest += parser.rest.toString('latin1');
        parser.rest = undefined;
      }
    }
    if (opts.eof && !parser.finish()) parsed.error = 'truncated';
  } catch (err) {
    assert.ok(err instanceof Http1ParseError, String(err));
    parsed.error = err.code;
  }
  if (rest) parsed.rest = rest;
  return parsed;
}

/** Parses whole and byte by byte: both must agree. */
function both(raw: string | Buffer, opts: Parameters<typeof parse>[2] = {}): Parsed {
  const whole = parse(raw, 0, opts);
  const bytes = parse(raw, 1, opts);
  const strip = (p: Parsed): Parsed => ({ ...p, extra: false });
  // Extra bytes are noticed in the read that completes the response (whole), or in the next one.
  assert.deepEqual(strip(bytes), strip(whole), 'byte-split parse differs from whole');
  return whole;
}

test('codec: Content-Length body, keep-alive, headers joined like Node', () => {
  const p = both(
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\nSet-Cookie: a=1\r\n' +
      'Set-Cookie: b=2\r\nContent-Type: text/plain\r\ncontent-type: text/html\r\n' +
      'Cookie: c=1\r\ncookie: d=2\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\nhello',
  );
  assert.equal(p.status, 200);
  assert.equal(p.keepAlive, true);
  assert.equal(p.body, 'hello');
  assert.equal(p.complete, true);
  assert.equal(p.error, undefined);
  assert.deepEqual(p.headers, {
    'content-length': '5',
    'x-a': '1, 2',
    'set-cookie': ['a=1', 'b=2'],
    'content-type': 'text/plain',
    cookie: 'c=1; d=2',
    'x-empty': '',
    'x-pad': 'v',
  });
});

test('codec: status line forms, obs-text in values, HTTP/1.0 keep-alive rules', () => {
  assert.equal(both('HTTP/1.1 204\r\n\r\n').status, 204);
  assert.equal(both('HTTP/1.1 200 \r\ncontent-length: 0\r\n\r\n').complete, true);
  const latin = both('HTTP/1.1 200 Ok\r\nx-v: caf\xe9\r\ncontent-length: 0\r\n\r\n');
  assert.equal(latin.headers?.['x-v'], 'caf\xe9');
  assert.equal(both('HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n').keepAlive, false);
  assert.equal(
    both('HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n').keepAlive,
    true,
  );
  assert.equal(
    both('HTTP/1.1 200 OK\r\nConnection: foo, Close\r\ncontent-length: 0\r\n\r\n').keepAlive,
    false,
  );
});

test('codec: chunked bodies with extensions and trailers', () => {
  const p = both(
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;name=value;q="quoted"\r\nhello\r\nA\r\n, world!!!\r\n0\r\n' +
      'grpc-status: 0\r\nX-T: a\r\nx-t: b\r\n\r\n',
  );
  assert.equal(p.body, 'hello, world!!!');
  assert.equal(p.complete, true);
  assert.deepEqual(p.trailers, { 'grpc-status': '0', 'x-t': 'a, b' });
  const noTrailers = both('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n');
  assert.equal(noTrailers.complete, true);
  assert.equal(noTrailers.trailers, undefined);
});

test('codec: close-delimited bodies end with the connection; truncated ones do not', () => {
  const p = both('HTTP/1.1 200 OK\r\n\r\nall of it', { eof: true });
  assert.equal(p.body, 'all of it');
  assert.equal(p.keepAlive, false);
  assert.equal(p.complete, true);
  const te = both('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz', { eof: true });
  assert.equal(te.complete, true);
  assert.equal(te.keepAlive, false);
  assert.equal(
    both('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort', { eof: true }).error,
    'truncated',
  );
  assert.equal(
    both('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab', { eof: true }).error,
    'truncated',
  );
  assert.equal(both('HTTP/1.1 200 OK\r\ncontent-le', { eof: true }).error, 'truncated');
});

test('codec: no body for HEAD, 204 and 304 (whatever their framing headers say)', () => {
  const head = both('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n', { method: 'HEAD' });
  assert.equal(head.complete, true);
  assert.equal(head.body, '');
  assert.equal(head.keepAlive, true);
  const nc = both('HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n');
  assert.equal(nc.complete, true);
  assert.equal(both('HTTP/1.1 204 No Content\r\n\r\n').complete, true);
});

test('codec: 100 Continue and other 1xx precede the final response; 101 upgrades', () => {
  const p = both(
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' +
      'HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok',
  );
  assert.deepEqual(p.informational, [100, 103]);
  assert.equal(p.status, 201);
  assert.deepEqual(p.headers, { 'content-length': '2' });
  assert.equal(p.body, 'ok');
  const up = parse(
    'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n\x81\x02hi',
    0,
    { upgrade: true },
  );
  assert.equal(up.status, 101);
  assert.equal(up.upgrade, true);
  assert.equal(up.rest, '\x81\x02hi');
  const upBytes = parse('HTTP/1.1 101 Switching Protocols\r\n\r\nab', 1, { upgrade: true });
  assert.equal(upBytes.upgrade, true);
  assert.equal(upBytes.rest, 'ab');
  // A 101 nobody asked for.
  assert.equal(both('HTTP/1.1 101 Switching Protocols\r\n\r\n').error, 'HPE_UNEXPECTED_UPGRADE');
});

test('codec: bytes after a complete response are left over (the connection is not reused)', () => {
  const p = parse('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n', 0);
  assert.equal(p.complete, true);
  assert.equal(p.extra, true);
  assert.equal(p.rest, 'HTTP/1.1 200 OK\r\n\r\n');
  const chunked = parse('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nX', 1);
  assert.equal(chunked.complete, true);
  assert.equal(chunked.rest, 'X');
});

const MALFORMED: readonly (readonly [string, string | Buffer, string])[] = [
  ['not HTTP', 'FOO/1.1 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
  ['HTTP/2.0 status line', 'HTTP/2.0 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
  ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
  ['status below 100', 'HTTP/1.1 099 OK\r\n\r\n', 'HPE_INVALID_STATUS'],
  ['control character in reason', 'HTTP/1.1 200 O\x01K\r\n\r\n', 'HPE_INVALID_STATUS'],
  ['bare LF line ending', 'HTTP/1.1 200 OK\ncontent-length: 0\n\n', 'HPE_LF_EXPECTED'],
  ['bare LF header', 'HTTP/1.1 200 OK\r\nx: y\n\r\n', 'HPE_LF_EXPECTED'],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  continued\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['space before colon', 'HTTP/1.1 200 OK\r\nx-a : 1\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['no colon', 'HTTP/1.1 200 OK\r\nx-a\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['empty name', 'HTTP/1.1 200 OK\r\n: v\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['bad name char', 'HTTP/1.1 200 OK\r\nx(a): 1\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['NUL in value', 'HTTP/1.1 200 OK\r\nx-a: a\x00b\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['CR in value', 'HTTP/1.1 200 OK\r\nx-a: a\rb\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  ['DEL in value', 'HTTP/1.1 200 OK\r\nx-a: a\x7fb\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
  [
    'duplicate Content-Length (equal)',
    'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx',
    'HPE_UNEXPECTED_CONTENT_LENGTH',
  ],
  [
    'conflicting Content-Length',
    'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx',
    'HPE_UNEXPECTED_CONTENT_LENGTH',
  ],
  [
    'Content-Length list',
    'HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\nx',
    'HPE_INVALID_CONTENT_LENGTH',
  ],
  [
    'negative Content-Length',
    'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n',
    'HPE_INVALID_CONTENT_LENGTH',
  ],
  [
    'huge Content-Length',
    `HTTP/1.1 200 OK\r\ncontent-length: ${'9'.repeat(30)}\r\n\r\n`,
    'HPE_INVALID_CONTENT_LENGTH',
  ],
  [
    'Content-Length with Transfer-Encoding',
    'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    'HPE_UNEXPECTED_CONTENT_LENGTH',
  ],
  [
    'bad chunk size',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
    'HPE_INVALID_CHUNK_SIZE',
  ],
  [
    'empty chunk size',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\n',
    'HPE_INVALID_CHUNK_SIZE',
  ],
  [
    'space after chunk size',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 \r\nhello\r\n',
    'HPE_INVALID_CHUNK_SIZE',
  ],
  [
    'chunk size overflow',
    `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${'f'.repeat(20)}\r\n`,
    'HPE_INVALID_CHUNK_SIZE',
  ],
  [
    'chunk data not followed by CRLF',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n',
    'HPE_STRICT',
  ],
  [
    'control character in extension',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a\x01\r\nab\r\n',
    'HPE_STRICT',
  ],
  [
    'bad trailer',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n',
    'HPE_INVALID_HEADER_TOKEN',
  ],
  [
    'headers over 60 KiB',
    `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(MAX_RESPONSE_HEADER_BYTES)}\r\n\r\n`,
    'HPE_HEADER_OVERFLOW',
  ],
  [
    'many headers over 60 KiB',
    `HTTP/1.1 200 OK\r\n${'x-h: 0123456789\r\n'.repeat(4000)}\r\n`,
    'HPE_HEADER_OVERFLOW',
  ],
  [
    'chunk extensions over 16 KiB',
    `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;${'a'.repeat(17 * 1024)}\r\n`,
    'HPE_CHUNK_EXTENSIONS_OVERFLOW',
  ],
];

for (const [name, raw, code] of MALFORMED) {
  test(`codec: malformed response (${name}) → ${code}`, () => {
    assert.equal(parse(raw, 0).error, code, 'whole');
    assert.equal(parse(raw, 1).error, code, 'byte by byte');
  });
}

test('codec: headers just under the limit are accepted', () => {
  const filler = 'a'.repeat(MAX_RESPONSE_HEADER_BYTES - 200);
  const p = both(`HTTP/1.1 200 OK\r\nx-big: ${filler}\r\ncontent-length: 0\r\n\r\n`);
  assert.equal(p.complete, true);
  assert.equal(p.headers?.['x-big'], filler);
});

test('codec: request heads keep order and multi-values; invalid tokens and values throw', () => {
  assert.equal(
    serializeRequestHead('POST', '/p?q=1', {
      'x-b': '2',
      'x-a': ['1', '3'],
      'content-length': 4,
      'x-skip': undefined,
      host: 'svc',
    }),
    'POST /p?q=1 HTTP/1.1\r\nx-b: 2\r\nx-a: 1\r\nx-a: 3\r\ncontent-length: 4\r\nhost: svc\r\n',
  );
  assert.throws(() => serializeRequestHead('GE T', '/', {}), Http1SerializeError);
  assert.throws(() => serializeRequestHead('GET', '/a b', {}), Http1SerializeError);
  assert.throws(() => serializeRequestHead('GET', '/', { 'x\r\ny': '1' }), Http1SerializeError);
  assert.throws(() => serializeRequestHead('GET', '/', { x: 'a\r\nevil: 1' }), Http1SerializeError);
  assert.throws(() => serializeRequestHead('GET', '/', { x: ['ok', 'a\nb'] }), Http1SerializeError);
});

test('codec: addHeaderField never touches the prototype', () => {
  const h: IncomingHttpHeaders = {};
  addHeaderField(h, '__proto__', 'x');
  assert.equal(Object.getPrototypeOf(h), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(h, '__proto__')?.value, 'x');
});

// ---- The pool against raw-socket backends ----

interface RawBackend {
  port: number;
  /** Bytes each connection received, by connection. */
  received: string[];
  /** Chunks (reads) each connection received. */
  reads: Buffer[][];
  connections: number;
  close(): Promise<void>;
}

/** A backend that answers each connection's data with `respond` (called per read). */
async function rawBackend(
  respond: (socket: net.Socket, all: string, index: number) => void,
): Promise<RawBackend> {
  const sockets = new Set<net.Socket>();
  const b: RawBackend = {
    port: 0,
    received: [],
    reads: [],
    connections: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const index = b.connections++;
    b.received[index] = '';
    b.reads[index] = [];
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      b.received[index] += d.toString('latin1');
      b.reads[index]?.push(d);
      respond(socket, b.received[index] ?? '', index);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as net.AddressInfo).port;
  return b;
}

function poolFor(
  port: number,
  cluster: Partial<Cluster> = {},
): {
  pool: Http1ConnectionPool;
  scope: FakeStats;
  host: LbHost;
} {
  const scope = new FakeStats();
  const host = {
    id: `127.0.0.1:${port}`,
    address: '127.0.0.1',
    port,
    weight: 1,
    priority: 0,
    locality: {},
    metadata: {},
    healthy: true,
    activeRequests: 0,
  } as unknown as LbHost;
  const ctx: PoolContext = {
    host,
    stats: new ClusterStats(scope),
    settings: upstreamHttpSettings({ name: 'c', ...cluster }),
    resources: new ResourceManager(),
    connect: () =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      }),
  };
  return { pool: new Http1ConnectionPool(ctx), scope, host };
}

interface Outcome {
  status?: number;
  headers?: IncomingHttpHeaders;
  body: string;
  reset?: UpstreamResetReason;
  continued: boolean;
  endStream?: boolean;
  upgrade?: { status: number; head: string; socket: net.Socket };
  trailers?: IncomingHttpHeaders | undefined;
}

/** One request through the pool: resolves when the body ended, the stream reset or upgraded. */
function send(
  pool: Http1ConnectionPool,
  head: Partial<UpstreamRequestHead>,
  body?: (sink: Writable) => void,
): Promise<Outcome> {
  const out: Outcome = { body: '', continued: false };
  return new Promise((resolve) => {
    const stream = pool.newStream(
      {
        method: 'GET',
        path: '/',
        authority: 'svc',
        scheme: 'http',
        headers: {},
        endStream: body === undefined,
        ...head,
      },
      {
        onReady: (sink) => {
          assert.equal(sink === undefined, body === undefined, 'a sink only for a body');
          if (body && sink) body(sink);
        },
        onHeaders: (status, headers, end, b) => {
          out.status = status;
          out.headers = headers;
          out.endStream = end;
          if (!b) {
            assert.ok(end, 'no body object only without a body');
            resolve(out);
            return;
          }
          b.on('data', (c: Buffer) => (out.body += c.toString('latin1')));
          b.once('end', () => {
            out.trailers = stream.trailers();
            resolve(out);
          });
        },
        onReset: (reason) => {
          out.reset = reason;
          resolve(out);
        },
        onContinue: () => {
          out.continued = true;
        },
        onUpgrade: (status, _headers, socket, h) => {
          out.upgrade = { status, head: h.toString('latin1'), socket };
          resolve(out);
        },
      },
    );
  });
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

test('pool: a request without body leaves in one write; the connection is reused', async () => {
  const b = await rawBackend((s, all) => {
    if (all.endsWith('\r\n\r\n')) s.write(OK);
  });
  const { pool, scope } = poolFor(b.port);
  try {
    const first = await send(pool, { headers: { 'x-a': ['1', '2'] } });
    assert.equal(first.status, 200);
    assert.equal(first.body, 'ok');
    assert.equal(b.reads[0]?.length, 1);
    assert.equal(
      b.received[0],
      'GET / HTTP/1.1\r\nx-a: 1\r\nx-a: 2\r\nhost: svc\r\nconnection: keep-alive\r\n\r\n',
    );
    await new Promise((r) => setImmediate(r));
    b.received[0] = '';
    const second = await send(pool, { method: 'POST', path: '/x' });
    assert.equal(second.body, 'ok');
    assert.equal(b.connections, 1);
    // An empty POST says so, as Node's client does.
    assert.match(b.received[0] ?? '', /^POST \/x HTTP\/1\.1\r\n.*content-length: 0\r\n\r\n$/s);
    assert.equal(pool.connectionCount, 1);
    assert.equal(scope.values.get('upstream_rq_total')?.value, 2);
    assert.equal(scope.values.get('upstream_rq_active')?.value, 0);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: a streamed body is chunked, head and first chunk in one write, backpressured', async () => {
  const b = await rawBackend((s, all) => {
    if (all.endsWith('0\r\n\r\n')) s.write(OK);
  });
  const { pool } = poolFor(b.port);
  try {
    const out = await send(pool, { method: 'PUT', headers: {} }, (sink) => {
      sink.write(Buffer.from('hello'));
      setTimeout(() => sink.end(Buffer.from(' world')), 10);
    });
    assert.equal(out.body, 'ok');
    const first = b.reads[0]?.[0]?.toString('latin1') ?? '';
    assert.ok(first.endsWith('transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'), first);
    assert.ok(b.received[0]?.endsWith('\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'));
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: a large response body is delivered with backpressure and in order', async () => {
  const size = 4 * 1024 * 1024;
  const b = await rawBackend((s, all) => {
    if (!all.endsWith('\r\n\r\n')) return;
    s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
    s.write(Buffer.alloc(size, 'z'));
  });
  const { pool } = poolFor(b.port);
  try {
    let total = 0;
    const done = new Promise<void>((resolve, reject) => {
      pool.newStream(
        { method: 'GET', path: '/', authority: 'a', scheme: 'http', headers: {}, endStream: true },
        {
          onReady: (sink) => assert.equal(sink, undefined),
          onHeaders: (_s, _h, _e, body) => {
            assert.ok(body);
            // A slow reader: nothing arrives while the body is paused (the socket stops being
            // read, so the body never buffers the whole response).
            let paused = false;
            body.on('data', (c: Buffer) => {
              assert.ok(!paused, 'no data while paused');
              total += c.length;
              paused = true;
              body.pause();
              setImmediate(() => {
                paused = false;
                body.resume();
              });
            });
            body.once('end', () => resolve());
          },
          onReset: (r) => reject(new Error(r)),
        },
      );
    });
    await done;
    assert.equal(total, size);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: extra bytes after a response, and connection: close, prevent reuse', async () => {
  const b = await rawBackend((s, all, index) => {
    if (!all.endsWith('\r\n\r\n')) return;
    if (index === 0) s.write(OK + 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nevil!');
    else if (index === 1)
      s.write('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok');
    else s.write(OK);
  });
  const { pool } = poolFor(b.port);
  try {
    assert.equal((await send(pool, {})).body, 'ok');
    const second = await send(pool, {});
    assert.equal(second.body, 'ok', 'the smuggled response is never delivered');
    assert.equal(b.connections, 2);
    assert.equal((await send(pool, {})).body, 'ok');
    assert.equal(b.connections, 3);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: a response before the request finished; the connection is reused after', async () => {
  // Answers each request line as soon as it is seen (the POST before its body ended).
  let answered = 0;
  const b = await rawBackend((s, all) => {
    const seen = all.split(' HTTP/1.1\r\n').length - 1;
    for (; answered < seen; answered++) s.write(OK);
  });
  const { pool } = poolFor(b.port);
  try {
    let sinkRef: Writable | undefined;
    const early = await send(pool, { method: 'POST' }, (sink) => {
      sinkRef = sink;
      sink.write(Buffer.from('part'));
    });
    assert.equal(early.body, 'ok');
    sinkRef?.end(Buffer.from('rest'));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await send(pool, {})).body, 'ok');
    assert.equal(b.connections, 1);
    assert.ok(b.received[0]?.includes('4\r\nrest\r\n0\r\n\r\nGET /'));
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: malformed response → protocol_error (UPE); closed early → connection_termination', async () => {
  const b = await rawBackend((s, all, index) => {
    if (!all.endsWith('\r\n\r\n')) return;
    if (index === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n');
    else if (index === 1) s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort');
    else if (index === 2) s.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
    else s.destroy();
  });
  const { pool, scope } = poolFor(b.port);
  try {
    assert.equal((await send(pool, {})).reset, 'protocol_error');
    assert.equal(scope.values.get('upstream_cx_protocol_error')?.value, 1);
    const truncated = await send(pool, {});
    assert.equal(truncated.status, 200);
    assert.equal(truncated.reset, 'connection_termination');
    const eof = await send(pool, {});
    assert.equal(eof.body, 'until close');
    assert.equal(eof.reset, undefined);
    assert.equal((await send(pool, {})).reset, 'connection_termination');
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: chunked response trailers, 100-continue and an upgrade with leftover bytes', async () => {
  const b = await rawBackend((s, all, index) => {
    if (!all.endsWith('\r\n\r\n')) return;
    if (index === 0)
      s.write(
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n',
      );
    else if (index === 1) {
      if (!all.includes('0\r\n\r\n')) s.write('HTTP/1.1 100 Continue\r\n\r\n');
      else s.write(OK);
    } else
      s.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\nTUN');
  });
  const { pool, host } = poolFor(b.port);
  try {
    const t = await send(pool, {});
    assert.deepEqual(t.trailers, { 'grpc-status': '0' });
    await new Promise((r) => setImmediate(r));
    // Another connection for the expect request: occupy the first one is not needed; a new
    // pool keeps the indexes simple.
    const second = poolFor(b.port);
    const c = await send(
      second.pool,
      { method: 'POST', headers: { expect: '100-continue' } },
      (sink) => {
        // The head left already; the body follows the 100.
        setTimeout(() => sink.end(Buffer.from('body')), 30);
      },
    );
    assert.equal(c.continued, true);
    assert.equal(c.body, 'ok');
    second.pool.close();
    const third = poolFor(b.port);
    const up = await send(third.pool, { upgrade: 'x' });
    assert.equal(up.upgrade?.status, 101);
    assert.equal(up.upgrade?.head, 'TUN');
    assert.match(b.received[2] ?? '', /connection: upgrade\r\nupgrade: x\r\n\r\n$/);
    assert.equal(third.host.activeRequests, 1, 'the tunnel counts while open');
    up.upgrade?.socket.destroy();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(third.host.activeRequests, 0);
    assert.equal(host.activeRequests, 0);
    third.pool.close();
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: idle_timeout closes idle connections; max_requests_per_connection', async () => {
  const b = await rawBackend((s, all) => {
    if (all.endsWith('\r\n\r\n')) s.write(OK);
  });
  const { pool, scope } = poolFor(b.port, {
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        commonHttpProtocolOptions: { idleTimeout: '0.05s', maxRequestsPerConnection: 2 },
        explicitHttpConfig: { httpProtocolOptions: {} },
      },
    },
  } as Partial<Cluster>);
  try {
    await send(pool, {});
    await send(pool, {});
    await new Promise((r) => setImmediate(r));
    assert.equal(scope.values.get('upstream_cx_max_requests')?.value, 1);
    await send(pool, {});
    assert.equal(b.connections, 2);
    const deadline = Date.now() + 5000;
    while (pool.connectionCount > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.connectionCount, 0);
    assert.equal(scope.values.get('upstream_cx_idle_timeout')?.value, 1);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: an invalid request head is a protocol_error and never reaches the backend', async () => {
  const b = await rawBackend(() => {});
  const { pool } = poolFor(b.port);
  try {
    const out = await send(pool, { headers: { 'x-bad': 'a\r\nx-evil: 1' } });
    assert.equal(out.reset, 'protocol_error');
    assert.equal(b.connections, 0);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: responses without a body (HEAD, 204, 304, content-length: 0) end with their head', async () => {
  const answers = [
    'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n',
    OK,
  ];
  let answered = 0;
  const perConn: number[] = [];
  const b = await rawBackend((s, all, index) => {
    const seen = all.split('\r\n\r\n').length - 1;
    for (let k = perConn[index] ?? 0; k < seen; k++, answered++) s.write(answers[answered] ?? OK);
    perConn[index] = seen;
  });
  const { pool, scope } = poolFor(b.port);
  try {
    const head = await send(pool, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.endStream, true);
    assert.equal(head.headers?.['content-length'], '10');
    for (const status of [204, 304, 200]) {
      // The next request goes out as soon as the previous one ended: the connection is free.
      const out = await send(pool, {});
      assert.equal(out.status, status);
      assert.equal(out.endStream, true, `${status}: endStream`);
      assert.equal(out.body, '');
    }
    const withBody = await send(pool, {});
    assert.equal(withBody.endStream, false);
    assert.equal(withBody.body, 'ok');
    assert.equal(b.connections, 1, 'one connection for all of them');
    assert.equal(scope.values.get('upstream_rq_active')?.value, 0);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: a response body starts paused, flows on a listener or resume(), ends once', async () => {
  const b = await rawBackend((s, all) => {
    if (all.endsWith('\r\n\r\n'))
      s.write(
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n',
      );
  });
  const { pool } = poolFor(b.port);
  const late = (attach: (body: UpstreamResponseBody, done: (s: string) => void) => void) =>
    new Promise<string>((resolve, reject) => {
      pool.newStream(
        { method: 'GET', path: '/', authority: 'a', scheme: 'http', headers: {}, endStream: true },
        {
          onReady: () => {},
          onHeaders: (_s, _h, end, body) => {
            assert.equal(end, false);
            assert.ok(body);
            // Nothing is lost while nobody listens: the whole response arrives meanwhile.
            setTimeout(() => attach(body, resolve), 30);
          },
          onReset: (r) => reject(new Error(r)),
        },
      );
    });
  try {
    const data = await late((body, done) => {
      let got = '';
      let ends = 0;
      body.on('data', (c: Buffer) => (got += c.toString()));
      body.once('end', () => {
        ends++;
        setTimeout(() => done(`${got}:${ends}`), 10);
      });
    });
    assert.equal(data, 'abcd:1');
    // resume() without a listener discards the bytes; an 'end' listener added after it hears the
    // end; a paused body delivers nothing until resumed.
    const discarded = await late((body, done) => {
      body.resume();
      body.once('end', () => done('end'));
    });
    assert.equal(discarded, 'end');
    const paused = await late((body, done) => {
      let got = '';
      let resumed = false;
      body.pause();
      body.on('data', (c: Buffer) => {
        assert.ok(resumed, 'no data while paused');
        got += c.toString();
      });
      body.once('end', () => done(got));
      setTimeout(() => {
        resumed = true;
        body.resume();
      }, 20);
    });
    assert.equal(paused, 'abcd');
    assert.equal(b.connections, 1);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: idle_timeout counts from the last use; a pool-wide sweep closes idle connections', async () => {
  const b = await rawBackend((s, all) => {
    const seen = all.split('\r\n\r\n').length - 1;
    const sent = (s as net.Socket & { sent?: number }).sent ?? 0;
    for (let k = sent; k < seen; k++) s.write(OK);
    (s as net.Socket & { sent?: number }).sent = seen;
  });
  const { pool, scope } = poolFor(b.port, {
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        commonHttpProtocolOptions: { idleTimeout: '0.15s' },
        explicitHttpConfig: { httpProtocolOptions: {} },
      },
    },
  } as Partial<Cluster>);
  try {
    // Used every 50 ms for longer than idle_timeout: never idle long enough to close.
    for (let k = 0; k < 6; k++) {
      assert.equal((await send(pool, {})).body, 'ok');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(b.connections, 1);
    assert.equal(scope.values.get('upstream_cx_idle_timeout')?.value ?? 0, 0);
    // Two connections at once, then both idle: both close.
    await Promise.all([send(pool, {}), send(pool, {})]);
    assert.equal(pool.connectionCount, 2);
    const deadline = Date.now() + 5000;
    while (pool.connectionCount > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.connectionCount, 0);
    assert.equal(scope.values.get('upstream_cx_idle_timeout')?.value, 2);
  } finally {
    pool.close();
    await b.close();
  }
});

test('pool: a reset from onHeaders of a complete bodiless exchange keeps the connection', async () => {
  let answered = 0;
  const perConn: number[] = [];
  const b = await rawBackend((s, all, index) => {
    const seen = all.split('\r\n\r\n').length - 1;
    for (let k = perConn[index] ?? 0; k < seen; k++, answered++)
      s.write(answered === 0 ? 'HTTP/1.1 204 No Content\r\n\r\n' : OK);
    perConn[index] = seen;
  });
  const { pool, scope } = poolFor(b.port);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const stream = pool.newStream(
        { method: 'GET', path: '/', authority: 'a', scheme: 'http', headers: {}, endStream: true },
        {
          onReady: () => {},
          onHeaders: (st, _h, end, body) => {
            assert.equal(end, true);
            assert.equal(body, undefined);
            stream.reset();
            resolve(st);
          },
          onReset: (r) => reject(new Error(r)),
        },
      );
    });
    assert.equal(status, 204);
    assert.equal((await send(pool, {})).body, 'ok');
    assert.equal(b.connections, 1);
    assert.equal(scope.values.get('upstream_rq_tx_reset')?.value ?? 0, 0);
  } finally {
    pool.close();
    await b.close();
  }
});
