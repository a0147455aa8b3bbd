// google.protobuf.Duration in its proto3-JSON form ("1.5s", "0s", "0.000001s", "-2s") as
// milliseconds: the one parser for every timeout, interval and TTL read from Envoy resources
// (clusters, listeners, routes, HttpConnectionManager, tcp_proxy, xDS config sources).

// Proto3 JSON: an optional sign, whole seconds, up to 9 fractional digits (nanoseconds), "s".
const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

/**
 * Milliseconds of a proto3-JSON duration (fractions of a millisecond kept), or undefined when it
 * is absent or malformed. Negative durations give negative values: callers that cannot use them
 * clamp or reject them.
 */
export function durationMs(d: string | undefined): number | undefined {
  if (d === undefined) return undefined;
  const m = DURATION_RE.exec(d);
  if (!m) return undefined;
  // Whole milliseconds plus nanoseconds / 1e6: exact for every millisecond value ("1.1s" is
  // 1100, not 1100.0000000000002 as (1 + 0.1) * 1000 would be).
  const nanos = m[3] === undefined ? 0 : Number(m[3].padEnd(9, '0'));
  const ms = Number(m[2]) * 1000 + nanos / 1e6;
  return m[1] === undefined || ms === 0 ? ms : -ms;
}

/** Whether `d` is a well-formed, non-negative proto3-JSON duration. */
export function isValidDuration(d: string): boolean {
  const m = DURATION_RE.exec(d);
  return m !== null && m[1] === undefined;
}
