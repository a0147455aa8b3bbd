// Strict proto3-JSON ⇄ protobuf binary codec for Envoy resources.
//
// Translation builds resources as plain proto3-JSON objects (camelCase field names, `Any`
// as `{ '@type': URL, ...fields }`, durations as "1.5s", wrappers as plain values, 64-bit
// integers as decimal strings). `encodeResource` checks such an object strictly against
// the loaded protos — every unknown field, wrong type, bad enum name, clashing oneof
// member and broken protoc-gen-validate rule is reported with its path — and encodes it
// deterministically: fields in field-number order, map entries in key order, default
// scalar values omitted, so the same object always gives the same bytes.
// `decodeResource` is the inverse, expanding nested `Any`s to their `@type` form.
import { TrellisError, type Result, ok, err } from '@trellis/core';
import type protobuf from 'protobufjs';
import { findMessageType, messageType } from './protos.js';
import { typeInfo, type FieldInfo, type ScalarType } from './proto-info.js';
import { checkFieldRules } from './pgv.js';
import { typeNameOf, typeUrlOf } from './type-urls.js';

/** A protobuf `Any` in binary form: a type URL and the encoded message. */
export interface EncodedAny {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

/**
 * A message in proto3-JSON `Any` form, as a field type of the resource interfaces: build
 * one with `toAny(typeUrl, msg)`.
 */
export interface AnyMessage {
  readonly '@type': string;
}

/** A decoded message in proto3-JSON `Any` form: `{ '@type': URL, ...fields }`. */
export interface AnyJson {
  readonly '@type': string;
  readonly [field: string]: unknown;
}

/** The outcome of a strict check: errors make a resource unusable, warnings do not. */
export interface VerifyResult {
  /** `path: message` for every problem, e.g. `filterChains[0].filters[0].name: is required`. */
  readonly errors: readonly string[];
  /** Uses of deprecated fields. */
  readonly warnings: readonly string[];
}

/** A resource that cannot be encoded or decoded; `problems` lists every located problem. */
export class XdsCodecError extends TrellisError {
  readonly problems: readonly string[];
  constructor(
    code: 'TRELLIS_XDS_ENCODE' | 'TRELLIS_XDS_DECODE',
    what: string,
    problems: readonly string[],
  ) {
    const shown = problems.slice(0, 10).join('; ');
    const more = problems.length > 10 ? `; and ${problems.length - 10} more` : '';
    super(code, `${what}: ${shown}${more}`);
    this.name = 'XdsCodecError';
    this.problems = problems;
  }
}

// ---------------------------------------------------------------------------------------
// Shared helpers

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const UINT32_MAX = 4294967295;
const FLOAT_MAX = 3.4028234663852886e38;
const DURATION_MAX_SECONDS = 315576000000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- only primitives reach here
  return `${typeof v} ${String(v)}`;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

const WRAPPER_SCALAR: Readonly<Record<string, ScalarType>> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

function is64(t: ScalarType): boolean {
  return t === 'int64' || t === 'uint64' || t === 'sint64' || t === 'fixed64' || t === 'sfixed64';
}

function isUnsigned(t: ScalarType): boolean {
  return t === 'uint32' || t === 'fixed32' || t === 'uint64' || t === 'fixed64';
}

// protobufjs loads the well-known types from bundled JSON that keeps snake_case field
// names (`type_url`, `number_value`), unlike the .proto files parsed with camelCase names.
interface WktKeys {
  readonly typeUrl: string;
  readonly nullValue: string;
  readonly numberValue: string;
  readonly stringValue: string;
  readonly boolValue: string;
  readonly structValue: string;
  readonly listValue: string;
}
let wktKeys: WktKeys | undefined;
function keys(): WktKeys {
  if (wktKeys) return wktKeys;
  const any = messageType('google.protobuf.Any');
  const value = messageType('google.protobuf.Value');
  const pick = (t: protobuf.Type, snake: string): string =>
    t.fields[snake] ? snake : snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  wktKeys = {
    typeUrl: pick(any, 'type_url'),
    nullValue: pick(value, 'null_value'),
    numberValue: pick(value, 'number_value'),
    stringValue: pick(value, 'string_value'),
    boolValue: pick(value, 'bool_value'),
    structValue: pick(value, 'struct_value'),
    listValue: pick(value, 'list_value'),
  };
  return wktKeys;
}

/** An EncodedAny as protobufjs' message-like object (for embedding in an outer message). */
export function anyToMessage(a: EncodedAny): Record<string, unknown> {
  return { [keys().typeUrl]: a.typeUrl, value: a.value };
}

/** The EncodedAny of a decoded protobufjs `Any` message. */
export function anyFromMessage(m: unknown): EncodedAny {
  const msg = (m ?? {}) as Record<string, unknown>;
  const url = msg[keys().typeUrl];
  return {
    typeUrl: typeof url === 'string' ? url : '',
    value: msg.value instanceof Uint8Array ? msg.value : new Uint8Array(),
  };
}

// ---------------------------------------------------------------------------------------
// Encoding (proto3 JSON → protobufjs message-like object → bytes)

class EncodeState {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  error(path: string, message: string): void {
    this.errors.push(path === '' ? message : `${path}: ${message}`);
  }
}

const OMIT = Symbol('omit');
/** A converted value, or OMIT after an error was recorded. */
type Converted = unknown;

/** Converts a scalar; returns OMIT when it is wrong (an error was recorded). */
function convertScalar(t: ScalarType, v: unknown, path: string, st: EncodeState): Converted {
  switch (t) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      break;
    case 'bytes':
      if (v instanceof Uint8Array) return v;
      if (typeof v === 'string') {
        if (!BASE64.test(v)) {
          st.error(path, `must be base64-encoded bytes, not ${describe(v)}`);
          return OMIT;
        }
        return new Uint8Array(Buffer.from(v, 'base64'));
      }
      break;
    case 'double':
    case 'float':
      if (typeof v === 'number') {
        if (Number.isNaN(v) || !Number.isFinite(v)) {
          st.error(path, `must be a finite number or "NaN"/"Infinity"/"-Infinity", not ${v}`);
          return OMIT;
        }
        if (t === 'float' && Math.abs(v) > FLOAT_MAX) {
          st.error(path, `is out of range for a float: ${v}`);
          return OMIT;
        }
        return v;
      }
      if (v === 'NaN') return NaN;
      if (v === 'Infinity') return Infinity;
      if (v === '-Infinity') return -Infinity;
      break;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'uint32':
    case 'fixed32':
      if (typeof v === 'number') {
        const min = isUnsigned(t) ? 0 : INT32_MIN;
        const max = isUnsigned(t) ? UINT32_MAX : INT32_MAX;
        if (!Number.isInteger(v) || v < min || v > max) {
          st.error(path, `must be an integer between ${min} and ${max}, not ${v}`);
          return OMIT;
        }
        return v;
      }
      break;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64': {
      let big: bigint | undefined;
      if (typeof v === 'number') {
        if (!Number.isSafeInteger(v)) {
          st.error(
            path,
            `must be an integer (as a number up to 2^53 or a decimal string), not ${v}`,
          );
          return OMIT;
        }
        big = BigInt(v);
      } else if (typeof v === 'string') {
        if (!/^-?\d+$/.test(v)) {
          st.error(path, `must be an integer in decimal, not ${describe(v)}`);
          return OMIT;
        }
        big = BigInt(v);
      } else break;
      const min = isUnsigned(t) ? 0n : INT64_MIN;
      const max = isUnsigned(t) ? UINT64_MAX : INT64_MAX;
      if (big < min || big > max) {
        st.error(path, `is out of range for ${t}: ${String(v)}`);
        return OMIT;
      }
      return big.toString();
    }
  }
  const expected =
    t === 'string'
      ? 'a string'
      : t === 'bool'
        ? 'a boolean'
        : t === 'bytes'
          ? 'base64-encoded bytes'
          : is64(t)
            ? 'an integer'
            : t === 'double' || t === 'float'
              ? 'a number'
              : 'an integer';
  st.error(path, `must be ${expected}, not ${describe(v)}`);
  return OMIT;
}

