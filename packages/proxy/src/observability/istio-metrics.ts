// Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes, istio_response_bytes, istio_tcp_*) with their full label sets, recorded
// from a finished StreamInfo, the local workload and the peer, with the values and fallbacks of
// Istio's stats filter (istio/proxy source/extensions/filters/http/istio_stats): `unknown` when
// a peer value is missing, `latest` for a missing canonical revision, reporter `source` on
// outbound listeners and `destination` on inbound ones.
import type { Counter, Gauge, Histogram } from './stats-api.js';
import { seriesKey, type StatsStore, type TaggedFamily } from './stats-store.js';
import { formatResponseFlags } from '../stream-info.js';
import {
  DOWNSTREAM_PEER_KEY,
  UPSTREAM_PEER_KEY,
  endpointWorkload,
  type WorkloadMetadata,
} from './peer-metadata.js';
import type { LogContext } from './log-context.js';
import { httpToGrpcStatus } from '../grpc-status.js';

/** Istio's custom stat namespace: its metrics are exported without `envoy_`. */
export const ISTIO_STAT_NAMESPACE = 'istiocustom';

/** Labels of the HTTP metrics, in the order Istio's stats filter emits them. */
export const HTTP_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

/** Labels of the TCP metrics (no response code or gRPC status). */
export const TCP_LABELS = HTTP_LABELS.filter(
  (l) => l !== 'response_code' && l !== 'grpc_response_status',
);

export type IstioLabel = (typeof HTTP_LABELS)[number];
export type IstioLabels = Readonly<Record<IstioLabel, string>>;

/** Cluster names for which `destination_service_name` is the cluster name itself. */
const SPECIAL_CLUSTERS = new Set([
  'BlackHoleCluster',
  'PassthroughCluster',
  'InboundPassthroughCluster',
  'InboundPassthroughClusterIpv4',
  'InboundPassthroughClusterIpv6',
]);

/**
 * What the metrics need beyond the StreamInfo: header getters (LogContext) and what the HTTP
 * and TCP layers know about the peer. Each field is optional; missing values become `unknown`.
 */
export interface MetricsContext extends LogContext {
  /** Downstream (inbound) or upstream (outbound) peer from metadata exchange; default: read from info.metadata. */
  readonly peer?: WorkloadMetadata;
  /** The chosen upstream host's filter metadata (LbHost.metadata): `istio.workload` fallback for outbound. */
  readonly upstreamHostMetadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The upstream cluster's filter metadata (Cluster.metadata.filterMetadata): `istio.services`. */
  readonly upstreamClusterMetadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** URI SAN of the peer's certificate (downstream for inbound, upstream for outbound). */
  readonly peerPrincipal?: string;
  /** URI SAN of our certificate on that connection. */
  readonly localPrincipal?: string;
}

export interface IstioMetricsOptions {
  /** Istio's `disable_host_header_fallback`: do not use the Host header as destination_service. */
  readonly disableHostHeaderFallback?: boolean;
  /** Publishes `istio_build{component="proxy",tag=<version>} 1` when set. */
  readonly istioVersion?: string;
  /**
   * A cluster's filter metadata (Cluster.metadata.filterMetadata) by name, used when a context
   * carries no `upstreamClusterMetadata` (TCP connections): `destination_service` then comes from
   * the same `istio.services[0].host` (the FQDN) for TCP as for HTTP.
   */
  readonly clusterMetadata?: (
    cluster: string,
  ) => Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined;
}

type Reporter = 'source' | 'destination';

/** The namespace in a SPIFFE principal (`spiffe://td/ns/<ns>/sa/<sa>`). */
function principalNamespace(principal: string): string | undefined {
  const i = principal.indexOf('/ns/');
  if (i < 0) return undefined;
  const rest = principal.slice(i + 4);
  const j = rest.indexOf('/');
  return j < 0 ? rest : rest.slice(0, j);
}

