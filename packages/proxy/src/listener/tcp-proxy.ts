// envoy.filters.network.tcp_proxy: proxies a downstream connection's bytes to one upstream
// host of a cluster (or of one of weighted_clusters), both ways, with half-close.
//
// Follows Envoy's TcpProxy filter: downstream reads stay disabled until the upstream connects;
// a missing cluster closes the connection with NC (downstream_cx_no_route), no host with UH,
// circuit-breaker overflow with UO; each failed connect sets UF and is retried up to
// max_connect_attempts (default 1), after which URX is set. Connection closes carry Envoy's
// local close reasons (`tcp_initializion_failure:<reason>` — sic —, `tcp_session_idle_timeout`,
// `max_connection_duration_reached`). A FIN from either side is forwarded as a FIN (the other
// direction keeps flowing); a close or reset of one side closes (or resets) the other. The
// idle timeout (default 1h, 0 disables) restarts on bytes in either direction.
import type { Socket } from 'node:net';
import type { AccessLog, TcpProxy } from '@trellis/envoy';
import { errorMessage, systemTimers, type TimerApi } from '@trellis/core';
import type { Counter, StatsScope } from '../observability/stats-api.js';
import { RESPONSE_FLAGS, type StreamInfo } from '../stream-info.js';
import {
  UpstreamConnectError,
  type ClusterManagerApi,
  type UpstreamCluster,
} from '../upstream/api.js';
import { durationMs, isValidDuration } from '../duration.js';
import { formatAddress, normalizeIp } from './ip.js';
import type { ConnectionHandler, ConnectionInfo } from './types.js';

/** Envoy's default tcp_proxy idle_timeout. */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 60 * 60 * 1000;
/** Envoy's default per_connection_buffer_limit_bytes. */
export const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;

/** Envoy's TcpProxy::UpstreamFailureReason, as it appears in `tcp_initializion_failure:<n>`. */
export const UPSTREAM_FAILURE_REASON = {
  CONNECT_FAILED: 0,
  NO_HEALTHY_UPSTREAM: 1,
  RESOURCE_LIMIT_EXCEEDED: 2,
  NO_ROUTE: 3,
} as const;

/** Envoy's local close reasons used by tcp_proxy. */
export const TCP_CLOSE_REASONS = {
  initializationFailure: (reason: number) => `tcp_initializion_failure:${reason}`,
  idleTimeout: 'tcp_session_idle_timeout',
  maxConnectionDuration: 'max_connection_duration_reached',
} as const;

/** What access loggers and metrics get with a finished TCP connection. */
export interface TcpProxyLogContext {
  readonly config: TcpProxy;
  /** The tcp_proxy's own access_log entries. */
  readonly accessLog: readonly AccessLog[];
  readonly connection: ConnectionInfo;
}

export interface TcpProxyDeps {
  readonly clusterManager: ClusterManagerApi;
  /** The root scope: `tcp.<stat_prefix>.*` and `cluster.<name>.*` are recorded below it. */
  readonly stats: StatsScope;
  /** Called once the upstream connection is established (Istio's connections_opened). */
  readonly onUpstreamConnected?: (info: StreamInfo, ctx: TcpProxyLogContext) => void;
  /** Called once per connection when both sides are closed (access logs, Istio's TCP metrics). */
  readonly onConnectionComplete?: (info: StreamInfo, ctx: TcpProxyLogContext) => void;
  /** Timers for the idle timeout and max connection duration (tests inject ManualTimers). */
  readonly timers?: TimerApi;
  /** In [0, 1): picks among weighted_clusters. */
  readonly random?: () => number;
}

/** Every problem with a TcpProxy config, each with its field path under `path`. */
export function checkTcpProxy(config: TcpProxy, path = 'typedConfig'): string[] {
  const problems: string[] = [];
  if (!config.statPrefix) problems.push(`${path}.statPrefix: must not be empty`);
  const weighted = config.weightedClusters?.clusters ?? [];
  if (!config.cluster && weighted.length === 0)
    problems.push(`${path}: one of cluster or weightedClusters is required`);
  if (!config.cluster) {
    weighted.forEach((c, i) => {
      if (!c.name) problems.push(`${path}.weightedClusters.clusters[${i}].name: must not be empty`);
      if (!Number.isInteger(c.weight) || (c.weight ?? 0) < 1)
        problems.push(`${path}.weightedClusters.clusters[${i}].weight: must be at least 1`);
      if (c.metadataMatch !== undefined)
        problems.push(`${path}.weightedClusters.clusters[${i}].metadataMatch: not supported`);
    });
  }
  if (config.maxConnectAttempts !== undefined && !(config.maxConnectAttempts >= 1))
    problems.push(`${path}.maxConnectAttempts: must be at least 1`);
  for (const f of ['idleTimeout', 'maxDownstreamConnectionDuration'] as const) {
    const d = config[f];
    if (d !== undefined && !isValidDuration(d))
      problems.push(`${path}.${f}: malformed duration '${d}'`);
  }
  if (config.metadataMatch !== undefined) problems.push(`${path}.metadataMatch: not supported`);
  if (config.accessLogFlushInterval !== undefined)
    problems.push(`${path}.accessLogFlushInterval: not supported`);
  return problems;
}

