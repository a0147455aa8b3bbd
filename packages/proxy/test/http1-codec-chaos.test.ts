// Chaos test of the HTTP/1.1 upstream connection pool (upstream/pool-http1.ts on
// upstream/http1-codec.ts) through real in-process proxies: a raw-socket backend, over plaintext
// and TLS, misbehaves at random per request (resets before and after the head, partial heads and
// bodies, bad chunk sizes, 100-continue then reset, 101 with garbage, close-delimited and trickled
// bodies, keep-alive then close, bytes after the response, huge headers, early responses,
// silence), while concurrent clients send bodies of every framing and abort at random, retries,
// circuit breakers and timeouts are in play, and the clusters are replaced meanwhile (xDS churn).
// The proxy must survive every request (no uncaughtException / unhandledRejection), every client
// must get a well-formed response carrying its own body, or a reset, and every counter (requests,
// connections, pending, host active requests, circuit breaker resources) must return to zero.
// The PRNG is seeded: CHAOS_SEED=<n> replays a run, CHAOS_REQUESTS=<n> changes its length,
// CHAOS_SUMMARY=1 prints the outcomes by route and behaviour.
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import type { Cluster, HttpConnectionManager, Route } from '@trellis/envoy';
import { seededRandom } from '@trellis/testing';
import {
  HTTP_OPTIONS_KEY,
  delay,
  eventually,
  hcmConfig,
  proxyConfig,
  route,
  routeConfig,
  startProxy,
  staticCluster,
  vhost,
  type ProxyHarness,
} from './http-fixtures.js';
import { serverCert, upstreamTls } from './tls-fixtures.js';

const CERT = serverCert('backend.chaos');

// ---- Seeded randomness ----

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)] as T;
}

function intBetween(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

/** The body the backend sends for request `id` (the client checks it byte for byte). */
function bodyFor(id: string, len: number): Buffer {
  const unit = `<${id}>`;
  return Buffer.from(unit.repeat(Math.ceil(len / unit.length)).slice(0, len), 'latin1');
}

// ---- The misbehaving backend ----

const EMPTY = Buffer.alloc(0);

/** What the backend does with one request (named in the request's `x-chaos` header). */
/** Behaviours whose response is complete and valid (a 200 carrying bodyFor(id, len)). */
const WELL_FORMED_BEHAVIOURS = [
  'ok',
  'ok-chunked',
  'ok-close-delimited',
  'ok-trickle',
  'ok-then-close',
  'ok-extra-bytes',
  'ok-early',
  'ok-103',
  'continue-ok',
  'ok-head-then-slow-body',
] as const;
const BEHAVIOURS = [
  ...WELL_FORMED_BEHAVIOURS,
  // Broken ones.
  'reset-before-head',
  'close-before-head',
  'reset-after-head',
  'partial-head',
  'partial-body',
  'reset-mid-chunked',
  'bad-chunk-size',
  'bad-chunk-after-data',
  'continue-reset',
  '101-garbage',
  'garbage-status',
  'huge-headers',
  'cl-and-te',
  'silent',
] as const;
type Behaviour = (typeof BEHAVIOURS)[number];
const WELL_FORMED = new Set<Behaviour>(WELL_FORMED_BEHAVIOURS);

interface BackendRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
}

/** One connection's request parser: heads, then Content-Length or chunked bodies. */
class RequestReader {
  private buf: Buffer = Buffer.alloc(0);
  private state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' =
    'head';
  private remaining = 0;
  /** The connection carries a tunnel (after a 101): nothing more is parsed. */
  tunnel = false;

  constructor(
    private readonly onHead: (req: BackendRequest) => void,
    private readonly onBodyEnd: () => void,
    private readonly onError: () => void,
  ) {}