function isWorkload(v: unknown): v is WorkloadMetadata {
  return typeof v === 'object' && v !== null && 'workloadName' in v && 'canonicalName' in v;
}

/** Whether the request is gRPC (Envoy's Grpc::Common::isGrpcRequestHeaders). */
function isGrpcRequest(ctx: LogContext): boolean {
  const ct = ctx.requestHeader?.('content-type');
  if (ct !== undefined) return ct === 'application/grpc' || ct.startsWith('application/grpc+');
  return ctx.info.grpcStatus !== undefined;
}

/** The gRPC status of a finished gRPC stream: trailers, then headers, then the HTTP status. */
function grpcResponseStatus(ctx: LogContext): string {
  const fromHeader = ctx.responseTrailer?.('grpc-status') ?? ctx.responseHeader?.('grpc-status');
  if (fromHeader !== undefined && /^\d+$/.test(fromHeader)) return fromHeader;
  if (ctx.info.grpcStatus !== undefined) return String(ctx.info.grpcStatus);
  if (ctx.info.responseCode > 0) return String(httpToGrpcStatus(ctx.info.responseCode));
  return '';
}

function orUnknown(v: string | undefined): string {
  return v === undefined || v === '' ? 'unknown' : v;
}

/** Records Istio's standard metrics into a StatsStore. One per proxy. */
export class IstioMetrics {
  readonly requestsTotal: TaggedFamily<Counter>;
  readonly requestDuration: TaggedFamily<Histogram>;
  readonly requestBytes: TaggedFamily<Histogram>;
  readonly responseBytes: TaggedFamily<Histogram>;
  readonly tcpOpened: TaggedFamily<Counter>;
  readonly tcpClosed: TaggedFamily<Counter>;
  readonly tcpSentBytes: TaggedFamily<Counter>;
  readonly tcpReceivedBytes: TaggedFamily<Counter>;
  private readonly hostFallback: boolean;
  private readonly clusterMetadata: IstioMetricsOptions['clusterMetadata'];

  constructor(
    store: StatsStore,
    /** The local workload (from the bootstrap node's metadata). */
    readonly local: WorkloadMetadata,
    options: IstioMetricsOptions = {},
  ) {
    const ns = { namespace: ISTIO_STAT_NAMESPACE };
    this.requestsTotal = store.family<Counter>('istio_requests_total', 'counter', HTTP_LABELS, ns);
    this.requestDuration = store.family<Histogram>(
      'istio_request_duration_milliseconds',
      'histogram',
      HTTP_LABELS,
      { ...ns, unit: 'ms' },
    );
    this.requestBytes = store.family<Histogram>('istio_request_bytes', 'histogram', HTTP_LABELS, {
      ...ns,
      unit: 'bytes',
    });
    this.responseBytes = store.family<Histogram>('istio_response_bytes', 'histogram', HTTP_LABELS, {
      ...ns,
      unit: 'bytes',
    });
    this.tcpOpened = store.family<Counter>(
      'istio_tcp_connections_opened_total',
      'counter',
      TCP_LABELS,
      ns,
    );
    this.tcpClosed = store.family<Counter>(
      'istio_tcp_connections_closed_total',
      'counter',
      TCP_LABELS,
      ns,
    );
    this.tcpSentBytes = store.family<Counter>(
      'istio_tcp_sent_bytes_total',
      'counter',
      TCP_LABELS,
      ns,
    );
    this.tcpReceivedBytes = store.family<Counter>(
      'istio_tcp_received_bytes_total',
      'counter',
      TCP_LABELS,
      ns,
    );
    this.hostFallback = options.disableHostHeaderFallback !== true;
    this.clusterMetadata = options.clusterMetadata;
    if (options.istioVersion !== undefined)
      store
        .family<Gauge>('istio_build', 'gauge', ['component', 'tag'], ns)
        .get(['proxy', options.istioVersion === '' ? 'unknown' : options.istioVersion])
        .set(1);
  }

