// The downstream TLS transport socket (envoy.transport_sockets.tls with a DownstreamTlsContext):
// terminates TLS on the accepted connections of a filter chain with node:tls, then hands the
// decrypted socket to the chain's network filter (tcp_proxy or the HTTP connection manager,
// which picks HTTP/2 when ALPN negotiated `h2`).
//
// Per connection: the ClientHello's SNI and ALPN (from tls_inspector, or peeked here when the
// listener has none) choose the certificate (the one whose DNS SANs match the SNI, else the
// first) and whether to offer ALPN at all: as in Envoy, a client whose protocols do not overlap
// ours gets no ALPN rather than a fatal alert. The material comes from the TLS context provider
// (inline, files, SDS): a secret that has not arrived fails the connection at once
// (`server_ssl_socket_factory.downstream_context_secrets_not_ready`). After the handshake the
// client certificate is verified (trusted CA, SANs, pins); a failure closes the connection.
// Stats under `listener.<address>.ssl.*` with Envoy's names: handshake, connection_error,
// no_certificate, fail_verify_no_cert, fail_verify_error, fail_verify_san,
// fail_verify_cert_hash, versions.<v>, ciphers.<c>.
import type { X509Certificate } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { CONFIG_TYPE_URL, type DownstreamTlsContext } from '@trellis/envoy';
import { durationMs } from '../duration.js';
import { DOWNSTREAM_TLS_KEY, type DownstreamTlsDetails } from '../observability/log-context.js';
import type { StatsScope } from '../observability/stats-api.js';
import type { DownstreamTransportSocketFactory } from '../listener/network-filters.js';
import { SocketPeek } from '../listener/socket-peek.js';
import { parseClientHello } from '../listener/tls-inspector.js';
import type { ConnectionInfo } from '../listener/types.js';
import { dnsNameMatch, uriSans, verifyPeerCertificate } from './peer-verifier.js';
import type { SecretManager } from './secret-manager.js';
import {
  compileTlsContext,
  TlsContextProvider,
  type CompiledTlsContext,
  type ResolvedTls,
  type ServerCertificate,
} from './tls-context.js';

/** Metadata keys Istio's metrics and access logs read the connection's identities from. */
export const PEER_PRINCIPAL_KEY = 'io.istio.peer_principal';
export const LOCAL_PRINCIPAL_KEY = 'io.istio.local_principal';

const TLS_NAMES = new Set(['envoy.transport_sockets.tls', 'tls']);

export interface DownstreamTlsOptions {
  readonly secrets: SecretManager;
  /** Root stats scope: used when a connection does not carry its listener's scope. */
  readonly stats: StatsScope;
}

/** The transport socket factory the listener manager's network filters use for TLS. */
export function createDownstreamTlsFactory(
  opts: DownstreamTlsOptions,
): DownstreamTransportSocketFactory {
  return (ts, chain) => {
    const type = ts.typedConfig?.['@type'];
    if (
      type !== CONFIG_TYPE_URL.DownstreamTlsContext &&
      !(type === undefined && TLS_NAMES.has(ts.name ?? ''))
    )
      throw new Error(
        `transport_socket: '${ts.name ?? ''}' (${type ?? 'no typed_config'}) is not supported on a filter chain`,
      );
    const problems: string[] = [];
    const compiled = compileTlsContext(
      (ts.typedConfig ?? {}) as DownstreamTlsContext,
      'downstream',
      problems,
      'transport_socket.typed_config',
    );
    if (problems.length > 0) throw new Error(problems.join('; '));
    const provider = new TlsContextProvider(compiled, opts.secrets);
    const timeoutMs = durationMs(chain.transportSocketConnectTimeout) ?? 0;
    return (socket, conn, next) => {
      const scope = conn.listenerStats ?? opts.stats.scope('listener').scope(conn.listenerName);
      const session = new ServerTlsSession(socket, conn, next, provider, scope, timeoutMs);
      session.start();
    };
  };
}

/**
 * OpenSSL's verdict on the client's chain (what tls.Server reads into `authorizationError`; a
 * TLSSocket made by hand has to ask itself). Fails closed when it cannot be asked.
 */