  feed(data: Buffer): void {
    if (this.tunnel) return;
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    for (;;) {
      if (this.tunnel) return;
      if (this.state === 'head') {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > 256 * 1024) this.onError();
          return;
        }
        const lines = this.buf.toString('latin1', 0, end).split('\r\n');
        this.buf = this.buf.subarray(end + 4);
        const [method = '', path = ''] = (lines[0] ?? '').split(' ');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        if (headers['transfer-encoding']?.toLowerCase().includes('chunked'))
          this.state = 'chunk-size';
        else {
          this.remaining = Number(headers['content-length'] ?? '0');
          this.state = 'length';
        }
        this.onHead({ method, path, headers });
        if (this.state === 'length' && this.remaining === 0) {
          this.state = 'head';
          this.onBodyEnd();
        }
        continue;
      }
      if (this.state === 'length') {
        const take = Math.min(this.remaining, this.buf.length);
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this.state = 'head';
        this.onBodyEnd();
        continue;
      }
      if (this.state === 'chunk-size' || this.state === 'trailers') {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = this.buf.toString('latin1', 0, nl);
        this.buf = this.buf.subarray(nl + 2);
        if (this.state === 'trailers') {
          if (line === '') {
            this.state = 'head';
            this.onBodyEnd();
          }
          continue;
        }
        const size = parseInt(line, 16);
        if (!Number.isFinite(size)) {
          this.onError();
          return;
        }
        if (size === 0) this.state = 'trailers';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
        continue;
      }
      if (this.state === 'chunk-data') {
        const take = Math.min(this.remaining, this.buf.length);
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this.state = 'chunk-crlf';
        continue;
      }
      // chunk-crlf
      if (this.buf.length < 2) return;
      this.buf = this.buf.subarray(2);
      this.state = 'chunk-size';
    }
  }
}

interface ChaosBackend {
  readonly port: number;
  /** The same backend over TLS. */
  readonly tlsPort: number;
  /** Destroys every open connection. */
  closeConnections(): void;
  close(): Promise<void>;
}

