// The seams between the listener manager and the network filters it hands connections to
// (Envoy's `Network::ReadFilter` world): what a filter chain's handler is given for one
// accepted connection, and how the handler of a filter chain is built.
import type { Socket } from 'node:net';
import type { FilterChain, Listener } from '@trellis/envoy';
import type { StatsScope } from '../observability/stats-api.js';
import type { StreamInfo } from '../stream-info.js';

/** An IP address (no brackets, IPv4-mapped IPv6 unwrapped) and a port. */
export interface SocketAddressPort {
  readonly address: string;
  readonly port: number;
}

/**
 * Tells a connection's filter that its listener or filter chain is draining (modified,
 * removed, `drain()`): an HTTP connection manager then closes idle keep-alive connections
 * and sends `Connection: close` / GOAWAY; after the drain period the listener closes the
 * socket itself.
 */
export interface DrainSignal {
  readonly draining: boolean;
  /** Runs `fn` once when draining starts (at once if it already has). */
  onDrain(fn: () => void): void;
}

/** One accepted downstream connection, as its filter chain sees it. */
export interface ConnectionInfo {
  /** Envoy's connection id (`%CONNECTION_ID%`), unique in the process. */
  readonly id: number;
  /** The listener that took the connection (after any original-destination hand-off). */
  readonly listener: Listener;
  readonly listenerName: string;
  readonly filterChain: FilterChain;
  /**
   * The connection's local address: the original destination when the listener restored
   * it (original_dst / use_original_dst), else the address the socket was accepted on.
   */
  readonly local: SocketAddressPort;
  readonly remote: SocketAddressPort;
  /** SNI from the TLS ClientHello (tls_inspector), if any. */
  readonly requestedServerName: string | undefined;
  /** `tls` or `raw_buffer`. */
  readonly transportProtocol: string;
  /** ALPN from the ClientHello, or `http/1.1` / `http/1.0` / `h2c` from http_inspector. */
  readonly applicationProtocols: readonly string[];
  /** The connection-level record (protocol `TCP`), filled in by the network filter. */
  readonly streamInfo: StreamInfo;
  readonly drain: DrainSignal;
  /** The listener's stats scope (`listener.<address>`), for the transport socket's stats. */
  readonly listenerStats?: StatsScope;
}

/**
 * Takes over one connection: the socket is open, paused or in its initial state, with every
 * byte the listener filters peeked at still unread (they are unshifted back).
 */
export type ConnectionHandler = (socket: Socket, conn: ConnectionInfo) => void;

/**
 * Builds the handler of one filter chain, once per listener version (not per connection).
 * Throws an Error whose message says what is wrong or unsupported: the listener is then
 * rejected with that message (and the update NACKed).
 */
export type NetworkFilterFactory = (
  filterChain: FilterChain,
  listener: Listener,
) => ConnectionHandler;
