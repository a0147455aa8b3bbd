// The connection manager's downstream HTTP/1.1 server codec, on the raw (plain or TLS) socket
// instead of node:http's Server / IncomingMessage / ServerResponse:
// - Http1RequestParser: an incremental request parser as strict as llhttp without lenient flags
//   (request line, method list, request-target and header bytes, obs-fold and bare LF refused,
//   Content-Length / Transfer-Encoding conflicts, chunked bodies with extensions and trailers, the
//   header size limit), reporting errors with Envoy's status and response-code details;
// - Http1ServerConnection: one per connection, owning the socket: one request at a time (a
//   pipelined request is read only once the previous response is done, as Envoy does), request
//   bodies streamed with backpressure (the socket is paused while the body is not read), Upgrade /
//   CONNECT hand-over, keep-alive rules for HTTP/1.0 and 1.1, max requests per connection, drain,
//   and one timer per connection for the request headers, request and idle timeouts;
// - H1Downstream: the router's view of one request (downstream.ts's Downstream), serialising the
//   response: status line, validated headers, `date` when absent, content-length / chunked (with
//   trailers) / close-delimited framing, and the whole response in one socket write when the body
//   is small (head, body and end are coalesced until the end of the tick's work).
import { METHODS, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import type { DownstreamHttpProtocol } from '../upstream/api.js';
import {
  addHeaderField,
  CHUNK_EXTENSION_INVALID,
  CHUNK_SIZE_INVALID,
  FIELD,
  INVALID_VALUE_RE,
  isChunkedCoding,
  isToken,
  MAX_CHUNK_LINE_BYTES,
  parseChunkSizeLine,
  TCHAR,
} from '../upstream/http1-codec.js';
import { headerNameFromString } from '../upstream/header-names.js';
import type { Downstream } from './downstream.js';
import type { HeaderMap } from './headers.js';

/** A request the codec refuses: the status and response-code details Envoy answers with. */
export class Http1RequestError extends Error {
  constructor(
    readonly status: number,
    readonly details: string,
    /** llhttp's name for the error (diagnostics and tests). */
    readonly code: string,
  ) {
    super(`${code}: ${details}`);
    this.name = 'Http1RequestError';
  }
}

/** Responses whose head and body add up to at most this many bytes leave in one buffer. */
const COALESCE_BYTES = 16 * 1024;
/** Pipelined bytes read ahead while a response is in progress before the socket is paused. */
const MAX_HELD_BYTES = 64 * 1024;
/** How long a closing connection may take to say goodbye before it is destroyed. */
const CLOSE_GRACE_MS = 1000;
const EMPTY = Buffer.alloc(0);

/** The methods llhttp knows (Node's list): anything else is HPE_INVALID_METHOD. */
const METHOD_SET = new Set(METHODS);
const CONTENT_LENGTH_RE = /^\d{1,15}$/;
const CONTINUE_RE = /(?:^|\W)100-continue(?:$|\W)/i;

function invalidChars(what: string, code = 'HPE_INVALID_HEADER_TOKEN'): Http1RequestError {
  return new Http1RequestError(400, 'http1.invalid_characters', `${code} (${what})`);
}

/** What the connection manager's stream (router.ts's ActiveStream) offers the codec's owner. */
export interface H1Stream {
  /** The codec failed mid-request: false when no error response may be written. */
  onDownstreamProtocolError(status: number, details: string): boolean;
  localReply(status: number, body: string, details: string): void;
}

/** One parsed request head. */
export interface H1RequestHead {
  readonly method: string;
  /** The request-target as sent. */
  readonly url: string;
  /** `1.1`, `1.0` or `0.9` (a request line without a version). */
  readonly httpVersion: string;
  /** Lower-case names, repeated fields joined as Node's IncomingMessage does. */
  readonly headers: HeaderMap;
  /** Header lines (Node's rawHeaders.length / 2). */
  readonly headerCount: number;
  readonly hostCount: number;
  /** A header name with an underscore. */
  readonly underscore: boolean;
  /** Transfer-Encoding (repeated fields joined), when present. */
  readonly te: string | undefined;
  /** -1: none. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** HTTP/1.1 without `connection: close`, HTTP/1.0 with `connection: keep-alive`. */
  readonly keepAlive: boolean;
  /** CONNECT, or `Upgrade` with `connection: upgrade` and no body: the socket is handed over. */
  readonly upgrade: boolean;
  /** HTTP/1.1 `expect: 100-continue`. */
  readonly expectContinue: boolean;
}

/** Parses a complete head (latin1, ending with the empty line); throws Http1RequestError. */
export function parseRequestHead(s: string): H1RequestHead {
  const eol = s.indexOf('\r\n');
  // Request line: method SP request-target [SP HTTP-version].
  const sp1 = s.indexOf(' ');
  if (sp1 <= 0 || sp1 > eol)
    throw new Http1RequestError(400, 'http1.invalid_method', 'HPE_INVALID_METHOD');
  const method = s.slice(0, sp1);
  if (!METHOD_SET.has(method))
    throw new Http1RequestError(400, 'http1.invalid_method', 'HPE_INVALID_METHOD');
  let sp2 = s.indexOf(' ', sp1 + 1);
  if (sp2 > eol) sp2 = -1;
  const urlEnd = sp2 < 0 ? eol : sp2;
  if (urlEnd === sp1 + 1) throw new Http1RequestError(400, 'http1.invalid_url', 'HPE_INVALID_URL');
  for (let k = sp1 + 1; k < urlEnd; k++) {
    const c = s.charCodeAt(k);
    if (c <= 0x20 || c === 0x7f)
      throw new Http1RequestError(400, 'http1.invalid_url', 'HPE_INVALID_URL');
  }
  const url = s.slice(sp1 + 1, urlEnd);
  let httpVersion = '0.9';
  let minor = 9;
  if (sp2 >= 0) {
    if (eol - sp2 !== 9 || !s.startsWith('HTTP/', sp2 + 1) || s.charCodeAt(sp2 + 7) !== 0x2e)
      throw new Http1RequestError(400, 'http1.codec_error', 'HPE_INVALID_CONSTANT');
    const major = s.charCodeAt(sp2 + 6) - 0x30;
    minor = s.charCodeAt(sp2 + 8) - 0x30;
    if (!((major === 1 && (minor === 0 || minor === 1)) || (major === 0 && minor === 9)))
      throw new Http1RequestError(400, 'http1.codec_error', 'HPE_INVALID_VERSION');
    httpVersion = `${major}.${minor}`;
  }

  const headers: HeaderMap = {};
  let count = 0;
  let hosts = 0;
  let underscore = false;
  let contentLength = -1;
  let te: string | undefined;
  let connClose = false;
  let connKeepAlive = false;
  let connUpgrade = false;
  let upgradeHeader = false;
  let expect: string | undefined;
  let pos = eol + 2;
  for (;;) {
    const e = s.indexOf('\r\n', pos);
    if (e === pos || e < 0) break;
    const c0 = s.charCodeAt(pos);
    if (c0 === 0x20 || c0 === 0x09) throw invalidChars('obs-fold');
    const colon = s.indexOf(':', pos);
    if (colon <= pos || colon > e) throw invalidChars('header name');
    for (let k = pos; k < colon; k++)
      if (TCHAR[s.charCodeAt(k)] !== 1) throw invalidChars('header name');
    let vs = colon + 1;
    let ve = e;
    while (vs < ve && (s.charCodeAt(vs) === 0x20 || s.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (s.charCodeAt(ve - 1) === 0x20 || s.charCodeAt(ve - 1) === 0x09)) ve--;
    for (let k = vs; k < ve; k++) {
      const c = s.charCodeAt(k);
      if (c < 0x20 ? c !== 0x09 : c === 0x7f) throw invalidChars('header value');
    }
    const name = headerNameFromString(s, pos, colon);
    const value = s.slice(vs, ve);
    pos = e + 2;
    count++;
    if (!underscore && name.includes('_')) underscore = true;
    switch (name) {
      case 'host':
        hosts++;
        break;
      case 'content-length':
        if (contentLength >= 0)
          throw new Http1RequestError(
            400,
            'http1.content_length_not_allowed',
            'HPE_UNEXPECTED_CONTENT_LENGTH',
          );
        if (!CONTENT_LENGTH_RE.test(value))
          throw new Http1RequestError(
            400,
            'http1.invalid_content_length',
            'HPE_INVALID_CONTENT_LENGTH',
          );
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        te = te === undefined ? value : `${te}, ${value}`;
        break;
      case 'connection': {
        const lower = value.toLowerCase();
        if (lower === 'keep-alive') connKeepAlive = true;
        else if (lower === 'close') connClose = true;
        else
          for (const tok of lower.split(',')) {
            const t = tok.trim();
            if (t === 'close') connClose = true;
            else if (t === 'keep-alive') connKeepAlive = true;
            else if (t === 'upgrade') connUpgrade = true;
          }
        break;
      }
      case 'upgrade':
        upgradeHeader = true;
        break;
      case 'expect':
        expect ??= value;
        break;
      default:
        break;
    }
    addHeaderField(headers, name, value);
  }
  let chunked = false;
  if (te !== undefined) {
    if (contentLength >= 0)
      throw new Http1RequestError(
        400,
        'http1.content_length_and_chunked_not_allowed',
        'HPE_UNEXPECTED_CONTENT_LENGTH',
      );
    chunked = isChunkedCoding(te);
    if (!chunked)
      throw new Http1RequestError(
        501,
        'http1.invalid_transfer_encoding',
        'HPE_INVALID_TRANSFER_ENCODING',
      );
  }
  const hasBody = chunked || contentLength > 0;
  return {
    method,
    url,
    httpVersion,
    headers,
    headerCount: count,
    hostCount: hosts,
    underscore,
    te,
    contentLength,
    chunked,
    keepAlive: minor === 1 ? !connClose : minor === 0 && connKeepAlive && !connClose,
    upgrade: method === 'CONNECT' || (upgradeHeader && connUpgrade && !hasBody),
    expectContinue: minor === 1 && expect !== undefined && CONTINUE_RE.test(expect),
  };
}

const enum P {
  Head,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkCr,
  ChunkLf,
  Trailers,
  /** The message is complete (or the head was an upgrade): reset() before the next one. */
  Done,
}

/** What stopped Http1RequestParser.execute(). */
export const enum ParseEvent {
  /** The end of the input. */
  None,
  /** A head: `head` is set; the body (if any) follows. */
  Head,
  /** The end of a message (after its body). */
  Complete,
}

/**
 * Parses one request at a time: execute() consumes bytes from `start` and returns where it
 * stopped: at the end of a head (`event` Head), at the end of the message (`event` Complete; the
 * rest is the next request's) or at the end of the input. Body bytes go to `onBody` as slices of
 * the input. Throws Http1RequestError.
 */
export class Http1RequestParser {
  event: ParseEvent = ParseEvent.None;
  /** The head just parsed (after a Head event). */
  head: H1RequestHead | undefined;
  private state: P = P.Head;
  /** Pieces of a head (or line) split across reads. */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Offset in the head of the current line's first byte. */
  private lineStart = 0;
  private prevCr = false;
  private remaining = 0;
  private trailerBytes = 0;

  constructor(
    private readonly maxHeaderBytes: number,
    private readonly onBody: (chunk: Buffer) => void,
  ) {}

  /** Bytes of a head received so far (0 between requests). */
  get headBytes(): number {
    return this.state === P.Head ? this.partsLen : 0;
  }

  /** Whether the current message is complete (or handed over). */
  get done(): boolean {
    return this.state === P.Done;
  }

  /** Arms the parser for the next request. */
  reset(): void {
    this.state = P.Head;
    this.head = undefined;
    this.parts = [];
    this.partsLen = 0;
    this.lineStart = 0;
    this.prevCr = false;
  }

  execute(data: Buffer, start: number): number {
    this.event = ParseEvent.None;
    const n = data.length;
    let i = start;
    while (i < n) {
      switch (this.state) {
        case P.Head: {
          i = this.scanHead(data, i);
          if ((this.event as ParseEvent) === ParseEvent.Head) return i;
          break;
        }
        case P.BodyLength: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          this.onBody(i === 0 && take === n ? data : data.subarray(i, i + take));
          i += take;
          if (this.remaining === 0) return this.complete(i);
          break;
        }
        case P.ChunkSize: {
          const r = this.line(data, i, MAX_CHUNK_LINE_BYTES);
          if (r < 0) return n;
          i = r;
          this.chunkSize(this.takeLineBytes());
          break;
        }
        case P.ChunkData: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          if (this.remaining === 0) this.state = P.ChunkCr;
          this.onBody(i === 0 && take === n ? data : data.subarray(i, i + take));
          i += take;
          break;
        }
        case P.ChunkCr:
          if (data[i] !== 13) throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_STRICT');
          i++;
          this.state = P.ChunkLf;
          break;
        case P.ChunkLf:
          if (data[i] !== 10) throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_STRICT');
          i++;
          this.state = P.ChunkSize;
          break;
        case P.Trailers: {
          const r = this.line(data, i, MAX_CHUNK_LINE_BYTES + this.maxHeaderBytes);
          if (r < 0) return n;
          this.trailerBytes += r - i;
          if (this.trailerBytes > this.maxHeaderBytes)
            throw new Http1RequestError(431, 'http1.headers_too_large', 'HPE_HEADER_OVERFLOW');
          i = r;
          const text = this.takeLine();
          if (text.length === 0) return this.complete(i);
          // Validated like a header field, then dropped (nothing forwards request trailers).
          parseTrailer(text);
          break;
        }
        case P.Done:
          return i;
      }
    }
    return n;
  }

  private complete(i: number): number {
    this.state = P.Done;
    this.event = ParseEvent.Complete;
    return i;
  }

  /**
   * Finds the end of the head from `start`: returns the index after it (with a Head event), or
   * the end of the input (the bytes kept). Refuses a bare LF and a head over the limit early.
   */
  private scanHead(data: Buffer, start: number): number {
    const n = data.length;
    let seg = start;
    if (this.partsLen === 0) {
      // llhttp skips empty lines before a request line.
      while (seg < n && (data[seg] === 13 || data[seg] === 10)) seg++;
      if (seg === n) return n;
      checkMethodPrefix(data, seg);
    }
    let p = seg;
    for (;;) {
      const nl = data.indexOf(10, p);
      if (nl < 0) {
        const len = n - seg;
        if (this.partsLen + len > this.maxHeaderBytes)
          throw new Http1RequestError(431, 'http1.headers_too_large', 'HPE_HEADER_OVERFLOW');
        this.parts.push(seg === 0 ? data : data.subarray(seg));
        this.partsLen += len;
        this.prevCr = data[n - 1] === 13;
        return n;
      }
      const at = this.partsLen + (nl - seg);
      if (at >= this.maxHeaderBytes)
        throw new Http1RequestError(431, 'http1.headers_too_large', 'HPE_HEADER_OVERFLOW');
      const cr = nl > seg ? data[nl - 1] === 13 : this.prevCr;
      if (!cr) throw invalidChars('LF without CR', 'HPE_LF_EXPECTED');
      if (at - 1 === this.lineStart && at > 1) {
        const end = nl + 1;
        let text: string;
        if (this.parts.length === 0) text = data.toString('latin1', seg, end);
        else {
          this.parts.push(data.subarray(seg, end));
          text = Buffer.concat(this.parts, this.partsLen + end - seg).toString('latin1');
        }
        this.parts = [];
        this.partsLen = 0;
        this.lineStart = 0;
        this.prevCr = false;
        const head = parseRequestHead(text);
        this.head = head;
        this.event = ParseEvent.Head;
        if (head.upgrade) this.state = P.Done;
        else if (head.chunked) this.state = P.ChunkSize;
        else if (head.contentLength > 0) {
          this.state = P.BodyLength;
          this.remaining = head.contentLength;
        } else this.state = P.Done;
        this.trailerBytes = 0;
        return end;
      }
      this.lineStart = at + 1;
      p = nl + 1;
    }
  }

  /**
   * Reads a CRLF-terminated line (chunk size, trailer) from `i`: the index after it, or -1 when
   * it is not complete yet (the bytes kept). takeLine() then gives its text.
   */
  private line(data: Buffer, i: number, limit: number): number {
    const nl = data.indexOf(10, i);
    if (nl < 0) {
      this.partsLen += data.length - i;
      if (this.partsLen > limit)
        throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
      if (data.length > i) this.parts.push(i === 0 ? data : data.subarray(i));
      return -1;
    }
    this.parts.push(data.subarray(i, nl + 1));
    this.partsLen += nl + 1 - i;
    if (this.partsLen > limit)
      throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
    return nl + 1;
  }

  private takeLine(): string {
    const line = this.takeLineBytes();
    return line.toString('latin1');
  }

  /** As takeLine(), the bytes (without CRLF). */
  private takeLineBytes(): Buffer {
    const parts = this.parts;
    const whole = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, this.partsLen);
    this.parts = [];
    this.partsLen = 0;
    const len = whole.length;
    if (len < 2 || whole[len - 2] !== 13) {
      if (this.state === P.Trailers) throw invalidChars('LF without CR', 'HPE_LF_EXPECTED');
      throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_LF_EXPECTED');
    }
    return whole.subarray(0, len - 2);
  }

  private chunkSize(line: Buffer): void {
    const size = parseChunkSizeLine(line, 0, line.length);
    if (size === CHUNK_SIZE_INVALID)
      throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_INVALID_CHUNK_SIZE');
    if (size === CHUNK_EXTENSION_INVALID)
      throw new Http1RequestError(400, 'http1.invalid_chunk', 'HPE_STRICT');
    if (size === 0) this.state = P.Trailers;
    else {
      this.remaining = size;
      this.state = P.ChunkData;
    }
  }
}

