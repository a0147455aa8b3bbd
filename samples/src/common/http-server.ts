// The HTTP server every HTTP sample runs on: binds HOST/PORT, logs one line per request on
// stdout, turns a thrown handler error into a 500, and closes gracefully on SIGTERM.
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostPort } from './listen-address.js';
import { onShutdown } from './lifecycle.js';
import { logLine } from './log.js';

/** A request handler; it must answer `res` (possibly asynchronously). */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** A started server. */
export interface AppServer {
  readonly server: Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then resolves. */
  close(graceMs?: number): Promise<void>;
}

export interface ServeOptions {
  /** The app name at the start of each log line. */
  readonly app: string;
  readonly host: string;
  readonly port: number;
  /** Registers the server for graceful shutdown on SIGTERM (default true). */
  readonly shutdownOnSignal?: boolean;
}

/** Starts an HTTP server and logs `listening on http://HOST:PORT` once bound. */
export async function serveHttp(options: ServeOptions, handler: Handler): Promise<AppServer> {
  const { app } = options;
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.once('close', () => logRequest(app, req, res, started));
    let result: void | Promise<void>;
    try {
      result = handler(req, res);
    } catch (err) {
      failRequest(res, err);
      return;
    }
    if (result instanceof Promise) result.catch((err: unknown) => failRequest(res, err));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logLine(app, `listening on http://${hostPort(options.host, port)}`);
  let closing: Promise<void> | undefined;
  const appServer: AppServer = {
    server,
    port,
    close(graceMs = 10_000) {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
  if (options.shutdownOnSignal !== false) onShutdown(app, () => appServer.close());
  return appServer;
}

function failRequest(res: ServerResponse, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  if (!res.headersSent) sendJson(res, 500, { error: `internal error: ${message}` });
  else res.destroy();
}

function logRequest(app: string, req: IncomingMessage, res: ServerResponse, started: bigint): void {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const status = res.writableFinished ? String(res.statusCode) : `${res.statusCode}(aborted)`;
  const length = res.getHeader('content-length');
  const requestId = req.headers['x-request-id'];
  const parts = [
    req.socket.remoteAddress ?? '-',
    `"${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}"`,
    status,
    length === undefined ? '-' : String(length),
    `${ms.toFixed(1)}ms`,
    `host=${req.headers.host ?? '-'}`,
    `request-id=${typeof requestId === 'string' ? requestId : '-'}`,
  ];
  logLine(app, parts.join(' '));
}

/** Answers with a body and its content-length. */
export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  contentType: string,
  headers: OutgoingHttpHeaders = {},
): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  // setHeader (not writeHead's object) so the request log can read content-length back.
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) res.setHeader(name, value);
  }
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', buf.length);
  res.writeHead(status);
  res.end(buf);
}

/** Answers with a JSON body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, status, JSON.stringify(value), 'application/json', headers);
}

/** Answers with plain text. */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, status, text, 'text/plain; charset=utf-8', headers);
}

/** Reads a request body up to `limit` bytes (answers 413 beyond it by rejecting). */
export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error(`request body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The path and query of a request, parsed (absolute-form request targets included). */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  return target.startsWith('http://') || target.startsWith('https://')
    ? new URL(target)
    : new URL(target, 'http://localhost');
}
