// Malformed and hostile input on raw sockets (issue 4, "Bad input"): each case asserts the
// exact response status (or the HTTP/2 reset) and that the backend saw nothing it should not —
// request smuggling (CL+TE, duplicate Content-Length), bad chunked encoding, forbidden bytes in
// headers, obs-fold, oversized heads, too many headers, bad methods and versions, HTTP/0.9 and
// 1.0, slow clients, and HTTP/2 preface and framing errors.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import {
  delay,
  hcmConfig,
  rawExchange,
  simpleRoutes,
  startH1Backend,
  startProxy,
  staticCluster,
  statusOf,
  type Backend,
  type ProxyHarness,
} from './http-fixtures.js';

let backend: Backend;
let proxy: ProxyHarness;
let h2only: ProxyHarness;

before(async () => {
  backend = await startH1Backend();
  const clusters = [staticCluster('backend', [backend.port])];
  const routes = [simpleRoutes('backend')];
  proxy = await startProxy({ hcm: hcmConfig({ requestHeadersTimeout: '0.3s' }), clusters, routes });
  h2only = await startProxy({ hcm: hcmConfig({ codecType: 'HTTP2' }), clusters, routes });
});

after(async () => {
  await proxy.close();
  await h2only.close();
  await backend.close();
});

type Seen = 'nothing' | 'incomplete' | number;

interface Case {
  readonly name: string;
  readonly raw: string | Buffer | (string | Buffer)[];
  /** Expected status of the first response (0: the connection closes without one). */
  readonly status: number;
  /** What the backend may see: nothing, only an unfinished request, or N complete requests. */
  readonly seen?: Seen;
  /** Statuses of further pipelined responses. */
  readonly then?: readonly number[];
  readonly wait?: number;
}

const H = 'Host: svc\r\n';
const post = (headers: string, body = ''): string =>
  `POST /x HTTP/1.1\r\n${H}${headers}\r\n${body}`;

