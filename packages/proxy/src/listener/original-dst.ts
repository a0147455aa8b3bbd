// envoy.filters.listener.original_dst: the address a connection was originally sent to.
//
// Explicit capture (local mode: apps reach their sidecar as an HTTP proxy, or on the ports
// the registry recorded) has no redirection, so the original destination IS the address the
// socket was accepted on. Transparent capture (iptables REDIRECT to 15001/15006, the original
// destination read with getsockopt(SO_ORIGINAL_DST)) is done in a later issue: it replaces
// this function (see ListenerManagerOptions.originalDestination), and nothing else changes.
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
