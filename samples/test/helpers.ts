// Test helpers for the samples: run a sample as a real `trellis-sample` process on a port chosen
// by the OS (PORT=0 / TRELLIS_PORT_<n>=0, read back from its "listening on" log line), and a
// small forward proxy that stands in for the sidecar: it takes the same absolute-form requests
// and CONNECTs, maps service names (`reviews:9080`) to the test's ports, records what it forwarded
// and can delay or abort a request, as a VirtualService fault would.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'trellis-sample.js');

const PROXY_VARS = [
  'http_proxy',
  'HTTP_PROXY',
  'https_proxy',
  'HTTPS_PROXY',
  'no_proxy',
  'NO_PROXY',
  'all_proxy',
  'ALL_PROXY',
  'grpc_proxy',
];

/** The parent's environment without proxy settings or port assignments. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (PROXY_VARS.includes(k) || k.startsWith('TRELLIS_PORT_') || k === 'PORT') delete env[k];
  }
  return { ...env, HOST: '127.0.0.1', ...extra };
}

/** A running sample process. */
export interface SampleProcess {
  readonly child: ChildProcess;
  /** The first port it listens on. */
  readonly port: number;
  /** Every "listening on" port, in order. */
  readonly ports: readonly number[];
  /** stdout lines so far. */
  readonly lines: string[];
  /** stderr so far. */
  stderr(): string;
  /** Resolves with the first stdout line matching `re` (waiting up to `timeoutMs`). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends SIGTERM and resolves with the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Spawns `trellis-sample ARGS` and waits until it has logged `listenCount` "listening on" lines.
 * PORT defaults to 0, so the OS picks a free port.
 */
export async function startSample(
  args: readonly string[],
  env: Record<string, string> = {},
  listenCount = 1,
): Promise<SampleProcess> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cleanEnv({ PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const waitForLine = (re: RegExp, timeoutMs = 10_000): Promise<string> => {
    const found = lines.find((l) => re.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `trellis-sample ${args.join(' ')}: no line matching ${String(re)} within ${timeoutMs} ms\nstdout:\n${lines.join('\n')}\nstderr:\n${stderr}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        re,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      waiters.push(waiter);
      void exited.then((code) => {
        clearTimeout(timer);
        if (waiters.includes(waiter))
          reject(
            new Error(
              `trellis-sample ${args.join(' ')} exited (${String(code)}) before logging ${String(re)}\nstderr:\n${stderr}`,
            ),
          );
      });
    });
  };
  const listening = /listening on (?:http|tcp):\/\/127\.0\.0\.1:(\d+)/;
  // Each listening port logs one line; wait until there are listenCount of them.
  let ports: number[] = [];
  while (ports.length < listenCount) {
    await waitForLine(listening);
    ports = lines.filter((l) => listening.test(l)).map((l) => Number(listening.exec(l)?.[1]));
    if (ports.length < listenCount) await new Promise((r) => setTimeout(r, 20));
  }
  const stop = async (timeoutMs = 10_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(kill);
    return code;
  };
  return {
    child,
    port: ports[0] ?? 0,
    ports,
    lines,
    stderr: () => stderr,
    waitForLine,
    stop,
  };
}

/** What the test proxy does with one request. */
export type ProxyDecision =
  { readonly port: number; readonly delayMs?: number } | { readonly abort: number };

/** One request the proxy received. */
export interface ProxiedRequest {
  /** `reviews:9080` */
  readonly authority: string;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** A forward proxy for tests; `decide` maps each request to a local port or a fault. */
export interface TestProxy {
  readonly port: number;
  readonly url: string;
  readonly seen: ProxiedRequest[];
  close(): Promise<void>;
}

export async function startTestProxy(
  decide: (authority: string, headers: IncomingHttpHeaders) => ProxyDecision | undefined,
): Promise<TestProxy> {
  const seen: ProxiedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const tunnels = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form request expected\n');
      return;
    }
    const authority = target.host;
    seen.push({
      authority,
      method: req.method ?? 'GET',
      path: `${target.pathname}${target.search}`,
      headers: req.headers,
    });
    const decision = decide(authority, req.headers);
    if (decision === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`no route to ${authority}\n`);
      return;
    }
    if ('abort' in decision) {
      res.writeHead(decision.abort, { 'content-type': 'text/plain' }).end('fault filter abort');
      return;
    }
    const forward = () => {
      const upstream = request(
        {
          host: '127.0.0.1',
          port: decision.port,
          method: req.method,
          path: `${target.pathname}${target.search}`,
          headers: req.headers,
        },
        (up: IncomingMessage) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      // A client that gives up resets the upstream request too, as a sidecar does.
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('upstream connect error or disconnect/reset before headers');
      });
      req.pipe(upstream);
    };
    if (decision.delayMs !== undefined) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        forward();
      }, decision.delayMs);
      timers.add(timer);
      res.once('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    } else {
      forward();
    }
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const authority = req.url ?? '';
    seen.push({ authority, method: 'CONNECT', path: '', headers: req.headers });
    const decision = decide(authority, req.headers);
    if (decision === undefined || 'abort' in decision) {
      client.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: decision.port }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    tunnels.add(upstream).add(client);
    const drop = () => {
      upstream.destroy();
      client.destroy();
      tunnels.delete(upstream);
      tunnels.delete(client);
    };
    upstream.on('error', drop).on('close', drop);
    client.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const s of tunnels) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A response read whole. */
export interface SimpleResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP request on a fresh connection (no keep-alive to outlive the test). */
export function httpCall(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
