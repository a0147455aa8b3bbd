// The tcp-echo sample: `trellis-sample tcp-echo 9000,9001,9002 one` listens on each port and
// answers every line a client sends with `<prefix> <line>` (Istio's tcp-echo-server). Under
// Trellis' local runtime each port listens where TRELLIS_PORT_<port> says; a port the runtime did
// not assign (9002 is not a containerPort in Istio's manifest) is skipped.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { UsageError } from './common/args.js';
import {
  assignedPort,
  hasAssignedPorts,
  hostPort,
  listenHost,
  parsePort,
} from './common/listen-address.js';
import { onShutdown } from './common/lifecycle.js';
import { logLine } from './common/log.js';

const APP = 'tcp-echo';
/** The longest line kept before it is answered anyway (a client that never sends a newline). */
const MAX_LINE = 64 * 1024;

export interface TcpEcho {
  /** Container port -> the port actually bound. */
  readonly ports: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

/** Starts the echo servers; args: PORTS (comma-separated) and PREFIX. */
export async function runTcpEcho(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<TcpEcho> {
  if (args.length !== 2 || args[0] === undefined || args[1] === undefined)
    throw new UsageError('usage: tcp-echo PORT[,PORT...] PREFIX');
  const containerPorts = args[0].split(',').map((p) => parsePort(p, 'tcp-echo port'));
  const prefix = args[1];
  const host = listenHost(env);
  const managed = hasAssignedPorts(env);
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const bound = new Map<number, number>();
  for (const [i, containerPort] of containerPorts.entries()) {
    let port = assignedPort(containerPort, env);
    if (port === undefined && i === 0 && env['PORT']?.trim()) port = parsePort(env['PORT'], 'PORT');
    if (port === undefined && managed) {
      logLine(APP, `port ${containerPort}: no TRELLIS_PORT_${containerPort}, not listening`);
      continue;
    }
    const server = createServer((socket) => handle(socket, prefix, containerPort, sockets));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port ?? containerPort, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const actual = (server.address() as AddressInfo).port;
    bound.set(containerPort, actual);
    servers.push(server);
    logLine(
      APP,
      `listening on tcp://${hostPort(host, actual)} (port ${containerPort}), prefix: ${prefix}`,
    );
  }
  if (servers.length === 0) throw new Error('no port to listen on');
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      // Open connections get their end of stream; after 5 s they are cut.
      for (const s of sockets) s.end();
      const force = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, 5_000);
      force.unref();
      await Promise.all(closed);
      clearTimeout(force);
    })());
  onShutdown(APP, close);
  return { ports: bound, close };
}

function handle(socket: Socket, prefix: string, port: number, sockets: Set<Socket>): void {
  sockets.add(socket);
  const peer = `${socket.remoteAddress ?? '-'}:${socket.remotePort ?? '-'}`;
  let pending = '';
  socket.setEncoding('utf8');
  const answer = (line: string, newline: boolean) => {
    logLine(APP, `${peer} port ${port} request: ${JSON.stringify(line)}`);
    socket.write(`${prefix} ${line}${newline ? '\n' : ''}`);
  };
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      answer(pending.slice(0, nl), true);
      pending = pending.slice(nl + 1);
    }
    if (pending.length > MAX_LINE) {
      answer(pending, false);
      pending = '';
    }
  });
  socket.on('end', () => {
    if (pending !== '') answer(pending, false);
    pending = '';
    socket.end();
  });
  socket.on('error', (err) => logLine(APP, `${peer} port ${port} error: ${err.message}`));
  socket.on('close', () => sockets.delete(socket));
}
