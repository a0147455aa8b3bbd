// DestinationRule (networking.istio.io): policies for traffic to a service after routing:
// load balancing, connection pools, outlier detection, client TLS, and named subsets.
// Semantics: https://istio.io/latest/docs/reference/config/networking/destination-rule/
// The rules follow Istio's webhook (pilot/pkg/config/validation/validation.go).
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import { duration, isIpAddress } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import {
  bool,
  enumOf,
  int,
  int64,
  list,
  map,
  num,
  obj,
  req,
  str,
  uint32,
  type ObjectOf,
} from '../../validation/schema.js';
import {
  checkExportTo,
  checkIstioDnsLabel,
  checkPortNumber,
  checkWildcardDomain,
  fqdnProblem,
  istioTypeWorkloadSelector,
  labels,
  objectNamespace,
  portSelector,
  specOf,
} from '../common.js';

/** An int32 count that must not be negative. */
function nonNegative() {
  return int({ check: (n, ctx) => n < 0 && ctx.error(`must not be negative, not ${n}`) });
}

/** A percentage given as an int32: 0..100. */
function intPercent() {
  return int({ min: 0, max: 100 });
}

// ---------- connection pool ----------

const tcpKeepaliveFields = { probes: uint32(), time: duration(), interval: duration() };
/** istio.networking.v1.ConnectionPoolSettings.TCPSettings.TcpKeepalive */
export type TcpKeepalive = ObjectOf<typeof tcpKeepaliveFields>;
export const tcpKeepalive = obj(tcpKeepaliveFields);

const tcpSettingsFields = {
  maxConnections: nonNegative(),
  connectTimeout: duration(),
  tcpKeepalive,
  maxConnectionDuration: duration(),
  idleTimeout: duration(),
};
/** istio.networking.v1.ConnectionPoolSettings.TCPSettings */
export type TCPSettings = ObjectOf<typeof tcpSettingsFields>;
export const tcpSettings = obj(tcpSettingsFields);

const httpSettingsFields = {
  http1MaxPendingRequests: nonNegative(),
  http2MaxRequests: nonNegative(),
  maxRequestsPerConnection: nonNegative(),
  maxRetries: nonNegative(),
  idleTimeout: duration(),
  h2UpgradePolicy: enumOf(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'] as const),
  useClientProtocol: bool(),
  maxConcurrentStreams: nonNegative(),
};
/** istio.networking.v1.ConnectionPoolSettings.HTTPSettings */
export type HTTPSettings = ObjectOf<typeof httpSettingsFields>;
export const httpSettings = obj(httpSettingsFields, {
  check: (h, ctx) => {
    if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol)
      ctx.field('useClientProtocol').error('must not be true when h2UpgradePolicy is UPGRADE');
  },
});

const connectionPoolFields = { tcp: tcpSettings, http: httpSettings };
/** istio.networking.v1.ConnectionPoolSettings: limits on connections and requests to a host. */
export type ConnectionPoolSettings = ObjectOf<typeof connectionPoolFields>;
export const connectionPoolSettings = obj(connectionPoolFields, {
  check: (p, ctx) => {
    if (!p.tcp && !p.http) ctx.error('must set tcp, http or both');
  },
});

// ---------- load balancer ----------

const cookieAttributeFields = { name: req(str()), value: str() };
/** istio.networking.v1.LoadBalancerSettings.ConsistentHashLB.HTTPCookie.Attribute */
export type HTTPCookieAttribute = ObjectOf<typeof cookieAttributeFields>;

const httpCookieFields = {
  name: req(str({ nonEmpty: true })),
  path: str(),
  ttl: duration({ minMs: 0 }),
  attributes: list(obj(cookieAttributeFields)),
};
/** istio.networking.v1.LoadBalancerSettings.ConsistentHashLB.HTTPCookie */
export type HTTPCookie = ObjectOf<typeof httpCookieFields>;
export const httpCookie = obj(httpCookieFields);

/** Envoy's bound on a ring's size (RingHash.minimum_ring_size / maximum_ring_size). */
const MAX_RING_SIZE = 8_388_608;
const ringHashFields = { minimumRingSize: int64({ min: 0, max: MAX_RING_SIZE }) };
/** istio.networking.v1.LoadBalancerSettings.ConsistentHashLB.RingHash */
export type RingHash = ObjectOf<typeof ringHashFields>;

