// Runs the CLI in-process with captured output, or as a real `npx trellis` process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../src/main.js';
import type { Io } from '../src/io.js';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The repository root, from packages/cli/dist/test. */
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..', '..');
/** The shared Istio samples beside the repository (TRELLIS_SHARED overrides). */
export const SAMPLES = join(
  process.env.TRELLIS_SHARED ?? join(REPO_ROOT, '..', 'shared'),
  'istio-samples',
  'samples',
);

/** Runs `trellis ARGS` in-process against a state directory. */
export async function trellis(
  stateDir: string,
  args: readonly string[],
  opts: { stdin?: string; cwd?: string; now?: number } = {},
): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: () => Promise.resolve(opts.stdin ?? ''),
    env: { TRELLIS_STATE_DIR: stateDir },
    cwd: opts.cwd ?? REPO_ROOT,
    now: () => opts.now ?? Date.now(),
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** Runs `npx trellis ARGS` as a real process from the repository root. */
export function npxTrellis(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['--no-install', 'trellis', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout, stderr: stripNpmNoise(stderr) }),
    );
  });
}

/** npm prints warnings about the user's npmrc on some machines; they are not ours. */
function stripNpmNoise(s: string): string {
  return s
    .split('\n')
    .filter((l) => !l.startsWith('npm warn'))
    .join('\n');
}
