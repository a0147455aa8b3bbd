// Connection pools layered on the HTTP/1.1 and HTTP/2 pools for upstream TLS:
//
// - AlpnAutoPool (a cluster with `auto_config` over TLS, Envoy's mixed pool): the first
//   connection offers ALPN ["h2", "http/1.1"]; the protocol the server chose decides which
//   pool the host's requests use from then on (HTTP/2 for `h2`, else HTTP/1.1), and that first
//   connection is handed to it. Requests that arrive before the answer wait for it. Upgrades
//   (WebSocket) always go over an HTTP/1.1-only connection.
// - SniPool (upstream_http_protocol_options auto_sni / auto_san_validation): one pool per SNI,
//   the request's host (or the override header), so that connections for different names are
//   never shared.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import {
  UpstreamConnectError,
  type HttpConnectionPool,
  type UpstreamHttpProtocol,
  type UpstreamRequestHead,
  type UpstreamStream,
  type UpstreamStreamCallbacks,
} from './api.js';

/** ALPN offered by a pool of each protocol (when the TLS context sets none). */
export const ALPN_H2: readonly string[] = ['h2'];
export const ALPN_HTTP11: readonly string[] = ['http/1.1'];
export const ALPN_AUTO: readonly string[] = ['h2', 'http/1.1'];

/** Makes a pool of `protocol` whose connections come from `connect`. */
export type PoolFactory = (
  protocol: UpstreamHttpProtocol,
  connect: () => Promise<Socket>,
) => HttpConnectionPool;

/** Opens a connection offering these ALPN protocols. */
export type AlpnConnect = (alpn: readonly string[]) => Promise<Socket>;

/** A stream waiting for its pool to be known; reset() before that drops it. */
class DeferredStream implements UpstreamStream {
  inner: UpstreamStream | undefined;
  cancelled = false;

  trailers(): ReturnType<UpstreamStream['trailers']> {
    return this.inner?.trailers();
  }

  reset(): void {
    if (this.inner) this.inner.reset();
    else this.cancelled = true;
  }
}

interface Waiting {
  readonly stream: DeferredStream;
  readonly head: UpstreamRequestHead;
  readonly cb: UpstreamStreamCallbacks;
}

/** The pool of a host for a cluster with auto_config over TLS. */
export class AlpnAutoPool implements HttpConnectionPool {
  readonly protocol = 'http1' as const;
  #known: UpstreamHttpProtocol | undefined;
  #probing = false;
  #waiting: Waiting[] = [];
  #preconnected: Socket | undefined;
  readonly #pools = new Map<string, HttpConnectionPool>();
  #closed = false;

  constructor(
    private readonly make: PoolFactory,
    private readonly open: AlpnConnect,
  ) {}

  /** The protocol the server chose, once known. */
  get negotiated(): UpstreamHttpProtocol | undefined {
    return this.#known;
  }

  get connectionCount(): number {
    let n = this.#preconnected ? 1 : 0;
    for (const p of this.#pools.values()) n += p.connectionCount;
    return n;
  }

  newStream(head: UpstreamRequestHead, cb: UpstreamStreamCallbacks): UpstreamStream {
    if (head.upgrade !== undefined) return this.#pool('upgrade').newStream(head, cb);
    if (this.#known) return this.#pool(this.#known).newStream(head, cb);
    const stream = new DeferredStream();
    this.#waiting.push({ stream, head, cb });
    if (!this.#probing) this.#probe();
    return stream;
  }

  #probe(): void {
    this.#probing = true;
    this.open(ALPN_AUTO).then(
      (socket) => {
        this.#probing = false;
        if (this.#closed) {
          socket.destroy();
          return;
        }
        this.#known = (socket as TLSSocket).alpnProtocol === 'h2' ? 'http2' : 'http1';
        this.#preconnected = socket;
        socket.once('close', () => {
          if (this.#preconnected === socket) this.#preconnected = undefined;
        });
        const pool = this.#pool(this.#known);
        for (const w of this.#waiting.splice(0)) {
          if (!w.stream.cancelled) w.stream.inner = pool.newStream(w.head, w.cb);
        }
      },
      (err: unknown) => {
        this.#probing = false;
        const e = err instanceof UpstreamConnectError ? err : undefined;
        for (const w of this.#waiting.splice(0)) {
          if (w.stream.cancelled) continue;
          const reason = e?.timedOut ? 'connection_timeout' : 'connection_failure';
          queueMicrotask(() => w.cb.onReset(reason, e?.reason ?? String(err)));
        }
      },
    );
  }

  #pool(kind: UpstreamHttpProtocol | 'upgrade'): HttpConnectionPool {
    let p = this.#pools.get(kind);
    if (!p) {
      const alpn = kind === 'http2' ? ALPN_H2 : ALPN_HTTP11;
      const connect = (): Promise<Socket> => {
        const pre = kind === 'upgrade' ? undefined : this.#preconnected;
        if (pre && !pre.destroyed) {
          this.#preconnected = undefined;
          return Promise.resolve(pre);
        }
        return this.open(alpn);
      };
      p = this.make(kind === 'upgrade' ? 'http1' : kind, connect);
      this.#pools.set(kind, p);
    }
    return p;
  }

  drain(): void {
    this.#preconnected?.destroy();
    this.#preconnected = undefined;
    for (const p of this.#pools.values()) p.drain();
  }

  close(): void {
    this.#closed = true;
    this.#preconnected?.destroy();
    this.#preconnected = undefined;
    for (const w of this.#waiting.splice(0)) {
      if (!w.stream.cancelled)
        queueMicrotask(() => w.cb.onReset('connection_failure', 'connection pool closed'));
    }
    for (const p of this.#pools.values()) p.close();
  }
}

/** The SNI auto_sni derives from a request: its host without the port (none for an IP). */
export function autoSniFor(
  head: UpstreamRequestHead,
  header: string | undefined,
): string | undefined {
  let v: string | undefined;
  if (header !== undefined) {
    const h = head.headers[header];
    v = Array.isArray(h) ? h[0] : h !== undefined ? String(h) : undefined;
  }
  v ??= head.authority;
  if (!v) return undefined;
  let host = v;
  if (host.startsWith('['))
    host = host.slice(1, host.indexOf(']') < 0 ? undefined : host.indexOf(']'));
  else {
    const colon = host.lastIndexOf(':');
    if (colon > 0 && host.indexOf(':') === colon) host = host.slice(0, colon);
  }
  if (host === '' || isIP(host) !== 0) return undefined;
  return host.toLowerCase();
}

/** One pool per SNI (auto_sni / auto_san_validation). */
export class SniPool implements HttpConnectionPool {
  readonly #pools = new Map<string, HttpConnectionPool>();

  constructor(
    readonly protocol: UpstreamHttpProtocol,
    private readonly make: (sni: string | undefined) => HttpConnectionPool,
    private readonly header: string | undefined,
  ) {}

  get connectionCount(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.connectionCount;
    return n;
  }

  newStream(head: UpstreamRequestHead, cb: UpstreamStreamCallbacks): UpstreamStream {
    const sni = autoSniFor(head, this.header);
    const key = sni ?? '';
    let p = this.#pools.get(key);
    if (!p) {
      p = this.make(sni);
      this.#pools.set(key, p);
    }
    return p.newStream(head, cb);
  }

  drain(): void {
    for (const p of this.#pools.values()) p.drain();
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
  }
}