interface TcpProxyStats {
  readonly cxTotal: Counter;
  readonly noRoute: Counter;
  readonly rxBytes: Counter;
  readonly txBytes: Counter;
  readonly pausedReading: Counter;
  readonly resumedReading: Counter;
  readonly idleTimeout: Counter;
  readonly maxDuration: Counter;
}

interface CompiledTcpProxy {
  readonly config: TcpProxy;
  readonly accessLog: readonly AccessLog[];
  readonly stats: TcpProxyStats;
  readonly pickCluster: () => string;
  readonly idleTimeoutMs: number | undefined;
  readonly maxDurationMs: number | undefined;
  readonly maxConnectAttempts: number;
}

function compile(config: TcpProxy, deps: TcpProxyDeps): CompiledTcpProxy {
  const s = deps.stats.scope('tcp').scope(config.statPrefix ?? '');
  const random = deps.random ?? Math.random;
  let pickCluster: () => string;
  if (config.cluster) {
    const name = config.cluster;
    pickCluster = () => name;
  } else {
    const entries = (config.weightedClusters?.clusters ?? []).map((c) => ({
      name: c.name ?? '',
      weight: c.weight ?? 0,
    }));
    const total = entries.reduce((n, e) => n + e.weight, 0);
    pickCluster = () => {
      let r = Math.floor(random() * total);
      for (const e of entries) {
        if (r < e.weight) return e.name;
        r -= e.weight;
      }
      return entries[entries.length - 1]?.name ?? '';
    };
  }
  const idle =
    config.idleTimeout === undefined
      ? DEFAULT_TCP_IDLE_TIMEOUT_MS
      : (durationMs(config.idleTimeout) ?? 0);
  const maxDuration = durationMs(config.maxDownstreamConnectionDuration) ?? 0;
  return {
    config,
    accessLog: config.accessLog ?? [],
    stats: {
      cxTotal: s.counter('downstream_cx_total'),
      noRoute: s.counter('downstream_cx_no_route'),
      rxBytes: s.counter('downstream_cx_rx_bytes_total'),
      txBytes: s.counter('downstream_cx_tx_bytes_total'),
      pausedReading: s.counter('downstream_flow_control_paused_reading_total'),
      resumedReading: s.counter('downstream_flow_control_resumed_reading_total'),
      idleTimeout: s.counter('idle_timeout'),
      maxDuration: s.counter('max_downstream_connection_duration'),
    },
    pickCluster,
    idleTimeoutMs: idle > 0 ? idle : undefined,
    maxDurationMs: maxDuration > 0 ? maxDuration : undefined,
    maxConnectAttempts: config.maxConnectAttempts ?? 1,
  };
}

/**
 * Builds the tcp_proxy handler of a filter chain. Throws with every problem when the config
 * is invalid.
 */
export function createTcpProxy(config: TcpProxy, deps: TcpProxyDeps): ConnectionHandler {
  const problems = checkTcpProxy(config);
  if (problems.length > 0) throw new Error(`tcp_proxy: ${problems.join('; ')}`);
  const c = compile(config, deps);
  return (socket, conn) => {
    new TcpProxySession(c, deps, socket, conn).start();
  };
}

const noop = (): void => {};

