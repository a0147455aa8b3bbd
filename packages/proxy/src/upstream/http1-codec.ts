// A lean HTTP/1.1 client codec for the upstream connection pool (pool-http1.ts): serialises
// request heads and chunked body framing, and parses responses incrementally, as strictly as
// Node's llhttp (status line, header name/value characters, obs-fold, Content-Length conflicts,
// Transfer-Encoding, chunk sizes and extensions, trailers, header size limit). Response headers
// are built into a plain object with Node's IncomingMessage rules for repeated fields, so the
// router sees what it saw with Node's HTTP client. Errors carry llhttp's `HPE_*` codes.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { headerNameFromBytes } from './header-names.js';

/** A response that is not valid HTTP/1.1 (`code` is llhttp's error name). */
export class Http1ParseError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'Http1ParseError';
    this.code = code;
  }
}

/** Envoy's default max_response_headers_kb (60 KiB): status line and headers (and trailers). */
export const MAX_RESPONSE_HEADER_BYTES = 60 * 1024;
/** Longest chunk-size line (with extensions) accepted (Node's chunk extension limit). */
export const MAX_CHUNK_LINE_BYTES = 16 * 1024;

// The HTTP/1.1 syntax below is shared with the downstream server codec (http/http1-server.ts).

/** RFC 9110 tchar, by byte (1: allowed in a token). */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** field-value characters: HTAB, SP, VCHAR, obs-text. */
export const FIELD = new Uint8Array(256);
FIELD[9] = 1;
for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) FIELD[c] = 1;

const TOKEN_RE = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
/** Not a field-value character (CR, LF, NUL...): faster than a loop over charCodeAt. */
export const INVALID_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;
const INVALID_PATH_RE = /[^\u0021-\u00ff]/;
/** `HTTP/1.` */
const STATUS_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e];

interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}
/**
 * Bytes [start, end) of `buf` as a latin1 string: Buffer#latin1Slice, what toString('latin1')
 * calls after its argument checks, when this Node.js has it (it always has so far).
 */
