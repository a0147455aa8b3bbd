// The composition root of the control plane (istiod's role): the config store feeds the
// registry controller; each debounced snapshot goes to translation and is pushed over xDS to
// the proxies whose view it changed; a monitoring server shows metrics and debug pages.
import { hostname } from 'node:os';
import { MetricsRegistry, errorMessage, type Histogram } from '@trellis/core';
import { TYPE_URL, shortName } from '@trellis/envoy';
import type { ConfigStore } from '@trellis/config';
import type { KubeObject } from '@trellis/api';
import {
  RegistryController,
  affectsProxy,
  type MeshOptions,
  type Snapshot,
  type SnapshotDiff,
} from '@trellis/registry';
import type { TranslateOptions } from '@trellis/translate';
import {
  XdsServer,
  type ConnectionStatus,
  type KeepaliveOptions,
  type ProxyInfo,
} from '@trellis/xds-server';
import { configDump } from './config-dump.js';
import {
  startMonitoringServer,
  type DebugProvider,
  type MonitoringServer,
} from './monitoring-server.js';
import { syncStatuses } from './sync-status.js';
import { TranslationSource } from './translation-source.js';

export interface ControlPlaneOptions {
  readonly store: ConfigStore;
  /** xDS listen address, `host:port` (default 127.0.0.1:15010; port 0 picks one). */
  readonly xdsAddress?: string;
  /** Monitoring listen host and port (default 127.0.0.1:15014; port 0 picks one). */
  readonly monitoringHost?: string;
  readonly monitoringPort?: number;
  readonly mesh?: Partial<MeshOptions>;
  /**
   * Debounce of config changes (Istio: 100 ms quiet, 10 s max); `eds: false` pushes
   * endpoint-only changes at once (Istio's PILOT_ENABLE_EDS_DEBOUNCE=false).
   */
  readonly debounce?: {
    readonly quietMs?: number;
    readonly maxMs?: number;
    readonly eds?: boolean;
  };
  readonly translate?: TranslateOptions;
  readonly keepalive?: KeepaliveOptions;
  /** Cluster id reported for proxies that do not send one. */
  readonly clusterId?: string;
  readonly log?: (
    level: 'debug' | 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ) => void;
}

/** Seconds buckets for push and convergence times (Istio's). */
const TIME_BUCKETS = [0.01, 0.1, 0.5, 1, 3, 5, 10, 20, 30];

export class ControlPlane {
  readonly metrics = new MetricsRegistry();
  readonly source: TranslationSource;
  readonly xds: XdsServer;
  readonly #controller: RegistryController;
  readonly #opts: ControlPlaneOptions;
  readonly #convergence: Histogram;
  readonly #triggers;
  /** When the oldest change not yet acknowledged by each proxy (node id) happened. */
  readonly #pending = new Map<string, number>();
  readonly #id = `trellis-${hostname()}`;
  #monitoring: MonitoringServer | undefined;
  #xdsPort = 0;
  #ready = false;
  #lastPush = 0;

