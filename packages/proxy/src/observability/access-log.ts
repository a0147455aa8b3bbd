// Envoy's access logs: format strings (`[%START_TIME%] "%REQ(:METHOD)% ..."`) and format
// dictionaries (JSON), with Envoy's command operators, written to stdout, stderr or a file through
// a buffered sink that loses no line on close. Built from the AccessLog configs of listeners,
// HTTP connection managers and TCP proxies (envoy.access_loggers.file / stdout / stderr); a
// logger without a format uses Istio's default text format (EnvoyTextLogFormat).
import { randomUUID, type X509Certificate } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Result, err, ok } from '@trellis/core';
import type { AccessLog } from '@trellis/envoy';
import {
  RESPONSE_FLAGS,
  formatResponseFlags,
  type ResponseFlag,
  type StreamInfo,
} from '../stream-info.js';
import { rfc2253, sans } from '../tls/cert-text.js';
import { DOWNSTREAM_TLS_KEY, type DownstreamTlsDetails, type LogContext } from './log-context.js';
import type { StatsScope } from './stats-api.js';

/** Istio's default text format (pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat). */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
  '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON format (EnvoyJSONLogFormatIstio), in Istio's key order. */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
});

/** Envoy's own default format (used when asked for with `defaultFormat: 'envoy'`). */
export const ENVOY_DEFAULT_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

// ---------------------------------------------------------------------------------------------
// Command operators

/** A value an operator produces: undefined when not available (printed `-`, or JSON null). */
type Value = string | number | boolean | object | undefined;
type Operator = (ctx: LogContext) => Value;

/** The long name of a response flag (Envoy's `%RESPONSE_FLAGS_LONG%`), e.g. NoHealthyUpstream. */
const LONG_FLAG: ReadonlyMap<ResponseFlag, string> = new Map(
  Object.entries(RESPONSE_FLAGS).map(([long, short]) => [
    short,
    long
      .toLowerCase()
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(''),
  ]),
);

const GRPC_CAMEL = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];
const GRPC_SNAKE = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** `ip:port` → ip (IPv6 `[::1]:80` → `::1`). */
function withoutPort(addr: string | undefined): string | undefined {
  if (addr === undefined || addr === '') return undefined;
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    return end > 0 ? addr.slice(1, end) : addr;
  }
  const colon = addr.lastIndexOf(':');
  return colon > 0 && addr.indexOf(':') === colon ? addr.slice(0, colon) : addr;
}

function portOf(addr: string | undefined): number | undefined {
  if (addr === undefined) return undefined;
  const m = /:(\d+)$/.exec(addr);
  return m ? Number(m[1]) : undefined;
}

/** Request header value, falling back to what the StreamInfo recorded. */
function requestHeader(ctx: LogContext, name: string): string | undefined {
  const v = ctx.requestHeader?.(name);
  if (v !== undefined) return v;
  const info = ctx.info;
  switch (name) {
    case ':method':
      return info.method;
    case ':path':
      return info.path;
    case ':authority':
      return ctx.requestHeader?.('host') ?? info.authority;
    case 'host':
      return info.authority;
    case ':scheme':
      return info.scheme;
    case 'user-agent':
      return info.userAgent;
    case 'x-forwarded-for':
      return info.xForwardedFor;
    case 'x-request-id':
      return info.requestId;
    default:
      return undefined;
  }
}

function responseHeader(ctx: LogContext, name: string): string | undefined {
  const v = ctx.responseHeader?.(name);
  if (v !== undefined) return v;
  if (name === 'x-envoy-upstream-service-time' && ctx.info.upstreamServiceTimeMs !== undefined)
    return String(Math.floor(ctx.info.upstreamServiceTimeMs));
  return undefined;
}

/** `X?Y`: header X, or Y when X is absent. */
function headerOperator(
  arg: string,
  get: (ctx: LogContext, name: string) => string | undefined,
  stripQuery = false,
): Result<Operator> {
  const [main = '', alt, extra] = arg.split('?');
  if (main === '' || extra !== undefined || alt === '')
    return err(`invalid header specification "${arg}"; expected HEADER or HEADER?ALTERNATIVE`);
  const a = main.toLowerCase();
  const b = alt?.toLowerCase();
  return ok((ctx) => {
    let v = get(ctx, a);
    if (v === undefined && b !== undefined) v = get(ctx, b);
    if (v !== undefined && stripQuery) {
      const q = v.indexOf('?');
      if (q >= 0) v = v.slice(0, q);
    }
    return v;
  });
}

/** Reads a path of keys in a metadata value (`DYNAMIC_METADATA(ns:key:key)`). */
function metadataPath(info: StreamInfo, path: readonly string[]): Value {
  if (path.length === 0) return undefined;
  let v: unknown = info.metadataValue(path[0] as string);
  for (const k of path.slice(1)) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'object') return v;
  return undefined;
}

