// VirtualService fault injection → the per-route config of Envoy's fault filter (Istio route.go
// TranslateFault). Percentages become fractions of a million (`percentage.value` × 10000,
// truncated as Go does); the deprecated integer `percent` of a delay is a fraction of a hundred
// (a delay always carries a percentage). Aborts use an HTTP status or a gRPC status code.
import type { HTTPFaultInjection, Percent } from '@trellis/api';
import type { FractionalPercent } from '@trellis/envoy';
import { durationFromIstio } from './http-duration.js';

/** Type URL of `envoy.extensions.filters.http.fault.v3.HTTPFault`. */
export const HTTP_FAULT_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

/** `envoy.extensions.filters.http.fault.v3.HTTPFault` as generated. */
export type HttpFaultConfig = {
  '@type': string;
  delay?: { fixedDelay: string; percentage: FractionalPercent };
  abort?: { httpStatus?: number; grpcStatus?: number; percentage?: FractionalPercent };
};

/** gRPC status codes by name. */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** An Istio Percent as a fraction of a million. */
export function percentToFraction(p: Percent): FractionalPercent {
  return { numerator: Math.trunc((p.value ?? 0) * 10000), denominator: 'MILLION' };
}

/** An integer percentage as a fraction of a hundred. */
export function integerToFraction(p: number): FractionalPercent {
  return { numerator: p, denominator: 'HUNDRED' };
}

/** The fault filter config of a route; undefined when neither a delay nor an abort applies. */
export function translateFault(f: HTTPFaultInjection | undefined): HttpFaultConfig | undefined {
  if (!f) return undefined;
  const out: HttpFaultConfig = { '@type': HTTP_FAULT_TYPE_URL };
  const fixed = durationFromIstio(f.delay?.fixedDelay);
  if (f.delay && fixed !== undefined) {
    out.delay = {
      fixedDelay: fixed,
      percentage: f.delay.percentage
        ? percentToFraction(f.delay.percentage)
        : integerToFraction(f.delay.percent ?? 0),
    };
  }
  if (f.abort) {
    const percentage = f.abort.percentage ? percentToFraction(f.abort.percentage) : undefined;
    const withPct = percentage ? { percentage } : {};
    if (f.abort.httpStatus !== undefined)
      out.abort = { httpStatus: f.abort.httpStatus, ...withPct };
    else if (f.abort.grpcStatus !== undefined && f.abort.grpcStatus in GRPC_STATUS_CODES)
      out.abort = { grpcStatus: GRPC_STATUS_CODES[f.abort.grpcStatus] ?? 2, ...withPct };
  }
  return out.delay || out.abort ? out : undefined;
}