/** The first bytes of a request line must look like a method (llhttp fails on the first byte). */
function checkMethodPrefix(data: Buffer, start: number): void {
  const end = Math.min(data.length, start + 24);
  for (let k = start; k < end; k++) {
    const c = data[k] as number;
    if (c === 0x20) return;
    if (!((c >= 0x41 && c <= 0x5a) || c === 0x2d))
      throw new Http1RequestError(400, 'http1.invalid_method', 'HPE_INVALID_METHOD');
  }
  if (end - start === 24)
    throw new Http1RequestError(400, 'http1.invalid_method', 'HPE_INVALID_METHOD');
}

function parseTrailer(line: string): void {
  const c0 = line.charCodeAt(0);
  if (c0 === 0x20 || c0 === 0x09) throw invalidChars('obs-fold');
  const colon = line.indexOf(':');
  if (colon <= 0) throw invalidChars('trailer name');
  for (let k = 0; k < colon; k++)
    if (TCHAR[line.charCodeAt(k)] !== 1) throw invalidChars('trailer name');
  for (let k = colon + 1; k < line.length; k++)
    if (FIELD[line.charCodeAt(k)] !== 1) throw invalidChars('trailer value');
}

// ---- Response serialisation helpers ----

const statusLines: string[] = [];

function statusLine(status: number): string {
  if (!Number.isInteger(status) || status < 100 || status > 999)
    throw new RangeError(`invalid status code ${status}`);
  return (statusLines[status] ??= `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`);
}

