// Envoy's gRPC-Web filter (envoy.filters.http.grpc_web, which Istio puts on GRPC-WEB ports):
// a browser's gRPC-Web request becomes a gRPC request upstream, and the gRPC response becomes
// gRPC-Web downstream.
//
// - Requests with content-type application/grpc-web[+proto] (binary) or
//   application/grpc-web-text[+proto] (base64 of the same frames) go upstream as
//   application/grpc with `te: trailers`, `grpc-accept-encoding: identity,deflate,gzip` when
//   absent and no content-length; a text request's body is base64-decoded on the way (4
//   characters at a time; bad base64 is a 400, grpc_base_64_decode_failed[_bad_size]).
// - The response's content-type becomes application/grpc-web+proto, or
//   application/grpc-web-text+proto when the client's `accept` asked for text, and loses its
//   content-length. Its trailers travel in the body as a trailer frame (flag 0x80, length,
//   `name:value\r\n` lines), so an HTTP/1.1 client gets them too. For text, each gRPC frame
//   and the trailer frame are base64-encoded on their own.
// - A response that is not gRPC (an HTML 503 from an upstream, say) becomes grpc-status (from
//   the HTTP status) and grpc-message (the body, percent-encoded, at most 16 KiB) headers with
//   an empty body.
// Other requests pass untouched.
import { Transform, type TransformCallback } from 'node:stream';
import { httpToGrpcStatus } from '../grpc-status.js';
import { headerValue, type HeaderMap, type RequestHeaders } from './headers.js';

const GRPC_WEB = 'application/grpc-web';
const GRPC_WEB_PROTO = 'application/grpc-web+proto';
const GRPC_WEB_TEXT = 'application/grpc-web-text';
const GRPC_WEB_TEXT_PROTO = 'application/grpc-web-text+proto';
/** The most of a non-gRPC response body kept for grpc-message. */
export const MAX_GRPC_MESSAGE_BYTES = 16 * 1024;
/** Flag byte of a gRPC-Web trailer frame. */
const TRAILER_FRAME = 0x80;

export const GRPC_WEB_FILTER_TYPE = 'envoy.extensions.filters.http.grpc_web.v3.GrpcWeb';
export const GRPC_WEB_FILTER_NAME = 'envoy.filters.http.grpc_web';

/** What a gRPC-Web request asked for. */
export interface GrpcWebMode {
  /** The request body is base64 (grpc-web-text). */
  readonly textRequest: boolean;
  /** The client accepts base64 responses (`accept: application/grpc-web-text`). */
  readonly textResponse: boolean;
}

/** Whether an HTTP connection manager's filters include gRPC-Web. */
export function hasGrpcWebFilter(
  filters: readonly { name?: string; typedConfig?: { '@type'?: string } }[] | undefined,
): boolean {
  return (filters ?? []).some(
    (f) =>
      (f.typedConfig?.['@type'] ?? '').endsWith(GRPC_WEB_FILTER_TYPE) ||
      (f.name === GRPC_WEB_FILTER_NAME && f.typedConfig === undefined),
  );
}

/**
 * A gRPC-Web request's headers turned into a gRPC request's; undefined (headers untouched) when
 * the request is not gRPC-Web.
 */
export function grpcWebRequest(headers: RequestHeaders): GrpcWebMode | undefined {
  const map = headers.map;
  const type = headerValue(map, 'content-type');
  if (
    headers.path === '' ||
    (type !== GRPC_WEB &&
      type !== GRPC_WEB_PROTO &&
      type !== GRPC_WEB_TEXT &&
      type !== GRPC_WEB_TEXT_PROTO)
  )
    return undefined;
  const accept = headerValue(map, 'accept');
  map['content-length'] = undefined;
  map['content-type'] = 'application/grpc';
  map.te = 'trailers';
  if (headerValue(map, 'grpc-accept-encoding') === undefined)
    map['grpc-accept-encoding'] = 'identity,deflate,gzip';
  return {
    textRequest: type === GRPC_WEB_TEXT || type === GRPC_WEB_TEXT_PROTO,
    textResponse: accept === GRPC_WEB_TEXT || accept === GRPC_WEB_TEXT_PROTO,
  };
}

