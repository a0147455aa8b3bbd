// The cluster manager (Envoy's ClusterManagerImpl): builds and updates the upstream clusters
// from each accepted ProxyConfig (CDS clusters + EDS load assignments). A cluster whose
// configuration did not change is kept with its hosts and connection pools (only its endpoints
// are refreshed); a changed cluster is rebuilt around the same hosts (its host set is handed
// over, so in-flight request counts and ejections survive) and the old one drained; a removed
// one is drained. A cluster that cannot be built (load balancing settings the balancers cannot
// honour) is rejected and reported, and the version it replaces stays in use.
import { deepEqual, errorMessage, type TimerApi } from '@trellis/core';
import type { Cluster, ClusterLoadAssignment } from '@trellis/envoy';
import type { Counter, Gauge, StatsScope } from '../observability/stats-api.js';
import type { ProxyConfig } from '../xds/config.js';
import type { ClusterManagerApi } from './api.js';
import { ClusterImpl, type DnsResolver } from './cluster.js';
import type { Random } from './lb/index.js';
import type { SecretManager } from '../tls/secret-manager.js';

export interface ClusterManagerOptions {
  /** Root stats scope (`cluster.<name>.*`, `cluster_manager.*`). */
  readonly stats: StatsScope;
  /** DNS for STRICT_DNS clusters (system resolver by default). */
  readonly dns?: DnsResolver;
  /** Randomness of the load balancers (seed it in tests). Default Math.random. */
  readonly random?: Random;
  /** Clock and timers of outlier detection (default: Node's). */
  readonly timers?: TimerApi;
  /** Secrets of the clusters' upstream TLS contexts (SDS, files). */
  readonly secrets?: SecretManager;
}

/** A cluster, or a load assignment of it, that could not be used (in full). */
export interface ClusterError {
  /** The cluster's name. */
  readonly name: string;
  readonly message: string;
}

export interface ClusterUpdateResult {
  /** Rejected clusters (a previous version stays in use) and skipped endpoints. */
  readonly errors: readonly ClusterError[];
}

/** The EDS resource name of a cluster (eds_cluster_config.service_name, else its name). */
export function edsServiceName(c: Cluster): string {
  return c.edsClusterConfig?.serviceName || c.name || '';
}

export class ClusterManager implements ClusterManagerApi {
  private readonly clusters = new Map<string, ClusterImpl>();
  private readonly draining = new Set<ClusterImpl>();
  private readonly activeClusters: Gauge;
  private readonly added: Counter;
  private readonly modified: Counter;
  private readonly removed: Counter;

  constructor(private readonly options: ClusterManagerOptions) {
    const s = options.stats.scope('cluster_manager');
    this.activeClusters = s.gauge('active_clusters');
    this.added = s.counter('cluster_added');
    this.modified = s.counter('cluster_modified');
    this.removed = s.counter('cluster_removed');
  }

  get(name: string): ClusterImpl | undefined {
    return this.clusters.get(name);
  }

  /** Every active cluster (admin `/clusters`). */
  all(): IterableIterator<ClusterImpl> {
    return this.clusters.values();
  }

  /**
   * Applies a new configuration at once. The promise resolves when new STRICT_DNS clusters have
   * resolved once (so a caller may wait for them before using the configuration), with what
   * could not be applied.
   */
  update(config: ProxyConfig): Promise<ClusterUpdateResult> {
    const warming: Promise<void>[] = [];
    const errors: ClusterError[] = [];
    for (const [name, c] of config.clusters) {
      const existing = this.clusters.get(name);
      if (existing && (existing.config === c || deepEqual(existing.config, c))) {
        if (existing.type === 'EDS')
          this.applyEndpoints(existing, config.endpoints.get(edsServiceName(c)), errors);
        continue;
      }
      let cluster: ClusterImpl;
      const keep = existing && sameHosts(existing.config, c) ? existing : undefined;
      try {
        cluster = new ClusterImpl(c, {
          stats: this.options.stats,
          dns: this.options.dns,
          hostSet: keep?.hostSet,
          random: this.options.random,
          timers: this.options.timers,
          outlierDetector: keep?.outlierDetector,
          secrets: this.options.secrets,
        });
      } catch (e) {
        // Like Envoy rejecting a cluster it cannot build: the version in use (if any) stays.
        errors.push({ name, message: errorMessage(e) });
        if (existing?.type === 'EDS')
          this.applyEndpoints(
            existing,
            config.endpoints.get(edsServiceName(existing.config)),
            errors,
          );
        continue;
      }
      if (cluster.type === 'EDS') {
        const cla = config.endpoints.get(edsServiceName(c));
        if (cla) report(name, cla, cluster.setLoadAssignment(cla), errors);
      }
      if (existing) {
        this.modified.inc();
        this.retire(existing);
      } else this.added.inc();
      this.clusters.set(name, cluster);
      warming.push(cluster.initialized);
    }
    for (const [name, cluster] of this.clusters) {
      if (config.clusters.has(name)) continue;
      this.clusters.delete(name);
      this.removed.inc();
      this.retire(cluster);
    }
    this.activeClusters.set(this.clusters.size);
    return Promise.all(warming).then(() => ({ errors }));
  }

  private applyEndpoints(
    cluster: ClusterImpl,
    cla: ClusterLoadAssignment | undefined,
    errors: ClusterError[],
  ): void {
    const current = cluster.loadAssignment;
    if (cla === current) return;
    const next = cla ?? {};
    if (current && deepEqual(current, next)) return;
    if (!current && !cla) return;
    report(cluster.name, next, cluster.setLoadAssignment(next), errors);
  }

  private retire(cluster: ClusterImpl): void {
    cluster.drain();
    for (const c of this.draining) if (c.connectionCount() === 0) this.draining.delete(c);
    if (cluster.connectionCount() > 0) this.draining.add(cluster);
  }

  /** Closes every connection of every cluster (shutdown). */
  close(): void {
    for (const c of this.clusters.values()) c.close();
    for (const c of this.draining) c.close();
    this.clusters.clear();
    this.draining.clear();
    this.activeClusters.set(0);
  }
}

/**
 * Whether a changed cluster keeps the hosts of the version it replaces: the same discovery type
 * (and, for EDS, the same service name), so that the same endpoints are meant.
 */
function sameHosts(previous: Cluster, next: Cluster): boolean {
  const type = next.type ?? 'STATIC';
  if ((previous.type ?? 'STATIC') !== type) return false;
  return type !== 'EDS' || edsServiceName(previous) === edsServiceName(next);
}

/** Endpoints of an assignment the host set skipped (claProblems), as an error of the cluster. */
function report(
  name: string,
  cla: ClusterLoadAssignment,
  problems: readonly string[],
  errors: ClusterError[],
): void {
  if (problems.length === 0) return;
  errors.push({
    name,
    message: `load assignment "${cla.clusterName ?? name}": skipped ${problems.join('; ')}`,
  });
}
