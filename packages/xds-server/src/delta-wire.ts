// Wire encoding of DeltaDiscoveryResponse for the server's hot path: one buffer sized up front
// and filled field by field, the resources' encoded bytes copied once (the generic protobuf
// encoder would rebuild every resource as a message object first). Responses using fields this
// encoder does not write (resource aliases, TTLs) go through @trellis/envoy's encoder instead.
import { Buffer } from 'node:buffer';
import {
  decodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type Resource,
} from '@trellis/envoy';

/**
 * A delta response as the server sends it: `encodedResources` are pre-encoded `resources` entries
 * (from encodeResourceEntries) sent after the rest; protobuf concatenates repeated fields.
 */
export interface DeltaResponseOut extends DeltaDiscoveryResponse {
  encodedResources?: readonly Buffer[];
  /**
   * The whole response already encoded as a gRPC message (5-byte prefix, then the message): one
   * Buffer written as it is to every stream the same response goes to (see delta.ts).
   */
  framed?: Buffer;
}

/** A gRPC message: the 5-byte prefix (not compressed, length) and the message, in one Buffer. */
export function frameMessage(message: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + message.byteLength);
  b[0] = 0;
  b.writeUInt32BE(message.byteLength, 1);
  message.copy(b, 5);
  return b;
}

/** Length-delimited field key: (field number << 3) | wire type 2. */
const key = (field: number): number => (field << 3) | 2;

// DeltaDiscoveryResponse (envoy.service.discovery.v3)
const SYSTEM_VERSION_INFO = key(1);
const RESOURCES = key(2);
const TYPE_URL = key(4);
const NONCE = key(5);
const REMOVED_RESOURCES = key(6);
const CONTROL_PLANE = key(7);
// Resource
const RES_VERSION = key(1);
const RES_RESOURCE = key(2);
const RES_NAME = key(3);
// google.protobuf.Any / config.core.v3.ControlPlane
const ANY_TYPE_URL = key(1);
const ANY_VALUE = key(2);
const CP_IDENTIFIER = key(1);

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Size of a length-delimited field with a body of `len` bytes (keys here are one byte). */
const fieldSize = (len: number): number => 1 + varintSize(len) + len;

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

