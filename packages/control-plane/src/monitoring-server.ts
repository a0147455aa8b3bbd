// The control plane's monitoring and debug HTTP server (Istio's port 15014): /ready,
// /metrics, and the /debug pages istioctl reads.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE, errorMessage } from '@trellis/core';

/** What the debug pages show; the control plane implements it. */
export interface DebugProvider {
  /** True once the first snapshot is built and xDS is serving. */
  ready(): boolean;
  /** Prometheus text exposition. */
  metrics(): string;
  /** Per proxy, per type: sent, acked, NACK. */
  syncz(): unknown;
  /** Every config object the control plane holds. */
  configz(): unknown;
  /** Services and endpoints of the registry. */
  registryz(): unknown;
  /** The Envoy ConfigDump of what a proxy was sent; undefined if no such proxy is connected. */
  configDump(proxyId: string): unknown;
  /** Connected proxies with their node ids (for error messages). */
  proxyIds(): readonly string[];
}

function send(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, value: unknown): void {
  send(res, 200, JSON.stringify(value, null, 2) + '\n');
}

/** Resolves `POD`, `POD.NS` or a full node id to a connected proxy id. */
export function findProxy(ids: readonly string[], query: string): string | undefined {
  if (ids.includes(query)) return query;
  const withDefault = ids.find((id) => id === `${query}.default`);
  if (withDefault) return withDefault;
  return undefined;
}

function handle(p: DebugProvider, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return send(res, 405, 'only GET\n', 'text/plain');
  switch (url.pathname) {
    case '/ready':
    case '/healthz/ready':
      return p.ready()
        ? send(res, 200, 'ready\n', 'text/plain')
        : send(res, 503, 'not ready\n', 'text/plain');
    case '/metrics':
    case '/stats/prometheus':
      return send(res, 200, p.metrics(), PROMETHEUS_CONTENT_TYPE);
    case '/debug/syncz':
      return json(res, p.syncz());
    case '/debug/configz':
      return json(res, p.configz());
    case '/debug/registryz':
      return json(res, p.registryz());
    case '/debug/config_dump': {
      const q = url.searchParams.get('proxyID');
      if (!q)
        return send(
          res,
          400,
          JSON.stringify({ error: 'proxyID query parameter is required' }) + '\n',
        );
      const id = findProxy(p.proxyIds(), q);
      const dump = id === undefined ? undefined : p.configDump(id);
      if (dump === undefined)
        return send(
          res,
          404,
          JSON.stringify({ error: `proxy ${q} is not connected`, connected: p.proxyIds() }) + '\n',
        );
      return json(res, dump);
    }
    case '/debug':
      return json(res, {
        endpoints: [
          '/ready',
          '/metrics',
          '/debug/syncz',
          '/debug/configz',
          '/debug/registryz',
          '/debug/config_dump?proxyID=',
        ],
      });
    default:
      return send(res, 404, JSON.stringify({ error: `no such page ${url.pathname}` }) + '\n');
  }
}

export interface MonitoringServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the monitoring server on host:port (port 0 picks one). */
export async function startMonitoringServer(
  p: DebugProvider,
  host: string,
  port: number,
): Promise<MonitoringServer> {
  const server: Server = createServer((req, res) => {
    try {
      handle(p, req, res);
    } catch (e) {
      send(res, 500, JSON.stringify({ error: errorMessage(e) }) + '\n');
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
