// The router (Envoy's router filter) for one downstream request: route selection, the route's
// action (forward to a cluster, redirect, direct response), request/response header
// finalization, the upstream request through the cluster's connection pool with streaming
// bodies both ways (backpressure by pipe), trailers, the route timeout, Upgrade and CONNECT
// tunnels, and every local reply with its response flag and details, recorded in StreamInfo.
//
// Issue 6 slots in here: retries and per-try timeouts wrap `startUpstream` (see TODO(issue 6)
// markers), faults / CORS run as filters before `forward`, mirroring after the route is chosen,
// hash policies feed UpstreamLbContext.hash.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { TimerApi } from '@trellis/core';
import { RESPONSE_FLAGS, type ResponseFlag, type StreamInfo } from '../stream-info.js';
import type {
  ClusterManagerApi,
  DestinationAddress,
  UpstreamCluster,
  UpstreamRequestHead,
  UpstreamResetReason,
  UpstreamStream,
} from '../upstream/api.js';
import type { LbHost } from '../upstream/lb/types.js';
import type { Downstream } from './downstream.js';
import { mapTarget, type HeaderMutation } from './header-mutation.js';
import {
  formatAddress,
  headerValue,
  removeHopByHop,
  type HeaderMap,
  type RequestHeaders,
} from './headers.js';
import type { HcmStats } from './hcm-stats.js';
import {
  DETAILS,
  encodeGrpcMessage,
  httpToGrpcStatus,
  upstreamResetAfterResponseDetails,
  upstreamResetReply,
} from './local-reply.js';
import { redirectLocation, regexReplace, rewrittenPath } from './path.js';
import {
  chooseWeightedCluster,
  findRoute,
  type CompiledRoute,
  type CompiledRouteAction,
  type CompiledRouteConfig,
  type CompiledVirtualHost,
  type CompiledWeightedCluster,
  type RouteRequest,
} from './route-match.js';

/**
 * A cheap per-stream hook object (Envoy's stream filter, reduced to header callbacks) made by
 * a factory configured once per connection manager: Istio's metadata exchange and stats use it.
 */
export interface HttpStreamFilter {
  /** Request headers from downstream, after the connection manager's sanitizing. */
  onRequestHeaders?(headers: RequestHeaders): void;
  /** The request as it goes upstream, after the router's changes. */
  onUpstreamRequestHeaders?(headers: RequestHeaders): void;
  /** Response headers from upstream, before the router's changes. */
  onUpstreamResponseHeaders?(headers: HeaderMap, status: number): void;
  /** Any response (upstream or local) just before it goes downstream. */
  onResponseHeaders?(headers: HeaderMap, status: number): void;
}

export type HttpFilterFactory = (info: StreamInfo) => HttpStreamFilter | undefined;