/** Envoy's primality test for Maglev table sizes. */
export function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  const limit = Math.floor(Math.sqrt(x));
  for (let f = 3; f <= limit; f += 2) if (x % f === 0) return false;
  return true;
}

const MAGLEV_MAX_TABLE_SIZE = 5000011;

const maglevFields = { tableSize: int64({ min: 0 }) };
/** istio.networking.v1.LoadBalancerSettings.ConsistentHashLB.MagLev */
export type MagLev = ObjectOf<typeof maglevFields>;
export const maglev = obj(maglevFields, {
  check: (m, ctx) => {
    const size = m.tableSize ?? 0;
    const c = ctx.field('tableSize');
    if (size === 0) return c.error('is required for maglev (a prime number, such as 65537)');
    if (size >= MAGLEV_MAX_TABLE_SIZE)
      c.error(`must be less than ${MAGLEV_MAX_TABLE_SIZE}, not ${size}`);
    if (!isPrime(size)) c.error(`must be a prime number, not ${size}`);
  },
});

const consistentHashFields = {
  httpHeaderName: str(),
  httpCookie,
  useSourceIp: bool(),
  httpQueryParameterName: str(),
  ringHash: obj(ringHashFields),
  maglev,
  /** Deprecated: use ringHash.minimumRingSize. */
  minimumRingSize: int64({ min: 0, max: MAX_RING_SIZE }),
};
/** istio.networking.v1.LoadBalancerSettings.ConsistentHashLB: session affinity by a request key. */
export type ConsistentHashLB = ObjectOf<typeof consistentHashFields>;
export const consistentHashLB = obj(consistentHashFields, {
  oneOf: [
    { fields: ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] },
    { fields: ['ringHash', 'maglev'] },
  ],
  check: (h, ctx) => {
    if (h.minimumRingSize == null || h.minimumRingSize === 0) return;
    const c = ctx.field('minimumRingSize');
    c.warn('is deprecated; use ringHash.minimumRingSize');
    if (h.ringHash || h.maglev) c.error('must not be set together with ringHash or maglev');
  },
});

/** Topology labels that `failover` already uses, so failoverPriority must not repeat them. */
const TOPOLOGY_LABELS = [
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
  'topology.istio.io/subzone',
];

const distributeFields = { from: str(), to: map(uint32()) };
/** istio.networking.v1.LocalityLoadBalancerSetting.Distribute */
export type LocalityDistribute = ObjectOf<typeof distributeFields>;
const failoverFields = { from: str(), to: str() };
/** istio.networking.v1.LocalityLoadBalancerSetting.Failover */
export type LocalityFailover = ObjectOf<typeof failoverFields>;

const localityLbFields = {
  distribute: list(obj(distributeFields)),
  failover: list(obj(failoverFields)),
  failoverPriority: list(str()),
  enabled: bool(),
};
/** istio.networking.v1.LocalityLoadBalancerSetting: locality-weighted or failover balancing. */
export type LocalityLoadBalancerSetting = ObjectOf<typeof localityLbFields>;
export const localityLoadBalancerSetting = obj(localityLbFields, { check: checkLocalityLb });

/** A locality `region/zone/subzone`: no empty parts, at most one `*`, and only at the end. */
function localityProblem(locality: string): string | undefined {
  const stars = locality.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !locality.endsWith('*')))
    return `locality ${JSON.stringify(locality)}: a wildcard "*" may appear once, at the end`;
  const parts = locality.split('/');
  if (parts.length > 3 || parts.some((p) => p === ''))
    return `locality ${JSON.stringify(locality)} must be "region", "region/zone" or "region/zone/subzone" without empty parts`;
  return undefined;
}

/** Whether locality `b` is already covered by `a` (same or broader, `*` matching all below). */
function localitiesOverlap(a: string, b: string): boolean {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === '*' || pb[i] === '*') return true;
    if (pa[i] !== pb[i]) return false;
  }
  return true;
}

