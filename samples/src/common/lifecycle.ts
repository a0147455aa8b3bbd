// Graceful shutdown of a sample process: on SIGTERM (or SIGINT) every registered closer runs
// (servers stop accepting and finish their in-flight requests), then the process exits 0.
// A second signal during the shutdown ends the process at once (the default action).
import { logLine } from './log.js';

type Closer = () => Promise<void>;

const closers: Closer[] = [];
let installedFor: string | undefined;

/** Registers `close` to run when the process is asked to stop. */
export function onShutdown(app: string, close: Closer): void {
  closers.push(close);
  if (installedFor !== undefined) return;
  installedFor = app;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => void shutdown(app, signal));
  }
}

async function shutdown(app: string, signal: string): Promise<void> {
  logLine(app, `received ${signal}, shutting down`);
  await Promise.allSettled(closers.map((close) => close()));
  logLine(app, 'stopped');
  // Keep-alive client sockets and idle timers must not hold the process open.
  process.exit(0);
}