const CASES: Case[] = [
  // Request smuggling: Content-Length and Transfer-Encoding.
  {
    name: 'CL and TE together (CL.TE)',
    raw: post(
      'Content-Length: 6\r\nTransfer-Encoding: chunked\r\n',
      '0\r\n\r\nGET /admin HTTP/1.1\r\nHost: svc\r\n\r\n',
    ),
    status: 400,
  },
  {
    name: 'TE and CL together (TE.CL)',
    raw: post(
      'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n',
      '5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n',
    ),
    status: 400,
  },
  {
    name: 'duplicate Content-Length (same value)',
    raw: post('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'),
    status: 400,
  },
  {
    name: 'duplicate Content-Length (different values)',
    raw: post('Content-Length: 3\r\nContent-Length: 4\r\n', 'abcd'),
    status: 400,
  },
  { name: 'Content-Length as a list', raw: post('Content-Length: 3, 3\r\n', 'abc'), status: 400 },
  { name: 'negative Content-Length', raw: post('Content-Length: -1\r\n'), status: 400 },
  {
    name: 'Content-Length with a plus sign',
    raw: post('Content-Length: +3\r\n', 'abc'),
    status: 400,
  },
  {
    name: 'Content-Length overflow',
    raw: post('Content-Length: 99999999999999999999999\r\n'),
    status: 400,
  },
  { name: 'Content-Length with letters', raw: post('Content-Length: 3a\r\n', 'abc'), status: 400 },
  { name: 'Transfer-Encoding gzip', raw: post('Transfer-Encoding: gzip\r\n', 'abc'), status: 501 },
  {
    name: 'Transfer-Encoding gzip, chunked',
    raw: post('Transfer-Encoding: gzip, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'),
    status: 501,
  },
  {
    name: 'Transfer-Encoding identity with Content-Length',
    raw: post('Transfer-Encoding: identity\r\nContent-Length: 3\r\n', 'abc'),
    status: 400,
  },
  {
    name: 'Transfer-Encoding chunked twice',
    raw: post(
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n',
      '3\r\nabc\r\n0\r\n\r\n',
    ),
    status: 501,
  },
  {
    name: 'Transfer-Encoding with space before the colon',
    raw: post('Transfer-Encoding : chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'),
    status: 400,
  },
  // Chunked encoding.
  {
    name: 'chunk size not hex',
    raw: post('Transfer-Encoding: chunked\r\n', 'zz\r\nabc\r\n0\r\n\r\n'),
    status: 400,
    seen: 'incomplete',
  },
  {
    name: 'chunk size overflow',
    raw: post('Transfer-Encoding: chunked\r\n', 'FFFFFFFFFFFFFFFFFF\r\nabc\r\n'),
    status: 400,
    seen: 'incomplete',
  },
  {
    name: 'chunk data longer than its size',
    raw: post('Transfer-Encoding: chunked\r\n', '3\r\nabcX0\r\n\r\n'),
    status: 400,
    seen: 'incomplete',
  },
  {
    name: 'chunk lines with bare LF',
    raw: post('Transfer-Encoding: chunked\r\n', '3\nabc\n0\n\n'),
    status: 400,
    seen: 'incomplete',
  },
  {
    name: 'bad chunk after a good one (mid-body)',
    raw: [post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n'), 'G\r\n'],
    status: 400,
    seen: 'incomplete',
    wait: 200,
  },
  {
    name: 'missing last-chunk terminator then garbage request',
    raw: post('Transfer-Encoding: chunked\r\n', '0\r\nX\r\n\r\n'),
    status: 400,
    seen: 'incomplete',
  },
  // Header bytes.
  { name: 'NUL in a header value', raw: `GET / HTTP/1.1\r\n${H}X-A: b\0c\r\n\r\n`, status: 400 },
  {
    name: 'bare CR in a header value',
    raw: `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`,
    status: 400,
  },
  { name: 'DEL in a header value', raw: `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, status: 400 },
  {
    name: 'obs-fold (line folding)',
    raw: `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`,
    status: 400,
  },
  { name: 'space before the colon', raw: `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, status: 400 },
  { name: 'separator in a header name', raw: `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, status: 400 },
  { name: 'empty header name', raw: `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`, status: 400 },
  {
    name: 'whitespace before the first header',
    raw: `GET / HTTP/1.1\r\n Host: svc\r\n\r\n`,
    status: 400,
  },
  { name: 'bare LF line endings', raw: 'GET / HTTP/1.1\nHost: svc\n\n', status: 400 },
  { name: 'two Host headers', raw: `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, status: 400 },
  { name: 'HTTP/1.1 without Host', raw: 'GET / HTTP/1.1\r\n\r\n', status: 400 },
  // Sizes and counts.
  {
    name: 'header larger than max_request_headers_kb',
    raw: `GET / HTTP/1.1\r\n${H}X-A: ${'a'.repeat(70_000)}\r\n\r\n`,
    status: 431,
  },
  {
    name: 'request line longer than max_request_headers_kb',
    raw: `GET /${'a'.repeat(70_000)} HTTP/1.1\r\n${H}\r\n`,
    status: 431,
  },
  {
    name: 'many headers adding up past the limit',
    raw: `GET / HTTP/1.1\r\n${H}${Array.from({ length: 40 }, (_, i) => `X-${i}: ${'v'.repeat(2000)}\r\n`).join('')}\r\n`,
    status: 431,
  },
  {
    name: 'more headers than max_headers_count',
    raw: `GET / HTTP/1.1\r\n${H}${Array.from({ length: 150 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`,
    status: 431,
  },
  // Request line.
  { name: 'invalid method token', raw: `G@T / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'unknown method', raw: `FOO / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'lower-case method', raw: `get / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/1.2', raw: `GET / HTTP/1.2\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/3.0', raw: `GET / HTTP/3.0\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/2.0 in an HTTP/1 request line', raw: `GET / HTTP/2.0\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/0.9 simple request', raw: 'GET /\r\n\r\n', status: 426 },
  { name: 'HTTP/1.0 (accept_http_10 unset)', raw: 'GET / HTTP/1.0\r\n\r\n', status: 426 },
  { name: 'garbage version token', raw: `GET / HTXP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'space inside the URL', raw: `GET /a b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'control character in the URL', raw: `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'relative URL without a slash', raw: `GET foo HTTP/1.1\r\n${H}\r\n`, status: 400 },
  {
    name: 'absolute URL with a non-HTTP scheme',
    raw: `GET ftp://svc/x HTTP/1.1\r\n${H}\r\n`,
    status: 400,
  },
  {
    name: 'CONNECT to a target without a port',
    raw: `CONNECT svc HTTP/1.1\r\n${H}\r\n`,
    status: 400,
  },
  {
    name: 'random binary',
    raw: Buffer.from([
      0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a,
    ]),
    status: 400,
  },
  // Pipelining after a complete request: the valid one goes, the bad one does not.
  {
    name: 'valid request then a smuggled invalid one',
    raw: `GET /ok HTTP/1.1\r\n${H}\r\nGET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`,
    status: 200,
    seen: 1,
    then: [400],
  },
  {
    name: 'body longer than Content-Length: the rest is a bad request',
    raw: post('Content-Length: 3\r\n', 'abcGARBAGE\r\n\r\n'),
    status: 200,
    seen: 1,
    then: [400],
  },
  // Slow clients.
  {
    name: 'headers never finished (request_headers_timeout)',
    raw: `GET / HTTP/1.1\r\n${H}X-Slow: 1\r\n`,
    status: 408,
    wait: 1500,
  },
];

function allStatuses(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}

for (const c of CASES) {
  test(`bad input: ${c.name} → ${c.status}`, async () => {
    backend.requests.length = 0;
    const raw = await rawExchange(proxy.port, c.raw, c.wait ? c.wait + 2000 : 3000);
    assert.equal(statusOf(raw), c.status, `response: ${JSON.stringify(raw.slice(0, 200))}`);
    if (c.then) assert.deepEqual(allStatuses(raw).slice(1), c.then);
    if (c.status >= 400) {
      assert.match(raw, /\r\nconnection: close\r\n/i, 'an error closes the connection');
      assert.match(raw, /\r\nserver: envoy\r\n/i);
    }
    await delay(c.wait ?? 30);
    const seen = c.seen ?? 'nothing';
    if (seen === 'nothing') assert.equal(backend.requests.length, 0, 'the backend saw a request');
    else if (seen === 'incomplete')
      assert.ok(
        backend.requests.every((r) => !r.complete),
        'the backend saw a complete request',
      );
    else {
      assert.equal(backend.requests.filter((r) => r.complete).length, seen);
      assert.ok(backend.requests.every((r) => r.url === '/ok' || r.url === '/x'));
    }
  });
}

test('bad input is recorded for access logs with DPE and the codec details', async () => {
  const done = proxy.nextCompleted();
  await rawExchange(
    proxy.port,
    post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
  );
  const c = await done;
  assert.equal(c.info.responseCode, 400);
  assert.ok(c.info.responseFlags.has('DPE'));
  assert.equal(c.info.responseCodeDetails, 'http1.content_length_and_chunked_not_allowed');
  assert.ok(proxy.stats.get('http.test.downstream_cx_protocol_error') > 0);
});

test('bad input: a client that connects and sends nothing is closed', async () => {
  const t0 = Date.now();
  const raw = await rawExchange(proxy.port, Buffer.alloc(0), 5000);
  assert.equal(raw, '');
  assert.ok(Date.now() - t0 < 4500, 'closed by the proxy, not by the test');
});

test('bad input: a client that trickles its head byte by byte past the timeout gets 408', async () => {
  backend.requests.length = 0;
  const head = `GET /slow HTTP/1.1\r\n${H}\r\n`;
  const raw = await new Promise<string>((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1');
    let out = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < head.length - 2 && !s.destroyed) s.write(head[i++] ?? '');
    }, 60);
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      resolve(out);
    });
  });
  assert.equal(statusOf(raw), 408);
  assert.equal(backend.requests.length, 0);
});

