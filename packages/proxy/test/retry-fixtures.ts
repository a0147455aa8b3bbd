// Fixtures of the retry / timeout / fault / mirror suites: a manual clock (TimerApi whose time
// only moves when a test advances it, so timer-driven behaviour is tested without sleeping) and
// a proxy harness like http-fixtures' startProxy that takes the clock, the random source and a
// shadow-outcome callback.
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TimerApi } from '@trellis/core';
import type { Cluster, HttpConnectionManager, RouteConfiguration } from '@trellis/envoy';
import { HttpConnectionManagerImpl } from '../src/http/index.js';
import { ClusterManager } from '../src/upstream/index.js';
import { FakeStats, hcmConfig, proxyConfig, type Completed } from './http-fixtures.js';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A TimerApi driven by hand: `advance(ms)` runs the timers due, in order. */
export class ManualClock implements TimerApi {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, Pending>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Timers pending, with their due times relative to now. */
  pending(): number[] {
    return [...this.timers.values()].map((p) => p.at - this.t).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running every timer that falls due (including new ones). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, Pending] | undefined;
      for (const e of this.timers)
        if (
          e[1].at <= end &&
          (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))
        )
          next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

export interface TimedProxy {
  readonly port: number;
  readonly stats: FakeStats;
  readonly cm: ClusterManager;
  readonly completed: Completed[];
  readonly shadows: { cluster: string; outcome: string }[];
  close(): Promise<void>;
}

export interface TimedProxyOptions {
  readonly clusters: Cluster[];
  readonly routes: RouteConfiguration[];
  readonly hcm?: HttpConnectionManager;
  readonly timers?: TimerApi;
  readonly random?: () => number;
}

/** A proxy on 127.0.0.1:0 with the given clock and random source. */
export async function startTimedProxy(o: TimedProxyOptions): Promise<TimedProxy> {
  const stats = new FakeStats();
  const cm = new ClusterManager({ stats });
  const config = proxyConfig(o.clusters, [], o.routes);
  await cm.update(config);
  const completed: Completed[] = [];
  const shadows: { cluster: string; outcome: string }[] = [];
  const hcm = new HttpConnectionManagerImpl({
    config: o.hcm ?? hcmConfig(),
    clusterManager: cm,
    routeConfig: (name) => config.routes.get(name),
    stats,
    onStreamComplete: (info, headers) => void completed.push({ info, headers }),
    onShadowDone: (cluster, outcome) => void shadows.push({ cluster, outcome }),
    ...(o.timers ? { timers: o.timers } : {}),
    ...(o.random ? { random: o.random } : {}),
  });
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    hcm.handleConnection(socket, { listenerName: 'test', direction: 'outbound' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    cm,
    completed,
    shadows,
    close: () =>
      new Promise<void>((r) => {
        hcm.close();
        cm.close();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An HCM config with the fault filter before the router (as Istio generates it). */
export function hcmWithFault(extra: Partial<HttpConnectionManager> = {}): HttpConnectionManager {
  const base = hcmConfig(extra);
  return {
    ...base,
    httpFilters: [
      {
        name: 'envoy.filters.http.fault',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
        },
      },
      ...(base.httpFilters ?? []),
    ],
  };
}

/** A port nothing listens on. */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
