// envoy.filters.listener.tls_inspector: reads (without consuming) the TLS ClientHello at the
// start of a connection to learn the SNI and the ALPN protocols the client offers, and whether
// the connection is TLS at all. The proxy never terminates TLS here: it only routes on it
// (TLS passthrough with tcp_proxy, Istio's `tls:` routes and AUTO_PASSTHROUGH gateways).
//
// The ClientHello may span several TLS records; the parse is incremental (`need-more` until
// the whole message is in). A ClientHello larger than the limit closes the connection
// (Envoy's client_hello_too_large); bytes that are not a well-formed ClientHello make the
// connection `raw_buffer` (tls_not_found), as in Envoy.

/** Envoy's default max_client_hello_size. */
export const MAX_CLIENT_HELLO_SIZE = 64 * 1024;

export type ClientHelloResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'not-tls' }
  | { readonly kind: 'too-large' }
  | {
      readonly kind: 'tls';
      /** The host_name from the server_name extension, as sent. */
      readonly serverName: string | undefined;
      /** Protocols from the ALPN extension, in the client's order. */
      readonly alpn: readonly string[];
    };

const NEED_MORE: ClientHelloResult = { kind: 'need-more' };
const NOT_TLS: ClientHelloResult = { kind: 'not-tls' };
const TOO_LARGE: ClientHelloResult = { kind: 'too-large' };

const CONTENT_TYPE_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const MAX_RECORD_LENGTH = 16384 + 2048;

/** Parses the start of a connection as a TLS ClientHello. */
export function parseClientHello(data: Buffer, maxSize = MAX_CLIENT_HELLO_SIZE): ClientHelloResult {
  if (data.length === 0) return NEED_MORE;
  if (data[0] !== CONTENT_TYPE_HANDSHAKE) return NOT_TLS;
  if (data.length >= 2 && data[1] !== 0x03) return NOT_TLS;
  // Gather the handshake bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let have = 0;
  let helloLen = -1;
  let off = 0;
  while (off < data.length) {
    if (data.length - off < 5) {
      // A partial record header: its first bytes must still look like TLS.
      if (data[off] !== CONTENT_TYPE_HANDSHAKE) return NOT_TLS;
      if (data.length - off >= 2 && data[off + 1] !== 0x03) return NOT_TLS;
      break;
    }
    if (data[off] !== CONTENT_TYPE_HANDSHAKE || data[off + 1] !== 0x03) return NOT_TLS;
    const recLen = data.readUInt16BE(off + 3);
    if (recLen === 0 || recLen > MAX_RECORD_LENGTH) return NOT_TLS;
    const avail = Math.min(recLen, data.length - off - 5);
    parts.push(data.subarray(off + 5, off + 5 + avail));
    have += avail;
    if (helloLen < 0 && have >= 4) {
      const hs = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      if (hs[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS;
      helloLen = hs.readUIntBE(1, 3);
      if (helloLen + 4 > maxSize) return TOO_LARGE;
    }
    if (helloLen >= 0 && have >= helloLen + 4) break;
    if (avail < recLen) break;
    off += 5 + recLen;
  }
  if (helloLen < 0 || have < helloLen + 4) {
    return data.length >= maxSize + 5 ? TOO_LARGE : NEED_MORE;
  }
  const hs = Buffer.concat(parts);
  return parseClientHelloBody(hs.subarray(4, 4 + helloLen));
}

function parseClientHelloBody(b: Buffer): ClientHelloResult {
  // legacy_version(2) random(32)
  let p = 34;
  if (b.length < p + 1) return NOT_TLS;
  p += 1 + (b[p] as number); // session_id
  if (b.length < p + 2) return NOT_TLS;
  const cipherLen = b.readUInt16BE(p);
  if (cipherLen === 0 || cipherLen % 2 !== 0) return NOT_TLS;
  p += 2 + cipherLen;
  if (b.length < p + 1) return NOT_TLS;
  const compLen = b[p] as number;
  if (compLen === 0) return NOT_TLS;
  p += 1 + compLen;
  if (p > b.length) return NOT_TLS;
  let serverName: string | undefined;
  const alpn: string[] = [];
  if (p === b.length) return { kind: 'tls', serverName, alpn };
  if (b.length < p + 2) return NOT_TLS;
  const extEnd = p + 2 + b.readUInt16BE(p);
  if (extEnd !== b.length) return NOT_TLS;
  p += 2;
  while (p < extEnd) {
    if (extEnd - p < 4) return NOT_TLS;
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const start = p + 4;
    const end = start + len;
    if (end > extEnd) return NOT_TLS;
    if (type === EXT_SERVER_NAME) {
      if (len < 2 || start + 2 + b.readUInt16BE(start) !== end) return NOT_TLS;
      let q = start + 2;
      while (q < end) {
        if (end - q < 3) return NOT_TLS;
        const nameType = b[q] as number;
        const nameLen = b.readUInt16BE(q + 1);
        if (q + 3 + nameLen > end) return NOT_TLS;
        if (nameType === 0 && serverName === undefined)
          serverName = b.toString('latin1', q + 3, q + 3 + nameLen);
        q += 3 + nameLen;
      }
    } else if (type === EXT_ALPN) {
      if (len < 2 || start + 2 + b.readUInt16BE(start) !== end) return NOT_TLS;
      let q = start + 2;
      while (q < end) {
        const protoLen = b[q] as number;
        if (protoLen === 0 || q + 1 + protoLen > end) return NOT_TLS;
        alpn.push(b.toString('latin1', q + 1, q + 1 + protoLen));
        q += 1 + protoLen;
      }
    }
    p = end;
  }
  return { kind: 'tls', serverName, alpn };
}
