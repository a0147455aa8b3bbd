// Istio's standard metrics: label sets and values for the source (outbound) and destination
// (inbound) reporters, peers from metadata exchange or from EDS endpoint metadata, gRPC, TCP,
// and the exact `/stats/prometheus` lines.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ClusterLoadAssignment, Cluster } from '@trellis/envoy';
import {
  DOWNSTREAM_PEER_KEY,
  HTTP_LABELS,
  IstioMetrics,
  StatsStore,
  TCP_LABELS,
  UPSTREAM_PEER_KEY,
  logContext,
  workloadFromNodeMetadata,
  type MetricsContext,
} from '../src/observability/index.js';
import { RESPONSE_FLAGS, newStreamInfo, type StreamInfo } from '../src/stream-info.js';

const golden = (name: string): unknown =>
  JSON.parse(
    readFileSync(new URL(`../../../translate/test/golden/${name}`, import.meta.url), 'utf8'),
  );

const PRODUCTPAGE = workloadFromNodeMetadata({
  NAME: 'productpage-v1-123',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'productpage-v1',
  CLUSTER_ID: 'Kubernetes',
  OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1',
  LABELS: { app: 'productpage', version: 'v1' },
});

const REVIEWS = workloadFromNodeMetadata({
  NAME: 'reviews-v2-456',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'reviews-v2',
  CLUSTER_ID: 'Kubernetes',
  LABELS: {
    app: 'reviews',
    version: 'v2',
    'service.istio.io/canonical-name': 'reviews',
    'service.istio.io/canonical-revision': 'v2',
  },
});

const REVIEWS_CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';

function info(
  direction: 'inbound' | 'outbound',
  protocol: StreamInfo['protocol'] = 'HTTP/1.1',
): StreamInfo {
  const i = newStreamInfo(
    {
      protocol,
      listenerName: direction === 'outbound' ? '0.0.0.0_9080' : 'virtualInbound',
      direction,
      downstreamRemoteAddress: '10.1.0.9:41000',
      downstreamLocalAddress: '10.1.0.3:9080',
    },
    1_700_000_000_000,
    0,
  );
  i.method = 'GET';
  i.path = '/reviews/0';
  i.authority = 'reviews:9080';
  i.responseCode = 200;
  i.bytesReceived = 0;
  i.bytesSent = 358;
  i.durationMs = 12.7;
  i.upstreamCluster = direction === 'outbound' ? REVIEWS_CLUSTER : 'inbound|9080||';
  return i;
}

