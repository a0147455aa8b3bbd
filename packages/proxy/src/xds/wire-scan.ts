// Finds protobuf fields the proxy's protos do not know, in the raw bytes of a resource.
//
// Decoding drops unknown field numbers silently (protobuf's forward compatibility), so a
// control plane newer than the proxy could set a field the proxy would never see. This scan
// walks the wire format alongside the message schema — into nested messages, map values and
// `Any`s — and reports each unknown field number with the path of the message holding it, so
// it is NACKed instead of ignored.
import { findMessageType, typeNameOf } from '@trellis/envoy';

type PbType = NonNullable<ReturnType<typeof findMessageType>>;

const MAX_DEPTH = 100;

/** Reads a varint at `pos`; returns [value (low 53 bits are enough for tags/lengths), next pos] or undefined. */
function varint(buf: Uint8Array, pos: number, end: number): [number, number] | undefined {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return undefined;
    const b = buf[pos++] as number;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  return undefined;
}

function isMessageType(t: unknown): t is PbType {
  return typeof t === 'object' && t !== null && 'fieldsById' in t;
}

function protoName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

function shortName(t: PbType): string {
  return t.fullName
    .replace(/^\./, '')
    .split('.')
    .filter((p) => /^[A-Z]/.test(p))
    .join('.');
}

interface Field {
  readonly id: number;
  readonly wire: number;
  readonly start: number;
  readonly end: number;
}

/** The fields of one message (undefined when the bytes are malformed: decoding reports that). */
function fields(buf: Uint8Array, start: number, end: number): Field[] | undefined {
  const out: Field[] = [];
  let pos = start;
  while (pos < end) {
    const tag = varint(buf, pos, end);
    if (!tag) return undefined;
    pos = tag[1];
    const id = Math.floor(tag[0] / 8);
    const wire = tag[0] % 8;
    let valueStart = pos;
    switch (wire) {
      case 0: {
        const v = varint(buf, pos, end);
        if (!v) return undefined;
        pos = v[1];
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const len = varint(buf, pos, end);
        if (!len) return undefined;
        valueStart = len[1];
        pos = len[1] + len[0];
        break;
      }
      default:
        return undefined; // groups (deprecated) or garbage
    }
    if (pos > end) return undefined;
    out.push({ id, wire, start: valueStart, end: pos });
  }
  return out;
}

function scan(
  type: PbType,
  buf: Uint8Array,
  start: number,
  end: number,
  path: string,
  out: string[],
  depth: number,
): void {
  if (depth > MAX_DEPTH) return;
  const list = fields(buf, start, end);
  if (!list) return;
  const seen = new Map<number, number>();
  for (const f of list) {
    const index = seen.get(f.id) ?? 0;
    seen.set(f.id, index + 1);
    const field = type.fieldsById[f.id];
    if (!field) {
      out.push(
        `${path === '' ? '' : path + ': '}field number ${f.id} of ${shortName(type)} is unknown to the Trellis proxy`,
      );
      continue;
    }
    if (f.wire !== 2) continue;
    const resolved: unknown = field.resolvedType;
    if (!isMessageType(resolved)) continue; // strings, bytes, packed scalars
    const name = protoName(field.name);
    if ('keyType' in field) {
      // A map entry: key = 1, value = 2.
      const entry = fields(buf, f.start, f.end);
      const key = entry?.find((e) => e.id === 1);
      const value = entry?.find((e) => e.id === 2);
      const keyText =
        key && key.wire === 2
          ? JSON.stringify(Buffer.from(buf.subarray(key.start, key.end)).toString('utf8'))
          : String(index);
      if (value && value.wire === 2)
        scanMessage(
          resolved,
          buf,
          value.start,
          value.end,
          `${join(path, name)}[${keyText}]`,
          out,
          depth,
        );
      continue;
    }
    const p = field.repeated ? `${join(path, name)}[${index}]` : join(path, name);
    scanMessage(resolved, buf, f.start, f.end, p, out, depth);
  }
}

function scanMessage(
  type: PbType,
  buf: Uint8Array,
  start: number,
  end: number,
  path: string,
  out: string[],
  depth: number,
): void {
  if (type.fullName !== '.google.protobuf.Any') {
    scan(type, buf, start, end, path, out, depth + 1);
    return;
  }
  const parts = fields(buf, start, end);
  const url = parts?.find((p) => p.id === 1 && p.wire === 2);
  const value = parts?.find((p) => p.id === 2 && p.wire === 2);
  if (!url || !value) return;
  const typeUrl = Buffer.from(buf.subarray(url.start, url.end)).toString('utf8');
  const inner = findMessageType(typeNameOf(typeUrl));
  if (inner) scan(inner, buf, value.start, value.end, path, out, depth + 1);
}

/**
 * Every field number in `bytes` (a message of full name `messageName`) that the loaded protos
 * do not define, as `path: field number N of Type is unknown to the Trellis proxy`.
 */
export function unknownFields(messageName: string, bytes: Uint8Array): string[] {
  const type = findMessageType(messageName);
  const out: string[] = [];
  if (type) scan(type, bytes, 0, bytes.length, '', out, 0);
  return out;
}
