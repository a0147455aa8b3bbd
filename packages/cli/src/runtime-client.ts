// Shared by the local runtime verbs (up, down, status, logs): the state directory, where the
// `trellis` executable is (the daemon and the proxies are started from it), and the daemon.
import { join } from 'node:path';
import { resolveStateDir } from '@trellis/config';
import { flagString, type ParsedArgs } from './args.js';
import type { Io } from './io.js';

/** packages/cli/bin/trellis.js (this file is packages/cli/dist/src/runtime-client.js). */
export const TRELLIS_BIN = join(import.meta.dirname, '..', '..', 'bin', 'trellis.js');

/** The repository root's node_modules/.bin, so sample commands (`trellis-sample`) resolve. */
export const TRELLIS_BIN_DIRS: readonly string[] = [
  join(import.meta.dirname, '..', '..', '..', '..', 'node_modules', '.bin'),
];

export function stateDirOf(args: ParsedArgs, io: Io): string {
  const flag = flagString(args, 'state-dir');
  return resolveStateDir({ ...(flag !== undefined ? { flag } : {}), env: io.env, cwd: io.cwd });
}

export function notRunningMessage(dir: string): string {
  return `no Trellis runtime is running in ${dir} (start one with 'trellis up')`;
}
