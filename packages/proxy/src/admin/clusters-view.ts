// The admin `/clusters` page: Envoy's per-cluster and per-host status lines
// (`cluster::host:port::health_flags::healthy`) and its JSON form (envoy.admin.v3.Clusters).
// The cluster manager provides the live view; without one, the view is derived from the
// configuration alone (EDS health, weights, circuit breakers).
import type { Cluster, CircuitBreakerThresholds, LbEndpoint } from '@trellis/envoy';
import type { ProxyConfig } from '../xds/config.js';

/** Envoy's host health flags, in the order `/clusters` prints them. */
export const HEALTH_FLAGS = [
  'failed_active_hc',
  'failed_outlier_check',
  'failed_eds_health',
  'degraded_active_hc',
  'degraded_eds_health',
  'pending_dynamic_removal',
  'pending_active_hc',
  'excluded_via_immediate_hc_fail',
  'active_hc_timeout',
  'eds_status_draining',
] as const;

export type HealthFlag = (typeof HEALTH_FLAGS)[number];

/** Circuit breaker limits of one priority. */
export interface CircuitBreakerView {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

/** One upstream host as `/clusters` shows it. */
export interface HostStatusView {
  readonly address: string;
  readonly port: number;
  readonly hostname?: string;
  /** Empty when the host is healthy. */
  readonly healthFlags: readonly HealthFlag[];
  readonly weight: number;
  readonly priority: number;
  readonly locality?: {
    readonly region?: string;
    readonly zone?: string;
    readonly subZone?: string;
  };
  /** Host counters and gauges: cx_active, cx_connect_fail, cx_total, rq_active, rq_error, rq_success, rq_timeout, rq_total. */
  readonly stats?: Readonly<Record<string, number>>;
  /** Outlier detection success rates (-1 when not computed). */
  readonly successRate?: number;
  readonly localOriginSuccessRate?: number;
}

/** One cluster as `/clusters` shows it. */
export interface ClusterStatusView {
  readonly name: string;
  /** alt_stat_name when set. */
  readonly observabilityName?: string;
  readonly addedViaApi: boolean;
  readonly circuitBreakers: {
    readonly default: CircuitBreakerView;
    readonly high: CircuitBreakerView;
  };
  readonly hosts: readonly HostStatusView[];
}

/** Envoy's defaults when a cluster sets no thresholds. */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakerView = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
});

const HOST_STATS = [
  'cx_active',
  'cx_connect_fail',
  'cx_total',
  'rq_active',
  'rq_error',
  'rq_success',
  'rq_timeout',
  'rq_total',
] as const;
const HOST_GAUGES = new Set(['cx_active', 'rq_active']);

function thresholdsView(t: CircuitBreakerThresholds | undefined): CircuitBreakerView {
  return {
    maxConnections: t?.maxConnections ?? DEFAULT_CIRCUIT_BREAKERS.maxConnections,
    maxPendingRequests: t?.maxPendingRequests ?? DEFAULT_CIRCUIT_BREAKERS.maxPendingRequests,
    maxRequests: t?.maxRequests ?? DEFAULT_CIRCUIT_BREAKERS.maxRequests,
    maxRetries: t?.maxRetries ?? DEFAULT_CIRCUIT_BREAKERS.maxRetries,
  };
}

/** The circuit breaker limits of a cluster config, by priority. */
export function circuitBreakersOf(c: Cluster): ClusterStatusView['circuitBreakers'] {
  const ts = c.circuitBreakers?.thresholds ?? [];
  return {
    default: thresholdsView(ts.find((t) => (t.priority ?? 'DEFAULT') === 'DEFAULT')),
    high: thresholdsView(ts.find((t) => t.priority === 'HIGH')),
  };
}

function edsFlags(e: LbEndpoint): HealthFlag[] {
  switch (e.healthStatus) {
    case 'UNHEALTHY':
    case 'TIMEOUT':
      return ['failed_eds_health'];
    case 'DRAINING':
      return ['failed_eds_health', 'eds_status_draining'];
    case 'DEGRADED':
      return ['degraded_eds_health'];
    default:
      return [];
  }
}