/** A value of a nested record by keys; undefined when a key is missing. */
function lookupPath(v: unknown, keys: readonly string[]): unknown {
  for (const k of keys) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** Strings, numbers and booleans; anything else (lists, structs, null) is no value. */
function scalar(v: unknown): Value {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/**
 * UPSTREAM_METADATA's argument: the header form `["namespace", "key", ...]` (a JSON array of
 * strings) or the access log form `NAMESPACE:KEY:...`. The path, or what is wrong with it.
 */
function metadataArgument(arg: string | undefined): string[] | string {
  const usage =
    'UPSTREAM_METADATA requires a namespace and a key: %UPSTREAM_METADATA(["namespace", "key"])%';
  if (arg === undefined || arg.trim() === '') return usage;
  let path: unknown;
  if (arg.trim().startsWith('[')) {
    try {
      path = JSON.parse(arg);
    } catch {
      return `UPSTREAM_METADATA: ${JSON.stringify(arg)} is not a JSON array of strings`;
    }
  } else path = arg.split(':');
  if (!Array.isArray(path) || !path.every((k) => typeof k === 'string' && k !== ''))
    return `UPSTREAM_METADATA: ${JSON.stringify(arg)} is not a list of non-empty strings`;
  if (path.length < 2) return usage;
  return path as string[];
}

const NUMERIC = (v: number | undefined): Value => v;

/** The downstream connection's TLS details, when it is TLS. */
function tlsOf(c: LogContext): DownstreamTlsDetails | undefined {
  return c.info.metadataValue(DOWNSTREAM_TLS_KEY) as DownstreamTlsDetails | undefined;
}

/** A certificate subject or issuer as RFC 2253 text (undefined when empty). */
function subjectOf(subject: string | undefined): string | undefined {
  const s = subject === undefined ? '' : rfc2253(subject);
  return s === '' ? undefined : s;
}

/** `AB:CD:...` as Envoy prints fingerprints: lower-case hex without colons. */
function hexOf(fingerprint: string | undefined): string | undefined {
  return fingerprint?.replaceAll(':', '').toLowerCase();
}

/** A certificate's subject alternative names of one type, comma-separated. */
function sanList(cert: X509Certificate | undefined, type: 'DNS' | 'URI'): string | undefined {
  const list = cert ? sans(cert, type) : [];
  return list.length > 0 ? list.join(',') : undefined;
}

/** Operators without arguments, by name. */
const SIMPLE: Readonly<Record<string, Operator>> = {
  PROTOCOL: (c) => (c.info.protocol === 'TCP' ? undefined : c.info.protocol),
  UPSTREAM_PROTOCOL: () => undefined,
  RESPONSE_CODE: (c) => c.info.responseCode,
  RESPONSE_CODE_DETAILS: (c) => c.info.responseCodeDetails,
  CONNECTION_TERMINATION_DETAILS: (c) => c.info.connectionTerminationDetails,
  RESPONSE_FLAGS: (c) => formatResponseFlags(c.info.responseFlags),
  RESPONSE_FLAGS_LONG: (c) =>
    c.info.responseFlags.size === 0
      ? '-'
      : formatResponseFlags(c.info.responseFlags)
          .split(',')
          .map((f) => LONG_FLAG.get(f as ResponseFlag) ?? f)
          .join(','),
  BYTES_RECEIVED: (c) => c.info.bytesReceived,
  BYTES_SENT: (c) => c.info.bytesSent,
  DURATION: (c) =>
    NUMERIC(c.info.durationMs === undefined ? undefined : Math.floor(c.info.durationMs)),
  RESPONSE_DURATION: (c) =>
    NUMERIC(
      c.info.upstreamServiceTimeMs === undefined
        ? undefined
        : Math.floor(c.info.upstreamServiceTimeMs),
    ),
  REQUEST_DURATION: () => undefined,
  REQUEST_TX_DURATION: () => undefined,
  RESPONSE_TX_DURATION: () => undefined,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (c) => c.info.attemptCount,
  UPSTREAM_HOST: (c) => c.info.upstreamHost,
  UPSTREAM_REMOTE_ADDRESS: (c) => c.info.upstreamHost,
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (c) => withoutPort(c.info.upstreamHost),
  UPSTREAM_REMOTE_PORT: (c) => portOf(c.info.upstreamHost),
  UPSTREAM_CLUSTER: (c) =>
    c.info.upstreamCluster === undefined
      ? undefined
      : (c.upstreamObservabilityName ?? c.info.upstreamCluster),
  UPSTREAM_CLUSTER_RAW: (c) => c.info.upstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: (c) => c.info.upstreamLocalAddress,
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (c) => withoutPort(c.info.upstreamLocalAddress),
  UPSTREAM_LOCAL_PORT: (c) => portOf(c.info.upstreamLocalAddress),
  UPSTREAM_TRANSPORT_FAILURE_REASON: (c) => c.info.upstreamTransportFailureReason,
  DOWNSTREAM_TRANSPORT_FAILURE_REASON: (c) => c.info.downstreamTransportFailureReason,
  DOWNSTREAM_LOCAL_ADDRESS: (c) => c.info.downstreamLocalAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (c) => withoutPort(c.info.downstreamLocalAddress),
  DOWNSTREAM_LOCAL_PORT: (c) => portOf(c.info.downstreamLocalAddress),
  DOWNSTREAM_REMOTE_ADDRESS: (c) => c.info.downstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (c) => withoutPort(c.info.downstreamRemoteAddress),
  DOWNSTREAM_REMOTE_PORT: (c) => portOf(c.info.downstreamRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: (c) => c.info.downstreamRemoteAddress,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (c) => withoutPort(c.info.downstreamRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_PORT: (c) => portOf(c.info.downstreamRemoteAddress),
  DOWNSTREAM_PEER_URI_SAN: (c) => metadataPath(c.info, ['io.istio.peer_principal']),
  DOWNSTREAM_LOCAL_URI_SAN: (c) => metadataPath(c.info, ['io.istio.local_principal']),
  UPSTREAM_PEER_URI_SAN: (c) => metadataPath(c.info, ['upstream_peer_principal']),
  REQUESTED_SERVER_NAME: (c) => c.info.requestedServerName,
  ROUTE_NAME: (c) => c.info.routeName,
  GRPC_STATUS_NUMBER: (c) => c.info.grpcStatus,
  STREAM_ID: (c) => c.info.requestId,
  HOSTNAME: () => hostname(),
  CONNECTION_ID: (c) => c.info.connectionId,
  UNIQUE_ID: () => randomUUID(),
  DOWNSTREAM_TLS_VERSION: (c) => tlsOf(c)?.version,
  DOWNSTREAM_TLS_CIPHER: (c) => tlsOf(c)?.cipher,
  DOWNSTREAM_PEER_SUBJECT: (c) => subjectOf(tlsOf(c)?.peerCertificate()?.subject),
  DOWNSTREAM_PEER_ISSUER: (c) => subjectOf(tlsOf(c)?.peerCertificate()?.issuer),
  DOWNSTREAM_LOCAL_SUBJECT: (c) => subjectOf(tlsOf(c)?.localCertificate()?.subject),
  DOWNSTREAM_PEER_SERIAL: (c) => tlsOf(c)?.peerCertificate()?.serialNumber.toLowerCase(),
  DOWNSTREAM_PEER_FINGERPRINT_256: (c) => hexOf(tlsOf(c)?.peerCertificate()?.fingerprint256),
  DOWNSTREAM_PEER_FINGERPRINT_1: (c) => hexOf(tlsOf(c)?.peerCertificate()?.fingerprint),
  DOWNSTREAM_PEER_CERT: (c) => {
    const cert = tlsOf(c)?.peerCertificate();
    return cert ? encodeURIComponent(cert.toString()) : undefined;
  },
  DOWNSTREAM_PEER_DNS_SAN: (c) => sanList(tlsOf(c)?.peerCertificate(), 'DNS'),
  DOWNSTREAM_LOCAL_DNS_SAN: (c) => sanList(tlsOf(c)?.localCertificate(), 'DNS'),
};

/** Builds the operator `%NAME(arg)%`; errors name what is wrong (they end up in a NACK). */
function makeOperator(name: string, arg: string | undefined): Result<Operator> {
  const simple = SIMPLE[name];
  if (simple) {
    if (arg !== undefined) return err(`${name} takes no argument, got "(${arg})"`);
    return ok(simple);
  }
  switch (name) {
    case 'REQ':
    case 'REQUEST_HEADER':
      if (arg === undefined) return err(`${name} requires a header name: %${name}(X?Y)%`);
      return headerOperator(arg, requestHeader);
    case 'REQ_WITHOUT_QUERY':
      if (arg === undefined) return err(`${name} requires a header name: %${name}(X?Y)%`);
      return headerOperator(arg, requestHeader, true);
    case 'RESP':
    case 'RESPONSE_HEADER':
      if (arg === undefined) return err(`${name} requires a header name: %${name}(X?Y)%`);
      return headerOperator(arg, responseHeader);
    case 'TRAILER':
    case 'RESPONSE_TRAILER':
      if (arg === undefined) return err(`${name} requires a header name: %${name}(X?Y)%`);
      return headerOperator(arg, (c, n) => c.responseTrailer?.(n));
    case 'START_TIME': {
      const fmt = arg ?? '';
      return ok((c) => formatStartTime(fmt, c.info.startTime));
    }
    case 'GRPC_STATUS': {
      const style = arg ?? 'CAMEL_STRING';
      if (style !== 'CAMEL_STRING' && style !== 'SNAKE_STRING' && style !== 'NUMBER')
        return err(
          `GRPC_STATUS format must be CAMEL_STRING, SNAKE_STRING or NUMBER, not "${style}"`,
        );
      return ok((c) => {
        const s = c.info.grpcStatus;
        if (s === undefined) return undefined;
        if (style === 'NUMBER') return s;
        return (style === 'CAMEL_STRING' ? GRPC_CAMEL : GRPC_SNAKE)[s] ?? s;
      });
    }
    case 'DYNAMIC_METADATA': {
      if (arg === undefined || arg === '')
        return err('DYNAMIC_METADATA requires a namespace: %DYNAMIC_METADATA(NAMESPACE:KEY)%');
      const path = arg.split(':');
      return ok((c) => metadataPath(c.info, path));
    }
    case 'FILTER_STATE': {
      if (arg === undefined || arg === '')
        return err('FILTER_STATE requires a key: %FILTER_STATE(KEY:PLAIN)%');
      const [key = '', mode] = arg.split(':');
      if (mode !== undefined && mode !== 'PLAIN' && mode !== 'TYPED')
        return err(`FILTER_STATE serialization must be PLAIN or TYPED, not "${mode}"`);
      return ok((c) => metadataPath(c.info, [key]));
    }
    case 'DOWNSTREAM_PEER_CERT_V_START':
    case 'DOWNSTREAM_PEER_CERT_V_END': {
      const fmt = arg ?? '';
      const end = name === 'DOWNSTREAM_PEER_CERT_V_END';
      return ok((c) => {
        const cert = tlsOf(c)?.peerCertificate();
        if (!cert) return undefined;
        return formatStartTime(fmt, Date.parse(end ? cert.validTo : cert.validFrom));
      });
    }
    case 'UPSTREAM_METADATA': {
      const path = metadataArgument(arg);
      if (typeof path === 'string') return err(path);
      const [ns, ...keys] = path;
      return ok((c) => scalar(lookupPath(c.upstreamHostMetadata?.[ns as string], keys)));
    }
    case 'PER_REQUEST_STATE': {
      if (arg === undefined || arg === '')
        return err('PER_REQUEST_STATE requires a name: %PER_REQUEST_STATE(reverse.dns.name)%');
      return ok((c) => scalar(metadataPath(c.info, [arg])));
    }
    case 'ENVIRONMENT': {
      if (arg === undefined || arg === '')
        return err('ENVIRONMENT requires a variable name: %ENVIRONMENT(NAME)%');
      const value = process.env[arg];
      return ok(() => value);
    }
    default:
      return err(`Not supported field in StreamInfo: ${name}`);
  }
}

// ---------------------------------------------------------------------------------------------
// START_TIME formatting (strftime in UTC, with Envoy's %f / %Nf / %s / %ENS)

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const DAYS_LONG = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTHS_LONG = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** START_TIME: Envoy's default `%Y-%m-%dT%H:%M:%E3SZ` (ISO 8601 with ms, UTC) or a strftime format. */
export function formatStartTime(format: string, epochMs: number): string {
  const d = new Date(epochMs);
  if (format === '') return d.toISOString();
  const ms = ((epochMs % 1000) + 1000) % 1000;
  const nanos = pad(Math.floor(ms * 1e6), 9);
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const ch = format[i];
    if (ch !== '%' || i === format.length - 1) {
      out += ch;
      continue;
    }
    let spec = format[++i] as string;
    // %Nf (fractional digits) and %ENS (seconds with N fractional digits).
    if (spec >= '1' && spec <= '9' && format[i + 1] === 'f') {
      out += nanos.slice(0, Number(spec));
      i++;
      continue;
    }
    if (spec === 'E' && /[1-9*]/.test(format[i + 1] ?? '') && format[i + 2] === 'S') {
      const digits = format[i + 1] === '*' ? 9 : Number(format[i + 1]);
      out += `${pad(d.getUTCSeconds())}.${nanos.slice(0, digits)}`;
      i += 2;
      continue;
    }
    switch (spec) {
      case 'Y':
        out += d.getUTCFullYear();
        break;
      case 'y':
        out += pad(d.getUTCFullYear() % 100);
        break;
      case 'm':
        out += pad(d.getUTCMonth() + 1);
        break;
      case 'd':
        out += pad(d.getUTCDate());
        break;
      case 'e':
        out += String(d.getUTCDate()).padStart(2, ' ');
        break;
      case 'H':
        out += pad(d.getUTCHours());
        break;
      case 'I':
        out += pad(((d.getUTCHours() + 11) % 12) + 1);
        break;
      case 'M':
        out += pad(d.getUTCMinutes());
        break;
      case 'S':
        out += pad(d.getUTCSeconds());
        break;
      case 'p':
        out += d.getUTCHours() < 12 ? 'AM' : 'PM';
        break;
      case 'j': {
        const start = Date.UTC(d.getUTCFullYear(), 0, 1);
        out += pad(Math.floor((epochMs - start) / 86400000) + 1, 3);
        break;
      }
      case 'a':
        out += DAYS[d.getUTCDay()];
        break;
      case 'A':
        out += DAYS_LONG[d.getUTCDay()];
        break;
      case 'b':
      case 'h':
        out += MONTHS[d.getUTCMonth()];
        break;
      case 'B':
        out += MONTHS_LONG[d.getUTCMonth()];
        break;
      case 'z':
        out += '+0000';
        break;
      case 'Z':
        out += 'UTC';
        break;
      case 's':
        out += Math.floor(epochMs / 1000);
        break;
      case 'f':
        out += nanos;
        break;
      case 'T':
        out += `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
        break;
      case 'R':
        out += `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
        break;
      case 'F':
        out += `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
        break;
      case 'D':
        out += `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCFullYear() % 100)}`;
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '%':
        out += '%';
        break;
      default:
        spec = `%${spec}`;
        out += spec;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatters

interface Piece {
  readonly literal?: string;
  readonly op?: Operator;
  readonly maxLength?: number;
}

const COMMAND = /^%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::(\d+))?%/;

/**
 * Parses a format string into literals and operators; the error says where it is wrong. In a
 * header value (`headerValue`), `%%` is a literal percent sign.
 */
function parseTemplate(format: string, headerValue = false): Result<Piece[]> {
  const pieces: Piece[] = [];
  let literal = '';
  let i = 0;
  while (i < format.length) {
    const ch = format[i] as string;
    if (ch !== '%') {
      literal += ch;
      i++;
      continue;
    }
    if (headerValue && format[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    const m = COMMAND.exec(format.slice(i));
    if (!m)
      return err(
        headerValue
          ? `invalid header value ${JSON.stringify(format)}: no command operator at position ${i} (a literal percent sign is written %%)`
          : `Incorrect configuration: ${format}. Couldn't find valid command at position ${i}`,
      );
    if (literal !== '') pieces.push({ literal });
    literal = '';
    const op = makeOperator(m[1] as string, m[2]);
    if (!op.ok) return op;
    pieces.push(m[3] !== undefined ? { op: op.value, maxLength: Number(m[3]) } : { op: op.value });
    i += m[0].length;
  }
  if (literal !== '') pieces.push({ literal });
  return ok(pieces);
}

function valueToString(v: Value): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function truncate(s: string, max: number | undefined): string {
  return max !== undefined && s.length > max ? s.slice(0, max) : s;
}

function renderPieces(pieces: readonly Piece[], ctx: LogContext, missing: string): string {
  let out = '';
  for (const p of pieces) {
    if (p.literal !== undefined) {
      out += p.literal;
      continue;
    }
    const s = valueToString((p.op as Operator)(ctx));
    out += s === undefined ? missing : truncate(s, p.maxLength);
  }
  return out;
}

/** A header value with command operators, evaluated for each request. */
export interface HeaderValueFormatter {
  /** The value; an operator with nothing to say adds nothing (no `-` as in access logs). */
  format(ctx: LogContext): string;
}

/**
 * A request_headers_to_add / response_headers_to_add value as Envoy's header parser reads it:
 * literal text (`%%` for a percent sign) with the access log's command operators, plus the
 * header-only `%UPSTREAM_METADATA(["namespace", "key", ...])%` and
 * `%PER_REQUEST_STATE(name)%`. A value without operators comes back as its text.
 */
export function compileHeaderValue(value: string): Result<string | HeaderValueFormatter> {
  if (!value.includes('%')) return ok(value);
  const parsed = parseTemplate(value, true);
  if (!parsed.ok) return parsed;
  const pieces = parsed.value;
  if (pieces.every((p) => p.op === undefined)) return ok(pieces.map((p) => p.literal).join(''));
  return ok({ format: (ctx) => renderPieces(pieces, ctx, '') });
}

/** Formats one log entry. */
export interface AccessLogFormatter {
  format(ctx: LogContext): string;
}

/** A format string (text) formatter. */
export function textFormatter(format: string, omitEmptyValues = false): Result<AccessLogFormatter> {
  const pieces = parseTemplate(format);
  if (!pieces.ok) return pieces;
  const missing = omitEmptyValues ? '' : '-';
  return ok({ format: (ctx) => renderPieces(pieces.value, ctx, missing) });
}

type JsonTemplate =
  | { readonly kind: 'typed'; readonly piece: Piece }
  | { readonly kind: 'string'; readonly pieces: readonly Piece[] }
  | { readonly kind: 'const'; readonly value: unknown }
  | { readonly kind: 'object'; readonly fields: readonly (readonly [string, JsonTemplate])[] };

function compileJson(v: unknown, path: string): Result<JsonTemplate> {
  if (typeof v === 'string') {
    const pieces = parseTemplate(v);
    if (!pieces.ok) return err(`${path}: ${pieces.error}`);
    const only = pieces.value.length === 1 ? pieces.value[0] : undefined;
    if (only?.op) return ok({ kind: 'typed', piece: only });
    return ok({ kind: 'string', pieces: pieces.value });
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const fields: (readonly [string, JsonTemplate])[] = [];
    for (const [k, fv] of Object.entries(v)) {
      const t = compileJson(fv, path === '' ? k : `${path}.${k}`);
      if (!t.ok) return t;
      fields.push([k, t.value]);
    }
    return ok({ kind: 'object', fields });
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null)
    return ok({ kind: 'const', value: v });
  return err(
    `${path}: only strings, numbers, booleans and nested objects are allowed in json_format`,
  );
}

function renderJson(t: JsonTemplate, ctx: LogContext, omitEmpty: boolean): unknown {
  switch (t.kind) {
    case 'const':
      return t.value;
    case 'typed': {
      const v = (t.piece.op as Operator)(ctx);
      if (v === undefined) return null;
      if (typeof v === 'string') return truncate(v, t.piece.maxLength);
      return v;
    }
    case 'string':
      return renderPieces(t.pieces, ctx, '-');
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, ft] of t.fields) {
        const v = renderJson(ft, ctx, omitEmpty);
        if (omitEmpty && (v === null || v === '')) continue;
        out[k] = v;
      }
      return out;
    }
  }
}

