// Reads `-f FILE|DIR|-` inputs (kubectl's rules: directories give their .yaml/.yml/.json
// files, recursively with -R) and validates them as one batch.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import {
  validateManifests,
  type LocatedProblem,
  type ManifestObject,
  type ValidateOptions,
} from '@trellis/api';
import { errorMessage } from '@trellis/core';
import type { Io } from './io.js';

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

export interface Batch {
  readonly files: readonly string[];
  readonly objects: readonly ManifestObject[];
  readonly problems: readonly LocatedProblem[];
  readonly errorCount: number;
  readonly warningCount: number;
}

/** Lists the files named by one -f argument. */
async function expand(path: string, recursive: boolean, top = true): Promise<string[]> {
  const st = await stat(path);
  if (!st.isDirectory()) return [path];
  if (!top && !recursive) return [];
  const out: string[] = [];
  for (const name of (await readdir(path)).sort()) {
    const p = join(path, name);
    const s = await stat(p);
    if (s.isDirectory()) out.push(...(await expand(p, recursive, false)));
    else if (MANIFEST_EXT.test(name)) out.push(p);
  }
  return out;
}

/** Reads and validates every manifest named by `-f` arguments. Unreadable inputs become located problems. */
export async function readBatch(
  inputs: readonly string[],
  opts: { recursive: boolean; validate: ValidateOptions },
  io: Io,
): Promise<Batch> {
  const files: string[] = [];
  const objects: ManifestObject[] = [];
  const problems: LocatedProblem[] = [];
  const add = (text: string, label: string): void => {
    const r = validateManifests(text, label, opts.validate);
    objects.push(...r.objects);
    problems.push(...r.problems);
  };
  for (const input of inputs) {
    if (input === '-') {
      files.push('<stdin>');
      add(await io.readStdin(), '<stdin>');
      continue;
    }
    const abs = resolve(io.cwd, input);
    let list: string[];
    try {
      list = await expand(abs, opts.recursive);
    } catch (e) {
      problems.push({
        severity: 'error',
        path: '',
        message: `cannot read ${input}: ${describeFsError(e)}`,
      });
      continue;
    }
    if (list.length === 0) {
      problems.push({
        severity: 'error',
        path: '',
        message: `${input}: no .yaml, .yml or .json files found`,
      });
    }
    for (const file of list) {
      const label = displayPath(io.cwd, file);
      files.push(label);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        problems.push({
          severity: 'error',
          path: '',
          message: `cannot read ${label}: ${describeFsError(e)}`,
        });
        continue;
      }
      add(text, label);
    }
  }
  return {
    files,
    objects,
    problems,
    errorCount: problems.filter((p) => p.severity === 'error').length,
    warningCount: problems.filter((p) => p.severity === 'warning').length,
  };
}

function displayPath(cwd: string, file: string): string {
  const rel = relative(cwd, file);
  return rel.startsWith('..') && rel.split('/').filter((s) => s === '..').length > 3 ? file : rel;
}

function describeFsError(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return errorMessage(e);
}