// ---- HTTP/2 ----

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h.writeUInt8(type, 3);
  h.writeUInt8(flags, 4);
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK literal header fields without indexing, names and values as given (no Huffman). */
function hpack(fields: [string, string][]): Buffer {
  const out: Buffer[] = [];
  for (const [k, v] of fields) {
    const name = Buffer.from(k);
    const value = Buffer.from(v);
    out.push(Buffer.from([0x00, name.length]), name, Buffer.from([value.length]), value);
  }
  return Buffer.concat(out);
}

const SETTINGS = frame(4, 0, 0);
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

function requestFields(extra: [string, string][] = [], path = '/'): [string, string][] {
  return [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':authority', 'svc'],
    [':path', path],
    ...extra,
  ];
}

interface H2Result {
  readonly frames: { type: number; flags: number; stream: number; payload: Buffer }[];
  readonly closed: boolean;
}

function parseFrames(buf: Buffer): H2Result['frames'] {
  const frames: H2Result['frames'] = [];
  let off = 0;
  while (off + 9 <= buf.length) {
    const len = buf.readUIntBE(off, 3);
    if (off + 9 + len > buf.length) break;
    frames.push({
      type: buf[off + 3] ?? 0,
      flags: buf[off + 4] ?? 0,
      stream: buf.readUInt32BE(off + 5) & 0x7fffffff,
      payload: buf.subarray(off + 9, off + 9 + len),
    });
    off += 9 + len;
  }
  return frames;
}