/** Resets (RST) a TCP socket, or destroys a socket that cannot be reset (a pipe). */
function resetSocket(s: Socket): void {
  if (s.destroyed) return;
  // After end() the FIN is on its way: a plain destroy. (On Node 20, resetAndDestroy() after end()
  // can leave the process spinning at 100% CPU when it later exits on its own.)
  if (s.writableEnded) {
    s.destroy();
    return;
  }
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** Envoy's FlushWrite close: sends what is buffered, then closes. */
function closeAfterFlush(s: Socket): void {
  if (s.destroyed) return;
  if (!s.writableEnded) s.end();
  if (s.writableFinished) s.destroy();
  else s.once('finish', () => s.destroy());
}

/** One proxied connection. */
class TcpProxySession {
  readonly #c: CompiledTcpProxy;
  readonly #deps: TcpProxyDeps;
  readonly #timers: TimerApi;
  readonly #down: Socket;
  readonly #conn: ConnectionInfo;
  readonly #info: StreamInfo;
  readonly #limit: number;
  #up: Socket | undefined;
  #attempts = 0;
  #downClosed = false;
  #upClosed = false;
  #done = false;
  #downPaused = false;
  #upPaused = false;
  #lastActivity = 0;
  #idleTimer: unknown;
  #durationTimer: unknown;

  constructor(c: CompiledTcpProxy, deps: TcpProxyDeps, down: Socket, conn: ConnectionInfo) {
    this.#c = c;
    this.#deps = deps;
    this.#timers = deps.timers ?? systemTimers;
    this.#down = down;
    this.#conn = conn;
    this.#info = conn.streamInfo;
    this.#limit = conn.listener.perConnectionBufferLimitBytes ?? DEFAULT_BUFFER_LIMIT_BYTES;
  }

  start(): void {
    this.#c.stats.cxTotal.inc();
    this.#down.on('error', noop);
    this.#down.once('close', this.#onDownClose);
    if (this.#c.maxDurationMs !== undefined) {
      this.#durationTimer = this.#timers.setTimeout(this.#onMaxDuration, this.#c.maxDurationMs);
    }
    this.#connect();
  }

  #ctx(): TcpProxyLogContext {
    return { config: this.#c.config, accessLog: this.#c.accessLog, connection: this.#conn };
  }

  #initFailure(reason: number): void {
    this.#info.downstreamLocalCloseReason = TCP_CLOSE_REASONS.initializationFailure(reason);
    this.#down.destroy();
  }

  #connect(): void {
    if (this.#downClosed) return;
    const info = this.#info;
    const name = this.#c.pickCluster();
    const cluster = this.#deps.clusterManager.get(name);
    if (!cluster) {
      this.#c.stats.noRoute.inc();
      info.responseFlags.add(RESPONSE_FLAGS.NO_CLUSTER_FOUND);
      this.#initFailure(UPSTREAM_FAILURE_REASON.NO_ROUTE);
      return;
    }
    info.upstreamCluster = cluster.name;
    if (!cluster.resources.canCreateConnection()) {
      info.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_OVERFLOW);
      cluster.stats.counter('upstream_cx_overflow').inc();
      this.#initFailure(UPSTREAM_FAILURE_REASON.RESOURCE_LIMIT_EXCEEDED);
      return;
    }
    if (this.#attempts >= this.#c.maxConnectAttempts) {
      info.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_RETRY_LIMIT_EXCEEDED);
      cluster.stats.counter('upstream_cx_connect_attempts_exceeded').inc();
      this.#initFailure(UPSTREAM_FAILURE_REASON.CONNECT_FAILED);
      return;
    }
    const host = cluster.choose({ originalDestination: this.#conn.local });
    if (!host) {
      // (cluster.<name>.upstream_cx_none_healthy is counted by the cluster's choose().)
      info.responseFlags.add(RESPONSE_FLAGS.NO_HEALTHY_UPSTREAM);
      this.#initFailure(UPSTREAM_FAILURE_REASON.NO_HEALTHY_UPSTREAM);
      return;
    }
    this.#attempts++;
    info.attemptCount = this.#attempts;
    info.upstreamHost = host.id;
    cluster.connect(host).then(
      (up) => this.#onConnected(up, cluster),
      (err: unknown) => this.#onConnectFailed(err),
    );
  }

  #onConnectFailed(err: unknown): void {
    if (this.#downClosed) return;
    this.#info.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_CONNECTION_FAILURE);
    this.#info.upstreamTransportFailureReason =
      err instanceof UpstreamConnectError ? err.reason : errorMessage(err);
    this.#connect();
  }

  #onConnected(up: Socket, cluster: UpstreamCluster): void {
    up.on('error', noop);
    if (this.#downClosed || this.#done) {
      up.destroy();
      return;
    }
    if (up.destroyed) {
      // Closed between connect and now: as a connect failure.
      this.#onConnectFailed(new UpstreamConnectError('connection closed'));
      return;
    }
    this.#up = up;
    // Half-close: a FIN from the host must not end our writes to it.
    up.allowHalfOpen = true;
    this.#info.upstreamCluster = cluster.name;
    if (up.localAddress !== undefined && up.localPort !== undefined)
      this.#info.upstreamLocalAddress = formatAddress(normalizeIp(up.localAddress), up.localPort);
    up.on('data', this.#onUpData);
    up.on('end', this.#onUpEnd);
    up.on('drain', this.#onUpDrain);
    up.once('close', this.#onUpClose);
    this.#deps.onUpstreamConnected?.(this.#info, this.#ctx());
    this.#lastActivity = this.#timers.now();
    if (this.#c.idleTimeoutMs !== undefined) {
      this.#idleTimer = this.#timers.setTimeout(this.#onIdleCheck, this.#c.idleTimeoutMs);
    }
    const down = this.#down;
    down.on('data', this.#onDownData);
    down.on('end', this.#onDownEnd);
    down.on('drain', this.#onDownDrain);
    down.resume();
  }

  readonly #onDownData = (chunk: Buffer): void => {
    const up = this.#up;
    if (!up) return;
    this.#info.bytesReceived += chunk.length;
    this.#c.stats.rxBytes.inc(chunk.length);
    this.#lastActivity = this.#timers.now();
    if (!up.write(chunk) && up.writableLength >= this.#limit && !this.#downPaused) {
      this.#downPaused = true;
      this.#down.pause();
      this.#c.stats.pausedReading.inc();
    }
  };

  readonly #onUpDrain = (): void => {
    if (this.#downPaused) {
      this.#downPaused = false;
      this.#down.resume();
      this.#c.stats.resumedReading.inc();
    }
  };

  readonly #onUpData = (chunk: Buffer): void => {
    this.#info.bytesSent += chunk.length;
    this.#c.stats.txBytes.inc(chunk.length);
    this.#lastActivity = this.#timers.now();
    if (!this.#down.write(chunk) && this.#down.writableLength >= this.#limit && !this.#upPaused) {
      this.#upPaused = true;
      this.#up?.pause();
    }
  };

  readonly #onDownDrain = (): void => {
    if (this.#upPaused) {
      this.#upPaused = false;
      this.#up?.resume();
    }
  };

  /** FIN from downstream: half-close toward the host. */
  readonly #onDownEnd = (): void => {
    const up = this.#up;
    if (up && !up.writableEnded && !up.destroyed) up.end();
  };

  /** FIN from the host: half-close toward downstream. */
  readonly #onUpEnd = (): void => {
    if (!this.#down.writableEnded && !this.#down.destroyed) this.#down.end();
  };

  readonly #onDownClose = (hadError: boolean): void => {
    this.#downClosed = true;
    const up = this.#up;
    if (up && !this.#upClosed) {
      if (hadError) resetSocket(up);
      else closeAfterFlush(up);
    }
    this.#maybeComplete();
  };

  readonly #onUpClose = (hadError: boolean): void => {
    this.#upClosed = true;
    if (!this.#downClosed) {
      if (hadError) resetSocket(this.#down);
      else closeAfterFlush(this.#down);
    }
    this.#maybeComplete();
  };

  readonly #onIdleCheck = (): void => {
    this.#idleTimer = undefined;
    const timeout = this.#c.idleTimeoutMs;
    if (timeout === undefined || this.#done) return;
    const idle = this.#timers.now() - this.#lastActivity;
    if (idle < timeout) {
      this.#idleTimer = this.#timers.setTimeout(this.#onIdleCheck, timeout - idle);
      return;
    }
    this.#c.stats.idleTimeout.inc();
    this.#info.downstreamLocalCloseReason = TCP_CLOSE_REASONS.idleTimeout;
    this.#down.destroy();
    this.#up?.destroy();
  };

  readonly #onMaxDuration = (): void => {
    this.#durationTimer = undefined;
    if (this.#done) return;
    this.#info.responseFlags.add(RESPONSE_FLAGS.DURATION_TIMEOUT);
    this.#c.stats.maxDuration.inc();
    this.#info.downstreamLocalCloseReason = TCP_CLOSE_REASONS.maxConnectionDuration;
    this.#down.destroy();
    this.#up?.destroy();
  };

  #maybeComplete(): void {
    if (this.#done || !this.#downClosed) return;
    if (this.#up && !this.#upClosed) return;
    this.#done = true;
    if (this.#idleTimer !== undefined) this.#timers.clearTimeout(this.#idleTimer);
    if (this.#durationTimer !== undefined) this.#timers.clearTimeout(this.#durationTimer);
    this.#info.durationMs = performance.now() - this.#info.startMono;
    this.#deps.onConnectionComplete?.(this.#info, this.#ctx());
  }
}
