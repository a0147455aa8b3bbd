// Opening a TCP (or Unix socket) connection to an upstream host with connect_timeout, mapping
// failures to Envoy's transport failure reasons (`delayed connect error: 111`, `connect timeout`).
import { connect as netConnect, type Socket } from 'node:net';
import { UpstreamConnectError } from './api.js';

export interface ConnectOptions {
  readonly timeoutMs: number;
  /** upstream_bind_config source address. */
  readonly localAddress?: string | undefined;
  /** TCP keepalive probe delay (upstream_connection_options.tcp_keepalive.keepalive_time), ms. */
  readonly keepAliveMs?: number | undefined;
}

/** Envoy's transport failure reason for a socket error. */
export function transportFailureReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e.errno === 'number' && e.syscall === 'connect')
    return `delayed connect error: ${Math.abs(e.errno)}`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' || e.syscall === 'getaddrinfo')
    return `dns resolution failure: ${e.code ?? 'unknown'}`;
  if (typeof e.errno === 'number') return `connect error: ${Math.abs(e.errno)}`;
  return e.message || String(err);
}

/** Connects to `address:port` (a pipe when `address` starts with `/`). */
export function connectTcp(address: string, port: number, opts: ConnectOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = address.startsWith('/')
      ? netConnect({ path: address })
      : netConnect({
          host: address,
          port,
          noDelay: true,
          ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
          ...(opts.keepAliveMs !== undefined
            ? { keepAlive: true, keepAliveInitialDelay: opts.keepAliveMs }
            : {}),
        });
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
    };
    const onError = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(new UpstreamConnectError(transportFailureReason(err)));
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
    if (opts.timeoutMs > 0) {
      timer = setTimeout(() => {
        cleanup();
        socket.destroy();
        reject(new UpstreamConnectError('connect timeout', true));
      }, opts.timeoutMs);
    }
  });
}
