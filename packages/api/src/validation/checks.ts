// Semantic checks shared by every kind: durations, names, hosts, ports, regexes, headers,
// labels and addresses. Each `check*` reports on the context it is given; each `is*`/`parse*`
// is a pure predicate or parser for use by translation too.
import { isIP } from 'node:net';
import type { ValidationContext } from './problem.js';
import { str, type Schema } from './schema.js';

// ---------- durations ----------

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration as Istio accepts it (Go's time.ParseDuration form: `1.5s`, `100ms`,
 * `1h30m`, `0`), returning milliseconds, or undefined if it is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let matched = false;
  re.lastIndex = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = re.lastIndex;
    matched = true;
  }
  return matched ? total : undefined;
}

export interface DurationOptions {
  /** Smallest allowed value in ms (Istio: 1 ms for most durations). */
  readonly minMs?: number;
  readonly maxMs?: number;
  /** Allow exactly zero even when minMs is larger (`timeout: 0s` disables a timeout). */
  readonly allowZero?: boolean;
}

/** Reports a string that is not a valid Istio duration, or is out of range / finer than 1 ms. */
export function checkDuration(
  text: string,
  ctx: ValidationContext,
  opts: DurationOptions = {},
): void {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.error(`must be a duration such as "1.5s", "100ms" or "1m", not ${JSON.stringify(text)}`);
    return;
  }
  if (ms === 0 && opts.allowZero) return;
  if (Math.abs(ms - Math.round(ms)) > 1e-9) {
    ctx.error(`only durations to millisecond precision are supported, not ${JSON.stringify(text)}`);
    return;
  }
  const min = opts.minMs ?? 1;
  if (ms < min) ctx.error(`must be at least ${formatMs(min)}, not ${JSON.stringify(text)}`);
  else if (opts.maxMs !== undefined && ms > opts.maxMs)
    ctx.error(`must be at most ${formatMs(opts.maxMs)}, not ${JSON.stringify(text)}`);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** A duration string field. */
export function duration(opts: DurationOptions = {}): Schema<string, false> {
  return str({ check: (s, ctx) => checkDuration(s, ctx, opts) });
}

// ---------- names ----------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => DNS1123_LABEL.test(l));
}

export function checkDns1123Label(s: string, ctx: ValidationContext, what = 'name'): void {
  if (s.length > 63) ctx.error(`${what} must be at most 63 characters, not ${s.length}`);
  else if (!DNS1123_LABEL.test(s))
    ctx.error(
      `${what} ${JSON.stringify(s)} must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
    );
}

export function checkDns1123Subdomain(s: string, ctx: ValidationContext, what = 'name'): void {
  if (s.length > 253) ctx.error(`${what} must be at most 253 characters, not ${s.length}`);
  else if (!isDns1123Subdomain(s))
    ctx.error(
      `${what} ${JSON.stringify(s)} must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit`,
    );
}

/**
 * Istio's wildcard host rule: a DNS name whose first label may be `*` or start with `*`
 * (`*.example.com`, `*`), each label a DNS-1123 label (upper case allowed, as Istio does).
 */
export function checkWildcardHost(host: string, ctx: ValidationContext): void {
  if (host === '') return ctx.error('host must not be empty');
  if (host === '*') return;
  if (host.length > 255)
    return ctx.error(`host must be at most 255 characters, not ${host.length}`);
  let rest = host;
  if (host.startsWith('*')) {
    rest = host.slice(1);
    if (rest.startsWith('.')) rest = rest.slice(1);
    else if (rest.length > 0 && !/^[A-Za-z0-9-]/.test(rest))
      return ctx.error(
        `host ${JSON.stringify(host)}: a wildcard must be the whole first label or its prefix`,
      );
    if (rest === '') return;
  }
  if (rest.includes('*'))
    return ctx.error(
      `host ${JSON.stringify(host)}: a wildcard is only allowed at the start of the host`,
    );
  const labels = rest.endsWith('.') ? rest.slice(0, -1).split('.') : rest.split('.');
  for (const l of labels) {
    if (!/^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/.test(l) || l.length > 63) {
      return ctx.error(
        `host ${JSON.stringify(host)}: ${JSON.stringify(l)} is not a valid DNS label`,
      );
    }
  }
}

// ---------- ports and addresses ----------

export function checkPort(port: number, ctx: ValidationContext): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    ctx.error(`port must be between 1 and 65535, not ${port}`);
}

export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare IP address. */
export function isCidrOrIp(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIP(s) !== 0;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export function checkCidrOrIp(s: string, ctx: ValidationContext): void {
  if (!isCidrOrIp(s))
    ctx.error(`must be an IP address or CIDR range such as "10.0.0.0/8", not ${JSON.stringify(s)}`);
}

// ---------- headers ----------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An HTTP header name (an RFC 9110 token); HTTP/2 pseudo-headers like `:authority` are allowed where `pseudo` is. */
export function checkHeaderName(
  name: string,
  ctx: ValidationContext,
  opts: { pseudo?: boolean } = {},
): void {
  if (name === '') return ctx.error('header name must not be empty');
  const bare = opts.pseudo && name.startsWith(':') ? name.slice(1) : name;
  if (!TOKEN.test(bare))
    ctx.error(
      `invalid header name ${JSON.stringify(name)}: only letters, digits and !#$%&'*+-.^_\`|~ are allowed`,
    );
}

