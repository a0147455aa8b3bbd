// The change journal: an append-only write-ahead log of every change, as JSON lines
// {"rev":N,"type":"ADDED|MODIFIED|DELETED","object":{...}} in segment files
// journal/<first revision, 16 digits>.jsonl. A change is committed once its line is fsynced;
// object files are applied after. Readers consume complete lines only, so a torn last line left
// by a crash is invisible to them, and the next writer truncates it. Old segments are deleted
// when more than `retainSegments` exist (compaction).
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeObject } from '@trellis/api';
import { TrellisError, errorCode, errorMessage } from '@trellis/core';
import { fsyncDir } from './durable-fs.js';
import { STORE_CORRUPT, objectShapeProblem } from './object-files.js';
import type { WatchEventType } from './store.js';

/** One committed change. */
export interface JournalEntry {
  /** The store revision this change created (the object's resourceVersion). */
  readonly rev: number;
  readonly type: WatchEventType;
  /** The object after the change; for DELETED, its last state (resourceVersion = rev). */
  readonly object: KubeObject;
}

/** One segment file. */
export interface Segment {
  /** The revision of its first entry. */
  readonly first: number;
  readonly path: string;
}

export interface JournalLimits {
  /** Start a new segment when the current one reaches this size (default 1 MiB). */
  readonly segmentMaxBytes?: number;
  /** Start a new segment when the current one holds this many entries (default 1000). */
  readonly segmentMaxEntries?: number;
  /** Keep this many newest segments (at least 2; default 8); older ones are deleted. */
  readonly retainSegments?: number;
}

const SEGMENT_EXT = '.jsonl';
const NEWLINE = 0x0a;
const TYPES: ReadonlySet<string> = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** `0000000000000042.jsonl`: zero-padded so names sort like numbers. */
export function segmentName(first: number): string {
  return String(first).padStart(16, '0') + SEGMENT_EXT;
}

/** The segments of a journal directory, oldest first ([] if none or no directory). */
export async function listSegments(dir: string): Promise<Segment[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return [];
    throw e;
  }
  const out: Segment[] = [];
  for (const name of names) {
    if (!/^[0-9]{16}\.jsonl$/.test(name)) continue;
    const first = Number(name.slice(0, 16));
    if (first >= 1) out.push({ first, path: join(dir, name) });
  }
  return out.sort((a, b) => a.first - b.first);
}

/** What `parseEntries` found in a chunk. */
export interface ParsedChunk {
  readonly entries: JournalEntry[];
  /** Bytes of complete, valid lines; the rest is a torn (or not yet written) tail. */
  readonly consumed: number;
}

/**
 * Parses the complete lines of `buf` (bytes of `path` from `offset`). An invalid line stops the
 * parse there: it is a torn tail if nothing follows it, and corruption (TRELLIS_STORE_CORRUPT) if
 * complete lines follow.
 */
export function parseEntries(buf: Buffer, path: string, offset: number): ParsedChunk {
  const entries: JournalEntry[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(NEWLINE, start);
    if (nl < 0) break;
    const entry = parseLine(buf.toString('utf8', start, nl));
    if (entry === undefined) {
      if (buf.indexOf(NEWLINE, nl + 1) >= 0) {
        throw new TrellisError(
          STORE_CORRUPT,
          `config store journal ${path} is corrupt at byte ${offset + start}: an invalid entry is followed by others`,
        );
      }
      break;
    }
    entries.push(entry);
    start = nl + 1;
  }
  return { entries, consumed: start };
}

function parseLine(line: string): JournalEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as Record<string, unknown>;
  if (typeof e.rev !== 'number' || !Number.isSafeInteger(e.rev) || e.rev < 1) return undefined;
  if (typeof e.type !== 'string' || !TYPES.has(e.type)) return undefined;
  if (objectShapeProblem(e.object) !== undefined) return undefined;
  return v as JournalEntry;
}

/** Reads `path` from `offset` to its end; undefined if the file does not exist. */
export async function readFrom(path: string, offset: number): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const size = (await handle.stat()).size;
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await handle.read(buf, got, buf.length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/** Every entry the journal holds, checked to be consecutive (for tools and tests). */
export async function readJournal(dir: string): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for (const seg of await listSegments(dir)) {
    const buf = (await readFrom(seg.path, 0)) ?? Buffer.alloc(0);
    const { entries } = parseEntries(buf, seg.path, 0);
    for (const e of entries) {
      const prev = out[out.length - 1];
      const expected = prev ? prev.rev + 1 : seg.first;
      if (e.rev !== expected) {
        throw new TrellisError(
          STORE_CORRUPT,
          `config store journal ${seg.path} has revision ${e.rev} where ${expected} was expected`,
        );
      }
      out.push(e);
    }
  }
  return out;
}

/** The newest committed state of the journal. */
export interface JournalTail {
  /** The last committed revision; 0 if the journal holds no entry. */
  readonly lastRev: number;
  /** The last committed entry, if the journal holds any. */
  readonly last?: JournalEntry;
}

interface OpenSegment {
  readonly seg: Segment;
  size: number;
  entries: number;
  lastRev: number;
  last: JournalEntry | undefined;
}

/**
 * Appends to the journal. Only use it while holding the store lock: `sync` repairs the tail
 * on the assumption that no other writer is running.
 */
