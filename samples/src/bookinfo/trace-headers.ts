// The request headers bookinfo's services copy from an incoming request onto the calls it makes,
// so a trace stays one trace and header-matched routes (`end-user: jason`) apply all the way down.
// This is the list Istio documents for bookinfo's productpage.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Header names propagated to upstream calls (lower case). */
export const PROPAGATED_HEADERS: readonly string[] = [
  // Every application should propagate the request id Envoy assigns.
  'x-request-id',
  // W3C Trace Context.
  'traceparent',
  'tracestate',
  // Zipkin B3, multi-header and single-header forms.
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  // OpenTracing (Lightstep).
  'x-ot-span-context',
  // Google Cloud Trace, gRPC's binary trace context.
  'x-cloud-trace-context',
  'grpc-trace-bin',
  // Datadog.
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  // Apache SkyWalking.
  'sw8',
  // Application headers: who the user is and which client they use.
  'end-user',
  'user-agent',
  // Session and credentials.
  'cookie',
  'authorization',
  'jwt',
];

/** Picks the propagated headers out of an incoming request. */
export function propagatedHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of PROPAGATED_HEADERS) {
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