/**
 * A format dictionary (JSON) formatter. As Envoy's `log_format.json_format`: a value made of a
 * single operator keeps its type (numbers stay numbers, missing values are null); other strings
 * are rendered as text. One JSON object per line.
 */
export function jsonFormatter(
  format: Readonly<Record<string, unknown>>,
  omitEmptyValues = false,
): Result<AccessLogFormatter> {
  const t = compileJson(format, '');
  if (!t.ok) return t;
  return ok({ format: (ctx) => `${JSON.stringify(renderJson(t.value, ctx, omitEmptyValues))}\n` });
}

/** envoy.config.core.v3.SubstitutionFormatString as decoded from xDS. */
interface SubstitutionFormatStringJson {
  readonly textFormat?: string;
  readonly textFormatSource?: {
    readonly inlineString?: string;
    readonly inlineBytes?: string;
    readonly filename?: string;
    readonly environmentVariable?: string;
  };
  readonly jsonFormat?: Record<string, unknown>;
  readonly omitEmptyValues?: boolean;
  readonly contentType?: string;
  readonly formatters?: readonly { readonly name?: string }[];
  readonly jsonFormatOptions?: unknown;
}

/** A formatter from a SubstitutionFormatString (`log_format`). */
export function formatterFromSubstitution(
  f: SubstitutionFormatStringJson,
  path = 'logFormat',
): Result<AccessLogFormatter> {
  const omit = f.omitEmptyValues === true;
  for (const [i, fmt] of (f.formatters ?? []).entries())
    if (fmt.name !== 'envoy.formatter.req_without_query')
      return err(
        `${path}.formatters[${i}]: formatter extension "${fmt.name ?? ''}" is not supported`,
      );
  if (f.jsonFormat !== undefined) {
    const r = jsonFormatter(f.jsonFormat, omit);
    return r.ok ? r : err(`${path}.jsonFormat: ${r.error}`);
  }
  let text: string | undefined = f.textFormat;
  const src = f.textFormatSource;
  if (src) {
    if (src.inlineString !== undefined) text = src.inlineString;
    else if (src.inlineBytes !== undefined)
      text = Buffer.from(src.inlineBytes, 'base64').toString('utf8');
    else if (src.environmentVariable !== undefined) {
      text = process.env[src.environmentVariable];
      if (text === undefined)
        return err(
          `${path}.textFormatSource.environmentVariable: ${src.environmentVariable} is not set`,
        );
    } else if (src.filename !== undefined)
      return err(
        `${path}.textFormatSource.filename: reading a format from a file is not supported`,
      );
  }
  if (text === undefined) return err(`${path}: no text_format_source or json_format`);
  const r = textFormatter(text, omit);
  return r.ok ? r : err(`${path}: ${r.error}`);
}