function checkLocalities(
  localities: readonly string[],
  ctx: (i: number) => ValidationContext,
): void {
  localities.forEach((l, i) => {
    const p = localityProblem(l);
    if (p) return ctx(i).error(p);
    const earlier = localities.findIndex(
      (o, j) => j < i && localityProblem(o) === undefined && localitiesOverlap(o, l),
    );
    if (earlier >= 0)
      ctx(i).error(`locality ${JSON.stringify(l)} overlaps ${JSON.stringify(localities[earlier])}`);
  });
}

function checkLocalityLb(lb: LocalityLoadBalancerSetting, ctx: ValidationContext): void {
  const distribute = lb.distribute ?? [];
  const failover = lb.failover ?? [];
  if (distribute.length > 0 && failover.length > 0)
    return ctx.error('only one of "distribute", "failover" may be set');
  if (failover.length > 0) {
    lb.failoverPriority?.forEach((label, i) => {
      if (TOPOLOGY_LABELS.includes(label))
        ctx
          .at('failoverPriority', i)
          .error(`must not be the topology label ${JSON.stringify(label)} when failover is set`);
    });
  }
  distribute.forEach((d, i) => {
    const c = ctx.at('distribute', i);
    let total = 0;
    for (const [loc, w] of Object.entries(d.to ?? {})) {
      if (w < 1 || w > 100) c.at('to', loc).error(`must be between 1 and 100, not ${w}`);
      total += w;
    }
    if (total !== 100) c.field('to').error(`weights must add up to 100, not ${total}`);
    const keys = Object.keys(d.to ?? {});
    checkLocalities(keys, (j) => c.at('to', keys[j]!));
  });
  checkLocalities(
    distribute.map((d) => d.from ?? ''),
    (i) => ctx.at('distribute', i, 'from'),
  );
  failover.forEach((f, i) => {
    const c = ctx.at('failover', i);
    if ((f.from ?? '') === (f.to ?? '')) c.error('from and to must be different regions');
    if ((f.from ?? '').includes('/') || (f.to ?? '').includes('/'))
      c.error('from and to must be regions, without "/"');
    if ((f.from ?? '').includes('*') || (f.to ?? '').includes('*'))
      c.error('from and to must not contain the wildcard "*"');
  });
}

const warmupFields = {
  duration: req(duration()),
  minimumPercent: num({ min: 0, max: 100 }),
  // Envoy's slow start needs a positive aggression (1 is linear).
  aggression: num({
    check: (v, ctx) => {
      if (!(v > 0)) ctx.error(`must be greater than 0, not ${v}`);
    },
  }),
};
/** istio.networking.v1.WarmupConfiguration: ramp traffic up to new endpoints. */
export type WarmupConfiguration = ObjectOf<typeof warmupFields>;

const loadBalancerFields = {
  simple: enumOf([
    'UNSPECIFIED',
    'LEAST_CONN',
    'RANDOM',
    'PASSTHROUGH',
    'ROUND_ROBIN',
    'LEAST_REQUEST',
  ] as const),
  consistentHash: consistentHashLB,
  localityLbSetting: localityLoadBalancerSetting,
  /** Deprecated: use warmup. */
  warmupDurationSecs: duration(),
  warmup: obj(warmupFields),
};
/** istio.networking.v1.LoadBalancerSettings: the balancing algorithm for a destination. */
export type LoadBalancerSettings = ObjectOf<typeof loadBalancerFields>;
export const loadBalancerSettings = obj(loadBalancerFields, {
  oneOf: [{ fields: ['simple', 'consistentHash'] }],
});

// ---------- outlier detection ----------

const outlierDetectionFields = {
  splitExternalLocalOriginErrors: bool(),
  consecutiveLocalOriginFailures: uint32(),
  consecutiveGatewayErrors: uint32(),
  consecutive5xxErrors: uint32(),
  /** Deprecated: use consecutive5xxErrors or consecutiveGatewayErrors. */
  consecutiveErrors: int(),
  interval: duration(),
  baseEjectionTime: duration(),
  maxEjectionPercent: intPercent(),
  minHealthPercent: intPercent(),
};
/** istio.networking.v1.OutlierDetection: eject hosts that keep failing. */
export type OutlierDetection = ObjectOf<typeof outlierDetectionFields>;
export const outlierDetection = obj(outlierDetectionFields, {
  check: (o, ctx) => {
    if (o.consecutiveErrors != null && o.consecutiveErrors !== 0)
      ctx
        .field('consecutiveErrors')
        .warn('is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors');
    if (!o.splitExternalLocalOriginErrors && (o.consecutiveLocalOriginFailures ?? 0) > 0)
      ctx
        .field('consecutiveLocalOriginFailures')
        .error('takes effect only with splitExternalLocalOriginErrors: true');
  },
});