/** The `/clusters` view from configuration only (no live counters or outlier state). */
export function clusterStatusFromConfig(config: ProxyConfig): ClusterStatusView[] {
  const out: ClusterStatusView[] = [];
  for (const [name, c] of [...config.clusters].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const hosts: HostStatusView[] = [];
    const cla = config.endpoints.get(name) ?? c.loadAssignment;
    for (const loc of cla?.endpoints ?? []) {
      for (const e of loc.lbEndpoints ?? []) {
        const sa = e.endpoint?.address?.socketAddress;
        const pipe = e.endpoint?.address?.pipe;
        const locality = {
          ...(loc.locality?.region !== undefined ? { region: loc.locality.region } : {}),
          ...(loc.locality?.zone !== undefined ? { zone: loc.locality.zone } : {}),
          ...(loc.locality?.subZone !== undefined ? { subZone: loc.locality.subZone } : {}),
        };
        hosts.push({
          address: sa?.address ?? pipe?.path ?? '',
          port: sa?.portValue ?? 0,
          ...(e.endpoint?.hostname !== undefined ? { hostname: e.endpoint.hostname } : {}),
          healthFlags: edsFlags(e),
          weight: e.loadBalancingWeight ?? 1,
          priority: loc.priority ?? 0,
          locality,
        });
      }
    }
    out.push({
      name,
      ...(c.altStatName !== undefined && c.altStatName !== ''
        ? { observabilityName: c.altStatName }
        : {}),
      addedViaApi: true,
      circuitBreakers: circuitBreakersOf(c),
      hosts,
    });
  }
  return out;
}

/** `healthy`, or the flags as Envoy joins them (`/failed_outlier_check/failed_eds_health`). */
export function healthFlagsToString(flags: readonly HealthFlag[]): string {
  if (flags.length === 0) return 'healthy';
  return HEALTH_FLAGS.filter((f) => flags.includes(f))
    .map((f) => `/${f}`)
    .join('');
}

function hostAddress(h: HostStatusView): string {
  if (h.port === 0 && h.address.startsWith('/')) return h.address;
  return h.address.includes(':') ? `[${h.address}]:${h.port}` : `${h.address}:${h.port}`;
}

function rate(v: number | undefined): string {
  return String(v ?? -1);
}

/** Envoy's text `/clusters`. */
export function renderClustersText(clusters: Iterable<ClusterStatusView>): string {
  let out = '';
  for (const c of clusters) {
    const n = c.name;
    out += `${n}::observability_name::${c.observabilityName ?? n}\n`;
    for (const [prio, t] of [
      ['default', c.circuitBreakers.default],
      ['high', c.circuitBreakers.high],
    ] as const) {
      out += `${n}::${prio}_priority::max_connections::${t.maxConnections}\n`;
      out += `${n}::${prio}_priority::max_pending_requests::${t.maxPendingRequests}\n`;
      out += `${n}::${prio}_priority::max_requests::${t.maxRequests}\n`;
      out += `${n}::${prio}_priority::max_retries::${t.maxRetries}\n`;
    }
    out += `${n}::added_via_api::${c.addedViaApi}\n`;
    for (const h of c.hosts) {
      const a = hostAddress(h);
      const stats = { ...Object.fromEntries(HOST_STATS.map((s) => [s, 0])), ...h.stats };
      for (const s of Object.keys(stats).sort()) out += `${n}::${a}::${s}::${stats[s]}\n`;
      out += `${n}::${a}::hostname::${h.hostname ?? ''}\n`;
      out += `${n}::${a}::health_flags::${healthFlagsToString(h.healthFlags)}\n`;
      out += `${n}::${a}::weight::${h.weight}\n`;
      out += `${n}::${a}::region::${h.locality?.region ?? ''}\n`;
      out += `${n}::${a}::zone::${h.locality?.zone ?? ''}\n`;
      out += `${n}::${a}::sub_zone::${h.locality?.subZone ?? ''}\n`;
      out += `${n}::${a}::canary::false\n`;
      out += `${n}::${a}::priority::${h.priority}\n`;
      out += `${n}::${a}::success_rate::${rate(h.successRate)}\n`;
      out += `${n}::${a}::local_origin_success_rate::${rate(h.localOriginSuccessRate)}\n`;
    }
  }
  return out;
}