async function startChaosBackend(seed: number): Promise<ChaosBackend> {
  const rnd = seededRandom(seed ^ 0x5eed);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  /** setTimeout that never outlives the socket. */
  const later = (socket: Socket, ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!socket.destroyed) fn();
    }, ms);
    timers.add(t);
  };
  const write = (socket: Socket, data: string | Buffer): void => {
    if (!socket.destroyed && socket.writable) socket.write(data);
  };
  /** The TCP socket under each TLS socket (a reset is an RST on it). */
  const rawOf = new WeakMap<Socket, Socket>();
  const reset = (socket: Socket): void => {
    const raw = rawOf.get(socket) ?? socket;
    // Never an RST after end(): on Node 20 that leaves the shutdown request pending, and the
    // process spins at 100% CPU at its natural exit (Environment::CleanupHandles).
    if (!raw.destroyed && !raw.writableEnded && !socket.writableEnded) raw.resetAndDestroy();
    socket.destroy();
  };

  const handle = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    /** The response to send once the request body ended (when it waits for it). */
    let afterBody: (() => void) | undefined;
    const reader = new RequestReader(
      (req) => {
        const behaviour = (req.headers['x-chaos'] ?? 'ok') as Behaviour;
        const id = req.headers['x-id'] ?? '?';
        const len = Number(req.headers['x-len'] ?? '0');
        const body = bodyFor(id, len);
        const upgrade = req.headers.upgrade !== undefined;
        const respond = (): void => respondWith(socket, behaviour, req, body, upgrade, reader);
        if (behaviour === 'ok-early' || behaviour === 'continue-reset') respond();
        else {
          // Like any server: 100 Continue when asked (continue-ok sends it unasked too).
          if (req.headers.expect !== undefined || behaviour === 'continue-ok')
            write(socket, 'HTTP/1.1 100 Continue\r\n\r\n');
          afterBody = respond;
        }
      },
      () => {
        const f = afterBody;
        afterBody = undefined;
        f?.();
      },
      () => reset(socket),
    );
    socket.on('data', (d: Buffer) => reader.feed(d));
  };
  const server = net.createServer(handle);
  const secureContext = tls.createSecureContext({ key: CERT.key, cert: CERT.chain });
  const tlsServer = net.createServer((raw) => {
    raw.on('error', () => {});
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
    rawOf.set(socket, raw);
    handle(socket);
  });

  /** Content-Length head of a 200 carrying `body`. */
  const okHead = (body: Buffer, extra = ''): string =>
    `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n${extra}\r\n`;

  function respondWith(
    socket: Socket,
    behaviour: Behaviour,
    req: BackendRequest,
    body: Buffer,
    upgrade: boolean,
    reader: RequestReader,
  ): void {
    const head = req.method === 'HEAD';
    switch (behaviour) {
      case 'ok':
      case 'ok-early':
      case 'continue-ok':
        write(socket, Buffer.concat([Buffer.from(okHead(body), 'latin1'), head ? EMPTY : body]));
        return;
      case 'ok-chunked': {
        let out = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n';
        const parts: Buffer[] = [Buffer.from(out, 'latin1')];
        if (!head) {
          for (let i = 0; i < body.length;) {
            const n = Math.min(intBetween(rnd, 1, 700), body.length - i);
            parts.push(Buffer.from(`${n.toString(16)}\r\n`, 'latin1'), body.subarray(i, i + n));
            parts.push(Buffer.from('\r\n', 'latin1'));
            i += n;
          }
          out = rnd() < 0.5 ? '0\r\nx-trailer: yes\r\n\r\n' : '0\r\n\r\n';
          parts.push(Buffer.from(out, 'latin1'));
        }
        write(socket, Buffer.concat(parts));
        return;
      }
      case 'ok-close-delimited':
        write(socket, 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n');
        if (!head) write(socket, body);
        socket.end();
        return;
      case 'ok-trickle': {
        const all = Buffer.concat([Buffer.from(okHead(body), 'latin1'), head ? EMPTY : body]);
        let i = 0;
        const step = (): void => {
          const n = Math.min(intBetween(rnd, 1, Math.max(1, all.length >> 3)), all.length - i);
          write(socket, all.subarray(i, i + n));
          i += n;
          if (i < all.length) later(socket, intBetween(rnd, 0, 2), step);
        };
        step();
        return;
      }
      case 'ok-then-close':
        write(socket, Buffer.concat([Buffer.from(okHead(body), 'latin1'), head ? EMPTY : body]));
        if (rnd() < 0.5) socket.end();
        else later(socket, intBetween(rnd, 0, 3), () => socket.end());
        return;
      case 'ok-extra-bytes':
        write(
          socket,
          Buffer.concat([
            Buffer.from(okHead(body), 'latin1'),
            head ? EMPTY : body,
            Buffer.from(
              pick(rnd, ['HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello', 'junk\r\n', 'x']),
              'latin1',
            ),
          ]),
        );
        return;
      case 'ok-103':
        write(socket, 'HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n');
        later(socket, intBetween(rnd, 0, 2), () =>
          write(socket, Buffer.concat([Buffer.from(okHead(body), 'latin1'), head ? EMPTY : body])),
        );
        return;
      case 'ok-head-then-slow-body':
        write(socket, okHead(body));
        if (head) return;
        later(socket, intBetween(rnd, 1, 20), () => write(socket, body));
        return;
      case 'reset-before-head':
        reset(socket);
        return;
      case 'close-before-head':
        socket.end();
        return;
      case 'reset-after-head':
        write(socket, okHead(body));
        if (rnd() < 0.5) reset(socket);
        else later(socket, 1, () => reset(socket));
        return;
      case 'partial-head': {
        const h = okHead(body);
        write(socket, h.slice(0, intBetween(rnd, 1, h.length - 2)));
        if (rnd() < 0.5) socket.end();
        else reset(socket);
        return;
      }
      case 'partial-body':
        write(socket, okHead(body, 'x-partial: 1\r\n'));
        if (head) return;
        write(socket, body.subarray(0, Math.floor(body.length / 2)));
        if (rnd() < 0.5) socket.end();
        else reset(socket);
        return;
      case 'reset-mid-chunked':
        write(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
        later(socket, intBetween(rnd, 0, 2), () => reset(socket));
        return;
      case 'bad-chunk-size':
        write(
          socket,
          'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
        );
        return;
      case 'bad-chunk-after-data':
        write(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX7\r\n');
        return;
      case 'continue-reset':
        write(socket, 'HTTP/1.1 100 Continue\r\n\r\n');
        later(socket, intBetween(rnd, 0, 2), () => reset(socket));
        return;
      case '101-garbage':
        write(
          socket,
          'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n' +
            '\x00\xff garbage \r\n\r\n',
        );
        if (upgrade) {
          // A tunnel: echo what comes, then close at random.
          reader.tunnel = true;
          socket.on('data', (d: Buffer) => write(socket, d));
          later(socket, intBetween(rnd, 1, 30), () => (rnd() < 0.5 ? socket.end() : reset(socket)));
        }
        return;
      case 'garbage-status':
        write(
          socket,
          pick(rnd, ['HTTX/1.1 200 OK\r\n\r\n', 'HTTP/1.1 2000 OK\r\n\r\n', '\r\n\r\n']),
        );
        return;
      case 'huge-headers':
        write(
          socket,
          `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70 * 1024)}\r\ncontent-length: 0\r\n\r\n`,
        );
        return;
      case 'cl-and-te':
        write(
          socket,
          'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        );
        return;
      case 'silent':
        return;
    }
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    tlsPort: (tlsServer.address() as AddressInfo).port,
    closeConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        tlsServer.close();
        server.close(() => r());
      }),
  };
}

// ---- Clients ----

type Outcome =
  | { kind: 'response'; status: number; behaviour: Behaviour; ok: boolean; detail?: string }
  | { kind: 'reset'; behaviour: Behaviour; code: string }
  | { kind: 'aborted'; behaviour: Behaviour }
  | { kind: 'upgraded'; behaviour: Behaviour }
  | { kind: 'bad'; behaviour: Behaviour; detail: string };

interface ClientPlan {
  readonly id: string;
  readonly port: number;
  readonly path: string;
  readonly behaviour: Behaviour;
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  readonly bodyMode: 'none' | 'length' | 'chunked' | 'expect';
  readonly requestBodyLen: number;
  readonly responseLen: number;
  readonly upgrade: boolean;
  readonly abort: 'never' | 'timer' | 'on-headers' | 'mid-body';
  readonly abortAfterMs: number;
}

/** Client errors that are a reset of the downstream stream (not a malformed response). */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ECONNREFUSED']);

function runClient(plan: ClientPlan, agent: http.Agent): Promise<Outcome> {
  const { behaviour } = plan;
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    let aborted = false;
    const done = (o: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      if (abortTimer) clearTimeout(abortTimer);
      resolve(o);
    };
    const headers: Record<string, string> = {
      'x-chaos': behaviour,
      'x-id': plan.id,
      'x-len': String(plan.responseLen),
    };
    if (plan.upgrade) {
      headers.connection = 'upgrade';
      headers.upgrade = 'websocket';
    }
    if (plan.bodyMode === 'length') headers['content-length'] = String(plan.requestBodyLen);
    if (plan.bodyMode === 'expect') {
      headers.expect = '100-continue';
      headers['content-length'] = String(plan.requestBodyLen);
    }
    const req = http.request({
      host: '127.0.0.1',
      port: plan.port,
      method: plan.method,
      path: `${plan.path}/${plan.id}`,
      headers,
      agent: plan.upgrade ? false : agent,
    });
    const abort = (): void => {
      aborted = true;
      req.destroy();
      done({ kind: 'aborted', behaviour });
    };
    const abortTimer = plan.abort === 'timer' ? setTimeout(abort, plan.abortAfterMs) : undefined;
    // A client that got nothing at all in 20 s is a hung request: the test fails.
    const guard = setTimeout(() => {
      req.destroy();
      done({ kind: 'bad', behaviour, detail: 'no outcome in 20 s (hung)' });
    }, 20_000);
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (aborted) return;
      const code = err.code ?? err.message;
      if (RESET_CODES.has(code) || err.message === 'socket hang up')
        done({ kind: 'reset', behaviour, code });
      else done({ kind: 'bad', behaviour, detail: `client error ${code}: ${err.message}` });
    });
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      void res;
      void head;
      socket.on('error', () => {});
      socket.write('ping');
      socket.once('data', () => socket.destroy());
      setTimeout(() => socket.destroy(), 10);
      socket.once('close', () => done({ kind: 'upgraded', behaviour }));
    });
    req.on('response', (res: IncomingMessage) => {
      if (plan.abort === 'on-headers') {
        abort();
        return;
      }
      const chunks: Buffer[] = [];
      let got = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (plan.abort === 'mid-body' && got > 0) abort();
      });
      res.on('error', (err: NodeJS.ErrnoException) => {
        if (aborted) return;
        done({ kind: 'reset', behaviour, code: err.code ?? err.message });
      });
      res.on('aborted', () => {
        if (!aborted) done({ kind: 'reset', behaviour, code: 'aborted' });
      });
      res.on('end', () => {
        if (aborted || !res.complete) return;
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks);
        let detail: string | undefined;
        if (status === 200) {
          // Whatever came back with 200 came from the backend: it must be this request's body,
          // whole (never truncated, never another request's).
          const want =
            plan.method === 'HEAD' ? Buffer.alloc(0) : bodyFor(plan.id, plan.responseLen);
          if (!body.equals(want))
            detail = `200 with a wrong body (${body.length} bytes, want ${want.length}): ${body
              .toString('latin1')
              .slice(0, 60)}`;
          if (
            res.headers['x-partial'] !== undefined &&
            plan.method !== 'HEAD' &&
            plan.responseLen > 1
          )
            detail = 'a truncated response was delivered complete';
        } else if (status < 200 || status > 599) detail = `status ${status}`;
        done({
          kind: 'response',
          status,
          behaviour,
          ok: detail === undefined,
          ...(detail ? { detail } : {}),
        });
      });
    });
    // The request body.
    if (plan.bodyMode === 'none') {
      req.end();
      return;
    }
    const body = Buffer.alloc(plan.requestBodyLen, 0x61);
    if (plan.bodyMode === 'length' || plan.bodyMode === 'expect') {
      if (plan.bodyMode === 'expect') req.once('continue', () => req.end(body));
      else req.end(body);
      return;
    }
    // Chunked, in a few pieces with pauses.
    let i = 0;
    const step = (): void => {
      if (aborted || req.destroyed) return;
      const n = Math.min(Math.max(1, body.length >> 2), body.length - i);
      req.write(body.subarray(i, i + n));
      i += n;
      if (i < body.length) setTimeout(step, 1);
      else req.end();
    };
    step();
  });
}

