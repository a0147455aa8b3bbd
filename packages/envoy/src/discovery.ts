// The discovery protocol messages (envoy.service.discovery.v3), in the shape the xDS
// server and clients handle them: proto3-JSON field names, but resources kept as binary
// `Any`s (they are encoded once by translation and never re-encoded per stream).
import type { EncodedAny } from './codec.js';
import type { Locality } from './core.js';

/** google.rpc.Status: the error a client attaches to a NACK. */
export interface Status {
  /** gRPC status code. */
  code?: number;
  message?: string;
}

/** The proxy's identity (envoy.config.core.v3.Node). */
export interface Node {
  /** Istio format: `sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local`. */
  id?: string;
  cluster?: string;
  /** google.protobuf.Struct as a JSON object (Istio: NAMESPACE, LABELS, ...). */
  metadata?: Record<string, unknown>;
  locality?: Locality;
  userAgentName?: string;
  userAgentVersion?: string;
  clientFeatures?: string[];
}

/** ControlPlane: identifies the management server in responses. */
export interface ControlPlane {
  identifier?: string;
}

/** State-of-the-world request (also the ACK or NACK of the previous response). */
export interface DiscoveryRequest {
  /** Version of the last response the client applied (empty at first). */
  versionInfo?: string;
  node?: Node;
  resourceNames?: string[];
  typeUrl?: string;
  /** Nonce of the response this request answers (empty on a first request). */
  responseNonce?: string;
  /** Set when the client rejected the response (a NACK). */
  errorDetail?: Status;
  /**
   * Decoded requests only: the raw bytes of the resource_names entries. Envoy repeats its
   * whole subscription (thousands of names) in every ACK; comparing these bytes with the last
   * request's tells a repeat without decoding a name (`resourceNames` is decoded on first use).
   */
  resourceNamesRaw?: Uint8Array;
}

/** State-of-the-world response. */
export interface DiscoveryResponse {
  versionInfo?: string;
  resources?: EncodedAny[];
  /**
   * More resources, already encoded as `resources` field entries (see `encodeResourceEntries`);
   * written after `resources`. Lets a server encode a set shared by many proxies once.
   */
  encodedResources?: readonly Uint8Array[];
  canary?: boolean;
  typeUrl?: string;
  nonce?: string;
  controlPlane?: ControlPlane;
}

/** Incremental (delta) request. */
export interface DeltaDiscoveryRequest {
  node?: Node;
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  /** Resources the client already has (name → version), sent on the first request of a stream. */
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: Status;
}

/** One resource in a delta response (envoy.service.discovery.v3.Resource). */
export interface Resource {
  name?: string;
  aliases?: string[];
  version?: string;
  resource?: EncodedAny;
  /** Duration, e.g. "30s". */
  ttl?: string;
}

/** Incremental (delta) response. */
export interface DeltaDiscoveryResponse {
  systemVersionInfo?: string;
  resources?: Resource[];
  typeUrl?: string;
  removedResources?: string[];
  nonce?: string;
  controlPlane?: ControlPlane;
}
