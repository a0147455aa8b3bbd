// A cluster's upstream HTTP settings from `typed_extension_protocol_options`
// (`envoy.extensions.upstreams.http.v3.HttpProtocolOptions`): which protocol (explicit HTTP/1.1
// or HTTP/2, the downstream's, or auto), and the common options the pools honour.
import type { Cluster, HttpProtocolOptions, UpstreamHttpProtocolOptions } from '@trellis/envoy';
import type { DownstreamHttpProtocol, UpstreamHttpProtocol } from './api.js';
import { durationMs } from '../duration.js';

export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** Envoy's upstream idle_timeout when common_http_protocol_options sets none: 1 hour. */
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 3_600_000;

/** HTTP/2's default SETTINGS_MAX_CONCURRENT_STREAMS in Envoy (2^31 - 1). */
export const DEFAULT_H2_MAX_CONCURRENT_STREAMS = 2_147_483_647;

export interface UpstreamHttpSettings {
  /** `http1` / `http2` (explicit), `downstream` (use_downstream_protocol), `auto`. */
  readonly mode: UpstreamHttpProtocol | 'downstream' | 'auto';
  /** 0 = no idle timeout. */
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** 0 = unlimited. */
  readonly maxConnectionDurationMs: number;
  /** Streams per HTTP/2 connection we open at most (besides the peer's own limit). */
  readonly h2MaxConcurrentStreams: number;
  readonly h2InitialStreamWindowSize: number | undefined;
  readonly h2InitialConnectionWindowSize: number | undefined;
  /** upstream_http_protocol_options.auto_sni: SNI from the request's host (TLS only). */
  readonly autoSni: boolean;
  /** upstream_http_protocol_options.auto_san_validation: the server's SANs must name that host. */
  readonly autoSanValidation: boolean;
  /** The header auto_sni reads instead of `:authority` (override_auto_sni_header). */
  readonly overrideAutoSniHeader: string | undefined;
}

/** The settings of `cluster` (HTTP/1.1 and Envoy's defaults when it has no protocol options). */
export function upstreamHttpSettings(cluster: Cluster): UpstreamHttpSettings {
  const opts = cluster.typedExtensionProtocolOptions?.[HTTP_PROTOCOL_OPTIONS_KEY] as
    | (HttpProtocolOptions & { upstreamHttpProtocolOptions?: UpstreamHttpProtocolOptions })
    | undefined;
  const common = opts?.commonHttpProtocolOptions;
  let mode: UpstreamHttpSettings['mode'] = 'http1';
  let h2 = undefined;
  if (opts?.explicitHttpConfig) {
    h2 = opts.explicitHttpConfig.http2ProtocolOptions;
    mode = h2 ? 'http2' : 'http1';
  } else if (opts?.useDownstreamProtocolConfig) {
    h2 = opts.useDownstreamProtocolConfig.http2ProtocolOptions;
    mode = 'downstream';
  } else if (opts?.autoConfig) {
    h2 = opts.autoConfig.http2ProtocolOptions;
    mode = 'auto';
  }
  return {
    mode,
    idleTimeoutMs: durationMs(common?.idleTimeout) ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
    maxRequestsPerConnection: common?.maxRequestsPerConnection ?? 0,
    maxConnectionDurationMs: durationMs(common?.maxConnectionDuration) ?? 0,
    h2MaxConcurrentStreams: h2?.maxConcurrentStreams || DEFAULT_H2_MAX_CONCURRENT_STREAMS,
    h2InitialStreamWindowSize: h2?.initialStreamWindowSize,
    h2InitialConnectionWindowSize: h2?.initialConnectionWindowSize,
    autoSni: opts?.upstreamHttpProtocolOptions?.autoSni === true,
    autoSanValidation: opts?.upstreamHttpProtocolOptions?.autoSanValidation === true,
    overrideAutoSniHeader:
      opts?.upstreamHttpProtocolOptions?.overrideAutoSniHeader?.toLowerCase() || undefined,
  };
}

/**
 * The protocol toward the upstream for a request that came over `downstream`. `auto` picks by
 * ALPN, which needs upstream TLS: over plaintext it is HTTP/1.1, as in Envoy; over TLS the
 * cluster's HTTP/1.1 pool for `auto` negotiates (pool-alpn.ts) and uses HTTP/2 when the server
 * chose `h2`.
 */
export function chooseHttpProtocol(
  settings: UpstreamHttpSettings,
  downstream: DownstreamHttpProtocol,
): UpstreamHttpProtocol {
  switch (settings.mode) {
    case 'http1':
    case 'http2':
      return settings.mode;
    case 'downstream':
      return downstream === 'HTTP/2' ? 'http2' : 'http1';
    case 'auto':
      return 'http1';
  }
}