// ---- The proxy under test ----

const RETRY_ROUTE: Partial<NonNullable<Route['route']>> = {
  retryPolicy: {
    retryOn: 'reset,connect-failure,refused-stream,5xx',
    numRetries: 2,
    perTryTimeout: '1s',
  },
};

function chaosRoutes(): ReturnType<typeof routeConfig> {
  const r = (prefix: string, cluster: string, extra: Partial<NonNullable<Route['route']>> = {}) =>
    route({ prefix }, { route: { cluster, timeout: '2s', ...extra } });
  return routeConfig('routes', [
    vhost(
      'all',
      ['*'],
      [
        r('/plain', 'chaos'),
        r('/retry', 'chaos', RETRY_ROUTE),
        r('/tls', 'chaos-tls', RETRY_ROUTE),
        r('/limited', 'chaos-limited', { idleTimeout: '0.5s' }),
      ],
    ),
  ]);
}

function chaosClusters(port: number, tlsPort: number): Cluster[] {
  return [
    staticCluster('chaos', [port]),
    // Upstream TLS, as between sidecars (Istio's mTLS): the pool runs over TLSSockets.
    staticCluster('chaos-tls', [tlsPort], {
      transportSocket: upstreamTls({ sni: 'backend.chaos', commonTlsContext: {} }),
    }),
    staticCluster('chaos-limited', [port], {
      circuitBreakers: {
        thresholds: [{ maxConnections: 4, maxPendingRequests: 100_000, maxRequests: 100_000 }],
      },
      typedExtensionProtocolOptions: {
        [HTTP_OPTIONS_KEY]: {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          explicitHttpConfig: { httpProtocolOptions: {} },
          commonHttpProtocolOptions: {
            idleTimeout: '0.05s',
            maxRequestsPerConnection: 3,
            maxConnectionDuration: '0.3s',
          },
        },
      } as NonNullable<Cluster['typedExtensionProtocolOptions']>,
    }),
  ];
}

