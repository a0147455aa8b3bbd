// The gRPC service definition of the Aggregated Discovery Service, for @grpc/grpc-js.
//
// Structurally a grpc-js `ServiceDefinition` (this package does not depend on grpc-js):
// the server passes it to `server.addService`, a client to `makeGenericClientConstructor`.
// Messages go through this package's codec, so the resources inside stay binary `Any`s.
import {
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
} from './discovery-codec.js';
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
} from './discovery.js';

/** Fully qualified name of the ADS service. */
export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** One bidirectional-streaming method, in grpc-js' MethodDefinition shape. */
export interface StreamingMethodDefinition<Req, Res> {
  readonly path: string;
  readonly requestStream: true;
  readonly responseStream: true;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => Req;
  readonly responseSerialize: (value: Res) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Res;
  readonly originalName: string;
}

/** The ADS service: state of the world and incremental (delta). */
// A type alias (not an interface) so that it is assignable to grpc-js' indexed ServiceDefinition.
export type AdsServiceDefinition = {
  readonly StreamAggregatedResources: StreamingMethodDefinition<
    DiscoveryRequest,
    DiscoveryResponse
  >;
  readonly DeltaAggregatedResources: StreamingMethodDefinition<
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse
  >;
};

function buf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The ADS service definition for grpc-js. */
export const adsServiceDefinition: AdsServiceDefinition = {
  StreamAggregatedResources: {
    path: `/${ADS_SERVICE_NAME}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (r) => buf(encodeDiscoveryRequest(r)),
    requestDeserialize: (b) => decodeDiscoveryRequest(b),
    responseSerialize: (r) => buf(encodeDiscoveryResponse(r)),
    responseDeserialize: (b) => decodeDiscoveryResponse(b),
    originalName: 'streamAggregatedResources',
  },
  DeltaAggregatedResources: {
    path: `/${ADS_SERVICE_NAME}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (r) => buf(encodeDeltaDiscoveryRequest(r)),
    requestDeserialize: (b) => decodeDeltaDiscoveryRequest(b),
    responseSerialize: (r) => buf(encodeDeltaDiscoveryResponse(r)),
    responseDeserialize: (b) => decodeDeltaDiscoveryResponse(b),
    originalName: 'deltaAggregatedResources',
  },
};