class Writer {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  head(k: number, len: number): void {
    this.buf[this.pos++] = k;
    this.varint(len);
  }
  string(k: number, s: string, len: number): void {
    this.head(k, len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }
  bytes(k: number, b: Uint8Array): void {
    this.head(k, b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
}

/**
 * Encodes resources as DeltaDiscoveryResponse `resources` entries (name, version, resource): the
 * same bytes whichever response carries them, so a shared group is encoded once.
 */
export function encodeResourceEntries(resources: Resource[]): Buffer {
  return encodeDeltaResponse({ resources });
}

/**
 * Encodes a delta response (the same message as @trellis/envoy's encoder, fewer copies); its
 * `encodedResources` are appended (the server writes them separately; see server.ts).
 */
export function encodeDeltaResponse(r: DeltaResponseOut): Buffer {
  if (r.framed) return r.framed.subarray(5);
  const { encodedResources, framed: _framed, ...rest } = r;
  if (encodedResources && encodedResources.length > 0)
    return Buffer.concat([encodeDeltaResponse(rest), ...encodedResources]);
  const resources = r.resources ?? [];
  if (resources.some((x) => x.ttl !== undefined || (x.aliases?.length ?? 0) > 0)) {
    const b = encodeDeltaDiscoveryResponse(r);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }
  // Sizes first (strings measured once), then one allocation.
  const resSizes: number[] = [];
  const anySizes: number[] = [];
  const strLens: number[] = [];
  let total = 0;
  const str = (s: string | undefined): number => {
    const n = s ? utf8(s) : 0;
    strLens.push(n);
    return n;
  };
  const sv = str(r.systemVersionInfo);
  if (sv > 0) total += fieldSize(sv);
  for (const res of resources) {
    let size = 0;
    const v = str(res.version);
    if (v > 0) size += fieldSize(v);
    if (res.resource) {
      const t = str(res.resource.typeUrl);
      const a = (t > 0 ? fieldSize(t) : 0) + fieldSize(res.resource.value.byteLength);
      anySizes.push(a);
      size += fieldSize(a);
    }
    const n = str(res.name);
    if (n > 0) size += fieldSize(n);
    resSizes.push(size);
    total += fieldSize(size);
  }
  const tu = str(r.typeUrl);
  if (tu > 0) total += fieldSize(tu);
  const nonce = str(r.nonce);
  if (nonce > 0) total += fieldSize(nonce);
  for (const name of r.removedResources ?? []) total += fieldSize(str(name));
  const cpId = r.controlPlane ? str(r.controlPlane.identifier) : 0;
  const cpSize = cpId > 0 ? fieldSize(cpId) : 0;
  if (r.controlPlane) total += fieldSize(cpSize);

  const w = new Writer(total);
  let si = 0;
  let ai = 0;
  const nextLen = (): number => strLens[si++] as number;
  let len = nextLen();
  if (len > 0) w.string(SYSTEM_VERSION_INFO, r.systemVersionInfo as string, len);
  resources.forEach((res, i) => {
    w.head(RESOURCES, resSizes[i] as number);
    len = nextLen();
    if (len > 0) w.string(RES_VERSION, res.version as string, len);
    if (res.resource) {
      w.head(RES_RESOURCE, anySizes[ai++] as number);
      len = nextLen();
      if (len > 0) w.string(ANY_TYPE_URL, res.resource.typeUrl, len);
      w.bytes(ANY_VALUE, res.resource.value);
    }
    len = nextLen();
    if (len > 0) w.string(RES_NAME, res.name as string, len);
  });
  len = nextLen();
  if (len > 0) w.string(TYPE_URL, r.typeUrl as string, len);
  len = nextLen();
  if (len > 0) w.string(NONCE, r.nonce as string, len);
  for (const name of r.removedResources ?? []) w.string(REMOVED_RESOURCES, name, nextLen());
  if (r.controlPlane) {
    w.head(CONTROL_PLANE, cpSize);
    len = nextLen();
    if (len > 0) w.string(CP_IDENTIFIER, r.controlPlane.identifier ?? '', len);
  }
  if (w.pos !== total) throw new Error(`delta response encoding: wrote ${w.pos} of ${total} bytes`);
  return w.buf;
}

// DeltaDiscoveryRequest: type_url 2, response_nonce 6 (the only fields of an ACK).
const REQ_TYPE_URL = key(2);
const REQ_RESPONSE_NONCE = key(6);

/**
 * Decodes a DeltaDiscoveryRequest. An ACK (type_url and response_nonce, nothing else: what a
 * proxy sends for every response) is read directly from the wire, hundreds at once after a push;
 * anything else goes through @trellis/envoy's decoder.
 */
export function decodeDeltaRequest(b: Buffer): DeltaDiscoveryRequest {
  let typeUrl: string | undefined;
  let nonce: string | undefined;
  let pos = 0;
  while (pos < b.length) {
    const k = b[pos++];
    if (k !== REQ_TYPE_URL && k !== REQ_RESPONSE_NONCE) return decodeDeltaDiscoveryRequest(b);
    let len = 0;
    let shift = 1;
    for (;;) {
      if (pos >= b.length || shift > 2 ** 28) return decodeDeltaDiscoveryRequest(b);
      const byte = b[pos++] as number;
      len += (byte & 0x7f) * shift;
      shift *= 128;
      if (byte < 0x80) break;
    }
    if (pos + len > b.length) return decodeDeltaDiscoveryRequest(b);
    const v = b.toString('utf8', pos, pos + len);
    pos += len;
    if (k === REQ_TYPE_URL) typeUrl = v;
    else nonce = v;
  }
  const r: DeltaDiscoveryRequest = {};
  if (typeUrl) r.typeUrl = typeUrl;
  if (nonce) r.responseNonce = nonce;
  return r;
}
