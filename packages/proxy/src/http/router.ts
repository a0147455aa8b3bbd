// The router (Envoy's router filter) for one downstream request: route selection, the route's
// action (forward to a cluster, redirect, direct response), request/response header
// finalization, the upstream request through the cluster's connection pool with streaming
// bodies both ways (backpressure by pipe), trailers, the route timeout, Upgrade and CONNECT
// tunnels, and every local reply with its response flag and details, recorded in StreamInfo.
//
// Issue 6: retries (retry-policy.ts; each attempt is a `startAttempt`, with per-try timeouts,
// back-off, previous_hosts and the request body replayed from retry-body.ts), the timeouts of
// timeout-policy.ts, fault injection (fault.ts) before the route's action, and mirroring
// (mirror.ts) once the request headers are final. Still to come: CORS before the action, and
// hash policies feeding UpstreamLbContext.hash.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { TimerApi } from '@trellis/core';
import type { StatsScope } from '../observability/stats-api.js';
import type { LogContext } from '../observability/log-context.js';
import { RESPONSE_FLAGS, type ResponseFlag, type StreamInfo } from '../stream-info.js';
import type {
  ClusterManagerApi,
  DestinationAddress,
  UpstreamCluster,
  UpstreamRequestHead,
  UpstreamResetReason,
  UpstreamResponseBody,
  UpstreamStream,
} from '../upstream/api.js';
import type { LbHost } from '../upstream/lb/types.js';
import type { Downstream } from './downstream.js';
import {
  decideFault,
  FAULT_ABORT_BODY,
  FAULT_ABORT_DETAILS,
  type FaultFilterConfig,
} from './fault.js';
import { selectMirrors, sendShadow } from './mirror.js';
import { DEFAULT_RETRY_BUFFER_LIMIT_BYTES, ReplayableBody } from './retry-body.js';
import {
  compileRetryPolicy,
  createRetryState,
  type RetryState,
  type RetryStats,
} from './retry-policy.js';
import {
  finalTimeouts,
  grpcTimeoutOffsetMs,
  setTimeoutHeaders,
  type RequestTimeouts,
} from './timeout-policy.js';
import { decideCors, type CorsFilterConfig } from './cors.js';
import { appendSetCookies, generateHash, type HashCookie } from './hash-policy.js';
import {
  GrpcWebDecodeError,
  GrpcWebResponse,
  GrpcWebTextDecoder,
  MAX_GRPC_MESSAGE_BYTES,
  type GrpcWebMode,
} from './grpc-web.js';
import { mapTarget, type HeaderMutation } from './header-mutation.js';
import {
  dropHeader,
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
  /** The CORS filter, when the connection manager's chain has one. */
  readonly cors?: CorsFilterConfig | undefined;
  /** The fault injection filter, when the connection manager's chain has one. */
  readonly fault?: FaultFilterConfig | undefined;
  /** Called with each mirrored request's outcome (tests). */
  readonly onShadowDone?: ((cluster: string, outcome: string) => void) | undefined;
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
  /** A gRPC-Web request the connection manager turned into gRPC (grpc_web filter). */
  readonly grpcWeb?: GrpcWebMode | undefined;
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
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
];

const NO_MUTATIONS: readonly HeaderMutation[] = [];

const retryStatsByScope = new WeakMap<StatsScope, RetryStats>();

/** A level's non-empty request or response mutation. */
function pickMutation(
  x: { requestHeaders: HeaderMutation; responseHeaders: HeaderMutation } | undefined,
  which: 'request' | 'response',
): HeaderMutation | undefined {
  if (!x) return undefined;
  const m = which === 'request' ? x.requestHeaders : x.responseHeaders;
  return m.empty ? undefined : m;
}

/** Response code details of the per-try timeouts. */
const PER_TRY_TIMEOUT_DETAILS = 'upstream_per_try_timeout';
const PER_TRY_IDLE_TIMEOUT_DETAILS = 'upstream_per_try_idle_timeout';

/** per_request_buffer_limit_bytes of a route or virtual host (not in @trellis/envoy's types). */
function bufferLimit(x: unknown): number | undefined {
  const v = (x as { perRequestBufferLimitBytes?: number | string } | undefined)
    ?.perRequestBufferLimitBytes;
  return v === undefined ? undefined : Number(v);
}

/** One upstream attempt of a request (the first, or a retry). */
interface Attempt {
  readonly host: LbHost;
  upstream: UpstreamStream | undefined;
  perTryTimer: unknown;
  perTryIdleTimer: unknown;
  /** Bytes of the request went upstream (for reset-before-request). */
  requestStarted: boolean;
}

