// protoc-gen-validate rules: the constraints Envoy enforces on every config it loads.
//
// Envoy rejects (NACKs) a resource that breaks one of the `(validate.rules)` annotations of
// its protos, so the codec checks the common ones too: a translation bug then fails our
// tests instead of a proxy. The rules are checked on the proto3-JSON input, after its
// types were checked.
import { isIP } from 'node:net';
import type { FieldInfo, PgvRules } from './proto-info.js';

/** Where rule violations are reported. */
export type RuleSink = (path: string, message: string) => void;

const NUMERIC_KEYS = [
  'double',
  'float',
  'int32',
  'int64',
  'uint32',
  'uint64',
  'sint32',
  'sint64',
  'fixed32',
  'fixed64',
  'sfixed32',
  'sfixed64',
] as const;

const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

type Obj = Readonly<Record<string, unknown>>;

function sub(rules: Obj | undefined, key: string): Obj | undefined {
  const v = rules?.[key];
  return v && typeof v === 'object' ? (v as Obj) : undefined;
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  if (v && typeof v === 'object' && 'toNumber' in v && typeof v.toNumber === 'function')
    return (v as { toNumber(): number }).toNumber();
  return undefined;
}

function durationSeconds(v: unknown): number {
  if (typeof v === 'string') {
    const m = /^(-)?(\d+)(?:\.(\d+))?s$/.exec(v);
    if (!m) return NaN;
    const s = Number(m[2]) + (m[3] ? Number('0.' + m[3]) : 0);
    return m[1] ? -s : s;
  }
  if (v && typeof v === 'object') {
    const o = v as Obj;
    return (num(o.seconds) ?? 0) + (num(o.nanos) ?? 0) / 1e9;
  }
  return NaN;
}

function fmtDuration(seconds: number): string {
  return `${Number(seconds.toFixed(9))}s`;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// Envoy's header rules (protoc-gen-validate well_known_regex), strict and lax forms.
const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_NAME_LAX = /^[^\0\n\r]*$/;
// eslint-disable-next-line no-control-regex -- control characters are what the rule excludes
const HEADER_VALUE_STRICT = /^[^\0-\x08\x0A-\x1F\x7F]*$/;
const HEADER_VALUE_LAX = /^[^\0\n\r]*$/;

const patternCache = new Map<string, RegExp | null>();
function compiled(pattern: string): RegExp | null {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = null; // an RE2 construct JavaScript does not know: not checked
    }
    patternCache.set(pattern, re);
  }
  return re;
}

function checkString(r: Obj, s: string, path: string, sink: RuleSink): void {
  // `ignore_empty`: the rules apply only to a value that is set.
  if (s === '' && r.ignore_empty === true) return;
  const len = codePoints(s);
  const bytes = Buffer.byteLength(s);
  const minLen = num(r.min_len);
  const maxLen = num(r.max_len);
  const exact = num(r.len);
  if (minLen !== undefined && len < minLen)
    sink(path, `must be at least ${plural(minLen, 'character')} long, not ${len}`);
  if (maxLen !== undefined && len > maxLen)
    sink(path, `must be at most ${plural(maxLen, 'character')} long, not ${len}`);
  if (exact !== undefined && len !== exact)
    sink(path, `must be exactly ${plural(exact, 'character')} long, not ${len}`);
  const minBytes = num(r.min_bytes);
  const maxBytes = num(r.max_bytes);
  if (minBytes !== undefined && bytes < minBytes)
    sink(path, `must be at least ${plural(minBytes, 'byte')} long, not ${bytes}`);
  if (maxBytes !== undefined && bytes > maxBytes)
    sink(path, `must be at most ${plural(maxBytes, 'byte')} long, not ${bytes}`);
  if (typeof r.const === 'string' && s !== r.const) sink(path, `must be "${r.const}"`);
  if (typeof r.prefix === 'string' && !s.startsWith(r.prefix))
    sink(path, `must start with "${r.prefix}"`);
  if (typeof r.suffix === 'string' && !s.endsWith(r.suffix))
    sink(path, `must end with "${r.suffix}"`);
  if (typeof r.contains === 'string' && !s.includes(r.contains))
    sink(path, `must contain "${r.contains}"`);
  if (typeof r.not_contains === 'string' && s.includes(r.not_contains))
    sink(path, `must not contain "${r.not_contains}"`);
  if (Array.isArray(r.in) && r.in.length > 0 && !r.in.includes(s))
    sink(path, `must be one of ${r.in.map((v) => JSON.stringify(v)).join(', ')}, not "${s}"`);
  if (Array.isArray(r.not_in) && r.not_in.includes(s)) sink(path, `must not be "${s}"`);
  if (typeof r.pattern === 'string') {
    const re = compiled(r.pattern);
    if (re && !re.test(s)) sink(path, `must match the pattern ${r.pattern}`);
  }
  const strict = r.strict !== false;
  if (r.well_known_regex === 'HTTP_HEADER_NAME') {
    if (!(strict ? HEADER_NAME_STRICT : HEADER_NAME_LAX).test(s))
      sink(path, `must be a valid HTTP header name, not ${JSON.stringify(s)}`);
  } else if (r.well_known_regex === 'HTTP_HEADER_VALUE') {
    if (!(strict ? HEADER_VALUE_STRICT : HEADER_VALUE_LAX).test(s))
      sink(path, `must be a valid HTTP header value, not ${JSON.stringify(s)}`);
  }
  if (r.ip === true && isIP(s) === 0) sink(path, `must be an IP address, not "${s}"`);
  if (r.ipv4 === true && isIP(s) !== 4) sink(path, `must be an IPv4 address, not "${s}"`);
  if (r.ipv6 === true && isIP(s) !== 6) sink(path, `must be an IPv6 address, not "${s}"`);
}

