// Port protocols as Istio reads them: a protocol name (ServiceEntry `protocol`, Gateway server
// port), or a Kubernetes port's name prefix / `appProtocol` (`http-web`, `grpc`, `tcp-db`).
// Semantics: istio/istio pkg/config/protocol (Parse) and pkg/config/kube (ConvertProtocol).
import type { Protocol } from './model.js';

const BY_NAME: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([
  ['tcp', 'TCP'],
  ['udp', 'UDP'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-Web'],
  ['http', 'HTTP'],
  ['http_proxy', 'HTTP_PROXY'],
  ['http2', 'HTTP2'],
  ['https', 'HTTPS'],
  ['tls', 'TLS'],
  ['mongo', 'Mongo'],
  ['redis', 'Redis'],
  ['mysql', 'MySQL'],
]);

/** A protocol name, case-insensitive; anything else (and '') is `UnsupportedProtocol`. */
export function parseProtocol(name: string): Protocol {
  return BY_NAME.get(name.toLowerCase()) ?? 'UnsupportedProtocol';
}

/**
 * Ports where Istio assumes TCP rather than sniffing when the name says nothing: SMTP 25,
 * DNS 53, MySQL 3306, MongoDB 27017 (sniffing breaks server-first protocols).
 */
export const WELL_KNOWN_TCP_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * Kubernetes `appProtocol` values with a meaning defined by Kubernetes itself: HTTP/2 prior
 * knowledge (h2c) and WebSocket over cleartext or TLS.
 */
const KUBERNETES_APP_PROTOCOLS: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([
  ['kubernetes.io/h2c', 'HTTP2'],
  ['kubernetes.io/ws', 'HTTP'],
  ['kubernetes.io/wss', 'HTTPS'],
]);

/**
 * The protocol of a Kubernetes Service (or container) port, as Istio derives it:
 * - transport `UDP` is UDP, whatever the name;
 * - `appProtocol`, when set, is read instead of the name (with Kubernetes' own
 *   `kubernetes.io/h2c|ws|wss` values);
 * - a name starting with `grpc-web` is GRPC-Web; otherwise the part before the first `-`
 *   is parsed (`http-api` → HTTP, `tcp` → TCP), case-insensitively;
 * - a name that says nothing is `UnsupportedProtocol` (sniffed), except on the well-known
 *   server-first ports 25, 53, 3306 and 27017, which are TCP.
 * (A `udp-` name prefix on a TCP port parses as UDP, as it does in Istio.)
 */
export function protocolForKubePort(
  port: number,
  name: string | undefined,
  transport: string | undefined,
  appProtocol: string | undefined,
): Protocol {
  if (transport === 'UDP') return 'UDP';
  let text = name ?? '';
  if (appProtocol !== undefined) {
    const known = KUBERNETES_APP_PROTOCOLS.get(appProtocol);
    if (known) return known;
    text = appProtocol;
  }
  if (text.length >= 8 && text.slice(0, 8).toLowerCase() === 'grpc-web') return 'GRPC-Web';
  const dash = text.indexOf('-');
  const p = parseProtocol(dash >= 0 ? text.slice(0, dash) : text);
  if (p === 'UnsupportedProtocol' && WELL_KNOWN_TCP_PORTS.has(port)) return 'TCP';
  return p;
}

/** HTTP-based protocols: HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web (Istio `IsHTTP`). */
export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Protocols carried over HTTP/2: HTTP2, GRPC, GRPC-Web (Istio `IsHTTP2`). */
export function isHttp2Protocol(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/** TCP-level protocols: TCP, HTTPS, TLS, Mongo, Redis, MySQL (Istio `IsTCP`). */
export function isTcpProtocol(p: Protocol): boolean {
  return (
    p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'Mongo' || p === 'Redis' || p === 'MySQL'
  );
}

/** Protocols on top of TLS: HTTPS, TLS (Istio `IsTLS`). */
export function isTlsProtocol(p: Protocol): boolean {
  return p === 'HTTPS' || p === 'TLS';
}

/** GRPC and GRPC-Web (Istio `IsGRPC`). */
export function isGrpcProtocol(p: Protocol): boolean {
  return p === 'GRPC' || p === 'GRPC-Web';
}

/** Unknown protocol: the proxy sniffs HTTP versus TCP (Istio's "auto" protocol). */
export function isAutoProtocol(p: Protocol): boolean {
  return p === 'UnsupportedProtocol';
}

/** The protocol left after a gateway terminates TLS: HTTPS → HTTP, TLS → TCP. */
export function afterTlsTermination(p: Protocol): Protocol {
  if (p === 'HTTPS') return 'HTTP';
  if (p === 'TLS') return 'TCP';
  return p;
}