let dateLine = '';
let dateExpires = 0;

/** `date: ...\r\n`, computed once a second. */
function currentDateLine(): string {
  const now = Date.now();
  if (now >= dateExpires) {
    dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
    dateExpires = now - (now % 1000) + 1000;
  }
  return dateLine;
}

/** Header lines of a field (arrays as repeated lines); throws for what node:http refuses. */
function fieldLines(name: string, v: string | string[]): string {
  if (!isToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
  if (typeof v === 'string') {
    if (INVALID_VALUE_RE.test(v)) throw new TypeError(`invalid value for header ${name}`);
    return `${name}: ${v}\r\n`;
  }
  let out = '';
  for (const x of v) {
    const s = String(x);
    if (INVALID_VALUE_RE.test(s)) throw new TypeError(`invalid value for header ${name}`);
    out += `${name}: ${s}\r\n`;
  }
  return out;
}

// ---- Connection ----

export interface Http1ServerSettings {
  /** max_request_headers_kb in bytes. */
  readonly maxHeaderBytes: number;
  /** request_headers_timeout (from the first byte of a head; a new connection's start). */
  readonly headersTimeoutMs: number;
  /** request_timeout (from the first byte of a request to its end); 0: none. */
  readonly requestTimeoutMs: number;
  /** The idle timeout between requests; 0: none. */
  readonly idleTimeoutMs: number;
  /** max_requests_per_connection; 0: unlimited. */
  readonly maxRequestsPerConnection: number;
}

/** What the connection manager does with what the codec reads. */
export interface Http1ServerHandler<C> {
  /** A request head (its body, if any, streams through `ds.body`). */
  onRequest(conn: Http1ServerConnection<C>, ds: H1Downstream): void;
  /** An Upgrade or CONNECT: the socket is the handler's from now on (`rest`: bytes after the head). */
  onUpgrade(conn: Http1ServerConnection<C>, head: H1RequestHead, rest: Buffer): void;
  /**
   * A request the codec refuses, or request headers not received in time (408); `ds`: the
   * request in progress when it happened mid-body. The connection reads nothing more.
   */
  onCodecError(
    conn: Http1ServerConnection<C>,
    ds: H1Downstream | undefined,
    error: Http1RequestError,
  ): void;
  /** request_timeout expired before the whole request was received. */
  onRequestTimeout(conn: Http1ServerConnection<C>, ds: H1Downstream): void;
  /** No request for idle_timeout since the last response: the connection is closed. */
  onIdleTimeout?(conn: Http1ServerConnection<C>): void;
}

const enum Phase {
  /** Reading a request (head or body). */
  Reading,
  /** The request is complete; its response is not: pipelined bytes are held. */
  Waiting,
  /** The socket was handed over (Upgrade / CONNECT). */
  Upgraded,
  Closed,
}

const enum Deadline {
  None,
  /** A new connection that sent nothing yet (closed silently). */
  Fresh,
  /** Between requests (closed silently). */
  Idle,
  /** A head in progress (408). */
  Headers,
  /** A body in progress (request_timeout). */
  Request,
  /** A closing connection's grace (destroyed). */
  Close,
}

const enum Framing {
  None,
  Length,
  Chunked,
  /** Ends with the connection (HTTP/1.0 without content-length). */
  Eof,
}

/** One downstream HTTP/1.1 connection. */
export class Http1ServerConnection<C> {
  readonly parser: Http1RequestParser;
  /** The per-connection response body sink handed to the router. */
  readonly sink: ResponseSink;
  /** Requests received on this connection. */
  requests = 0;
  private phase = Phase.Reading;
  /** The request whose response is in progress (or whose request is). */
  private ds: H1Downstream | undefined;
  private body: RequestBody | undefined;
  /** Pipelined bytes read while waiting for a response. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Why reading is paused: 1 the request body's reader, 2 held bytes. */
  private pausedFor = 0;
  private draining = false;
  /** Close after the current response (an error reply, connection: close in its headers). */
  private closeAfter = false;
  // The response in progress.
  private headPending = false;
  private headBase = '';
  private framing = Framing.None;
  private keepAlive = false;
  private readonly out: (Buffer | string)[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private sinkNeedsDrain = false;
  private afterScheduled = false;
  // The connection's one timer.
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private deadline = 0;
  private deadlineKind = Deadline.None;
  private readonly bodyHandler: (chunk: Buffer) => void;
  private endListening = false;
  /** When the current head's first byte arrived (0: with its end, in one read). */
  private headStartedAt = 0;

  constructor(
    readonly socket: Socket,
    private readonly settings: Http1ServerSettings,
    private readonly handler: Http1ServerHandler<C>,
    readonly context: C,
  ) {
    this.bodyHandler = (chunk) => this.onBodyChunk(chunk);
    this.parser = new Http1RequestParser(settings.maxHeaderBytes, this.bodyHandler);
    this.sink = new ResponseSink(this);
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    socket.once('close', this.onClose);
    this.setDeadline(Deadline.Fresh, settings.headersTimeoutMs);
    socket.resume();
  }

  /** Whether no request is in progress (nothing read of the next one either). */
  get idle(): boolean {
    return this.phase === Phase.Reading && this.ds === undefined && this.parser.headBytes === 0;
  }

  // ---- Reading ----

  private readonly onData = (data: Buffer): void => {
    if (this.phase === Phase.Reading) this.process(data, 0);
    else if (this.phase === Phase.Waiting) this.hold(data);
  };

  private process(data: Buffer, start: number): void {
    const parser = this.parser;
    let i = start;
    const n = data.length;
    while (i < n) {
      try {
        i = parser.execute(data, i);
      } catch (err) {
        if (err instanceof Http1RequestError) {
          this.codecError(err);
          return;
        }
        throw err;
      }
      if (this.phase !== Phase.Reading) return;
      const ev = parser.event;
      if (ev === ParseEvent.Head) {
        if (!this.onHead(data, i)) return;
      } else if (ev === ParseEvent.Complete) this.onMessageComplete();
      if ((this.phase as Phase) === Phase.Waiting) {
        if (i < n) this.hold(i === 0 ? data : data.subarray(i));
        return;
      }
      if (this.phase !== Phase.Reading) return;
    }
    if (parser.headBytes > 0 && this.deadlineKind !== Deadline.Headers) {
      // A head split across reads: request_headers_timeout runs from its first byte (or the
      // connection's start for the first request).
      if (this.settings.requestTimeoutMs > 0) this.headStartedAt = performance.now();
      if (this.deadlineKind !== Deadline.Fresh)
        this.setDeadline(Deadline.Headers, this.settings.headersTimeoutMs);
      else this.deadlineKind = Deadline.Headers;
    }
  }

  /** A head was parsed: false when nothing more is read (upgrade, closed). */
  private onHead(data: Buffer, next: number): boolean {
    const head = this.parser.head as H1RequestHead;
    this.requests++;
    if (head.upgrade) {
      this.handOver(head, next < data.length ? data.subarray(next) : EMPTY);
      return false;
    }
    const hasBody = head.chunked || head.contentLength > 0;
    const body = hasBody ? new RequestBody(this) : undefined;
    const ds = new H1Downstream(this, head, body);
    this.ds = ds;
    this.body = body;
    this.closeAfter = false;
    this.headPending = false;
    this.framing = Framing.None;
    if (!hasBody) {
      ds.received = true;
      this.phase = Phase.Waiting;
      this.clearDeadline();
    } else if (this.settings.requestTimeoutMs > 0) {
      // request_timeout runs from the request's first byte.
      const since = this.headStartedAt > 0 ? performance.now() - this.headStartedAt : 0;
      this.setDeadline(Deadline.Request, Math.max(this.settings.requestTimeoutMs - since, 1));
    } else this.clearDeadline();
    this.headStartedAt = 0;
    this.handler.onRequest(this, ds);
    return this.phase === Phase.Reading || this.phase === Phase.Waiting;
  }

  private onBodyChunk(chunk: Buffer): void {
    const body = this.body;
    if (!body || body.destroyed) return;
    if (!body.push(chunk)) this.pauseReading(1);
  }

  private onMessageComplete(): void {
    const ds = this.ds;
    if (ds) ds.received = true;
    this.phase = Phase.Waiting;
    this.clearDeadline();
    const body = this.body;
    if (body && !body.destroyed) body.push(null);
    this.resumeReading(1);
  }

  /** @internal The body's reader wants more. */
  resumeBody(): void {
    this.resumeReading(1);
  }

  private hold(data: Buffer): void {
    this.held.push(data);
    this.heldBytes += data.length;
    if (this.heldBytes > MAX_HELD_BYTES) this.pauseReading(2);
  }

  private pauseReading(why: number): void {
    if (this.pausedFor === 0) this.socket.pause();
    this.pausedFor |= why;
  }

  private resumeReading(why: number): void {
    if ((this.pausedFor & why) === 0) return;
    this.pausedFor &= ~why;
    if (this.pausedFor === 0 && this.phase !== Phase.Upgraded) this.socket.resume();
  }

  private handOver(head: H1RequestHead, rest: Buffer): void {
    this.phase = Phase.Upgraded;
    this.clearDeadline();
    const socket = this.socket;
    socket.pause();
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('drain', this.onDrain);
    this.handler.onUpgrade(this, head, rest);
  }

  private codecError(err: Http1RequestError): void {
    const ds = this.ds;
    // A response that ended but is not written yet goes first.
    if (ds?.finished && this.afterScheduled) this.flush();
    this.phase = Phase.Closed;
    this.clearDeadline();
    this.held = [];
    this.heldBytes = 0;
    this.handler.onCodecError(this, ds, err);
    if (ds) ds.finished = true;
    const body = this.body;
    if (body && !body.destroyed && !body.readableEnded) body.destroy();
  }

  private readonly onEnd = (): void => {
    // Envoy and node:http treat a client's half-close as the end of the connection: a request in
    // progress is aborted (DC).
    const ds = this.ds;
    if (this.phase === Phase.Closed || (!ds && this.parser.headBytes === 0)) {
      this.phase = Phase.Closed;
      this.endSocket();
      return;
    }
    this.socket.destroy();
  };

  /**
   * Ends the socket; once what was written has left (a large response to a slow reader may take
   * long), the client gets a grace period to close before the socket is destroyed.
   */
  private endSocket(): void {
    const socket = this.socket;
    socket.end();
    if (socket.writableFinished) this.setDeadline(Deadline.Close, CLOSE_GRACE_MS);
    else if (!this.endListening) {
      this.endListening = true;
      socket.once('finish', () => this.setDeadline(Deadline.Close, CLOSE_GRACE_MS));
    }
  }

  private readonly onClose = (): void => {
    const wasUpgraded = this.phase === Phase.Upgraded;
    this.phase = Phase.Closed;
    this.clearDeadline();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (wasUpgraded) return;
    const ds = this.ds;
    this.ds = undefined;
    if (ds && !ds.finished) ds.abort();
    const body = this.body;
    if (body && !body.destroyed && !body.readableEnded) body.destroy();
  };

  // ---- Responses ----

  /** @internal */
  respond(ds: H1Downstream, status: number, headers: HeaderMap, endStream: boolean): void {
    if (ds !== this.ds || ds.started) return;
    const head = ds.head;
    const noBody =
      head.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    let text = statusLine(status);
    let cl: string | undefined;
    let te: string | undefined;
    let hasDate = false;
    let connClose = false;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      switch (name) {
        case 'content-length':
          cl = typeof v === 'string' ? v : v[0];
          break;
        case 'transfer-encoding':
          te = typeof v === 'string' ? v : v.join(', ');
          break;
        case 'date':
          hasDate = true;
          break;
        case 'connection':
          // Hop-by-hop: the codec says what this connection does (`close` is honoured).
          if (/(?:^|[\s,])close(?:$|[\s,])/i.test(typeof v === 'string' ? v : v.join(',')))
            connClose = true;
          continue;
        case 'keep-alive':
          continue;
        default:
          break;
      }
      text += fieldLines(name, v);
    }
    // Valid: from here on nothing throws.
    let framing = Framing.None;
    if (noBody) framing = Framing.None;
    else if (cl !== undefined) framing = Framing.Length;
    else if (te !== undefined) framing = isChunkedCoding(te) ? Framing.Chunked : Framing.Eof;
    else if (endStream) text += 'content-length: 0\r\n';
    else if (head.httpVersion === '1.1') {
      text += 'transfer-encoding: chunked\r\n';
      framing = Framing.Chunked;
    } else framing = Framing.Eof;
    if (!hasDate) text += currentDateLine();
    ds.started = true;
    if (connClose) this.closeAfter = true;
    this.framing = framing;
    this.headBase = text;
    this.headPending = true;
    if (endStream) this.finish(ds, undefined);
    else this.scheduleFlush();
  }

  /** The head's connection header and end, deciding whether the connection stays open. */
  private commitHead(): string {
    const ds = this.ds as H1Downstream;
    const max = this.settings.maxRequestsPerConnection;
    const keep =
      ds.head.keepAlive &&
      ds.received &&
      !this.closeAfter &&
      !this.draining &&
      this.framing !== Framing.Eof &&
      !(max > 0 && this.requests >= max);
    this.keepAlive = keep;
    this.headPending = false;
    const text = this.headBase;
    this.headBase = '';
    if (!keep) return `${text}connection: close\r\n\r\n`;
    if (ds.head.httpVersion === '1.0') return `${text}connection: keep-alive\r\n\r\n`;
    return `${text}\r\n`;
  }

  /** @internal A body chunk (the sink's write): false when the socket wants a drain. */
  writeBody(chunk: Buffer): boolean {
    const ds = this.ds;
    if (!ds?.started || ds.finished || this.socket.destroyed) return true;
    const len = chunk.length;
    if (this.framing === Framing.None || len === 0) return true;
    if (this.framing === Framing.Chunked) {
      this.out.push(`${len.toString(16)}\r\n`, chunk, '\r\n');
      this.outBytes += len + 16;
    } else {
      this.out.push(chunk);
      this.outBytes += len;
    }
    if (this.outBytes < COALESCE_BYTES) {
      this.scheduleFlush();
      return true;
    }
    this.flush();
    if (!this.socket.writableNeedDrain) return true;
    this.sinkNeedsDrain = true;
    return false;
  }

  private readonly onDrain = (): void => {
    if (!this.sinkNeedsDrain) return;
    this.sinkNeedsDrain = false;
    this.sink.emit('drain');
  };

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushSoon);
  }

  /** A response still streaming: what was written this tick leaves now. */
  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    if (this.ds && !this.afterScheduled) this.flush();
  };

  /** Writes the pending head and body bytes, in one buffer when they are small. */
  private flush(): void {
    const socket = this.socket;
    const head = this.headPending ? this.commitHead() : '';
    const out = this.out;
    const n = out.length;
    if (socket.destroyed) {
      out.length = 0;
      this.outBytes = 0;
      return;
    }
    if (n === 0) {
      if (head.length > 0) socket.write(head, 'latin1');
      return;
    }
    let total = head.length;
    for (let k = 0; k < n; k++) total += (out[k] as Buffer | string).length;
    if (total <= COALESCE_BYTES + 64) {
      const buf = Buffer.allocUnsafe(total);
      let off = buf.write(head, 0, 'latin1');
      for (let k = 0; k < n; k++) {
        const part = out[k] as Buffer | string;
        if (typeof part === 'string') off += buf.write(part, off, 'latin1');
        else off += part.copy(buf, off);
      }
      socket.write(buf);
    } else {
      socket.cork();
      if (head.length > 0) socket.write(head, 'latin1');
      for (let k = 0; k < n; k++) {
        const part = out[k] as Buffer | string;
        if (typeof part === 'string') socket.write(part, 'latin1');
        else socket.write(part);
      }
      socket.uncork();
    }
    out.length = 0;
    this.outBytes = 0;
  }

  /** @internal The end of the response (trailers when chunked). */
  finish(ds: H1Downstream, trailers: HeaderMap | undefined): void {
    if (ds !== this.ds || ds.finished || !ds.started) return;
    ds.finished = true;
    if (this.framing === Framing.Chunked) {
      let last = '0\r\n';
      if (trailers)
        for (const name in trailers) {
          const v = trailers[name];
          if (v === undefined) continue;
          try {
            last += fieldLines(name, v);
          } catch {
            // A trailer node:http would refuse: dropped rather than failing the response.
          }
        }
      this.out.push(`${last}\r\n`);
      this.outBytes += last.length + 2;
    }
    // Written once the tick's parsing is done (so that a request completing in the same read
    // keeps the connection), then the next request.
    this.afterScheduled = true;
    process.nextTick(this.afterResponse);
  }

  private readonly afterResponse = (): void => {
    this.afterScheduled = false;
    const ds = this.ds;
    if (!ds || this.phase === Phase.Closed || this.phase === Phase.Upgraded) return;
    this.flush();
    ds.complete();
    if (this.ds !== ds || (this.phase as Phase) === Phase.Closed) return;
    this.ds = undefined;
    if (!this.keepAlive || this.draining || this.socket.destroyed) {
      this.close();
      return;
    }
    this.body = undefined;
    this.parser.reset();
    this.phase = Phase.Reading;
    this.setDeadline(Deadline.Idle, this.settings.idleTimeoutMs);
    const held = this.held;
    if (held.length > 0) {
      // The next request (pipelined): one buffer, so that an Upgrade gets all that follows.
      const data = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
      this.process(data, 0);
    }
    this.resumeReading(2);
  };

  /** @internal `HTTP/1.1 100 Continue`. */
  sendContinue(ds: H1Downstream): void {
    if (ds !== this.ds || ds.started || this.socket.destroyed) return;
    this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  /** @internal The router resets the stream: the connection goes. */
  resetStream(ds: H1Downstream): void {
    if (ds !== this.ds) return;
    ds.finished = true;
    this.phase = Phase.Closed;
    this.socket.destroy();
  }

  /** The current response closes the connection (an error reply). */
  closeAfterResponse(): void {
    this.closeAfter = true;
  }

  /** Ends the connection after what was written (no more requests are read). */
  close(): void {
    if (this.phase === Phase.Closed && this.deadlineKind === Deadline.Close) return;
    this.phase = Phase.Closed;
    this.held = [];
    this.heldBytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    // Keep reading (and dropping) what the client still sends: closing with unread bytes would
    // reset the connection and could lose the response.
    if (this.pausedFor !== 0) {
      this.pausedFor = 0;
      socket.resume();
    }
    this.endSocket();
  }

  /** Stops keep-alive: idle now → closed; a request in progress → its response closes. */
  drain(): void {
    this.draining = true;
    if (this.idle) this.socket.destroy();
  }

  // ---- The timer ----

  private setDeadline(kind: Deadline, ms: number): void {
    if (ms <= 0) {
      this.clearDeadline();
      return;
    }
    const now = performance.now();
    this.deadline = now + ms;
    this.deadlineKind = kind;
    if (this.timer !== undefined && this.timerAt <= this.deadline + 1) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.startTimer(ms, now);
  }

  private clearDeadline(): void {
    this.deadline = 0;
    this.deadlineKind = Deadline.None;
  }

  private startTimer(ms: number, now: number): void {
    this.timerAt = now + ms;
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.deadline === 0) return;
    const now = performance.now();
    if (now < this.deadline - 1) {
      this.startTimer(this.deadline - now, now);
      return;
    }
    const kind = this.deadlineKind;
    this.clearDeadline();
    switch (kind) {
      case Deadline.Idle:
        this.phase = Phase.Closed;
        this.handler.onIdleTimeout?.(this);
        this.socket.destroy();
        break;
      case Deadline.Fresh:
      case Deadline.Close:
        this.phase = Phase.Closed;
        this.socket.destroy();
        break;
      case Deadline.Headers:
        if (this.phase === Phase.Reading)
          this.codecError(
            new Http1RequestError(408, 'request_header_timeout', 'ERR_HTTP_REQUEST_TIMEOUT'),
          );
        break;
      case Deadline.Request: {
        const ds = this.ds;
        if (ds && !ds.received) this.handler.onRequestTimeout(this, ds);
        break;
      }
      default:
        break;
    }
  };
}