// ---------------------------------------------------------------------------------------------
// Sinks

/** Where formatted lines go. Lines are buffered; `close` writes everything out first. */
export interface AccessLogSink {
  write(line: string): void;
  /** Writes what is buffered now. */
  flush(): void;
  /** Flushes, then releases the file; later writes are dropped. */
  close(): Promise<void>;
}

export interface SinkOptions {
  /** Envoy's file_flush_interval (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** Flush as soon as this much is buffered (default 64 KiB, Envoy's min_flush_size). */
  readonly maxBufferBytes?: number;
  /** Envoy's `filesystem.*` stats (write_buffered, write_completed, write_failed, flushed_by_timer). */
  readonly stats?: StatsScope;
}

/** A stream to write to (process.stdout or a test double). */
export interface WritableLike {
  write(chunk: string, cb?: (err?: Error | null) => void): boolean;
}

class BufferedSink implements AccessLogSink {
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly interval: number;
  private readonly maxBytes: number;
  constructor(
    private readonly out: (chunk: string) => void,
    private readonly onClose: () => Promise<void>,
    private readonly options: SinkOptions,
  ) {
    this.interval = options.flushIntervalMs ?? 1000;
    this.maxBytes = options.maxBufferBytes ?? 64 * 1024;
  }
  write(line: string): void {
    if (this.closed) return;
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.options.stats?.counter('filesystem.write_buffered').inc();
    this.options.stats?.gauge('filesystem.write_total_buffered').set(this.pendingBytes);
    if (this.pendingBytes >= this.maxBytes) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.options.stats?.counter('filesystem.flushed_by_timer').inc();
        this.flush();
      }, this.interval);
      this.timer.unref();
    }
  }
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    this.options.stats?.gauge('filesystem.write_total_buffered').set(0);
    try {
      this.out(chunk);
      this.options.stats?.counter('filesystem.write_completed').inc();
    } catch {
      this.options.stats?.counter('filesystem.write_failed').inc();
    }
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await this.onClose();
  }
}