function checkNumber(r: Obj, n: number, path: string, sink: RuleSink): void {
  const c = num(r.const);
  if (c !== undefined && n !== c) sink(path, `must be ${c}, not ${n}`);
  const gt = num(r.gt);
  const gte = num(r.gte);
  const lt = num(r.lt);
  const lte = num(r.lte);
  const lower = gt ?? gte;
  const upper = lt ?? lte;
  if (lower !== undefined && upper !== undefined && lower > upper) {
    // An exclusive range: the value must lie outside [upper, lower].
    const inside =
      (lt !== undefined ? n >= lt : n > upper) && (gt !== undefined ? n <= gt : n < lower);
    if (inside) sink(path, `must be outside the range ${upper} to ${lower}, not ${n}`);
  } else {
    if (gt !== undefined && !(n > gt)) sink(path, `must be greater than ${gt}, not ${n}`);
    if (gte !== undefined && !(n >= gte)) sink(path, `must be at least ${gte}, not ${n}`);
    if (lt !== undefined && !(n < lt)) sink(path, `must be less than ${lt}, not ${n}`);
    if (lte !== undefined && !(n <= lte)) sink(path, `must be at most ${lte}, not ${n}`);
  }
  if (Array.isArray(r.in) && r.in.length > 0 && !r.in.map(num).includes(n))
    sink(path, `must be one of ${r.in.map(String).join(', ')}, not ${n}`);
  if (Array.isArray(r.not_in) && r.not_in.map(num).includes(n)) sink(path, `must not be ${n}`);
}

function checkDuration(r: Obj, value: unknown, path: string, sink: RuleSink): void {
  const s = durationSeconds(value);
  const bound = (k: string): number | undefined =>
    r[k] === undefined ? undefined : durationSeconds(r[k]);
  const gt = bound('gt');
  const gte = bound('gte');
  const lt = bound('lt');
  const lte = bound('lte');
  if (gt !== undefined && !(s > gt)) sink(path, `must be longer than ${fmtDuration(gt)}`);
  if (gte !== undefined && !(s >= gte)) sink(path, `must be at least ${fmtDuration(gte)}`);
  if (lt !== undefined && !(s < lt)) sink(path, `must be shorter than ${fmtDuration(lt)}`);
  if (lte !== undefined && !(s <= lte)) sink(path, `must be at most ${fmtDuration(lte)}`);
}

function enumNumber(f: FieldInfo, v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return f.enumType?.values[v];
  return undefined;
}

/** Checks the rules of one (non-repeated) value; `value` undefined means absent. */
function checkSingle(
  f: FieldInfo,
  rules: Obj,
  value: unknown,
  path: string,
  sink: RuleSink,
  applyWhenAbsent: boolean,
): void {
  const present = value !== undefined;
  if (f.kind === 'message') {
    const typeName = f.messageType?.fullName.replace(/^\./, '') ?? '';
    const required =
      sub(rules, 'message')?.required === true ||
      sub(rules, 'duration')?.required === true ||
      sub(rules, 'timestamp')?.required === true ||
      sub(rules, 'any')?.required === true;
    if (!present) {
      if (required) sink(path, 'is required');
      return;
    }
    if (typeName === 'google.protobuf.Duration') {
      const d = sub(rules, 'duration');
      if (d) checkDuration(d, value, path, sink);
    } else if (typeName === 'google.protobuf.Any') {
      const a = sub(rules, 'any');
      const url = (value as Obj)['@type'];
      if (a && Array.isArray(a.in) && a.in.length > 0 && !a.in.includes(url))
        sink(path, `must be one of the types ${a.in.join(', ')}`);
    } else if (WRAPPERS.has(typeName)) {
      checkScalarRules(f, rules, value, path, sink);
    }
    return;
  }
  if (!present && !applyWhenAbsent) return;
  checkScalarRules(f, rules, value, path, sink);
}