  private constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.source = new TranslationSource(opts.translate ?? {});
    const log = opts.log ?? (() => {});
    if (opts.log) {
      this.source.onSecretWarning = (m) => log('warn', m);
      this.source.onGatewayWarning = (m) => log('warn', m);
      this.source.onEncodeError = (m) => log('error', m);
    }
    this.xds = new XdsServer({
      source: this.source,
      controlPlaneId: this.#id,
      ...(opts.keepalive ? { keepalive: opts.keepalive } : {}),
      log,
      hooks: {
        onAck: (proxy) => this.#onAck(proxy),
        onNack: (proxy, typeUrl, nack) =>
          log('warn', 'proxy rejected config', {
            proxy: proxy.id,
            type: shortName(typeUrl),
            version: nack.version,
            error: nack.message,
          }),
        onDisconnect: (status) => this.#onDisconnect(status),
      },
    });
    this.#controller = new RegistryController({
      store: opts.store,
      ...(opts.mesh ? { mesh: opts.mesh } : {}),
      ...(opts.debounce ? { debounce: opts.debounce } : {}),
      onSnapshot: (snapshot, diff) => this.#onSnapshot(snapshot, diff),
      onError: (e) => log('warn', 'config watch failed; retrying', { error: errorMessage(e) }),
    });
    this.#convergence = this.metrics.histogram(
      'pilot_proxy_convergence_time',
      'Delay in seconds between a config change and a proxy acknowledging all the configuration it required.',
      [],
      TIME_BUCKETS,
    );
    this.#triggers = this.metrics.counter(
      'pilot_push_triggers',
      'Total number of times a push was triggered, by type.',
      ['type'],
    );
    this.#registerMetrics();
  }

  /** Starts watching the store, serving xDS and the monitoring pages. */
  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    try {
      await cp.#controller.start();
      cp.#xdsPort = await cp.xds.listen(opts.xdsAddress ?? '127.0.0.1:15010');
      cp.#monitoring = await startMonitoringServer(
        cp.#debugProvider(),
        opts.monitoringHost ?? '127.0.0.1',
        opts.monitoringPort ?? 15014,
      );
      cp.#ready = true;
      return cp;
    } catch (e) {
      await cp.close();
      throw e;
    }
  }

  get xdsPort(): number {
    return this.#xdsPort;
  }

  get monitoringPort(): number {
    return this.#monitoring?.port ?? 0;
  }

  get snapshot(): Snapshot | undefined {
    return this.source.snapshot;
  }

  /** The config controller's counters: snapshots built, watch events, lists, watch errors. */
  get controllerStats(): { snapshots: number; events: number; lists: number; watchErrors: number } {
    return this.#controller.stats;
  }

  /** Resolves once pending config changes are built and pushed. */
  async whenIdle(): Promise<void> {
    await this.#controller.whenIdle();
  }

  async close(): Promise<void> {
    this.#ready = false;
    await this.#controller.close();
    await this.#monitoring?.close();
    await this.xds.close(1_000);
  }

  #onSnapshot(snapshot: Snapshot, diff: SnapshotDiff): Promise<void> {
    const first = this.source.snapshot === undefined;
    this.source.setSnapshot(snapshot, {
      endpointsOnly: diff.scope === 'eds',
      endpointHosts: diff.endpoints.map((e) => e.hostname),
      kinds: diff.changed.map((c) => c.kind),
      workloads: diff.workloads,
    });
    if (first || diff.scope === 'none') return Promise.resolve();
    const now = Date.now();
    this.#triggers.inc({ type: diff.scope === 'eds' ? 'endpoint' : 'config' });
    const full: string[] = [];
    const eds: string[] = [];
    const sds: string[] = [];
    for (const p of this.xds.proxies()) {
      const workload = snapshot.workload('Pod', p.namespace, p.podName);
      const effect = affectsProxy(diff, {
        namespace: p.namespace,
        type: p.type === 'router' ? 'router' : 'sidecar',
        ...(workload
          ? {
              workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name },
            }
          : {}),
      });
      if (effect === 'none') continue;
      if (effect === 'eds') eds.push(p.nodeId);
      else if (effect === 'sds') sds.push(p.nodeId);
      else full.push(p.nodeId);
      if (!this.#pending.has(p.nodeId)) this.#pending.set(p.nodeId, now);
    }
    this.#lastPush = now;
    const pushes: Promise<void>[] = [];
    if (full.length)
      pushes.push(
        this.xds.push({ proxies: full, typeUrls: 'all', reason: `config ${snapshot.version}` }),
      );
    if (eds.length)
      pushes.push(
        this.xds.push({
          proxies: eds,
          typeUrls: [TYPE_URL.ClusterLoadAssignment],
          reason: `endpoints ${snapshot.version}`,
        }),
      );
    if (sds.length)
      pushes.push(
        this.xds.push({
          proxies: sds,
          typeUrls: [TYPE_URL.Secret],
          reason: `secrets ${snapshot.version}`,
        }),
      );
    return Promise.all(pushes).then(() => undefined);
  }

  /**
   * A proxy has converged when every type it was sent since the change is acknowledged at the
   * version sent (types whose content did not change are not re-sent, so they do not count).
   */
  #onAck(proxy: ProxyInfo): void {
    const since = this.#pending.get(proxy.nodeId);
    if (since === undefined || !this.xds.convergedSince(proxy.nodeId, since)) return;
    this.#pending.delete(proxy.nodeId);
    this.#convergence.observe({}, (Date.now() - since) / 1000);
  }

  #onDisconnect(status: ConnectionStatus): void {
    if (this.xds.hasProxy(status.proxy.nodeId)) return;
    this.source.forget(status.proxy.nodeId);
    this.#pending.delete(status.proxy.nodeId);
  }

  #registerMetrics(): void {
    const m = this.metrics;
    const stats = this.xds.stats;
    const byShort = (map: ReadonlyMap<string, number>) => () =>
      [...map].map(([t, v]) => [{ type: shortName(t).toLowerCase() }, v] as const);
    m.gaugeFrom(
      'pilot_xds',
      'Number of proxies connected to this control plane over xDS.',
      [],
      () => [[{}, this.xds.connectedCount]],
    );
    m.counterFrom(
      'pilot_xds_pushes',
      'Pushes (responses) sent, by xDS type.',
      ['type'],
      byShort(stats.pushes),
    );
    m.counterFrom(
      'pilot_total_xds_rejects',
      'Configuration rejected (NACKed) by proxies, by xDS type.',
      ['type'],
      byShort(stats.nacks),
    );
    m.counterFrom(
      'pilot_xds_acks',
      'Configuration acknowledged by proxies, by xDS type.',
      ['type'],
      byShort(stats.acks),
    );
    m.counterFrom(
      'pilot_xds_stale_nonces',
      'Requests ignored because their nonce was stale.',
      [],
      () => [[{}, stats.staleNonces]],
    );
    m.counterFrom(
      'pilot_xds_rejected_streams',
      'xDS streams refused (malformed node or request).',
      [],
      () => [[{}, stats.rejectedStreams]],
    );
    m.counterFrom(
      'pilot_xds_generate_errors',
      'Errors generating configuration for a proxy.',
      [],
      () => [[{}, stats.sourceErrors]],
    );
    m.counterFrom(
      'pilot_xds_resources_generated',
      'Resources generated by translation, by xDS type.',
      ['type'],
      byShort(this.source.generated),
    );
    m.counterFrom(
      'pilot_xds_shared_scope_builds',
      'Outbound configuration parts built for a sidecar scope.',
      [],
      () => [[{}, this.source.stats.sharedBuilds]],
    );
    m.counterFrom(
      'pilot_xds_shared_scope_hits',
      'Outbound parts reused by another sidecar of the same scope.',
      [],
      () => [[{}, this.source.stats.sharedHits]],
    );
    m.gaugeFrom('pilot_services', 'Services known to the control plane.', [], () => [
      [{}, this.snapshot?.services.length ?? 0],
    ]);
    m.gaugeFrom('pilot_virt_services', 'VirtualServices known to the control plane.', [], () => [
      [{}, this.snapshot?.virtualServices.length ?? 0],
    ]);
    m.register(stats.pushTime);
    m.gaugeFrom('pilot_config_problems', 'Objects the registry could not use.', [], () => [
      [{}, this.snapshot?.problems.length ?? 0],
    ]);
    m.gaugeFrom('pilot_last_push_timestamp_seconds', 'Time of the last push.', [], () => [
      [{}, this.#lastPush / 1000],
    ]);
    // The process's memory, under the names Prometheus' Node.js client uses.
    m.gaugeFrom('process_resident_memory_bytes', 'Resident memory size in bytes.', [], () => [
      [{}, process.memoryUsage.rss()],
    ]);
    m.gaugeFrom(
      'nodejs_heap_size_used_bytes',
      'V8 heap in use (JavaScript objects), in bytes.',
      [],
      () => [[{}, process.memoryUsage().heapUsed]],
    );
    m.gaugeFrom('nodejs_heap_size_total_bytes', 'V8 heap reserved, in bytes.', [], () => [
      [{}, process.memoryUsage().heapTotal],
    ]);
    m.gaugeFrom(
      'nodejs_external_memory_bytes',
      'Memory outside the V8 heap held by JavaScript objects (Buffers), in bytes.',
      [],
      () => [[{}, process.memoryUsage().external]],
    );
  }

  #debugProvider(): DebugProvider {
    return {
      ready: () => this.#ready,
      metrics: () => this.metrics.render(),
      syncz: () => syncStatuses(this.xds.connections(), this.#opts.clusterId ?? 'Kubernetes'),
      // Secrets hold private keys: configz names them, without their data.
      configz: () =>
        (this.snapshot?.objects ?? []).map((o) =>
          o.kind === 'Secret' && o.apiVersion === 'v1'
            ? { apiVersion: o.apiVersion, kind: o.kind, metadata: secretMetadata(o.metadata) }
            : o,
        ),
      registryz: () => ({
        version: this.snapshot?.version,
        services: (this.snapshot?.services ?? []).map((s) => ({
          ...s,
          endpoints: this.snapshot?.endpoints(s) ?? [],
        })),
        problems: this.snapshot?.problems ?? [],
      }),
      proxyIds: () => [...new Set(this.xds.connections().map((c) => c.proxy.id))].sort(),
      configDump: (id) => {
        const conn = this.xds.connections().find((c) => c.proxy.id === id);
        if (!conn) return undefined;
        const g = this.source.generatedFor(conn.proxy.nodeId);
        const of = (t: string) => g?.byType.get(t) ?? [];
        return configDump(
          {
            version: g?.version ?? '',
            listeners: of(TYPE_URL.Listener),
            routes: of(TYPE_URL.RouteConfiguration),
            clusters: of(TYPE_URL.Cluster),
            endpoints: of(TYPE_URL.ClusterLoadAssignment),
            secrets: of(TYPE_URL.Secret),
          },
          new Date(conn.connectedAt).toISOString(),
        );
      },
    };
  }
}

/** A Secret's metadata for debug pages: kubectl's last-applied copy would repeat its data. */
function secretMetadata(m: KubeObject['metadata']): KubeObject['metadata'] {
  const { [LAST_APPLIED]: _copy, ...annotations } = m.annotations ?? {};
  return { ...m, annotations };
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
