// The HTTP connection manager (Envoy's `envoy.filters.network.http_connection_manager`) of one
// filter chain: takes over accepted connections (`handleConnection`), picks the codec (HTTP/1.1
// with Trellis's own server codec, http1-server.ts, HTTP/2 with node:http2: by codec_type, ALPN on
// TLS, or the h2c connection preface), enforces the request limits (header size and count, versions,
// transfer codings, timeouts) with Envoy-like local replies, sanitizes request headers
// (x-forwarded-for / -proto per use_remote_address and xff_num_trusted_hops, x-request-id,
// x-envoy-* from external clients, hop-by-hop headers, path normalization) and hands each
// request to the router (router.ts) with its StreamInfo.
import { STATUS_CODES } from 'node:http';
import {
  constants as h2constants,
  createServer as createH2Server,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders as H2Headers,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { systemTimers, type TimerApi } from '@trellis/core';
import type {
  HttpConnectionManager,
  RouteConfiguration,
  Router as RouterFilterConfig,
} from '@trellis/envoy';
import type { StatsScope } from '../observability/stats-api.js';
import { newStreamInfo, RESPONSE_FLAGS, type StreamInfo } from '../stream-info.js';
import { newRequestId } from './request-id.js';
import type { ClusterManagerApi, DestinationAddress } from '../upstream/api.js';
import { parseHostPort } from '../upstream/cluster.js';
import { durationMs } from '../duration.js';
import { H2Downstream, RawDownstream, type Downstream } from './downstream.js';
import {
  addressIp,
  appendXff,
  dropHeader,
  formatAddress,
  headerValue,
  isGrpcContentType,
  isInternalAddress,
  removeHopByHop,
  RequestHeaders,
  xffClientAddress,
  type HeaderMap,
} from './headers.js';
import { HcmStats } from './hcm-stats.js';
import {
  H1Downstream,
  Http1ServerConnection,
  type H1RequestHead,
  type Http1RequestError,
  type Http1ServerHandler,
  type Http1ServerSettings,
} from './http1-server.js';
import { corsFilterConfig } from './cors.js';
import { faultFilterConfig } from './fault.js';
import { grpcWebRequest, hasGrpcWebFilter, type GrpcWebMode } from './grpc-web.js';
import { DETAILS } from './local-reply.js';
import { normalizePath } from './path.js';
import { compileRouteConfig, stripPort, type CompiledRouteConfig } from './route-match.js';
import {
  ActiveStream,
  type HttpFilterFactory,
  type RouterConfig,
  type StreamCompleteCallback,
  type StreamContext,
} from './router.js';
import { applyXfcc, clientCertElement, xfccConfig, type XfccConfig } from './xfcc.js';

/** Envoy's max_request_headers_kb default. */
export const DEFAULT_MAX_REQUEST_HEADERS_KB = 60;
/** Envoy's common_http_protocol_options.max_headers_count default. */
export const DEFAULT_MAX_HEADERS_COUNT = 100;
/** Envoy's downstream idle_timeout default (1 hour). */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** Envoy's stream_idle_timeout default (5 minutes). */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;
/**
 * Request headers timeout when request_headers_timeout is unset. Envoy has none by default;
 * Trellis keeps Node's 60 s as a guard against clients that never finish their headers.
 */
export const DEFAULT_REQUEST_HEADERS_TIMEOUT_MS = 60_000;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** What the listener knows about an accepted connection. */
export interface DownstreamConnectionInfo {
  readonly listenerName: string;
  readonly filterChainName?: string | undefined;
  readonly direction: 'inbound' | 'outbound' | 'unspecified';
  /** The address the client connected to before redirection (SO_ORIGINAL_DST), if known. */
  readonly originalDestination?: DestinationAddress | undefined;
  /** `ip:port`; from the socket when absent. */
  readonly downstreamRemoteAddress?: string | undefined;
  readonly downstreamLocalAddress?: string | undefined;
  readonly requestedServerName?: string | undefined;
  /** The listener's connection id (`%CONNECTION_ID%`). */
  readonly connectionId?: number | undefined;
  /** Copied into every stream's StreamInfo.metadata (e.g. the peer's identity). */
  readonly metadata?: ReadonlyMap<string, unknown> | undefined;
}

export interface HttpConnectionManagerOptions {
  /** The decoded HttpConnectionManager typed_config. */
  readonly config: HttpConnectionManager;
  readonly clusterManager: ClusterManagerApi;
  /** RDS: the route configuration of that name now (undefined before it arrives → 404 NR). */
  readonly routeConfig?: (name: string) => RouteConfiguration | undefined;
  /** Root stats scope: records under `http.<stat_prefix>.*`. */
  readonly stats: StatsScope;
  readonly onStreamComplete?: StreamCompleteCallback | undefined;
  /** Per-stream hooks (Istio metadata exchange and the like), in filter order. */
  readonly filters?: readonly HttpFilterFactory[] | undefined;
  readonly timers?: TimerApi | undefined;
  readonly random?: (() => number) | undefined;
  /** Each mirrored (shadow) request's outcome, for tests and logs. */
  readonly onShadowDone?: ((cluster: string, outcome: string) => void) | undefined;
}

interface ConnState {
  readonly conn: DownstreamConnectionInfo;
  readonly socket: Socket;
  readonly tls: boolean;
  readonly remote: string;
  readonly local: string;
  readonly localPort: number;
  /** The HTTP/1.1 codec of the connection (once it serves HTTP/1.1). */
  h1?: Http1ServerConnection<ConnState>;
  h2Streams: number;
  /** This hop's XFCC element (computed on first use; null: no client certificate). */
  xfcc?: string | null;
}

type Codec = 'h1' | 'h2';

/** One HttpConnectionManager configuration, serving any number of connections. */
/** An absolute-form request-target split up (`scheme` undefined: neither http nor https). */
interface AbsoluteUrl {
  readonly scheme: 'http' | 'https' | undefined;
  readonly authority: string;
  readonly rest: string;
}

const SCHEME_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[a-zA-Z0-9+.-]/.test(ch)) SCHEME_CHAR[c] = 1;
}

