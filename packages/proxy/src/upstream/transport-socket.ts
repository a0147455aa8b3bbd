// Which transport socket a cluster uses toward a host: the first transport_socket_matches entry
// whose `match` is contained in the endpoint's `envoy.transport_socket_match` metadata (Istio's
// `tlsMode: istio`), else the cluster's transport_socket, else plaintext. Each choice has a key
// the connection pools are keyed on: a TLS and a plaintext connection to one host differ.
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

/** The transport socket a cluster uses toward a host. */
export interface TransportSocketChoice {
  /**
   * Which one: `default` (the cluster's transport_socket) or `match:<i>` (its
   * transport_socket_matches[i]). Connections with different keys are never shared.
   */
  readonly key: string;
  readonly config: TransportSocket | undefined;
  readonly kind: TransportSocketKind;
  /** The keys of this transport's pools in a host's pool map (made once, not per request). */
  readonly http1PoolKey: string;
  readonly http2PoolKey: string;
}

function choice(key: string, config: TransportSocket | undefined): TransportSocketChoice {
  return {
    key,
    config,
    kind: transportSocketKind(config),
    http1PoolKey: `${key}|http1`,
    http2PoolKey: `${key}|http2`,
  };
}

/** The key of the cluster's own transport_socket. */
export const DEFAULT_TRANSPORT_KEY = 'default';

/**
 * Decisions by cluster configuration and host metadata object (both immutable once received):
 * the router asks for every request, and the match compares metadata deeply.
 */
const decided = new WeakMap<Cluster, WeakMap<object, TransportSocketChoice>>();
const defaults = new WeakMap<Cluster, TransportSocketChoice>();

function defaultChoice(cluster: Cluster): TransportSocketChoice {
  let c = defaults.get(cluster);
  if (!c) {
    c = choice(DEFAULT_TRANSPORT_KEY, cluster.transportSocket);
    defaults.set(cluster, c);
  }
  return c;
}

/** The transport socket `cluster` uses for `host` (with its key). */
export function chooseTransportSocket(cluster: Cluster, host: LbHost): TransportSocketChoice {
  const matches = cluster.transportSocketMatches;
  if (!matches || matches.length === 0) return defaultChoice(cluster);
  let byHost = decided.get(cluster);
  if (!byHost) decided.set(cluster, (byHost = new WeakMap()));
  let choice = byHost.get(host.metadata);
  if (choice === undefined) {
    choice = matchTransportSocket(cluster, host);
    byHost.set(host.metadata, choice);
  }
  return choice;
}

/** The kind of transport socket `cluster` uses for `host`. */
export function transportSocketFor(cluster: Cluster, host: LbHost): TransportSocketKind {
  return chooseTransportSocket(cluster, host).kind;
}

function matchTransportSocket(cluster: Cluster, host: LbHost): TransportSocketChoice {
  const md = host.metadata['envoy.transport_socket_match'] ?? {};
  const matches = cluster.transportSocketMatches ?? [];
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i];
    if (m && metadataMatches(m.match ?? {}, md)) return choice(`match:${i}`, m.transportSocket);
  }
  return defaultChoice(cluster);
}

/** Every transport socket of a cluster with its key (the default first). */
export function clusterTransportSockets(cluster: Cluster): TransportSocketChoice[] {
  const out = [defaultChoice(cluster)];
  (cluster.transportSocketMatches ?? []).forEach((m, i) =>
    out.push(choice(`match:${i}`, m.transportSocket)),
  );
  return out;
}
