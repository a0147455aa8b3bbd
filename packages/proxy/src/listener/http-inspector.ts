// envoy.filters.listener.http_inspector: looks (without consuming) at the first bytes of a
// plaintext connection to tell HTTP from anything else, so that filter chains can match on
// application_protocols `http/1.1`, `http/1.0` or `h2c` (Istio's protocol sniffing on ports
// whose protocol is unknown).
//
// HTTP/2 is recognised by the client connection preface; HTTP/1.x by a request line
// `METHOD SP request-target SP HTTP/1.x CRLF` with a method HTTP parsers know. The decision
// comes as early as the bytes allow (a non-HTTP first byte decides at once), and at the
// latest after Envoy's 8 KiB inspection limit.

/** Envoy's MAX_INSPECT_SIZE for http_inspector. */
export const HTTP_INSPECT_LIMIT = 8192;

export type HttpProtocolGuess = 'http/1.0' | 'http/1.1' | 'h2c';

export type HttpDetectResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'not-http' }
  | { readonly kind: 'http'; readonly protocol: HttpProtocolGuess };

const NEED_MORE: HttpDetectResult = { kind: 'need-more' };
const NOT_HTTP: HttpDetectResult = { kind: 'not-http' };

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The request methods of llhttp / http_parser (what Envoy's HTTP/1 parsers accept). */
const METHODS: readonly string[] = [
  'DELETE',
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'COPY',
  'LOCK',
  'MKCOL',
  'MOVE',
  'PROPFIND',
  'PROPPATCH',
  'SEARCH',
  'UNLOCK',
  'BIND',
  'REBIND',
  'UNBIND',
  'ACL',
  'REPORT',
  'MKACTIVITY',
  'CHECKOUT',
  'MERGE',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PATCH',
  'PURGE',
  'MKCALENDAR',
  'LINK',
  'UNLINK',
  'SOURCE',
  'QUERY',
];
const METHOD_SET = new Set(METHODS);
const METHOD_PREFIXES = new Set(METHODS.flatMap((m) => [...m].map((_, i) => m.slice(0, i + 1))));
const MAX_METHOD = Math.max(...METHODS.map((m) => m.length));

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const VERSION_PREFIX = 'HTTP/1.';

/** Classifies the first bytes of a plaintext connection. */
export function detectHttp(data: Buffer): HttpDetectResult {
  if (data.length === 0) return NEED_MORE;
  // HTTP/2 prior knowledge: the connection preface.
  const n = Math.min(data.length, H2_PREFACE.length);
  if (data.compare(H2_PREFACE, 0, n, 0, n) === 0) {
    return data.length >= H2_PREFACE.length ? { kind: 'http', protocol: 'h2c' } : NEED_MORE;
  }
  const limit = Math.min(data.length, HTTP_INSPECT_LIMIT);
  // Method
  let i = 0;
  let method = '';
  for (; i < limit; i++) {
    const c = data[i] as number;
    if (c === SP) break;
    method += String.fromCharCode(c);
    if (method.length > MAX_METHOD || !METHOD_PREFIXES.has(method)) return NOT_HTTP;
  }
  if (i === limit) return moreOrNot(data);
  if (!METHOD_SET.has(method)) return NOT_HTTP;
  // Request target
  const targetStart = ++i;
  for (; i < limit; i++) {
    const c = data[i] as number;
    if (c === SP) break;
    if (c < 0x21 || c === 0x7f) return NOT_HTTP;
  }
  if (i === limit) return moreOrNot(data);
  if (i === targetStart) return NOT_HTTP;
  // Version: HTTP/1.<digit>
  i++;
  for (let k = 0; k < VERSION_PREFIX.length; k++, i++) {
    if (i >= limit) return moreOrNot(data);
    if (data[i] !== VERSION_PREFIX.charCodeAt(k)) return NOT_HTTP;
  }
  if (i >= limit) return moreOrNot(data);
  const minor = data[i] as number;
  if (minor < 0x30 || minor > 0x39) return NOT_HTTP;
  i++;
  if (i >= limit) return moreOrNot(data);
  if (data[i] === CR) {
    i++;
    if (i >= limit) return moreOrNot(data);
  }
  if (data[i] !== LF) return NOT_HTTP;
  // Envoy reports HTTP/1.1 as http/1.1 and every other HTTP/1.x as http/1.0.
  return { kind: 'http', protocol: minor === 0x31 ? 'http/1.1' : 'http/1.0' };
}

function moreOrNot(data: Buffer): HttpDetectResult {
  return data.length >= HTTP_INSPECT_LIMIT ? NOT_HTTP : NEED_MORE;
}