/** A sink writing to a stream (stdout, stderr). Close waits until the stream took the last chunk. */
export function streamSink(stream: WritableLike, options: SinkOptions = {}): AccessLogSink {
  let last: Promise<void> = Promise.resolve();
  return new BufferedSink(
    (chunk) => {
      last = new Promise<void>((resolve) => {
        stream.write(chunk, () => resolve());
      });
    },
    () => last,
    options,
  );
}

/** A sink appending to a file (created if needed). Writes are synchronous, in batches. */
export function fileSink(path: string, options: SinkOptions = {}): AccessLogSink {
  let fd: number | undefined = openSync(path, 'a');
  return new BufferedSink(
    (chunk) => {
      if (fd === undefined) return;
      const buf = Buffer.from(chunk, 'utf8');
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    },
    () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      return Promise.resolve();
    },
    options,
  );
}

// ---------------------------------------------------------------------------------------------
// Filters (envoy.config.accesslog.v3.AccessLogFilter)

type LogFilter = (ctx: LogContext) => boolean;

interface ComparisonFilterJson {
  readonly comparison?: {
    readonly op?: string;
    readonly value?: { readonly defaultValue?: number };
  };
}

function comparison(
  f: ComparisonFilterJson,
  path: string,
  get: (ctx: LogContext) => number | undefined,
): Result<LogFilter> {
  const op = f.comparison?.op ?? 'EQ';
  const value = f.comparison?.value?.defaultValue ?? 0;
  if (op !== 'EQ' && op !== 'GE' && op !== 'LE' && op !== 'NE')
    return err(`${path}.comparison.op: unknown operator "${op}"`);
  return ok((ctx) => {
    const v = get(ctx);
    if (v === undefined) return false;
    return op === 'EQ'
      ? v === value
      : op === 'NE'
        ? v !== value
        : op === 'GE'
          ? v >= value
          : v <= value;
  });
}