/** A request body: slices of the socket's reads, with the socket's backpressure. */
export class RequestBody extends Readable {
  constructor(private readonly conn: Http1ServerConnection<unknown>) {
    super();
  }

  override _read(): void {
    this.conn.resumeBody();
  }
}

/**
 * The response body sink of a connection (one for all its requests): writes are framed and
 * coalesced by the connection; 'drain' follows the socket's.
 */
export class ResponseSink extends Writable {
  constructor(private readonly conn: Http1ServerConnection<unknown>) {
    super();
  }

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array);
    const ok = this.conn.writeBody(buf);
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done);
    return ok;
  }
}

/** One request on an HTTP/1.x connection: the router's Downstream. */
export class H1Downstream implements Downstream {
  readonly protocol: DownstreamHttpProtocol;
  aborted = false;
  /** @internal Response headers handed to the codec. */
  started = false;
  /** @internal The response ended (or the stream was reset). */
  finished = false;
  /** @internal The whole request was read. */
  received = false;
  /** The router's stream of this request (set by the connection manager). */
  stream: H1Stream | undefined;
  private abortCbs: (() => void)[] | undefined;
  private completeCbs: (() => void)[] | undefined;

  constructor(
    private readonly conn: Http1ServerConnection<unknown>,
    readonly head: H1RequestHead,
    readonly body: RequestBody | undefined,
  ) {
    this.protocol = head.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
  }

