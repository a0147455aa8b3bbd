// The Prometheus registry renders the text format exactly and keeps series apart by labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from '../src/index.js';

test('counters, gauges and histograms render in the Prometheus text format', () => {
  const r = new MetricsRegistry();
  const pushes = r.counter('pilot_xds_pushes', 'Pushes by type.', ['type']);
  const proxies = r.gauge('pilot_xds', 'Connected proxies.');
  const time = r.histogram('pilot_proxy_convergence_time', 'Convergence time.', [], [0.1, 1]);
  pushes.inc({ type: 'cds' });
  pushes.inc({ type: 'cds' }, 2);
  pushes.inc({ type: 'eds"x\\' });
  proxies.set({}, 3);
  time.observe({}, 0.05);
  time.observe({}, 0.5);
  time.observe({}, 7);
  assert.equal(
    r.render(),
    [
      '# HELP pilot_xds_pushes Pushes by type.',
      '# TYPE pilot_xds_pushes counter',
      'pilot_xds_pushes{type="cds"} 3',
      'pilot_xds_pushes{type="eds\\"x\\\\"} 1',
      '# HELP pilot_xds Connected proxies.',
      '# TYPE pilot_xds gauge',
      'pilot_xds 3',
      '# HELP pilot_proxy_convergence_time Convergence time.',
      '# TYPE pilot_proxy_convergence_time histogram',
      'pilot_proxy_convergence_time_bucket{le="0.1"} 1',
      'pilot_proxy_convergence_time_bucket{le="1"} 2',
      'pilot_proxy_convergence_time_bucket{le="+Inf"} 3',
      'pilot_proxy_convergence_time_sum 7.55',
      'pilot_proxy_convergence_time_count 3',
      '',
    ].join('\n'),
  );
  assert.equal(pushes.value({ type: 'cds' }), 3);
  assert.deepEqual(time.snapshot(), { count: 3, sum: 7.55 });
});

test('bad names, duplicate metrics and decreasing counters are refused', () => {
  const r = new MetricsRegistry();
  assert.throws(() => r.counter('bad-name', 'x'), /invalid metric name/);
  assert.throws(() => r.counter('ok', 'x', ['__reserved']), /invalid label name/);
  r.counter('dup', 'x');
  assert.throws(() => r.counter('dup', 'x'), /registered twice/);
  assert.throws(() => r.counter('c', 'x').inc({}, -1), /cannot decrease/);
  assert.throws(() => r.histogram('h', 'x', ['le']), /label named le/);
});

test('collected metrics read their series at scrape time', () => {
  const r = new MetricsRegistry();
  const pushes = new Map([['cds', 2]]);
  r.counterFrom('pilot_xds_pushes', 'Pushes.', ['type'], () =>
    [...pushes].map(([type, v]) => [{ type }, v] as const),
  );
  r.gaugeFrom('pilot_xds', 'Connected.', [], () => [[{}, 4]]);
  pushes.set('eds', 5);
  assert.equal(
    r.render(),
    '# HELP pilot_xds_pushes Pushes.\n# TYPE pilot_xds_pushes counter\npilot_xds_pushes{type="cds"} 2\npilot_xds_pushes{type="eds"} 5\n' +
      '# HELP pilot_xds Connected.\n# TYPE pilot_xds gauge\npilot_xds 4\n',
  );
});
