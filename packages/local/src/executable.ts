// Finds a container's command the way exec(3) does (a name with a slash as a path, else each
// $PATH entry), so a missing command gets Kubernetes' message
// `exec: "foo": executable file not found in $PATH` instead of a spawn error.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

function executableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of the command, or an Error with the kubelet's wording. */
export function resolveExecutable(command: string, pathEnv: string, cwd: string): string | Error {
  if (command.includes('/')) {
    const p = isAbsolute(command) ? command : resolve(cwd, command);
    return executableFile(p)
      ? p
      : new Error(`exec: ${JSON.stringify(command)}: stat ${p}: no such executable file`);
  }
  for (const dir of pathEnv.split(delimiter)) {
    if (dir === '') continue;
    const p = join(resolve(cwd, dir), command);
    if (executableFile(p)) return p;
  }
  return new Error(`exec: ${JSON.stringify(command)}: executable file not found in $PATH`);
}
