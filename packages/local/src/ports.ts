// Local ports: many replicas share 127.0.0.1, so the runtime allocates every port a process will
// listen on by binding port 0 and releasing it, never handing out the same port twice while it
// is in use; fixed ports (15010, 8080 ...) are checked before use so the error names the flag.
import { createServer, type AddressInfo } from 'node:net';
import { TrellisError, errorCode } from '@trellis/core';

/** A port that is taken; `flag` names the option that changes it. */
export class PortInUseError extends TrellisError {
  constructor(port: number, what: string, flag: string) {
    super(
      'TRELLIS_PORT_IN_USE',
      `port ${port} (${what}) is in use by another process: stop it or pass ${flag} (0 picks a free port)`,
    );
    this.name = 'PortInUseError';
  }
}

function bind(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port, host, exclusive: true }, () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Throws PortInUseError if `port` cannot be bound on `host`. Port 0 always passes. */
export async function checkPortFree(
  port: number,
  what: string,
  flag: string,
  host = '127.0.0.1',
): Promise<void> {
  if (port === 0) return;
  try {
    await bind(port, host);
  } catch (e) {
    if (errorCode(e) === 'EADDRINUSE') throw new PortInUseError(port, what, flag);
    throw e;
  }
}

/** Hands out free ports; released ports may be handed out again. */
export class PortAllocator {
  readonly #inUse = new Set<number>();

  async allocate(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const p = await bind(0, '127.0.0.1');
      if (this.#inUse.has(p)) continue;
      this.#inUse.add(p);
      return p;
    }
    throw new TrellisError('TRELLIS_NO_PORT', 'could not allocate a free local port');
  }

  /** Marks a port as taken (a fixed port of a gateway). */
  reserve(port: number): void {
    this.#inUse.add(port);
  }

  release(...ports: readonly number[]): void {
    for (const p of ports) this.#inUse.delete(p);
  }
}
