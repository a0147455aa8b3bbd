// Header names as the two HTTP/1.1 parsers hand them out: lower-cased, and the same string object
// every time a name recurs. The name is looked up straight from the bytes (or the head's latin1
// string) in a small open-addressed table, so a known name costs no slice, no toLowerCase and no
// hashing of a fresh string; and because the strings in the table are internalized (V8's
// unique-string table), header objects keyed by them, `switch (name)` and Set/Map lookups compare
// by identity. Names not yet known are sliced, lower-cased, internalized and remembered, up to a
// bound, so a stream of distinct names cannot grow the table forever.

const BITS = 10;
const SIZE = 1 << BITS;
const MASK = SIZE - 1;
/** Slots probed after the home slot before a name counts as unknown. */
const PROBES = 8;
/** Names learnt at run time (the common ones below are always there). */
const LEARNT_MAX = 512;

/** ASCII lower-casing of one byte. */
const LOWER = new Uint8Array(256);
for (let c = 0; c < 256; c++) LOWER[c] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;

const table: (string | undefined)[] = new Array<string | undefined>(SIZE).fill(undefined);
let learnt = 0;

/** Names nearly every request or response carries (Envoy's and Istio's among them). */
const COMMON = [
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'access-control-allow-credentials',
  'access-control-allow-headers',
  'access-control-allow-methods',
  'access-control-allow-origin',
  'access-control-expose-headers',
  'access-control-max-age',
  'access-control-request-headers',
  'access-control-request-method',
  'age',
  'allow',
  'authorization',
  'b3',
  'baggage',
  'cache-control',
  'connection',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-range',
  'content-type',
  'cookie',
  'date',
  'etag',
  'expect',
  'expires',
  'forwarded',
  'grpc-accept-encoding',
  'grpc-encoding',
  'grpc-message',
  'grpc-status',
  'grpc-timeout',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'keep-alive',
  'last-modified',
  'link',
  'location',
  'origin',
  'pragma',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'range',
  'referer',
  'retry-after',
  'server',
  'set-cookie',
  'strict-transport-security',
  'te',
  'traceparent',
  'tracestate',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'vary',
  'via',
  'www-authenticate',
  'x-b3-flags',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-spanid',
  'x-b3-traceid',
  'x-client-trace-id',
  'x-content-type-options',
  'x-envoy-attempt-count',
  'x-envoy-decorator-operation',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-external-address',
  'x-envoy-force-trace',
  'x-envoy-internal',
  'x-envoy-max-retries',
  'x-envoy-original-path',
  'x-envoy-overloaded',
  'x-envoy-peer-metadata',
  'x-envoy-peer-metadata-id',
  'x-envoy-retry-grpc-on',
  'x-envoy-retry-on',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-service-time',
  'x-forwarded-client-cert',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-frame-options',
  'x-ot-span-context',
  'x-powered-by',
  'x-request-id',
  'x-requested-with',
];

/** The home slot of a lower-cased name (the same hash the byte and string lookups compute). */
function hashOf(name: string): number {
  let h = name.length;
  for (let k = 0; k < name.length; k++) h = (Math.imul(h, 31) + name.charCodeAt(k)) | 0;
  return h & MASK;
}

/** The unique (internalized) string equal to `s`: property keys always are. */
function internalize(s: string): string {
  for (const k in { [s]: 0 }) return k;
  return s;
}

/** Puts a lower-cased, internalized name in the table; false when its probe window is full. */
function remember(name: string): boolean {
  const home = hashOf(name);
  for (let p = 0; p < PROBES; p++) {
    const i = (home + p) & MASK;
    const cand = table[i];
    if (cand === name) return true;
    if (cand === undefined) {
      table[i] = name;
      return true;
    }
  }
  return false;
}

for (const name of COMMON) remember(internalize(name));

/** A name not in the table yet: lower-cased, internalized, and learnt while there is room. */
function learn(raw: string): string {
  const name = internalize(raw.toLowerCase());
  if (learnt < LEARNT_MAX && remember(name)) learnt++;
  return name;
}

/** Byte `i` of a head held as bytes or as a latin1 string. */
function codeAt(src: Uint8Array | string, i: number): number {
  return typeof src === 'string' ? src.charCodeAt(i) : (src[i] as number);
}

/** The table's string for the name in [start, end) of `src`, or undefined when it is not known. */
function find(src: Uint8Array | string, start: number, end: number): string | undefined {
  const len = end - start;
  let h = len;
  for (let k = start; k < end; k++) h = (Math.imul(h, 31) + (LOWER[codeAt(src, k)] as number)) | 0;
  const home = h & MASK;
  for (let p = 0; p < PROBES; p++) {
    const cand = table[(home + p) & MASK];
    if (cand === undefined) return undefined;
    if (cand.length !== len) continue;
    let k = 0;
    while (k < len && LOWER[codeAt(src, start + k)] === cand.charCodeAt(k)) k++;
    if (k === len) return cand;
  }
  return undefined;
}

/**
 * The lower-cased header name in bytes [start, end) of `buf` (all tchar, as the parser checked):
 * the table's string when the name is known.
 */
export function headerNameFromBytes(buf: Uint8Array, start: number, end: number): string {
  return (
    find(buf, start, end) ??
    learn(Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1'))
  );
}

/**
 * The lower-cased header name in characters [start, end) of `s` (a latin1 head, all tchar there):
 * the table's string when the name is known.
 */
export function headerNameFromString(s: string, start: number, end: number): string {
  return find(s, start, end) ?? learn(s.slice(start, end));
}

/** How many names were learnt at run time (tests). */
export function learntHeaderNames(): number {
  return learnt;
}
