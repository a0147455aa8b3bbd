// The default NetworkFilterFactory: turns a filter chain's network filters into the handler
// of its connections. The chain must end in a terminal filter it knows: tcp_proxy
// (implemented here) or http_connection_manager (built by the factory the HTTP side passes
// in). A chain's transport socket other than raw_buffer (TLS termination) is built by the
// `transportSocket` hook (tls/downstream.ts in the proxy). Any other network filter, or a
// transport socket without a hook, rejects the listener with a message naming it — the proxy
// never silently skips configuration.
import type { Socket } from 'node:net';
import type {
  FilterChain,
  HttpConnectionManager,
  Listener,
  TcpProxy,
  TransportSocket,
} from '@trellis/envoy';
import { CONFIG_TYPE_URL } from '@trellis/envoy';
import { createTcpProxy, type TcpProxyDeps } from './tcp-proxy.js';
import type { ConnectionHandler, ConnectionInfo, NetworkFilterFactory } from './types.js';

export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
export const HTTP_CONNECTION_MANAGER_FILTER = 'envoy.filters.network.http_connection_manager';

/** Builds the HTTP connection manager's handler for one chain. */
export type HttpConnectionManagerFactory = (
  config: HttpConnectionManager,
  filterChain: FilterChain,
  listener: Listener,
) => ConnectionHandler;

/**
 * Builds a chain's downstream transport socket (TLS termination) once per listener version:
 * returns a function that takes each accepted socket, runs the transport's handshake and hands
 * the resulting socket (a tls.TLSSocket) to `next`, or closes the connection when it fails.
 * Throws, with a message naming the problem, when the transport socket cannot be built.
 */
export type DownstreamTransportSocketFactory = (
  transportSocket: TransportSocket,
  filterChain: FilterChain,
  listener: Listener,
) => (socket: Socket, conn: ConnectionInfo, next: (socket: Socket) => void) => void;

export interface NetworkFilterFactoryOptions {
  readonly tcpProxy: TcpProxyDeps;
  readonly httpConnectionManager?: HttpConnectionManagerFactory;
  readonly transportSocket?: DownstreamTransportSocketFactory;
}

const RAW_BUFFER = new Set([
  'envoy.transport_sockets.raw_buffer',
  'raw_buffer',
  CONFIG_TYPE_URL.RawBuffer,
]);

function filterKind(name: string | undefined, typeUrl: string | undefined): string | undefined {
  if (typeUrl === CONFIG_TYPE_URL.TcpProxy || (!typeUrl && name === TCP_PROXY_FILTER))
    return TCP_PROXY_FILTER;
  if (
    typeUrl === CONFIG_TYPE_URL.HttpConnectionManager ||
    (!typeUrl && name === HTTP_CONNECTION_MANAGER_FILTER)
  )
    return HTTP_CONNECTION_MANAGER_FILTER;
  return undefined;
}

/** The factory the listener manager is given in production. */
export function createNetworkFilterFactory(
  opts: NetworkFilterFactoryOptions,
): NetworkFilterFactory {
  return (chain, listener) => {
    const filters = chain.filters ?? [];
    const last = filters[filters.length - 1];
    if (!last) throw new Error('filter chain has no network filters');
    filters.slice(0, -1).forEach((f, i) => {
      const kind = filterKind(f.name, f.typedConfig?.['@type']);
      throw new Error(
        kind
          ? `filters[${i}]: terminal filter '${kind}' must be the last filter of the chain`
          : `filters[${i}]: network filter '${f.name ?? ''}' (${f.typedConfig?.['@type'] ?? 'no typed_config'}) is not supported`,
      );
    });
    const typeUrl = last.typedConfig?.['@type'];
    const kind = filterKind(last.name, typeUrl);
    const at = `filters[${filters.length - 1}]`;
    let handler: ConnectionHandler;
    if (kind === TCP_PROXY_FILTER) {
      handler = createTcpProxy((last.typedConfig ?? {}) as TcpProxy, opts.tcpProxy);
    } else if (kind === HTTP_CONNECTION_MANAGER_FILTER) {
      if (!opts.httpConnectionManager)
        throw new Error(`${at}: http_connection_manager is not available in this proxy`);
      handler = opts.httpConnectionManager(
        (last.typedConfig ?? {}) as HttpConnectionManager,
        chain,
        listener,
      );
    } else {
      throw new Error(
        `${at}: network filter '${last.name ?? ''}' (${typeUrl ?? 'no typed_config'}) is not supported`,
      );
    }
    const ts = chain.transportSocket;
    const tsType = ts?.typedConfig?.['@type'];
    if (ts && !RAW_BUFFER.has(tsType ?? ts.name ?? '')) {
      if (!opts.transportSocket)
        throw new Error(
          `transportSocket: '${ts.name ?? ''}' (${tsType ?? 'no typed_config'}) is not supported yet`,
        );
      const wrap = opts.transportSocket(ts, chain, listener);
      const inner = handler;
      handler = (socket, conn) => wrap(socket, conn, (s) => inner(s, conn));
    }
    return handler;
  };
}
