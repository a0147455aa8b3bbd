// Load balancing for the proxy's clusters, with Envoy's semantics.
//
// API:
//   const clb = createLoadBalancer(cluster, cla, { random?, now?, stats?, hostSet? });
//   clb.lb.choose({ hash?, avoid?, hostSelectionRetryCount? }) → LbHost | undefined (→ 503 UH)
//   clb.hosts                 every host (LbHost objects, stable across updates)
//   clb.update(cla)           applies an EDS update (same id → same host object, so
//                             activeRequests and outlier ejections survive)
//   clb.priorityLoad()        current healthy/degraded load per priority, panic flags
//   createLoadBalancer(newCluster, undefined, { hostSet: clb.hostSet })
//                             a new balancer for a changed Cluster that keeps the hosts
//   lbConfigProblems(cluster) / claProblems(cla)
//                             what the balancers cannot honour, with field paths (for NACKs)
//   xxHash64(value, seed = 0n) Envoy's hash for hash_policy values (headers, cookies, ...)
//
// `cla` may be omitted for clusters carrying their own load_assignment (STATIC, STRICT_DNS).
// The policy comes from lb_policy (or load_balancing_policy); CLUSTER_PROVIDED (ORIGINAL_DST)
// gets a round robin over whatever hosts the assignment has — choosing the original
// destination is the cluster manager's job. Host health: EDS HEALTHY/UNKNOWN are healthy,
// DEGRADED hosts take load only when healthy ones cannot, anything else is unhealthy; setting
// `host.ejected` (or `host.healthy = false`) ejects a host without touching its EDS status.
import { InvalidError } from '@trellis/core';
import type { Cluster, ClusterLoadAssignment } from '@trellis/envoy';
import type { StatsScope } from '../../observability/stats-api.js';
import { PrioritySet, type Host, type HostSetUpdate } from './host-set.js';
import { lbSettingsOf, type LbPolicyName, type LbSettings } from './lb-config.js';
import { LeastRequestLoadBalancer } from './least-request-lb.js';
import { MaglevLoadBalancer } from './maglev-lb.js';
import type { PriorityLoad } from './priority-load.js';
import { defaultRandom, type Random } from './random.js';
import { RandomLoadBalancer } from './random-lb.js';
import { RingHashLoadBalancer } from './ring-hash-lb.js';
import { RoundRobinLoadBalancer } from './round-robin-lb.js';
import type { LbContext, LoadBalancer } from './types.js';
import type { LbDeps } from './zone-aware-lb.js';

export type { EdsHealthStatus, LbContext, LbHost, LoadBalancer, Locality } from './types.js';
export {
  Host,
  PrioritySet,
  claProblems,
  coarseHealthOf,
  endpointAddress,
  DEFAULT_OVERPROVISIONING_FACTOR,
  type CoarseHealth,
  type HostSetUpdate,
  type LevelView,
  type LocalityView,
} from './host-set.js';
export { lbSettingsOf, type LbPolicyName, type LbSettings } from './lb-config.js';
export {
  computePriorityLoad,
  choosePriority,
  type LevelHealth,
  type PriorityLoad,
} from './priority-load.js';
export { defaultRandom, seededRandom, randomBelow, type Random } from './random.js';
export { xxHash64, xxHash64Into } from './xxhash64.js';
export { EdfScheduler } from './edf-scheduler.js';
export { PreviousPriorities } from './previous-priorities.js';
export { DEFAULT_HOST_SELECTION_RETRIES } from './zone-aware-lb.js';

export interface CreateLoadBalancerOptions {
  /** Randomness (seed it in tests). Default Math.random. */
  readonly random?: Random;
  /** Monotonic clock in ms, for slow start. Default performance.now. */
  readonly now?: () => number;
  /** The cluster's stats scope (`cluster.<name>`): lb_healthy_panic is counted there. */
  readonly stats?: StatsScope;
  /** Reuse these hosts (a Cluster update of an existing cluster); `cla` then updates them. */
  readonly hostSet?: PrioritySet;
}

/** A cluster's hosts and the balancer choosing among them. */
export interface ClusterLoadBalancer {
  readonly policy: LbPolicyName;
  readonly settings: LbSettings;
  readonly hostSet: PrioritySet;
  readonly lb: LoadBalancer;
  /** Every host of the cluster. */
  readonly hosts: readonly Host[];
  /** Applies a new ClusterLoadAssignment (EDS). */
  update(cla: ClusterLoadAssignment): HostSetUpdate;
  /** The current priority load and panic flags. */
  priorityLoad(): PriorityLoad;
}

interface BalancerWithLoad extends LoadBalancer {
  choose(ctx: LbContext): Host | undefined;
  priorityLoad(): PriorityLoad;
}

/** Problems of a Cluster's balancing settings (empty when the balancers honour all of them). */
export function lbConfigProblems(cluster: Cluster): string[] {
  return lbSettingsOf(cluster).problems;
}

/**
 * Builds the hosts and the balancer of `cluster`. Throws InvalidError (code TRELLIS_INVALID,
 * with every problem) when the balancing settings cannot be honoured.
 */
export function createLoadBalancer(
  cluster: Cluster,
  cla?: ClusterLoadAssignment,
  options: CreateLoadBalancerOptions = {},
): ClusterLoadBalancer {
  const { settings, problems } = lbSettingsOf(cluster);
  if (problems.length > 0) {
    throw new InvalidError(
      `cluster ${cluster.name ?? '<unnamed>'}: unsupported load balancing settings: ${problems.join('; ')}`,
      problems,
    );
  }
  const now = options.now ?? (() => performance.now());
  const assignment = cla ?? cluster.loadAssignment;
  const hostSet = options.hostSet ?? new PrioritySet(undefined, { now });
  if (assignment) hostSet.update(assignment);
  const deps: LbDeps = {
    random: options.random ?? defaultRandom,
    now,
    panicCounter: options.stats?.counter('lb_healthy_panic'),
  };
  const lb = makeBalancer(settings, hostSet, deps);
  return {
    policy: settings.policy,
    settings,
    hostSet,
    lb,
    get hosts() {
      return hostSet.hosts;
    },
    update: (next) => hostSet.update(next),
    priorityLoad: () => lb.priorityLoad(),
  };
}

function makeBalancer(settings: LbSettings, hostSet: PrioritySet, deps: LbDeps): BalancerWithLoad {
  switch (settings.policy) {
    case 'ROUND_ROBIN':
    case 'CLUSTER_PROVIDED':
      return new RoundRobinLoadBalancer(hostSet, settings, deps);
    case 'LEAST_REQUEST':
      return new LeastRequestLoadBalancer(hostSet, settings, deps);
    case 'RANDOM':
      return new RandomLoadBalancer(hostSet, settings, deps);
    case 'RING_HASH':
      return new RingHashLoadBalancer(hostSet, settings, deps);
    case 'MAGLEV':
      return new MaglevLoadBalancer(hostSet, settings, deps);
  }
}