/** Every request, connection and circuit-breaker counter of both clusters is back at zero. */
function leftovers(p: ProxyHarness, connections: boolean): string[] {
  const out: string[] = [];
  for (const name of ['chaos', 'chaos-tls', 'chaos-limited']) {
    const c = p.cm.get(name);
    assert.ok(c);
    const g = (s: string): number => p.stats.get(`cluster.${name}.${s}`);
    const check = (what: string, v: number): void => {
      if (v !== 0) out.push(`${name}: ${what} = ${v}`);
    };
    check('upstream_rq_active', g('upstream_rq_active'));
    check('upstream_rq_pending_active', g('upstream_rq_pending_active'));
    check('resources.requests', c.resources.requests);
    check('resources.pendingRequests', c.resources.pendingRequests);
    for (const h of c.hosts()) check(`host ${h.id} activeRequests`, h.activeRequests);
    if (connections) {
      check('connectionCount()', c.connectionCount());
      check('upstream_cx_active', g('upstream_cx_active'));
      check('resources.connections', c.resources.connections);
    }
  }
  return out;
}

test(
  'chaos: the HTTP/1.1 pool survives a misbehaving backend and aborting clients',
  { timeout: 240_000 },
  async (t) => {
    const seed = Number(process.env.CHAOS_SEED ?? 20240611);
    const total = Number(process.env.CHAOS_REQUESTS ?? 3000);
    const concurrency = 48;
    const rnd = seededRandom(seed);

    const crashes: string[] = [];
    const onUncaught = (err: unknown): void => {
      crashes.push(
        `uncaughtException: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    };
    const onRejection = (err: unknown): void => {
      crashes.push(
        `unhandledRejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    };
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onRejection);

    const backend = await startChaosBackend(seed);
    const proxies = [
      // Istio's defaults: the proxy answers 100-continue itself.
      await startProxy({
        clusters: chaosClusters(backend.port, backend.tlsPort),
        routes: [chaosRoutes()],
        hcm: hcmConfig({ streamIdleTimeout: '1s' }),
      }),
      // proxy_100_continue: `expect` goes upstream and the pool sends the head alone first.
      await startProxy({
        clusters: chaosClusters(backend.port, backend.tlsPort),
        routes: [chaosRoutes()],
        hcm: { ...hcmConfig(), proxy100Continue: true } as HttpConnectionManager,
      }),
    ];
    const agents = proxies.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
    const outcomes: (Outcome & { path: string })[] = [];
    try {
      let next = 0;
      const plan = (): ClientPlan => {
        const id = `r${next++}`;
        const p = Math.floor(rnd() * proxies.length);
        const upgrade = rnd() < 0.04;
        const behaviour = upgrade
          ? pick(rnd, ['101-garbage', 'ok', 'reset-before-head', 'partial-head'] as const)
          : pick(rnd, BEHAVIOURS);
        const bodyMode = upgrade
          ? 'none'
          : pick(rnd, ['none', 'none', 'length', 'chunked', 'expect'] as const);
        const method =
          bodyMode === 'none' ? (rnd() < 0.1 ? 'HEAD' : 'GET') : rnd() < 0.5 ? 'POST' : 'PUT';
        const a = rnd();
        return {
          id,
          port: (proxies[p] as ProxyHarness).port,
          path: upgrade
            ? pick(rnd, ['/plain', '/tls'])
            : pick(rnd, ['/plain', '/plain', '/retry', '/limited', '/tls', '/tls']),
          behaviour,
          method,
          bodyMode,
          requestBodyLen: intBetween(rnd, 1, 20_000),
          responseLen: pick(rnd, [0, intBetween(rnd, 1, 100), intBetween(rnd, 100, 5000), 70_000]),
          upgrade,
          abort: a < 0.8 ? 'never' : a < 0.88 ? 'timer' : a < 0.94 ? 'on-headers' : 'mid-body',
          abortAfterMs: intBetween(rnd, 0, 15),
        };
      };
      const worker = async (): Promise<void> => {
        while (next < total) {
          const pl = plan();
          const agent = agents[proxies.findIndex((x) => x.port === pl.port)] as http.Agent;
          outcomes.push({ ...(await runClient(pl, agent)), path: pl.path });
        }
      };
      // xDS churn meanwhile: every cluster is replaced now and then (the old versions drain with
      // requests in flight), as when a DestinationRule or the endpoints change.
      let churning = true;
      let version = 0;
      const churn = async (): Promise<void> => {
        while (churning) {
          await delay(intBetween(rnd, 20, 150));
          version++;
          for (const p of proxies) {
            const clusters = chaosClusters(backend.port, backend.tlsPort).map((c) => ({
              ...c,
              connectTimeout: version % 2 === 0 ? '1s' : '1.5s',
            }));
            await p.update(proxyConfig(clusters, [], [chaosRoutes()]));
          }
        }
      };
      const churned = churn();
      await Promise.all(Array.from({ length: concurrency }, worker));
      churning = false;
      await churned;

      const bad = outcomes.filter((o) => o.kind === 'bad' || (o.kind === 'response' && !o.ok));
      const tally = new Map<string, number>();
      for (const o of outcomes) {
        const k = `${o.path} ${o.behaviour} ${o.kind === 'response' ? o.status : o.kind}`;
        tally.set(k, (tally.get(k) ?? 0) + 1);
      }
      const summary = [...tally]
        .sort()
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
      if (process.env.CHAOS_SUMMARY)
        t.diagnostic(
          `${summary}\nclusters replaced: ${proxies.map((p) => p.stats.get('cluster_manager.cluster_modified')).join(', ')}`,
        );
      assert.deepEqual(crashes, [], `seed ${seed}`);
      assert.deepEqual(
        bad.map((o) => `${o.behaviour}: ${'detail' in o ? o.detail : ''}`),
        [],
        `seed ${seed}\n${summary}`,
      );
      assert.equal(outcomes.length, total);
      // The well-formed behaviours mostly got through (a response can still meet a connection the
      // backend just closed after an earlier request, or a client abort).
      for (const path of ['/plain', '/retry', '/tls', '/limited']) {
        const wellFormed = outcomes.filter(
          (o) => o.path === path && WELL_FORMED.has(o.behaviour) && o.kind !== 'aborted',
        );
        const ok200 = wellFormed.filter((o) => o.kind === 'response' && o.status === 200);
        assert.ok(ok200.length > wellFormed.length / 2, `${path}: seed ${seed}\n${summary}`);
      }
      // The broken ones never produced a 200 with a complete body: checked per client above.

      // Every request finished: no request, pending request or host request left counted.
      for (const a of agents) a.destroy();
      for (const p of proxies) {
        await eventually(() => leftovers(p, false).length === 0, 10_000).catch(() => {
          assert.deepEqual(leftovers(p, false), [], `seed ${seed}`);
        });
        await eventually(() => p.stats.get('downstream_rq_active') === 0, 10_000).catch(() =>
          assert.equal(p.stats.get('downstream_rq_active'), 0, 'downstream_rq_active'),
        );
      }
      // Once the backend drops its connections, the pools have none left.
      backend.closeConnections();
      for (const p of proxies)
        await eventually(() => leftovers(p, true).length === 0, 10_000).catch(() => {
          assert.deepEqual(leftovers(p, true), [], `seed ${seed}`);
        });
      assert.deepEqual(crashes, [], `seed ${seed}`);
    } finally {
      for (const a of agents) a.destroy();
      for (const p of proxies) await p.close();
      await backend.close();
      await delay(50);
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
    }
  },
);