const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as unknown as Partial<Latin1Slicer>).latin1Slice === 'function'
    ? (buf, start, end) => (buf as unknown as Latin1Slicer).latin1Slice(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

/**
 * Tokens (methods, header names) already checked against TOKEN_RE: requests (and the downstream
 * codec's responses, http1-server.ts) carry the same few names over and over. Bounded, so that a stream of distinct names cannot grow it forever.
 */
const VALID_TOKENS = new Set<string>();
const VALID_TOKENS_MAX = 1024;

export function isToken(t: string): boolean {
  if (VALID_TOKENS.has(t)) return true;
  if (!TOKEN_RE.test(t)) return false;
  if (VALID_TOKENS.size < VALID_TOKENS_MAX) VALID_TOKENS.add(t);
  return true;
}

/** Request heads that cannot be serialised (an invalid token or value, as Node refuses). */
export class Http1SerializeError extends Error {
  override readonly name = 'Http1SerializeError';
}

/** How the request body is framed. */
export type RequestFraming = 'none' | 'chunked' | 'as-given';

/** Methods Node sends without a body by default (no `content-length: 0` when ended empty). */
const NO_DEFAULT_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** Whether `method` gets `content-length: 0` when its (unknown-length) body turns out empty. */
export function usesBodyByDefault(method: string): boolean {
  return !NO_DEFAULT_BODY.has(method);
}

/**
 * The request line and header lines, in the order given (array values as repeated lines),
 * without the empty line that ends the head (the pool adds framing headers first). Throws
 * Http1SerializeError for what Node's ClientRequest refuses.
 */
export function serializeRequestHead(
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
): string {
  if (!isToken(method)) throw new Http1SerializeError(`invalid method ${method}`);
  if (INVALID_PATH_RE.test(path)) throw new Http1SerializeError('unescaped characters in path');
  let out = `${method} ${path} HTTP/1.1\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (!isToken(name)) throw new Http1SerializeError(`invalid header name ${name}`);
    if (typeof v === 'string') {
      if (INVALID_VALUE_RE.test(v)) throw new Http1SerializeError(`invalid value for ${name}`);
      out += `${name}: ${v}\r\n`;
    } else if (typeof v === 'number') {
      out += `${name}: ${v}\r\n`;
    } else {
      for (const item of v) {
        if (INVALID_VALUE_RE.test(item)) throw new Http1SerializeError(`invalid value for ${name}`);
        out += `${name}: ${item}\r\n`;
      }
    }
  }
  return out;
}

/** The first value of a header in an outgoing map (case as given: the router uses lowercase). */
export function outgoingHeader(headers: OutgoingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length > 0 ? v.join(', ') : undefined;
  return String(v);
}

/** Whether a Transfer-Encoding value's last coding is `chunked`. */
export function isChunkedCoding(te: string): boolean {
  const i = te.lastIndexOf(',');
  return (i < 0 ? te : te.slice(i + 1)).trim().toLowerCase() === 'chunked';
}

/** parseChunkSizeLine: the size is not a hexadecimal number (or too large; llhttp's HPE_INVALID_CHUNK_SIZE). */
export const CHUNK_SIZE_INVALID = -1;
/** parseChunkSizeLine: a character not allowed in a chunk extension (llhttp strict: HPE_STRICT). */
export const CHUNK_EXTENSION_INVALID = -2;

/**
 * A chunk-size line (RFC 9112 §7.1) in `buf[start, end)`, without its CRLF: the chunk size, or
 * CHUNK_SIZE_INVALID / CHUNK_EXTENSION_INVALID. Extensions are checked and ignored.
 */
export function parseChunkSizeLine(buf: Uint8Array, start: number, end: number): number {
  let k = start;
  let size = 0;
  for (; k < end; k++) {
    const c = buf[k] as number;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else break;
    size = size * 16 + d;
    if (size > Number.MAX_SAFE_INTEGER) return CHUNK_SIZE_INVALID;
  }
  if (k === start) return CHUNK_SIZE_INVALID;
  if (k < end) {
    if (buf[k] !== 0x3b /* ; */) return CHUNK_SIZE_INVALID;
    for (k++; k < end; k++) if (FIELD[buf[k] as number] !== 1) return CHUNK_EXTENSION_INVALID;
  }
  return size;
}

/** The framing of one body chunk in chunked encoding: size line, data and CRLF. */
export function chunkHeader(length: number): string {
  return `${length.toString(16)}\r\n`;
}

// Fields Node's IncomingMessage keeps only once (the first wins).
const SINGLE_FIELDS = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/** Adds a field to a header object with Node's IncomingMessage rules for repeated fields. */
export function addHeaderField(dest: IncomingHttpHeaders, name: string, value: string): void {
  const d = dest as Record<string, string | string[] | undefined>;
  if (name === '__proto__') {
    // Never the prototype: an own property, joined like any other field.
    const own = Object.getOwnPropertyDescriptor(d, name)?.value as string | undefined;
    const v = own === undefined ? value : `${own}, ${value}`;
    Object.defineProperty(d, name, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return;
  }
  const prev = d[name];
  if (name === 'set-cookie') {
    if (prev === undefined) d[name] = [value];
    else (prev as string[]).push(value);
    return;
  }
  if (prev === undefined) d[name] = value;
  else if (SINGLE_FIELDS.has(name)) {
    // Kept once.
  } else if (name === 'cookie') d[name] = `${prev as string}; ${value}`;
  else d[name] = `${prev as string}, ${value}`;
}

/** What the parser reports about one response. */
export interface ResponseParserHandler {
  /** A 1xx other than an upgrade's 101 (100 Continue, 102, 103...). */
  onInformational(status: number): void;
  /**
   * The final response's head (or a 101 answering an upgrade: `upgrade` is true). `endStream`:
   * the response has no body (HEAD, 204, 304, `content-length: 0`); onComplete follows at the end
   * of the same execute().
   */
  onHead(
    status: number,
    headers: IncomingHttpHeaders,
    keepAlive: boolean,
    upgrade: boolean,
    endStream: boolean,
  ): void;
  /** Body bytes (a slice of the input). */
  onBody(chunk: Buffer): void;
  /**
   * The response is complete (trailers of a chunked body, if any); `extra` when bytes followed
   * it in the same read (left in the parser's `rest`: the connection cannot be reused).
   */
  onComplete(trailers: IncomingHttpHeaders | undefined, extra: boolean): void;
}

const enum S {
  Idle,
  StatusLine,
  Headers,
  BodyLength,
  BodyEof,
  ChunkSize,
  ChunkData,
  ChunkCr,
  ChunkLf,
  Trailers,
  Done,
  Upgraded,
  Failed,
}

const EMPTY = Buffer.alloc(0);

/**
 * Parses the response to one request at a time. start() arms it for a request; execute() feeds
 * bytes (throws Http1ParseError); finish() reports the end of the connection. Bytes after a
 * complete response, or after a 101, are left in `rest`.
 */
export class Http1ResponseParser {
  private state: S = S.Idle;
  private headRequest = false;
  private upgradeRequest = false;
  /** Bytes of the current head (or trailers) so far. */
  private headBytes = 0;
  /** A partial line (split across reads). */
  private readonly lineParts: Buffer[] = [];
  private lineLen = 0;
  /** The line just read: bytes [lineStart, lineEnd) of lineBuf, without its CRLF. */
  private lineBuf: Buffer = EMPTY;
  private lineStart = 0;
  private lineEnd = 0;
  // The head being parsed.
  private status = 0;
  private minor = 1;
  private headers: IncomingHttpHeaders = {};
  private trailers: IncomingHttpHeaders | undefined;
  private contentLength = -1;
  private te: string | undefined;
  private connClose = false;
  private connKeepAlive = false;
  private remaining = 0;
  /** Set by the handler to stop parsing (the stream was reset in a callback). */
  stopped = false;
  /** The response completed during execute(): reported when execute() returns. */
  private completePending = false;
  /** Bytes after the complete response or the 101 (undefined when none). */
  rest: Buffer | undefined;

  constructor(private readonly handler: ResponseParserHandler) {}

  /** Arms the parser for the response to a new request. */
  start(method: string, upgrade: boolean): void {
    this.state = S.StatusLine;
    this.headRequest = method === 'HEAD';
    this.upgradeRequest = upgrade;
    this.stopped = false;
    this.completePending = false;
    this.rest = undefined;
    this.beginHead();
  }

  /** Whether a response is in progress (head or body started, not complete). */
  get inProgress(): boolean {
    return this.state !== S.Idle && this.state !== S.Done && this.state !== S.Upgraded;
  }

  /** Whether the response's head has been parsed (a final response, not a 1xx). */
  get headDone(): boolean {
    return this.state >= S.BodyLength && this.state !== S.Failed;
  }

  /** Whether the current body ends with the connection. */
  get closeDelimited(): boolean {
    return this.state === S.BodyEof;
  }

  private beginHead(): void {
    this.headBytes = 0;
    this.lineParts.length = 0;
    this.lineLen = 0;
    this.lineBuf = EMPTY;
    this.status = 0;
    this.headers = {};
    this.trailers = undefined;
    this.contentLength = -1;
    this.te = undefined;
    this.connClose = false;
    this.connKeepAlive = false;
  }

  private fail(code: string, message: string): never {
    this.state = S.Failed;
    throw new Http1ParseError(code, message);
  }

  /** The connection ended: completes a close-delimited body; throws for a truncated response. */
  finish(): boolean {
    if (this.state === S.BodyEof) {
      this.state = S.Done;
      this.handler.onComplete(undefined, false);
      return true;
    }
    return !this.inProgress;
  }

  /**
   * Reads one line from `data` at `i` (CRLF required) into lineBuf/lineStart/lineEnd: the index
   * after it, or -1 (bytes kept) when the line is not complete yet.
   */
  private nextLine(data: Buffer, i: number, limit: number, code: string): number {
    const nl = data.indexOf(10, i);
    if (nl < 0) {
      const len = data.length - i;
      this.lineLen += len;
      this.headBytes += len;
      if (this.headBytes > limit) this.fail(code, 'header overflow');
      if (len > 0) this.lineParts.push(i === 0 ? data : data.subarray(i));
      return -1;
    }
    this.headBytes += nl + 1 - i;
    if (this.headBytes > limit) this.fail(code, 'header overflow');
    if (this.lineParts.length === 0) {
      if (nl === i || data[nl - 1] !== 13) this.fail('HPE_LF_EXPECTED', 'missing CR before LF');
      this.lineBuf = data;
      this.lineStart = i;
      this.lineEnd = nl - 1;
    } else {
      this.lineParts.push(data.subarray(i, nl));
      const whole = Buffer.concat(this.lineParts, this.lineLen + nl - i);
      this.lineParts.length = 0;
      this.lineLen = 0;
      if (whole.length === 0 || whole[whole.length - 1] !== 13)
        this.fail('HPE_LF_EXPECTED', 'missing CR before LF');
      this.lineBuf = whole;
      this.lineStart = 0;
      this.lineEnd = whole.length - 1;
    }
    return nl + 1;
  }

  /** Feeds bytes; throws Http1ParseError for a malformed response. */
  execute(data: Buffer): void {
    let i = 0;
    const n = data.length;
    while (i < n && !this.stopped && !this.completePending) {
      switch (this.state) {
        case S.StatusLine: {
          const next = this.nextLine(data, i, MAX_RESPONSE_HEADER_BYTES, 'HPE_HEADER_OVERFLOW');
          if (next < 0) return;
          i = next;
          this.parseStatusLine();
          this.state = S.Headers;
          break;
        }
        case S.Headers: {
          const next = this.nextLine(data, i, MAX_RESPONSE_HEADER_BYTES, 'HPE_HEADER_OVERFLOW');
          if (next < 0) return;
          i = next;
          if (this.lineEnd > this.lineStart) this.parseField(this.headers, true);
          else if (this.headersComplete()) {
            // 101: the rest of the bytes belong to the tunnel.
            this.rest = i < n ? data.subarray(i) : EMPTY;
            this.handler.onHead(this.status, this.headers, false, true, false);
            return;
          }
          break;
        }
        case S.BodyLength: {
          const take = Math.min(this.remaining, n - i);
          const chunk = i === 0 && take === n ? data : data.subarray(i, i + take);
          i += take;
          this.remaining -= take;
          this.handler.onBody(chunk);
          if (this.remaining === 0 && !this.stopped) this.complete();
          break;
        }
        case S.BodyEof: {
          this.handler.onBody(i === 0 ? data : data.subarray(i));
          return;
        }
        case S.ChunkSize: {
          const next = this.nextLine(
            data,
            i,
            MAX_CHUNK_LINE_BYTES,
            'HPE_CHUNK_EXTENSIONS_OVERFLOW',
          );
          if (next < 0) return;
          i = next;
          this.headBytes = 0;
          this.parseChunkSize();
          break;
        }
        case S.ChunkData: {
          const take = Math.min(this.remaining, n - i);
          const chunk = i === 0 && take === n ? data : data.subarray(i, i + take);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = S.ChunkCr;
          this.handler.onBody(chunk);
          break;
        }
        case S.ChunkCr:
          if (data[i] !== 13) this.fail('HPE_STRICT', 'expected CRLF after chunk data');
          i++;
          this.state = S.ChunkLf;
          break;
        case S.ChunkLf:
          if (data[i] !== 10) this.fail('HPE_STRICT', 'expected LF after chunk data');
          i++;
          this.state = S.ChunkSize;
          this.headBytes = 0;
          break;
        case S.Trailers: {
          const next = this.nextLine(data, i, MAX_RESPONSE_HEADER_BYTES, 'HPE_HEADER_OVERFLOW');
          if (next < 0) return;
          i = next;
          if (this.lineEnd === this.lineStart) this.complete();
          else this.parseField((this.trailers ??= {}), false);
          break;
        }
        case S.Done:
        case S.Upgraded:
          this.rest = i === 0 ? data : data.subarray(i);
          return;
        case S.Idle:
          // No request: whatever arrives is not a response to anything.
          this.rest = i === 0 ? data : data.subarray(i);
          return;
        case S.Failed:
          return;
      }
    }
    if (this.completePending) {
      this.completePending = false;
      const extra = i < n && !this.stopped;
      if (extra) this.rest = data.subarray(i);
      this.handler.onComplete(this.trailers, extra);
    }
  }

  /** Parses the status line just read: `HTTP/1.x NNN[ reason]`. */
  private parseStatusLine(): void {
    const b = this.lineBuf;
    const s = this.lineStart;
    const e = this.lineEnd;
    let ok = e - s >= 12 && b[s + 8] === 0x20 && (e - s === 12 || b[s + 12] === 0x20);
    for (let k = 0; ok && k < 7; k++) ok = b[s + k] === STATUS_PREFIX[k];
    const minor = b[s + 7];
    ok &&= minor === 0x30 || minor === 0x31;
    let status = 0;
    for (let k = s + 9; ok && k < s + 12; k++) {
      const d = (b[k] ?? 0) - 0x30;
      ok = d >= 0 && d <= 9;
      status = status * 10 + d;
    }
    if (!ok) this.fail('HPE_INVALID_CONSTANT', 'invalid status line');
    for (let k = s + 13; k < e; k++)
      if (FIELD[b[k] ?? 0] !== 1) this.fail('HPE_INVALID_STATUS', 'invalid reason');
    this.minor = minor === 0x30 ? 0 : 1;
    this.status = status;
    if (status < 100) this.fail('HPE_INVALID_STATUS', 'invalid status code');
  }

  /** Parses the header (or trailer) line just read into `dest`. */
  private parseField(dest: IncomingHttpHeaders, isHead: boolean): void {
    const buf = this.lineBuf;
    const s = this.lineStart;
    const e = this.lineEnd;
    const c0 = buf[s];
    if (c0 === 32 || c0 === 9) this.fail('HPE_INVALID_HEADER_TOKEN', 'obs-fold is not allowed');
    let colon = s;
    while (colon < e && TCHAR[buf[colon] ?? 0] === 1) colon++;
    if (colon === s || colon === e || buf[colon] !== 58 /* : */) {
      const at = buf.indexOf(58, s);
      if (at <= s || at >= e) this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid header line');
      this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid header name');
    }
    let start = colon + 1;
    let end = e;
    while (start < end && (buf[start] === 32 || buf[start] === 9)) start++;
    while (end > start && (buf[end - 1] === 32 || buf[end - 1] === 9)) end--;
    for (let k = start; k < end; k++)
      if (FIELD[buf[k] ?? 0] !== 1)
        this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid header value character');
    const name = headerNameFromBytes(buf, s, colon);
    const value = start < end ? latin1(buf, start, end) : '';
    if (isHead) {
      if (name === 'content-length') {
        if (this.contentLength >= 0)
          this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 'duplicate Content-Length');
        // 1 to 15 digits.
        let length = end - start <= 15 && end > start ? 0 : -1;
        for (let k = start; length >= 0 && k < end; k++) {
          const d = (buf[k] ?? 0) - 0x30;
          length = d >= 0 && d <= 9 ? length * 10 + d : -1;
        }
        if (length < 0) this.fail('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length');
        this.contentLength = length;
      } else if (name === 'transfer-encoding') {
        this.te = this.te === undefined ? value : `${this.te}, ${value}`;
      } else if (name === 'connection') {
        for (const tok of value.split(',')) {
          const t = tok.trim().toLowerCase();
          if (t === 'close') this.connClose = true;
          else if (t === 'keep-alive') this.connKeepAlive = true;
        }
      }
    }
    addHeaderField(dest, name, value);
  }

  /** The end of a head: true for a 101 answering an upgrade (the caller reports it). */
  private headersComplete(): boolean {
    const status = this.status;
    const headers = this.headers;
    if (status < 200) {
      if (status === 101 && this.upgradeRequest) {
        this.state = S.Upgraded;
        return true;
      }
      if (status === 101) this.fail('HPE_UNEXPECTED_UPGRADE', '101 without an upgrade request');
      // 1xx: no body; the final response follows.
      this.state = S.StatusLine;
      this.beginHead();
      this.handler.onInformational(status);
      return false;
    }
    const te = this.te;
    const chunked = te !== undefined && isChunkedCoding(te);
    if (te !== undefined && this.contentLength >= 0)
      this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 'Content-Length with Transfer-Encoding');
    const noBody = this.headRequest || status === 204 || status === 304;
    let keepAlive = this.minor === 1 ? !this.connClose : this.connKeepAlive && !this.connClose;
    let next: S;
    if (noBody) next = S.Done;
    else if (chunked) {
      next = S.ChunkSize;
      this.headBytes = 0;
    } else if (te === undefined && this.contentLength >= 0) {
      this.remaining = this.contentLength;
      next = this.contentLength === 0 ? S.Done : S.BodyLength;
    } else {
      next = S.BodyEof;
      keepAlive = false;
    }
    this.state = next === S.Done ? S.BodyLength : next;
    this.handler.onHead(status, headers, keepAlive, false, next === S.Done);
    if (next === S.Done && !this.stopped) this.complete();
    return false;
  }

  /** Parses the chunk-size line just read (size and extensions). */
  private parseChunkSize(): void {
    const size = parseChunkSizeLine(this.lineBuf, this.lineStart, this.lineEnd);
    if (size === CHUNK_SIZE_INVALID) this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
    if (size === CHUNK_EXTENSION_INVALID)
      this.fail('HPE_STRICT', 'invalid character in chunk extension');
    if (size === 0) {
      this.state = S.Trailers;
      this.headBytes = 0;
    } else {
      this.remaining = size;
      this.state = S.ChunkData;
    }
  }

  /** Completes the response: reported to the handler at the end of execute(). */
  private complete(): void {
    this.state = S.Done;
    this.completePending = true;
  }
}
