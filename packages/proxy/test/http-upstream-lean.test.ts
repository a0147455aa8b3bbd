// The router over the lean HTTP/1.1 upstream path (pool-http1.ts): a response without a body
// reaches the router with endStream and no body object, so a retried one leaves its connection
// to the pool when the request is complete, and resets it when the request body is still coming.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { RetryPolicy } from '@trellis/envoy';
import { eventually, request, simpleRoutes, staticCluster } from './http-fixtures.js';
import { ManualClock, startTimedProxy, type TimedProxy } from './retry-fixtures.js';

interface RawConn {
  data: string;
  closed: boolean;
}

/** A TCP backend: `answer` sees each connection's bytes so far and writes responses. */
async function rawBackend(
  answer: (socket: net.Socket, conn: RawConn, index: number) => void,
): Promise<{ port: number; conns: RawConn[]; close: () => Promise<void> }> {
  const conns: RawConn[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const conn: RawConn = { data: '', closed: false };
    const index = conns.push(conn) - 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      conn.closed = true;
      sockets.delete(socket);
    });
    socket.on('data', (d: Buffer) => {
      conn.data += d.toString('latin1');
      answer(socket, conn, index);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    conns,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const RETRY_503: RetryPolicy = {
  retryOn: 'retriable-status-codes',
  numRetries: 1,
  retriableStatusCodes: [503],
};

async function proxyTo(port: number, clock: ManualClock): Promise<TimedProxy> {
  return startTimedProxy({
    timers: clock,
    random: () => 0,
    clusters: [staticCluster('svc', [port])],
    routes: [simpleRoutes('svc', { retryPolicy: RETRY_503 })],
  });
}

/** Runs the back-off timers as they appear until `done` settles. */
async function driveBackoff<T>(clock: ManualClock, done: Promise<T>): Promise<T> {
  let settled = false;
  void done.finally(() => (settled = true)).catch(() => {});
  while (!settled) {
    clock.advance(0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return done;
}

const EMPTY_503 = 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n';
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

test('a retried response without a body leaves its connection to the pool for the retry', async () => {
  let answered = 0;
  const perConn: number[] = [];
  const b = await rawBackend((socket, conn, index) => {
    const seen = conn.data.split('\r\n\r\n').length - 1;
    for (let k = perConn[index] ?? 0; k < seen; k++, answered++)
      socket.write(answered === 0 ? EMPTY_503 : OK);
    perConn[index] = seen;
  });
  const clock = new ManualClock();
  const proxy = await proxyTo(b.port, clock);
  try {
    const r = await driveBackoff(clock, request(proxy.port, { path: '/' }));
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(b.conns.length, 1, 'the retry reused the connection of the 503');
    assert.equal(b.conns[0]?.data.split('GET / HTTP/1.1').length, 3);
    assert.equal(proxy.stats.get('cluster.svc.upstream_rq_retry'), 1);
    assert.equal(proxy.stats.get('cluster.svc.upstream_rq_tx_reset') ?? 0, 0);
  } finally {
    await proxy.close();
    await b.close();
  }
});

test('a bodiless retried response before the request body ended resets that connection', async () => {
  const b = await rawBackend((socket, conn, index) => {
    // The first connection answers as soon as the head is in; the second after the whole body.
    if (index === 0 && conn.data.includes('\r\n\r\n') && !conn.data.includes('answered'))
      socket.write(EMPTY_503, () => (conn.data += 'answered'));
    else if (index > 0 && conn.data.endsWith('0\r\n\r\n')) socket.write(OK);
  });
  const clock = new ManualClock();
  const proxy = await proxyTo(b.port, clock);
  try {
    const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/', agent: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write('first ');
      // The rest of the body only once the first attempt's connection is gone.
      void eventually(() => b.conns[0]?.closed === true).then(
        () => req.end('second'),
        (err: unknown) => {
          req.destroy();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    const r = await driveBackoff(clock, done);
    assert.equal(r.status, 200);
    assert.equal(b.conns.length, 2);
    assert.ok(b.conns[1]?.data.includes('first '), 'the body was replayed');
    assert.ok(b.conns[1]?.data.includes('second'));
  } finally {
    await proxy.close();
    await b.close();
  }
});
