// A cluster's load-balancing settings, read once from its Cluster (lb_policy and the
// *_lb_config messages, common_lb_config, or load_balancing_policy extensions) into plain
// numbers with Envoy's defaults, and every setting the balancers cannot honour reported with
// its field path (for the xDS client's NACK).
import type { Cluster } from '@trellis/envoy';

export type LbPolicyName =
  'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';

/** slow_start_config: new hosts ramp up their weight over a window. */
export interface SlowStartSettings {
  readonly windowMs: number;
  readonly aggression: number;
  /** min_weight_percent as a fraction (default 0.1). */
  readonly minWeightFraction: number;
}

export interface LbSettings {
  readonly policy: LbPolicyName;
  /** healthy_panic_threshold in percent (default 50). */
  readonly panicThreshold: number;
  /** common_lb_config.locality_weighted_lb_config is set. */
  readonly localityWeighted: boolean;
  /**
   * zone_aware_lb_config.fail_traffic_on_panic: a level in panic gets no host instead of all of
   * its hosts (ROUND_ROBIN, LEAST_REQUEST and RANDOM only, as in Envoy).
   */
  readonly failTrafficOnPanic: boolean;
  /** least_request_lb_config.choice_count (default 2). */
  readonly choiceCount: number;
  /** least_request_lb_config.active_request_bias (default 1.0). */
  readonly activeRequestBias: number;
  readonly slowStart: SlowStartSettings | undefined;
  readonly minimumRingSize: number;
  readonly maximumRingSize: number;
  readonly maglevTableSize: number;
  /** consistent_hashing_lb_config.use_hostname_for_hashing. */
  readonly useHostnameForHashing: boolean;
}

export const DEFAULT_PANIC_THRESHOLD = 50;
export const DEFAULT_MIN_RING_SIZE = 1024;
export const DEFAULT_MAX_RING_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
const MAX_MAGLEV_TABLE_SIZE = 5000011;

const POLICY_PREFIX = 'type.googleapis.com/envoy.extensions.load_balancing_policies.';

// Fields Istio emits that @trellis/envoy's Cluster does not (yet) declare.
interface RuntimeDouble {
  defaultValue?: number;
  runtimeKey?: string;
}
interface SlowStartConfig {
  slowStartWindow?: string;
  aggression?: RuntimeDouble;
  minWeightPercent?: { value?: number };
}
interface ConsistentHashingLbConfig {
  useHostnameForHashing?: boolean;
  hashBalanceFactor?: number;
}
interface LocalityLbConfig {
  localityWeightedLbConfig?: object;
  zoneAwareLbConfig?: { failTrafficOnPanic?: boolean };
}
interface PolicyConfig {
  '@type'?: string;
  slowStartConfig?: SlowStartConfig;
  localityLbConfig?: LocalityLbConfig;
  choiceCount?: number;
  activeRequestBias?: RuntimeDouble;
  hashFunction?: string;
  minimumRingSize?: string | number;
  maximumRingSize?: string | number;
  tableSize?: string | number;
  useHostnameForHashing?: boolean;
  hashBalanceFactor?: number;
  consistentHashingLbConfig?: ConsistentHashingLbConfig;
  localityWeightedLbConfig?: object;
}
interface ClusterLbExtras {
  roundRobinLbConfig?: { slowStartConfig?: SlowStartConfig };
  leastRequestLbConfig?: {
    choiceCount?: number;
    activeRequestBias?: RuntimeDouble;
    slowStartConfig?: SlowStartConfig;
  };
  commonLbConfig?: {
    consistentHashingLbConfig?: ConsistentHashingLbConfig;
    overrideHostStatus?: object;
  };
}