/**
 * `scheme://authority[rest]` (RFC 9112 absolute-form; the scheme a letter then letters, digits,
 * `+`, `-`, `.`; the authority up to `/`, `?` or `#`, not empty); undefined when the target is not
 * one. By hand: the explicit capture port sees one per request.
 */
export function splitAbsoluteUrl(url: string): AbsoluteUrl | undefined {
  const c0 = url.charCodeAt(0) | 0x20;
  if (!(c0 >= 0x61 && c0 <= 0x7a)) return undefined;
  let i = 1;
  while (i < url.length && SCHEME_CHAR[url.charCodeAt(i)] === 1) i++;
  if (
    url.charCodeAt(i) !== 0x3a ||
    url.charCodeAt(i + 1) !== 0x2f ||
    url.charCodeAt(i + 2) !== 0x2f
  )
    return undefined;
  const start = i + 3;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 0x2f || c === 0x3f || c === 0x23) break;
    end++;
  }
  if (end === start) return undefined;
  const name = i === 4 || i === 5 ? url.slice(0, i).toLowerCase() : '';
  const scheme = name === 'http' ? 'http' : name === 'https' ? 'https' : undefined;
  return { scheme, authority: url.slice(start, end), rest: url.slice(end) };
}

export class HttpConnectionManagerImpl implements Http1ServerHandler<ConnState> {
  readonly stats: HcmStats;
  private readonly cfg: HttpConnectionManager;
  private readonly routerConfig: RouterConfig;
  private readonly h1Settings: Http1ServerSettings;
  private h2: Http2Server | undefined;
  private readonly conns = new Map<Socket, ConnState>();
  private readonly sessions = new Map<Http2Session, ConnState>();
  private pendingH2: ConnState | undefined;
  private draining = false;
  private readonly maxHeaderBytes: number;
  private readonly maxHeadersCount: number;
  private readonly headersTimeoutMs: number;
  /** The HCM's chain has the gRPC-Web filter. */
  private readonly grpcWebFilter: boolean;
  private readonly idleTimeoutMs: number;
  private readonly useRemoteAddress: boolean;
  private readonly xffTrustedHops: number;
  private readonly skipXffAppend: boolean;
  private readonly xfcc: XfccConfig;
  private readonly generateRequestId: boolean;
  private readonly preserveExternalRequestId: boolean;
  private readonly normalize: boolean;
  private readonly mergeSlashes: boolean;
  private readonly acceptHttp10: boolean;
  private readonly defaultHostForHttp10: string | undefined;
  private readonly allowAbsoluteUrl: boolean;
  private readonly underscores: 'ALLOW' | 'REJECT_REQUEST' | 'DROP_HEADER';
  private readonly stripAnyHostPort: boolean;
  private readonly stripMatchingHostPort: boolean;
  private readonly onStreamComplete: StreamCompleteCallback | undefined;