// ---------- client TLS ----------

export const CLIENT_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

const clientTlsFields = {
  mode: enumOf(CLIENT_TLS_MODES),
  clientCertificate: str(),
  privateKey: str(),
  caCertificates: str(),
  credentialName: str(),
  subjectAltNames: list(str()),
  sni: str(),
  insecureSkipVerify: bool(),
  caCrl: str(),
};
/** istio.networking.v1.ClientTLSSettings: TLS the proxy originates to the upstream. */
export type ClientTLSSettings = ObjectOf<typeof clientTlsFields>;
export const clientTlsSettings = obj(clientTlsFields, { check: checkClientTls });

function checkClientTls(tls: ClientTLSSettings, ctx: ValidationContext): void {
  const mode = tls.mode ?? 'DISABLE';
  if (tls.insecureSkipVerify) {
    const conflicting =
      mode === 'SIMPLE'
        ? (['caCertificates', 'credentialName', 'subjectAltNames'] as const)
        : mode === 'MUTUAL'
          ? (['caCertificates', 'subjectAltNames'] as const)
          : [];
    for (const f of conflicting)
      if (tls[f] != null && tls[f] !== '')
        ctx.field(f).error('must not be set when insecureSkipVerify is true');
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && tls.credentialName) {
    for (const f of ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'] as const)
      if (tls[f]) ctx.field(f).error('must not be set when credentialName is set');
    return;
  }
  if (mode === 'MUTUAL') {
    for (const f of ['clientCertificate', 'privateKey'] as const)
      if (!tls[f])
        ctx.field(f).error('is required when mode is MUTUAL and no credentialName is set');
  }
}

// ---------- tunnel, PROXY protocol, retry budget ----------

const tunnelFields = {
  protocol: str({
    check: (p, ctx) =>
      p !== '' &&
      p !== 'CONNECT' &&
      p !== 'POST' &&
      ctx.error(`must be "CONNECT" or "POST", not ${JSON.stringify(p)}`),
  }),
  targetHost: req(
    str({
      check: (h, ctx) => {
        if (!isIpAddress(h) && fqdnProblem(h) !== undefined)
          ctx.error(
            `must be a fully qualified domain name or an IP address, not ${JSON.stringify(h)}`,
          );
      },
    }),
  ),
  targetPort: req(uint32({ check: checkPortNumber })),
};
/** istio.networking.v1.TrafficPolicy.TunnelSettings: tunnel TCP over HTTP CONNECT or POST. */
export type TunnelSettings = ObjectOf<typeof tunnelFields>;
export const tunnelSettings = obj(tunnelFields);

const proxyProtocolFields = { version: enumOf(['V1', 'V2'] as const) };
/** istio.networking.v1.TrafficPolicy.ProxyProtocol: send a PROXY protocol header upstream. */
export type ProxyProtocol = ObjectOf<typeof proxyProtocolFields>;

const retryBudgetFields = {
  percent: num({ min: 0, max: 100 }),
  minRetryConcurrency: uint32(),
};
/** istio.networking.v1.TrafficPolicy.RetryBudget: cap concurrent retries. */
export type RetryBudget = ObjectOf<typeof retryBudgetFields>;

// ---------- traffic policy ----------

/** Warns, as Istio does, when locality failover has no outlier detection to trigger it. */
function checkFailoverNeedsOutlier(
  p: { readonly loadBalancer?: LoadBalancerSettings; readonly outlierDetection?: OutlierDetection },
  ctx: ValidationContext,
): void {
  const lb = p.loadBalancer?.localityLbSetting;
  if (!lb || p.outlierDetection) return;
  if ((lb.failover?.length ?? 0) > 0 || (lb.failoverPriority?.length ?? 0) > 0)
    ctx
      .at('loadBalancer', 'localityLbSetting')
      .warn('locality failover takes effect only with outlierDetection set');
}

const portTrafficPolicyFields = {
  port: portSelector,
  loadBalancer: loadBalancerSettings,
  connectionPool: connectionPoolSettings,
  outlierDetection,
  tls: clientTlsSettings,
};
/** istio.networking.v1.TrafficPolicy.PortTrafficPolicy: a policy for one port of the service. */
export type PortTrafficPolicy = ObjectOf<typeof portTrafficPolicyFields>;
export const portTrafficPolicy = obj(portTrafficPolicyFields, {
  check: (p, ctx) => {
    if (!p.port) ctx.field('port').error('is required');
    if (!p.loadBalancer && !p.connectionPool && !p.outlierDetection && !p.tls)
      ctx.error('must set at least one of loadBalancer, connectionPool, outlierDetection or tls');
    checkFailoverNeedsOutlier(p, ctx);
  },
});

const trafficPolicyFields = {
  loadBalancer: loadBalancerSettings,
  connectionPool: connectionPoolSettings,
  outlierDetection,
  tls: clientTlsSettings,
  portLevelSettings: list(portTrafficPolicy, { maxItems: 4096 }),
  tunnel: tunnelSettings,
  proxyProtocol: obj(proxyProtocolFields),
  retryBudget: obj(retryBudgetFields),
};
/** istio.networking.v1.TrafficPolicy: the policies applied to a destination or subset. */
export type TrafficPolicy = ObjectOf<typeof trafficPolicyFields>;
export const trafficPolicy = obj(trafficPolicyFields, { check: checkTrafficPolicy });

function checkTrafficPolicy(p: TrafficPolicy, ctx: ValidationContext): void {
  if (Object.values(p).every((v) => v == null)) return ctx.error('must set at least one policy');
  if (p.tunnel && p.proxyProtocol) ctx.error('only one of "tunnel", "proxyProtocol" may be set');
  checkFailoverNeedsOutlier(p, ctx);
}

// ---------- subsets and the rule ----------

const subsetFields = {
  name: req(str({ check: (n, ctx) => checkIstioDnsLabel(n, ctx, 'subset name') })),
  labels,
  trafficPolicy,
};
/** istio.networking.v1.Subset: a named set of endpoints (by labels) with its own policy. */
export type Subset = ObjectOf<typeof subsetFields>;
export const subset = obj(subsetFields);

const destinationRuleFields = {
  host: req(str({ check: (h, ctx) => checkWildcardDomain(h, ctx) })),
  trafficPolicy,
  subsets: list(subset, { check: checkUniqueSubsets }),
  exportTo: list(str()),
  workloadSelector: istioTypeWorkloadSelector,
};
/** istio.networking.v1.DestinationRule: the spec of a DestinationRule. */
export type DestinationRuleSpec = ObjectOf<typeof destinationRuleFields>;
export const destinationRuleSpec = obj(destinationRuleFields);

function checkUniqueSubsets(subsets: readonly Subset[], ctx: ValidationContext): void {
  const seen = new Map<string, number>();
  subsets.forEach((s, i) => {
    if (s.name == null) return; // reported as required
    const first = seen.get(s.name);
    if (first !== undefined)
      ctx
        .at(i, 'name')
        .error(`subset name ${JSON.stringify(s.name)} is already used by subsets[${first}]`);
    else seen.set(s.name, i);
  });
}

export const DESTINATION_RULE = istioKind({
  group: 'networking.istio.io',
  kind: 'DestinationRule',
  versions: NETWORKING_VERSIONS,
  plural: 'destinationrules',
  shortNames: ['dr'],
  spec: destinationRuleSpec,
  check: (object, ctx) => {
    const spec = specOf<DestinationRuleSpec>(object);
    if (spec?.exportTo)
      checkExportTo(spec.exportTo, objectNamespace(object), ctx.at('spec', 'exportTo'), {
        localOnly: spec.workloadSelector != null,
      });
  },
});