function chainVerifyError(tls: TLSSocket): string | undefined {
  const handle = (tls as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  if (typeof handle?.verifyError !== 'function') return 'UNABLE_TO_CHECK_CHAIN';
  const e = handle.verifyError() as (Error & { code?: string }) | null | undefined;
  return e ? (e.code ?? e.message) : undefined;
}

/** The certificate for an SNI: exact DNS SAN, then wildcard, else the first. */
export function selectServerCertificate(
  contexts: readonly ServerCertificate[],
  sni: string | undefined,
): ServerCertificate | undefined {
  if (sni && contexts.length > 1) {
    const name = sni.toLowerCase();
    const exact = contexts.find((c) => c.dnsNames.some((d) => d.toLowerCase() === name));
    if (exact) return exact;
    const wild = contexts.find((c) => c.dnsNames.some((d) => dnsNameMatch(name, d)));
    if (wild) return wild;
  }
  return contexts[0];
}

/** One connection's handshake. */
class ServerTlsSession {
  readonly #ssl: StatsScope;
  #timer: NodeJS.Timeout | undefined;
  #done = false;

  constructor(
    private readonly raw: Socket,
    private readonly conn: ConnectionInfo,
    private readonly next: (socket: Socket) => void,
    private readonly provider: TlsContextProvider,
    private readonly scope: StatsScope,
    private readonly timeoutMs: number,
  ) {
    this.#ssl = scope.scope('ssl');
  }

  get #config(): CompiledTlsContext {
    return this.provider.config;
  }

  start(): void {
    if (this.timeoutMs > 0) {
      this.#timer = setTimeout(() => {
        this.#fail('transport socket timeout', 'connection_error');
      }, this.timeoutMs);
      this.#timer.unref();
    }
    this.raw.once('close', () => this.#clearTimer());
    if (this.conn.transportProtocol === 'tls') {
      this.#handshake(this.conn.requestedServerName, this.conn.applicationProtocols);
      return;
    }
    // No tls_inspector on the listener: read the ClientHello here (without consuming it).
    const peek = new SocketPeek(this.raw, (e) => {
      if (this.#done) return;
      if (e !== 'data') {
        peek.release();
        this.#fail('downstream closed before the TLS handshake', undefined);
        return;
      }
      onData();
    });
    const onData = (): void => {
      const r = parseClientHello(peek.data);
      if (r.kind === 'need-more') return;
      peek.release();
      if (r.kind === 'tls') this.#handshake(r.serverName, r.alpn);
      else this.#handshake(undefined, []);
    };
    peek.read();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Closes the connection; `deferred`: from inside a TLS callback (destroy on the next turn). */
  #fail(reason: string, stat: string | undefined, deferred?: () => void): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    if (stat) this.#ssl.counter(stat).inc();
    const info = this.conn.streamInfo;
    info.downstreamTransportFailureReason ??= reason;
    info.connectionTerminationDetails ??= reason;
    if (!deferred) {
      this.raw.destroy();
      return;
    }
    setImmediate(() => {
      deferred();
      this.raw.destroy();
    });
  }

  #handshake(sni: string | undefined, offered: readonly string[]): void {
    if (this.#done || this.raw.destroyed) return;
    const c = this.#config;
    const r = this.provider.resolve();
    if (r.kind === 'missing') {
      this.scope
        .scope('server_ssl_socket_factory')
        .counter('downstream_context_secrets_not_ready')
        .inc();
      this.#fail(`TLS_error: Secret is not supplied by SDS: ${r.name}`, 'connection_error');
      return;
    }
    if (r.kind === 'error') {
      this.#fail(`TLS_error: ${r.message}`, 'connection_error');
      return;
    }
    if (c.requireSni && !sni) {
      this.#fail('TLS_error: SNI is required (require_sni)', 'connection_error');
      return;
    }
    const resolved = r.value;
    const cert = selectServerCertificate(resolved.contexts, sni);
    if (!cert) {
      this.#fail('TLS_error: no certificate', 'connection_error');
      return;
    }
    // ALPN only when the client's protocols overlap ours: Node would otherwise end the
    // handshake with a fatal no_application_protocol alert, where Envoy goes on without.
    const alpn = c.alpn.length > 0 && c.alpn.some((p) => offered.includes(p)) ? c.alpn : undefined;
    const tls = new TLSSocket(this.raw, {
      isServer: true,
      secureContext: cert.context,
      requestCert: resolved.requestCert,
      rejectUnauthorized: false,
      ...(alpn ? { ALPNProtocols: [...alpn] } : {}),
    });
    // Before the handshake is over node reports its errors as `_tlsError` (tls.Server's
    // tlsClientError), not always as 'error': a close before 'secure' is the failure.
    // The sockets are destroyed on the next turn: destroying them from inside node's TLS
    // callbacks is not safe (node destroys a socket whose handshake failed itself).
    const onError = (e: NodeJS.ErrnoException): void => {
      if (!this.#done)
        this.#fail(`TLS_error: ${e.code ?? e.message}`, 'connection_error', () => tls.destroy());
    };
    tls.on('error', onError);
    tls.on('_tlsError', onError);
    tls.once('close', () => {
      if (!this.#done)
        this.#fail('TLS_error: connection closed during the handshake', 'connection_error', () =>
          tls.destroy(),
        );
    });
    tls.once('secure', () => {
      tls.off('_tlsError', onError);
      this.#secured(tls, resolved);
    });
  }

  #secured(tls: TLSSocket, resolved: ResolvedTls): void {
    if (this.#done) return;
    // What tls.Server does for its sockets (onServerSocketSecure): errors are the socket's
    // own from now on, and the handshake is over (node:http2 waits for it otherwise).
    const internal = tls as TLSSocket & {
      _releaseControl?: () => boolean;
      secureConnecting?: boolean;
    };
    internal._releaseControl?.();
    internal.secureConnecting = false;
    const c = this.#config;
    const peer = tls.getPeerX509Certificate();
    const v = resolved.verification;
    if (!peer && c.requireClientCertificate) {
      this.#ssl.counter('fail_verify_no_cert').inc();
      this.#fail('TLS_error: peer did not return a certificate', 'connection_error', () =>
        tls.destroy(),
      );
      return;
    }
    if (peer && v) {
      const f = verifyPeerCertificate(v, peer, chainVerifyError(tls));
      if (f) {
        this.#ssl.counter(f.stat).inc();
        this.#fail(`TLS_error: ${f.reason}`, 'connection_error', () => tls.destroy());
        return;
      }
    }
    this.#done = true;
    this.#clearTimer();
    const ssl = this.#ssl;
    ssl.counter('handshake').inc();
    if (!peer) ssl.counter('no_certificate').inc();
    const version = tls.getProtocol();
    if (version) ssl.scope('versions').counter(version).inc();
    const cipher = tls.getCipher();
    if (cipher?.name) ssl.scope('ciphers').counter(cipher.name).inc();
    const info = this.conn.streamInfo;
    const peerSan = uriSans(peer)[0];
    if (peerSan !== undefined) info.metadata.set(PEER_PRINCIPAL_KEY, peerSan);
    if (resolved.localUriSan !== undefined)
      info.metadata.set(LOCAL_PRINCIPAL_KEY, resolved.localUriSan);
    info.metadata.set(DOWNSTREAM_TLS_KEY, tlsDetails(tls, version, cipher?.name));
    this.next(tls);
  }
}

/** The connection's TLS details; certificates are read once, when first asked for. */
function tlsDetails(
  tls: TLSSocket,
  version: string | null,
  cipher: string | undefined,
): DownstreamTlsDetails {
  let peer: X509Certificate | null | undefined;
  let local: X509Certificate | null | undefined;
  return {
    version: version ?? undefined,
    cipher,
    peerCertificate: () => (peer ??= tls.getPeerX509Certificate?.() ?? null) ?? undefined,
    localCertificate: () => (local ??= tls.getX509Certificate?.() ?? null) ?? undefined,
  };
}