  constructor(private readonly options: HttpConnectionManagerOptions) {
    const c = options.config;
    this.cfg = c;
    this.stats = new HcmStats(options.stats.scope('http').scope(c.statPrefix ?? ''));
    this.onStreamComplete = options.onStreamComplete;
    this.maxHeaderBytes = (c.maxRequestHeadersKb || DEFAULT_MAX_REQUEST_HEADERS_KB) * 1024;
    this.maxHeadersCount =
      c.commonHttpProtocolOptions?.maxHeadersCount || DEFAULT_MAX_HEADERS_COUNT;
    this.headersTimeoutMs =
      durationMs(c.requestHeadersTimeout) || DEFAULT_REQUEST_HEADERS_TIMEOUT_MS;
    this.idleTimeoutMs =
      durationMs(c.commonHttpProtocolOptions?.idleTimeout) ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.useRemoteAddress = c.useRemoteAddress === true;
    this.xffTrustedHops = c.xffNumTrustedHops ?? 0;
    this.skipXffAppend = c.skipXffAppend === true;
    this.xfcc = xfccConfig(c);
    this.generateRequestId = c.generateRequestId !== false;
    this.preserveExternalRequestId = c.preserveExternalRequestId === true;
    this.normalize = c.normalizePath === true;
    this.mergeSlashes = c.mergeSlashes === true;
    this.acceptHttp10 = c.httpProtocolOptions?.acceptHttp10 === true;
    this.defaultHostForHttp10 = c.httpProtocolOptions?.defaultHostForHttp10;
    this.allowAbsoluteUrl = c.httpProtocolOptions?.allowAbsoluteUrl !== false;
    this.underscores = c.commonHttpProtocolOptions?.headersWithUnderscoresAction ?? 'ALLOW';
    this.stripAnyHostPort = c.stripAnyHostPort === true;
    this.stripMatchingHostPort = c.stripMatchingHostPort === true;

    const upgrades = new Map<string, boolean>();
    for (const u of c.upgradeConfigs ?? [])
      if (u.upgradeType) upgrades.set(u.upgradeType.toLowerCase(), u.enabled !== false);
    this.grpcWebFilter = hasGrpcWebFilter(c.httpFilters);
    const routerFilter = c.httpFilters?.find(
      (f) =>
        f.name === 'envoy.filters.http.router' ||
        f.typedConfig?.['@type']?.endsWith('.router.v3.Router'),
    );
    const routerTyped = routerFilter?.typedConfig as RouterFilterConfig | undefined;
    let routes: () => CompiledRouteConfig | undefined;
    if (c.routeConfig) {
      const compiled = compileRouteConfig(c.routeConfig);
      routes = () => compiled;
    } else {
      const name = c.rds?.routeConfigName ?? '';
      const lookup = options.routeConfig;
      routes = () => {
        const rc = lookup?.(name);
        return rc ? compileRouteConfig(rc) : undefined;
      };
    }
    this.routerConfig = {
      clusterManager: options.clusterManager,
      stats: this.stats,
      routeConfig: routes,
      serverName: c.serverName || 'envoy',
      serverHeaderTransformation: c.serverHeaderTransformation ?? 'OVERWRITE',
      suppressEnvoyHeaders: routerTyped?.suppressEnvoyHeaders === true,
      via: c.via || undefined,
      upgrades,
      explicitProxy: c.httpProtocolOptions?.allowAbsoluteUrl === true,
      streamIdleTimeoutMs: durationMs(c.streamIdleTimeout) ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
      alwaysSetRequestIdInResponse: c.alwaysSetRequestIdInResponse === true,
      proxy100Continue: (c as { proxy100Continue?: boolean }).proxy100Continue === true,
      filters: options.filters ?? [],
      onStreamComplete: options.onStreamComplete,
      random: options.random ?? Math.random,
      timers: options.timers ?? systemTimers,
      cors: corsFilterConfig(c.httpFilters, options.stats.scope('http').scope(c.statPrefix ?? '')),
      fault: faultFilterConfig(
        c.httpFilters,
        options.stats.scope('http').scope(c.statPrefix ?? ''),
      ),
      onShadowDone: options.onShadowDone,
    };

    this.h1Settings = {
      maxHeaderBytes: this.maxHeaderBytes,
      headersTimeoutMs: this.headersTimeoutMs,
      requestTimeoutMs: durationMs(c.requestTimeout) ?? 0,
      idleTimeoutMs: this.idleTimeoutMs,
      maxRequestsPerConnection: c.commonHttpProtocolOptions?.maxRequestsPerConnection ?? 0,
    };
  }

  /** Connections currently served. */
  get activeConnections(): number {
    return this.conns.size;
  }