/** Builds an access log filter; unsupported filters are errors, never ignored. */
function buildFilter(f: Record<string, unknown>, path: string): Result<LogFilter> {
  const keys = Object.keys(f);
  if (keys.length !== 1) return err(`${path}: exactly one filter type must be set`);
  const key = keys[0] as string;
  const v = f[key] as Record<string, unknown>;
  const sub = `${path}.${key}`;
  switch (key) {
    case 'statusCodeFilter':
      return comparison(v, sub, (c) => c.info.responseCode);
    case 'durationFilter':
      return comparison(v, sub, (c) =>
        c.info.durationMs === undefined ? undefined : Math.floor(c.info.durationMs),
      );
    case 'notHealthCheckFilter':
      return ok(() => true);
    case 'responseFlagFilter': {
      const flags = (v.flags as string[] | undefined) ?? [];
      const known = new Set<string>(Object.values(RESPONSE_FLAGS));
      for (const fl of flags)
        if (!known.has(fl)) return err(`${sub}.flags: unknown response flag "${fl}"`);
      return ok((c) =>
        flags.length === 0
          ? c.info.responseFlags.size > 0
          : flags.some((fl) => c.info.responseFlags.has(fl as ResponseFlag)),
      );
    }
    case 'grpcStatusFilter': {
      const statuses = ((v.statuses as string[] | undefined) ?? []).map((s) =>
        GRPC_SNAKE.indexOf(s),
      );
      if (statuses.includes(-1)) return err(`${sub}.statuses: unknown gRPC status`);
      const exclude = v.exclude === true;
      return ok((c) => {
        const s = c.info.grpcStatus;
        const hit = s !== undefined && statuses.includes(s);
        return exclude ? !hit : hit;
      });
    }
    case 'andFilter':
    case 'orFilter': {
      const list = (v.filters as Record<string, unknown>[] | undefined) ?? [];
      const built: LogFilter[] = [];
      for (const [i, item] of list.entries()) {
        const b = buildFilter(item, `${sub}.filters[${i}]`);
        if (!b.ok) return b;
        built.push(b.value);
      }
      return ok(
        key === 'andFilter' ? (c) => built.every((b) => b(c)) : (c) => built.some((b) => b(c)),
      );
    }
    default:
      return err(`${sub}: access log filter "${key}" is not supported`);
  }
}

