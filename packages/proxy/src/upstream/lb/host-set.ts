// A cluster's hosts by priority level and locality, built from its ClusterLoadAssignment (EDS, or
// the cluster's own load_assignment) like Envoy's PrioritySet / HostSet. Host objects are kept
// across updates (same id → same object), so pool counters (activeRequests) and outlier
// ejections survive EDS pushes. Every change of membership, weight or health bumps `version`,
// which the balancers compare to rebuild their schedules lazily.
import type { ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints } from '@trellis/envoy';
import type { EdsHealthStatus, LbHost, Locality } from './types.js';

/** Envoy's default overprovisioning factor (ClusterLoadAssignment.policy.overprovisioning_factor). */
export const DEFAULT_OVERPROVISIONING_FACTOR = 140;

/** Envoy's coarse host health: where the host may receive traffic. */
export type CoarseHealth = 'healthy' | 'degraded' | 'unhealthy';

const EMPTY_LOCALITY: Locality = Object.freeze({ region: '', zone: '', subZone: '' });

/** The LbHost implementation of a host set. */
export class Host implements LbHost {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  weight = 1;
  priority = 0;
  locality: Locality = EMPTY_LOCALITY;
  localityWeight: number | undefined = undefined;
  metadata: Readonly<Record<string, Record<string, unknown>>> = {};
  hostname: string | undefined = undefined;
  healthStatus: EdsHealthStatus = 'UNKNOWN';
  activeRequests = 0;
  /** Clock time (ms) when the host was first seen healthy: the start of its slow start window. */
  healthySince: number | undefined = undefined;
  private ejectedFlag = false;
  private owner: PrioritySet | undefined;

  constructor(id: string, address: string, port: number, owner?: PrioritySet) {
    this.id = id;
    this.address = address;
    this.port = port;
    this.owner = owner;
  }

  get ejected(): boolean {
    return this.ejectedFlag;
  }

  set ejected(value: boolean) {
    if (value === this.ejectedFlag) return;
    this.ejectedFlag = value;
    this.owner?.markChanged();
  }

  /** EDS says HEALTHY/UNKNOWN and outlier detection has not ejected it. */
  get healthy(): boolean {
    return this.coarseHealth === 'healthy';
  }

  /** Setting `healthy` is ejecting (false) or un-ejecting (true); EDS health is kept apart. */
  set healthy(value: boolean) {
    this.ejected = !value;
  }

  get coarseHealth(): CoarseHealth {
    if (this.ejectedFlag) return 'unhealthy';
    return coarseHealthOf(this.healthStatus);
  }

  /** @internal Detaches a removed host: later ejections no longer bump its old set. */
  detach(): void {
    this.owner = undefined;
  }
}

/** HEALTHY and UNKNOWN are healthy, DEGRADED is degraded, anything else is unhealthy. */
export function coarseHealthOf(status: EdsHealthStatus): CoarseHealth {
  switch (status) {
    case 'HEALTHY':
    case 'UNKNOWN':
      return 'healthy';
    case 'DEGRADED':
      return 'degraded';
    case 'UNHEALTHY':
    case 'DRAINING':
    case 'TIMEOUT':
      return 'unhealthy';
  }
}

/** The hosts of one locality within a priority level. */
export interface LocalityView {
  readonly locality: Locality;
  /** The LocalityLbEndpoints load_balancing_weight (0 when absent). */
  readonly weight: number;
  readonly hosts: readonly Host[];
  readonly healthy: readonly Host[];
  readonly degraded: readonly Host[];
}

/** One priority level (Envoy's HostSet), with its hosts split by health. */
export interface LevelView {
  readonly priority: number;
  readonly hosts: readonly Host[];
  readonly healthy: readonly Host[];
  readonly degraded: readonly Host[];
  readonly localities: readonly LocalityView[];
  /** Whether any LocalityLbEndpoints of this level carried a load_balancing_weight. */
  readonly hasLocalityWeights: boolean;
}

/** What an update changed (and what in the assignment could not be used). */
export interface HostSetUpdate {
  readonly added: readonly Host[];
  readonly removed: readonly Host[];
  /** Endpoints skipped, with a field path: validate with claProblems() before applying. */
  readonly problems: readonly string[];
}

