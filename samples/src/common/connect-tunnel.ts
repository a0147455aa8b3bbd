// A TCP connection to host:port, through the HTTP proxy's CONNECT method when one applies (as a
// sidecar in explicit capture mode expects for anything that is not plain HTTP), else direct.
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { proxyForUrl, unbracket } from './proxy-env.js';

/**
 * Opens a TCP stream to host:port. `scheme` picks which proxy variable applies (default: the
 * https one, else the http one).
 */
export function openTunnel(
  host: string,
  port: number,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; scheme?: 'http' | 'https' } = {},
): Promise<Socket> {
  const env = options.env ?? process.env;
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  // Raw TCP has no scheme of its own: https_proxy (the CONNECT proxy) first, then http_proxy.
  const schemes = options.scheme !== undefined ? [options.scheme] : (['https', 'http'] as const);
  let proxy: URL | undefined;
  for (const scheme of schemes) {
    proxy ??= proxyForUrl(new URL(`${scheme}://${bracketed}:${port}`), env);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (proxy === undefined) {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: unbracket(host), port });
      const timer = setTimeout(
        () => socket.destroy(new Error(`connect to ${host}:${port} timed out`)),
        timeoutMs,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
  return new Promise((resolve, reject) => {
    const authority = `${bracketed}:${port}`;
    const headers: Record<string, string> = { host: authority };
    if (proxy.username)
      headers['proxy-authorization'] =
        'Basic ' +
        Buffer.from(
          `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`,
        ).toString('base64');
    const req = request({
      host: unbracket(proxy.hostname),
      port: proxy.port ? Number(proxy.port) : 80,
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`CONNECT ${authority} through ${proxy.host} timed out`)),
      timeoutMs,
    );
    req.once('connect', (res, socket, head) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} refused CONNECT ${authority}: ${res.statusCode}`));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}