// ---------------------------------------------------------------------------------------------
// Loggers

/** One configured access logger. */
export class AccessLogger {
  constructor(
    readonly formatter: AccessLogFormatter,
    readonly sink: AccessLogSink,
    private readonly filter?: LogFilter,
  ) {}
  /** Logs a finished request or connection (when the filter, if any, lets it through). */
  log(ctx: LogContext): void {
    if (this.filter && !this.filter(ctx)) return;
    this.sink.write(this.formatter.format(ctx));
  }
}

const FILE_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

export interface AccessLogManagerOptions extends SinkOptions {
  /** Format when a logger has none: Istio's (default) or Envoy's own default. */
  readonly defaultFormat?: 'istio' | 'envoy';
  /** Streams for `/dev/stdout` and `/dev/stderr` (default: the process's). */
  readonly stdout?: WritableLike;
  readonly stderr?: WritableLike;
}

/**
 * Builds access loggers from xDS AccessLog configs and owns their sinks: one sink per path,
 * shared by every logger writing there (Envoy's AccessLogManager). `close()` flushes them all.
 */
export class AccessLogManager {
  private readonly sinks = new Map<string, AccessLogSink>();
  constructor(private readonly options: AccessLogManagerOptions = {}) {}

  /** The shared sink for a path (`/dev/stdout` and `/dev/stderr` are the process streams). */
  sink(path: string): AccessLogSink {
    let s = this.sinks.get(path);
    if (!s) {
      if (path === '/dev/stdout')
        s = streamSink(this.options.stdout ?? process.stdout, this.options);
      else if (path === '/dev/stderr')
        s = streamSink(this.options.stderr ?? process.stderr, this.options);
      else s = fileSink(path, this.options);
      this.sinks.set(path, s);
    }
    return s;
  }