describe('Istio standard metrics', () => {
  test('workload metadata from node metadata, with canonical defaults', () => {
    assert.deepEqual(PRODUCTPAGE, {
      instanceName: 'productpage-v1-123',
      namespace: 'default',
      workloadName: 'productpage-v1',
      clusterId: 'Kubernetes',
      canonicalName: 'productpage',
      canonicalRevision: 'v1',
      appName: 'productpage',
      appVersion: 'v1',
      workloadType: 'deployment',
    });
  });

  test('source reporter: peer from the EDS endpoint metadata, service from the cluster metadata', () => {
    const store = new StatsStore();
    const m = new IstioMetrics(store, PRODUCTPAGE);
    const cluster = (golden('cluster-outbound-default.json') as Cluster[])[0] as Cluster;
    const cla = (
      golden('endpoint-default.json') as ClusterLoadAssignment[]
    )[0] as ClusterLoadAssignment;
    const host = cla.endpoints?.[0]?.lbEndpoints?.[1];
    const i = info('outbound');
    i.upstreamHost = '10.1.0.4:9080';
    const ctx: MetricsContext = {
      ...logContext(i, { ':authority': 'reviews:9080' }),
      upstreamHostMetadata: host?.metadata?.filterMetadata as Record<
        string,
        Record<string, unknown>
      >,
      upstreamClusterMetadata: cluster.metadata?.filterMetadata as Record<
        string,
        Record<string, unknown>
      >,
    };
    assert.deepEqual(m.labels(ctx, 'http'), {
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'default',
      source_principal: 'unknown',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'default',
      destination_principal: 'unknown',
      destination_app: 'unknown',
      destination_version: 'unknown',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    });
    m.recordHttp(ctx);
    m.recordHttp(ctx);
    const out = store.renderPrometheus();
    const line =
      'istio_requests_total{reporter="source",source_workload="productpage-v1",source_canonical_service="productpage",' +
      'source_canonical_revision="v1",source_workload_namespace="default",source_principal="unknown",source_app="productpage",' +
      'source_version="v1",source_cluster="Kubernetes",destination_workload="reviews-v2",destination_workload_namespace="default",' +
      'destination_principal="unknown",destination_app="unknown",destination_version="unknown",' +
      'destination_service="reviews.default.svc.cluster.local",destination_canonical_service="reviews",' +
      'destination_canonical_revision="v2",destination_service_name="reviews",destination_service_namespace="default",' +
      'destination_cluster="Kubernetes",request_protocol="http",response_code="200",grpc_response_status="",' +
      'response_flags="-",connection_security_policy="unknown"} 2';
    assert.ok(out.split('\n').includes(line), out);
    assert.ok(out.includes('# TYPE istio_requests_total counter\n'));
    assert.ok(out.includes('# TYPE istio_request_duration_milliseconds histogram\n'));
    // Duration 12.7 ms is recorded as 12 (whole milliseconds): in the le="25" bucket, not le="10".
    const dur = out
      .split('\n')
      .filter((l) => l.startsWith('istio_request_duration_milliseconds_bucket{'));
    assert.ok(dur.some((l) => l.includes('le="10"}') && l.endsWith(' 0')));
    assert.ok(dur.some((l) => l.includes('le="25"}') && l.endsWith(' 2')));
    assert.ok(out.includes('istio_request_duration_milliseconds_sum{reporter="source"'));
    assert.ok(
      out.split('\n').some((l) => l.startsWith('istio_response_bytes_sum{') && l.endsWith(' 716')),
    );
    assert.ok(
      out.split('\n').some((l) => l.startsWith('istio_request_bytes_count{') && l.endsWith(' 2')),
    );
  });

  test('source reporter: the peer from metadata exchange wins; nothing known gives unknown', () => {
    const m = new IstioMetrics(new StatsStore(), PRODUCTPAGE);
    const i = info('outbound');
    i.metadata.set(UPSTREAM_PEER_KEY, REVIEWS);
    const l = m.labels(logContext(i), 'http');
    assert.equal(l.destination_workload, 'reviews-v2');
    assert.equal(l.destination_app, 'reviews');
    assert.equal(l.destination_version, 'v2');
    assert.equal(l.destination_service, 'reviews:9080');
    assert.equal(l.destination_service_name, 'reviews:9080');

    const bare = info('outbound');
    bare.upstreamCluster = 'PassthroughCluster';
    delete bare.authority;
    bare.responseCode = 503;
    bare.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_CONNECTION_FAILURE);
    const u = m.labels({ info: bare }, 'http');
    assert.equal(u.destination_workload, 'unknown');
    assert.equal(u.destination_canonical_revision, 'latest');
    assert.equal(u.destination_service, 'unknown');
    assert.equal(u.destination_service_name, 'PassthroughCluster');
    assert.equal(u.response_flags, 'UF');
    assert.equal(u.response_code, '503');
  });

  test('destination reporter: source from the downstream peer, destination from the local node, mTLS', () => {
    const m = new IstioMetrics(new StatsStore(), REVIEWS);
    const i = info('inbound');
    i.metadata.set(DOWNSTREAM_PEER_KEY, PRODUCTPAGE);
    const cluster = (golden('cluster-inbound.json') as Cluster[])[0] as Cluster;
    const l = m.labels(
      {
        ...logContext(i, { host: 'reviews:9080' }),
        upstreamClusterMetadata: cluster.metadata?.filterMetadata as Record<
          string,
          Record<string, unknown>
        >,
        peerPrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
        localPrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
      },
      'http',
    );
    assert.deepEqual(l, {
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'default',
      source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'default',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    const plain = m.labels(logContext(info('inbound')), 'http');
    assert.equal(plain.connection_security_policy, 'none');
    assert.equal(plain.source_workload, 'unknown');
    assert.equal(plain.source_canonical_revision, 'latest');
    assert.equal(plain.source_principal, 'unknown');
  });

  test('gRPC: request_protocol grpc and grpc_response_status from trailers, or mapped from HTTP', () => {
    const m = new IstioMetrics(new StatsStore(), PRODUCTPAGE);
    const i = info('outbound', 'HTTP/2');
    const l = m.labels(
      logContext(i, { 'content-type': 'application/grpc' }, {}, { 'grpc-status': '5' }),
      'http',
    );
    assert.equal(l.request_protocol, 'grpc');
    assert.equal(l.grpc_response_status, '5');
    const j = info('outbound', 'HTTP/2');
    j.responseCode = 503;
    const u = m.labels(logContext(j, { 'content-type': 'application/grpc+proto' }), 'http');
    assert.equal(u.grpc_response_status, '14');
  });

  test('inbound TCP and HTTP share destination_service: the FQDN from the inbound cluster', () => {
    // The inbound cluster as the control plane generates it (istio.services[0].host is the FQDN).
    const [inbound] = golden('cluster-inbound.json') as Cluster[];
    const clusterMeta = inbound?.metadata
      ?.filterMetadata as MetricsContext['upstreamClusterMetadata'];
    assert.ok(clusterMeta);
    const store = new StatsStore();
    const m = new IstioMetrics(store, REVIEWS, {
      clusterMetadata: (name) => (name === inbound?.name ? clusterMeta : undefined),
    });
    // HTTP: the router hands over the cluster's metadata; the Host header is the short name.
    const h = info('inbound');
    m.recordHttp({
      ...logContext(h, { host: 'reviews:9080' }),
      upstreamClusterMetadata: clusterMeta,
    });
    // TCP: tcp_proxy knows only the cluster name.
    const t = info('inbound', 'TCP');
    delete t.authority;
    const r = m.tcpConnection({ info: t });
    r.opened();
    r.closed();
    const out = store.renderPrometheus().split('\n');
    const service = (metric: string): string[] =>
      out
        .filter((l) => l.startsWith(`${metric}{reporter="destination"`))
        .map((l) => /destination_service="([^"]*)"/.exec(l)?.[1] ?? '');
    assert.deepEqual(service('istio_requests_total'), ['reviews.default.svc.cluster.local']);
    assert.deepEqual(service('istio_tcp_connections_opened_total'), [
      'reviews.default.svc.cluster.local',
    ]);
    assert.equal(m.labels({ info: t }, 'tcp').destination_service_name, 'reviews');
  });

  test('TCP: opened once, byte deltas, closed; TCP labels have no response code', () => {
    const store = new StatsStore();
    const m = new IstioMetrics(store, PRODUCTPAGE);
    const i = info('outbound', 'TCP');
    i.upstreamCluster = 'outbound|9001||tcp-echo.default.svc.cluster.local';
    delete i.authority;
    i.bytesReceived = 0;
    i.bytesSent = 0;
    const r = m.tcpConnection({ info: i });
    r.opened();
    r.opened();
    i.bytesReceived = 10;
    i.bytesSent = 4;
    r.report();
    i.bytesReceived = 25;
    r.closed();
    r.closed();
    assert.deepEqual(TCP_LABELS.slice(-3), [
      'request_protocol',
      'response_flags',
      'connection_security_policy',
    ]);
    assert.equal(TCP_LABELS.length, HTTP_LABELS.length - 2);
    const l = m.labels({ info: i }, 'tcp');
    const values = TCP_LABELS.map((n) => l[n]);
    assert.equal(m.tcpOpened.get(values).value, 1);
    assert.equal(m.tcpClosed.get(values).value, 1);
    assert.equal(m.tcpReceivedBytes.get(values).value, 25);
    assert.equal(m.tcpSentBytes.get(values).value, 4);
    assert.equal(l.request_protocol, 'tcp');
    const out = store.renderPrometheus();
    assert.ok(out.includes('# TYPE istio_tcp_connections_opened_total counter\n'));
    assert.ok(!/istio_tcp_received_bytes_total\{[^}]*response_code=/.test(out));
    assert.ok(
      /istio_tcp_received_bytes_total\{reporter="source",[^}]*request_protocol="tcp",response_flags="-",connection_security_policy="unknown"\} 25/.test(
        out,
      ),
      out,
    );
  });

  test('recorded series: every label input gives its own series, repeats land in the same one', () => {
    const store = new StatsStore();
    const svcMeta = (host: string, name?: string): Record<string, Record<string, unknown>> => ({
      istio: {
        services: [{ host, ...(name !== undefined ? { name } : {}), namespace: 'default' }],
      },
    });
    const byName = new Map([['outbound|9080||ratings', svcMeta('ratings.default.svc', 'ratings')]]);
    const m = new IstioMetrics(store, PRODUCTPAGE, { clusterMetadata: (c) => byName.get(c) });
    const REVIEWS_V3 = { ...REVIEWS, appVersion: 'v3' };
    const base = (): { i: StreamInfo; ctx: MetricsContext } => {
      const i = info('outbound');
      i.metadata.set(UPSTREAM_PEER_KEY, REVIEWS);
      return { i, ctx: { ...logContext(i, { ':authority': 'reviews:9080' }) } };
    };
    type Variant = (v: { i: StreamInfo; ctx: MetricsContext }) => MetricsContext | void;
    const variants: Record<string, Variant> = {
      'direction (reporter)': ({ i }) => void (i.direction = 'inbound'),
      'inbound peer': ({ i }) => {
        i.direction = 'inbound';
        i.metadata.set(DOWNSTREAM_PEER_KEY, PRODUCTPAGE);
      },
      'peer (metadata exchange)': ({ i }) => void i.metadata.set(UPSTREAM_PEER_KEY, REVIEWS_V3),
      'peer (context)': ({ ctx }) => ({ ...ctx, peer: PRODUCTPAGE }),
      'no peer': ({ i }) => void i.metadata.delete(UPSTREAM_PEER_KEY),
      'peer from EDS metadata': ({ i, ctx }) => {
        i.metadata.delete(UPSTREAM_PEER_KEY);
        return {
          ...ctx,
          upstreamHostMetadata: { istio: { workload: 'reviews-v1;default;reviews;v1;Kubernetes' } },
        };
      },
      ':authority': ({ i }) => ({ ...logContext(i, { ':authority': 'reviews:9081' }) }),
      'host header': ({ i }) => ({ ...logContext(i, { host: 'reviews.default:9080' }) }),
      'info.authority': ({ i }) => {
        i.authority = 'details:9080';
        return { info: i };
      },
      'route block_all': ({ i }) => void (i.routeName = 'block_all'),
      'route allow_any': ({ i }) => void (i.routeName = 'allow_any'),
      'special cluster': ({ i }) => void (i.upstreamCluster = 'InboundPassthroughClusterIpv4'),
      'cluster service host': ({ ctx }) => ({
        ...ctx,
        upstreamClusterMetadata: svcMeta('reviews.default.svc.cluster.local'),
      }),
      'cluster service name': ({ ctx }) => ({
        ...ctx,
        upstreamClusterMetadata: svcMeta('reviews.default.svc.cluster.local', 'reviews-svc'),
      }),
      'cluster metadata by name': ({ i }) => void (i.upstreamCluster = 'outbound|9080||ratings'),
      'peer principal (context)': ({ ctx }) => ({
        ...ctx,
        peerPrincipal: 'spiffe://cluster.local/ns/other/sa/reviews',
      }),
      'local principal (context)': ({ ctx }) => ({
        ...ctx,
        localPrincipal: 'spiffe://cluster.local/ns/default/sa/productpage',
      }),
      'peer principal (metadata)': ({ i }) =>
        void i.metadata.set('io.istio.peer_principal', 'spiffe://cluster.local/ns/x/sa/reviews'),
      'inbound mTLS': ({ i }) => {
        i.direction = 'inbound';
        i.metadata.set('io.istio.peer_principal', 'spiffe://cluster.local/ns/x/sa/reviews');
        i.metadata.set('io.istio.local_principal', 'spiffe://cluster.local/ns/default/sa/pp');
      },
      'gRPC content type': ({ i }) => ({
        ...logContext(i, { ':authority': 'reviews:9080', 'content-type': 'application/grpc' }),
      }),
      'gRPC status (trailer)': ({ i }) => ({
        ...logContext(
          i,
          { ':authority': 'reviews:9080', 'content-type': 'application/grpc' },
          {},
          { 'grpc-status': '7' },
        ),
      }),
      'gRPC status (header)': ({ i }) => ({
        ...logContext(
          i,
          { ':authority': 'reviews:9080', 'content-type': 'application/grpc' },
          { 'grpc-status': '3' },
        ),
      }),
      'gRPC status (info)': ({ i }) => {
        i.grpcStatus = 9;
        return { info: i };
      },
      'response code': ({ i }) => void (i.responseCode = 404),
      'response flag': ({ i }) => void i.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_OVERFLOW),
      'two response flags': ({ i }) => {
        i.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_OVERFLOW);
        i.responseFlags.add(RESPONSE_FLAGS.NO_HEALTHY_UPSTREAM);
      },
    };

    const expected = new Map<string, number>();
    const seen = new Map<string, string>();
    const record = (name: string, v?: Variant): void => {
      const b = base();
      const ctx = (v ? v(b) : undefined) ?? b.ctx;
      const key = Object.values(m.labels(ctx, 'http')).join('|');
      if (seen.has(key) && seen.get(key) !== name)
        assert.fail(`${name} gives the same labels as ${seen.get(key)}`);
      seen.set(key, name);
      m.recordHttp(ctx);
      expected.set(key, (expected.get(key) ?? 0) + 1);
    };
    // Alternate with the base request, so that each recording follows a different one.
    for (const [name, v] of Object.entries(variants)) {
      record('base');
      record(name, v);
      record(name, v);
      record('base');
    }
    assert.equal(seen.size, Object.keys(variants).length + 1);
    const recorded = new Map<string, number>();
    for (const e of m.requestsTotal.entries())
      recorded.set(e.tags.map(([, v]) => v).join('|'), (e.stat as { value: number }).value);
    assert.deepEqual(recorded, expected);
    for (const e of m.requestBytes.entries())
      assert.equal(
        (e.stat as { count: number }).count,
        recorded.get(e.tags.map(([, v]) => v).join('|')),
      );

    // Without a duration there is no duration series (and the others are still counted).
    const s2 = new StatsStore();
    const m2 = new IstioMetrics(s2, PRODUCTPAGE);
    const d = info('outbound');
    d.durationMs = undefined;
    m2.recordHttp(logContext(d));
    assert.equal([...m2.requestDuration.entries()].length, 0);
    assert.equal([...m2.requestsTotal.entries()].length, 1);
    const d2 = info('outbound');
    m2.recordHttp(logContext(d2));
    assert.equal([...m2.requestDuration.entries()].length, 1);
  });

  test('istio_build gauge', () => {
    const store = new StatsStore();
    new IstioMetrics(store, PRODUCTPAGE, { istioVersion: '1.24.0' });
    assert.ok(store.renderPrometheus().includes('istio_build{component="proxy",tag="1.24.0"} 1\n'));
  });
});