function convertEnum(f: FieldInfo, v: unknown, path: string, st: EncodeState): Converted {
  const e = f.enumType as protobuf.Enum;
  if (e.fullName === '.google.protobuf.NullValue') {
    if (v === null || v === 'NULL_VALUE' || v === 0) return 0;
  }
  if (typeof v === 'string') {
    const n = e.values[v];
    if (n !== undefined) return n;
    const names = Object.keys(e.values);
    const list = names.length <= 12 ? `: ${names.join(', ')}` : '';
    st.error(path, `unknown ${e.name} value "${v}"${list}`);
    return OMIT;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX) return v;
  st.error(path, `must be a ${e.name} name, not ${describe(v)}`);
  return OMIT;
}

function isDefault(f: FieldInfo, v: unknown): boolean {
  if (f.kind === 'enum') return v === 0;
  switch (f.scalar) {
    case 'string':
      return v === '';
    case 'bool':
      return v === false;
    case 'bytes':
      return v instanceof Uint8Array && v.length === 0;
    case undefined:
      return false;
    default:
      return v === 0 || v === '0';
  }
}

function convertValueOf(f: FieldInfo, v: unknown, path: string, st: EncodeState): Converted {
  if (f.kind === 'message') return convertMessage(f.messageType as protobuf.Type, v, path, st);
  if (f.kind === 'enum') return convertEnum(f, v, path, st);
  return convertScalar(f.scalar as ScalarType, v, path, st);
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

function convertDuration(v: unknown, path: string, st: EncodeState): Converted {
  const m = typeof v === 'string' ? DURATION_RE.exec(v) : null;
  if (!m) {
    st.error(path, `must be a duration such as "1.5s", not ${describe(v)}`);
    return OMIT;
  }
  const seconds = Number(m[2]);
  if (seconds > DURATION_MAX_SECONDS) {
    st.error(path, `is longer than the maximum duration (${DURATION_MAX_SECONDS}s)`);
    return OMIT;
  }
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  const sign = m[1] ? -1 : 1;
  const out: Json = {};
  if (seconds !== 0) out.seconds = String(sign * seconds);
  if (nanos !== 0) out.nanos = sign * nanos;
  return out;
}

const TIMESTAMP_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

function convertTimestamp(v: unknown, path: string, st: EncodeState): Converted {
  const m = typeof v === 'string' ? TIMESTAMP_RE.exec(v) : null;
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    st.error(
      path,
      `must be an RFC 3339 timestamp such as "2024-01-02T03:04:05Z", not ${describe(v)}`,
    );
    return OMIT;
  }
  const out: Json = {};
  const seconds = Math.floor(ms / 1000);
  if (seconds !== 0) out.seconds = String(seconds);
  const nanos = m[2] ? Number(m[2].padEnd(9, '0')) : 0;
  if (nanos !== 0) out.nanos = nanos;
  return out;
}

