// The downstream side of one request, whatever the codec: a request on an HTTP/1.1 connection
// (Trellis's codec, http1-server.ts's H1Downstream), an HTTP/2 stream (node:http2), or an
// HTTP/1.1 connection taken over for an Upgrade or CONNECT (a raw socket on which the response
// head is written by hand). The router speaks only this interface.
import { validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders } from 'node:http';
import { constants as h2c, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { DownstreamHttpProtocol } from '../upstream/api.js';
import type { HeaderMap } from './headers.js';
import { reasonPhrase } from './local-reply.js';

export interface Downstream {
  readonly protocol: DownstreamHttpProtocol;
  /** The request body; undefined when the request has none. */
  readonly body: Readable | undefined;
  /** Whether response headers were sent. */
  readonly responseStarted: boolean;
  /** Whether the downstream went away (or was reset). */
  readonly aborted: boolean;
  /** The codec has parsed the whole request (body included), read by the router or not. */
  readonly requestReceived: boolean;
  /** Sends the response head; `endStream` when no body follows. */
  respond(status: number, headers: HeaderMap, endStream: boolean): void;
  /** Where the response body goes (after `respond`). */
  readonly sink: Writable;
  /** Ends the response, with trailers when there are any. */
  finish(trailers?: HeaderMap): void;
  /** `100 Continue`. */
  sendContinue(): void;
  /** Aborts the stream: RST_STREAM, or closes the HTTP/1.1 connection. */
  reset(): void;
  /** Called (once per callback) when the downstream goes away before the response finished. */
  onAbort(cb: () => void): void;
  /** Called once when the response has been completely handed to the transport. */
  onComplete(cb: () => void): void;
  /** The raw connection of an Upgrade / CONNECT (after the response head is written). */
  readonly tunnelSocket?: Duplex;
}

/** A request on an HTTP/2 stream. */
export class H2Downstream implements Downstream {
  readonly protocol: DownstreamHttpProtocol = 'HTTP/2';
  readonly body: Readable | undefined;
  aborted = false;
  private started = false;
  private finished = false;
  private trailers: HeaderMap | undefined;
  private readonly abortCbs: (() => void)[] = [];

  constructor(
    readonly stream: ServerHttp2Stream,
    endStream: boolean,
  ) {
    this.body = endStream ? undefined : stream;
    stream.once('close', () => {
      if (!this.finished || stream.rstCode !== h2c.NGHTTP2_NO_ERROR) this.abort();
    });
    stream.on('error', () => this.abort());
    stream.on('wantTrailers', () => {
      try {
        stream.sendTrailers(this.trailers ?? {});
      } catch {
        stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
      }
    });
  }

  private abort(): void {
    if (this.aborted || (this.finished && this.stream.rstCode === h2c.NGHTTP2_NO_ERROR)) return;
    this.aborted = true;
    for (const cb of this.abortCbs) cb();
  }

  get responseStarted(): boolean {
    return this.started;
  }

  get requestReceived(): boolean {
    return this.body === undefined || this.stream.readableEnded;
  }

  get sink(): Writable {
    return this.stream;
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    this.started = true;
    const h = headers as OutgoingHttpHeaders;
    h[':status'] = status;
    if (endStream) {
      this.finished = true;
      this.stream.respond(h, { endStream: true });
    } else this.stream.respond(h, { waitForTrailers: true });
  }

  finish(trailers?: HeaderMap): void {
    if (this.finished) return;
    this.finished = true;
    if (trailers) {
      this.trailers = {};
      for (const [k, v] of Object.entries(trailers)) if (v !== undefined) this.trailers[k] = v;
    }
    this.stream.end();
  }

  sendContinue(): void {
    this.stream.additionalHeaders({ ':status': 100 });
  }

  reset(): void {
    this.finished = true;
    this.aborted = true;
    if (!this.stream.closed) this.stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
  }

  onAbort(cb: () => void): void {
    this.abortCbs.push(cb);
  }

  onComplete(cb: () => void): void {
    this.stream.once('close', cb);
  }
}

/**
 * An HTTP/1.1 Upgrade or CONNECT request: the codec hands the socket over, so the response head
 * is written here. A response other than 101 / a CONNECT 200 closes the connection after its body.
 */
export class RawDownstream implements Downstream {
  readonly body: Readable | undefined = undefined;
  aborted = false;
  private started = false;
  private finished = false;
  private tunnel = false;
  private readonly abortCbs: (() => void)[] = [];

  constructor(
    readonly protocol: DownstreamHttpProtocol,
    readonly method: string,
    readonly socket: Socket,
    /** Bytes already read after the request head. */
    readonly head: Buffer,
  ) {
    socket.on('error', () => this.abort());
    socket.once('close', () => {
      if (!this.finished) this.abort();
    });
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    for (const cb of this.abortCbs) cb();
  }

  get responseStarted(): boolean {
    return this.started;
  }

  readonly requestReceived = true;

  get sink(): Writable {
    return this.socket;
  }

  get tunnelSocket(): Duplex {
    return this.socket;
  }

  /**
   * Writes the response head. For 101 (and a CONNECT's 2xx) the connection becomes a tunnel;
   * otherwise it is closed after the response.
   */
  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    this.started = true;
    this.tunnel = status === 101 || (this.method === 'CONNECT' && status >= 200 && status < 300);
    let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    const h = headers;
    if (!this.tunnel) {
      h.connection = 'close';
      if (h['content-length'] === undefined && endStream) h['content-length'] = '0';
    }
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined) continue;
      // Written by hand: refuse what node:http would (no header injection through CR/LF).
      try {
        validateHeaderName(k);
        for (const x of Array.isArray(v) ? v : [v]) validateHeaderValue(k, x);
      } catch {
        continue;
      }
      if (Array.isArray(v)) for (const x of v) head += `${k}: ${x}\r\n`;
      else head += `${k}: ${v}\r\n`;
    }
    head += '\r\n';
    this.socket.write(head);
    if (endStream) this.finish();
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.tunnel) this.socket.end();
  }

  sendContinue(): void {
    this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  reset(): void {
    this.finished = true;
    this.aborted = true;
    this.socket.destroy();
  }

  onAbort(cb: () => void): void {
    this.abortCbs.push(cb);
  }

  onComplete(cb: () => void): void {
    this.socket.once('close', cb);
  }
}
