// Durable file-system primitives: atomic replace (temp + fsync + rename + directory fsync),
// durable mkdir and unlink, and the naming rule that lets readers skip stray temp files.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { errorCode } from '@trellis/core';

/** Temp files start with a dot and end in `.tmp`; readers ignore them, writers sweep them. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/** A unique temp path beside `path` (same directory, so a rename over `path` is atomic). */
export function tempPathFor(path: string): string {
  const tag = `${process.pid}.${randomBytes(6).toString('hex')}`;
  return join(dirname(path), `.${basename(path)}.${tag}.tmp`);
}

/**
 * Flushes a directory's entries (names created, renamed or removed in it) to stable storage.
 * Platforms that cannot open a directory for fsync (Windows) are skipped silently.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
  } catch (e) {
    if (isUnsupportedDirSync(e)) return;
    throw e;
  }
  try {
    await handle.sync();
  } catch (e) {
    if (!isUnsupportedDirSync(e)) throw e;
  } finally {
    await handle.close();
  }
}

function isUnsupportedDirSync(e: unknown): boolean {
  const code = errorCode(e);
  return code === 'EISDIR' || code === 'EPERM' || code === 'EACCES' || code === 'EINVAL';
}

/** Writes and fsyncs a new file; fails with EEXIST if `exclusive` and the file exists. */
export async function writeFileSynced(
  path: string,
  data: string | Uint8Array,
  exclusive = false,
): Promise<void> {
  const handle = await open(path, exclusive ? 'wx' : 'w', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with `data` so that a crash at any point leaves either the old content or the
 * new, never a mix: write a temp file beside it, fsync it, rename it over the target, fsync the
 * directory. A crash before the rename leaves a stray temp file (ignored by readers).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFileSynced(tmp, data, true);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** Removes a file durably; false if it did not exist. */
export async function unlinkDurable(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return false;
    throw e;
  }
  await fsyncDir(dirname(path));
  return true;
}

/** `mkdir -p` whose new directory entries are fsynced, so a later file in it survives a crash. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // Every directory from the parent of the first one created down to `dir` gained an entry.
  const chain = [dirname(first)];
  const rest = relative(first, dir);
  let at = first;
  chain.push(at);
  for (const part of rest === '' ? [] : rest.split(sep)) {
    at = join(at, part);
    chain.push(at);
  }
  for (const d of chain) await fsyncDir(d);
}

/** Removes the temp files in `dir` (only call while holding the store lock: no writer is live). */
export async function sweepTempFiles(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return 0;
    throw e;
  }
  let removed = 0;
  for (const name of names) {
    if (!isTempName(name)) continue;
    await unlink(join(dir, name)).catch(() => undefined);
    removed++;
  }
  if (removed > 0) await fsyncDir(dir);
  return removed;
}