  /** Serves an accepted connection (plain TCP or TLS, already through the listener filters). */
  handleConnection(socket: Socket, conn: DownstreamConnectionInfo): void {
    const tls = (socket as TLSSocket).encrypted === true;
    const state: ConnState = {
      conn,
      socket,
      tls,
      remote:
        conn.downstreamRemoteAddress ?? formatAddress(socket.remoteAddress, socket.remotePort),
      local: conn.downstreamLocalAddress ?? formatAddress(socket.localAddress, socket.localPort),
      localPort: socket.localPort ?? 0,
      h2Streams: 0,
    };
    const s = this.stats;
    s.downstream_cx_total.inc();
    s.downstream_cx_active.inc();
    this.conns.set(socket, state);
    const start = performance.now();
    socket.once('close', () => {
      this.conns.delete(socket);
      s.downstream_cx_active.dec();
      s.downstream_cx_destroy.inc();
      s.downstream_cx_rx_bytes_total.inc(socket.bytesRead);
      s.downstream_cx_tx_bytes_total.inc(socket.bytesWritten);
      s.downstream_cx_length_ms.record(performance.now() - start);
    });
    socket.on('error', () => {
      /* reported by the codec */
    });
    const codec = this.cfg.codecType ?? 'AUTO';
    const alpn = tls ? (socket as TLSSocket).alpnProtocol : undefined;
    if (codec === 'HTTP2') this.serve(state, 'h2');
    else if (codec === 'HTTP1') this.serve(state, 'h1');
    // Envoy's AUTO: the protocol ALPN negotiated (`h2` or anything else: HTTP/1), else (no
    // ALPN, plaintext or TLS) the bytes: HTTP/2's connection preface or HTTP/1.
    else if (typeof alpn === 'string' && alpn !== '')
      this.serve(state, alpn === 'h2' ? 'h2' : 'h1');
    else this.sniff(state);
  }