function convertValue(v: unknown, path: string, st: EncodeState): Converted {
  const k = keys();
  if (v === null) return { [k.nullValue]: 0 };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) {
      st.error(path, `must be a finite number, not ${v}`);
      return OMIT;
    }
    return { [k.numberValue]: v };
  }
  if (typeof v === 'string') return { [k.stringValue]: v };
  if (typeof v === 'boolean') return { [k.boolValue]: v };
  if (Array.isArray(v)) {
    const list = convertListValue(v, path, st);
    return list === OMIT ? OMIT : { [k.listValue]: list };
  }
  if (isPlainObject(v)) {
    const s = convertStruct(v, path, st);
    return s === OMIT ? OMIT : { [k.structValue]: s };
  }
  st.error(path, `must be a JSON value, not ${describe(v)}`);
  return OMIT;
}

function convertListValue(v: unknown, path: string, st: EncodeState): Converted {
  if (!Array.isArray(v)) {
    st.error(path, `must be an array, not ${describe(v)}`);
    return OMIT;
  }
  const values: unknown[] = [];
  (v as unknown[]).forEach((item, i) => {
    const c = convertValue(item === undefined ? null : item, `${path}[${i}]`, st);
    if (c !== OMIT) values.push(c);
  });
  return { values };
}

function convertStruct(v: unknown, path: string, st: EncodeState): Converted {
  if (!isPlainObject(v)) {
    st.error(path, `must be an object, not ${describe(v)}`);
    return OMIT;
  }
  const fields: Json = {};
  for (const key of Object.keys(v).sort()) {
    const item = v[key];
    if (item === undefined) continue;
    const c = convertValue(item, `${path}[${JSON.stringify(key)}]`, st);
    if (c !== OMIT) fields[key] = c;
  }
  return { fields };
}

