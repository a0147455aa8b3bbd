// Durations as Istio writes them (`7s`, `1.5s`, `100ms`, `1h2m`) turned into the proto3-JSON
// form Envoy reads (`7s`, `1.500s`, `0.100s`): whole seconds, or 3, 6 or 9 decimals, as
// protojson prints them.
import { parseDuration } from '@trellis/api';

/** A proto3-JSON duration for a number of milliseconds (fractions down to nanoseconds). */
export function durationFromMs(ms: number): string {
  const totalNanos = Math.round(ms * 1e6);
  const seconds = Math.trunc(totalNanos / 1e9);
  const nanos = Math.abs(totalNanos - seconds * 1e9);
  if (nanos === 0) return `${seconds}s`;
  let frac = String(nanos).padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  const sign = totalNanos < 0 && seconds === 0 ? '-' : '';
  return `${sign}${seconds}.${frac}s`;
}

/** The proto3-JSON form of an Istio duration string; undefined when it does not parse. */
export function durationFromIstio(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  return ms === undefined ? undefined : durationFromMs(ms);
}

/** Seconds of an Istio duration string, whole (CORS max-age); undefined when it does not parse. */
export function wholeSecondsFromIstio(text: string): number | undefined {
  const ms = parseDuration(text);
  return ms === undefined ? undefined : Math.trunc(ms / 1000);
}

/** A zero duration: Istio's "no timeout". */
export const NO_TIMEOUT = '0s';