interface LevelSpec {
  readonly priority: number;
  readonly hosts: Host[];
  readonly localities: {
    key: string;
    locality: Locality;
    weight: number | undefined;
    hosts: Host[];
  }[];
}

export interface PrioritySetOptions {
  /** Monotonic clock in ms (slow start). Default performance.now. */
  readonly now?: () => number;
}

/** All hosts of a cluster by priority (Envoy's PrioritySet). */
export class PrioritySet {
  /** Bumped on every change of membership, weights or health. */
  version = 0;
  overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR;
  /** ClusterLoadAssignment.policy.weighted_priority_health. */
  weightedPriorityHealth = false;
  private allHosts: readonly Host[] = [];
  private readonly byId = new Map<string, Host>();
  private specs: LevelSpec[] = [];
  private cachedViews: readonly LevelView[] = [];
  private cachedVersion = -1;
  private readonly now: () => number;

  constructor(cla?: ClusterLoadAssignment, options: PrioritySetOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    if (cla) this.update(cla);
  }

  /** Every host, in assignment order. */
  get hosts(): readonly Host[] {
    return this.allHosts;
  }

  get(id: string): Host | undefined {
    return this.byId.get(id);
  }

  /** @internal Called by hosts whose ejection state changed. */
  markChanged(): void {
    this.version++;
  }

  /** Applies a new assignment, keeping the Host objects of endpoints that remain. */
  update(cla: ClusterLoadAssignment): HostSetUpdate {
    const problems: string[] = [];
    const added: Host[] = [];
    const seen = new Map<string, Host>();
    const specs: LevelSpec[] = [];
    const now = this.now();
    const policy = cla.policy;
    this.overprovisioningFactor =
      policy?.overprovisioningFactor !== undefined && policy.overprovisioningFactor > 0
        ? policy.overprovisioningFactor
        : DEFAULT_OVERPROVISIONING_FACTOR;
    this.weightedPriorityHealth = policy?.weightedPriorityHealth === true;

    (cla.endpoints ?? []).forEach((lle: LocalityLbEndpoints, i) => {
      const priority = lle.priority ?? 0;
      const locality = toLocality(lle.locality);
      const key = `${locality.region}/${locality.zone}/${locality.subZone}`;
      while (specs.length <= priority) {
        specs.push({ priority: specs.length, hosts: [], localities: [] });
      }
      const spec = specs[priority]!;
      let group = spec.localities.find((l) => l.key === key);
      if (!group) {
        group = { key, locality, weight: undefined, hosts: [] };
        spec.localities.push(group);
      }
      if (lle.loadBalancingWeight !== undefined) group.weight = lle.loadBalancingWeight;
      (lle.lbEndpoints ?? []).forEach((ep: LbEndpoint, j) => {
        const path = `endpoints[${i}].lbEndpoints[${j}]`;
        const addr = endpointAddress(ep);
        if (typeof addr === 'string') {
          problems.push(`${path}.endpoint.address: ${addr}`);
          return;
        }
        if (seen.has(addr.id)) {
          problems.push(`${path}: duplicate endpoint ${addr.id} (the first is used)`);
          return;
        }
        let host = this.byId.get(addr.id);
        if (!host) {
          host = new Host(addr.id, addr.address, addr.port, this);
          added.push(host);
        }
        seen.set(addr.id, host);
        host.weight =
          ep.loadBalancingWeight !== undefined && ep.loadBalancingWeight > 0
            ? ep.loadBalancingWeight
            : 1;
        host.priority = priority;
        host.locality = locality;
        host.localityWeight = lle.loadBalancingWeight;
        host.metadata = ep.metadata?.filterMetadata ?? {};
        host.hostname = ep.endpoint?.hostname;
        host.healthStatus = ep.healthStatus ?? 'UNKNOWN';
        if (host.healthySince === undefined && host.healthy) host.healthySince = now;
        spec.hosts.push(host);
        group.hosts.push(host);
      });
    });

    const removed: Host[] = [];
    for (const [id, host] of this.byId) {
      if (!seen.has(id)) {
        removed.push(host);
        host.detach();
      }
    }
    this.byId.clear();
    for (const [id, host] of seen) this.byId.set(id, host);
    this.allHosts = [...seen.values()];
    this.specs = specs;
    this.version++;
    return { added, removed, problems };
  }