function convertAny(v: unknown, path: string, st: EncodeState): Converted {
  if (!isPlainObject(v)) {
    st.error(path, `must be an object with "@type", not ${describe(v)}`);
    return OMIT;
  }
  const url = v['@type'];
  if (typeof url !== 'string' || url === '') {
    st.error(join(path, '@type'), 'is required');
    return OMIT;
  }
  const inner = findMessageType(typeNameOf(url));
  if (!inner) {
    st.error(join(path, '@type'), `unknown type "${url}"`);
    return OMIT;
  }
  const innerName = inner.fullName.slice(1);
  let converted: Converted;
  if (isWellKnown(innerName)) {
    for (const key of Object.keys(v)) {
      if (key !== '@type' && key !== 'value') st.error(join(path, key), 'unknown field');
    }
    converted = convertMessage(inner, v.value, join(path, 'value'), st);
  } else {
    const { '@type': _t, ...rest } = v;
    converted = convertFields(inner, rest, path, st);
  }
  if (converted === OMIT) return OMIT;
  return anyToMessage({ typeUrl: url, value: inner.encode(converted as Json).finish() });
}

function isWellKnown(fullName: string): boolean {
  return fullName in WRAPPER_SCALAR || WELL_KNOWN.has(fullName);
}

const WELL_KNOWN = new Set([
  'google.protobuf.Any',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.FieldMask',
  'google.protobuf.Empty',
]);

function convertMessage(type: protobuf.Type, v: unknown, path: string, st: EncodeState): Converted {
  const name = typeInfo(type).fullName;
  switch (name) {
    case 'google.protobuf.Any':
      return convertAny(v, path, st);
    case 'google.protobuf.Duration':
      return convertDuration(v, path, st);
    case 'google.protobuf.Timestamp':
      return convertTimestamp(v, path, st);
    case 'google.protobuf.Struct':
      return convertStruct(v, path, st);
    case 'google.protobuf.Value':
      return convertValue(v, path, st);
    case 'google.protobuf.ListValue':
      return convertListValue(v, path, st);
    case 'google.protobuf.FieldMask':
      if (typeof v !== 'string') {
        st.error(path, `must be a comma-separated field mask string, not ${describe(v)}`);
        return OMIT;
      }
      return {
        paths:
          v === ''
            ? []
            : v.split(',').map((p) => p.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())),
      };
    default: {
      const scalar = WRAPPER_SCALAR[name];
      if (scalar) {
        const c = convertScalar(scalar, v, path, st);
        if (c === OMIT) return OMIT;
        return c === 0 ||
          c === '0' ||
          c === '' ||
          c === false ||
          (c instanceof Uint8Array && c.length === 0)
          ? {}
          : { value: c };
      }
      if (!isPlainObject(v)) {
        st.error(path, `must be an object (${name}), not ${describe(v)}`);
        return OMIT;
      }
      return convertFields(type, v, path, st);
    }
  }
}