export class JournalWriter {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  private readonly retain: number;
  private current: OpenSegment | undefined;

  constructor(dir: string, limits: JournalLimits = {}) {
    this.dir = dir;
    this.maxBytes = limits.segmentMaxBytes ?? 1 << 20;
    this.maxEntries = limits.segmentMaxEntries ?? 1000;
    this.retain = Math.max(2, limits.retainSegments ?? 8);
  }

  /**
   * Catches up with what other writers appended and repairs a torn tail left by a crashed one
   * (truncating it; an emptied newest segment is removed). Returns the committed tail.
   */
  async sync(): Promise<JournalTail> {
    for (;;) {
      const segs = await listSegments(this.dir);
      const newest = segs[segs.length - 1];
      if (!newest) {
        this.current = undefined;
        return { lastRev: 0 };
      }
      let cur = this.current;
      if (!cur || cur.seg.path !== newest.path) {
        cur = { seg: newest, size: 0, entries: 0, lastRev: newest.first - 1, last: undefined };
      }
      const size = await sizeOf(newest.path);
      if (size === undefined) continue; // removed meanwhile (cannot happen under the lock)
      if (size < cur.size) {
        cur = { seg: newest, size: 0, entries: 0, lastRev: newest.first - 1, last: undefined };
      }
      if (size !== cur.size) {
        let buf = (await readFrom(newest.path, cur.size)) ?? Buffer.alloc(0);
        let parsed = parseEntries(buf, newest.path, cur.size);
        if (cur.size > 0 && parsed.consumed < buf.length) {
          // Before truncating anything, parse the whole segment: only a torn tail may go.
          cur = { seg: newest, size: 0, entries: 0, lastRev: newest.first - 1, last: undefined };
          buf = (await readFrom(newest.path, 0)) ?? Buffer.alloc(0);
          parsed = parseEntries(buf, newest.path, 0);
        }
        const { entries, consumed } = parsed;
        for (const e of entries) {
          if (e.rev !== cur.lastRev + 1) {
            throw new TrellisError(
              STORE_CORRUPT,
              `config store journal ${newest.path} has revision ${e.rev} where ${cur.lastRev + 1} was expected`,
            );
          }
          cur.lastRev = e.rev;
          cur.last = e;
          cur.entries++;
        }
        cur.size += consumed;
        if (cur.size < size) await truncateSynced(newest.path, cur.size);
      }
      if (cur.entries === 0) {
        // Created by a writer that crashed before its first line landed: remove and look again.
        await unlink(newest.path).catch(() => undefined);
        await fsyncDir(this.dir);
        this.current = undefined;
        continue;
      }
      this.current = cur;
      return cur.last ? { lastRev: cur.lastRev, last: cur.last } : { lastRev: cur.lastRev };
    }
  }

  /**
   * Appends and fsyncs one entry (the commit point); `entry.rev` must follow the synced tail.
   * Returns true if it started a new segment (then `compact` is due).
   */
  async append(entry: JournalEntry): Promise<boolean> {
    const line = Buffer.from(JSON.stringify(entry) + '\n', 'utf8');
    let cur = this.current;
    if (cur && entry.rev !== cur.lastRev + 1) {
      throw new Error(`journal append of revision ${entry.rev} after ${cur.lastRev}`);
    }
    let created = false;
    if (!cur || cur.size >= this.maxBytes || cur.entries >= this.maxEntries) {
      const seg = { first: entry.rev, path: join(this.dir, segmentName(entry.rev)) };
      cur = { seg, size: 0, entries: 0, lastRev: entry.rev - 1, last: undefined };
      created = true;
    }
    let handle;
    try {
      handle = await open(cur.seg.path, created ? 'wx' : 'r+');
    } catch (e) {
      throw new TrellisError(
        STORE_CORRUPT,
        `cannot open config store journal ${cur.seg.path}: ${errorMessage(e)}`,
        { cause: e },
      );
    }
    try {
      let done = 0;
      while (done < line.length) {
        const { bytesWritten } = await handle.write(
          line,
          done,
          line.length - done,
          cur.size + done,
        );
        done += bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (created) await fsyncDir(this.dir);
    cur.size += line.length;
    cur.entries++;
    cur.lastRev = entry.rev;
    cur.last = entry;
    this.current = cur;
    return created;
  }

  /** Deletes the oldest segments beyond the retention bound. */
  async compact(): Promise<void> {
    const segs = await listSegments(this.dir);
    const excess = segs.length - this.retain;
    if (excess <= 0) return;
    for (const seg of segs.slice(0, excess)) await unlink(seg.path).catch(() => undefined);
    await fsyncDir(this.dir);
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

async function truncateSynced(path: string, size: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(size);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The last committed entry, read without the lock (a concurrent append is simply not seen yet). */
export async function peekLastEntry(dir: string): Promise<JournalEntry | undefined> {
  const segs = await listSegments(dir);
  for (let i = segs.length - 1; i >= 0; i--) {
    const seg = segs[i];
    if (!seg) continue;
    const buf = await readFrom(seg.path, 0);
    if (buf === undefined) continue;
    const { entries } = parseEntries(buf, seg.path, 0);
    const last = entries[entries.length - 1];
    if (last) return last;
  }
  return undefined;
}