  /**
   * An AccessLogger from an `envoy.config.accesslog.v3.AccessLog` (file, stdout or stderr),
   * or an error naming the field that cannot be honoured.
   */
  create(config: AccessLog, path = 'accessLog'): Result<AccessLogger> {
    const cfg = config as AccessLog & { filter?: Record<string, unknown> };
    let filter: LogFilter | undefined;
    if (cfg.filter !== undefined) {
      const f = buildFilter(cfg.filter, `${path}.filter`);
      if (!f.ok) return f;
      filter = f.value;
    }
    const typed = cfg.typedConfig as (Record<string, unknown> & { '@type': string }) | undefined;
    if (!typed) return err(`${path}.typedConfig: an access logger needs a typed_config`);
    const tpath = `${path}.typedConfig`;
    let sinkPath: string;
    switch (typed['@type']) {
      case FILE_TYPE:
        if (typeof typed.path !== 'string' || typed.path === '')
          return err(`${tpath}.path: is required`);
        sinkPath = typed.path;
        break;
      case STDOUT_TYPE:
        sinkPath = '/dev/stdout';
        break;
      case STDERR_TYPE:
        sinkPath = '/dev/stderr';
        break;
      default:
        return err(`${tpath}: access logger type "${typed['@type']}" is not supported`);
    }
    const formatter = this.formatterOf(typed, tpath);
    if (!formatter.ok) return formatter;
    let sink: AccessLogSink;
    try {
      sink = this.sink(sinkPath);
    } catch (e) {
      return err(
        `${tpath}.path: cannot open ${sinkPath}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return ok(new AccessLogger(formatter.value, sink, filter));
  }

  private formatterOf(typed: Record<string, unknown>, path: string): Result<AccessLogFormatter> {
    if (typed.logFormat !== undefined)
      return formatterFromSubstitution(
        typed.logFormat as SubstitutionFormatStringJson,
        `${path}.logFormat`,
      );
    // Deprecated FileAccessLog fields.
    if (typeof typed.format === 'string') {
      const r = textFormatter(typed.format);
      return r.ok ? r : err(`${path}.format: ${r.error}`);
    }
    const json = (typed.jsonFormat ?? typed.typedJsonFormat) as Record<string, unknown> | undefined;
    if (json !== undefined) {
      const r = jsonFormatter(json);
      return r.ok ? r : err(`${path}.jsonFormat: ${r.error}`);
    }
    return textFormatter(
      this.options.defaultFormat === 'envoy' ? ENVOY_DEFAULT_TEXT_FORMAT : ISTIO_TEXT_FORMAT,
    );
  }

  /** Writes out every buffered line. */
  flush(): void {
    for (const s of this.sinks.values()) s.flush();
  }

  /** Flushes and closes every sink. */
  async close(): Promise<void> {
    const all = [...this.sinks.values()];
    this.sinks.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
