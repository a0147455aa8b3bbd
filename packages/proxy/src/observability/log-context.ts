// What access logs and Istio metrics read about a finished request or connection: the StreamInfo
// plus accessors for its headers (the HTTP layer's own header maps stay where they are). Header
// names are lower case; `:method`, `:path`, `:authority` and `:scheme` are the pseudo-headers.
import type { X509Certificate } from 'node:crypto';
import type { StreamInfo } from '../stream-info.js';

/** StreamInfo.metadata key of the downstream TLS connection's details (set by the TLS layer). */
export const DOWNSTREAM_TLS_KEY = 'envoy.downstream_tls';

/** What `%DOWNSTREAM_TLS_VERSION%`, `%DOWNSTREAM_PEER_SUBJECT%` and the like read. */
export interface DownstreamTlsDetails {
  /** `TLSv1.3`... */
  readonly version: string | undefined;
  /** OpenSSL's name of the cipher suite. */
  readonly cipher: string | undefined;
  /** The client's certificate, when it sent one. */
  peerCertificate(): X509Certificate | undefined;
  /** Our certificate. */
  localCertificate(): X509Certificate | undefined;
}

export interface LogContext {
  readonly info: StreamInfo;
  /** A request header as it went upstream (after the router's changes), or undefined. */
  requestHeader?(name: string): string | undefined;
  /** A response header as sent downstream, or undefined. */
  responseHeader?(name: string): string | undefined;
  /** A response trailer (gRPC's grpc-status), or undefined. */
  responseTrailer?(name: string): string | undefined;
  /** The chosen upstream host's filter metadata (`%UPSTREAM_METADATA(...)%`). */
  readonly upstreamHostMetadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The upstream cluster's alt_stat_name, when set (Envoy's `%UPSTREAM_CLUSTER%` prints it). */
  readonly upstreamObservabilityName?: string;
}

/** A LogContext over plain header records (Node's IncomingHttpHeaders shape), e.g. in tests. */
export function logContext(
  info: StreamInfo,
  request: Readonly<Record<string, string | readonly string[] | undefined>> = {},
  response: Readonly<Record<string, string | readonly string[] | undefined>> = {},
  trailers: Readonly<Record<string, string | readonly string[] | undefined>> = {},
): LogContext {
  const get =
    (h: Readonly<Record<string, string | readonly string[] | undefined>>) =>
    (name: string): string | undefined => {
      const v = h[name];
      return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
    };
  return {
    info,
    requestHeader: get(request),
    responseHeader: get(response),
    responseTrailer: get(trailers),
  };
}
