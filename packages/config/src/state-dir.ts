// Where the local state lives: the --state-dir flag, else $TRELLIS_STATE_DIR, else ./.trellis.
import { resolve } from 'node:path';

/** The environment variable naming the state directory. */
export const STATE_DIR_ENV = 'TRELLIS_STATE_DIR';

/** The state directory's name under the working directory when nothing else names one. */
export const DEFAULT_STATE_DIR = '.trellis';

export interface StateDirSources {
  /** The `--state-dir` flag, if given (an empty string counts as absent). */
  readonly flag?: string | undefined;
  /** The environment to read TRELLIS_STATE_DIR from; `process.env` when absent. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** The directory relative paths are resolved against; `process.cwd()` when absent. */
  readonly cwd?: string | undefined;
}

/** The absolute path of the state directory: the flag, else $TRELLIS_STATE_DIR, else `.trellis/` in cwd. */
export function resolveStateDir(sources: StateDirSources = {}): string {
  const cwd = sources.cwd ?? process.cwd();
  const env = sources.env ?? process.env;
  const chosen = nonEmpty(sources.flag) ?? nonEmpty(env[STATE_DIR_ENV]) ?? DEFAULT_STATE_DIR;
  return resolve(cwd, chosen);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s !== undefined && s.trim() !== '' ? s : undefined;
}