  get responseStarted(): boolean {
    return this.started;
  }

  get requestReceived(): boolean {
    return this.received;
  }

  get sink(): Writable {
    return this.conn.sink;
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    this.conn.respond(this, status, headers, endStream);
  }

  finish(trailers?: HeaderMap): void {
    this.conn.finish(this, trailers);
  }

  sendContinue(): void {
    this.conn.sendContinue(this);
  }

  reset(): void {
    this.aborted = true;
    this.conn.resetStream(this);
    this.finished = true;
  }

  /** The response to this request closes the connection. */
  closeConnection(): void {
    this.conn.closeAfterResponse();
  }

  onAbort(cb: () => void): void {
    (this.abortCbs ??= []).push(cb);
  }

  onComplete(cb: () => void): void {
    (this.completeCbs ??= []).push(cb);
  }

  /** @internal The client went away before the response ended. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.finished = true;
    const cbs = this.abortCbs;
    if (cbs) for (const cb of cbs) cb();
  }

  /** @internal The response was handed to the socket. */
  complete(): void {
    const cbs = this.completeCbs;
    if (!cbs) return;
    // Only those registered before now (as 'finish' listeners would be).
    const n = cbs.length;
    for (let i = 0; i < n; i++) (cbs[i] as () => void)();
  }
}
