// Which transport socket a cluster uses toward a host: the first transport_socket_matches entry
// whose `match` is contained in the endpoint's `envoy.transport_socket_match` metadata (Istio's
// `tlsMode: istio`), else the cluster's transport_socket, else plaintext.
import type { Cluster, TransportSocket } from '@trellis/envoy';
import { deepEqual } from '@trellis/core';
import type { TransportSocketKind } from './api.js';
import type { LbHost } from './lb/types.js';

const RAW_NAMES = new Set([
  'envoy.transport_sockets.raw_buffer',
  'raw_buffer',
  'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
]);
const TLS_NAMES = new Set([
  'envoy.transport_sockets.tls',
  'tls',
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
]);

/** The kind of one TransportSocket (absent → raw_buffer). */
export function transportSocketKind(ts: TransportSocket | undefined): TransportSocketKind {
  if (!ts) return 'raw_buffer';
  const type = ts.typedConfig?.['@type'];
  if (type !== undefined) {
    if (RAW_NAMES.has(type)) return 'raw_buffer';
    if (TLS_NAMES.has(type)) return 'tls';
  }
  const name = ts.name ?? '';
  if (RAW_NAMES.has(name)) return 'raw_buffer';
  if (TLS_NAMES.has(name)) return 'tls';
  return { unsupported: name || type || 'unnamed transport socket' };
}

/** Whether every key of `match` has an equal value in `metadata`. */
function metadataMatches(
  match: Readonly<Record<string, unknown>>,
  metadata: Readonly<Record<string, unknown>>,
): boolean {
  for (const [k, v] of Object.entries(match)) if (!deepEqual(metadata[k], v)) return false;
  return true;
}

/**
 * Decisions by cluster configuration and host metadata object (both immutable once received):
 * the router asks for every request, and the match compares metadata deeply.
 */
const decided = new WeakMap<Cluster, WeakMap<object, TransportSocketKind>>();

/** The transport socket `cluster` uses for `host`. */
export function transportSocketFor(cluster: Cluster, host: LbHost): TransportSocketKind {
  const matches = cluster.transportSocketMatches;
  if (!matches || matches.length === 0) return transportSocketKind(cluster.transportSocket);
  let byHost = decided.get(cluster);
  if (!byHost) decided.set(cluster, (byHost = new WeakMap()));
  let kind = byHost.get(host.metadata);
  if (kind === undefined) {
    kind = matchTransportSocket(cluster, host);
    byHost.set(host.metadata, kind);
  }
  return kind;
}

function matchTransportSocket(cluster: Cluster, host: LbHost): TransportSocketKind {
  const md = host.metadata['envoy.transport_socket_match'] ?? {};
  for (const m of cluster.transportSocketMatches ?? [])
    if (metadataMatches(m.match ?? {}, md)) return transportSocketKind(m.transportSocket);
  return transportSocketKind(cluster.transportSocket);
}