/**
 * Writes an HTTP/2 client conversation and parses the server's frames until the server closes,
 * `until` holds for the frames so far (then a short grace for more), or `ms` passes.
 */
function h2Exchange(
  port: number,
  bytes: Buffer,
  until: (f: H2Result['frames']) => boolean,
  ms = 3000,
): Promise<H2Result> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let buf = Buffer.alloc(0);
    let closed = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ frames: parseFrames(buf), closed });
    };
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (until(parseFrames(buf))) setTimeout(finish, 50);
    });
    s.on('error', () => {});
    const timer = setTimeout(finish, ms);
    s.on('close', () => {
      closed = true;
      finish();
    });
  });
}

const resetOrGoaway = (f: H2Result['frames']): boolean =>
  f.some((x) => x.type === 3 || x.type === 7);

const RST_STREAM = 3;
const GOAWAY = 7;
const PROTOCOL_ERROR = 1;

function rstCode(r: H2Result, stream: number): number | undefined {
  const f = r.frames.find((x) => x.type === RST_STREAM && x.stream === stream);
  return f ? f.payload.readUInt32BE(0) : undefined;
}

function goawayCode(r: H2Result): number | undefined {
  const f = r.frames.find((x) => x.type === GOAWAY);
  return f ? f.payload.readUInt32BE(4) : undefined;
}

interface H2Case {
  readonly name: string;
  readonly bytes: Buffer;
  readonly expect: 'rst' | 'goaway';
  readonly port?: () => number;
}

