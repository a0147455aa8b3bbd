// The downstream HTTP/1.1 server codec (src/http/http1-server.ts) on its own: the request parser
// fed whole and byte at a time (heads, bodies, chunked bodies with extensions and trailers,
// pipelined messages, the errors with Envoy's statuses and details), and the per-connection
// codec on real sockets with a fake handler (response framing, keep-alive rules for HTTP/1.0 and
// 1.1, one socket write for a small response, pipelining, request body backpressure, Upgrade
// hand-over, timeouts, max requests per connection, drain).
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { H1Downstream } from '../src/http/http1-server.js';
import {
  Http1RequestError,
  Http1RequestParser,
  Http1ServerConnection,
  ParseEvent,
  type H1RequestHead,
  type Http1ServerHandler,
  type Http1ServerSettings,
} from '../src/http/http1-server.js';
import type { HeaderMap } from '../src/http/headers.js';

// ---- The parser ----

interface Parsed {
  heads: H1RequestHead[];
  bodies: string[];
  completes: number;
}

/** Feeds `input` in pieces of `step` bytes (0: whole), resetting after each complete message. */
function parse(input: string | Buffer, step = 0, max = 60 * 1024): Parsed {
  const out: Parsed = { heads: [], bodies: [], completes: 0 };
  let body: Buffer[] = [];
  const parser = new Http1RequestParser(max, (c) => body.push(Buffer.from(c)));
  const data = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const pieces: Buffer[] = [];
  if (step === 0) pieces.push(data);
  else for (let i = 0; i < data.length; i += step) pieces.push(data.subarray(i, i + step));
  for (const piece of pieces) {
    let i = 0;
    while (i < piece.length) {
      i = parser.execute(piece, i);
      if (parser.event === ParseEvent.Head) {
        out.heads.push(parser.head as H1RequestHead);
        if (parser.done) {
          out.bodies.push('');
          out.completes++;
          parser.reset();
        }
      } else if (parser.event === ParseEvent.Complete) {
        out.bodies.push(Buffer.concat(body).toString('latin1'));
        body = [];
        out.completes++;
        parser.reset();
      }
    }
  }
  return out;
}

/** Parses whole, byte at a time and 7 bytes at a time: all three must agree. */
function parseAll(input: string): Parsed {
  const whole = parse(input);
  for (const step of [1, 7]) {
    const p = parse(input, step);
    assert.deepEqual(p.bodies, whole.bodies, `bodies fed ${step} bytes at a time`);
    assert.deepEqual(
      p.heads.map((h) => [h.method, h.url, h.headers]),
      whole.heads.map((h) => [h.method, h.url, h.headers]),
    );
  }
  return whole;
}

function parseError(input: string, step = 0, max?: number): Http1RequestError {
  try {
    parse(input, step, max);
  } catch (err) {
    if (err instanceof Http1RequestError) return err;
    throw err;
  }
  assert.fail(`no error for ${JSON.stringify(input.slice(0, 60))}`);
}

test('parser: a head with repeated fields joined like Node, keep-alive and expect rules', () => {
  const p = parseAll(
    'GET /a?b=1 HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\nx-a:  2 \r\nSet-Cookie: a\r\n' +
      'Set-Cookie: b\r\nCookie: c=1\r\nCookie: d=2\r\nExpect: 100-continue\r\n\r\n',
  );
  const h = p.heads[0] as H1RequestHead;
  assert.equal(h.method, 'GET');
  assert.equal(h.url, '/a?b=1');
  assert.equal(h.httpVersion, '1.1');
  assert.deepEqual(h.headers, {
    host: 'svc',
    'x-a': '1, 2',
    'set-cookie': ['a', 'b'],
    cookie: 'c=1; d=2',
    expect: '100-continue',
  });
  assert.equal(h.headerCount, 8);
  assert.equal(h.hostCount, 1);
  assert.equal(h.keepAlive, true);
  assert.equal(h.expectContinue, true);
  assert.equal(h.upgrade, false);
  assert.equal(p.completes, 1);

  const keep = (head: string): boolean => (parse(head).heads[0] as H1RequestHead).keepAlive;
  assert.equal(keep('GET / HTTP/1.1\r\nConnection: close\r\n\r\n'), false);
  assert.equal(keep('GET / HTTP/1.0\r\n\r\n'), false);
  assert.equal(keep('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n'), true);
  assert.equal(keep('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n'), false);
  assert.equal(
    (parse('GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n').heads[0] as H1RequestHead)
      .expectContinue,
    false,
  );
});