export { parseGrpcTimeout } from './timeout-policy.js';

export class ActiveStream {
  private route: CompiledRoute | undefined;
  private vhost: CompiledVirtualHost | undefined;
  private weighted: CompiledWeightedCluster | undefined;
  private cluster: UpstreamCluster | undefined;
  private host: LbHost | undefined;
  /** The route's hash_policy result (RING_HASH / MAGLEV), computed once per request. */
  private lbHash: bigint | undefined;
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
  // ---- Issue 6: retries, timeouts, faults, mirrors ----
  private retry: RetryState | undefined;
  private timeouts: RequestTimeouts = { globalMs: 0, perTryMs: 0, perTryIdleMs: 0 };
  private attempt: Attempt | undefined;
  private replay: ReplayableBody | undefined;
  private backoffTimer: unknown;
  private faultTimer: unknown;
  private faultActive = false;
  private firstAttemptAt = 0;
  private rewriteGrpcTimeout = false;
  /** The response side of a gRPC-Web request (grpc-web.ts). */
  private grpcWeb: GrpcWebResponse | undefined;
  /** A grpc-web-text request's body, base64-decoded. */
  private decodedBody: Readable | undefined;

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

  /** The request body as it goes upstream (decoded for grpc-web-text). */
  private get reqBody(): Readable | undefined {
    return this.decodedBody ?? this.ds.body;
  }

  /** Runs the request: filters, route, action. */
  run(): void {
    const web = this.sctx.grpcWeb;
    if (web) {
      this.grpcWeb = new GrpcWebResponse(web);
      const raw = this.ds.body;
      if (web.textRequest && raw) {
        const decoder = new GrpcWebTextDecoder();
        decoder.once('error', (e: Error) => this.onGrpcWebDecodeError(e));
        this.decodedBody = raw.pipe(decoder);
      }
    }
    for (const f of this.filters) f.onRequestHeaders?.(this.headers);
    // No 'data' listener before the body is piped: it would start the flow and lose bytes.
    const body = this.reqBody;
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
    // The CORS filter (cors.ts) runs before the fault filter, as in Istio's chain.
    if (this.cfg.cors) {
      const c = decideCors(
        this.cfg.cors,
        [route.config.typedPerFilterConfig, this.vhost?.config.typedPerFilterConfig],
        this.headers,
        this.cfg.random,
      );
      const extra = c.responseHeaders;
      if (extra) this.filters.push({ onResponseHeaders: (h) => void Object.assign(h, extra) });
      if (c.reply) {
        this.localReply(200, '', c.reply.details, undefined, c.reply.headers, false);
        return;
      }
    }
    if (this.cfg.fault && this.maybeFault(route, this.cfg.fault)) return;
    this.runAction(route);
  }

