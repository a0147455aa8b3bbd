// A minimal netcat: `trellis-sample nc HOST PORT` copies stdin to a TCP connection and the
// connection to stdout, through the HTTP proxy's CONNECT when https_proxy / http_proxy apply (the
// sidecar in explicit capture mode), so TCP services such as tcp-echo can be reached by name.
import type { Readable, Writable } from 'node:stream';
import { UsageError } from './common/args.js';
import { openTunnel } from './common/connect-tunnel.js';
import { parsePort } from './common/listen-address.js';

/** Runs nc; resolves with the exit code once the server closes the connection. */
export async function runNc(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  stdin: Readable = process.stdin,
  stdout: Writable = process.stdout,
): Promise<number> {
  if (args.length !== 2 || args[0] === undefined || args[1] === undefined)
    throw new UsageError('usage: nc HOST PORT');
  const port = parsePort(args[1], 'nc port');
  let socket;
  try {
    socket = await openTunnel(args[0], port, { env });
  } catch (err) {
    process.stderr.write(`nc: ${args[0]}:${port}: ${(err as Error).message}\n`);
    return 1;
  }
  const conn = socket;
  return new Promise<number>((resolve) => {
    conn.pipe(stdout, { end: false });
    stdin.pipe(conn);
    conn.once('error', (err) => {
      process.stderr.write(`nc: ${err.message}\n`);
      resolve(1);
    });
    conn.once('close', () => {
      stdin.unpipe(conn);
      // A still-open stdin would keep the process alive.
      stdin.destroy();
      resolve(0);
    });
  });
}