test('parser: Content-Length and chunked bodies, extensions and trailers, whole or byte by byte', () => {
  const p = parseAll(
    'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
      'POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n' +
      '\r\nGET /z HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  assert.deepEqual(
    p.heads.map((h) => h.url),
    ['/x', '/y', '/z'],
  );
  assert.deepEqual(p.bodies, ['hello', 'hello world!', '']);
  assert.equal(p.completes, 3);
  assert.equal((p.heads[1] as H1RequestHead).chunked, true);
  assert.equal((p.heads[0] as H1RequestHead).contentLength, 5);
});

test('parser: execute stops at the end of a message; the rest is the next request', () => {
  const parser = new Http1RequestParser(1024, () => {});
  const data = Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
  const end = parser.execute(data, 0);
  assert.equal(parser.event, ParseEvent.Head);
  assert.ok(parser.done);
  assert.equal(data.toString('latin1', end, end + 6), 'GET /2');
  assert.equal(parser.execute(data, end), end, 'nothing more before reset()');
  parser.reset();
  assert.equal(parser.execute(data, end), data.length);
  assert.equal(parser.head?.url, '/2');
});

test('parser: CONNECT and Upgrade heads stop the parser (the rest belongs to the tunnel)', () => {
  const connect = parse('CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\n');
  assert.equal(connect.heads[0]?.upgrade, true);
  const ws = parse(
    'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  assert.equal(ws.heads[0]?.upgrade, true);
  // An Upgrade with a body is an ordinary request (llhttp); so is Upgrade without the token.
  assert.equal(
    parse(
      'POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 1\r\n\r\nA',
    ).heads[0]?.upgrade,
    false,
  );
  assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\n').heads[0]?.upgrade, false);
});

test('parser: refused input gets the status and details the connection manager answers with', () => {
  const post = (h: string, body = ''): string => `POST / HTTP/1.1\r\nHost: a\r\n${h}\r\n${body}`;
  const cases: [string, number, string][] = [
    ['G@T / HTTP/1.1\r\n\r\n', 400, 'http1.invalid_method'],
    ['FOO / HTTP/1.1\r\n\r\n', 400, 'http1.invalid_method'],
    ['get / HTTP/1.1\r\n\r\n', 400, 'http1.invalid_method'],
    ['GET /a\x01b HTTP/1.1\r\n\r\n', 400, 'http1.invalid_url'],
    ['GET  / HTTP/1.1\r\n\r\n', 400, 'http1.invalid_url'],
    ['GET / HTTP/1.2\r\n\r\n', 400, 'http1.codec_error'],
    ['GET / HTXP/1.1\r\n\r\n', 400, 'http1.codec_error'],
    ['GET / HTTP/1.1\nHost: a\n\n', 400, 'http1.invalid_characters'],
    ['GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n', 400, 'http1.invalid_characters'],
    ['GET / HTTP/1.1\r\nX-A: b\0c\r\n\r\n', 400, 'http1.invalid_characters'],
    ['GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n', 400, 'http1.invalid_characters'],
    ['GET / HTTP/1.1\r\nX-A : b\r\n\r\n', 400, 'http1.invalid_characters'],
    ['GET / HTTP/1.1\r\n: b\r\n\r\n', 400, 'http1.invalid_characters'],
    [post('Content-Length: 1\r\nContent-Length: 1\r\n'), 400, 'http1.content_length_not_allowed'],
    [post('Content-Length: 1, 1\r\n'), 400, 'http1.invalid_content_length'],
    [post('Content-Length: -1\r\n'), 400, 'http1.invalid_content_length'],
    [post('Content-Length: 99999999999999999999\r\n'), 400, 'http1.invalid_content_length'],
    [
      post('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n'),
      400,
      'http1.content_length_and_chunked_not_allowed',
    ],
    [
      post('Transfer-Encoding: chunked\r\nContent-Length: 3\r\n'),
      400,
      'http1.content_length_and_chunked_not_allowed',
    ],
    [post('Transfer-Encoding: gzip\r\n'), 501, 'http1.invalid_transfer_encoding'],
    [post('Transfer-Encoding: chunked\r\n', 'zz\r\n'), 400, 'http1.invalid_chunk'],
    [post('Transfer-Encoding: chunked\r\n', '3\r\nabcX'), 400, 'http1.invalid_chunk'],
    [post('Transfer-Encoding: chunked\r\n', '3\nabc'), 400, 'http1.invalid_chunk'],
    [post('Transfer-Encoding: chunked\r\n', '3;\x01\r\n'), 400, 'http1.invalid_chunk'],
    [post('Transfer-Encoding: chunked\r\n', 'FFFFFFFFFFFFFFFFFF\r\n'), 400, 'http1.invalid_chunk'],
    [post('Transfer-Encoding: chunked\r\n', '0\r\nX\r\n\r\n'), 400, 'http1.invalid_characters'],
    [`GET / HTTP/1.1\r\nX-A: ${'a'.repeat(2000)}\r\n\r\n`, 431, 'http1.headers_too_large'],
    [Buffer.from([0x16, 0x03, 0x01, 0x00]).toString('latin1'), 400, 'http1.invalid_method'],
  ];
  for (const [input, status, details] of cases) {
    for (const step of [0, 1]) {
      const err = parseError(input, step, 1024);
      assert.deepEqual(
        [err.status, err.details],
        [status, details],
        `${JSON.stringify(input.slice(0, 50))} fed ${step || 'whole'}`,
      );
    }
  }
});

test('parser: a head over the limit fails before its end arrives', () => {
  const parser = new Http1RequestParser(1024, () => {});
  parser.execute(Buffer.from(`GET /${'a'.repeat(600)}`), 0);
  assert.throws(
    () => parser.execute(Buffer.from('b'.repeat(600)), 0),
    (e: unknown) => e instanceof Http1RequestError && e.status === 431,
  );
});

// ---- The connection, on real sockets ----

const SETTINGS: Http1ServerSettings = {
  maxHeaderBytes: 60 * 1024,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 0,
  idleTimeoutMs: 60_000,
  maxRequestsPerConnection: 0,
};

interface Harness {
  readonly port: number;
  readonly conns: Http1ServerConnection<null>[];
  readonly requests: H1Downstream[];
  readonly errors: Http1RequestError[];
  readonly timeouts: H1Downstream[];
  readonly upgrades: { head: H1RequestHead; rest: Buffer; socket: net.Socket }[];
  close(): Promise<void>;
}

type OnRequest = (ds: H1Downstream, conn: Http1ServerConnection<null>) => void;

/** Echoes the method and URL (and the body, once read) with content-length. */
const echo: OnRequest = (ds) => {
  const chunks: Buffer[] = [];
  const reply = (): void => {
    const body = Buffer.from(
      `${ds.head.method} ${ds.head.url} ${Buffer.concat(chunks).toString()}`.trim(),
    );
    ds.respond(200, { 'content-length': String(body.length) }, false);
    ds.sink.write(body);
    ds.finish();
  };
  if (!ds.body) reply();
  else {
    ds.body.on('data', (c: Buffer) => chunks.push(c));
    ds.body.on('end', reply);
  }
};

async function serve(
  onRequest: OnRequest = echo,
  settings: Partial<Http1ServerSettings> = {},
): Promise<Harness> {
  const h = {
    conns: [] as Http1ServerConnection<null>[],
    requests: [] as H1Downstream[],
    errors: [] as Http1RequestError[],
    timeouts: [] as H1Downstream[],
    upgrades: [] as Harness['upgrades'],
  };
  const handler: Http1ServerHandler<null> = {
    onRequest: (conn, ds) => {
      h.requests.push(ds);
      onRequest(ds, conn);
    },
    onUpgrade: (conn, head, rest) => {
      h.upgrades.push({ head, rest, socket: conn.socket });
      conn.socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    },
    onCodecError: (conn, _ds, err) => {
      h.errors.push(err);
      conn.socket.end(`HTTP/1.1 ${err.status} x\r\nconnection: close\r\n\r\n`);
    },
    onRequestTimeout: (_conn, ds) => {
      h.timeouts.push(ds);
      ds.closeConnection();
      ds.respond(408, { 'content-length': '0' }, true);
    },
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    h.conns.push(new Http1ServerConnection(socket, { ...SETTINGS, ...settings }, handler, null));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    ...h,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A raw client: what the server sent until it closed (or `ms` passed). */
function exchange(
  port: number,
  data: string | Buffer | (string | Buffer)[],
  ms = 2000,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      for (const d of Array.isArray(data) ? data : [data]) s.write(d);
    });
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('end', () => (closed = true));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
  });
}

