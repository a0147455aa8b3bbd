// Proto3-JSON shapes of ClusterLoadAssignment (EDS) and its parts.
import type { Address, HealthStatus, Locality, Metadata } from './core.js';

/** `envoy.config.endpoint.v3.ClusterLoadAssignment`: the endpoints of one cluster, by locality. */
export interface ClusterLoadAssignment {
  clusterName?: string;
  endpoints?: LocalityLbEndpoints[];
  policy?: ClusterLoadAssignmentPolicy;
}

/** `envoy.config.endpoint.v3.ClusterLoadAssignment.Policy`: overprovisioning and drops. */
export interface ClusterLoadAssignmentPolicy {
  overprovisioningFactor?: number;
  endpointStaleAfter?: string;
  weightedPriorityHealth?: boolean;
}

/** `envoy.config.endpoint.v3.LocalityLbEndpoints`: endpoints of one locality and priority. */
export interface LocalityLbEndpoints {
  locality?: Locality;
  lbEndpoints?: LbEndpoint[];
  loadBalancingWeight?: number;
  priority?: number;
  proximity?: number;
}

/** `envoy.config.endpoint.v3.LbEndpoint`: one endpoint with health, weight and metadata. */
export interface LbEndpoint {
  endpoint?: Endpoint;
  endpointName?: string;
  healthStatus?: HealthStatus;
  /** `envoy.transport_socket_match` (tlsMode) and `istio` (workload) metadata in Istio. */
  metadata?: Metadata;
  loadBalancingWeight?: number;
}

/** `envoy.config.endpoint.v3.Endpoint`: an upstream host's address. */
export interface Endpoint {
  address?: Address;
  healthCheckConfig?: EndpointHealthCheckConfig;
  hostname?: string;
  additionalAddresses?: { address?: Address }[];
}

/** `envoy.config.endpoint.v3.Endpoint.HealthCheckConfig`: where health checks go. */
export interface EndpointHealthCheckConfig {
  portValue?: number;
  hostname?: string;
  disableActiveHealthCheck?: boolean;
}
