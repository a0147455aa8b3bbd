// The stats store: Envoy-named counters, gauges and histograms, `/stats` text and JSON, and
// `/stats/prometheus` with tag extraction (Istio's bootstrap tags by default, Envoy's on request),
// including Istio cluster names that hold `|` and dots.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_HISTOGRAM_BUCKETS,
  ENVOY_TAG_NAMES,
  StatsStore,
  type Counter,
} from '../src/observability/index.js';

const REVIEWS = 'outbound|9080|v1|reviews.default.svc.cluster.local';

describe('stats store', () => {
  test('the same name gives the same object, through scopes or flat', () => {
    const s = new StatsStore();
    const a = s.scope('cluster').scope(REVIEWS).counter('upstream_rq_total');
    const b = s.scope('cluster').scope(REVIEWS).counter('upstream_rq_total');
    const c = s.counter(`cluster.${REVIEWS}.upstream_rq_total`);
    assert.equal(a, b);
    assert.equal(a, c);
    a.inc();
    c.inc(2);
    assert.equal(s.value(`cluster.${REVIEWS}.upstream_rq_total`), 3);
  });

  test('gauges set, inc and dec; a name keeps its kind', () => {
    const s = new StatsStore();
    const g = s.scope('cluster_manager').gauge('active_clusters');
    g.set(5);
    g.inc();
    g.dec(2);
    assert.equal(g.value, 4);
    assert.throws(() => s.counter('cluster_manager.active_clusters'), /is a gauge/);
  });

  test('text /stats: counters and gauges sorted as name: value, histograms after', () => {
    const s = new StatsStore();
    s.counter('server.b').inc(2);
    s.gauge('server.a').set(7);
    const h = s.scope('cluster').scope('c1').histogram('upstream_rq_time');
    s.scope('cluster').scope('c2').histogram('upstream_rq_time');
    for (const v of [1, 2, 3, 4]) h.record(v);
    const text = s.renderText();
    const lines = text.trimEnd().split('\n');
    assert.equal(lines[0], 'server.a: 7');
    assert.equal(lines[1], 'server.b: 2');
    assert.match(
      lines[2] as string,
      /^cluster\.c1\.upstream_rq_time: P0\(nan,1\) P25\(nan,[\d.]+\) /,
    );
    assert.match(lines[2] as string, / P100\(nan,4\)$/);
    assert.equal(lines[3], 'cluster.c2.upstream_rq_time: No recorded values');
  });

  test('usedonly and filter', () => {
    const s = new StatsStore();
    s.counter('server.used').inc();
    s.counter('server.unused');
    s.counter('listener_manager.total_listeners_active').inc();
    assert.equal(
      s.renderText({ usedOnly: true }),
      'listener_manager.total_listeners_active: 1\nserver.used: 1\n',
    );
    assert.equal(s.renderText({ filter: /^server\./ }), 'server.unused: 0\nserver.used: 1\n');
  });

  test('JSON /stats has the stats and a histograms entry', () => {
    const s = new StatsStore();
    s.counter('server.x').inc(3);
    s.histogram('server.h').record(10);
    const j = JSON.parse(s.renderJson()) as { stats: unknown[] };
    assert.deepEqual(j.stats[0], { name: 'server.x', value: 3 });
    const h = j.stats[1] as {
      histograms: { supported_quantiles: number[]; computed_quantiles: { name: string }[] };
    };
    assert.deepEqual(
      h.histograms.supported_quantiles,
      [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100],
    );
    assert.equal(h.histograms.computed_quantiles[0]?.name, 'server.h');
  });
});