const H2_CASES: H2Case[] = [
  {
    name: 'upper-case header name',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, END_STREAM | END_HEADERS, 1, hpack(requestFields([['X-Upper', 'v']]))),
    ]),
    expect: 'rst',
  },
  {
    name: 'missing :path',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(
        1,
        END_STREAM | END_HEADERS,
        1,
        hpack([
          [':method', 'GET'],
          [':scheme', 'http'],
          [':authority', 'svc'],
        ]),
      ),
    ]),
    expect: 'rst',
  },
  {
    name: 'connection-specific header (connection: keep-alive)',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, END_STREAM | END_HEADERS, 1, hpack(requestFields([['connection', 'keep-alive']]))),
    ]),
    expect: 'rst',
  },
  {
    name: 'te other than trailers',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, END_STREAM | END_HEADERS, 1, hpack(requestFields([['te', 'gzip']]))),
    ]),
    expect: 'rst',
  },
  {
    name: 'pseudo-header after a regular header',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(
        1,
        END_STREAM | END_HEADERS,
        1,
        hpack([
          [':method', 'GET'],
          ['x-a', 'b'],
          [':path', '/'],
          [':scheme', 'http'],
          [':authority', 'svc'],
        ]),
      ),
    ]),
    expect: 'rst',
  },
  {
    name: 'content-length larger than the DATA sent',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(
        1,
        END_HEADERS,
        1,
        hpack([
          [':method', 'POST'],
          [':scheme', 'http'],
          [':authority', 'svc'],
          [':path', '/'],
          ['content-length', '10'],
        ]),
      ),
      frame(0, END_STREAM, 1, Buffer.from('abc')),
    ]),
    expect: 'rst',
  },
  {
    name: 'DATA on stream 0',
    bytes: Buffer.concat([PREFACE, SETTINGS, frame(0, 0, 0, Buffer.from('x'))]),
    expect: 'goaway',
  },
  {
    name: 'even (server-initiated) stream id from the client',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, END_STREAM | END_HEADERS, 2, hpack(requestFields())),
    ]),
    expect: 'goaway',
  },
  {
    name: 'frame larger than SETTINGS_MAX_FRAME_SIZE',
    bytes: Buffer.concat([PREFACE, SETTINGS, frame(0, 0, 1, Buffer.alloc(20_000))]),
    expect: 'goaway',
  },
  {
    name: 'HEADERS without END_HEADERS followed by DATA',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, 0, 1, hpack(requestFields())),
      frame(0, END_STREAM, 1, Buffer.from('x')),
    ]),
    expect: 'goaway',
  },
  {
    name: 'garbage HPACK block',
    bytes: Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, END_STREAM | END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])),
    ]),
    expect: 'goaway',
  },
  {
    name: 'HTTP/1.1 bytes on an HTTP2-only listener',
    bytes: Buffer.from(`GET / HTTP/1.1\r\n${H}\r\n`),
    expect: 'goaway',
    port: () => h2only.port,
  },
  {
    name: 'broken preface on an HTTP2-only listener',
    bytes: Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'), SETTINGS]),
    expect: 'goaway',
    port: () => h2only.port,
  },
];

for (const c of H2_CASES) {
  test(`bad input (HTTP/2): ${c.name} → ${c.expect === 'rst' ? 'RST_STREAM PROTOCOL_ERROR' : 'GOAWAY / close'}`, async () => {
    backend.requests.length = 0;
    const r = await h2Exchange(c.port?.() ?? proxy.port, c.bytes, resetOrGoaway);
    if (c.expect === 'rst') {
      const code = rstCode(r, 1);
      const ga = goawayCode(r);
      assert.ok(
        code === PROTOCOL_ERROR || ga === PROTOCOL_ERROR,
        `frames: ${JSON.stringify(r.frames.map((f) => [f.type, f.stream]))}`,
      );
    } else {
      assert.ok(
        goawayCode(r) !== undefined || (r.closed && r.frames.length <= 2),
        `frames: ${JSON.stringify(r.frames.map((f) => [f.type, f.stream]))}`,
      );
      if (goawayCode(r) !== undefined) assert.notEqual(goawayCode(r), 0);
    }
    await delay(30);
    assert.ok(
      backend.requests.every((x) => !x.complete),
      'the backend saw a complete request',
    );
  });
}

test('bad input (HTTP/2): a valid request on the same connection after a stream error still works', async () => {
  backend.requests.length = 0;
  const r = await h2Exchange(
    proxy.port,
    Buffer.concat([
      PREFACE,
      SETTINGS,
      frame(1, END_STREAM | END_HEADERS, 1, hpack(requestFields([['X-Upper', 'v']]))),
      frame(1, END_STREAM | END_HEADERS, 3, hpack(requestFields([], '/fine'))),
    ]),
    (f) => f.some((x) => x.type === 0 && x.stream === 3 && (x.flags & END_STREAM) !== 0),
  );
  assert.equal(rstCode(r, 1), PROTOCOL_ERROR);
  assert.ok(
    r.frames.some((f) => f.type === 1 && f.stream === 3),
    'stream 3 got response headers',
  );
  assert.equal(backend.requests.length, 1);
  assert.equal(backend.requests[0]?.url, '/fine');
});

test('bad input: preface-like bytes that are not HTTP/2 on an AUTO listener go to HTTP/1.1 → 400', async () => {
  backend.requests.length = 0;
  const raw = await rawExchange(proxy.port, 'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n');
  assert.ok(statusOf(raw) === 400 || raw === '', `response: ${JSON.stringify(raw.slice(0, 80))}`);
  assert.equal(backend.requests.length, 0);
});
