// The daemon's small local HTTP API on 127.0.0.1 (port recorded in daemon.json):
// GET /status (the StatusReport), GET /healthz, POST /shutdown (stop everything, then exit).
// A client helper for the CLI verbs sits next to it.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TrellisError, errorMessage } from '@trellis/core';
import type { StatusReport } from './status.js';

export interface ControlApiHandlers {
  status(): StatusReport;
  shutdown(): void;
}

export interface ControlApi {
  readonly port: number;
  close(): Promise<void>;
}

export async function startControlApi(h: ControlApiHandlers, port = 0): Promise<ControlApi> {
  const server: Server = createServer((req, res) => {
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === 'GET' && req.url === '/status') return send(200, h.status());
      if (req.method === 'GET' && req.url === '/healthz') return send(200, { ok: true });
      if (req.method === 'POST' && req.url === '/shutdown') {
        send(202, { stopping: true });
        h.shutdown();
        return;
      }
      send(404, { error: `no such endpoint: ${req.method} ${req.url}` });
    } catch (e) {
      send(500, { error: errorMessage(e) });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
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

/** Calls the daemon's API. */
export function callControlApi(
  port: number,
  method: 'GET' | 'POST',
  path: string,
  timeoutMs = 5_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) =>
      reject(
        new TrellisError(
          'TRELLIS_UNREACHABLE',
          `cannot reach the Trellis runtime on 127.0.0.1:${port}: ${e.message}`,
        ),
      ),
    );
    req.end();
  });
}
