// The contract between the cluster manager (connection pools, routing) and the load balancers.
// A load balancer only chooses among hosts; it never opens connections.

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** EDS health_status of an endpoint (envoy.config.core.v3.HealthStatus). */
export type EdsHealthStatus =
  'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

/** One upstream endpoint of a cluster, as the load balancer sees it. */
export interface LbHost {
  /** `ip:port` (`[ip]:port` for IPv6, or a pipe path): unique within the cluster. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** load_balancing_weight (default 1). */
  readonly weight: number;
  /** Priority level from the LocalityLbEndpoints (0 is highest). */
  readonly priority: number;
  readonly locality: Locality;
  /** Locality weight of the host's LocalityLbEndpoints, if any. */
  readonly localityWeight?: number | undefined;
  /** Endpoint metadata (filter_metadata), e.g. istio's and envoy.transport_socket_match. */
  readonly metadata: Readonly<Record<string, Record<string, unknown>>>;
  /** health_status from EDS is HEALTHY/UNKNOWN (and not ejected by outlier detection). */
  healthy: boolean;
  /** Requests in flight to this host: maintained by the pool, read by LEAST_REQUEST. */
  activeRequests: number;
  // --- Added by the lb helper (optional so in-test fakes stay valid) ---
  /** endpoint.hostname from EDS (auto_host_rewrite, use_hostname_for_hashing). */
  readonly hostname?: string | undefined;
  /** The EDS health_status as received (UNKNOWN when absent). */
  readonly healthStatus?: EdsHealthStatus;
  /**
   * Set by outlier detection while the host is ejected (a host set's hosts tell their balancers
   * to recompute). Survives EDS updates; `healthy` is false while it is set.
   */
  ejected?: boolean;
}

/** What a choice may depend on. */
export interface LbContext {
  /** Hash of the request (route hash_policy), for RING_HASH and MAGLEV. */
  readonly hash?: bigint;
  /** Hosts to avoid (previous_hosts retry predicate); a balancer retries a few times. */
  readonly avoid?: (host: LbHost) => boolean;
  /**
   * How many more choices to make while the chosen host is to be avoided (the route's
   * retry_policy.host_selection_retry_max_attempts). Default 5 (what Istio configures).
   */
  readonly hostSelectionRetryCount?: number;
  /**
   * The load over priority levels to choose with, given the balancer's own (a retry priority:
   * previous_priorities). The balancer's panic flags still apply.
   */
  readonly priorityLoad?: (original: PriorityLoad) => PriorityLoad;
}

export interface LoadBalancer {
  /** The chosen host, or undefined when no host is available (→ 503 UH). */
  choose(ctx: LbContext): LbHost | undefined;
}

/** The integer percentages of traffic per priority level, and which levels are in panic. */
export interface PriorityLoad {
  readonly healthy: readonly number[];
  readonly degraded: readonly number[];
  readonly panic: readonly boolean[];
  /** Per-level health (0-100) and degraded availability (0-100). */
  readonly health: readonly number[];
  readonly degradedAvailability: readonly number[];
}
