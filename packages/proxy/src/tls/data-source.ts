// Reading Envoy's DataSource (inline_bytes, inline_string, filename) for TLS material, and the
// cache of files the proxy reads certificates from (static `filename` data sources and Istio's
// agent-resolved `file-cert:` / `file-root:` secrets). A file is read once and re-checked (by
// size and mtime) at most every `checkIntervalMs`: a rotated certificate file is picked up by
// new connections without a restart. Each version of a file's content is a distinct
// `FileContent` object, so callers can cache what they build from it by identity.
import { readFileSync, statSync } from 'node:fs';
import type { DataSource } from '@trellis/envoy';

/** One version of a file's content. */
export interface FileContent {
  readonly path: string;
  readonly data: Buffer;
}

/** The result of reading TLS material: the bytes and a token identifying this version. */
export type ReadResult =
  | { readonly ok: true; readonly data: Buffer; readonly token: object }
  | { readonly ok: false; readonly error: string };

interface Entry {
  content: FileContent | undefined;
  error: string | undefined;
  size: number;
  mtimeMs: number;
  checkedAt: number;
}

/** Default interval between checks of a file for changes. */
export const FILE_CHECK_INTERVAL_MS = 2_000;

/** Files read for TLS, cached and re-checked for changes. */
export class FileCache {
  readonly #entries = new Map<string, Entry>();
  readonly #checkIntervalMs: number;
  readonly #now: () => number;

  constructor(opts: { checkIntervalMs?: number; now?: () => number } = {}) {
    this.#checkIntervalMs = opts.checkIntervalMs ?? FILE_CHECK_INTERVAL_MS;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** The current content of `path` (its token changes when the file does). */
  read(path: string): ReadResult {
    const now = this.#now();
    let e = this.#entries.get(path);
    if (e && now - e.checkedAt < this.#checkIntervalMs) return result(e);
    if (!e) {
      e = { content: undefined, error: undefined, size: -1, mtimeMs: -1, checkedAt: now };
      this.#entries.set(path, e);
    }
    e.checkedAt = now;
    try {
      const st = statSync(path);
      if (e.content && st.size === e.size && st.mtimeMs === e.mtimeMs) return result(e);
      const data = readFileSync(path);
      e.content = { path, data };
      e.error = undefined;
      e.size = st.size;
      e.mtimeMs = st.mtimeMs;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      e.content = undefined;
      e.error = `cannot read '${path}': ${code ?? (err instanceof Error ? err.message : String(err))}`;
      e.size = -1;
      e.mtimeMs = -1;
    }
    return result(e);
  }

  /** Forgets every file (the next read goes to the file system). */
  clear(): void {
    this.#entries.clear();
  }
}

function result(e: Entry): ReadResult {
  if (e.content) return { ok: true, data: e.content.data, token: e.content };
  return { ok: false, error: e.error ?? 'unreadable' };
}

/** The inline bytes of a data source (undefined for a file or an empty source). */
export function inlineData(ds: DataSource): Buffer | undefined {
  if (ds.inlineBytes !== undefined) return Buffer.from(ds.inlineBytes, 'base64');
  if (ds.inlineString !== undefined) return Buffer.from(ds.inlineString, 'utf8');
  return undefined;
}

/** Reads a data source: inline (its token is the immutable DataSource itself) or a file. */
export function readDataSource(ds: DataSource, files: FileCache): ReadResult {
  const inline = inlineData(ds);
  if (inline !== undefined) return { ok: true, data: inline, token: ds };
  if (ds.filename !== undefined && ds.filename !== '') return files.read(ds.filename);
  if (ds.environmentVariable !== undefined)
    return { ok: false, error: 'environment_variable data sources are not supported' };
  return { ok: false, error: 'empty data source' };
}