/** What access logs and metrics read about a finished stream besides its StreamInfo. */
export interface StreamHeaders {
  /** A request header as it went upstream (`:method`, `:path`, `:authority`, `:scheme` too). */
  requestHeader(name: string): string | undefined;
  /** A response header as sent downstream. */
  responseHeader(name: string): string | undefined;
  /** A response trailer (grpc-status). */
  responseTrailer(name: string): string | undefined;
  /** The chosen upstream host's filter metadata. */
  readonly upstreamHostMetadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The upstream cluster's filter metadata. */
  readonly upstreamClusterMetadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export type StreamCompleteCallback = (info: StreamInfo, headers: StreamHeaders) => void;

/** The connection manager's settings the router reads (built once per connection manager). */
export interface RouterConfig {
  readonly clusterManager: ClusterManagerApi;
  readonly stats: HcmStats;
  /** The route configuration in force (RDS or inline), compiled. */
  routeConfig(): CompiledRouteConfig | undefined;
  readonly serverName: string;
  readonly serverHeaderTransformation: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  readonly suppressEnvoyHeaders: boolean;
  readonly via: string | undefined;
  /** HCM upgrade_configs: lower-case type → enabled. */
  readonly upgrades: ReadonlyMap<string, boolean>;
  /** The explicit HTTP proxy port: CONNECT without a connect_matcher route is routed by authority. */
  readonly explicitProxy: boolean;
  readonly streamIdleTimeoutMs: number;
  readonly alwaysSetRequestIdInResponse: boolean;
  /** proxy_100_continue: forward `expect: 100-continue` and relay upstream's 100. */
  readonly proxy100Continue: boolean;
  readonly filters: readonly HttpFilterFactory[];
  readonly onStreamComplete: StreamCompleteCallback | undefined;
  readonly random: () => number;
  readonly timers: TimerApi;
}

/** What the connection manager knows about a request besides its headers. */
export interface StreamContext {
  /** Where an ORIGINAL_DST cluster sends it (SO_ORIGINAL_DST or an explicit-proxy target). */
  readonly originalDestination: DestinationAddress | undefined;
  /** Envoy's internal request (x-envoy-internal). */
  readonly internal: boolean;
  /** `http` / `https`: x-forwarded-proto as set by the connection manager. */
  readonly forwardedProto: string;
  readonly isConnect: boolean;
  /** Lower-case Upgrade type (websocket...) of an HTTP/1.1 upgrade request. */
  readonly upgrade: string | undefined;
  readonly isGrpc: boolean;
  readonly isHead: boolean;
  /** The request carried `expect: 100-continue` (already answered unless proxy_100_continue). */
  readonly expectContinue: boolean;
}

const F = RESPONSE_FLAGS;

/** Envoy's router headers that never go upstream as sent by the client. */
const ROUTER_CONTROL_HEADERS = [
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-max-retries',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-hedge-on-per-try-timeout',
  'x-envoy-expected-rq-timeout-ms',
];

/** grpc-timeout (`1S`, `500m`, ...) in ms. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.ceil(n / 1000);
    default:
      return Math.ceil(n / 1_000_000);
  }
}

export class ActiveStream {
  private route: CompiledRoute | undefined;
  private vhost: CompiledVirtualHost | undefined;
  private weighted: CompiledWeightedCluster | undefined;
  private cluster: UpstreamCluster | undefined;
  private host: LbHost | undefined;
  private upstream: UpstreamStream | undefined;
  private readonly filters: HttpStreamFilter[] = [];
  private responseHeaders: HeaderMap | undefined;
  private responseTrailers: HeaderMap | undefined;
  private done = false;
  private downstreamEnded = false;
  private downstreamEndMono = 0;
  private upstreamStartMono = 0;
  private routeTimer: unknown;
  private idleTimer: unknown;
  private idleTimeoutMs = 0;
  private lastActivity = 0;
  private responseComplete = false;
  private tunnelUpstream: Duplex | undefined;
  private continued = false;

  constructor(
    private readonly cfg: RouterConfig,
    readonly ds: Downstream,
    readonly info: StreamInfo,
    readonly headers: RequestHeaders,
    private readonly sctx: StreamContext,
  ) {
    for (const f of cfg.filters) {
      const filter = f(info);
      if (filter) this.filters.push(filter);
    }
    ds.onAbort(() => this.onDownstreamAbort());
    ds.onComplete(() => this.complete());
  }

  /** Runs the request: filters, route, action. */
  run(): void {
    for (const f of this.filters) f.onRequestHeaders?.(this.headers);
    // No 'data' listener before the body is piped: it would start the flow and lose bytes.
    const body = this.ds.body;
    if (!body) this.onDownstreamEnd();
    else if (!this.sctx.isConnect) body.once('end', () => this.onDownstreamEnd());
    this.setIdleTimeout(this.cfg.streamIdleTimeoutMs);
    if (this.done) return;

    const rc = this.cfg.routeConfig();
    const rr: RouteRequest = {
      headers: this.headers,
      isConnect: this.sctx.isConnect,
      isGrpc: this.sctx.isGrpc,
      random: this.cfg.random,
    };
    let found = rc ? findRoute(rc, rr) : { vhost: undefined, route: undefined };
    if (!found.route && rc && this.sctx.isConnect && this.cfg.explicitProxy) {
      // Trellis's explicit proxy: a CONNECT is routed like a request for `/` on its authority.
      const saved = this.headers.path;
      this.headers.path = '/';
      found = findRoute(rc, { ...rr, isConnect: false });
      this.headers.path = saved;
    }
    this.vhost = found.vhost;
    this.route = found.route;
    const route = found.route;
    if (!route) {
      this.cfg.stats.no_route.inc();
      this.localReply(404, '', DETAILS.routeNotFound, F.NO_ROUTE_FOUND);
      return;
    }
    if (route.name !== undefined) this.info.routeName = route.name;
    // TODO(issue 6): fault injection (typed_per_filter_config envoy.filters.http.fault) and CORS
    // run here, before the action.
    const action = route.action;
    switch (action.kind) {
      case 'direct_response':
        this.cfg.stats.rq_direct_response.inc();
        this.localReply(
          action.status,
          action.body ?? '',
          DETAILS.directResponse,
          undefined,
          undefined,
          false,
        );
        return;
      case 'redirect': {
        this.cfg.stats.rq_redirect.inc();
        const location = redirectLocation(this.headers, this.sctx.forwardedProto, route, action);
        this.localReply(action.status, '', DETAILS.directResponse, undefined, { location }, false);
        return;
      }
      case 'non_forwarding':
        this.cfg.stats.no_route.inc();
        this.localReply(404, '', DETAILS.nonForwardingRoute, F.NO_ROUTE_FOUND);
        return;
      case 'route':
        this.forward(action);
        return;
    }
  }

