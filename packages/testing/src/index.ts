// @trellis/testing: fixtures shared by tests (never imported by src).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export * from './echo-server.js';
export * from './pki.js';
export * from './random.js';

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Polls `fn` every `intervalMs` until it returns a value (not undefined) and resolves with it;
 * after `ms` it fails naming `what` and the last error `fn` threw.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