function convertFields(type: protobuf.Type, v: Json, path: string, st: EncodeState): Converted {
  const info = typeInfo(type);
  const out: Json = {};
  const oneofSeen = new Map<protobuf.OneOf, string>();
  for (const key of Object.keys(v)) {
    const value = v[key];
    const p = join(path, key);
    const f = info.byJsonName.get(key);
    if (!f) {
      if (value === undefined) continue;
      const snake = info.bySnakeName.get(key);
      st.error(p, snake ? `unknown field (the JSON name is ${snake.jsonName})` : 'unknown field');
      continue;
    }
    if (
      value === undefined ||
      (value === null && f.messageType?.fullName !== '.google.protobuf.Value')
    )
      continue;
    if (f.deprecated) st.warnings.push(`${p}: deprecated field`);
    if (f.oneof) {
      const other = oneofSeen.get(f.oneof);
      if (other !== undefined) {
        st.error(
          p,
          `cannot be set together with ${other} (only one field of ${f.oneof.name} may be set)`,
        );
        continue;
      }
      oneofSeen.set(f.oneof, key);
    }
    const before = st.errors.length;
    const c = convertField(f, value, p, st);
    if (c === OMIT) continue;
    if (st.errors.length === before && f.rules && !info.validationDisabled)
      checkFieldRules(f, value, p, (rp, m) => st.error(rp, m));
    if (!f.presence && !f.repeated && !f.map && isDefault(f, c)) continue;
    out[f.name] = c;
  }
  if (!info.validationDisabled) {
    // Rules of absent fields (e.g. a required message, a string with min_len).
    for (const f of info.fields) {
      if (f.field.partOf) continue; // oneof members and proto3 optionals: rules apply when set
      if (f.rules && (v[f.jsonName] === undefined || v[f.jsonName] === null))
        checkFieldRules(f, undefined, join(path, f.jsonName), (rp, m) => st.error(rp, m));
    }
    for (const members of info.requiredOneofs) {
      if (!members.some((n) => v[n] !== undefined && v[n] !== null))
        st.error(path, `one of ${members.join(', ')} is required`);
    }
  }
  return out;
}

function convertField(f: FieldInfo, value: unknown, p: string, st: EncodeState): Converted {
  if (f.map) {
    if (!isPlainObject(value)) {
      st.error(p, `must be an object (a map), not ${describe(value)}`);
      return OMIT;
    }
    const m: Json = {};
    for (const k of Object.keys(value).sort()) {
      const item = value[k];
      if (item === undefined) continue;
      const kp = `${p}[${JSON.stringify(k)}]`;
      if (!checkMapKey(f.keyType as ScalarType, k)) {
        st.error(kp, `is not a valid ${String(f.keyType)} map key`);
        continue;
      }
      if (item === null && f.messageType?.fullName !== '.google.protobuf.Value') {
        st.error(kp, 'must not be null');
        continue;
      }
      const c = convertValueOf(f, item, kp, st);
      if (c !== OMIT) m[k] = c;
    }
    return m;
  }
  if (f.repeated) {
    if (!Array.isArray(value)) {
      st.error(p, `must be an array, not ${describe(value)}`);
      return OMIT;
    }
    const arr: unknown[] = [];
    (value as unknown[]).forEach((item, i) => {
      const ip = `${p}[${i}]`;
      if (item === null || item === undefined) {
        st.error(ip, 'must not be null');
        return;
      }
      const c = convertValueOf(f, item, ip, st);
      if (c !== OMIT) arr.push(c);
    });
    return arr;
  }
  return convertValueOf(f, value, p, st);
}