  // ---- Forwarding ----

  private forward(action: CompiledRouteAction): void {
    const cfg = this.cfg;
    cfg.stats.rq_total.inc();
    let clusterName: string | undefined;
    if (action.weighted) {
      const w = chooseWeightedCluster(action, {
        headers: this.headers,
        isConnect: false,
        isGrpc: this.sctx.isGrpc,
        random: cfg.random,
      });
      this.weighted = w;
      clusterName = w?.clusterHeader ? this.headers.get(w.clusterHeader) : w?.name;
    } else if (action.clusterHeader) clusterName = this.headers.get(action.clusterHeader);
    else clusterName = action.cluster;
    const cluster = clusterName ? cfg.clusterManager.get(clusterName) : undefined;
    if (clusterName) this.info.upstreamCluster = clusterName;
    if (!cluster) {
      cfg.stats.no_cluster.inc();
      this.localReply(
        action.clusterNotFoundStatus,
        '',
        DETAILS.clusterNotFound,
        F.NO_CLUSTER_FOUND,
      );
      return;
    }
    this.cluster = cluster;

    const upgrade = this.sctx.upgrade;
    if (upgrade !== undefined || this.sctx.isConnect) {
      const type = this.sctx.isConnect ? 'connect' : (upgrade ?? '');
      const enabled =
        action.upgrades.get(type) ??
        cfg.upgrades.get(type) ??
        (this.sctx.isConnect && cfg.explicitProxy);
      if (!enabled) {
        if (type === 'websocket') cfg.stats.downstream_rq_ws_on_non_ws_route.inc();
        this.localReply(403, '', DETAILS.upgradeFailed);
        return;
      }
    }

    // TODO(issue 6): hash_policy → ctx.hash; retry host predicates → ctx.avoid.
    const host = cluster.choose({
      originalDestination: this.sctx.originalDestination,
      requestHeader: (n) => this.headers.get(n),
    });
    if (!host) {
      this.localReply(503, 'no healthy upstream', DETAILS.noHealthyUpstream, F.NO_HEALTHY_UPSTREAM);
      return;
    }
    this.host = host;
    this.info.upstreamHost = host.id;
    const transport = cluster.transportSocketFor(host);
    if (transport !== 'raw_buffer') {
      const reason =
        transport === 'tls'
          ? DETAILS.upstreamTlsNotImplemented
          : `unsupported_transport_socket{${transport.unsupported}}`;
      this.info.upstreamTransportFailureReason = reason;
      this.localReply(
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${
          transport === 'tls'
            ? 'TLS to upstream hosts is not implemented'
            : `transport socket ${transport.unsupported} is not supported`
        }`,
        reason,
        F.UPSTREAM_CONNECTION_FAILURE,
      );
      return;
    }
    if (this.sctx.isConnect) {
      this.finalizeRequestHeaders(action, host);
      this.startConnectTunnel(cluster, host);
      return;
    }
    const timeoutMs = this.finalizeRequestHeaders(action, host);
    // TODO(issue 6): request_mirror_policies here (fire-and-forget copies).
    // TODO(issue 6): retries — startUpstream per attempt, with per_try_timeout and backoff.
    this.startUpstream(cluster, host, timeoutMs);
  }

  /** Rewrites, header mutations and Envoy's router headers; returns the route timeout in ms. */
  private finalizeRequestHeaders(action: CompiledRouteAction, host: LbHost): number {
    const h = this.headers;
    const cfg = this.cfg;
    const route = this.route as CompiledRoute;
    const originalPath = h.path;
    const newPath = this.sctx.isConnect
      ? undefined
      : rewrittenPath(originalPath, route, action.prefixRewrite, action.regexRewrite);
    if (newPath !== undefined) {
      h.path = newPath;
      if (!cfg.suppressEnvoyHeaders) h.map['x-envoy-original-path'] = originalPath;
    }
    const originalHost = h.authority;
    let newHost: string | undefined;
    if (this.weighted?.hostRewriteLiteral) newHost = this.weighted.hostRewriteLiteral;
    else if (action.hostRewriteLiteral) newHost = action.hostRewriteLiteral;
    else if (action.autoHostRewrite && host.hostname) newHost = host.hostname;
    else if (action.hostRewriteHeader) newHost = h.get(action.hostRewriteHeader);
    else if (action.hostRewritePathRegex)
      newHost = regexReplace(h.pathOnly(), action.hostRewritePathRegex);
    if (newHost !== undefined && newHost !== '') {
      h.authority = newHost;
      if (action.appendXForwardedHost) h.append('x-forwarded-host', originalHost);
    }
    // Header mutations: weighted cluster first, then route → virtual host → route configuration
    // (most_specific_header_mutations_wins reverses the last three).
    if (this.weighted && !this.weighted.requestHeaders.empty) this.weighted.requestHeaders.apply(h);
    for (const m of this.levels('request')) m.apply(h);
    const rc = this.vhost?.routeConfig;
    if (rc && !this.sctx.internal) for (const name of rc.internalOnlyHeaders) h.remove(name);

    // The route timeout: x-envoy-upstream-rq-timeout-ms, else grpc-timeout (when the route
    // honours it), else the route's.
    let timeoutMs = action.timeoutMs;
    const hdr = h.map['x-envoy-upstream-rq-timeout-ms'];
    if (typeof hdr === 'string' && /^\d+$/.test(hdr)) timeoutMs = Number(hdr);
    else if (action.grpcTimeoutHeaderMaxMs !== undefined && this.sctx.isGrpc) {
      const grpc = parseGrpcTimeout(headerValue(h.map, 'grpc-timeout'));
      if (grpc !== undefined) {
        const max = action.grpcTimeoutHeaderMaxMs;
        timeoutMs = max > 0 ? Math.min(grpc, max) : grpc;
      }
    }
    for (const name of ROUTER_CONTROL_HEADERS) if (h.map[name] !== undefined) delete h.map[name];
    if (!cfg.suppressEnvoyHeaders && timeoutMs > 0)
      h.map['x-envoy-expected-rq-timeout-ms'] = String(timeoutMs);
    this.info.attemptCount = 1;
    if (this.vhost?.includeRequestAttemptCount) h.map['x-envoy-attempt-count'] = '1';
    if (action.idleTimeoutMs !== undefined) this.setIdleTimeout(action.idleTimeoutMs);
    for (const f of this.filters) f.onUpstreamRequestHeaders?.(h);
    return timeoutMs;
  }

  /** Route, virtual host and route configuration mutations in application order. */
  private levels(which: 'request' | 'response'): HeaderMutation[] {
    const route = this.route;
    const vhost = this.vhost;
    const rc = vhost?.routeConfig;
    const out: HeaderMutation[] = [];
    const pick = (
      x: { requestHeaders: HeaderMutation; responseHeaders: HeaderMutation } | undefined,
    ): void => {
      const m = x ? (which === 'request' ? x.requestHeaders : x.responseHeaders) : undefined;
      if (m && !m.empty) out.push(m);
    };
    if (rc?.mostSpecificHeaderMutationsWins) {
      pick(rc);
      pick(vhost);
      pick(route);
    } else {
      pick(route);
      pick(vhost);
      pick(rc);
    }
    return out;
  }

  private startUpstream(cluster: UpstreamCluster, host: LbHost, timeoutMs: number): void {
    const h = this.headers;
    const upgrade = this.sctx.upgrade;
    const protocol = upgrade !== undefined ? 'http1' : cluster.httpProtocol(this.ds.protocol);
    const pool = cluster.httpPool(host, protocol);
    if (this.sctx.expectContinue && !this.cfg.proxy100Continue) delete h.map.expect;
    const head: UpstreamRequestHead = {
      method: h.method,
      path: h.path,
      authority: h.authority,
      scheme: 'http',
      headers: h.map,
      endStream: this.ds.body === undefined,
      upgrade,
    };
    this.upstreamStartMono = performance.now();
    if (timeoutMs > 0) this.armRouteTimeout(timeoutMs);
    this.upstream = pool.newStream(head, {
      onReady: (sink, localAddress) => this.onUpstreamReady(sink, localAddress),
      onHeaders: (status, headers, endStream, body) =>
        this.onUpstreamHeaders(status, headers, endStream, body),
      onReset: (reason, tfr) => this.onUpstreamReset(reason, tfr),
      onContinue: () => {
        if (
          this.cfg.proxy100Continue &&
          this.sctx.expectContinue &&
          !this.continued &&
          !this.ds.responseStarted
        ) {
          this.continued = true;
          this.ds.sendContinue();
        }
      },
      onUpgrade: (status, headers, socket, upHead) =>
        this.onUpstreamUpgrade(status, headers, socket, upHead),
    });
  }

  private armRouteTimeout(ms: number): void {
    // The route timeout runs from the end of the downstream request (Envoy's global timeout).
    const arm = (): void => {
      if (this.done || this.responseComplete) return;
      this.routeTimer = this.cfg.timers.setTimeout(() => this.onRouteTimeout(), ms);
    };
    if (this.downstreamEnded) arm();
    else this.ds.body?.once('end', arm);
  }

  private onUpstreamReady(sink: Writable, localAddress: string | undefined): void {
    if (localAddress !== undefined) this.info.upstreamLocalAddress = localAddress;
    if (this.done) return;
    const body = this.ds.body;
    if (body && !this.sctx.upgrade) {
      body.on('data', (chunk: Buffer) => {
        this.info.bytesReceived += chunk.length;
        if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
      });
      body.pipe(sink);
    } else sink.end();
  }

  private onUpstreamHeaders(
    status: number,
    headers: HeaderMap,
    endStream: boolean,
    body: Readable,
  ): void {
    if (this.done || this.ds.aborted) {
      body.resume();
      return;
    }
    const cstats = this.cluster?.clusterStats;
    cstats?.responseCode(status);
    removeHopByHop(headers);
    for (const f of this.filters) f.onUpstreamResponseHeaders?.(headers, status);
    this.applyResponseMutations(headers);
    if (!this.cfg.suppressEnvoyHeaders && this.downstreamEnded) {
      const ms = Math.round(performance.now() - this.downstreamEndMono);
      headers['x-envoy-upstream-service-time'] = String(ms);
      this.info.upstreamServiceTimeMs = ms;
    }
    if (this.vhost?.includeAttemptCountInResponse)
      headers['x-envoy-attempt-count'] = String(this.info.attemptCount);
    this.info.responseCode = status;
    this.info.responseCodeDetails = DETAILS.viaUpstream;
    if (endStream) this.noteGrpcStatus(headers);
    this.sendHeaders(status, headers, endStream);
    if (endStream) {
      body.resume();
      this.onResponseComplete();
      return;
    }
    body.on('data', (chunk: Buffer) => {
      this.info.bytesSent += chunk.length;
      if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
    });
    body.once('end', () => {
      const trailers = this.upstream?.trailers() as HeaderMap | undefined;
      if (trailers) {
        this.responseTrailers = trailers;
        this.noteGrpcStatus(trailers);
      }
      this.onResponseComplete();
      this.ds.finish(trailers);
    });
    if (this.sctx.isHead) body.resume();
    else body.pipe(this.ds.sink, { end: false });
  }

  private noteGrpcStatus(h: HeaderMap): void {
    const g = headerValue(h, 'grpc-status');
    if (g !== undefined && /^\d+$/.test(g)) this.info.grpcStatus = Number(g);
  }

  /** Route / vhost / route-config (and weighted cluster) response mutations, then HCM headers. */
  private applyResponseMutations(headers: HeaderMap): void {
    const target = mapTarget(headers);
    if (this.weighted && !this.weighted.responseHeaders.empty)
      this.weighted.responseHeaders.apply(target);
    for (const m of this.levels('response')) m.apply(target);
  }

  /** Connection manager response headers (server, via, x-request-id) and filters, then sends. */
  private sendHeaders(status: number, headers: HeaderMap, endStream: boolean): void {
    const cfg = this.cfg;
    if (cfg.serverHeaderTransformation === 'OVERWRITE') headers.server = cfg.serverName;
    else if (cfg.serverHeaderTransformation === 'APPEND_IF_ABSENT' && headers.server === undefined)
      headers.server = cfg.serverName;
    if (cfg.via !== undefined) {
      const cur = headerValue(headers, 'via');
      headers.via = cur ? `${cur}, ${cfg.via}` : cfg.via;
    }
    if (cfg.alwaysSetRequestIdInResponse && this.info.requestId !== undefined)
      headers['x-request-id'] = this.info.requestId;
    for (const f of this.filters) f.onResponseHeaders?.(headers, status);
    this.responseHeaders = headers;
    try {
      this.ds.respond(status, headers, endStream);
    } catch {
      // A header the downstream codec refuses (e.g. from a mutation): fail the stream.
      this.info.responseFlags.add(F.UPSTREAM_PROTOCOL_ERROR);
      this.info.responseCodeDetails = 'response_headers_invalid';
      this.resetBoth();
    }
  }

  private onResponseComplete(): void {
    this.responseComplete = true;
    this.clearTimers();
    if (this.upstreamStartMono > 0)
      this.cluster?.clusterStats?.upstream_rq_time.record(
        performance.now() - this.upstreamStartMono,
      );
    // The response finished before the request did: stop sending upstream (Envoy resets it).
    if (!this.downstreamEnded && this.ds.body) {
      this.ds.body.unpipe();
      this.upstream?.reset();
      this.ds.body.resume();
    }
  }

  private onUpstreamReset(
    reason: UpstreamResetReason,
    transportFailureReason: string | undefined,
  ): void {
    if (this.done) return;
    const cstats = this.cluster?.clusterStats;
    if (reason === 'remote_reset' || reason === 'remote_refused_stream_reset')
      cstats?.upstream_rq_rx_reset.inc();
    if (transportFailureReason !== undefined)
      this.info.upstreamTransportFailureReason = transportFailureReason;
    // TODO(issue 6): retry_on connect-failure / reset / refused-stream decides here.
    if (this.tunnelUpstream) return;
    if (!this.ds.responseStarted) {
      const r = upstreamResetReply(reason, transportFailureReason);
      this.localReply(r.status, r.body, r.details, r.flag);
      return;
    }
    const a = upstreamResetAfterResponseDetails(reason);
    this.info.responseFlags.add(a.flag);
    this.info.responseCodeDetails = a.details;
    this.cfg.stats.rq_reset_after_downstream_response_started.inc();
    this.resetBoth();
  }

  private onRouteTimeout(): void {
    if (this.done || this.responseComplete) return;
    this.cluster?.clusterStats?.upstream_rq_timeout.inc();
    this.upstream?.reset();
    if (!this.ds.responseStarted) {
      this.localReply(
        504,
        'upstream request timeout',
        DETAILS.upstreamResponseTimeout,
        F.UPSTREAM_REQUEST_TIMEOUT,
      );
      return;
    }
    this.info.responseFlags.add(F.UPSTREAM_REQUEST_TIMEOUT);
    this.info.responseCodeDetails = DETAILS.upstreamResponseTimeout;
    this.resetBoth();
  }

  private setIdleTimeout(ms: number): void {
    this.idleTimeoutMs = ms;
    if (this.idleTimer !== undefined) {
      this.cfg.timers.clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (ms <= 0 || this.done) return;
    this.lastActivity = this.cfg.timers.now();
    const check = (): void => {
      this.idleTimer = undefined;
      if (this.done) return;
      const idleFor = this.cfg.timers.now() - this.lastActivity;
      if (idleFor < ms) {
        this.idleTimer = this.cfg.timers.setTimeout(check, ms - idleFor);
        return;
      }
      this.onIdleTimeout();
    };
    this.idleTimer = this.cfg.timers.setTimeout(check, ms);
  }

  private onIdleTimeout(): void {
    this.cfg.stats.downstream_rq_idle_timeout.inc();
    this.upstream?.reset();
    this.tunnelUpstream?.destroy();
    if (!this.ds.responseStarted) {
      this.localReply(408, 'stream timeout', DETAILS.streamIdleTimeout, F.STREAM_IDLE_TIMEOUT);
      return;
    }
    this.info.responseFlags.add(F.STREAM_IDLE_TIMEOUT);
    this.info.responseCodeDetails = DETAILS.streamIdleTimeout;
    this.resetBoth();
  }

  // ---- Upgrade and CONNECT tunnels ----

  private onUpstreamUpgrade(
    status: number,
    headers: HeaderMap,
    socket: Duplex,
    upHead: Buffer,
  ): void {
    if (this.done || this.ds.aborted) {
      socket.destroy();
      return;
    }
    this.cluster?.clusterStats?.responseCode(status);
    this.info.responseCode = status;
    this.info.responseCodeDetails = DETAILS.viaUpstream;
    this.applyResponseMutations(headers);
    this.clearTimers();
    this.sendHeaders(status, headers, false);
    const down = this.ds.tunnelSocket;
    if (!down) {
      socket.destroy();
      this.ds.reset();
      return;
    }
    this.cfg.stats.downstream_cx_upgrades_total.inc();
    this.cfg.stats.downstream_cx_upgrades_active.inc();
    this.tunnel(down, socket, this.downstreamHead(), upHead);
  }

  private downstreamHead(): Buffer {
    const head = (this.ds as { head?: Buffer }).head;
    return head ?? Buffer.alloc(0);
  }

  private startConnectTunnel(cluster: UpstreamCluster, host: LbHost): void {
    const cstats = cluster.clusterStats;
    cstats?.upstream_rq_total.inc();
    this.upstreamStartMono = performance.now();
    cluster.connect(host).then(
      (socket) => {
        if (this.done || this.ds.aborted) {
          socket.destroy();
          return;
        }
        this.info.upstreamLocalAddress = formatAddress(socket.localAddress, socket.localPort);
        cstats?.responseCode(200);
        this.info.responseCode = 200;
        this.info.responseCodeDetails = DETAILS.viaUpstream;
        this.sendHeaders(200, {}, false);
        this.cfg.stats.downstream_cx_upgrades_total.inc();
        this.cfg.stats.downstream_cx_upgrades_active.inc();
        const down = this.ds.tunnelSocket ?? (this.ds.body as Duplex | undefined);
        if (!down) {
          socket.destroy();
          this.ds.reset();
          return;
        }
        this.tunnel(down, socket, this.downstreamHead(), Buffer.alloc(0));
      },
      (err: unknown) => {
        const e = err as { reason?: string; timedOut?: boolean };
        const reason: UpstreamResetReason = e.timedOut
          ? 'connection_timeout'
          : 'connection_failure';
        this.onUpstreamReset(reason, e.reason);
      },
    );
  }

  /** Pipes two connections into each other until both sides end. */
  private tunnel(down: Duplex, up: Duplex, downHead: Buffer, upHead: Buffer): void {
    this.tunnelUpstream = up;
    if (upHead.length > 0) {
      this.info.bytesSent += upHead.length;
      down.write(upHead);
    }
    if (downHead.length > 0) {
      this.info.bytesReceived += downHead.length;
      up.write(downHead);
    }
    down.on('data', (c: Buffer) => {
      this.info.bytesReceived += c.length;
      if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
    });
    up.on('data', (c: Buffer) => {
      this.info.bytesSent += c.length;
      if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
    });
    down.pipe(up);
    up.pipe(down);
    let closed = 0;
    const onClose = (): void => {
      if (++closed === 1) {
        // One side is gone: give the other a moment to flush, then close it too.
        down.end();
        up.end();
        setTimeout(() => {
          down.destroy();
          up.destroy();
        }, 1000).unref();
        return;
      }
      this.cfg.stats.downstream_cx_upgrades_active.dec();
      this.responseComplete = true;
      this.complete();
    };
    down.once('close', onClose);
    up.once('close', onClose);
    down.on('error', () => down.destroy());
    up.on('error', () => up.destroy());
  }

  /** The downstream request has been received completely. */
  get requestComplete(): boolean {
    return (this.downstreamEnded || this.ds.requestReceived) && !this.done;
  }

  // ---- Downstream events ----

  private onDownstreamEnd(): void {
    this.downstreamEnded = true;
    this.downstreamEndMono = performance.now();
  }

  /**
   * The downstream connection went away (socket reset/close seen by the codec before the stream
   * noticed): recorded as DC like any other client disconnect, never as a protocol error.
   */
  onDownstreamDisconnect(): void {
    this.onDownstreamAbort();
  }

  private onDownstreamAbort(): void {
    if (this.done) return;
    if (this.tunnelUpstream) return;
    this.cfg.stats.downstream_rq_rx_reset.inc();
    if (!this.info.responseFlags.has(F.DOWNSTREAM_PROTOCOL_ERROR)) {
      this.info.responseFlags.add(F.DOWNSTREAM_CONNECTION_TERMINATION);
      if (!this.responseComplete)
        this.info.responseCodeDetails = DETAILS.downstreamRemoteDisconnect;
    }
    this.upstream?.reset();
    this.complete();
  }

  /**
   * The downstream codec failed mid-request (bad chunk, oversized body...): reset upstream, and
   * answer `status` when no response started.
   */
  onDownstreamProtocolError(status: number, details: string): boolean {
    if (this.done) return false;
    this.info.responseFlags.add(F.DOWNSTREAM_PROTOCOL_ERROR);
    this.info.responseCodeDetails = details;
    this.upstream?.reset();
    this.tunnelUpstream?.destroy();
    const started = this.ds.responseStarted;
    if (!started) this.info.responseCode = status;
    this.complete();
    return !started;
  }

  // ---- Local replies ----

  /**
   * Answers locally. `applyRoute`: add the route's response headers (direct responses and
   * redirects do; so do router errors once a route is known).
   */
  localReply(
    status: number,
    body: string | Buffer,
    details: string,
    flag?: ResponseFlag,
    extraHeaders?: HeaderMap,
    grpcConvert = true,
  ): void {
    if (this.done) return;
    this.clearTimers();
    const info = this.info;
    info.responseCodeDetails = details;
    if (flag) info.responseFlags.add(flag);
    if (this.ds.responseStarted) {
      this.resetBoth();
      return;
    }
    let headers: HeaderMap = {};
    let payload = typeof body === 'string' ? Buffer.from(body) : body;
    let code = status;
    if (this.sctx.isGrpc && grpcConvert && !this.ds.tunnelSocket) {
      code = 200;
      headers['content-type'] = 'application/grpc';
      headers['grpc-status'] = String(httpToGrpcStatus(status));
      if (payload.length > 0) headers['grpc-message'] = encodeGrpcMessage(payload.toString());
      info.grpcStatus = httpToGrpcStatus(status);
      payload = Buffer.alloc(0);
    } else if (payload.length > 0) {
      headers['content-type'] = 'text/plain';
      headers['content-length'] = String(payload.length);
    } else if (!this.sctx.isHead) headers['content-length'] = '0';
    if (extraHeaders) headers = { ...headers, ...extraHeaders };
    if (this.route) this.applyResponseMutations(headers);
    info.responseCode = code;
    const empty = payload.length === 0 || this.sctx.isHead;
    this.sendHeaders(code, headers, empty);
    this.responseComplete = true;
    if (!empty) {
      info.bytesSent += payload.length;
      this.ds.sink.write(payload);
      this.ds.finish();
    }
    // Stop reading a request body nobody will use.
    if (this.ds.body && !this.downstreamEnded) {
      this.ds.body.unpipe();
      this.ds.body.resume();
    }
  }

  private resetBoth(): void {
    this.cfg.stats.downstream_rq_tx_reset.inc();
    this.upstream?.reset();
    this.tunnelUpstream?.destroy();
    this.ds.reset();
    this.complete();
  }

  private clearTimers(): void {
    if (this.routeTimer !== undefined) {
      this.cfg.timers.clearTimeout(this.routeTimer);
      this.routeTimer = undefined;
    }
    if (this.idleTimer !== undefined) {
      this.cfg.timers.clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /** Ends the stream's accounting once (response sent, reset, or downstream gone). */
  private complete(): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    const info = this.info;
    info.durationMs = performance.now() - info.startMono;
    const stats = this.cfg.stats;
    stats.downstream_rq_active.dec();
    stats.downstream_rq_completed.inc();
    if (info.responseCode > 0) stats.responseCode(info.responseCode);
    stats.downstream_rq_time.record(info.durationMs);
    const cb = this.cfg.onStreamComplete;
    if (!cb) return;
    const req = this.headers;
    const res = this.responseHeaders;
    const tr = this.responseTrailers;
    const view: StreamHeaders = {
      requestHeader: (n) => req.get(n),
      responseHeader: (n) => (res ? headerValue(res, n) : undefined),
      responseTrailer: (n) => (tr ? headerValue(tr, n) : undefined),
      ...(this.host ? { upstreamHostMetadata: this.host.metadata } : {}),
      ...(this.cluster?.config.metadata?.filterMetadata
        ? {
            upstreamClusterMetadata: this.cluster.config.metadata.filterMetadata,
          }
        : {}),
    };
    try {
      cb(info, view);
    } catch {
      /* an access logger's failure must not break the stream */
    }
  }
}
