// The admin server and the health listener over real sockets: every endpoint, Envoy's 404 help
// text and 405 for a wrong method, hooks for quitquitquit / drain_listeners / logging, and the
// config dump and cluster pages built from the control plane's golden configurations.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from '@trellis/envoy';
import {
  AdminServer,
  type AdminLogger,
  type ClusterStatusView,
  type DrainOptions,
  type LogLevel,
  type ServerState,
} from '../src/admin/index.js';
import { StatsStore } from '../src/observability/index.js';
import type { ProxyConfig } from '../src/xds/config.js';

const golden = <T>(name: string): T =>
  JSON.parse(
    readFileSync(new URL(`../../../translate/test/golden/${name}`, import.meta.url), 'utf8'),
  ) as T;

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';

function goldenConfig(): ProxyConfig {
  const listeners = golden<{ listeners: Listener[] }>('listener-outbound-http.json').listeners;
  const route = golden<RouteConfiguration>('route-config-default.json');
  const clusters = golden<Cluster[]>('cluster-outbound-default.json');
  const endpoints = golden<ClusterLoadAssignment[]>('endpoint-default.json');
  return {
    listeners: new Map(listeners.map((l) => [l.name ?? '', l])),
    routes: new Map([[route.name ?? '', route]]),
    clusters: new Map(clusters.map((c) => [c.name ?? '', c])),
    endpoints: new Map(endpoints.map((e) => [e.clusterName ?? '', e])),
    versions: { listeners: 'v3', routes: 'v4', clusters: 'v1', endpoints: 'v2' },
  };
}

class TestLogger implements AdminLogger {
  readonly map = new Map<string, LogLevel>([
    ['admin', 'info'],
    ['upstream', 'info'],
    ['http', 'warning'],
  ]);
  levels(): Iterable<readonly [string, LogLevel]> {
    return this.map;
  }
  setLevel(name: string, level: LogLevel): boolean {
    if (!this.map.has(name)) return false;
    this.map.set(name, level);
    return true;
  }
  setAllLevels(level: LogLevel): void {
    for (const k of this.map.keys()) this.map.set(k, level);
  }
}