function checkScalarRules(
  f: FieldInfo,
  rules: Obj,
  value: unknown,
  path: string,
  sink: RuleSink,
): void {
  const str = sub(rules, 'string');
  if (str) checkString(str, typeof value === 'string' ? value : '', path, sink);
  const bytes = sub(rules, 'bytes');
  if (bytes) {
    const len =
      typeof value === 'string'
        ? Buffer.from(value, 'base64').length
        : value instanceof Uint8Array
          ? value.length
          : 0;
    const min = num(bytes.min_len);
    const max = num(bytes.max_len);
    if (min !== undefined && len < min)
      sink(path, `must be at least ${plural(min, 'byte')} long, not ${len}`);
    if (max !== undefined && len > max)
      sink(path, `must be at most ${plural(max, 'byte')} long, not ${len}`);
  }
  for (const k of NUMERIC_KEYS) {
    const r = sub(rules, k);
    if (r) {
      const n = value === undefined ? 0 : (num(value) ?? (value === 'NaN' ? NaN : undefined));
      if (n !== undefined) checkNumber(r, n, path, sink);
    }
  }
  const en = sub(rules, 'enum');
  if (en && f.enumType) {
    const n = value === undefined ? 0 : enumNumber(f, value);
    if (n !== undefined) {
      if (en.defined_only === true && f.enumType.valuesById[n] === undefined)
        sink(path, `must be a defined value of ${f.enumType.name}, not ${n}`);
      const c = num(en.const);
      if (c !== undefined && n !== c) sink(path, `must be ${f.enumType.valuesById[c] ?? c}`);
      if (Array.isArray(en.in) && en.in.length > 0 && !en.in.map(num).includes(n))
        sink(
          path,
          `must be one of ${en.in.map((x) => f.enumType?.valuesById[num(x) ?? -1] ?? String(x)).join(', ')}`,
        );
      if (Array.isArray(en.not_in) && en.not_in.map(num).includes(n))
        sink(path, `must not be ${f.enumType.valuesById[n] ?? n}`);
    }
  }
}

/**
 * Checks the protoc-gen-validate rules of field `f` of a message, whose proto3-JSON value
 * (already type-checked) is `value` (undefined when absent).
 */
export function checkFieldRules(f: FieldInfo, value: unknown, path: string, sink: RuleSink): void {
  const rules: PgvRules | undefined = f.rules;
  if (!rules) return;
  if (f.map) {
    const r = sub(rules, 'map');
    if (!r) return;
    const entries = value && typeof value === 'object' ? Object.entries(value as Obj) : [];
    const min = num(r.min_pairs);
    const max = num(r.max_pairs);
    if (min !== undefined && entries.length < min)
      sink(
        path,
        `must have at least ${plural(min, 'entry')}, not ${entries.length}`.replace(
          'entrys',
          'entries',
        ),
      );
    if (max !== undefined && entries.length > max)
      sink(
        path,
        `must have at most ${plural(max, 'entry')}, not ${entries.length}`.replace(
          'entrys',
          'entries',
        ),
      );
    const keys = sub(r, 'keys');
    const values = sub(r, 'values');
    for (const [k, v] of entries) {
      const p = `${path}[${JSON.stringify(k)}]`;
      if (keys) {
        const ks = sub(keys, 'string');
        if (ks) checkString(ks, k, p, sink);
      }
      if (values) checkSingle(f, values, v, p, sink, true);
    }
    return;
  }
  if (f.repeated) {
    const r = sub(rules, 'repeated');
    if (!r) return;
    const items = Array.isArray(value) ? (value as unknown[]) : [];
    const min = num(r.min_items);
    const max = num(r.max_items);
    if (min !== undefined && items.length < min)
      sink(path, `must have at least ${plural(min, 'item')}, not ${items.length}`);
    if (max !== undefined && items.length > max)
      sink(path, `must have at most ${plural(max, 'item')}, not ${items.length}`);
    if (r.unique === true && f.kind !== 'message') {
      const seen = new Set<unknown>();
      items.forEach((item, i) => {
        if (seen.has(item))
          sink(`${path}[${i}]`, `duplicates an earlier item ${JSON.stringify(item)}`);
        seen.add(item);
      });
    }
    const itemRules = sub(r, 'items');
    if (itemRules)
      items.forEach((item, i) => checkSingle(f, itemRules, item, `${path}[${i}]`, sink, true));
    return;
  }
  checkSingle(f, rules, value, path, sink, !f.presence);
}