/** Reads the balancing settings of `cluster`; `problems` lists what cannot be honoured. */
export function lbSettingsOf(cluster: Cluster): { settings: LbSettings; problems: string[] } {
  const problems: string[] = [];
  const extra = cluster as Cluster & ClusterLbExtras;
  const common = cluster.commonLbConfig;
  let policy: LbPolicyName = 'ROUND_ROBIN';
  let localityWeighted = common?.localityWeightedLbConfig !== undefined;
  let failTrafficOnPanic = common?.zoneAwareLbConfig?.failTrafficOnPanic === true;
  let choiceCount = 2;
  let activeRequestBias = 1;
  let slowStartConfig: SlowStartConfig | undefined;
  let slowStartPath = '';
  let minRing: string | number | undefined = cluster.ringHashLbConfig?.minimumRingSize;
  let maxRing: string | number | undefined = cluster.ringHashLbConfig?.maximumRingSize;
  let tableSize: string | number | undefined = cluster.maglevLbConfig?.tableSize;
  let hashing: ConsistentHashingLbConfig | undefined =
    extra.commonLbConfig?.consistentHashingLbConfig;
  let hashingPath = 'common_lb_config.consistent_hashing_lb_config';
  let hashFunction: string | undefined = cluster.ringHashLbConfig?.hashFunction;

  const lbPolicy = cluster.lbPolicy ?? 'ROUND_ROBIN';
  switch (lbPolicy) {
    case 'ROUND_ROBIN':
      policy = 'ROUND_ROBIN';
      slowStartConfig = extra.roundRobinLbConfig?.slowStartConfig;
      slowStartPath = 'round_robin_lb_config.slow_start_config';
      break;
    case 'LEAST_REQUEST': {
      policy = 'LEAST_REQUEST';
      const lr = extra.leastRequestLbConfig;
      if (lr?.choiceCount !== undefined) choiceCount = lr.choiceCount;
      if (lr?.activeRequestBias?.defaultValue !== undefined) {
        activeRequestBias = lr.activeRequestBias.defaultValue;
      }
      slowStartConfig = lr?.slowStartConfig;
      slowStartPath = 'least_request_lb_config.slow_start_config';
      break;
    }
    case 'RANDOM':
    case 'RING_HASH':
    case 'MAGLEV':
    case 'CLUSTER_PROVIDED':
      policy = lbPolicy;
      break;
    case 'LOAD_BALANCING_POLICY_CONFIG': {
      const entries = cluster.loadBalancingPolicy?.policies ?? [];
      let chosen: PolicyConfig | undefined;
      const seen: string[] = [];
      for (const entry of entries) {
        const cfg = entry.typedExtensionConfig?.typedConfig as PolicyConfig | undefined;
        const type = cfg?.['@type'] ?? '';
        seen.push(type);
        if (
          POLICY_NAMES[type.slice(POLICY_PREFIX.length)] !== undefined &&
          type.startsWith(POLICY_PREFIX)
        ) {
          chosen = cfg;
          break;
        }
      }
      if (!chosen) {
        problems.push(
          `load_balancing_policy.policies: no supported policy (got ${seen.join(', ') || 'none'})`,
        );
        break;
      }
      const name = (chosen['@type'] ?? '').slice(POLICY_PREFIX.length);
      policy = POLICY_NAMES[name] ?? 'ROUND_ROBIN';
      const path = `load_balancing_policy(${name})`;
      if (chosen.localityLbConfig?.localityWeightedLbConfig !== undefined) localityWeighted = true;
      if (chosen.localityWeightedLbConfig !== undefined) localityWeighted = true;
      if (chosen.localityLbConfig?.zoneAwareLbConfig?.failTrafficOnPanic === true) {
        failTrafficOnPanic = true;
      }
      if (chosen.choiceCount !== undefined) choiceCount = chosen.choiceCount;
      if (chosen.activeRequestBias?.defaultValue !== undefined) {
        activeRequestBias = chosen.activeRequestBias.defaultValue;
      }
      slowStartConfig = chosen.slowStartConfig;
      slowStartPath = `${path}.slow_start_config`;
      minRing = chosen.minimumRingSize;
      maxRing = chosen.maximumRingSize;
      tableSize = chosen.tableSize;
      hashFunction = chosen.hashFunction;
      if (chosen.useHostnameForHashing !== undefined || chosen.hashBalanceFactor !== undefined) {
        hashing = {
          ...(chosen.useHostnameForHashing !== undefined
            ? { useHostnameForHashing: chosen.useHostnameForHashing }
            : {}),
          ...(chosen.hashBalanceFactor !== undefined
            ? { hashBalanceFactor: chosen.hashBalanceFactor }
            : {}),
        };
        hashingPath = path;
      }
      if (chosen.consistentHashingLbConfig) {
        hashing = chosen.consistentHashingLbConfig;
        hashingPath = `${path}.consistent_hashing_lb_config`;
      }
      break;
    }
  }

  const panicThreshold =
    common?.healthyPanicThreshold?.value !== undefined
      ? Math.round(common.healthyPanicThreshold.value)
      : DEFAULT_PANIC_THRESHOLD;
  if (panicThreshold < 0 || panicThreshold > 100) {
    problems.push('common_lb_config.healthy_panic_threshold: must be between 0 and 100');
  }
  if (!Number.isInteger(choiceCount) || choiceCount < 2) {
    problems.push('least_request_lb_config.choice_count: must be at least 2');
    choiceCount = 2;
  }
  if (!(activeRequestBias >= 0) || !Number.isFinite(activeRequestBias)) {
    // Envoy falls back to 1.0 for negative or NaN biases.
    activeRequestBias = 1;
  }

  const minimumRingSize = toInt(minRing, DEFAULT_MIN_RING_SIZE);
  const maximumRingSize = toInt(maxRing, DEFAULT_MAX_RING_SIZE);
  if (policy === 'RING_HASH') {
    if (minimumRingSize < 1 || minimumRingSize > DEFAULT_MAX_RING_SIZE) {
      problems.push('ring_hash_lb_config.minimum_ring_size: must be between 1 and 8388608');
    }
    if (maximumRingSize < 1 || maximumRingSize > DEFAULT_MAX_RING_SIZE) {
      problems.push('ring_hash_lb_config.maximum_ring_size: must be between 1 and 8388608');
    }
    if (minimumRingSize > maximumRingSize) {
      problems.push(
        `ring_hash_lb_config: minimum_ring_size (${minimumRingSize}) > maximum_ring_size (${maximumRingSize})`,
      );
    }
    if (hashFunction === 'MURMUR_HASH_2') {
      problems.push(
        'ring_hash_lb_config.hash_function: MURMUR_HASH_2 is not supported (use XX_HASH)',
      );
    }
  }
  const maglevTableSize = toInt(tableSize, DEFAULT_MAGLEV_TABLE_SIZE);
  if (
    policy === 'MAGLEV' &&
    (maglevTableSize > MAX_MAGLEV_TABLE_SIZE || !isPrime(maglevTableSize))
  ) {
    problems.push(
      `maglev_lb_config.table_size: ${maglevTableSize} must be a prime number no larger than ${MAX_MAGLEV_TABLE_SIZE}`,
    );
  }
  if (hashing?.hashBalanceFactor !== undefined) {
    problems.push(`${hashingPath}.hash_balance_factor: bounded load hashing is not supported`);
  }
  if (extra.commonLbConfig?.overrideHostStatus !== undefined) {
    problems.push('common_lb_config.override_host_status: not supported');
  }

  let slowStart: SlowStartSettings | undefined;
  if (slowStartConfig && (policy === 'ROUND_ROBIN' || policy === 'LEAST_REQUEST')) {
    const windowMs = parseDurationMs(slowStartConfig.slowStartWindow);
    if (windowMs === undefined) {
      problems.push(`${slowStartPath}.slow_start_window: invalid duration`);
    } else if (windowMs > 0) {
      const aggression = slowStartConfig.aggression?.defaultValue ?? 1;
      if (!(aggression > 0)) problems.push(`${slowStartPath}.aggression: must be greater than 0`);
      slowStart = {
        windowMs,
        aggression: aggression > 0 ? aggression : 1,
        minWeightFraction: (slowStartConfig.minWeightPercent?.value ?? 10) / 100,
      };
    }
  }

  return {
    settings: {
      policy,
      panicThreshold: Math.min(100, Math.max(0, panicThreshold)),
      localityWeighted,
      failTrafficOnPanic,
      choiceCount,
      activeRequestBias,
      slowStart,
      minimumRingSize,
      maximumRingSize,
      maglevTableSize,
      useHostnameForHashing: hashing?.useHostnameForHashing === true,
    },
    problems,
  };
}

const POLICY_NAMES: Record<string, LbPolicyName | undefined> = {
  'round_robin.v3.RoundRobin': 'ROUND_ROBIN',
  'least_request.v3.LeastRequest': 'LEAST_REQUEST',
  'random.v3.Random': 'RANDOM',
  'ring_hash.v3.RingHash': 'RING_HASH',
  'maglev.v3.Maglev': 'MAGLEV',
};

function toInt(v: string | number | undefined, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? Math.trunc(n) : dflt;
}

/** A proto3-JSON Duration (`"1.5s"`) in ms, or undefined when malformed. */
export function parseDurationMs(d: string | undefined): number | undefined {
  if (d === undefined) return 0;
  const m = /^(-?\d+(?:\.\d{1,9})?)s$/.exec(d);
  if (!m) return undefined;
  return Number(m[1]) * 1000;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let i = 3; i * i <= n; i += 2) if (n % i === 0) return false;
  return true;
}
