// The mesh-wide settings cluster and endpoint generation read (Istio's MeshConfig fields
// connectTimeout, h2UpgradePolicy, enableAutoMtls, localityLbSetting, tcpKeepalive,
// dnsRefreshRate), with Istio's defaults (pkg/config/mesh DefaultMeshConfig).
import type { LocalityLoadBalancerSetting, TcpKeepalive } from '@trellis/api';

/** Mesh-wide cluster settings. */
export interface ClusterMeshConfig {
  /** Connect timeout of every cluster unless a DestinationRule sets one (Istio: 10s). */
  readonly connectTimeout: string;
  /** Upgrade HTTP/1.1 connections to HTTP/2 on HTTP ports (Istio: DO_NOT_UPGRADE). */
  readonly h2UpgradePolicy: 'DO_NOT_UPGRADE' | 'UPGRADE';
  /** Send mutual TLS to workloads with a sidecar when no DestinationRule sets TLS (Istio: true). */
  readonly enableAutoMtls: boolean;
  /** Locality load balancing when a DestinationRule says nothing (Istio: `{enabled: true}`). */
  readonly localityLbSetting?: LocalityLoadBalancerSetting;
  /** TCP keepalive of every upstream connection (Istio: unset). */
  readonly tcpKeepalive?: TcpKeepalive;
  /** How often DNS clusters re-resolve (Istio: 60s). */
  readonly dnsRefreshRate: string;
  /** Istio's Kubernetes cluster id, written into endpoint telemetry metadata. */
  readonly clusterId: string;
}

/** Istio's defaults. */
export const DEFAULT_CLUSTER_MESH_CONFIG: ClusterMeshConfig = Object.freeze({
  connectTimeout: '10s',
  h2UpgradePolicy: 'DO_NOT_UPGRADE',
  enableAutoMtls: true,
  localityLbSetting: Object.freeze({ enabled: true }),
  dnsRefreshRate: '60s',
  clusterId: 'Kubernetes',
});

/** The defaults with `overrides` applied. */
export function clusterMeshConfig(overrides: Partial<ClusterMeshConfig> = {}): ClusterMeshConfig {
  return Object.freeze({ ...DEFAULT_CLUSTER_MESH_CONFIG, ...overrides });
}
