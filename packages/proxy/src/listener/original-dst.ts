// envoy.filters.listener.original_dst: the address a connection was originally sent to.
//
// Explicit capture (local mode: apps reach their sidecar as an HTTP proxy, or on the ports
// the registry recorded) has no redirection, so the original destination IS the address the
// socket was accepted on: this function. Transparent capture (iptables REDIRECT to 15001/15006)
// reads getsockopt(SO_ORIGINAL_DST) instead (original-dst-socket.ts, what the proxy uses; it
// falls back to this function), through ListenerManagerOptions.originalDestination.
import type { Socket } from 'node:net';
import { normalizeIp } from './ip.js';
import type { SocketAddressPort } from './types.js';

/** Reads the original destination of an accepted socket. */
export type OriginalDestinationFn = (socket: Socket) => SocketAddressPort | undefined;

/** Explicit mode: the socket's own local address (undefined once the socket is gone). */
export const originalDestination: OriginalDestinationFn = (socket) => {
  const address = socket.localAddress;
  const port = socket.localPort;
  if (address === undefined || port === undefined) return undefined;
  return { address: normalizeIp(address), port };
};
