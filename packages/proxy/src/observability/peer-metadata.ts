// Istio's peer identity for telemetry: the workload metadata of a node (from its xDS node
// metadata), the HTTP metadata exchange (`x-envoy-peer-metadata`: base64 of a serialized
// google.protobuf.Struct, and `x-envoy-peer-metadata-id`: the node id), and the EDS endpoint
// metadata `istio.workload` ("name;namespace;canonical-service;canonical-revision;cluster") used
// by a client when the server sent no metadata.
//
// Exchange, as Istio's peer_metadata filter does it:
// - outbound (client sidecar): add both headers to the upstream request; read (and remove) them
//   from the upstream response → the upstream peer;
// - inbound (server sidecar): read (and remove) them from the downstream request → the downstream
//   peer; add ours to the response only when the request carried them.
import { decodeMessage, encodeMessage } from '@trellis/envoy';
import type { StreamInfo } from '../stream-info.js';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** Keys of StreamInfo.metadata holding the peers (Istio's filter state names). */
export const DOWNSTREAM_PEER_KEY = 'downstream_peer';
export const UPSTREAM_PEER_KEY = 'upstream_peer';

/** Node metadata keys and label names Istio reads (extensions/common/metadata_object.h). */
export const WORKLOAD_FIELDS = {
  instanceName: 'NAME',
  namespace: 'NAMESPACE',
  clusterId: 'CLUSTER_ID',
  owner: 'OWNER',
  workloadName: 'WORKLOAD_NAME',
  labels: 'LABELS',
} as const;
export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
export const APP_LABEL = 'app';
export const VERSION_LABEL = 'version';
const OWNER_PREFIX = 'kubernetes://apis/apps/v1/namespaces/';

export type WorkloadType = 'pod' | 'deployment' | 'job' | 'cronjob' | 'unknown';

/** What Istio knows of a workload for telemetry (Istio's WorkloadMetadataObject). */
export interface WorkloadMetadata {
  /** Pod (instance) name. */
  readonly instanceName: string;
  readonly namespace: string;
  readonly workloadName: string;
  /** Istio cluster id (`Kubernetes` by default). */
  readonly clusterId: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly appName: string;
  readonly appVersion: string;
  readonly workloadType: WorkloadType;
}

export const EMPTY_WORKLOAD: WorkloadMetadata = Object.freeze({
  instanceName: '',
  namespace: '',
  workloadName: '',
  clusterId: '',
  canonicalName: '',
  canonicalRevision: '',
  appName: '',
  appVersion: '',
  workloadType: 'unknown',
});

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const WORKLOAD_TYPES: Readonly<Record<string, WorkloadType>> = {
  pod: 'pod',
  deployment: 'deployment',
  job: 'job',
  cronjob: 'cronjob',
};

/** The workload type in an OWNER (`kubernetes://apis/apps/v1/namespaces/ns/deployments/name`). */
function parseOwner(owner: string, workload: string): WorkloadType {
  if (owner.length > workload.length + 2) {
    const rest = owner.slice(0, owner.length - workload.length - 2);
    const slash = rest.lastIndexOf('/');
    if (slash >= 0) return WORKLOAD_TYPES[rest.slice(slash + 1)] ?? 'unknown';
  }
  return 'unknown';
}

export interface NodeMetadataOptions {
  /**
   * Fill missing canonical service labels as istio-agent does (`app.kubernetes.io/name`, `app`,
   * then the workload name; revision `app.kubernetes.io/version`, `version`, then `latest`).
   * Default true; false reads only what is there (as Istio's Struct decoding does).
   */
  readonly canonicalDefaults?: boolean;
}

/**
 * The workload metadata in an xDS node's metadata (proto3 JSON Struct: NAME, NAMESPACE,
 * WORKLOAD_NAME, CLUSTER_ID, OWNER, LABELS{...}).
 */
export function workloadFromNodeMetadata(
  metadata: Readonly<Record<string, unknown>> | undefined,
  options: NodeMetadataOptions = {},
): WorkloadMetadata {
  if (!metadata) return EMPTY_WORKLOAD;
  const labels = isRecord(metadata[WORKLOAD_FIELDS.labels])
    ? (metadata[WORKLOAD_FIELDS.labels] as Record<string, unknown>)
    : {};
  const workloadName = str(metadata[WORKLOAD_FIELDS.workloadName]);
  let canonicalName = str(labels[CANONICAL_NAME_LABEL]);
  let canonicalRevision = str(labels[CANONICAL_REVISION_LABEL]);
  if (options.canonicalDefaults !== false) {
    if (canonicalName === '')
      canonicalName =
        str(labels['app.kubernetes.io/name']) || str(labels[APP_LABEL]) || workloadName;
    if (canonicalRevision === '')
      canonicalRevision =
        str(labels['app.kubernetes.io/version']) || str(labels[VERSION_LABEL]) || 'latest';
  }
  return {
    instanceName: str(metadata[WORKLOAD_FIELDS.instanceName]),
    namespace: str(metadata[WORKLOAD_FIELDS.namespace]),
    workloadName,
    clusterId: str(metadata[WORKLOAD_FIELDS.clusterId]),
    canonicalName,
    canonicalRevision,
    appName: str(labels[APP_LABEL]),
    appVersion: str(labels[VERSION_LABEL]),
    workloadType: parseOwner(str(metadata[WORKLOAD_FIELDS.owner]), workloadName),
  };
}

/** The Struct Istio sends for a workload (convertWorkloadMetadataToStruct). */
export function workloadToStruct(w: WorkloadMetadata): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (w.instanceName !== '') out[WORKLOAD_FIELDS.instanceName] = w.instanceName;
  if (w.namespace !== '') out[WORKLOAD_FIELDS.namespace] = w.namespace;
  if (w.workloadName !== '') out[WORKLOAD_FIELDS.workloadName] = w.workloadName;
  if (w.clusterId !== '') out[WORKLOAD_FIELDS.clusterId] = w.clusterId;
  const labels: Record<string, string> = {};
  if (w.canonicalName !== '') labels[CANONICAL_NAME_LABEL] = w.canonicalName;
  if (w.canonicalRevision !== '') labels[CANONICAL_REVISION_LABEL] = w.canonicalRevision;
  if (w.appName !== '') labels[APP_LABEL] = w.appName;
  if (w.appVersion !== '') labels[VERSION_LABEL] = w.appVersion;
  out[WORKLOAD_FIELDS.labels] = labels;
  if (w.workloadType !== 'unknown')
    out[WORKLOAD_FIELDS.owner] =
      `${OWNER_PREFIX}${w.namespace}/${w.workloadType}s/${w.workloadName}`;
  return out;
}