function thresholdsJson(t: CircuitBreakerView, high: boolean): Record<string, unknown> {
  return {
    ...(high ? { priority: 'HIGH' } : {}),
    max_connections: t.maxConnections,
    max_pending_requests: t.maxPendingRequests,
    max_requests: t.maxRequests,
    max_retries: t.maxRetries,
  };
}

/** Envoy's `/clusters?format=json` (envoy.admin.v3.Clusters in proto JSON, snake_case names). */
export function renderClustersJson(clusters: Iterable<ClusterStatusView>): string {
  const statuses = [...clusters].map((c) => ({
    name: c.name,
    ...(c.observabilityName !== undefined ? { observability_name: c.observabilityName } : {}),
    added_via_api: c.addedViaApi,
    circuit_breakers: {
      thresholds: [
        thresholdsJson(c.circuitBreakers.default, false),
        thresholdsJson(c.circuitBreakers.high, true),
      ],
    },
    host_statuses: c.hosts.map((h) => {
      const stats = { ...Object.fromEntries(HOST_STATS.map((s) => [s, 0])), ...h.stats };
      const flags = new Set(h.healthFlags);
      const eds = flags.has('failed_eds_health')
        ? flags.has('eds_status_draining')
          ? 'DRAINING'
          : 'UNHEALTHY'
        : flags.has('degraded_eds_health')
          ? 'DEGRADED'
          : 'HEALTHY';
      const health: Record<string, unknown> = { eds_health_status: eds };
      if (flags.has('failed_active_hc')) health.failed_active_health_check = true;
      if (flags.has('failed_outlier_check')) health.failed_outlier_check = true;
      if (flags.has('degraded_active_hc')) health.failed_active_degraded_check = true;
      if (flags.has('pending_dynamic_removal')) health.pending_dynamic_removal = true;
      if (flags.has('pending_active_hc')) health.pending_active_hc = true;
      if (flags.has('excluded_via_immediate_hc_fail')) health.excluded_via_immediate_hc_fail = true;
      if (flags.has('active_hc_timeout')) health.active_hc_timeout = true;
      const address =
        h.port === 0 && h.address.startsWith('/')
          ? { pipe: { path: h.address } }
          : { socket_address: { address: h.address, port_value: h.port } };
      const locality: Record<string, string> = {};
      if (h.locality?.region) locality.region = h.locality.region;
      if (h.locality?.zone) locality.zone = h.locality.zone;
      if (h.locality?.subZone) locality.sub_zone = h.locality.subZone;
      return {
        address,
        stats: Object.keys(stats)
          .sort()
          .map((name) => {
            const v = stats[name] ?? 0;
            return {
              name,
              ...(v !== 0 ? { value: String(v) } : {}),
              ...(HOST_GAUGES.has(name) ? { type: 'GAUGE' } : {}),
            };
          }),
        health_status: health,
        ...(h.successRate !== undefined && h.successRate >= 0
          ? { success_rate: { value: h.successRate } }
          : {}),
        weight: h.weight,
        ...(h.hostname ? { hostname: h.hostname } : {}),
        ...(h.priority !== 0 ? { priority: h.priority } : {}),
        ...(h.localOriginSuccessRate !== undefined && h.localOriginSuccessRate >= 0
          ? { local_origin_success_rate: { value: h.localOriginSuccessRate } }
          : {}),
        locality,
      };
    }),
  }));
  return JSON.stringify({ cluster_statuses: statuses }, null, 1);
}