function checkMapKey(t: ScalarType, k: string): boolean {
  switch (t) {
    case 'string':
      return true;
    case 'bool':
      return k === 'true' || k === 'false';
    default:
      return /^-?\d+$/.test(k);
  }
}

function resolveType(typeUrlOrName: string): protobuf.Type {
  const name = typeNameOf(typeUrlOrName);
  const t = findMessageType(name);
  if (!t)
    throw new XdsCodecError('TRELLIS_XDS_ENCODE', 'cannot encode', [
      `unknown type "${typeUrlOrName}"`,
    ]);
  return t;
}

function runEncode(type: protobuf.Type, obj: unknown): { st: EncodeState; converted: Converted } {
  const st = new EncodeState();
  const converted = convertMessage(type, obj, '', st);
  return { st, converted };
}

/**
 * Checks a proto3-JSON object against a message type (by type URL or full name) without
 * keeping the bytes: every unknown field, wrong type and broken validation rule, with paths.
 */
export function verifyResource(typeUrlOrName: string, obj: unknown): VerifyResult {
  const { st } = runEncode(resolveType(typeUrlOrName), obj);
  return { errors: st.errors, warnings: st.warnings };
}

/** Encodes a proto3-JSON object as a message of the given type; throws XdsCodecError on any problem. */
export function encodeMessage(typeUrlOrName: string, obj: unknown): Uint8Array {
  const type = resolveType(typeUrlOrName);
  const { st, converted } = runEncode(type, obj);
  if (st.errors.length > 0 || converted === OMIT)
    throw new XdsCodecError('TRELLIS_XDS_ENCODE', `invalid ${typeInfo(type).fullName}`, st.errors);
  return type.encode(converted as Json).finish();
}

/**
 * Encodes a resource (proto3-JSON shape) into an `Any` of the given type URL.
 * Strict: throws XdsCodecError listing every problem. Deterministic: same object, same bytes.
 */
export function encodeResource(typeUrl: string, obj: unknown): EncodedAny {
  return { typeUrl, value: encodeMessage(typeUrl, obj) };
}

/** Encodes an `{ '@type': URL, ...fields }` object into an `Any`. */
export function encodeAny(obj: AnyMessage): EncodedAny {
  const { '@type': url, ...rest } = obj as AnyJson;
  return encodeResource(url, rest);
}

/** Wraps a message in proto3-JSON `Any` form: `{ '@type': URL, ...msg }`. */
export function toAny<T extends object>(typeUrl: string, msg: T): T & AnyMessage {
  return { '@type': typeUrl, ...msg };
}

// ---------------------------------------------------------------------------------------
// Decoding (bytes → protobufjs message → proto3 JSON)

class DecodeState {
  readonly errors: string[] = [];
  error(path: string, message: string): void {
    this.errors.push(path === '' ? message : `${path}: ${message}`);
  }
}

interface LongLike {
  toString(): string;
  low: number;
  high: number;
}

function isLong(v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && 'low' in v && 'high' in v;
}

function int64Json(v: unknown): string {
  if (isLong(v)) return v.toString();
  return String(v);
}