  /** Reads until the bytes tell HTTP/2's preface from anything else, then serves. */
  private sniff(state: ConnState): void {
    const socket = state.socket;
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), this.headersTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, H2_PREFACE.length);
      const isPrefix = buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isPrefix && buf.length < H2_PREFACE.length) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.pause();
      socket.unshift(buf);
      this.serve(state, isPrefix ? 'h2' : 'h1');
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
  }

  private serve(state: ConnState, codec: Codec): void {
    const socket = state.socket;
    if (codec === 'h1') {
      this.stats.downstream_cx_http1_total.inc();
      this.stats.downstream_cx_http1_active.inc();
      socket.once('close', () => this.stats.downstream_cx_http1_active.dec());
      const h1 = new Http1ServerConnection(socket, this.h1Settings, this, state);
      state.h1 = h1;
      if (this.draining) h1.drain();
      return;
    }
    this.stats.downstream_cx_http2_total.inc();
    this.stats.downstream_cx_http2_active.inc();
    socket.once('close', () => this.stats.downstream_cx_http2_active.dec());
    // node:http2 hands a TLS socket without ALPN `h2` to HTTP/1 ('unknownProtocol'); HTTP/2
    // was chosen here (codec HTTP2, or the preface without ALPN), so say so.
    const t = socket as TLSSocket;
    if (state.tls && t.alpnProtocol !== 'h2')
      Object.defineProperty(t, 'alpnProtocol', { value: 'h2', configurable: true, writable: true });
    this.pendingH2 = state;
    this.h2Server().emit('connection', socket);
    this.pendingH2 = undefined;
  }

  private h2Server(): Http2Server {
    if (this.h2) return this.h2;
    const o = this.cfg.http2ProtocolOptions;
    const server = createH2Server({
      maxHeaderListPairs: this.maxHeadersCount + 8,
      maxSessionMemory: 64,
      settings: {
        enablePush: false,
        maxHeaderListSize: this.maxHeaderBytes,
        maxConcurrentStreams: Math.min(o?.maxConcurrentStreams ?? 2_147_483_647, 4_294_967_295),
        ...(o?.initialStreamWindowSize !== undefined
          ? { initialWindowSize: o.initialStreamWindowSize }
          : {}),
      },
    });
    server.on('session', (session: Http2Session) => {
      const state = this.pendingH2;
      if (!state) {
        session.destroy();
        return;
      }
      this.sessions.set(session, state);
      session.once('close', () => this.sessions.delete(session));
      session.on('error', (err: NodeJS.ErrnoException) => {
        if (!isDisconnectError(err.code ?? '')) this.stats.downstream_cx_protocol_error.inc();
      });
      if (o?.initialConnectionWindowSize !== undefined) {
        try {
          session.setLocalWindowSize(o.initialConnectionWindowSize);
        } catch {
          /* keep the default */
        }
      }
      if (this.idleTimeoutMs > 0)
        session.setTimeout(this.idleTimeoutMs, () => {
          if (state.h2Streams !== 0) return;
          this.stats.downstream_cx_idle_timeout.inc();
          session.close();
        });
      if (this.draining) session.close();
    });
    server.on('stream', (stream: ServerHttp2Stream, headers: H2Headers, flags: number) =>
      this.onH2Stream(stream, headers, flags),
    );
    this.h2 = server;
    return server;
  }

  // ---- HTTP/1.1 ----

  /** Envoy's checks of an HTTP/1 request head; the error reply, or undefined when it passes. */
  private checkH1(head: H1RequestHead): { status: number; details: string } | undefined {
    const v = head.httpVersion;
    if (v === '1.0') {
      if (!this.acceptHttp10) return { status: 426, details: DETAILS.lowVersion };
    } else if (v === '0.9') return { status: 426, details: DETAILS.lowVersion };
    else if (v !== '1.1') return { status: 400, details: 'http1.codec_error' };
    if (head.headerCount > this.maxHeadersCount)
      return { status: 431, details: DETAILS.tooManyHeaders };
    if (this.underscores === 'REJECT_REQUEST' && head.underscore)
      return { status: 400, details: 'http1.unexpected_underscore' };
    if (head.hostCount > 1) return { status: 400, details: 'http1.codec_error' };
    const te = head.te;
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked')
      return { status: 501, details: DETAILS.invalidTransferEncoding };
    return undefined;
  }

  private h1Headers(
    head: H1RequestHead,
    state: ConnState,
    isConnect: boolean,
  ):
    { headers: RequestHeaders; target?: DestinationAddress } | { status: number; details: string } {
    const map = head.headers;
    let authority = headerValue(map, 'host');
    dropHeader(map, 'host');
    let url = head.url;
    let scheme = state.tls ? 'https' : 'http';
    let target: DestinationAddress | undefined;
    if (isConnect) {
      const hp = parseHostPort(url);
      if (!hp) return { status: 400, details: 'http1.invalid_url' };
      authority = url;
      target = hp;
      url = '';
    } else if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
      const m = splitAbsoluteUrl(url);
      if (!m) return { status: 400, details: 'http1.invalid_url' };
      if (!this.allowAbsoluteUrl) return { status: 400, details: 'absolute_path_rejected' };
      if (m.scheme === undefined) return { status: 400, details: 'http1.invalid_url' };
      scheme = m.scheme;
      authority = m.authority;
      url = m.rest || '/';
      if (url.charCodeAt(0) !== 47) url = '/' + url;
      const hp = parseHostPort(authority);
      target = hp ?? { address: authority, port: scheme === 'https' ? 443 : 80 };
      this.stats.downstream_rq_non_relative_path.inc();
    }
    if (authority === undefined || authority === '') {
      if (head.httpVersion === '1.0' && this.defaultHostForHttp10)
        authority = this.defaultHostForHttp10;
      else return { status: 400, details: DETAILS.missingHostHeader };
    }
    return {
      headers: new RequestHeaders(map, head.method, url, authority, scheme),
      ...(target ? { target } : {}),
    };
  }

  /** Http1ServerHandler: a request head from the HTTP/1.1 codec. */
  onRequest(conn: Http1ServerConnection<ConnState>, ds: H1Downstream): void {
    const state = conn.context;
    const head = ds.head;
    const expectContinue = head.expectContinue;
    const bad = this.checkH1(head);
    if (bad) {
      this.rejectRequest(state, ds, head, bad.status, bad.details, expectContinue);
      return;
    }
    const parsed = this.h1Headers(head, state, false);
    if ('status' in parsed) {
      this.rejectRequest(state, ds, head, parsed.status, parsed.details, expectContinue);
      return;
    }
    if (expectContinue && !this.routerConfig.proxy100Continue) {
      // Envoy's default: answer 100 Continue here and do not forward `expect`.
      ds.sendContinue();
      delete parsed.headers.map.expect;
    }
    this.startStream(state, ds, parsed.headers, parsed.target, {
      isConnect: false,
      upgrade: undefined,
      expectContinue,
    });
  }

  /** Http1ServerHandler: an Upgrade or CONNECT request; the codec gave up the socket. */
  onUpgrade(conn: Http1ServerConnection<ConnState>, head: H1RequestHead, rest: Buffer): void {
    const state = conn.context;
    const socket = conn.socket;
    const isConnect = head.method === 'CONNECT';
    const ds = new RawDownstream(
      head.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      head.method,
      socket,
      rest,
    );
    const bad = this.checkH1(head);
    if (bad) {
      this.rejectRequest(state, ds, head, bad.status, bad.details, false);
      return;
    }
    const parsed = this.h1Headers(head, state, isConnect);
    if ('status' in parsed) {
      this.rejectRequest(state, ds, head, parsed.status, parsed.details, false);
      return;
    }
    let upgrade: string | undefined;
    if (!isConnect) {
      upgrade = headerValue(parsed.headers.map, 'upgrade')?.trim().toLowerCase();
      // Envoy never upgrades to h2c from HTTP/1.1: the request is served as HTTP/1.1 (here
      // without its body, on a connection that closes after the response).
      if (upgrade === 'h2c' || upgrade === '') upgrade = undefined;
    }
    this.startStream(state, ds, parsed.headers, parsed.target, {
      isConnect,
      upgrade,
      expectContinue: false,
    });
  }

  /** Answers a request the codec checks refused, recording it like Envoy (DPE). */
  private rejectRequest(
    state: ConnState,
    ds: Downstream,
    head: H1RequestHead,
    status: number,
    details: string,
    expectContinue: boolean,
  ): void {
    const headers = new RequestHeaders(
      head.headers,
      head.method,
      head.url,
      headerValue(head.headers, 'host') ?? '',
      state.tls ? 'https' : 'http',
    );
    const stream = this.newStream(state, ds, headers, undefined, {
      isConnect: false,
      upgrade: undefined,
      expectContinue,
    });
    if (status === 400 || status === 431 || status === 501) {
      stream.info.responseFlags.add(RESPONSE_FLAGS.DOWNSTREAM_PROTOCOL_ERROR);
      this.stats.downstream_cx_protocol_error.inc();
    }
    if (ds instanceof H1Downstream) ds.closeConnection();
    stream.localReply(
      status,
      status === 426 ? '' : (STATUS_CODES[status] ?? ''),
      details,
      undefined,
      undefined,
      false,
    );
  }

  /**
   * Http1ServerHandler: bytes the codec refuses (or request headers not received in time). Mid
   * request, the stream ends with DPE; the error response is written when no response started.
   */
  onCodecError(
    conn: Http1ServerConnection<ConnState>,
    ds: H1Downstream | undefined,
    error: Http1RequestError,
  ): void {
    const state = conn.context;
    const { status, details } = error;
    if (status === 408) this.stats.downstream_rq_header_timeout.inc();
    else this.stats.downstream_cx_protocol_error.inc();
    const active = ds?.stream;
    let canReply = true;
    if (active) canReply = active.onDownstreamProtocolError(status, details);
    else this.recordCodecError(state, status, details);
    if (canReply && ds?.responseStarted !== true) this.writeCodecError(conn.socket, status);
    else conn.socket.destroy();
  }

  /** Http1ServerHandler: request_timeout expired before the whole request arrived (Envoy: 408). */
  onRequestTimeout(_conn: Http1ServerConnection<ConnState>, ds: H1Downstream): void {
    const stream = ds.stream;
    if (!stream) return;
    this.stats.downstream_rq_timeout.inc();
    ds.closeConnection();
    stream.localReply(408, 'request timeout', DETAILS.requestOverallTimeout);
  }

  /** Http1ServerHandler: a keep-alive connection idle for idle_timeout is being closed. */
  onIdleTimeout(): void {
    this.stats.downstream_cx_idle_timeout.inc();
  }

  /** A codec error outside any stream, for access logs (Envoy logs them as requests with DPE). */
  private recordCodecError(state: ConnState | undefined, status: number, details: string): void {
    const info = this.baseInfo(state, 'HTTP/1.1');
    info.responseCode = status;
    info.responseCodeDetails = details;
    if (status !== 408) info.responseFlags.add(RESPONSE_FLAGS.DOWNSTREAM_PROTOCOL_ERROR);
    info.durationMs = 0;
    this.stats.downstream_rq_total.inc();
    this.stats.responseCode(status);
    try {
      this.onStreamComplete?.(info, EMPTY_HEADERS);
    } catch {
      /* an access logger's failure must not break the connection */
    }
  }

  /** Writes Envoy's codec-error response and closes the connection. */
  private writeCodecError(socket: Socket, status: number): void {
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    const text = STATUS_CODES[status] ?? 'Bad Request';
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\ncontent-length: ${Buffer.byteLength(text)}\r\ncontent-type: text/plain\r\n` +
        `server: ${this.routerConfig.serverName}\r\nconnection: close\r\n\r\n${text}`,
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  // ---- HTTP/2 ----

  private onH2Stream(stream: ServerHttp2Stream, h: H2Headers, flags: number): void {
    // A stream the codec already reset (e.g. content-length mismatch in the same packet) arrives
    // destroyed, and errors: without a listener that error would be uncaught.
    stream.on('error', () => {});
    if (stream.destroyed) return;
    const state = this.sessions.get(stream.session as Http2Session);
    if (!state) {
      stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    state.h2Streams++;
    stream.once('close', () => state.h2Streams--);
    const endStream = (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    const method = h[':method'] ?? '';
    const isConnect = method === 'CONNECT';
    const path = h[':path'] ?? '';
    const authority = h[':authority'] ?? h.host ?? '';
    const scheme = h[':scheme'] ?? (state.tls ? 'https' : 'http');
    const map: HeaderMap = {};
    for (const k of Object.keys(h)) if (k.charCodeAt(0) !== 58 && k !== 'host') map[k] = h[k];
    // A CONNECT stream's body is the tunnel.
    const ds = new H2Downstream(stream, endStream && !isConnect);
    const headers = new RequestHeaders(map, method, isConnect ? '' : path, authority, scheme);
    let target: DestinationAddress | undefined;
    let error: { status: number; details: string } | undefined;
    if (this.underscores === 'REJECT_REQUEST' && Object.keys(map).some((k) => k.includes('_')))
      error = { status: 400, details: 'http2.unexpected_underscore' };
    else if (Object.keys(map).length > this.maxHeadersCount)
      error = { status: 431, details: 'http2.too_many_headers' };
    else if (authority === '') error = { status: 400, details: DETAILS.missingHostHeader };
    else if (isConnect) {
      target = parseHostPort(authority);
      if (!target) error = { status: 400, details: 'http2.invalid_authority' };
    } else if (path.charCodeAt(0) !== 47 && !(method === 'OPTIONS' && path === '*'))
      error = { status: 400, details: 'http2.invalid_path' };
    if (error) {
      const s = this.newStream(state, ds, headers, undefined, {
        isConnect: false,
        upgrade: undefined,
        expectContinue: false,
      });
      s.info.responseFlags.add(RESPONSE_FLAGS.DOWNSTREAM_PROTOCOL_ERROR);
      s.localReply(
        error.status,
        STATUS_CODES[error.status] ?? '',
        error.details,
        undefined,
        undefined,
        false,
      );
      return;
    }
    this.startStream(state, ds, headers, target, {
      isConnect,
      upgrade: undefined,
      expectContinue: false,
    });
  }

  // ---- Streams ----

  private baseInfo(state: ConnState | undefined, protocol: StreamInfo['protocol']): StreamInfo {
    const conn = state?.conn;
    const info = newStreamInfo({
      protocol,
      listenerName: conn?.listenerName ?? '',
      direction: conn?.direction ?? 'unspecified',
      downstreamRemoteAddress: state?.remote ?? '',
      downstreamLocalAddress: state?.local ?? '',
    });
    if (conn?.filterChainName !== undefined) info.filterChainName = conn.filterChainName;
    if (conn?.requestedServerName !== undefined)
      info.requestedServerName = conn.requestedServerName;
    if (conn?.connectionId !== undefined) info.connectionId = conn.connectionId;
    if (conn?.metadata) info.inheritMetadata(conn.metadata);
    return info;
  }

  private newStream(
    state: ConnState,
    ds: Downstream,
    headers: RequestHeaders,
    target: DestinationAddress | undefined,
    opts: {
      isConnect: boolean;
      upgrade: string | undefined;
      expectContinue: boolean;
      grpcWeb?: GrpcWebMode | undefined;
    },
    internal = false,
    forwardedProto = state.tls ? 'https' : 'http',
  ): ActiveStream {
    const info = this.baseInfo(state, ds.protocol);
    info.method = headers.method;
    info.path = headers.path;
    info.authority = headers.authority;
    info.scheme = headers.scheme;
    const ua = headers.get('user-agent');
    if (ua !== undefined) info.userAgent = ua;
    const s = this.stats;
    s.downstream_rq_total.inc();
    (ds.protocol === 'HTTP/2' ? s.downstream_rq_http2_total : s.downstream_rq_http1_total).inc();
    s.downstream_rq_active.inc();
    const sctx: StreamContext = {
      originalDestination: target ?? state.conn.originalDestination,
      internal,
      forwardedProto,
      isConnect: opts.isConnect,
      upgrade: opts.upgrade,
      isGrpc: isGrpcContentType(headers.get('content-type')),
      isHead: headers.method === 'HEAD',
      expectContinue: opts.expectContinue,
      grpcWeb: opts.grpcWeb,
    };
    const stream = new ActiveStream(this.routerConfig, ds, info, headers, sctx);
    // The codec's view of its request's stream (for codec errors and timeouts mid-request).
    if (ds instanceof H1Downstream) ds.stream = stream;
    return stream;
  }

  /** Connection-manager header handling (Envoy's ConnectionManagerUtility), then the router. */
  private startStream(
    state: ConnState,
    ds: Downstream,
    headers: RequestHeaders,
    target: DestinationAddress | undefined,
    opts: { isConnect: boolean; upgrade: string | undefined; expectContinue: boolean },
  ): void {
    const map = headers.map;
    // Path normalization (normalize_path, merge_slashes); a fragment is dropped.
    if (!opts.isConnect && headers.path !== '*') {
      const hash = headers.path.indexOf('#');
      if (hash >= 0) headers.path = headers.path.slice(0, hash);
      if (this.normalize || this.mergeSlashes) {
        const p = normalizePath(headers.path, this.mergeSlashes);
        if (p === undefined) {
          const s = this.newStream(state, ds, headers, target, opts);
          s.localReply(
            400,
            'Bad Request',
            DETAILS.invalidPath,
            RESPONSE_FLAGS.DOWNSTREAM_PROTOCOL_ERROR,
            undefined,
            false,
          );
          return;
        }
        headers.path = p;
      }
    }
    if (this.underscores === 'DROP_HEADER')
      for (const k of Object.keys(map)) if (k.includes('_')) delete map[k];
    if (this.stripAnyHostPort) headers.authority = stripPort(headers.authority);
    else if (
      this.stripMatchingHostPort &&
      headers.authority.endsWith(`:${state.conn.originalDestination?.port ?? state.localPort}`)
    )
      headers.authority = stripPort(headers.authority);

    // Hop-by-hop headers never go upstream (an Upgrade's are re-added by the pool).
    removeHopByHop(map);

    // x-forwarded-for, the client address and internal / edge (use_remote_address).
    const connIp = addressIp(state.remote);
    let clientAddress = state.remote;
    let internal: boolean;
    if (this.useRemoteAddress) {
      // A Unix domain socket's client has no IP: nothing to append, and it is internal (Envoy).
      const pipe = connIp.charCodeAt(0) === 47 /* / */ || connIp.charCodeAt(0) === 64; /* @ */
      if (!this.skipXffAppend && !pipe) appendXff(map, connIp);
      if (this.xffTrustedHops > 0) {
        const ip = xffClientAddress(map, this.xffTrustedHops);
        if (ip) clientAddress = formatAddress(ip, 0);
      }
      internal =
        pipe ||
        (isInternalAddress(addressIp(clientAddress)) &&
          headerValue(map, 'x-forwarded-for') === connIp);
    } else {
      const ip = xffClientAddress(map, this.xffTrustedHops);
      if (ip) clientAddress = formatAddress(ip, 0);
      internal = false;
    }
    const edge = this.useRemoteAddress && !internal;
    if (edge) {
      for (const k of Object.keys(map)) if (k.startsWith('x-envoy-')) delete map[k];
      map['x-envoy-external-address'] = addressIp(clientAddress);
    }
    if (internal) map['x-envoy-internal'] = 'true';
    else dropHeader(map, 'x-envoy-internal');
    // x-forwarded-proto: overwritten at the edge, else set when absent.
    const connProto = state.tls ? 'https' : 'http';
    if (
      (this.useRemoteAddress && this.xffTrustedHops === 0) ||
      map['x-forwarded-proto'] === undefined
    )
      map['x-forwarded-proto'] = connProto;
    const forwardedProto = headerValue(map, 'x-forwarded-proto') ?? connProto;
    // x-forwarded-client-cert (forward_client_cert_details).
    if (this.xfcc.mode !== 'ALWAYS_FORWARD_ONLY') {
      if (state.tls && state.xfcc === undefined)
        state.xfcc = clientCertElement(state.socket as TLSSocket, this.xfcc) ?? null;
      applyXfcc(map, this.xfcc, state.xfcc ?? undefined);
    }
    // x-request-id.
    if (this.generateRequestId) {
      const cur = headerValue(map, 'x-request-id');
      if (cur === undefined || cur === '' || (edge && !this.preserveExternalRequestId))
        map['x-request-id'] = newRequestId();
    }
    if (this.routerConfig.via !== undefined) {
      const cur = headerValue(map, 'via');
      map.via = cur ? `${cur}, ${this.routerConfig.via}` : this.routerConfig.via;
    }
    // The grpc_web filter: a gRPC-Web request goes on as gRPC (grpc-web.ts).
    const grpcWeb =
      this.grpcWebFilter && !opts.isConnect && opts.upgrade === undefined
        ? grpcWebRequest(headers)
        : undefined;
    const stream = this.newStream(
      state,
      ds,
      headers,
      target,
      grpcWeb ? { ...opts, grpcWeb } : opts,
      internal,
      forwardedProto,
    );
    const info = stream.info;
    info.downstreamRemoteAddress = clientAddress;
    const xff = headerValue(map, 'x-forwarded-for');
    if (xff !== undefined) info.xForwardedFor = xff;
    const rid = headerValue(map, 'x-request-id');
    if (rid !== undefined) info.requestId = rid;
    stream.run();
  }

  // ---- Lifecycle ----

  /** Stops keep-alive (HTTP/1.1 `connection: close`, HTTP/2 GOAWAY); in-flight requests finish. */
  drain(): void {
    this.draining = true;
    for (const session of this.sessions.keys()) session.close();
    // HTTP/1.1: idle connections close now; a request in flight gets `connection: close` (or,
    // when its response already started, the connection closes after it).
    for (const state of this.conns.values()) state.h1?.drain();
  }

  /** Closes every connection now. */
  close(): void {
    this.draining = true;
    for (const session of this.sessions.keys()) session.destroy();
    for (const socket of this.conns.keys()) socket.destroy();
  }
}

const EMPTY_HEADERS = {
  requestHeader: (): undefined => undefined,
  responseHeader: (): undefined => undefined,
  responseTrailer: (): undefined => undefined,
};

/** Socket errors that mean the client went away (Envoy: DOWNSTREAM_CONNECTION_TERMINATION). */
function isDisconnectError(code: string): boolean {
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED';
}
