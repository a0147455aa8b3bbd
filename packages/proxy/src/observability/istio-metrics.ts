// Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes, istio_response_bytes, istio_tcp_*) with their full label sets, recorded
// from a finished StreamInfo, the local workload and the peer, with the values and fallbacks of
// Istio's stats filter (istio/proxy source/extensions/filters/http/istio_stats): `unknown` when
// a peer value is missing, `latest` for a missing canonical revision, reporter `source` on
// outbound listeners and `destination` on inbound ones.
import type { Counter, Gauge, Histogram } from './stats-api.js';
import { seriesKey, type StatsStore, type TaggedFamily } from './stats-store.js';
import { formatResponseFlags, type StreamInfo } from '../stream-info.js';
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

/** A MetricsContext without its StreamInfo (e.g. the HTTP layer's view of a finished stream). */
export type MetricsSource = Omit<MetricsContext, 'info'>;

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
function isGrpcRequest(info: StreamInfo, src: MetricsSource): boolean {
  const ct = src.requestHeader?.('content-type');
  if (ct !== undefined) return ct === 'application/grpc' || ct.startsWith('application/grpc+');
  return info.grpcStatus !== undefined;
}

const DIGITS = /^\d+$/;

/** The gRPC status of a finished gRPC stream: trailers, then headers, then the HTTP status. */
function grpcResponseStatus(info: StreamInfo, src: MetricsSource): string {
  const fromHeader = src.responseTrailer?.('grpc-status') ?? src.responseHeader?.('grpc-status');
  if (fromHeader !== undefined && DIGITS.test(fromHeader)) return fromHeader;
  if (info.grpcStatus !== undefined) return String(info.grpcStatus);
  if (info.responseCode > 0) return String(httpToGrpcStatus(info.responseCode));
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
    this.recordHttpStream(ctx.info, ctx);
  }

  /**
   * As `recordHttp`, with the StreamInfo and the rest of the context apart (no context object per
   * request). The four series of a label set are resolved once and cached (see `#series`).
   */
  recordHttpStream(info: StreamInfo, src: MetricsSource): void {
    const x = this.#scratch;
    this.#inputs(info, src, 'http', x);
    const s = this.#series(x);
    s.total.inc();
    const d = info.durationMs;
    if (d !== undefined) s.duration().record(Math.floor(d));
    s.requestBytes.record(info.bytesReceived);
    s.responseBytes.record(info.bytesSent);
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
    const x = new LabelInputs();
    this.#inputs(ctx.info, ctx, protocol, x);
    return this.#labelsOf(x);
  }

  /** Reused for every request (recording is synchronous): no allocation on the common path. */
  readonly #scratch = new LabelInputs();
  /** Cached series by peer object (peers are cached and immutable), then by the other inputs. */
  readonly #byPeer = new WeakMap<WorkloadMetadata, PeerSeries>();
  readonly #noPeer = new PeerSeries();

  /**
   * The HTTP series of these label inputs. The inputs are a complete fingerprint of the labels
   * (with the local workload and the options, fixed per instance): the peer by identity, the
   * rest by value. The last series of a peer is compared field by field (no key string at all
   * when a client repeats the same request); otherwise a short key of the inputs other than the
   * peer finds it in that peer's bounded map.
   */
  #series(x: LabelInputs): HttpSeries {
    const peer = x.peer;
    let cache = peer === undefined ? this.#noPeer : this.#byPeer.get(peer);
    if (cache === undefined) {
      cache = new PeerSeries();
      this.#byPeer.set(peer as WorkloadMetadata, cache);
    }
    const last = cache.last;
    if (last !== undefined && last.inputs.sameAs(x)) return last;
    const key = x.key();
    let s = cache.byKey.get(key);
    if (s === undefined) {
      const labels = this.#labelsOf(x);
      const values = HTTP_LABELS.map((l) => labels[l]);
      s = new HttpSeries(this, x.copy(), values, seriesKey(values));
      if (cache.byKey.size >= MAX_SERIES_PER_PEER) cache.byKey.clear();
      cache.byKey.set(key, s);
    }
    cache.last = s;
    return s;
  }

  /** What the labels depend on, from a finished stream and its context, into `out`. */
  #inputs(info: StreamInfo, src: MetricsSource, protocol: 'http' | 'tcp', out: LabelInputs): void {
    const reporter: Reporter = info.direction === 'inbound' ? 'destination' : 'source';

    // The peer: metadata exchange, then (client side) the endpoint's istio.workload.
    const stored = info.metadataValue(
      reporter === 'destination' ? DOWNSTREAM_PEER_KEY : UPSTREAM_PEER_KEY,
    );
    let peer: WorkloadMetadata | undefined = src.peer ?? (isWorkload(stored) ? stored : undefined);
    if (!peer && reporter === 'source') peer = endpointWorkload(src.upstreamHostMetadata);

    // destination_service and destination_service_name.
    let serviceHost = '';
    let serviceHostName = '';
    if (this.hostFallback) {
      const host =
        src.requestHeader?.(':authority') ?? src.requestHeader?.('host') ?? info.authority ?? '';
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
        src.upstreamClusterMetadata ??
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

    const grpc = protocol === 'http' && isGrpcRequest(info, src);
    out.reporter = reporter;
    out.peer = peer;
    out.serviceHost = serviceHost;
    out.serviceHostName = serviceHostName;
    out.peerSan = src.peerPrincipal ?? str(info.metadataValue(PEER_PRINCIPAL_KEY)) ?? '';
    out.localSan = src.localPrincipal ?? str(info.metadataValue(LOCAL_PRINCIPAL_KEY)) ?? '';
    out.protocol = protocol === 'tcp' ? 'tcp' : grpc ? 'grpc' : 'http';
    out.responseCode = info.responseCode;
    out.grpcStatus = grpc ? grpcResponseStatus(info, src) : '';
    out.flags = info.responseFlags.bits;
    out.flagsText = formatResponseFlags(info.responseFlags);
  }

  /** The labels of these inputs (a pure function of them, the local workload and the options). */
  #labelsOf(x: LabelInputs): IstioLabels {
    const { reporter, peer, serviceHost, serviceHostName, peerSan, localSan } = x;
    const local = this.local;
    const peerNamespace =
      (peerSan !== '' ? principalNamespace(peerSan) : undefined) || peer?.namespace || '';
    const security =
      reporter === 'destination'
        ? peerSan !== '' && localSan !== ''
          ? 'mutual_tls'
          : 'none'
        : 'unknown';

    const common = {
      request_protocol: x.protocol,
      response_code: String(x.responseCode),
      grpc_response_status: x.grpcStatus,
      response_flags: x.flagsText,
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

/** Bound of the cached series of one peer (the families themselves keep every series). */
const MAX_SERIES_PER_PEER = 1024;

/** Keys of StreamInfo.metadata with the TLS identities (set by the downstream TLS layer). */
const PEER_PRINCIPAL_KEY = 'io.istio.peer_principal';
const LOCAL_PRINCIPAL_KEY = 'io.istio.local_principal';

/** Everything Istio's labels depend on besides the local workload and the options. */
class LabelInputs {
  reporter: Reporter = 'source';
  peer: WorkloadMetadata | undefined = undefined;
  serviceHost = '';
  serviceHostName = '';
  peerSan = '';
  localSan = '';
  protocol: 'http' | 'grpc' | 'tcp' = 'http';
  responseCode = 0;
  grpcStatus = '';
  /** ResponseFlagSet bits, and their `%RESPONSE_FLAGS%` text. */
  flags = 0;
  flagsText = '-';

  /** Whether `o` has the same inputs, the peer aside (compared by the caller's cache). */
  sameAs(o: LabelInputs): boolean {
    return (
      this.responseCode === o.responseCode &&
      this.flags === o.flags &&
      this.reporter === o.reporter &&
      this.protocol === o.protocol &&
      this.grpcStatus === o.grpcStatus &&
      this.serviceHost === o.serviceHost &&
      this.serviceHostName === o.serviceHostName &&
      this.peerSan === o.peerSan &&
      this.localSan === o.localSan
    );
  }

  /** A key of the inputs other than the peer (free-form strings length-prefixed: no collisions). */
  key(): string {
    return (
      `${this.reporter === 'source' ? 's' : 'd'}${this.protocol}:${this.responseCode}:${this.flags}:` +
      `${this.grpcStatus}:${this.serviceHost.length}:${this.serviceHost}` +
      `${this.serviceHostName.length}:${this.serviceHostName}` +
      `${this.peerSan.length}:${this.peerSan}${this.localSan}`
    );
  }

  copy(): LabelInputs {
    const c = new LabelInputs();
    c.reporter = this.reporter;
    c.peer = this.peer;
    c.serviceHost = this.serviceHost;
    c.serviceHostName = this.serviceHostName;
    c.peerSan = this.peerSan;
    c.localSan = this.localSan;
    c.protocol = this.protocol;
    c.responseCode = this.responseCode;
    c.grpcStatus = this.grpcStatus;
    c.flags = this.flags;
    c.flagsText = this.flagsText;
    return c;
  }
}

/** The cached series of one peer (or of requests without a peer). */
class PeerSeries {
  last: HttpSeries | undefined = undefined;
  readonly byKey = new Map<string, HttpSeries>();
}

/** The four HTTP series of one label set, resolved once. */
class HttpSeries {
  readonly total: Counter;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;
  #duration: Histogram | undefined = undefined;
  constructor(
    private readonly metrics: IstioMetrics,
    readonly inputs: LabelInputs,
    private readonly values: readonly string[],
    private readonly key: string,
  ) {
    this.total = metrics.requestsTotal.getKeyed(key, values);
    this.requestBytes = metrics.requestBytes.getKeyed(key, values);
    this.responseBytes = metrics.responseBytes.getKeyed(key, values);
  }

  /** The duration series, created on the first request that has a duration (as before). */
  duration(): Histogram {
    return (this.#duration ??= this.metrics.requestDuration.getKeyed(this.key, this.values));
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Istio's TCP metrics for one connection (see IstioMetrics.tcpConnection). */
export class TcpMetricsReporter {
  private values: string[] | undefined;
  private key = '';
  /** The byte counters, resolved at the first report (their series exist from then on). */
  private sentSeries: Counter | undefined;
  private receivedSeries: Counter | undefined;
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
    this.key = seriesKey(this.values);
    this.metrics.tcpOpened.getKeyed(this.key, this.values).inc();
  }

  /** Adds the bytes sent and received since the last report (series exist from the first report). */
  report(): void {
    this.opened();
    const values = this.values as string[];
    const info = this.ctx.info;
    const sent = (this.sentSeries ??= this.metrics.tcpSentBytes.getKeyed(this.key, values));
    sent.inc(Math.max(0, info.bytesSent - this.sent));
    this.sent = Math.max(this.sent, info.bytesSent);
    const received = (this.receivedSeries ??= this.metrics.tcpReceivedBytes.getKeyed(
      this.key,
      values,
    ));
    received.inc(Math.max(0, info.bytesReceived - this.received));
    this.received = Math.max(this.received, info.bytesReceived);
  }

  /** Final report and the closed counter (idempotent). */
  closed(): void {
    if (this.done) return;
    this.done = true;
    this.report();
    this.metrics.tcpClosed.getKeyed(this.key, this.values as string[]).inc();
  }
}
