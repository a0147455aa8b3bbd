// The listener filters' parsers: tls_inspector on real ClientHellos from node:tls (whole,
// byte by byte, split across records, oversized, not TLS) and http_inspector on request lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { parseClientHello } from '../src/listener/tls-inspector.js';
import { detectHttp, HTTP_INSPECT_LIMIT } from '../src/listener/http-inspector.js';
import { closeServer, listen, portOf } from './listener-fakes.js';

/** The first TLS record a node:tls client sends (its ClientHello). */
async function captureClientHello(opts: {
  servername?: string;
  ALPNProtocols?: string[];
}): Promise<Buffer> {
  let resolveHello: (b: Buffer) => void = () => {};
  const hello = new Promise<Buffer>((r) => (resolveHello = r));
  const server = await listen((s) => {
    let data = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (data.length >= 5 && data.length >= 5 + data.readUInt16BE(3)) {
        resolveHello(data);
        s.destroy();
      }
    });
    s.on('error', () => {});
  });
  const client = tlsConnect({
    port: portOf(server),
    host: '127.0.0.1',
    rejectUnauthorized: false,
    ...opts,
  });
  client.on('error', () => {});
  const b = await hello;
  client.destroy();
  await closeServer(server);
  return b;
}

test('tls_inspector: SNI and ALPN from a real ClientHello', async () => {
  const hello = await captureClientHello({
    servername: 'api.example.com',
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  assert.deepEqual(parseClientHello(hello), {
    kind: 'tls',
    serverName: 'api.example.com',
    alpn: ['h2', 'http/1.1'],
  });
  // Trailing application bytes after the hello do not matter.
  assert.equal(parseClientHello(Buffer.concat([hello, Buffer.from('xyz')])).kind, 'tls');
});

test('tls_inspector: every strict prefix of a ClientHello needs more bytes', async () => {
  const hello = await captureClientHello({ servername: 'a.cdn.example.com' });
  for (let n = 1; n < hello.length; n++) {
    assert.equal(parseClientHello(hello.subarray(0, n)).kind, 'need-more', `prefix ${n}`);
  }
  const r = parseClientHello(hello);
  assert.ok(r.kind === 'tls' && r.serverName === 'a.cdn.example.com' && r.alpn.length === 0);
});

test('tls_inspector: no SNI when the client sends none', async () => {
  const hello = await captureClientHello({});
  const r = parseClientHello(hello);
  assert.equal(r.kind, 'tls');
  assert.equal(r.kind === 'tls' ? r.serverName : 'x', undefined);
});

test('tls_inspector: a ClientHello split across two records', async () => {
  const hello = await captureClientHello({
    servername: 'api.example.com',
    ALPNProtocols: ['istio'],
  });
  const body = hello.subarray(5);
  const cut = 40;
  const rec = (payload: Buffer): Buffer => {
    const h = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    h.writeUInt16BE(payload.length, 3);
    return Buffer.concat([h, payload]);
  };
  const split = Buffer.concat([rec(body.subarray(0, cut)), rec(body.subarray(cut))]);
  assert.equal(parseClientHello(split.subarray(0, 5 + cut + 3)).kind, 'need-more');
  assert.deepEqual(parseClientHello(split), {
    kind: 'tls',
    serverName: 'api.example.com',
    alpn: ['istio'],
  });
});

test('tls_inspector: not TLS, malformed, and too large', () => {
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls');
  assert.equal(parseClientHello(Buffer.from([0x16, 0x02])).kind, 'not-tls');
  assert.equal(parseClientHello(Buffer.alloc(0)).kind, 'need-more');
  assert.equal(parseClientHello(Buffer.from([0x16])).kind, 'need-more');
  // A handshake record that is not a ClientHello (ServerHello, type 2).
  assert.equal(
    parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0, 0, 0])).kind,
    'not-tls',
  );
  // A ClientHello whose declared body is garbage.
  const garbage = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 1, 2, 3, 4]);
  assert.equal(parseClientHello(garbage).kind, 'not-tls');
  // Declares a 100 KiB ClientHello: over Envoy's 64 KiB limit.
  const big = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x90, 0x00]);
  assert.equal(parseClientHello(big).kind, 'too-large');
});

const HTTP_CASES: [string, string][] = [
  ['GET / HTTP/1.1\r\n', 'http/1.1'],
  ['GET / HTTP/1.1\n', 'http/1.1'],
  ['POST /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n', 'http/1.1'],
  ['GET / HTTP/1.0\r\n', 'http/1.0'],
  ['HEAD / HTTP/1.2\r\n', 'http/1.0'],
  ['M-SEARCH * HTTP/1.1\r\n', 'http/1.1'],
  ['CONNECT api.example.com:443 HTTP/1.1\r\n', 'http/1.1'],
  ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'h2c'],
  ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04', 'h2c'],
  ['G', 'need-more'],
  ['GET', 'need-more'],
  ['GET /index', 'need-more'],
  ['GET / HTTP/1.', 'need-more'],
  ['GET / HTTP/1.1', 'need-more'],
  ['GET / HTTP/1.1\r', 'need-more'],
  ['PRI * HTTP/2', 'need-more'],
  ['HELLO', 'not-http'],
  ['get / HTTP/1.1\r\n', 'not-http'],
  ['GET  / HTTP/1.1\r\n', 'not-http'],
  ['GET / HTTP/2.0\r\n', 'not-http'],
  ['GET / HTTP/1.1 \r\n', 'not-http'],
  ['GET / FTP/1.1\r\n', 'not-http'],
  ['PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 'not-http'],
  ['\x16\x03\x01\x02\x00', 'not-http'],
  ['SSH-2.0-OpenSSH_9.6\r\n', 'not-http'],
];

for (const [input, want] of HTTP_CASES) {
  test(`http_inspector: ${JSON.stringify(input)} → ${want}`, () => {
    const r = detectHttp(Buffer.from(input, 'latin1'));
    assert.equal(r.kind === 'http' ? r.protocol : r.kind, want);
  });
}

test('http_inspector: a request line longer than the inspection limit is not HTTP', () => {
  const line = Buffer.from(`GET /${'a'.repeat(HTTP_INSPECT_LIMIT)}`);
  assert.equal(detectHttp(line.subarray(0, HTTP_INSPECT_LIMIT - 1)).kind, 'need-more');
  assert.equal(detectHttp(line).kind, 'not-http');
});