/** `x-envoy-peer-metadata` for a workload: base64 of the deterministic Struct encoding. */
export function encodePeerMetadata(w: WorkloadMetadata): string {
  const bytes = encodeMessage('google.protobuf.Struct', workloadToStruct(w));
  return Buffer.from(bytes).toString('base64');
}

/** Decodes `x-envoy-peer-metadata`; undefined when it is not a base64 Struct. */
export function decodePeerMetadata(value: string): WorkloadMetadata | undefined {
  if (value === '' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return undefined;
  let struct: Record<string, unknown>;
  try {
    struct = decodeMessage('google.protobuf.Struct', Buffer.from(value, 'base64'));
  } catch {
    return undefined;
  }
  return workloadFromNodeMetadata(struct, { canonicalDefaults: false });
}

/**
 * Parses EDS endpoint metadata `istio.workload`:
 * `name;namespace;canonical-service;canonical-revision;cluster` (Istio's convertEndpointMetadata).
 */
export function parseEndpointWorkload(value: string): WorkloadMetadata | undefined {
  const parts = value.split(';');
  if (parts.length < 5) return undefined;
  const [
    workloadName = '',
    namespace = '',
    canonicalName = '',
    canonicalRevision = '',
    clusterId = '',
  ] = parts;
  return {
    ...EMPTY_WORKLOAD,
    workloadName,
    namespace,
    canonicalName,
    canonicalRevision,
    clusterId,
  };
}

const endpointCache = new Map<string, WorkloadMetadata | undefined>();

/** The workload in an endpoint's filter metadata (`istio.workload`), if any (parsed once per value). */
export function endpointWorkload(
  filterMetadata: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined,
): WorkloadMetadata | undefined {
  const w = filterMetadata?.istio?.workload;
  if (typeof w !== 'string') return undefined;
  if (endpointCache.has(w)) return endpointCache.get(w);
  const parsed = parseEndpointWorkload(w);
  if (endpointCache.size >= 4096) endpointCache.clear();
  endpointCache.set(w, parsed);
  return parsed;
}

/** Headers as Node's http module gives them (lower-case names). */
export type HeaderRecord = Record<string, string | string[] | undefined>;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Istio's peer cache size (max_peer_cache_size). */
const MAX_PEER_CACHE = 500;

/**
 * The HTTP metadata exchange of one proxy: our headers (computed once) and a cache of decoded
 * peers by peer id. The HTTP layer calls the four methods at the four points of a stream.
 */
const NO_HEADERS: readonly (readonly [string, string])[] = Object.freeze([]);

export class PeerMetadataExchange {
  /** Our `x-envoy-peer-metadata-id` (the node id). */
  readonly id: string;
  /** Our `x-envoy-peer-metadata`. */
  readonly value: string;
  private readonly cache = new Map<string, WorkloadMetadata | undefined>();

  constructor(nodeId: string, local: WorkloadMetadata) {
    this.id = nodeId;
    this.value = encodePeerMetadata(local);
  }

  /** Decodes a peer's headers (cached by id, as Istio does). */
  lookup(id: string | undefined, value: string | undefined): WorkloadMetadata | undefined {
    if (value === undefined || value === '') return undefined;
    if (id !== undefined && id !== '') {
      const cached = this.cache.get(id);
      if (cached !== undefined || this.cache.has(id)) return cached;
    }
    const peer = decodePeerMetadata(value);
    if (id !== undefined && id !== '') {
      if (this.cache.size >= MAX_PEER_CACHE) {
        let n = MAX_PEER_CACHE / 4;
        for (const k of this.cache.keys()) {
          this.cache.delete(k);
          if (--n <= 0) break;
        }
      }
      this.cache.set(id, peer);
    }
    return peer;
  }

  /**
   * Inbound, request headers from downstream: records the downstream peer in
   * `info.metadata` (`downstream_peer`) and removes both headers. Returns whether the request
   * carried metadata (then `inboundResponseHeaders` answers with ours).
   */
  onInboundRequest(info: StreamInfo, headers: HeaderRecord): boolean {
    const id = first(headers[PEER_METADATA_ID_HEADER]);
    const value = first(headers[PEER_METADATA_HEADER]);
    // Set to undefined rather than deleted: keeps the header object fast (headers.ts dropHeader).
    if (id !== undefined) headers[PEER_METADATA_ID_HEADER] = undefined;
    if (value !== undefined) headers[PEER_METADATA_HEADER] = undefined;
    const peer = this.lookup(id, value);
    if (peer && info.metadataValue(DOWNSTREAM_PEER_KEY) === undefined)
      info.setMetadata(DOWNSTREAM_PEER_KEY, peer);
    return value !== undefined && value !== '';
  }

  /** Inbound, response headers to add downstream (none when the request carried no metadata). */
  inboundResponseHeaders(requestHadMetadata: boolean): readonly (readonly [string, string])[] {
    return requestHadMetadata ? this.headers : NO_HEADERS;
  }

  /** Outbound, headers to add to the upstream request. */
  outboundRequestHeaders(): readonly (readonly [string, string])[] {
    return this.headers;
  }

  /** Our two exchange headers, built once (they never change). */
  private get headers(): readonly (readonly [string, string])[] {
    return (this.#headers ??= Object.freeze([
      Object.freeze([PEER_METADATA_ID_HEADER, this.id] as const),
      Object.freeze([PEER_METADATA_HEADER, this.value] as const),
    ]));
  }

  #headers: readonly (readonly [string, string])[] | undefined;

  /**
   * Outbound, response headers from upstream: records the upstream peer (`upstream_peer`) and
   * removes both headers before the response goes downstream.
   */
  onOutboundResponse(info: StreamInfo, headers: HeaderRecord): void {
    const id = first(headers[PEER_METADATA_ID_HEADER]);
    const value = first(headers[PEER_METADATA_HEADER]);
    // Set to undefined rather than deleted: keeps the header object fast (headers.ts dropHeader).
    if (id !== undefined) headers[PEER_METADATA_ID_HEADER] = undefined;
    if (value !== undefined) headers[PEER_METADATA_HEADER] = undefined;
    const peer = this.lookup(id, value);
    if (peer && info.metadataValue(UPSTREAM_PEER_KEY) === undefined)
      info.setMetadata(UPSTREAM_PEER_KEY, peer);
  }
}
