// A cluster while it is being built, with its upstream HTTP protocol options kept apart until the
// end (Istio's clusterWrapper): policies add to the options in any order, `finishCluster` packs
// them into `typed_extension_protocol_options` once, with an explicit HTTP/1.1 default when no
// protocol was chosen (Envoy requires one).
import { CONFIG_TYPE_URL, toAny } from '@trellis/envoy';
import type { ClusterJson, HttpProtocolOptionsJson } from './cluster-types.js';

/** The key of the HTTP protocol options in `typed_extension_protocol_options`. */
export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** A cluster under construction. */
export interface ClusterDraft {
  readonly cluster: ClusterJson;
  /** The upstream HTTP options, once any policy set one. */
  http?: HttpProtocolOptionsJson;
}

/** A draft around a cluster. */
export function draftOf(cluster: ClusterJson): ClusterDraft {
  return { cluster };
}

/** The draft's HTTP options, created empty when absent. */
export function httpOptions(d: ClusterDraft): HttpProtocolOptionsJson {
  d.http ??= {};
  return d.http;
}

/**
 * Makes the cluster speak HTTP/2 upstream, replacing any protocol chosen before (as Istio's
 * setH2Options, which an explicit h2UpgradePolicy UPGRADE uses to override protocol sniffing).
 */
export function setHttp2(d: ClusterDraft): void {
  const o = httpOptions(d);
  if (o.upstreamHttpProtocolOptions || isHttp2Cluster(d)) return;
  delete o.useDownstreamProtocolConfig;
  delete o.autoConfig;
  o.explicitHttpConfig = { http2ProtocolOptions: {} };
}

/** Makes the cluster use the downstream connection's protocol (HTTP/1.1 or HTTP/2). */
export function setUseDownstreamProtocol(d: ClusterDraft): void {
  const o = httpOptions(d);
  delete o.explicitHttpConfig;
  delete o.autoConfig;
  o.useDownstreamProtocolConfig = { httpProtocolOptions: {}, http2ProtocolOptions: {} };
}

/** Whether the cluster speaks HTTP/2 upstream explicitly (Istio's isHttp2Cluster). */
export function isHttp2Cluster(d: ClusterDraft): boolean {
  return d.http?.explicitHttpConfig?.http2ProtocolOptions !== undefined;
}

/** The finished cluster, with the HTTP options packed. */
export function finishCluster(d: ClusterDraft): ClusterJson {
  const o = d.http;
  if (o === undefined) return d.cluster;
  const options: HttpProtocolOptionsJson = { ...o };
  if (!options.explicitHttpConfig && !options.useDownstreamProtocolConfig && !options.autoConfig)
    options.explicitHttpConfig = { httpProtocolOptions: {} };
  return {
    ...d.cluster,
    typedExtensionProtocolOptions: {
      ...d.cluster.typedExtensionProtocolOptions,
      [HTTP_PROTOCOL_OPTIONS_KEY]: toAny(CONFIG_TYPE_URL.HttpProtocolOptions, options),
    },
  };
}
