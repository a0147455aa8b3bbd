// The router's timeouts for one request (Envoy's FilterUtility::finalTimeout / setTimeoutHeaders):
// the global (route) timeout from the route, or from grpc-timeout capped by
// max_stream_duration.grpc_timeout_header_max (less grpc_timeout_header_offset) for gRPC
// requests, overridden by x-envoy-upstream-rq-timeout-ms; the per-try timeout from the retry
// policy, overridden by x-envoy-upstream-rq-per-try-timeout-ms and dropped when it is not below
// the global one; and the headers sent upstream on each attempt (x-envoy-expected-rq-timeout-ms,
// grpc-timeout rewritten to the expected timeout).
import { durationMs } from '../duration.js';
import { headerValue, type HeaderMap } from './headers.js';

/** A request's timeouts in ms (0 = none). */
export interface RequestTimeouts {
  readonly globalMs: number;
  readonly perTryMs: number;
  readonly perTryIdleMs: number;
}

/** What the route contributes. */
export interface RouteTimeoutConfig {
  /** The route's timeout (15 s by default, 0 = none). */
  readonly timeoutMs: number;
  /** grpc_timeout_header_max: undefined = ignore grpc-timeout; 0 = uncapped. */
  readonly grpcTimeoutHeaderMaxMs: number | undefined;
  readonly grpcTimeoutHeaderOffsetMs?: number | undefined;
  readonly perTryTimeoutMs?: number | undefined;
  readonly perTryIdleTimeoutMs?: number | undefined;
}

/** grpc-timeout (`1S`, `500m`, ...) in ms. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.ceil(n / 1000);
    default:
      return Math.ceil(n / 1_000_000);
  }
}

/** ms as a grpc-timeout value (at most 8 digits, as gRPC requires). */
export function formatGrpcTimeout(ms: number): string {
  const v = Math.max(0, Math.round(ms));
  if (v < 100_000_000) return `${v}m`;
  if (v / 1000 < 100_000_000) return `${Math.ceil(v / 1000)}S`;
  if (v / 60_000 < 100_000_000) return `${Math.ceil(v / 60_000)}M`;
  return `${Math.min(99_999_999, Math.ceil(v / 3_600_000))}H`;
}

function headerMs(headers: HeaderMap, name: string): number | undefined {
  const v = headerValue(headers, name);
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

/**
 * The timeouts of a request. Reads (and removes) x-envoy-upstream-rq-timeout-ms and
 * x-envoy-upstream-rq-per-try-timeout-ms from `headers`.
 */
export function finalTimeouts(
  route: RouteTimeoutConfig,
  headers: HeaderMap,
  isGrpc: boolean,
): RequestTimeouts {
  let globalMs = route.timeoutMs;
  // grpc-timeout, when the route honours it and the request carries one (Envoy applies it as the
  // stream's max duration; the router's global timeout gives the same 504 UT here).
  const grpc =
    isGrpc && route.grpcTimeoutHeaderMaxMs !== undefined
      ? parseGrpcTimeout(headerValue(headers, 'grpc-timeout'))
      : undefined;
  if (grpc !== undefined) {
    const max = route.grpcTimeoutHeaderMaxMs ?? 0;
    const offset = route.grpcTimeoutHeaderOffsetMs ?? 0;
    let ms = offset > 0 && offset < grpc ? grpc - offset : grpc;
    if (max !== 0 && (ms === 0 || ms > max)) ms = max;
    globalMs = ms;
  }
  const hdr = headerMs(headers, 'x-envoy-upstream-rq-timeout-ms');
  if (hdr !== undefined) globalMs = hdr;
  let perTryMs = route.perTryTimeoutMs ?? 0;
  const perTryHdr = headerMs(headers, 'x-envoy-upstream-rq-per-try-timeout-ms');
  if (perTryHdr !== undefined) perTryMs = perTryHdr;
  delete headers['x-envoy-upstream-rq-timeout-ms'];
  delete headers['x-envoy-upstream-rq-per-try-timeout-ms'];
  if (globalMs !== 0 && perTryMs >= globalMs) perTryMs = 0;
  return { globalMs, perTryMs, perTryIdleMs: route.perTryIdleTimeoutMs ?? 0 };
}

/**
 * The timeout an attempt started `elapsedMs` after the first one can expect: the per-try
 * timeout (else the global one), never beyond what is left of the global one; 0 = none.
 */
export function expectedTimeoutMs(t: RequestTimeouts, elapsedMs: number): number {
  let expected = t.perTryMs || t.globalMs;
  if (expected > 0 && t.globalMs > 0)
    expected = elapsedMs >= t.globalMs ? 1 : Math.min(expected, t.globalMs - elapsedMs);
  return expected;
}

/**
 * Sets the timeout headers of an attempt: x-envoy-expected-rq-timeout-ms (unless suppressed)
 * and, for gRPC requests on a route with grpc_timeout_header_max, grpc-timeout.
 */
export function setTimeoutHeaders(
  headers: HeaderMap,
  t: RequestTimeouts,
  elapsedMs: number,
  insertExpected: boolean,
  rewriteGrpcTimeout: boolean,
): void {
  const expected = expectedTimeoutMs(t, elapsedMs);
  if (expected <= 0) return;
  if (insertExpected) headers['x-envoy-expected-rq-timeout-ms'] = String(Math.round(expected));
  if (rewriteGrpcTimeout) headers['grpc-timeout'] = formatGrpcTimeout(expected);
}

/** grpc_timeout_header_offset of a route's max_stream_duration. */
export function grpcTimeoutOffsetMs(d: { grpcTimeoutHeaderOffset?: string } | undefined): number {
  return durationMs(d?.grpcTimeoutHeaderOffset) ?? 0;
}
