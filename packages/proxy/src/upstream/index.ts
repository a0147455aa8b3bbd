// The upstream side of the proxy: cluster manager, clusters, connection pools.
export * from './api.js';
export {
  ClusterManager,
  edsServiceName,
  type ClusterError,
  type ClusterManagerOptions,
  type ClusterUpdateResult,
} from './cluster-manager.js';
export {
  ClusterImpl,
  DEFAULT_CONNECT_TIMEOUT_MS,
  parseHostPort,
  systemDnsResolver,
  type ClusterDeps,
  type DnsResolver,
} from './cluster.js';
export { ClusterStats } from './cluster-stats.js';
export * as lb from './lb/index.js';
export {
  DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  upstreamHttpSettings,
  type UpstreamHttpSettings,
} from './http-protocol-options.js';
export {
  HostMonitor,
  OutlierDetector,
  outlierSettings,
  type EjectionType,
  type OutlierResult,
  type OutlierSettings,
  type OutlierSink,
} from './outlier-detection.js';
export { ResourceManager, defaultThresholds } from './resource-manager.js';
export { transportSocketFor, transportSocketKind } from './transport-socket.js';
