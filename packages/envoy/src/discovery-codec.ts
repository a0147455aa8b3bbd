// Wire encoding of the discovery messages.
//
// Responses are encoded directly (their resources are already binary `Any`s); requests,
// which are small, go through the strict codec, so a client cannot send a malformed node.
// Decoding never throws on well-formed protobuf: unknown nested types in a request's node
// or error detail are skipped.
import protobuf from 'protobufjs';
import { anyFromMessage, anyToMessage, decodeMessage, encodeMessage } from './codec.js';
import { messageType } from './protos.js';
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
  Node,
  Resource,
  Status,
} from './discovery.js';
import type { EncodedAny } from './codec.js';

const protobufWriter = (): protobuf.Writer => protobuf.Writer.create();

type Msg = Record<string, unknown>;

const NAMES = {
  request: 'envoy.service.discovery.v3.DiscoveryRequest',
  response: 'envoy.service.discovery.v3.DiscoveryResponse',
  deltaRequest: 'envoy.service.discovery.v3.DeltaDiscoveryRequest',
  deltaResponse: 'envoy.service.discovery.v3.DeltaDiscoveryResponse',
  node: 'envoy.config.core.v3.Node',
} as const;

let types:
  | {
      request: protobuf.Type;
      response: protobuf.Type;
      deltaRequest: protobuf.Type;
      deltaResponse: protobuf.Type;
      node: protobuf.Type;
    }
  | undefined;

function t(): NonNullable<typeof types> {
  types ??= {
    request: messageType(NAMES.request),
    response: messageType(NAMES.response),
    deltaRequest: messageType(NAMES.deltaRequest),
    deltaResponse: messageType(NAMES.deltaResponse),
    node: messageType(NAMES.node),
  };
  return types;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.length > 0 ? (v as string[]) : undefined;
}

function nodeOf(v: unknown): Node | undefined {
  if (!v) return undefined;
  try {
    // Re-encode the decoded sub-message and read it as JSON (Struct metadata → plain object).
    const bytes = t().node.encode(v).finish();
    return decodeMessage(NAMES.node, bytes);
  } catch {
    // Only a nested Any of an unknown type can fail here: keep the plain fields.
    const m = v as Msg;
    const node: Node = {};
    const id = str(m.id);
    if (id !== undefined) node.id = id;
    const cluster = str(m.cluster);
    if (cluster !== undefined) node.cluster = cluster;
    return node;
  }
}

function statusOf(v: unknown): Status | undefined {
  if (!v) return undefined;
  const m = v as Msg;
  const s: Status = {};
  if (typeof m.code === 'number' && m.code !== 0) s.code = m.code;
  if (typeof m.message === 'string' && m.message !== '') s.message = m.message;
  return s;
}

function put<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

/** Encodes a state-of-the-world request (strictly checked). */
export function encodeDiscoveryRequest(r: DiscoveryRequest): Uint8Array {
  return encodeMessage(NAMES.request, r);
}

/** DiscoveryRequest.resource_names: field 3, length-delimited. */
const RESOURCE_NAMES_FIELD = 3;

/**
 * Splits a message's top-level field `field` (length-delimited entries) from the rest: the rest
 * is decoded as usual, the entries are kept as raw bytes. Throws on malformed protobuf.
 */
