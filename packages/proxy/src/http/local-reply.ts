// Local replies: the responses the proxy makes itself (no route, no healthy upstream, upstream
// failures, timeouts, codec errors, redirects, direct responses), with Envoy's response flags,
// response code details and readable bodies, and Envoy's gRPC form (HTTP 200 with grpc-status
// and grpc-message, trailers-only) for gRPC requests.
import { STATUS_CODES } from 'node:http';
import { RESPONSE_FLAGS, type ResponseFlag } from '../stream-info.js';
import type { UpstreamResetReason } from '../upstream/api.js';

/** Envoy's response code details used by the connection manager and router. */
export const DETAILS = {
  viaUpstream: 'via_upstream',
  routeNotFound: 'route_not_found',
  clusterNotFound: 'cluster_not_found',
  noHealthyUpstream: 'no_healthy_upstream',
  upstreamResponseTimeout: 'upstream_response_timeout',
  directResponse: 'direct_response',
  downstreamRemoteDisconnect: 'downstream_remote_disconnect',
  lowVersion: 'low_version',
  missingHostHeader: 'missing_host_header',
  upgradeFailed: 'upgrade_failed',
  streamIdleTimeout: 'stream_idle_timeout',
  requestOverallTimeout: 'request_overall_timeout',
  requestHeadersTimeout: 'request_header_timeout',
  invalidPath: 'invalid_path',
  nonForwardingRoute: 'non_forwarding_route',
  invalidTransferEncoding: 'http1.invalid_transfer_encoding',
  tooManyHeaders: 'http1.too_many_headers',
  maxRequestsPerConnection: 'max_requests_per_connection_reached',
} as const;

/** How an upstream reset reads in Envoy's body and details. */
const RESET_TEXT: Record<
  UpstreamResetReason,
  { body: string; detail: string; flag: ResponseFlag }
> = {
  connection_failure: {
    body: 'connection failure',
    detail: 'connection_failure',
    flag: RESPONSE_FLAGS.UPSTREAM_CONNECTION_FAILURE,
  },
  connection_timeout: {
    body: 'connection timeout',
    detail: 'connection_timeout',
    flag: RESPONSE_FLAGS.UPSTREAM_CONNECTION_FAILURE,
  },
  connection_termination: {
    body: 'connection termination',
    detail: 'connection_termination',
    flag: RESPONSE_FLAGS.UPSTREAM_CONNECTION_TERMINATION,
  },
  remote_reset: {
    body: 'remote reset',
    detail: 'remote_reset',
    flag: RESPONSE_FLAGS.UPSTREAM_REMOTE_RESET,
  },
  remote_refused_stream_reset: {
    body: 'remote refused stream reset',
    detail: 'remote_refused_stream_reset',
    flag: RESPONSE_FLAGS.UPSTREAM_REMOTE_RESET,
  },
  protocol_error: {
    body: 'protocol error',
    detail: 'protocol_error',
    flag: RESPONSE_FLAGS.UPSTREAM_PROTOCOL_ERROR,
  },
  transport_not_implemented: {
    body: 'connection failure',
    detail: 'connection_failure',
    flag: RESPONSE_FLAGS.UPSTREAM_CONNECTION_FAILURE,
  },
  overflow: {
    body: 'overflow',
    detail: 'overflow',
    flag: RESPONSE_FLAGS.UPSTREAM_OVERFLOW,
  },
};

/** What a local reply for an upstream reset before the response started looks like. */
export function upstreamResetReply(
  reason: UpstreamResetReason,
  transportFailureReason: string | undefined,
): { status: number; body: string; details: string; flag: ResponseFlag } {
  const t = RESET_TEXT[reason];
  const tfr = transportFailureReason ? `, transport failure reason: ${transportFailureReason}` : '';
  const detailTfr = transportFailureReason ? `,${transportFailureReason.replaceAll(' ', '_')}` : '';
  return {
    // Envoy answers an upstream protocol error with 502, every other reset with 503.
    status: reason === 'protocol_error' ? 502 : 503,
    body: `upstream connect error or disconnect/reset before headers. reset reason: ${t.body}${tfr}`,
    details: `upstream_reset_before_response_started{${t.detail}${detailTfr}}`,
    flag: t.flag,
  };
}

/** Details for a reset after the response started. */
export function upstreamResetAfterResponseDetails(reason: UpstreamResetReason): {
  details: string;
  flag: ResponseFlag;
} {
  const t = RESET_TEXT[reason];
  return { details: `upstream_reset_after_response_started{${t.detail}}`, flag: t.flag };
}

export { httpToGrpcStatus } from '../grpc-status.js';

/** grpc-message percent-encoding (gRPC spec: printable ASCII except `%` stays). */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The status line text of a code. */
export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown';
}