describe('prometheus rendering', () => {
  test('Istio cluster names with | and dots become one cluster_name label', () => {
    const s = new StatsStore();
    const cl = s.scope('cluster').scope(REVIEWS);
    cl.counter('upstream_rq_total').inc(3);
    cl.counter('upstream_rq_200').inc(2);
    cl.counter('upstream_rq_2xx').inc(2);
    cl.gauge('upstream_cx_active').set(1);
    assert.equal(
      s.renderPrometheus(),
      '# TYPE envoy_cluster_upstream_rq counter\n' +
        `envoy_cluster_upstream_rq{response_code="200",cluster_name="${REVIEWS}"} 2\n` +
        `envoy_cluster_upstream_rq{response_code_class="2xx",cluster_name="${REVIEWS}"} 2\n` +
        '\n' +
        '# TYPE envoy_cluster_upstream_rq_total counter\n' +
        `envoy_cluster_upstream_rq_total{cluster_name="${REVIEWS}"} 3\n` +
        '\n' +
        '# TYPE envoy_cluster_upstream_cx_active gauge\n' +
        `envoy_cluster_upstream_cx_active{cluster_name="${REVIEWS}"} 1\n` +
        '\n',
    );
  });

  test('http, listener, tcp, server, cluster_manager and listener_manager names', () => {
    const s = new StatsStore();
    s.scope('http').scope('outbound_0.0.0.0_9080').counter('downstream_rq_total').inc();
    s.scope('listener').scope('0.0.0.0:15001').counter('downstream_cx_total').inc();
    s.scope('listener')
      .scope('0.0.0.0_15006')
      .scope('http')
      .scope('inbound_0.0.0.0_9080')
      .counter('downstream_rq_5xx')
      .inc();
    s.scope('tcp')
      .scope('outbound|9001||tcp-echo.default.svc.cluster.local')
      .counter('downstream_cx_total')
      .inc();
    s.scope('server').gauge('uptime').set(12);
    s.scope('cluster_manager').counter('cds.update_success').inc();
    s.scope('listener_manager').gauge('total_listeners_active').set(4);
    const out = s.renderPrometheus();
    const lines = out.split('\n');
    const has = (l: string): void => assert.ok(lines.includes(l), `missing ${l} in\n${out}`);
    has('envoy_http_downstream_rq_total{http_conn_manager_prefix="outbound_0.0.0.0_9080"} 1');
    // Envoy's stat names never hold ':' (it becomes '_').
    has('envoy_listener_downstream_cx_total{listener_address="0.0.0.0_15001"} 1');
    has(
      'envoy_listener_http_downstream_rq{response_code_class="5xx",http_conn_manager_listener_prefix="inbound_0.0.0.0_9080",listener_address="0.0.0.0_15006"} 1',
    );
    has(
      'envoy_tcp_downstream_cx_total{tcp_prefix="outbound|9001||tcp-echo.default.svc.cluster.local"} 1',
    );
    has('envoy_server_uptime{} 12');
    has('envoy_cluster_manager_cds_update_success{} 1');
    has('envoy_listener_manager_total_listeners_active{} 4');
    has('# TYPE envoy_server_uptime gauge');
  });

  test('flat dotted names use Istio regular expressions', () => {
    const s = new StatsStore();
    s.counter(`cluster.${REVIEWS}.upstream_cx_total`).inc();
    s.counter('http.10.1.0.3_9080.downstream_rq_total').inc();
    const out = s.renderPrometheus();
    assert.ok(out.includes(`envoy_cluster_upstream_cx_total{cluster_name="${REVIEWS}"} 1\n`), out);
    assert.ok(
      out.includes('envoy_http_downstream_rq_total{http_conn_manager_prefix="10.1.0.3_9080"} 1\n'),
      out,
    );
  });

  test('a flat name is upgraded when the scoped name is used', () => {
    const s = new StatsStore();
    // `egress.internal` does not end in .svc.cluster.local: the regex cannot find its end.
    const name = 'outbound|443||egress.internal';
    s.counter(`cluster.${name}.upstream_rq_total`).inc();
    assert.deepEqual(s.extractTags(`cluster.${name}.upstream_rq_total`).tags, [
      ['cluster_name', 'outbound|443||egress'],
    ]);
    s.scope('cluster').scope(name).counter('upstream_rq_total');
    assert.deepEqual(s.extractTags(`cluster.${name}.upstream_rq_total`), {
      name: 'cluster.upstream_rq_total',
      tags: [['cluster_name', name]],
    });
  });

  test('a scope prefix given with the root keeps the rest as the name', () => {
    const s = new StatsStore();
    s.scope(`cluster.${REVIEWS}`).counter('upstream_rq_total').inc();
    assert.deepEqual(s.extractTags(`cluster.${REVIEWS}.upstream_rq_total`).tags, [
      ['cluster_name', REVIEWS],
    ]);
  });

  test('histograms: Envoy default buckets, cumulative, +Inf, sum and count', () => {
    const s = new StatsStore();
    const h = s.scope('cluster').scope('c').histogram('upstream_rq_time');
    h.record(0.4);
    h.record(3);
    h.record(7000000); // beyond the last bucket
    const out = s.renderPrometheus();
    const bucket = (le: string): string | undefined =>
      out
        .split('\n')
        .find((l) =>
          l.startsWith(`envoy_cluster_upstream_rq_time_bucket{cluster_name="c",le="${le}"}`),
        );
    assert.equal(
      bucket('0.5'),
      'envoy_cluster_upstream_rq_time_bucket{cluster_name="c",le="0.5"} 1',
    );
    assert.equal(bucket('1'), 'envoy_cluster_upstream_rq_time_bucket{cluster_name="c",le="1"} 1');
    assert.equal(bucket('5'), 'envoy_cluster_upstream_rq_time_bucket{cluster_name="c",le="5"} 2');
    assert.equal(
      bucket('3600000'),
      'envoy_cluster_upstream_rq_time_bucket{cluster_name="c",le="3600000"} 2',
    );
    assert.equal(
      bucket('+Inf'),
      'envoy_cluster_upstream_rq_time_bucket{cluster_name="c",le="+Inf"} 3',
    );
    assert.ok(out.includes('envoy_cluster_upstream_rq_time_sum{cluster_name="c"} 7000003.4\n'));
    assert.ok(out.includes('envoy_cluster_upstream_rq_time_count{cluster_name="c"} 3\n'));
    const les = out.split('\n').filter((l) => l.includes('_bucket{')).length;
    assert.equal(les, DEFAULT_HISTOGRAM_BUCKETS.length + 1);
    assert.ok(out.startsWith('# TYPE envoy_cluster_upstream_rq_time histogram\n'));
  });

  test('counters before gauges before histograms; groups sorted; blank line after each', () => {
    const s = new StatsStore();
    s.histogram('server.h').record(1);
    s.gauge('server.g').set(1);
    s.counter('server.z').inc();
    s.counter('cluster.a.upstream_rq_total').inc();
    const types = s
      .renderPrometheus()
      .split('\n')
      .filter((l) => l.startsWith('# TYPE'));
    assert.deepEqual(types, [
      '# TYPE envoy_cluster_upstream_rq_total counter',
      '# TYPE envoy_server_z counter',
      '# TYPE envoy_server_g gauge',
      '# TYPE envoy_server_h histogram',
    ]);
  });

  test("Envoy's default tag names when asked", () => {
    const s = new StatsStore({ tagNames: ENVOY_TAG_NAMES });
    const cl = s.scope('cluster').scope(REVIEWS);
    cl.counter('upstream_rq_2xx').inc();
    s.scope('http').scope('ingress_http').counter('downstream_rq_total').inc();
    s.scope('listener').scope('0.0.0.0_8080').counter('downstream_cx_total').inc();
    const out = s.renderPrometheus();
    assert.ok(
      out.includes(
        `envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="${REVIEWS}"} 1\n`,
      ),
      out,
    );
    assert.ok(
      out.includes(
        'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="ingress_http"} 1\n',
      ),
    );
    assert.ok(
      out.includes('envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_8080"} 1\n'),
    );
  });

  test('tagged families: custom namespace exported without envoy_, label values escaped', () => {
    const s = new StatsStore();
    const fam = s.family<Counter>('istio_requests_total', 'counter', ['reporter', 'x'], {
      namespace: 'istiocustom',
    });
    fam.get(['source', 'a"b\\c']).inc(2);
    const out = s.renderPrometheus();
    assert.equal(
      out,
      '# TYPE istio_requests_total counter\nistio_requests_total{reporter="source",x="a\\"b\\\\c"} 2\n\n',
    );
    assert.equal(s.renderText(), 'istiocustom.istio_requests_total.reporter.source.x.a"b\\c: 2\n');
    assert.throws(() => fam.get(['only-one']), /1 tag values for 2 tags/);
  });

  test('reset_counters zeroes counters, not gauges', () => {
    const s = new StatsStore();
    s.counter('server.c').inc(5);
    s.gauge('server.g').set(5);
    s.resetCounters();
    assert.equal(s.value('server.c'), 0);
    assert.equal(s.value('server.g'), 5);
  });
});
