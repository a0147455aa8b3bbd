// x-forwarded-client-cert (XFCC), as Envoy's HTTP connection manager handles it
// (`forward_client_cert_details`, `set_current_client_cert_details`):
// - SANITIZE (the default): the header never goes upstream;
// - FORWARD_ONLY: forwarded as received when the downstream connection is mutual TLS;
// - APPEND_FORWARD: this hop's element appended to it, when mutual TLS;
// - SANITIZE_SET: replaced by this hop's element, when mutual TLS;
// - ALWAYS_FORWARD_ONLY: forwarded as received, whatever the connection.
// Without a client certificate the first four remove the header. An element is
// `By=<our URI SAN>;Hash=<SHA-256 of the client certificate>` followed by the details asked for,
// in Envoy's order: `Cert="..."` and `Chain="..."` (URL-encoded PEM), `Subject="..."` (RFC 2253),
// `URI=...`, `DNS=...` (one pair per name). Istio asks for APPEND_FORWARD with Subject, DNS and URI on
// sidecars' inbound listeners, and SANITIZE_SET with Subject, Cert, DNS and URI on gateways.
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { HttpConnectionManager } from '@trellis/envoy';
import { rfc2253, sans } from '../tls/cert-text.js';

export const XFCC_HEADER = 'x-forwarded-client-cert';

export type XfccMode = NonNullable<HttpConnectionManager['forwardClientCertDetails']>;

export interface XfccConfig {
  readonly mode: XfccMode;
  readonly subject: boolean;
  readonly cert: boolean;
  readonly chain: boolean;
  readonly dns: boolean;
  readonly uri: boolean;
}

/** The XFCC handling an HTTP connection manager asks for. */
export function xfccConfig(hcm: HttpConnectionManager): XfccConfig {
  const d = hcm.setCurrentClientCertDetails ?? {};
  return {
    mode: hcm.forwardClientCertDetails ?? 'SANITIZE',
    subject: d.subject === true,
    cert: d.cert === true,
    chain: d.chain === true,
    dns: d.dns === true,
    uri: d.uri === true,
  };
}

/**
 * This hop's XFCC element for a TLS connection whose client presented a certificate, or
 * undefined when it did not (then the connection is not mutual TLS).
 */
export function clientCertElement(socket: TLSSocket, cfg: XfccConfig): string | undefined {
  const peer = socket.getPeerX509Certificate?.();
  if (!peer) return undefined;
  const parts: string[] = [];
  const local = socket.getX509Certificate?.();
  if (local) for (const by of sans(local, 'URI')) parts.push(`By=${quoteIfNeeded(by)}`);
  parts.push(`Hash=${peer.fingerprint256.replaceAll(':', '').toLowerCase()}`);
  // Envoy's order: Cert, Chain, Subject, URI, DNS; Subject and URI appear even when empty.
  if (cfg.cert) parts.push(`Cert="${encodeURIComponent(peer.toString())}"`);
  if (cfg.chain) parts.push(`Chain="${encodeURIComponent(chainPem(peer))}"`);
  if (cfg.subject) parts.push(`Subject="${escapeQuoted(rfc2253(peer.subject))}"`);
  if (cfg.uri) {
    const uris = sans(peer, 'URI');
    if (uris.length === 0) parts.push('URI=');
    for (const u of uris) parts.push(`URI=${quoteIfNeeded(u)}`);
  }
  if (cfg.dns) for (const n of sans(peer, 'DNS')) parts.push(`DNS=${quoteIfNeeded(n)}`);
  return parts.join(';');
}

/**
 * Applies the mode to a request's headers. `element` is this hop's element when the
 * downstream connection is mutual TLS, undefined otherwise.
 */
export function applyXfcc(
  headers: Record<string, string | string[] | undefined>,
  cfg: XfccConfig,
  element: string | undefined,
): void {
  if (cfg.mode === 'ALWAYS_FORWARD_ONLY') return;
  if (element === undefined || cfg.mode === 'SANITIZE') {
    delete headers[XFCC_HEADER];
    return;
  }
  if (cfg.mode === 'FORWARD_ONLY') return;
  if (cfg.mode === 'SANITIZE_SET') {
    headers[XFCC_HEADER] = element;
    return;
  }
  // APPEND_FORWARD
  const cur = headers[XFCC_HEADER];
  const before = Array.isArray(cur) ? cur.join(',') : cur;
  headers[XFCC_HEADER] = before ? `${before},${element}` : element;
}

/** The certificate and the issuers node knows of, as PEM. */
function chainPem(cert: X509Certificate): string {
  let pem = cert.toString();
  let cur: X509Certificate | undefined = cert;
  for (let i = 0; i < 10 && cur; i++) {
    const next: X509Certificate | undefined = cur.issuerCertificate;
    if (!next || next.fingerprint256 === cur.fingerprint256) break;
    pem += next.toString();
    cur = next;
  }
  return pem;
}

/** A value with XFCC's separators (`,` `;` `=`) or quotes is quoted, as Envoy does. */
function quoteIfNeeded(v: string): string {
  return /[,;="]/.test(v) ? `"${escapeQuoted(v)}"` : v;
}

function escapeQuoted(v: string): string {
  return v.replace(/(["\\])/g, '\\$1');
}