/** A base64 request body that is not (Envoy's response code details name why). */
export class GrpcWebDecodeError extends Error {
  constructor(readonly details: string) {
    super(`Bad gRPC-web request, invalid base64 data.`);
    this.name = 'GrpcWebDecodeError';
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes a grpc-web-text request body, 4 characters at a time. */
export class GrpcWebTextDecoder extends Transform {
  private pending = '';

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const text = this.pending + chunk.toString('latin1');
    const whole = text.length - (text.length % 4);
    this.pending = text.slice(whole);
    if (whole === 0) {
      done();
      return;
    }
    const decoded = decode(text.slice(0, whole));
    if (!decoded) {
      done(new GrpcWebDecodeError('grpc_base_64_decode_failed'));
      return;
    }
    done(null, decoded);
  }

  override _flush(done: TransformCallback): void {
    if (this.pending.length !== 0) {
      done(new GrpcWebDecodeError('grpc_base_64_decode_failed_bad_size'));
      return;
    }
    done();
  }
}

/** Base64 in groups of four (padding inside is allowed: frames are encoded one by one). */
function decode(text: string): Buffer | undefined {
  const parts: Buffer[] = [];
  for (let i = 0; i < text.length;) {
    // Up to the end of the next padded group, or the end.
    let end = text.indexOf('=', i);
    if (end < 0) end = text.length;
    else {
      end++;
      if (text[end] === '=') end++;
      if (end % 4 !== 0) return undefined;
    }
    const group = text.slice(i, end);
    if (!BASE64.test(group)) return undefined;
    parts.push(Buffer.from(group, 'base64'));
    i = end;
  }
  const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return out.length === 0 ? undefined : out;
}

/** Percent-encoding of grpc-message (gRPC's rule: printable ASCII except `%` stays). */
function percentEncode(body: Buffer): string {
  let out = '';
  for (const b of body) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The response side of one gRPC-Web request. */
export class GrpcWebResponse {
  /** Frames of a text response not complete yet. */
  private partial: Buffer | undefined;

  constructor(readonly mode: GrpcWebMode) {}

  /**
   * Whether a response must be turned into grpc-status / grpc-message headers (it is neither
   * gRPC nor proto-encoded gRPC-Web). Headers-only responses are left as they are.
   */
  needsTransformation(status: number, headers: HeaderMap, endStream: boolean): boolean {
    if (endStream) return false;
    const type = (headerValue(headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const isGrpc = type === 'application/grpc' || type.startsWith('application/grpc+');
    const isWebProto = type === GRPC_WEB || type === GRPC_WEB_PROTO;
    return status !== 200 || !(isGrpc || isWebProto);
  }

  /** The headers going downstream: gRPC-Web's content-type, no content-length. */
  onHeaders(headers: HeaderMap): void {
    headers['content-length'] = undefined;
    headers['content-type'] = this.mode.textResponse ? GRPC_WEB_TEXT_PROTO : GRPC_WEB_PROTO;
  }

  /** A non-gRPC response's headers once its body (at most MAX_GRPC_MESSAGE_BYTES) is known. */
  transformNonGrpc(status: number, headers: HeaderMap, body: Buffer): void {
    headers['grpc-status'] = String(httpToGrpcStatus(status));
    headers['grpc-message'] = percentEncode(body.subarray(0, MAX_GRPC_MESSAGE_BYTES));
    headers['content-length'] = '0';
  }

  /** A response body chunk as it goes downstream (text: whole frames, base64-encoded). */
  onData(chunk: Buffer): Buffer | undefined {
    if (!this.mode.textResponse) return chunk;
    let data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    const out: string[] = [];
    while (data.length >= 5) {
      const size = 5 + data.readUInt32BE(1);
      if (data.length < size) break;
      out.push(data.subarray(0, size).toString('base64'));
      data = data.subarray(size);
    }
    if (data.length > 0) this.partial = Buffer.from(data);
    return out.length === 0 ? undefined : Buffer.from(out.join(''), 'latin1');
  }

  /** The trailer frame that ends the body (and whatever is left of an incomplete frame). */
  onEnd(trailers: HeaderMap | undefined): Buffer {
    let lines = '';
    for (const name in trailers ?? {}) {
      const v = trailers?.[name];
      if (v === undefined) continue;
      for (const value of typeof v === 'string' ? [v] : v) lines += `${name}:${value}\r\n`;
    }
    const payload = Buffer.from(lines, 'latin1');
    const frame = Buffer.allocUnsafe(5 + payload.length);
    frame[0] = TRAILER_FRAME;
    frame.writeUInt32BE(payload.length, 1);
    payload.copy(frame, 5);
    if (!this.mode.textResponse) return frame;
    // A frame cut short by the upstream goes as it is, then the trailers.
    const rest = this.partial ? this.partial.toString('base64') : '';
    this.partial = undefined;
    return Buffer.from(rest + frame.toString('base64'), 'latin1');
  }
}
