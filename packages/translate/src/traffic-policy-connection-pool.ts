// DestinationRule connectionPool (and Sidecar inboundConnectionPool) → Envoy circuit breakers,
// connect timeout, TCP keepalive and HTTP protocol options, as Istio maps them
// (cluster_traffic_policy.go applyConnectionPool, applyRetryBudget, applyH2Upgrade, and
// cluster.go applyTCPKeepalive):
// - circuit breaker thresholds default to 2^32-1 for connections, pending requests, requests and
//   retries (Envoy's own defaults, 1024 and 3, are too low for a mesh), with track_remaining;
//   a field set above zero replaces its default (zero means "unset", as in Istio);
// - http1MaxPendingRequests → max_pending_requests, http2MaxRequests → max_requests,
//   maxRetries → max_retries, tcp.maxConnections → max_connections;
// - tcp.connectTimeout replaces the mesh connect timeout;
// - http.idleTimeout (else tcp.idleTimeout), maxRequestsPerConnection and
//   tcp.maxConnectionDuration → common HTTP protocol options; maxConcurrentStreams → the HTTP/2
//   options of an HTTP/2 cluster; useClientProtocol → the downstream protocol upstream;
// - tcpKeepalive (mesh-wide, then the rule's fields over it) → upstream socket keepalive, times in
//   whole seconds.
import type { ConnectionPoolSettings, HTTPSettings, RetryBudget, TcpKeepalive } from '@trellis/api';
import type { CircuitBreakerThresholds } from '@trellis/envoy';
import { isHttpProtocol, type Protocol } from '@trellis/registry';
import {
  httpOptions,
  setHttp2,
  setUseDownstreamProtocol,
  type ClusterDraft,
} from './cluster-draft.js';
import type { ClusterMeshConfig } from './cluster-mesh-config.js';
import { durationFromIstio, wholeSecondsFromIstio } from './http-duration.js';

/** 2^32-1: Istio's default for every circuit breaker threshold. */
export const MAX_UINT32 = 4294967295;

/** Istio's default thresholds. */
export function defaultThresholds(): CircuitBreakerThresholds {
  return {
    maxConnections: MAX_UINT32,
    maxPendingRequests: MAX_UINT32,
    maxRequests: MAX_UINT32,
    maxRetries: MAX_UINT32,
    trackRemaining: true,
  };
}

function positive(n: number | undefined): n is number {
  return n !== undefined && n > 0;
}

/** Istio's retry budget defaults (its code writes 0.2 as the default percentage). */
function applyRetryBudget(t: CircuitBreakerThresholds, budget: RetryBudget | undefined): void {
  if (!budget) return;
  t.retryBudget = {
    budgetPercent: { value: budget.percent ?? 0.2 },
    minRetryConcurrency: positive(budget.minRetryConcurrency) ? budget.minRetryConcurrency : 3,
  };
}

/**
 * Applies a connection pool (absent means all defaults) to a cluster: thresholds, connect
 * timeout, keepalive and HTTP options.
 */
export function applyConnectionPool(
  d: ClusterDraft,
  mesh: ClusterMeshConfig,
  pool: ConnectionPoolSettings | undefined,
  retryBudget?: RetryBudget,
): void {
  const settings = pool ?? {};
  const t = defaultThresholds();
  applyRetryBudget(t, retryBudget);
  const http = settings.http;
  const tcp = settings.tcp;
  let idleTimeout: string | undefined;
  let maxConnectionDuration: string | undefined;
  if (http) {
    if (positive(http.http2MaxRequests)) t.maxRequests = http.http2MaxRequests;
    if (positive(http.http1MaxPendingRequests)) t.maxPendingRequests = http.http1MaxPendingRequests;
    if (positive(http.maxRetries)) t.maxRetries = http.maxRetries;
    idleTimeout = durationFromIstio(http.idleTimeout);
  }
  d.cluster.connectTimeout = durationFromIstio(mesh.connectTimeout) ?? '10s';
  if (tcp) {
    const ct = durationFromIstio(tcp.connectTimeout);
    if (ct !== undefined) d.cluster.connectTimeout = ct;
    if (positive(tcp.maxConnections)) t.maxConnections = tcp.maxConnections;
    maxConnectionDuration = durationFromIstio(tcp.maxConnectionDuration);
    idleTimeout ??= durationFromIstio(tcp.idleTimeout);
  }
  applyTcpKeepalive(d, mesh.tcpKeepalive);
  applyTcpKeepalive(d, tcp?.tcpKeepalive);
  d.cluster.circuitBreakers = { thresholds: [t] };

  const maxRequestsPerConnection = http?.maxRequestsPerConnection ?? 0;
  const maxConcurrentStreams = http?.maxConcurrentStreams ?? 0;
  if (
    maxConnectionDuration !== undefined ||
    idleTimeout !== undefined ||
    maxRequestsPerConnection > 0 ||
    maxConcurrentStreams > 0
  ) {
    const o = httpOptions(d);
    const common = { ...o.commonHttpProtocolOptions };
    if (idleTimeout !== undefined) common.idleTimeout = idleTimeout;
    if (maxRequestsPerConnection > 0) common.maxRequestsPerConnection = maxRequestsPerConnection;
    if (maxConnectionDuration !== undefined) common.maxConnectionDuration = maxConnectionDuration;
    o.commonHttpProtocolOptions = common;
    const h2 = o.explicitHttpConfig?.http2ProtocolOptions;
    if (h2 && maxConcurrentStreams > 0) h2.maxConcurrentStreams = maxConcurrentStreams;
  }
  if (http?.useClientProtocol) setUseDownstreamProtocol(d);
}

function applyTcpKeepalive(d: ClusterDraft, k: TcpKeepalive | undefined): void {
  if (!k) return;
  const opts = (d.cluster.upstreamConnectionOptions ??= { tcpKeepalive: {} });
  const ka = (opts.tcpKeepalive ??= {});
  if (positive(k.probes)) ka.keepaliveProbes = k.probes;
  const time = k.time !== undefined ? wholeSecondsFromIstio(k.time) : undefined;
  if (time !== undefined) ka.keepaliveTime = time;
  const interval = k.interval !== undefined ? wholeSecondsFromIstio(k.interval) : undefined;
  if (interval !== undefined) ka.keepaliveInterval = interval;
}

/**
 * Whether an outbound cluster is upgraded to HTTP/2 (Istio's shouldH2Upgrade): never with
 * useClientProtocol; UPGRADE / DO_NOT_UPGRADE in the rule decide; otherwise only HTTP ports, by
 * the mesh policy.
 */
export function shouldUpgradeToHttp2(
  protocol: Protocol,
  mesh: ClusterMeshConfig,
  http: HTTPSettings | undefined,
): boolean {
  if (http) {
    if (http.useClientProtocol) return false;
    if (http.h2UpgradePolicy === 'UPGRADE') return true;
    if (http.h2UpgradePolicy === 'DO_NOT_UPGRADE') return false;
  }
  if (!isHttpProtocol(protocol)) return false;
  return mesh.h2UpgradePolicy === 'UPGRADE';
}

/** Upgrades an outbound cluster to HTTP/2 when `shouldUpgradeToHttp2` says so. */
export function applyHttp2Upgrade(
  d: ClusterDraft,
  protocol: Protocol,
  mesh: ClusterMeshConfig,
  pool: ConnectionPoolSettings | undefined,
): void {
  if (shouldUpgradeToHttp2(protocol, mesh, pool?.http)) setHttp2(d);
}