const responses = (text: string): string[] =>
  text.split(/(?=HTTP\/1\.1 \d{3} )/).filter((x) => x.length > 0);

test('connection: keep-alive for HTTP/1.1, close for 1.0 unless asked, close on connection: close', async () => {
  const h = await serve();
  try {
    const r11 = await exchange(h.port, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n', 300);
    assert.match(r11.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(r11.text, /connection:/i);
    assert.match(r11.text, /\r\ndate: \w{3}, \d\d \w{3} \d{4} /);
    assert.equal(r11.closed, false, 'HTTP/1.1 stays open');

    const r10 = await exchange(h.port, 'GET /b HTTP/1.0\r\n\r\n');
    assert.match(r10.text, /\r\nconnection: close\r\n/);
    assert.ok(r10.closed);

    const ka = await exchange(h.port, 'GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 300);
    assert.match(ka.text, /\r\nconnection: keep-alive\r\n/);
    assert.equal(ka.closed, false);

    const close = await exchange(h.port, 'GET /d HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.match(close.text, /\r\nconnection: close\r\n\r\nGET \/d$/);
    assert.ok(close.closed);
  } finally {
    await h.close();
  }
});

test('connection: framing: chunked with trailers, content-length: 0, HEAD and 204, close-delimited for HTTP/1.0', async () => {
  const h = await serve((ds) => {
    const url = ds.head.url;
    if (url === '/chunked') {
      ds.respond(200, { 'x-a': ['1', '2'] }, false);
      ds.sink.write(Buffer.from('hello '));
      setTimeout(() => {
        ds.sink.write(Buffer.from('world'));
        ds.finish({ 'x-checksum': 'abc', 'bad name': 'dropped' });
      }, 20);
    } else if (url === '/empty') ds.respond(200, {}, true);
    else if (url === '/204') ds.respond(204, {}, true);
    else if (url === '/head') {
      ds.respond(200, { 'content-length': '10' }, false);
      ds.sink.write(Buffer.from('not sent'));
      ds.finish();
    } else {
      ds.respond(200, {}, false);
      ds.sink.write(Buffer.from('until the end'));
      ds.finish({ 'x-t': 'dropped without chunked' });
    }
  });
  try {
    const [chunked, empty, n204, head] = responses(
      (
        await exchange(
          h.port,
          'GET /chunked HTTP/1.1\r\n\r\nGET /empty HTTP/1.1\r\n\r\n' +
            'GET /204 HTTP/1.1\r\n\r\nHEAD /head HTTP/1.1\r\n\r\n',
          500,
        )
      ).text,
    );
    assert.match(chunked ?? '', /\r\nx-a: 1\r\nx-a: 2\r\n/);
    assert.match(chunked ?? '', /\r\ntransfer-encoding: chunked\r\n/);
    assert.match(
      chunked ?? '',
      /\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\n\r\n$/,
    );
    assert.match(empty ?? '', /\r\ncontent-length: 0\r\n/);
    assert.doesNotMatch(n204 ?? '', /content-length|transfer-encoding/);
    assert.match(head ?? '', /\r\ncontent-length: 10\r\n(.*\r\n)*\r\n$/);
    const eof = await exchange(h.port, 'GET /eof HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.match(eof.text, /\r\nconnection: close\r\n\r\nuntil the end$/);
    assert.doesNotMatch(eof.text, /content-length|transfer-encoding/);
    assert.ok(eof.closed, 'a close-delimited body ends with the connection');
  } finally {
    await h.close();
  }
});

test('connection: response headers node:http would refuse throw before anything is written', async () => {
  let thrown: unknown;
  const h = await serve((ds) => {
    try {
      ds.respond(200, { 'x-a': 'a\r\nx-injected: 1' }, true);
    } catch (err) {
      thrown = err;
    }
    ds.respond(200, { 'content-length': '2', 'x-b': 'ok' }, false);
    ds.sink.write(Buffer.from('ok'));
    ds.finish();
  });
  try {
    const r = await exchange(h.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 300);
    assert.ok(thrown instanceof TypeError);
    assert.doesNotMatch(r.text, /injected/);
    assert.match(r.text, /\r\nx-b: ok\r\n/);
  } finally {
    await h.close();
  }
});

test('connection: a small response leaves in one socket write', async () => {
  let writesAfterFinish = -1;
  const h = await serve((ds, conn) => {
    const socket = conn.socket;
    let writes = 0;
    const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
    socket.write = (...a: unknown[]) => {
      writes++;
      return write(...a);
    };
    // As the router does it: head, then the upstream body on a later tick, then the end.
    ds.respond(200, { 'content-length': '1024', 'content-type': 'text/plain' }, false);
    process.nextTick(() => {
      ds.sink.write(Buffer.alloc(1024, 97));
      process.nextTick(() => {
        ds.finish();
        setTimeout(() => (writesAfterFinish = writes), 20);
      });
    });
  });
  try {
    const r = await exchange(h.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 200);
    assert.match(r.text, /\r\n\r\na{1024}$/);
    assert.equal(writesAfterFinish, 1);
  } finally {
    await h.close();
  }
});

test('connection: pipelined requests are read one at a time, answered in order', async () => {
  const order: string[] = [];
  const h = await serve((ds) => {
    order.push(`start ${ds.head.url}`);
    // The first answers last: the second must not even be read before.
    setTimeout(
      () => {
        order.push(`end ${ds.head.url}`);
        echo(ds, h.conns[0] as Http1ServerConnection<null>);
      },
      ds.head.url === '/1' ? 100 : 0,
    );
  });
  try {
    const r = await exchange(
      h.port,
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc' +
        'GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(
      responses(r.text).map((x) => x.slice(x.indexOf('\r\n\r\n') + 4)),
      ['GET /1', 'POST /2 abc', 'GET /3'],
    );
    assert.deepEqual(order, ['start /1', 'end /1', 'start /2', 'end /2', 'start /3', 'end /3']);
    assert.ok(r.closed);
  } finally {
    await h.close();
  }
});

test('connection: a bad request pipelined behind a good one gets its error after the response', async () => {
  const h = await serve();
  try {
    const r = await exchange(h.port, 'GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/9.9\r\n\r\n');
    assert.deepEqual(
      responses(r.text).map((x) => x.slice(0, 12)),
      ['HTTP/1.1 200', 'HTTP/1.1 400'],
    );
    assert.equal(h.errors[0]?.details, 'http1.codec_error');
  } finally {
    await h.close();
  }
});

test('connection: a request body nobody reads pauses the socket (bounded memory), then streams', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  let received = 0;
  const h = await serve((ds) => {
    void gate.then(() => {
      ds.body?.on('data', (c: Buffer) => (received += c.length));
      ds.body?.on('end', () => {
        ds.respond(200, { 'content-length': String(String(received).length) }, false);
        ds.sink.write(Buffer.from(String(received)));
        ds.finish();
      });
    });
  });
  const SIZE = 64 * 1024 * 1024;
  try {
    const client = net.connect(h.port, '127.0.0.1');
    client.on('error', () => {});
    let pushed = 0;
    const block = Buffer.alloc(64 * 1024, 120);
    const pump = (): void => {
      while (pushed < SIZE) {
        pushed += block.length;
        if (!client.write(block)) {
          client.once('drain', pump);
          return;
        }
      }
    };
    const response = new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (d: Buffer) => {
        text += d.toString();
        if (/\r\n\r\n\d+$/.test(text) && text.endsWith(String(SIZE))) resolve(text);
      });
    });
    client.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${SIZE}\r\n\r\n`);
    pump();
    await new Promise((r) => setTimeout(r, 400));
    const conn = h.conns[0] as Http1ServerConnection<null>;
    assert.ok(conn.socket.isPaused(), 'the socket is paused while the body is not read');
    const readWhilePaused = conn.socket.bytesRead;
    assert.ok(readWhilePaused < 4 * 1024 * 1024, `read ${readWhilePaused} bytes of an unread body`);
    assert.ok(pushed < 32 * 1024 * 1024, `the client pushed ${pushed} bytes`);
    release();
    assert.match(await response, new RegExp(`\r\n\r\n${SIZE}$`));
    assert.equal(received, SIZE);
    client.destroy();
  } finally {
    await h.close();
  }
});

test('connection: Upgrade hands the socket over with the bytes read after the head', async () => {
  const h = await serve();
  try {
    const r = await exchange(h.port, [
      'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframe-1',
    ]);
    assert.match(r.text, /^HTTP\/1\.1 101 /);
    assert.equal(h.upgrades[0]?.head.url, '/ws');
    assert.equal(h.upgrades[0]?.rest.toString(), 'frame-1');
    assert.equal(h.requests.length, 0);
  } finally {
    await h.close();
  }
});

test('connection: request headers timeout (408), request_timeout, idle timeout', async () => {
  const h = await serve(
    (ds) => {
      if (ds.head.url !== '/slow-body') echo(ds, h.conns[0] as Http1ServerConnection<null>);
    },
    { headersTimeoutMs: 150, requestTimeoutMs: 200, idleTimeoutMs: 150 },
  );
  try {
    const t0 = performance.now();
    const slowHead = await exchange(h.port, 'GET / HTTP/1.1\r\nHost: a\r\n', 3000);
    assert.match(slowHead.text, /^HTTP\/1\.1 408 /);
    assert.equal(h.errors[0]?.details, 'request_header_timeout');
    assert.ok(performance.now() - t0 < 2500);

    const slowBody = await exchange(
      h.port,
      'POST /slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc',
      3000,
    );
    assert.match(slowBody.text, /^HTTP\/1\.1 408 .*\r\nconnection: close\r\n/s);
    assert.equal(h.timeouts.length, 1);

    const idle = await exchange(h.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', 3000);
    assert.match(idle.text, /^HTTP\/1\.1 200 /);
    assert.ok(idle.closed, 'closed after the idle timeout');

    const silent = await exchange(h.port, [], 3000);
    assert.equal(silent.text, '', 'a connection that sends nothing is closed silently');
    assert.ok(silent.closed);
  } finally {
    await h.close();
  }
});

test('connection: max requests per connection closes after the last; drain closes idle and in-flight', async () => {
  const h = await serve(undefined, { maxRequestsPerConnection: 2 });
  try {
    const r = await exchange(
      h.port,
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    const [first, second, third] = responses(r.text);
    assert.doesNotMatch(first ?? '', /connection: close/);
    assert.match(second ?? '', /\r\nconnection: close\r\n/);
    assert.equal(third, undefined);
    assert.ok(r.closed);
  } finally {
    await h.close();
  }

  let pending: H1Downstream | undefined;
  const d = await serve((ds) => {
    if (ds.head.url === '/slow') pending = ds;
    else echo(ds, d.conns[0] as Http1ServerConnection<null>);
  });
  try {
    const idleClient = net.connect(d.port, '127.0.0.1');
    const idleClosed = new Promise<void>((r) => idleClient.on('close', () => r()));
    idleClient.on('error', () => {});
    const busy = exchange(d.port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n', 3000);
    while (!pending || d.conns.length < 2) await new Promise((r) => setTimeout(r, 10));
    for (const c of d.conns) c.drain();
    await idleClosed;
    const ds = pending;
    ds.respond(200, { 'content-length': '4' }, false);
    ds.sink.write(Buffer.from('done'));
    ds.finish();
    const r = await busy;
    assert.match(r.text, /\r\nconnection: close\r\n\r\ndone$/);
    assert.ok(r.closed);
  } finally {
    await d.close();
  }
});

test('connection: a client that goes away mid-request aborts the stream', async () => {
  let aborted = 0;
  let bodyClosed = false;
  const h = await serve((ds) => {
    ds.onAbort(() => aborted++);
    ds.body?.on('close', () => (bodyClosed = true));
    ds.body?.resume();
  });
  try {
    const s = net.connect(h.port, '127.0.0.1', () =>
      s.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc'),
    );
    s.on('error', () => {});
    while (h.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    s.destroy();
    const deadline = Date.now() + 2000;
    while ((aborted === 0 || !bodyClosed) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(aborted, 1);
    assert.ok(bodyClosed);
    const ds = h.requests[0] as H1Downstream;
    assert.equal(ds.aborted, true);
    assert.equal(ds.requestReceived, false);
  } finally {
    await h.close();
  }
});

test('connection: headers handed to respond() keep their order; date is kept when given', async () => {
  const h = await serve((ds) => {
    const headers: HeaderMap = { b: '1', date: 'Mon, 01 Jan 2024 00:00:00 GMT', a: '2' };
    ds.respond(404, headers, true);
  });
  try {
    const r = await exchange(h.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 300);
    assert.match(
      r.text,
      /^HTTP\/1\.1 404 Not Found\r\nb: 1\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\na: 2\r\ncontent-length: 0\r\n\r\n$/,
    );
  } finally {
    await h.close();
  }
});

test('connection: a large close-delimited response reaches a slow reader whole before the close', async () => {
  const SIZE = 16 * 1024 * 1024;
  const h = await serve((ds) => {
    ds.respond(200, {}, false);
    // Everything at once: most of it still waits in the socket's buffer when the response ends.
    const block = Buffer.alloc(64 * 1024, 98);
    for (let sent = 0; sent < SIZE; sent += block.length) ds.sink.write(block);
    ds.finish();
  });
  try {
    const got = await new Promise<{ body: number; closed: boolean }>((resolve) => {
      const s = net.connect(h.port, '127.0.0.1', () => s.write('GET /big HTTP/1.0\r\n\r\n'));
      s.on('error', () => {});
      let total = 0;
      let headEnd = -1;
      let first = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        if (headEnd < 0) {
          first = Buffer.concat([first, c]);
          headEnd = first.indexOf('\r\n\r\n');
          if (headEnd >= 0) total = first.length - headEnd - 4;
        } else total += c.length;
      });
      // A slow reader: nothing read for longer than the close grace period.
      s.pause();
      setTimeout(() => s.resume(), 1500);
      s.on('close', () => resolve({ body: total, closed: true }));
    });
    assert.equal(got.body, SIZE);
  } finally {
    await h.close();
  }
});