  /** The route's action (after any fault delay). */
  private runAction(route: CompiledRoute): void {
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

    const hashPolicy = action.config.hashPolicy;
    if (hashPolicy !== undefined && hashPolicy.length > 0) {
      const cookies: HashCookie[] = [];
      this.lbHash = generateHash(
        hashPolicy,
        { headers: this.headers, remoteAddress: this.info.downstreamRemoteAddress },
        (c) => cookies.push(c),
      );
      // Generated hash cookies go out with the upstream's response (Envoy's
      // downstream_set_cookies).
      if (cookies.length > 0)
        this.filters.push({ onUpstreamResponseHeaders: (h) => appendSetCookies(h, cookies) });
    }
    const host = cluster.choose({
      originalDestination: this.sctx.originalDestination,
      requestHeader: (n) => this.headers.get(n),
      ...(this.lbHash !== undefined ? { hash: this.lbHash } : {}),
    });
    if (!host) {
      this.localReply(503, 'no healthy upstream', DETAILS.noHealthyUpstream, F.NO_HEALTHY_UPSTREAM);
      return;
    }
    this.host = host;
    this.info.upstreamHost = host.id;
    const transport = cluster.transportSocketFor(host);
    if (transport !== 'raw_buffer' && transport !== 'tls') {
      const reason = `unsupported_transport_socket{${transport.unsupported}}`;
      this.info.upstreamTransportFailureReason = reason;
      this.localReply(
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: transport socket ${transport.unsupported} is not supported`,
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
    const mirrors = selectMirrors(
      action.config.requestMirrorPolicies,
      (n) => this.headers.get(n),
      cfg.random,
    );
    const body = this.reqBody;
    if (body && this.sctx.upgrade === undefined && (this.retry || mirrors.length > 0)) {
      const route = this.route as CompiledRoute;
      const limit =
        bufferLimit(route.config) ??
        bufferLimit(this.vhost?.config) ??
        DEFAULT_RETRY_BUFFER_LIMIT_BYTES;
      this.replay = new ReplayableBody(
        body,
        limit,
        () => {
          // Envoy: the body no longer fits the buffer, so it cannot be replayed or copied.
          cluster.stats.counter('retry_or_shadow_abandoned').inc();
          this.retry?.release();
          this.retry = undefined;
        },
        (chunk) => {
          this.info.bytesReceived += chunk.length;
          if (this.idleTimeoutMs > 0) this.lastActivity = cfg.timers.now();
        },
      );
    }
    if (mirrors.length > 0) this.mirror(mirrors, timeoutMs);
    this.startUpstream(cluster, host, timeoutMs);
  }

  /** Fire-and-forget copies (mirror.ts) of the request as it now stands. */
  private mirror(mirrors: ReturnType<typeof selectMirrors>, timeoutMs: number): void {
    const h = this.headers;
    const snapshot = {
      method: h.method,
      path: h.path,
      authority: h.authority,
      scheme: 'http',
      headers: { ...h.map },
      protocol: this.ds.protocol,
    };
    const send = (body: Buffer | undefined): void => {
      for (const m of mirrors)
        sendShadow(
          m.cluster,
          m.policy,
          { ...snapshot, body },
          {
            clusterManager: this.cfg.clusterManager,
            timers: this.cfg.timers,
            timeoutMs,
            lbContext: { requestHeader: (n) => h.get(n) },
            onDone: (outcome) => this.cfg.onShadowDone?.(m.cluster, outcome),
          },
        );
    };
    const replay = this.replay;
    if (!this.reqBody) send(undefined);
    else if (replay)
      replay.onEnd(() => {
        const body = replay.complete;
        if (body) send(body);
      });
  }

  // ---- Fault injection (fault.ts) ----

  /** The fault filter's decision for this route: true when it took the request over. */
  private maybeFault(route: CompiledRoute, filter: FaultFilterConfig): boolean {
    const fault = filter.effective([
      route.config.typedPerFilterConfig,
      this.vhost?.config.typedPerFilterConfig,
    ]);
    const routeCluster = route.action.kind === 'route' ? route.action.cluster : undefined;
    const d = decideFault(filter, fault, this.headers.map, routeCluster, this.cfg.random);
    if (!d) return false;
    this.faultActive = true;
    const downstreamCluster = this.headers.get('x-envoy-downstream-service-cluster');
    if (d.delayMs !== undefined) {
      filter.delays_injected.inc();
      if (downstreamCluster) filter.downstream(downstreamCluster, 'delays_injected').inc();
      this.info.responseFlags.add(F.DELAY_INJECTED);
      this.faultTimer = this.cfg.timers.setTimeout(() => {
        this.faultTimer = undefined;
        if (this.done) return;
        if (!this.faultAbort(d.abort, filter, downstreamCluster)) this.runAction(route);
      }, d.delayMs);
      return true;
    }
    return this.faultAbort(d.abort, filter, downstreamCluster);
  }

  private faultAbort(
    abort: { readonly http: number; readonly grpc: number | undefined } | undefined,
    filter: FaultFilterConfig,
    downstreamCluster: string | undefined,
  ): boolean {
    if (!abort) return false;
    filter.aborts_injected.inc();
    if (downstreamCluster) filter.downstream(downstreamCluster, 'aborts_injected').inc();
    this.localReply(
      abort.http,
      FAULT_ABORT_BODY,
      FAULT_ABORT_DETAILS,
      F.FAULT_INJECTED,
      undefined,
      true,
      abort.grpc,
    );
    return true;
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
    const levels = this.levels('request');
    const weighted =
      this.weighted && !this.weighted.requestHeaders.empty
        ? this.weighted.requestHeaders
        : undefined;
    if (weighted?.dynamic === true || levels.some((m) => m.dynamic)) {
      // As in Envoy, request header values are formatted before an upstream host is chosen: no
      // %UPSTREAM_REMOTE_ADDRESS% or %UPSTREAM_METADATA(...)% there.
      const info = this.info;
      const chosen = info.upstreamHost;
      info.upstreamHost = undefined;
      const ctx = (): LogContext => ({ info, requestHeader: (n) => h.get(n) });
      weighted?.apply(h, ctx);
      for (const m of levels) m.apply(h, ctx);
      info.upstreamHost = chosen;
    } else {
      // Literal values only: no formatting context.
      weighted?.apply(h);
      for (const m of levels) m.apply(h);
    }
    const rc = this.vhost?.routeConfig;
    if (rc && !this.sctx.internal) for (const name of rc.internalOnlyHeaders) h.remove(name);

    // The timeouts (timeout-policy.ts) and the retry state read the router's control headers,
    // which never go upstream.
    const policy = action.config.retryPolicy ?? this.vhost?.config.retryPolicy;
    const upgradeOrConnect = this.sctx.isConnect || this.sctx.upgrade !== undefined;
    this.retry = upgradeOrConnect
      ? undefined
      : createRetryState(policy, (n) => headerValue(h.map, n), h.map);
    const perTry = policy ? compileRetryPolicy(policy) : undefined;
    this.timeouts = finalTimeouts(
      {
        timeoutMs: action.timeoutMs,
        grpcTimeoutHeaderMaxMs: action.grpcTimeoutHeaderMaxMs,
        grpcTimeoutHeaderOffsetMs: grpcTimeoutOffsetMs(action.config.maxStreamDuration),
        perTryTimeoutMs: perTry?.perTryTimeoutMs,
        perTryIdleTimeoutMs: perTry?.perTryIdleTimeoutMs,
      },
      h.map,
      this.sctx.isGrpc,
    );
    const timeoutMs = this.timeouts.globalMs;
    for (const name of ROUTER_CONTROL_HEADERS) dropHeader(h.map, name);
    this.rewriteGrpcTimeout =
      this.sctx.isGrpc &&
      action.grpcTimeoutHeaderMaxMs !== undefined &&
      headerValue(h.map, 'grpc-timeout') !== undefined;
    setTimeoutHeaders(h.map, this.timeouts, 0, !cfg.suppressEnvoyHeaders, this.rewriteGrpcTimeout);
    this.info.attemptCount = 1;
    if (this.vhost?.includeRequestAttemptCount) h.map['x-envoy-attempt-count'] = '1';
    if (action.idleTimeoutMs !== undefined) this.setIdleTimeout(action.idleTimeoutMs);
    for (const f of this.filters) f.onUpstreamRequestHeaders?.(h);
    return timeoutMs;
  }

  /** Route, virtual host and route configuration mutations in application order. */
  private levels(which: 'request' | 'response'): readonly HeaderMutation[] {
    const route = this.route;
    const vhost = this.vhost;
    const rc = vhost?.routeConfig;
    const a = pickMutation(route, which);
    const b = pickMutation(vhost, which);
    const c = pickMutation(rc, which);
    // Most requests have none: no array then.
    if (a === undefined && b === undefined && c === undefined) return NO_MUTATIONS;
    const out: HeaderMutation[] = [];
    for (const m of rc?.mostSpecificHeaderMutationsWins ? [c, b, a] : [a, b, c])
      if (m !== undefined) out.push(m);
    return out;
  }

  /** The first attempt: arms the route (global) timeout, then sends upstream. */
  private startUpstream(cluster: UpstreamCluster, host: LbHost, timeoutMs: number): void {
    if (this.sctx.expectContinue && !this.cfg.proxy100Continue) delete this.headers.map.expect;
    this.upstreamStartMono = performance.now();
    this.firstAttemptAt = this.cfg.timers.now();
    if (timeoutMs > 0) this.armRouteTimeout(timeoutMs);
    this.startAttempt(cluster, host);
  }

  /** One upstream attempt to `host` (its callbacks are ignored once it is no longer current). */
  private startAttempt(cluster: UpstreamCluster, host: LbHost): void {
    const h = this.headers;
    const upgrade = this.sctx.upgrade;
    const protocol = upgrade !== undefined ? 'http1' : cluster.httpProtocol(this.ds.protocol);
    const pool = cluster.httpPool(host, protocol);
    const head: UpstreamRequestHead = {
      method: h.method,
      path: h.path,
      authority: h.authority,
      scheme: 'http',
      headers: h.map,
      endStream: this.reqBody === undefined,
      upgrade,
    };
    const attempt: Attempt = {
      host,
      upstream: undefined,
      perTryTimer: undefined,
      perTryIdleTimer: undefined,
      requestStarted: false,
    };
    this.attempt = attempt;
    this.retry?.onHostAttempted(host);
    const current = (): boolean => this.attempt === attempt;
    this.upstream = attempt.upstream = pool.newStream(head, {
      onReady: (sink, localAddress) => {
        if (current()) this.onUpstreamReady(sink, localAddress, attempt);
        else sink?.destroy();
      },
      onHeaders: (status, headers, endStream, body) => {
        if (current()) this.onUpstreamHeaders(status, headers, endStream, body);
        else body?.resume();
      },
      onReset: (reason, tfr) => {
        if (current()) this.onUpstreamReset(reason, tfr);
      },
      onContinue: () => {
        if (
          current() &&
          this.cfg.proxy100Continue &&
          this.sctx.expectContinue &&
          !this.continued &&
          !this.ds.responseStarted
        ) {
          this.continued = true;
          this.ds.sendContinue();
        }
      },
      onUpgrade: (status, headers, socket, upHead) => {
        if (current()) this.onUpstreamUpgrade(status, headers, socket, upHead);
        else socket.destroy();
      },
    });
    if (this.attempt === attempt) this.armPerTryTimeouts(attempt);
  }

  /**
   * per_try_timeout runs from the end of the downstream request (or the start of a retry);
   * per_try_idle_timeout from the start of the attempt, re-armed by response data.
   */
  private armPerTryTimeouts(attempt: Attempt): void {
    const { perTryMs, perTryIdleMs } = this.timeouts;
    const timers = this.cfg.timers;
    if (perTryMs > 0) {
      const arm = (): void => {
        if (this.attempt !== attempt || this.done || this.responseComplete) return;
        attempt.perTryTimer = timers.setTimeout(() => {
          attempt.perTryTimer = undefined;
          this.onPerTryTimeout(attempt, false);
        }, perTryMs);
      };
      if (this.downstreamEnded) arm();
      else this.reqBody?.once('end', arm);
    }
    if (perTryIdleMs > 0) this.armPerTryIdle(attempt);
  }

  private armPerTryIdle(attempt: Attempt): void {
    const ms = this.timeouts.perTryIdleMs;
    if (attempt.perTryIdleTimer !== undefined)
      this.cfg.timers.clearTimeout(attempt.perTryIdleTimer);
    attempt.perTryIdleTimer = this.cfg.timers.setTimeout(() => {
      attempt.perTryIdleTimer = undefined;
      this.onPerTryTimeout(attempt, true);
    }, ms);
  }

  private clearAttemptTimers(attempt: Attempt | undefined): void {
    if (!attempt) return;
    if (attempt.perTryTimer !== undefined) this.cfg.timers.clearTimeout(attempt.perTryTimer);
    if (attempt.perTryIdleTimer !== undefined)
      this.cfg.timers.clearTimeout(attempt.perTryIdleTimer);
    attempt.perTryTimer = attempt.perTryIdleTimer = undefined;
  }

  /** Envoy's onPerTryTimeout: ignored once the response started; else reset, retry or 504 UT. */
  private onPerTryTimeout(attempt: Attempt, idle: boolean): void {
    if (this.attempt !== attempt || this.done || this.ds.responseStarted) return;
    const cluster = this.cluster;
    cluster?.stats
      .counter(idle ? 'upstream_rq_per_try_idle_timeout' : 'upstream_rq_per_try_timeout')
      .inc();
    // A timeout is a local-origin failure of the host (Envoy's LOCAL_ORIGIN_TIMEOUT, 504).
    this.cluster?.outlierSink?.(attempt.host)?.putResult('LOCAL_ORIGIN_TIMEOUT', 504);
    this.abandonAttempt();
    if (this.maybeRetryReset('per_try_timeout', attempt)) return;
    this.localReply(
      504,
      'upstream request timeout',
      idle ? PER_TRY_IDLE_TIMEOUT_DETAILS : PER_TRY_TIMEOUT_DETAILS,
      F.UPSTREAM_REQUEST_TIMEOUT,
    );
  }

  /** Resets the current attempt quietly (its callbacks are ignored from now on). */
  private abandonAttempt(): void {
    const attempt = this.attempt;
    if (!attempt) return;
    this.attempt = undefined;
    if (this.upstream === attempt.upstream) this.upstream = undefined;
    this.clearAttemptTimers(attempt);
    this.replay?.detach();
    attempt.upstream?.reset();
  }

  /** The cluster's retry stats (looked up by name: cluster.<name>.upstream_rq_retry...). */
  private retryStats(): RetryStats | undefined {
    const s = this.cluster?.stats;
    if (!s) return undefined;
    // Looked up once per cluster scope, not per response (four name lookups each time).
    let r = retryStatsByScope.get(s);
    if (!r) {
      r = {
        upstream_rq_retry: s.counter('upstream_rq_retry'),
        upstream_rq_retry_success: s.counter('upstream_rq_retry_success'),
        upstream_rq_retry_overflow: s.counter('upstream_rq_retry_overflow'),
        upstream_rq_retry_limit_exceeded: s.counter('upstream_rq_retry_limit_exceeded'),
      };
      retryStatsByScope.set(s, r);
    }
    return r;
  }

  /**
   * A retry for an upstream reset or per-try timeout, when the policy and budget allow it and
   * nothing went downstream yet: true when one is scheduled. URX / UO when it could not be.
   */
  private maybeRetryReset(
    reason: UpstreamResetReason | 'per_try_timeout',
    attempt: Attempt | undefined,
  ): boolean {
    const retry = this.retry;
    if (!retry || this.done || this.ds.responseStarted || this.tunnelUpstream) return false;
    // A circuit breaker's refusal is never retried (Envoy: overflow is not a retriable reset).
    if (reason === 'overflow') return false;
    const would = retry.wouldRetryFromReset(reason, attempt?.requestStarted ?? true);
    return this.retryDecision(
      retry.shouldRetry(would, this.cluster?.resources, this.retryStats(), false),
    );
  }

  private retryDecision(status: ReturnType<RetryState['shouldRetry']>): boolean {
    switch (status) {
      case 'retry':
        this.scheduleRetry();
        return true;
      case 'limit_exceeded':
        this.info.responseFlags.add(F.UPSTREAM_RETRY_LIMIT_EXCEEDED);
        return false;
      case 'overflow':
        this.info.responseFlags.add(F.UPSTREAM_OVERFLOW);
        return false;
      default:
        return false;
    }
  }

  /** Waits the back-off, then retries (the route timeout keeps running meanwhile). */
  private scheduleRetry(): void {
    this.abandonAttempt();
    const retry = this.retry;
    if (!retry) return;
    const delay = retry.nextBackoffMs(this.cfg.random);
    this.backoffTimer = this.cfg.timers.setTimeout(() => {
      this.backoffTimer = undefined;
      this.doRetry();
    }, delay);
  }

  private doRetry(): void {
    const cluster = this.cluster;
    if (this.done || this.ds.responseStarted || this.ds.aborted || !cluster) return;
    // The same choice as the first attempt's (same hash), avoiding the hosts tried
    // (previous_hosts).
    const predicate = this.retry?.hostPredicate();
    const host = cluster.choose({
      originalDestination: this.sctx.originalDestination,
      requestHeader: (n) => this.headers.get(n),
      ...(this.lbHash !== undefined ? { hash: this.lbHash } : {}),
      ...(predicate ?? {}),
    });
    if (!host) {
      this.localReply(503, 'no healthy upstream', DETAILS.noHealthyUpstream, F.NO_HEALTHY_UPSTREAM);
      return;
    }
    this.host = host;
    this.info.upstreamHost = host.id;
    const h = this.headers.map;
    this.info.attemptCount += 1;
    if (this.vhost?.includeRequestAttemptCount)
      h['x-envoy-attempt-count'] = String(this.info.attemptCount);
    setTimeoutHeaders(
      h,
      this.timeouts,
      this.cfg.timers.now() - this.firstAttemptAt,
      !this.cfg.suppressEnvoyHeaders,
      this.rewriteGrpcTimeout,
    );
    const transport = cluster.transportSocketFor(host);
    if (transport !== 'raw_buffer' && transport !== 'tls') {
      this.retry?.onHostAttempted(host);
      this.onUpstreamReset(
        'transport_not_implemented',
        `unsupported_transport_socket{${transport.unsupported}}`,
      );
      return;
    }
    this.startAttempt(cluster, host);
  }

  private armRouteTimeout(ms: number): void {
    // The route timeout runs from the end of the downstream request (Envoy's global timeout).
    const arm = (): void => {
      if (this.done || this.responseComplete) return;
      this.routeTimer = this.cfg.timers.setTimeout(() => this.onRouteTimeout(), ms);
    };
    if (this.downstreamEnded) arm();
    else this.reqBody?.once('end', arm);
  }

  private onUpstreamReady(
    sink: Writable | undefined,
    localAddress: string | undefined,
    attempt: Attempt,
  ): void {
    if (localAddress !== undefined) this.info.upstreamLocalAddress = localAddress;
    if (this.done) return;
    const body = this.reqBody;
    if (body && sink && !this.sctx.upgrade) {
      attempt.requestStarted = true;
      const replay = this.replay;
      if (replay) {
        if (!replay.attach(sink)) {
          // Past the buffer limit on a retry: nothing left to replay.
          sink.destroy();
          this.abandonAttempt();
          this.localReply(
            503,
            'upstream reset before response started',
            'retry_or_shadow_abandoned',
            F.UPSTREAM_RETRY_LIMIT_EXCEEDED,
          );
        }
        return;
      }
      body.on('data', (chunk: Buffer) => {
        this.info.bytesReceived += chunk.length;
        if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
      });
      body.pipe(sink);
    } else {
      // No body (the pool has sent the request already), or an upgrade's tunnel follows.
      attempt.requestStarted = true;
      sink?.end();
    }
  }

  private onUpstreamHeaders(
    status: number,
    headers: HeaderMap,
    endStream: boolean,
    body: UpstreamResponseBody | undefined,
  ): void {
    if (this.done || this.ds.aborted) {
      body?.resume();
      return;
    }
    const cstats = this.cluster?.clusterStats;
    cstats?.responseCode(status);
    const retry = this.retry;
    if (retry && !this.ds.responseStarted) {
      const would = retry.wouldRetryFromHeaders(status, headers);
      const decision = retry.shouldRetry(would, this.cluster?.resources, this.retryStats(), true);
      if (decision === 'retry') {
        // Envoy resets a retried response that is still streaming; a complete one leaves its
        // connection to the pool (once the request is complete too: else it is reset).
        body?.resume();
        if (endStream && this.attempt && this.downstreamEnded) this.attempt.upstream = undefined;
        this.scheduleRetry();
        return;
      }
      this.retryDecision(decision);
    }
    this.clearAttemptTimers(this.attempt);
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
    const web = this.grpcWeb;
    if (web && body && web.needsTransformation(status, headers, endStream)) {
      this.sendAsGrpcWebStatus(web, status, headers, body);
      return;
    }
    this.sendHeaders(status, headers, endStream);
    if (endStream || !body) {
      body?.resume();
      this.onResponseComplete();
      return;
    }
    // One 'data' listener counts, and forwards with backpressure: cheaper per request than
    // pipe(), which adds and later removes half a dozen listeners on both streams.
    const sink = this.sctx.isHead ? undefined : this.ds.sink;
    body.on('data', (chunk: Buffer) => {
      if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
      const out = web ? web.onData(chunk) : chunk;
      if (out === undefined) return;
      this.info.bytesSent += out.length;
      if (sink && !sink.write(out) && !sink.destroyed) {
        body.pause();
        sink.once('drain', () => body.resume());
      }
    });
    body.once('end', () => {
      const trailers = this.upstream?.trailers() as HeaderMap | undefined;
      if (trailers) {
        this.responseTrailers = trailers;
        this.noteGrpcStatus(trailers);
      }
      this.onResponseComplete();
      if (web) {
        // gRPC-Web: the trailers end the body as a trailer frame.
        const frame = web.onEnd(trailers);
        this.info.bytesSent += frame.length;
        sink?.write(frame);
        this.ds.finish(undefined);
      } else this.ds.finish(trailers);
    });
  }

  /**
   * gRPC-Web: a response that is not gRPC goes downstream as grpc-status (from its HTTP status)
   * and grpc-message (its body) headers, once its body has ended.
   */
  private sendAsGrpcWebStatus(
    web: GrpcWebResponse,
    status: number,
    headers: HeaderMap,
    body: UpstreamResponseBody,
  ): void {
    const kept: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      if (this.idleTimeoutMs > 0) this.lastActivity = this.cfg.timers.now();
      if (size >= MAX_GRPC_MESSAGE_BYTES) return;
      kept.push(chunk);
      size += chunk.length;
    });
    body.once('end', () => {
      if (this.done) return;
      web.transformNonGrpc(status, headers, Buffer.concat(kept, size));
      this.noteGrpcStatus(headers);
      this.onResponseComplete();
      this.sendHeaders(status, headers, true);
    });
  }

  private noteGrpcStatus(h: HeaderMap): void {
    const g = headerValue(h, 'grpc-status');
    if (g !== undefined && /^\d+$/.test(g)) this.info.grpcStatus = Number(g);
  }

  /** Route / vhost / route-config (and weighted cluster) response mutations, then HCM headers. */
  private applyResponseMutations(headers: HeaderMap): void {
    const levels = this.levels('response');
    const weighted =
      this.weighted && !this.weighted.responseHeaders.empty
        ? this.weighted.responseHeaders
        : undefined;
    if (!weighted && levels.length === 0) return;
    const target = mapTarget(headers);
    if (!(weighted?.dynamic === true || levels.some((m) => m.dynamic))) {
      weighted?.apply(target);
      for (const m of levels) m.apply(target);
      return;
    }
    const ctx = (): LogContext => {
      const metadata = this.host?.metadata;
      return {
        info: this.info,
        requestHeader: (n) => this.headers.get(n),
        responseHeader: (n) => headerValue(headers, n),
        ...(metadata ? { upstreamHostMetadata: metadata } : {}),
      };
    };
    weighted?.apply(target, ctx);
    for (const m of levels) m.apply(target, ctx);
  }

  /** A grpc-web-text body that is not base64: 400, as Envoy's gRPC-Web filter answers. */
  private onGrpcWebDecodeError(e: Error): void {
    if (this.done) return;
    const details = e instanceof GrpcWebDecodeError ? e.details : 'grpc_base_64_decode_failed';
    if (this.ds.responseStarted) {
      this.resetBoth();
      return;
    }
    this.localReply(400, e.message, details);
  }

  /** Connection manager response headers (server, via, x-request-id) and filters, then sends. */
  private sendHeaders(status: number, headers: HeaderMap, endStream: boolean): void {
    const cfg = this.cfg;
    this.grpcWeb?.onHeaders(headers);
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
    if (!this.downstreamEnded && this.reqBody) {
      this.replay?.stop();
      this.reqBody.unpipe();
      this.upstream?.reset();
      this.reqBody.resume();
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
    if (this.tunnelUpstream) return;
    if (this.maybeRetryReset(reason, this.attempt)) return;
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
    if (this.attempt)
      this.cluster?.outlierSink?.(this.attempt.host)?.putResult('LOCAL_ORIGIN_TIMEOUT', 504);
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
    grpcStatus?: number,
  ): void {
    if (this.done) return;
    this.clearTimers();
    this.abandonAttempt();
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
      const grpc = grpcStatus ?? httpToGrpcStatus(status);
      headers['grpc-status'] = String(grpc);
      if (payload.length > 0) headers['grpc-message'] = encodeGrpcMessage(payload.toString());
      info.grpcStatus = grpc;
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
    if (this.reqBody && !this.downstreamEnded) {
      this.replay?.stop();
      this.reqBody.unpipe();
      this.reqBody.resume();
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
    this.clearAttemptTimers(this.attempt);
    if (this.backoffTimer !== undefined) {
      this.cfg.timers.clearTimeout(this.backoffTimer);
      this.backoffTimer = undefined;
    }
    if (this.faultTimer !== undefined) {
      this.cfg.timers.clearTimeout(this.faultTimer);
      this.faultTimer = undefined;
    }
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
    this.retry?.release();
    if (this.faultActive) {
      this.faultActive = false;
      this.cfg.fault?.release();
    }
    const info = this.info;
    info.durationMs = performance.now() - info.startMono;
    const stats = this.cfg.stats;
    stats.downstream_rq_active.dec();
    stats.downstream_rq_completed.inc();
    // Envoy: a response that ended before the whole request was read (the connection of an
    // HTTP/1.1 request closes; an HTTP/2 stream is reset).
    if (this.responseComplete && !this.ds.aborted && !this.ds.requestReceived)
      stats.downstream_rq_response_before_rq_complete.inc();
    if (info.responseCode > 0) stats.responseCode(info.responseCode);
    stats.downstream_rq_time.record(info.durationMs);
    const cb = this.cfg.onStreamComplete;
    if (!cb) return;
    const view = new FinishedStreamHeaders(
      this.headers,
      this.responseHeaders,
      this.responseTrailers,
      this.host?.metadata,
      this.cluster?.config.metadata?.filterMetadata,
    );
    try {
      cb(info, view);
    } catch {
      /* an access logger's failure must not break the stream */
    }
  }
}

type FilterMetadata = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** A finished stream's headers for access logs and metrics (one object, no closures). */
class FinishedStreamHeaders implements StreamHeaders {
  // Declared, not defined: present only when set (as the optional fields of StreamHeaders).
  declare readonly upstreamHostMetadata?: FilterMetadata;
  declare readonly upstreamClusterMetadata?: FilterMetadata;

  constructor(
    private readonly req: RequestHeaders,
    private readonly res: HeaderMap | undefined,
    private readonly tr: HeaderMap | undefined,
    hostMetadata: FilterMetadata | undefined,
    clusterMetadata: FilterMetadata | undefined,
  ) {
    if (hostMetadata)
      (this as { upstreamHostMetadata?: FilterMetadata }).upstreamHostMetadata = hostMetadata;
    if (clusterMetadata)
      (this as { upstreamClusterMetadata?: FilterMetadata }).upstreamClusterMetadata =
        clusterMetadata;
  }

  requestHeader(n: string): string | undefined {
    return this.req.get(n);
  }

  responseHeader(n: string): string | undefined {
    return this.res ? headerValue(this.res, n) : undefined;
  }

  responseTrailer(n: string): string | undefined {
    return this.tr ? headerValue(this.tr, n) : undefined;
  }
}