function scalarJson(t: ScalarType, v: unknown): unknown {
  if (is64(t)) return int64Json(v);
  if (t === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (t === 'double' || t === 'float') {
    const n = v as number;
    if (Number.isNaN(n)) return 'NaN';
    if (n === Infinity) return 'Infinity';
    if (n === -Infinity) return '-Infinity';
    return t === 'float' ? Number(n.toPrecision(7)) : n;
  }
  return v;
}

function isDefaultDecoded(f: FieldInfo, v: unknown): boolean {
  if (f.kind === 'enum') return v === 0;
  switch (f.scalar) {
    case 'string':
      return v === '';
    case 'bool':
      return v === false;
    case 'bytes':
      return v instanceof Uint8Array && v.length === 0;
    case undefined:
      return false;
    default:
      if (isLong(v)) return v.low === 0 && v.high === 0;
      return v === 0;
  }
}

function durationJson(m: Json): string {
  const seconds = BigInt(int64Json(m.seconds ?? 0));
  const nanos = Number(m.nanos ?? 0);
  const negative = seconds < 0n || nanos < 0;
  const s = seconds < 0n ? -seconds : seconds;
  const n = Math.abs(nanos);
  const frac = n === 0 ? '' : '.' + String(n).padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${s}${frac}s`;
}

function timestampJson(m: Json): string {
  const seconds = Number(int64Json(m.seconds ?? 0));
  const nanos = Number(m.nanos ?? 0);
  const base = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  const frac = nanos === 0 ? '' : '.' + String(nanos).padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac}Z`;
}

function valueJson(m: Json): unknown {
  const k = keys();
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(m, key);
  if (m[k.structValue] != null) return structJson(m[k.structValue] as Json);
  if (m[k.listValue] != null) return listJson(m[k.listValue] as Json);
  if (has(k.numberValue)) return m[k.numberValue];
  if (has(k.stringValue)) return m[k.stringValue];
  if (has(k.boolValue)) return m[k.boolValue];
  return null;
}

function structJson(m: Json): Json {
  const out: Json = {};
  const fields = (m.fields ?? {}) as Json;
  for (const k of Object.keys(fields).sort()) out[k] = valueJson(fields[k] as Json);
  return out;
}

function listJson(m: Json): unknown[] {
  return ((m.values ?? []) as Json[]).map(valueJson);
}

function anyJson(m: Json, path: string, st: DecodeState): AnyJson | undefined {
  const a = anyFromMessage(m);
  return decodeAnyBytes(a.typeUrl, a.value, path, st);
}

function decodeAnyBytes(
  url: string,
  bytes: Uint8Array,
  path: string,
  st: DecodeState,
): AnyJson | undefined {
  const inner = findMessageType(typeNameOf(url));
  if (!inner) {
    st.error(path, `cannot read type "${url}"`);
    return undefined;
  }
  let decoded: Json;
  try {
    decoded = inner.decode(bytes) as unknown as Json;
  } catch (e) {
    st.error(path, `malformed ${typeNameOf(url)}: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  const name = inner.fullName.slice(1);
  const json = messageJson(inner, decoded, path, st);
  if (isWellKnown(name)) return { '@type': url, value: json };
  return { '@type': url, ...(json as Json) };
}

function messageJson(type: protobuf.Type, m: Json, path: string, st: DecodeState): unknown {
  const info = typeInfo(type);
  switch (info.fullName) {
    case 'google.protobuf.Any':
      return anyJson(m, path, st);
    case 'google.protobuf.Duration':
      return durationJson(m);
    case 'google.protobuf.Timestamp':
      return timestampJson(m);
    case 'google.protobuf.Struct':
      return structJson(m);
    case 'google.protobuf.Value':
      return valueJson(m);
    case 'google.protobuf.ListValue':
      return listJson(m);
    case 'google.protobuf.FieldMask':
      return ((m.paths ?? []) as string[])
        .map((p) => p.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase()))
        .join(',');
    default: {
      const scalar = WRAPPER_SCALAR[info.fullName];
      if (scalar) {
        const v = Object.prototype.hasOwnProperty.call(m, 'value') ? m.value : undefined;
        if (v !== undefined) return scalarJson(scalar, v);
        return scalarJson(
          scalar,
          scalar === 'string'
            ? ''
            : scalar === 'bool'
              ? false
              : scalar === 'bytes'
                ? new Uint8Array()
                : 0,
        );
      }
    }
  }
  const out: Json = {};
  for (const f of info.fields) {
    if (!Object.prototype.hasOwnProperty.call(m, f.name)) continue;
    const v = m[f.name];
    if (v === null || v === undefined) continue;
    const p = join(path, f.jsonName);
    if (f.map) {
      const entries = v as Json;
      const keys = Object.keys(entries).sort();
      if (keys.length === 0) continue;
      const mo: Json = {};
      for (const k of keys) mo[k] = fieldValueJson(f, entries[k], `${p}[${JSON.stringify(k)}]`, st);
      out[f.jsonName] = mo;
    } else if (f.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      out[f.jsonName] = arr.map((item, i) => fieldValueJson(f, item, `${p}[${i}]`, st));
    } else {
      if (f.oneof && m[f.oneof.name] !== undefined && m[f.oneof.name] !== f.name) continue;
      if (!f.presence && isDefaultDecoded(f, v)) continue;
      out[f.jsonName] = fieldValueJson(f, v, p, st);
    }
  }
  return out;
}

function fieldValueJson(f: FieldInfo, v: unknown, path: string, st: DecodeState): unknown {
  if (f.kind === 'message') return messageJson(f.messageType as protobuf.Type, v as Json, path, st);
  if (f.kind === 'enum') {
    const n = v as number;
    return f.enumType?.valuesById[n] ?? n;
  }
  return scalarJson(f.scalar as ScalarType, v);
}

/** Options for decoding. */
export interface DecodeOptions {
  /** Also run the strict check (validation rules) on the decoded object. */
  readonly verify?: boolean;
}

/**
 * Decodes a message of the given type (type URL or full name) into proto3-JSON shape,
 * expanding nested `Any`s. Throws XdsCodecError when bytes are malformed or a nested `Any`
 * holds a type that is not loaded (a proxy cannot use what it cannot read).
 */
export function decodeMessage(
  typeUrlOrName: string,
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Json {
  const name = typeNameOf(typeUrlOrName);
  const type = findMessageType(name);
  if (!type)
    throw new XdsCodecError('TRELLIS_XDS_DECODE', 'cannot decode', [
      `unknown type "${typeUrlOrName}"`,
    ]);
  const st = new DecodeState();
  let decoded: Json;
  try {
    decoded = type.decode(bytes) as unknown as Json;
  } catch (e) {
    throw new XdsCodecError('TRELLIS_XDS_DECODE', `malformed ${name}`, [
      e instanceof Error ? e.message : String(e),
    ]);
  }
  const json = messageJson(type, decoded, '', st) as Json;
  if (st.errors.length > 0)
    throw new XdsCodecError('TRELLIS_XDS_DECODE', `cannot read ${name}`, st.errors);
  if (options.verify) {
    const r = verifyResource(name, json);
    if (r.errors.length > 0)
      throw new XdsCodecError('TRELLIS_XDS_DECODE', `invalid ${name}`, r.errors);
  }
  return json;
}

/**
 * Decodes an `Any` into `{ '@type': URL, ...fields }` with nested `Any`s expanded.
 * Throws XdsCodecError (code TRELLIS_XDS_DECODE) with every problem.
 */
export function decodeResource(any: EncodedAny, options: DecodeOptions = {}): AnyJson {
  const fields = decodeMessage(any.typeUrl, any.value, options);
  const name = typeNameOf(any.typeUrl);
  if (isWellKnown(name)) return { '@type': any.typeUrl, value: fields };
  return { '@type': any.typeUrl, ...fields };
}

/** decodeResource as a Result: the error lists every problem (for a NACK's error detail). */
export function tryDecodeResource(
  any: EncodedAny,
  options: DecodeOptions = {},
): Result<AnyJson, XdsCodecError> {
  try {
    return ok(decodeResource(any, options));
  } catch (e) {
    if (e instanceof XdsCodecError) return err(e);
    return err(
      new XdsCodecError('TRELLIS_XDS_DECODE', 'cannot decode', [
        e instanceof Error ? e.message : String(e),
      ]),
    );
  }
}

/** The full type URL for a message name, checking that the type is loaded. */
export function knownTypeUrl(fullName: string): string {
  messageType(fullName);
  return typeUrlOf(fullName);
}
