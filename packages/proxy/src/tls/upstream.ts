// The upstream TLS transport socket (envoy.transport_sockets.tls with an UpstreamTlsContext):
// originates TLS on a connected TCP socket with node:tls and verifies the server as Envoy does
// (the trusted CA, the SAN matchers, the pins; no host name check of its own: `sni` is only
// sent). ALPN offered: the context's alpn_protocols when set (Istio's
// ["istio-peer-exchange", "istio"] included), else what the connection pool speaks.
//
// A failure rejects with an UpstreamConnectError whose reason is Envoy's transport failure
// reason (`TLS_error:|...:TLS_error_end`), which the router turns into 503 UF with
// `upstream_reset_before_response_started{connection_failure,TLS_error:...}`. A secret that has
// not arrived fails the same way, naming it. Stats under `cluster.<name>.ssl.*` and
// `cluster.<name>.client_ssl_socket_factory.upstream_context_secrets_not_ready`.
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { UpstreamTlsContext } from '@trellis/envoy';
import type { StatsScope } from '../observability/stats-api.js';
import { UpstreamConnectError } from '../upstream/api.js';
import { verifyPeerCertificate } from './peer-verifier.js';
import type { SecretManager } from './secret-manager.js';
import { compileTlsContext, TlsContextProvider } from './tls-context.js';

/** Options of one TLS connection. */
export interface UpstreamTlsConnectOptions {
  /** SNI to send instead of the context's `sni` (auto_sni). */
  readonly sni?: string | undefined;
  /** ALPN to offer when the context sets no alpn_protocols (the pool's protocols). */
  readonly alpnFallback?: readonly string[] | undefined;
  /** Time left for the handshake (the rest of connect_timeout); 0 = none. */
  readonly timeoutMs?: number | undefined;
  /** Extra SAN that the server certificate must carry (auto_san_validation), as a DNS name. */
  readonly verifySan?: string | undefined;
}

function tlsError(what: string): string {
  return `TLS_error:|${what}:TLS_error_end`;
}

/** A cluster's TLS transport socket: its context, resolved per connection. */
export class UpstreamTlsSocketFactory {
  readonly provider: TlsContextProvider;

  /** Throws an Error naming every problem when the context cannot be built. */
  constructor(typed: UpstreamTlsContext, secrets: SecretManager, path: string) {
    const problems: string[] = [];
    const compiled = compileTlsContext(typed, 'upstream', problems, path);
    if (problems.length > 0) throw new Error(problems.join('; '));
    this.provider = new TlsContextProvider(compiled, secrets);
  }

  /** The protocols offered for a pool speaking `fallback`. */
  alpn(fallback: readonly string[] | undefined): readonly string[] {
    const own = this.provider.config.alpn;
    return own.length > 0 ? own : (fallback ?? []);
  }

  /**
   * Runs the TLS handshake on a connected socket. Resolves with the TLS socket once the
   * server is verified; rejects with an UpstreamConnectError (the socket destroyed) otherwise.
   */
  connect(
    socket: Socket,
    stats: StatsScope,
    opts: UpstreamTlsConnectOptions = {},
  ): Promise<TLSSocket> {
    const r = this.provider.resolve();
    const ssl = stats.scope('ssl');
    if (r.kind !== 'ok') {
      socket.destroy();
      if (r.kind === 'missing') {
        stats
          .scope('client_ssl_socket_factory')
          .counter('upstream_context_secrets_not_ready')
          .inc();
        return Promise.reject(
          new UpstreamConnectError(`TLS_error: Secret is not supplied by SDS: ${r.name}`),
        );
      }
      ssl.counter('connection_error').inc();
      return Promise.reject(new UpstreamConnectError(tlsError(r.message)));
    }
    const resolved = r.value;
    const ctx = resolved.contexts[0];
    const cfg = this.provider.config;
    const sni = opts.sni ?? cfg.sni;
    const alpn = this.alpn(opts.alpnFallback);
    return new Promise<TLSSocket>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const tls = tlsConnect({
        socket,
        ...(ctx ? { secureContext: ctx.context } : {}),
        ...(sni !== undefined ? { servername: sni } : {}),
        ...(alpn.length > 0 ? { ALPNProtocols: [...alpn] } : {}),
        rejectUnauthorized: false,
        // Envoy checks no host name against the SNI: only the SAN matchers (below).
        checkServerIdentity: () => undefined,
      });
      const fail = (err: UpstreamConnectError): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        tls.destroy();
        socket.destroy();
        reject(err);
      };
      const onError = (e: NodeJS.ErrnoException): void => {
        ssl.counter('connection_error').inc();
        fail(new UpstreamConnectError(tlsError(e.code ?? e.message)));
      };
      const onClose = (): void => fail(new UpstreamConnectError(tlsError('connection closed')));
      tls.on('error', onError);
      tls.once('close', onClose);
      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        timer = setTimeout(() => {
          ssl.counter('connection_error').inc();
          fail(new UpstreamConnectError('connect timeout', true));
        }, opts.timeoutMs);
      }
      tls.once('secureConnect', () => {
        if (settled) return;
        const peer = tls.getPeerX509Certificate();
        const v = resolved.verification;
        if (v) {
          // node's verdict on the chain: a code string (typed as Error) or null.
          const err = tls.authorizationError as unknown;
          const chainError =
            typeof err === 'string' ? err : err instanceof Error ? err.message : undefined;
          const f = verifyPeerCertificate(v, peer, chainError);
          if (f) {
            ssl.counter(f.stat).inc();
            ssl.counter('connection_error').inc();
            fail(new UpstreamConnectError(tlsError(`CERTIFICATE_VERIFY_FAILED:${f.reason}`)));
            return;
          }
        }
        if (opts.verifySan !== undefined && peer?.checkHost(opts.verifySan) === undefined) {
          ssl.counter('fail_verify_san').inc();
          ssl.counter('connection_error').inc();
          fail(
            new UpstreamConnectError(
              tlsError('CERTIFICATE_VERIFY_FAILED:verify cert failed: verify SAN list'),
            ),
          );
          return;
        }
        settled = true;
        if (timer) clearTimeout(timer);
        ssl.counter('handshake').inc();
        const version = tls.getProtocol();
        if (version) ssl.scope('versions').counter(version).inc();
        const cipher = tls.getCipher();
        if (cipher?.name) ssl.scope('ciphers').counter(cipher.name).inc();
        tls.off('close', onClose);
        tls.off('error', onError);
        tls.on('error', () => {
          /* the connection's users see the close */
        });
        resolve(tls);
      });
    });
  }
}