function splitField(
  bytes: Uint8Array,
  field: number,
): { rest: Uint8Array; raw: Uint8Array | undefined } {
  // Runs once per request over every top-level field (thousands of names in an EDS ACK), so it
  // allocates nothing per field: adjacent ranges are merged as they are found.
  const keep: number[] = [];
  const take: number[] = [];
  const add = (list: number[], start: number, end: number): void => {
    if (list.length > 0 && list[list.length - 1] === start) list[list.length - 1] = end;
    else list.push(start, end);
  };
  let at = 0;
  let value = 0;
  const varint = (): void => {
    value = 0;
    let mul = 1;
    const limit = Math.min(bytes.length, at + 10);
    while (at < limit) {
      const b = bytes[at++] as number;
      value += (b & 0x7f) * mul;
      if (b < 0x80) return;
      mul *= 128;
    }
    throw new Error('malformed protobuf: truncated varint');
  };
  while (at < bytes.length) {
    const start = at;
    varint();
    const tag = value;
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      varint();
      at += value;
    } else throw new Error(`malformed protobuf: wire type ${wire}`);
    if (at > bytes.length) throw new Error('malformed protobuf: field runs past the end');
    add(Math.floor(tag / 8) === field && wire === 2 ? take : keep, start, at);
  }
  if (take.length === 0) return { rest: bytes, raw: undefined };
  const join = (ranges: number[]): Uint8Array => {
    if (ranges.length === 2) return bytes.subarray(ranges[0], ranges[1]);
    let size = 0;
    for (let k = 0; k < ranges.length; k += 2)
      size += (ranges[k + 1] as number) - (ranges[k] as number);
    const out = new Uint8Array(size);
    let o = 0;
    for (let k = 0; k < ranges.length; k += 2) {
      const a = ranges[k] as number;
      const b = ranges[k + 1] as number;
      out.set(bytes.subarray(a, b), o);
      o += b - a;
    }
    return out;
  };
  return { rest: keep.length === 0 ? new Uint8Array() : join(keep), raw: join(take) };
}

/** Decodes raw resource_names entries (from splitField). */
function decodeNames(raw: Uint8Array): string[] {
  const m = t().request.decode(raw) as unknown as Msg;
  return (m.resourceNames as string[] | undefined) ?? [];
}

/**
 * Decodes a state-of-the-world request. Throws on malformed protobuf. The resource names are
 * decoded lazily (see DiscoveryRequest.resourceNamesRaw).
 */
export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequest {
  // A plain Uint8Array: protobufjs reads Node Buffers leniently (a string running past the end
  // is cut short rather than rejected).
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { rest, raw } = splitField(plain, RESOURCE_NAMES_FIELD);
  const m = t().request.decode(rest) as unknown as Msg;
  const r: DiscoveryRequest = {};
  put(r, 'versionInfo', str(m.versionInfo));
  put(r, 'node', nodeOf(m.node));
  if (raw) {
    // Structure was checked by splitField: decoding the names later cannot fail.
    let names: string[] | undefined;
    Object.defineProperty(r, 'resourceNamesRaw', { value: raw, enumerable: false });
    Object.defineProperty(r, 'resourceNames', {
      enumerable: true,
      configurable: true,
      get: () => (names ??= decodeNames(raw)),
      set: (v: string[]) => {
        names = v;
      },
    });
  }
  put(r, 'typeUrl', str(m.typeUrl));
  put(r, 'responseNonce', str(m.responseNonce));
  put(r, 'errorDetail', statusOf(m.errorDetail));
  return r;
}

/** Encodes a state-of-the-world response; its resources are already encoded. */
export function encodeDiscoveryResponse(r: DiscoveryResponse): Uint8Array {
  const { encodedResources, ...rest } = r;
  const msg: Msg = { ...rest };
  if (r.resources) msg.resources = r.resources.map(anyToMessage);
  const head = t().response.encode(msg).finish();
  if (!encodedResources || encodedResources.length === 0) return head;
  // Protobuf fields may come in any order and repeated fields concatenate, so the shared
  // entries are appended after the small per-proxy part: one copy, no re-encoding.
  return Buffer.concat([head, ...encodedResources]);
}

/** Field 2 (`resources`) of DiscoveryResponse, wire type 2 (length-delimited). */
const RESOURCES_TAG = (2 << 3) | 2;

/**
 * Encodes resources as `DiscoveryResponse.resources` field entries, to be passed as
 * `encodedResources`: the bytes are the same whichever response carries them.
 */