/** A header value: no control characters other than tab. */
export function checkHeaderValue(value: string, ctx: ValidationContext): void {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value))
    ctx.error('header value must not contain control characters or newlines');
}

// ---------- Kubernetes labels ----------

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name at most 63 characters. */
export function checkQualifiedName(key: string, ctx: ValidationContext, what = 'label key'): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix === '' || !isDns1123Subdomain(prefix)))
    ctx.error(`${what} ${JSON.stringify(key)}: prefix must be a DNS-1123 subdomain`);
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name))
    ctx.error(
      `${what} ${JSON.stringify(key)}: name part must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
    );
}

export function checkLabelValue(value: string, ctx: ValidationContext): void {
  if (value === '') return;
  if (value.length > 63 || !LABEL_NAME.test(value))
    ctx.error(
      `label value ${JSON.stringify(value)} must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
    );
}

// ---------- regular expressions (RE2) ----------

/**
 * Checks that a pattern is valid RE2 syntax, which Envoy and Istio use. RE2 has no
 * backreferences, lookaround, atomic groups or possessive quantifiers, and bounds
 * repetition counts at 1000. Returns a message, or undefined when the pattern is valid.
 */
export function re2Problem(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) return 'trailing backslash';
      if (!inClass && /[1-9]/.test(n)) return `backreferences (\\${n}) are not supported by RE2`;
      if (!inClass && n === 'k' && pattern[i + 2] === '<')
        return 'named backreferences are not supported by RE2';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2);
      if (/^(=|!|<=|<!)/.test(rest))
        return 'lookahead and lookbehind assertions are not supported by RE2';
      if (rest.startsWith('>')) return 'atomic groups are not supported by RE2';
      if (/^(P?<[A-Za-z_][A-Za-z0-9_]*>|:|[imsU-]+[:)])/.test(rest)) continue;
      return `unknown group flag after "(?" at offset ${i}`;
    }
    if ((c === '*' || c === '+' || c === '?' || c === '}') && pattern[i + 1] === '+')
      return 'possessive quantifiers are not supported by RE2';
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m) {
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > 1000 || hi > 1000) return 'repetition count above 1000 is not supported by RE2';
        if (m[3] && hi < lo) return `invalid repetition {${m[1]},${m[3]}}`;
      }
    }
  }
  if (inClass) return 'missing closing ]';
  try {
    new RegExp(toJsRegexSource(pattern));
  } catch (e) {
    return (e as Error).message.replace(/^Invalid regular expression: /, '');
  }
  return undefined;
}

/** Rewrites RE2-only syntax (`(?P<name>`, leading `(?i)`) into JavaScript RegExp syntax for compilation checks. */
export function toJsRegexSource(pattern: string): string {
  return pattern
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?[imsU-]+\)/g, '')
    .replace(/\(\?[imsU-]+:/g, '(?:');
}

export function checkRegex(pattern: string, ctx: ValidationContext): void {
  const p = re2Problem(pattern);
  if (p) ctx.error(`invalid RE2 regular expression ${JSON.stringify(pattern)}: ${p}`);
}

// ---------- Kubernetes data keys, base64 and service port names ----------

const DATA_KEY = /^[-._a-zA-Z0-9]+$/;

/** Kubernetes' rule for ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`. */
export function isDataKey(key: string): boolean {
  return key.length <= 253 && DATA_KEY.test(key) && key !== '.' && key !== '..';
}

export function checkDataKey(key: string, ctx: ValidationContext): void {
  if (key.length > 253) ctx.error(`key must be at most 253 characters, not ${key.length}`);
  else if (key === '.' || key === '..') ctx.error(`key ${JSON.stringify(key)} is not allowed`);
  else if (!DATA_KEY.test(key))
    ctx.error(
      `key ${JSON.stringify(key)} must consist of letters, digits, '-', '_' or '.' (like a file name)`,
    );
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard padded base64 (RFC 4648), as Kubernetes decodes Secret `data` and ConfigMap `binaryData`; line breaks are ignored. */
export function isBase64(s: string): boolean {
  return BASE64.test(s.replace(/[\r\n]/g, ''));
}

/** Reports a value that is not base64; `hint` says where plain text goes instead (`stringData`, `data`). */
export function checkBase64(s: string, ctx: ValidationContext, hint?: string): void {
  if (!isBase64(s))
    ctx.error(
      `must be base64-encoded (standard alphabet with padding)${hint ? `; put plain text under ${hint} instead` : ''}`,
    );
}

/**
 * An IANA service name, Kubernetes' rule for port names and named target ports: at most 15
 * lower-case letters, digits and '-', at least one letter, no '-' at either end or twice in a row.
 */
export function isIanaSvcName(s: string): boolean {
  return (
    s.length >= 1 &&
    s.length <= 15 &&
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s) &&
    /[a-z]/.test(s) &&
    !s.includes('--')
  );
}

export function checkIanaSvcName(s: string, ctx: ValidationContext, what = 'port name'): void {
  if (!isIanaSvcName(s))
    ctx.error(
      `${what} ${JSON.stringify(s)} must be at most 15 lower-case letters, digits and '-', with at least one letter and no '-' at either end or twice in a row`,
    );
}