  /** Records a finished HTTP request (call once, after the response ended or the stream reset). */
  recordHttp(ctx: MetricsContext): void {
    const labels = this.labels(ctx, 'http');
    const values = HTTP_LABELS.map((l) => labels[l]);
    const key = seriesKey(values);
    this.requestsTotal.getKeyed(key, values).inc();
    const d = ctx.info.durationMs;
    if (d !== undefined) this.requestDuration.getKeyed(key, values).record(Math.floor(d));
    this.requestBytes.getKeyed(key, values).record(ctx.info.bytesReceived);
    this.responseBytes.getKeyed(key, values).record(ctx.info.bytesSent);
  }

  /**
   * A TCP connection's reporter: `opened()` once (when the peer is known or at the latest on
   * close), `report()` to add the bytes since the last report (periodically), `closed()` at the
   * end (final bytes and the closed counter). Labels are computed once, when opened.
   */
  tcpConnection(ctx: MetricsContext): TcpMetricsReporter {
    return new TcpMetricsReporter(this, ctx);
  }

  /** The label values Istio would attach, by name (for tests and debugging). */
  labels(ctx: MetricsContext, protocol: 'http' | 'tcp'): IstioLabels {
    const info = ctx.info;
    const reporter: Reporter = info.direction === 'inbound' ? 'destination' : 'source';
    const local = this.local;

    // The peer: metadata exchange, then (client side) the endpoint's istio.workload.
    const stored = info.metadata.get(
      reporter === 'destination' ? DOWNSTREAM_PEER_KEY : UPSTREAM_PEER_KEY,
    );
    let peer: WorkloadMetadata | undefined = ctx.peer ?? (isWorkload(stored) ? stored : undefined);
    if (!peer && reporter === 'source') peer = endpointWorkload(ctx.upstreamHostMetadata);

    // destination_service and destination_service_name.
    let serviceHost = '';
    let serviceHostName = '';
    if (this.hostFallback) {
      const host =
        ctx.requestHeader?.(':authority') ?? ctx.requestHeader?.('host') ?? info.authority ?? '';
      serviceHost = host;
      serviceHostName = host;
    }
    const cluster = info.upstreamCluster;
    if (info.routeName === 'block_all') serviceHostName = 'BlackHoleCluster';
    else if (info.routeName === 'allow_any') serviceHostName = 'PassthroughCluster';
    else if (cluster !== undefined && SPECIAL_CLUSTERS.has(cluster)) serviceHostName = cluster;
    else {
      // The cluster's istio.services: HTTP contexts carry it, TCP ones are looked up by name.
      const clusterMeta =
        ctx.upstreamClusterMetadata ??
        (cluster !== undefined ? this.clusterMetadata?.(cluster) : undefined);
      const services = clusterMeta?.istio?.services;
      const svc = Array.isArray(services) ? (services[0] as unknown) : undefined;
      if (typeof svc === 'object' && svc !== null) {
        const s = svc as Record<string, unknown>;
        if (typeof s.host === 'string') serviceHost = s.host;
        if (typeof s.name === 'string') serviceHostName = s.name;
        else {
          const dot = serviceHost.indexOf('.');
          serviceHostName = dot < 0 ? serviceHost : serviceHost.slice(0, dot);
        }
      }
    }

    // Principals and the connection security policy.
    const peerSan = ctx.peerPrincipal ?? str(info.metadata.get('io.istio.peer_principal')) ?? '';
    const localSan = ctx.localPrincipal ?? str(info.metadata.get('io.istio.local_principal')) ?? '';
    const peerNamespace =
      (peerSan !== '' ? principalNamespace(peerSan) : undefined) || peer?.namespace || '';
    const security =
      reporter === 'destination'
        ? peerSan !== '' && localSan !== ''
          ? 'mutual_tls'
          : 'none'
        : 'unknown';

    const grpc = protocol === 'http' && isGrpcRequest(ctx);
    const common = {
      request_protocol: protocol === 'tcp' ? 'tcp' : grpc ? 'grpc' : 'http',
      response_code: String(info.responseCode),
      grpc_response_status: grpc ? grpcResponseStatus(ctx) : '',
      response_flags: formatResponseFlags(info.responseFlags),
      connection_security_policy: security,
    };

    if (reporter === 'destination') {
      return {
        reporter,
        source_workload: orUnknown(peer?.workloadName),
        source_canonical_service: orUnknown(peer?.canonicalName),
        source_canonical_revision: peer?.canonicalRevision || 'latest',
        source_workload_namespace: orUnknown(peerNamespace),
        source_principal: orUnknown(peerSan),
        source_app: orUnknown(peer?.appName),
        source_version: orUnknown(peer?.appVersion),
        source_cluster: orUnknown(peer?.clusterId),
        destination_workload: local.workloadName,
        destination_workload_namespace: local.namespace,
        destination_principal: orUnknown(localSan),
        destination_app: local.appName,
        destination_version: local.appVersion,
        destination_service: serviceHost === '' ? local.canonicalName : serviceHost,
        destination_canonical_service: local.canonicalName,
        destination_canonical_revision: local.canonicalRevision,
        destination_service_name: serviceHostName === '' ? local.canonicalName : serviceHostName,
        destination_service_namespace: local.namespace,
        destination_cluster: local.clusterId,
        ...common,
      };
    }
    return {
      reporter,
      source_workload: local.workloadName,
      source_canonical_service: local.canonicalName,
      source_canonical_revision: local.canonicalRevision,
      source_workload_namespace: local.namespace,
      source_principal: orUnknown(localSan),
      source_app: local.appName,
      source_version: local.appVersion,
      source_cluster: local.clusterId,
      destination_workload: orUnknown(peer?.workloadName),
      destination_workload_namespace: orUnknown(peerNamespace),
      destination_principal: orUnknown(peerSan),
      destination_app: orUnknown(peer?.appName),
      destination_version: orUnknown(peer?.appVersion),
      destination_service: orUnknown(serviceHost),
      destination_canonical_service: orUnknown(peer?.canonicalName),
      destination_canonical_revision: peer?.canonicalRevision || 'latest',
      destination_service_name: orUnknown(serviceHostName),
      destination_service_namespace: orUnknown(peerNamespace),
      destination_cluster: orUnknown(peer?.clusterId),
      ...common,
    };
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Istio's TCP metrics for one connection (see IstioMetrics.tcpConnection). */
export class TcpMetricsReporter {
  private values: string[] | undefined;
  private sent = 0;
  private received = 0;
  private done = false;
  constructor(
    private readonly metrics: IstioMetrics,
    private readonly ctx: MetricsContext,
  ) {}

  /** Counts the connection as opened (once); labels are fixed from here on. */
  opened(): void {
    if (this.values) return;
    const labels = this.metrics.labels(this.ctx, 'tcp');
    this.values = TCP_LABELS.map((l) => labels[l]);
    this.metrics.tcpOpened.get(this.values).inc();
  }

  /** Adds the bytes sent and received since the last report (series exist from the first report). */
  report(): void {
    this.opened();
    const values = this.values as string[];
    const info = this.ctx.info;
    this.metrics.tcpSentBytes.get(values).inc(Math.max(0, info.bytesSent - this.sent));
    this.sent = Math.max(this.sent, info.bytesSent);
    this.metrics.tcpReceivedBytes.get(values).inc(Math.max(0, info.bytesReceived - this.received));
    this.received = Math.max(this.received, info.bytesReceived);
  }

  /** Final report and the closed counter (idempotent). */
  closed(): void {
    if (this.done) return;
    this.done = true;
    this.report();
    this.metrics.tcpClosed.get(this.values as string[]).inc();
  }
}