export function encodeResourceEntries(resources: Iterable<EncodedAny>): Buffer {
  const w = protobufWriter();
  for (const a of resources) {
    w.uint32(RESOURCES_TAG).fork();
    w.uint32((1 << 3) | 2).string(a.typeUrl);
    w.uint32((2 << 3) | 2).bytes(a.value);
    w.ldelim();
  }
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes a state-of-the-world response, leaving resources as binary `Any`s. */
export function decodeDiscoveryResponse(bytes: Uint8Array): DiscoveryResponse {
  const m = t().response.decode(bytes) as unknown as Msg;
  const r: DiscoveryResponse = {};
  put(r, 'versionInfo', str(m.versionInfo));
  const resources = m.resources as unknown[] | undefined;
  if (resources && resources.length > 0) r.resources = resources.map(anyFromMessage);
  if (m.canary === true) r.canary = true;
  put(r, 'typeUrl', str(m.typeUrl));
  put(r, 'nonce', str(m.nonce));
  const cp = m.controlPlane as Msg | undefined;
  if (cp) r.controlPlane = { identifier: typeof cp.identifier === 'string' ? cp.identifier : '' };
  return r;
}

/** Encodes a delta request (strictly checked). */
export function encodeDeltaDiscoveryRequest(r: DeltaDiscoveryRequest): Uint8Array {
  return encodeMessage(NAMES.deltaRequest, r);
}

/** Decodes a delta request. Throws on malformed protobuf. */
export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequest {
  const m = t().deltaRequest.decode(bytes) as unknown as Msg;
  const r: DeltaDiscoveryRequest = {};
  put(r, 'node', nodeOf(m.node));
  put(r, 'typeUrl', str(m.typeUrl));
  put(r, 'resourceNamesSubscribe', strings(m.resourceNamesSubscribe));
  put(r, 'resourceNamesUnsubscribe', strings(m.resourceNamesUnsubscribe));
  const initial = m.initialResourceVersions as Record<string, string> | undefined;
  if (initial && Object.keys(initial).length > 0) r.initialResourceVersions = { ...initial };
  put(r, 'responseNonce', str(m.responseNonce));
  put(r, 'errorDetail', statusOf(m.errorDetail));
  return r;
}

/** Encodes a delta response; its resources are already encoded. */
export function encodeDeltaDiscoveryResponse(r: DeltaDiscoveryResponse): Uint8Array {
  const { resources, ...rest } = r;
  const msg: Msg = { ...rest };
  if (resources) {
    msg.resources = resources.map((res) => {
      const { ttl, resource, ...fields } = res;
      const out: Msg = { ...fields };
      if (resource) out.resource = anyToMessage(resource);
      if (ttl !== undefined) out.ttl = durationMsg(ttl);
      return out;
    });
  }
  return t().deltaResponse.encode(msg).finish();
}

function durationMsg(d: string): Msg {
  const m = /^(\d+)(?:\.(\d{1,9}))?s$/.exec(d);
  if (!m) throw new Error(`invalid duration "${d}"`);
  return { seconds: m[1], nanos: m[2] ? Number(m[2].padEnd(9, '0')) : 0 };
}

/** Decodes a delta response, leaving resources as binary `Any`s. */
export function decodeDeltaDiscoveryResponse(bytes: Uint8Array): DeltaDiscoveryResponse {
  const m = t().deltaResponse.decode(bytes) as unknown as Msg;
  const r: DeltaDiscoveryResponse = {};
  put(r, 'systemVersionInfo', str(m.systemVersionInfo));
  const resources = m.resources as Msg[] | undefined;
  if (resources && resources.length > 0) {
    r.resources = resources.map((res) => {
      const out: Resource = {};
      put(out, 'name', str(res.name));
      put(out, 'aliases', strings(res.aliases));
      put(out, 'version', str(res.version));
      if (res.resource) out.resource = anyFromMessage(res.resource);
      return out;
    });
  }
  put(r, 'typeUrl', str(m.typeUrl));
  put(r, 'removedResources', strings(m.removedResources));
  put(r, 'nonce', str(m.nonce));
  const cp = m.controlPlane as Msg | undefined;
  if (cp) r.controlPlane = { identifier: typeof cp.identifier === 'string' ? cp.identifier : '' };
  return r;
}