describe('admin server', () => {
  let state: ServerState = 'INITIALIZING';
  let shutdowns = 0;
  let onShutdown = (): void => undefined;
  const drains: DrainOptions[] = [];
  const logger = new TestLogger();
  const stats = new StatsStore();
  let liveClusters: ClusterStatusView[] | undefined;
  const config = goldenConfig();
  const server = new AdminServer(
    {
      config: () => config,
      stats,
      state: () => state,
      clusters: () => liveClusters ?? [],
      xdsStatus: {
        lastUpdated: () => Date.UTC(2024, 0, 2, 3, 4, 5, 600),
      },
      serverInfo: () => ({
        version: 'trellis/test',
        node: { id: 'sidecar~10.1.0.9~a.default~default.svc.cluster.local' },
      }),
      shutdown: () => {
        shutdowns++;
        onShutdown();
      },
      drainListeners: (o) => {
        drains.push(o);
      },
      logger,
    },
    { port: 0, healthPort: 0, healthAddress: '127.0.0.1' },
  );
  let base = '';
  let health = '';

  before(async () => {
    const { adminPort, healthPort } = await server.start();
    base = `http://127.0.0.1:${adminPort}`;
    health = `http://127.0.0.1:${healthPort ?? 0}`;
  });
  after(async () => {
    await server.close();
  });

  const get = async (
    path: string,
    method = 'GET',
  ): Promise<{ status: number; body: string; type: string | null }> => {
    const r = await fetch(base + path, { method });
    return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
  };

  test('/ready and /healthz/ready follow the server state', async () => {
    state = 'INITIALIZING';
    assert.deepEqual(await get('/ready'), {
      status: 503,
      body: 'INITIALIZING\n',
      type: 'text/plain; charset=UTF-8',
    });
    let h = await fetch(`${health}/healthz/ready`);
    assert.equal(h.status, 503);
    await h.text();
    state = 'LIVE';
    assert.equal((await get('/ready')).body, 'LIVE\n');
    assert.equal((await get('/ready')).status, 200);
    h = await fetch(`${health}/healthz/ready`);
    assert.equal(h.status, 200);
    await h.text();
    state = 'DRAINING';
    assert.deepEqual(await get('/ready'), {
      status: 503,
      body: 'DRAINING\n',
      type: 'text/plain; charset=UTF-8',
    });
    h = await fetch(`${health}/healthz/ready`);
    assert.equal(h.status, 503);
    await h.text();
    h = await fetch(`${health}/stats`);
    assert.equal(h.status, 404);
    await h.text();
    state = 'LIVE';
  });

  test('unknown path: 404 with the help text; wrong method: 405', async () => {
    const r = await get('/nope');
    assert.equal(r.status, 404);
    assert.ok(r.body.startsWith('invalid path. admin commands are:\n'), r.body);
    assert.ok(r.body.includes('  /clusters: upstream cluster status\n'));
    assert.ok(r.body.includes('  /quitquitquit (POST): exit the server\n'));
    assert.ok(r.body.includes('      format: File format to use; One of (text, json)\n'));
    const help = await get('/help');
    assert.equal(help.status, 200);
    assert.ok(help.body.startsWith('admin commands are:\n'));
    assert.deepEqual(await get('/quitquitquit'), {
      status: 405,
      body: 'Method GET not allowed, POST required.',
      type: 'text/plain; charset=UTF-8',
    });
    assert.equal((await get('/stats', 'PUT')).status, 405);
    assert.equal((await get('/drain_listeners', 'GET')).status, 405);
    assert.equal(shutdowns, 0);
    assert.equal(drains.length, 0);
  });

  test('/config_dump: Envoy ConfigDump shape with versions and last_updated', async () => {
    const r = await get('/config_dump');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const dump = JSON.parse(r.body) as { configs: Record<string, unknown>[] };
    assert.deepEqual(
      dump.configs.map((c) => c['@type']),
      [
        'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
        'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
        'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
      ],
    );
    const clusters = dump.configs[0] as {
      version_info: string;
      dynamic_active_clusters: {
        version_info: string;
        last_updated: string;
        cluster: Record<string, unknown>;
      }[];
    };
    assert.equal(clusters.version_info, 'v1');
    const c = clusters.dynamic_active_clusters[0];
    assert.equal(c?.version_info, 'v1');
    assert.equal(c?.last_updated, '2024-01-02T03:04:05.600Z');
    assert.equal(c?.cluster['@type'], 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    assert.equal(c?.cluster.name, REVIEWS);
    const listeners = dump.configs[1] as {
      version_info: string;
      dynamic_listeners: {
        name: string;
        active_state: { listener: Record<string, unknown>; version_info: string };
      }[];
    };
    assert.equal(listeners.version_info, 'v3');
    assert.equal(listeners.dynamic_listeners.length, config.listeners.size);
    const l0 = listeners.dynamic_listeners[0];
    assert.equal(
      l0?.active_state.listener['@type'],
      'type.googleapis.com/envoy.config.listener.v3.Listener',
    );
    assert.equal(l0?.active_state.listener.name, l0?.name);
    const routes = dump.configs[2] as {
      dynamic_route_configs: { route_config: Record<string, unknown> }[];
    };
    assert.equal(
      routes.dynamic_route_configs[0]?.route_config['@type'],
      'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
    );

    const eds = JSON.parse((await get('/config_dump?include_eds')).body) as {
      configs: Record<string, unknown>[];
    };
    const ep = eds.configs[3] as {
      '@type': string;
      dynamic_endpoint_configs: { endpoint_config: Record<string, unknown> }[];
    };
    assert.equal(ep['@type'], 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump');
    assert.equal(ep.dynamic_endpoint_configs[0]?.endpoint_config.clusterName, REVIEWS);

    const res = JSON.parse((await get('/config_dump?resource=dynamic_active_clusters')).body) as {
      configs: Record<string, unknown>[];
    };
    assert.equal(res.configs.length, 1);
    assert.equal(
      res.configs[0]?.['@type'],
      'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster',
    );
    const none = JSON.parse((await get('/config_dump?name_regex=%5Enothing%24')).body) as {
      configs: { dynamic_active_clusters?: unknown[] }[];
    };
    assert.deepEqual(none.configs[0]?.dynamic_active_clusters, []);
    assert.equal((await get('/config_dump?mask=foo')).status, 400);
    assert.equal((await get('/config_dump?resource=bogus')).status, 404);
  });

  test('/clusters from the configuration: Envoy text lines and JSON', async () => {
    liveClusters = undefined;
    const derived = new AdminServer(
      { config: () => config, stats, state: () => 'LIVE' },
      { port: 0, healthPort: null },
    );
    const { adminPort } = await derived.start();
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/clusters`);
      const body = await r.text();
      const lines = body.split('\n');
      for (const l of [
        `${REVIEWS}::observability_name::${REVIEWS};`,
        `${REVIEWS}::default_priority::max_connections::4294967295`,
        `${REVIEWS}::high_priority::max_connections::1024`,
        `${REVIEWS}::high_priority::max_retries::3`,
        `${REVIEWS}::added_via_api::true`,
        `${REVIEWS}::10.1.0.3:9080::cx_active::0`,
        `${REVIEWS}::10.1.0.3:9080::rq_total::0`,
        `${REVIEWS}::10.1.0.3:9080::health_flags::healthy`,
        `${REVIEWS}::10.1.0.4:9080::weight::1`,
        `${REVIEWS}::10.1.0.5:9080::priority::0`,
        `${REVIEWS}::10.1.0.5:9080::success_rate::-1`,
      ])
        assert.ok(lines.includes(l), `missing ${l} in\n${body}`);
      const j = await fetch(`http://127.0.0.1:${adminPort}/clusters?format=json`);
      const js = (await j.json()) as {
        cluster_statuses: {
          name: string;
          host_statuses: { address: unknown; health_status: unknown }[];
        }[];
      };
      assert.equal(js.cluster_statuses[0]?.name, REVIEWS);
      assert.deepEqual(js.cluster_statuses[0]?.host_statuses[0]?.address, {
        socket_address: { address: '10.1.0.3', port_value: 9080 },
      });
      assert.deepEqual(js.cluster_statuses[0]?.host_statuses[0]?.health_status, {
        eds_health_status: 'HEALTHY',
      });
    } finally {
      await derived.close();
    }
  });

  test('/clusters from the live provider: health flags and host stats', async () => {
    liveClusters = [
      {
        name: REVIEWS,
        addedViaApi: true,
        circuitBreakers: {
          default: { maxConnections: 1, maxPendingRequests: 2, maxRequests: 3, maxRetries: 4 },
          high: { maxConnections: 5, maxPendingRequests: 6, maxRequests: 7, maxRetries: 8 },
        },
        hosts: [
          {
            address: '10.1.0.3',
            port: 9080,
            healthFlags: ['failed_eds_health', 'failed_outlier_check'],
            weight: 2,
            priority: 1,
            stats: { rq_total: 17, cx_active: 1 },
            successRate: 94.5,
          },
        ],
      },
    ];
    const lines = (await get('/clusters')).body.split('\n');
    assert.ok(
      lines.includes(
        `${REVIEWS}::10.1.0.3:9080::health_flags::/failed_outlier_check/failed_eds_health`,
      ),
    );
    assert.ok(lines.includes(`${REVIEWS}::10.1.0.3:9080::rq_total::17`));
    assert.ok(lines.includes(`${REVIEWS}::10.1.0.3:9080::cx_active::1`));
    assert.ok(lines.includes(`${REVIEWS}::10.1.0.3:9080::success_rate::94.5`));
    assert.ok(lines.includes(`${REVIEWS}::default_priority::max_requests::3`));
    const j = JSON.parse((await get('/clusters?format=json')).body) as {
      cluster_statuses: { host_statuses: { health_status: unknown; stats: unknown[] }[] }[];
    };
    assert.deepEqual(j.cluster_statuses[0]?.host_statuses[0]?.health_status, {
      eds_health_status: 'UNHEALTHY',
      failed_outlier_check: true,
    });
    assert.ok(
      j.cluster_statuses[0]?.host_statuses[0]?.stats.some(
        (s) => JSON.stringify(s) === '{"name":"rq_total","value":"17"}',
      ),
    );
  });

  test('/stats, /stats?format=json|prometheus and /stats/prometheus', async () => {
    stats.scope('cluster').scope(REVIEWS).counter('upstream_rq_total').inc(4);
    stats.scope('server').gauge('live').set(1);
    const t = await get('/stats');
    assert.ok(t.body.includes(`cluster.${REVIEWS}.upstream_rq_total: 4\n`));
    const p = await get('/stats/prometheus');
    assert.equal(p.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.ok(p.body.includes(`envoy_cluster_upstream_rq_total{cluster_name="${REVIEWS}"} 4\n`));
    assert.equal((await get('/stats?format=prometheus')).body, p.body);
    const j = JSON.parse((await get('/stats?format=json&filter=upstream_rq_total')).body) as {
      stats: unknown[];
    };
    assert.deepEqual(j.stats[0], { name: `cluster.${REVIEWS}.upstream_rq_total`, value: 4 });
    assert.equal((await get('/stats?filter=(')).status, 400);
    assert.equal((await get('/stats?format=xml')).status, 400);
    assert.equal((await get('/reset_counters', 'POST')).body, 'OK\n');
    assert.equal(stats.value(`cluster.${REVIEWS}.upstream_rq_total`), 0);
  });

  test('/server_info and /listeners', async () => {
    const info = JSON.parse((await get('/server_info')).body) as Record<string, unknown>;
    assert.equal(info.version, 'trellis/test');
    assert.equal(info.state, 'LIVE');
    assert.deepEqual(info.node, { id: 'sidecar~10.1.0.9~a.default~default.svc.cluster.local' });
    assert.match(info.uptime_current_epoch as string, /^\d+s$/);
    const l = await get('/listeners');
    const first = [...config.listeners.keys()].sort()[0] as string;
    assert.ok(l.body.split('\n')[0]?.startsWith(`${first}::`), l.body);
  });

  test('/logging lists on GET, changes on POST, 404 with usage for a bad name or level', async () => {
    assert.equal(
      (await get('/logging')).body,
      'active loggers:\n  admin: info\n  http: warning\n  upstream: info\n',
    );
    assert.equal((await get('/logging?level=debug')).status, 405);
    assert.equal((await get('/logging?upstream=trace', 'POST')).status, 200);
    assert.equal(logger.map.get('upstream'), 'trace');
    assert.equal(logger.map.get('admin'), 'info');
    const all = await get('/logging?level=error', 'POST');
    assert.equal(all.body, 'active loggers:\n  admin: error\n  http: error\n  upstream: error\n');
    await get('/logging?paths=admin:debug,http:critical', 'POST');
    assert.equal(logger.map.get('admin'), 'debug');
    assert.equal(logger.map.get('http'), 'critical');
    const bad = await get('/logging?nosuch=debug', 'POST');
    assert.equal(bad.status, 404);
    assert.ok(bad.body.startsWith('usage: /logging?<name>=<level> (change single level)\n'));
    assert.equal((await get('/logging?admin=loud', 'POST')).status, 404);
  });

  test('/drain_listeners passes its options; skip_exit needs graceful', async () => {
    assert.equal((await get('/drain_listeners?graceful&inboundonly', 'POST')).body, 'OK\n');
    assert.deepEqual(drains, [{ graceful: true, inboundOnly: true, skipExit: false }]);
    assert.equal((await get('/drain_listeners?skip_exit', 'POST')).status, 400);
    assert.equal(drains.length, 1);
  });

  test('/quitquitquit answers OK, then calls the shutdown hook', async () => {
    // The hook tears the server down at once, as an exiting process would: the client must
    // still have its whole answer.
    onShutdown = () => {
      void server.close();
    };
    const r = await fetch(`${base}/quitquitquit`, { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'OK\n');
    for (let k = 0; k < 100 && shutdowns === 0; k++)
      await new Promise((res) => setTimeout(res, 10));
    assert.equal(shutdowns, 1);
  });
});

describe('admin server lifecycle', () => {
  test('close ends keep-alive connections; a taken port is an error', async () => {
    const s = new AdminServer(
      { config: () => goldenConfig(), stats: new StatsStore(), state: () => 'LIVE' },
      { port: 0, healthPort: null },
    );
    const { adminPort, healthPort } = await s.start();
    assert.equal(healthPort, undefined);
    const r = await fetch(`http://127.0.0.1:${adminPort}/ready`, {
      headers: { connection: 'keep-alive' },
    });
    assert.equal(await r.text(), 'LIVE\n');
    const clash = new AdminServer(
      { config: () => goldenConfig(), stats: new StatsStore(), state: () => 'LIVE' },
      { port: adminPort, healthPort: null },
    );
    await assert.rejects(clash.start(), /EADDRINUSE/);
    await s.close();
    await assert.rejects(fetch(`http://127.0.0.1:${adminPort}/ready`));
  });

  test('request() answers without a socket', async () => {
    const s = new AdminServer({
      config: () => goldenConfig(),
      stats: new StatsStore(),
      state: () => 'PRE_INITIALIZING',
    });
    assert.deepEqual(await s.request('GET', '/ready'), { status: 503, body: 'PRE_INITIALIZING\n' });
  });
});