  /** The priority levels with hosts split by health (recomputed when `version` changed). */
  levels(): readonly LevelView[] {
    if (this.cachedVersion === this.version) return this.cachedViews;
    const now = this.now();
    this.cachedViews = this.specs.map((spec) => {
      const healthy: Host[] = [];
      const degraded: Host[] = [];
      const localities: LocalityView[] = spec.localities.map((l) => {
        const lh: Host[] = [];
        const ld: Host[] = [];
        for (const h of l.hosts) {
          const health = h.coarseHealth;
          if (health === 'healthy') {
            lh.push(h);
            healthy.push(h);
            if (h.healthySince === undefined) h.healthySince = now;
          } else if (health === 'degraded') {
            ld.push(h);
            degraded.push(h);
          }
        }
        return {
          locality: l.locality,
          weight: l.weight ?? 0,
          hosts: l.hosts,
          healthy: lh,
          degraded: ld,
        };
      });
      return {
        priority: spec.priority,
        hosts: spec.hosts,
        healthy,
        degraded,
        localities,
        hasLocalityWeights: spec.localities.some((l) => l.weight !== undefined),
      };
    });
    this.cachedVersion = this.version;
    return this.cachedViews;
  }
}

function toLocality(l: { region?: string; zone?: string; subZone?: string } | undefined): Locality {
  if (!l || (!l.region && !l.zone && !l.subZone)) return EMPTY_LOCALITY;
  return Object.freeze({ region: l.region ?? '', zone: l.zone ?? '', subZone: l.subZone ?? '' });
}

/** The host id and address of an endpoint, or why it has none. */
export function endpointAddress(
  ep: LbEndpoint,
): { id: string; address: string; port: number } | string {
  const address = ep.endpoint?.address;
  if (!address) return 'missing';
  if (address.socketAddress) {
    const sa = address.socketAddress;
    if (!sa.address) return 'socket_address.address is empty';
    if (sa.namedPort !== undefined) return 'socket_address.named_port is not supported';
    if (sa.protocol === 'UDP') return 'UDP endpoints are not supported';
    const port = sa.portValue ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return `socket_address.port_value ${port} is out of range`;
    }
    const id = sa.address.includes(':') ? `[${sa.address}]:${port}` : `${sa.address}:${port}`;
    return { id, address: sa.address, port };
  }
  if (address.pipe) {
    if (!address.pipe.path) return 'pipe.path is empty';
    return { id: address.pipe.path, address: address.pipe.path, port: 0 };
  }
  if (address.envoyInternalAddress) return 'envoy_internal_address is not supported';
  return 'no socket_address or pipe';
}

/** Every problem of an assignment that update() would skip, with field paths (for a NACK). */
export function claProblems(cla: ClusterLoadAssignment): string[] {
  const problems: string[] = [];
  const policy = cla.policy;
  if (policy?.overprovisioningFactor !== undefined && policy.overprovisioningFactor <= 0) {
    problems.push('policy.overprovisioning_factor: must be greater than 0');
  }
  const ids = new Set<string>();
  (cla.endpoints ?? []).forEach((lle, i) => {
    if (lle.priority !== undefined && (!Number.isInteger(lle.priority) || lle.priority < 0)) {
      problems.push(`endpoints[${i}].priority: must be a non-negative integer`);
    }
    (lle.lbEndpoints ?? []).forEach((ep, j) => {
      const path = `endpoints[${i}].lbEndpoints[${j}]`;
      const addr = endpointAddress(ep);
      if (typeof addr === 'string') problems.push(`${path}.endpoint.address: ${addr}`);
      else if (ids.has(addr.id)) problems.push(`${path}: duplicate endpoint ${addr.id}`);
      else ids.add(addr.id);
      if (ep.loadBalancingWeight !== undefined && ep.loadBalancingWeight < 1) {
        problems.push(`${path}.load_balancing_weight: must be at least 1`);
      }
    });
  });
  return problems;
}
