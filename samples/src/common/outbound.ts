// Outbound HTTP for the samples: `http://reviews:9080/reviews/0` goes to the HTTP proxy named by
// http_proxy / HTTP_PROXY (a Trellis sidecar in explicit capture mode) as an absolute-form request
// over a keep-alive connection, or straight to the host when no proxy applies (no sidecar, tests
// with direct ports). https URLs go through a CONNECT tunnel when a proxy applies.
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { openTunnel } from './connect-tunnel.js';
import { proxyForUrl, unbracket } from './proxy-env.js';

/** Why an outbound request failed, with curl's exit code for each. */
export type OutboundErrorCode = 'timeout' | 'dns' | 'connect' | 'reset' | 'empty-reply' | 'other';

const CURL_EXIT: Record<OutboundErrorCode, number> = {
  timeout: 28,
  dns: 6,
  connect: 7,
  reset: 56,
  'empty-reply': 52,
  other: 1,
};

/** A failed outbound request (no HTTP response, or the response was cut off). */
export class OutboundError extends Error {
  constructor(
    readonly code: OutboundErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OutboundError';
  }
  /** The exit code curl uses for this failure. */
  get curlExitCode(): number {
    return CURL_EXIT[this.code];
  }
}

export interface OutboundRequest {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Deadline for the whole exchange (connect, response and body), in milliseconds. */
  readonly timeoutMs?: number;
  /** Largest response body kept (default 16 MiB). */
  readonly maxBodyBytes?: number;
  /** Where proxy variables are read (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Skips TLS certificate verification (curl -k). */
  readonly insecure?: boolean;
}

export interface OutboundResponse {
  readonly status: number;
  readonly statusText: string;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  /** Header names and values as received, alternating. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  /** The proxy the request went through, if any. */
  readonly via: URL | undefined;
}

const directHttpAgent = new HttpAgent({ keepAlive: true });
const directHttpsAgent = new HttpsAgent({ keepAlive: true });
const proxyAgent = new HttpAgent({ keepAlive: true });

/** Sends one HTTP request and reads the whole response. */
export function fetchUrl(
  url: string | URL,
  options: OutboundRequest = {},
): Promise<OutboundResponse> {
  let target: URL;
  try {
    target = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return Promise.reject(new OutboundError('other', `${String(url)} is not a URL`));
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:')
    return Promise.reject(
      new OutboundError('other', `${target.protocol} URLs are not supported (http or https)`),
    );
  const env = options.env ?? process.env;
  let proxy: URL | undefined;
  try {
    proxy = proxyForUrl(target, env);
  } catch (err) {
    return Promise.reject(new OutboundError('other', (err as Error).message));
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  if (proxy !== undefined && target.protocol === 'https:') {
    const tunnelTarget = target;
    const tunnelProxy = proxy;
    return openTunnel(unbracket(target.hostname), Number(target.port || 443), {
      env,
      timeoutMs,
      scheme: 'https',
    }).then(
      (socket) => {
        const reqOptions: RequestOptions = {
          ...baseOptions(tunnelTarget, options),
          agent: false,
          createConnection: () =>
            tlsConnect({
              socket,
              servername: unbracket(tunnelTarget.hostname),
              rejectUnauthorized: options.insecure !== true,
            }),
        };
        return exchange(
          httpsRequest(reqOptions),
          options,
          Math.max(1, deadline - Date.now()),
          tunnelTarget,
          tunnelProxy,
        );
      },
      (err: unknown) => {
        throw toOutboundError(err, target, proxy);
      },
    );
  }
  let req: ClientRequest;
  if (proxy !== undefined) {
    const headers: OutgoingHttpHeaders = { host: target.host, ...options.headers };
    if (proxy.username)
      headers['proxy-authorization'] =
        'Basic ' +
        Buffer.from(
          `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`,
        ).toString('base64');
    req = httpRequest({
      host: unbracket(proxy.hostname),
      port: proxy.port ? Number(proxy.port) : 80,
      method: options.method ?? 'GET',
      // Absolute form, as a forward proxy expects (RFC 9112 section 3.2.2).
      path: target.href,
      headers,
      agent: proxyAgent,
    });
  } else if (target.protocol === 'https:') {
    req = httpsRequest({
      ...baseOptions(target, options),
      agent: options.insecure === true ? false : directHttpsAgent,
      rejectUnauthorized: options.insecure !== true,
    });
  } else {
    req = httpRequest({ ...baseOptions(target, options), agent: directHttpAgent });
  }
  return exchange(req, options, timeoutMs, target, proxy);
}

function baseOptions(target: URL, options: OutboundRequest): RequestOptions {
  return {
    host: unbracket(target.hostname),
    port: target.port ? Number(target.port) : target.protocol === 'https:' ? 443 : 80,
    method: options.method ?? 'GET',
    path: `${target.pathname}${target.search}`,
    headers: { host: target.host, ...options.headers },
  };
}

function exchange(
  req: ClientRequest,
  options: OutboundRequest,
  timeoutMs: number,
  target: URL,
  proxy: URL | undefined,
): Promise<OutboundResponse> {
  const maxBody = options.maxBodyBytes ?? 16 << 20;
  return new Promise<OutboundResponse>((resolve, reject) => {
    let settled = false;
    let gotResponse = false;
    const timer = setTimeout(() => {
      req.destroy(
        new OutboundError('timeout', `${target.href}: no complete response within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(toOutboundError(err, target, proxy, gotResponse));
    };
    req.once('error', fail);
    req.once('response', (res: IncomingMessage) => {
      gotResponse = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBody) {
          req.destroy(
            new OutboundError('other', `${target.href}: response larger than ${maxBody} bytes`),
          );
          return;
        }
        chunks.push(chunk);
      });
      res.once('error', fail);
      res.once('aborted', () =>
        fail(new OutboundError('reset', `${target.href}: response cut off`)),
      );
      res.once('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          httpVersion: res.httpVersion,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          via: proxy,
        });
      });
    });
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

function toOutboundError(
  err: unknown,
  target: URL,
  proxy: URL | undefined,
  gotResponse = false,
): OutboundError {
  if (err instanceof OutboundError) return err;
  const e = err as NodeJS.ErrnoException;
  const where = proxy ? `${target.href} (via proxy ${proxy.host})` : target.href;
  switch (e.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new OutboundError('dns', `${where}: could not resolve host: ${e.message}`);
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new OutboundError('connect', `${where}: could not connect: ${e.message}`);
    case 'ECONNRESET':
    case 'EPIPE':
      return gotResponse || e.message !== 'socket hang up'
        ? new OutboundError('reset', `${where}: connection reset: ${e.message}`)
        : new OutboundError('empty-reply', `${where}: empty reply from server`);
    default:
      return new OutboundError('other', `${where}: ${e.message ?? String(err)}`);
  }
}
