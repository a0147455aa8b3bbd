// Follows the journal from a revision on, across segment rotation and compaction, returning each
// committed entry exactly once and in revision order. Files are opened per read (no handle is
// kept), so a segment that compaction deletes is noticed instead of read forever.
import { setTimeout as sleep } from 'node:timers/promises';
import { TrellisError, errorCode } from '@trellis/core';
import {
  listSegments,
  parseEntries,
  readFrom,
  type JournalEntry,
  type Segment,
} from './journal.js';
import { STORE_CORRUPT } from './object-files.js';

/** The error code of a watch whose resume point is no longer in the journal (Kubernetes' 410 Gone). */
export const WATCH_EXPIRED = 'TRELLIS_WATCH_EXPIRED';

const CORRUPT_RETRY_MS = 25;

/** A TRELLIS_WATCH_EXPIRED error for resuming after `afterRev`. */
export function watchExpired(afterRev: number, why: string): TrellisError {
  return new TrellisError(
    WATCH_EXPIRED,
    `cannot watch from resource version ${afterRev}: ${why}; list again and watch from the list's resource version`,
  );
}

export class JournalFollower {
  private readonly dir: string;
  private next: number;
  private seg: Segment | undefined;
  private offset = 0;

  /** Follows `dir` from the entry after `afterRev`. */
  constructor(dir: string, afterRev: number) {
    this.dir = dir;
    this.next = afterRev + 1;
  }

  /** The revision of the next entry to return. */
  get nextRev(): number {
    return this.next;
  }

  /**
   * The next batch of committed entries ([] when caught up). Fails with TRELLIS_WATCH_EXPIRED if
   * entries this follower has not returned yet were compacted away.
   */
  async read(): Promise<JournalEntry[]> {
    try {
      return await this.readOnce();
    } catch (e) {
      // A read that raced a writer truncating a torn tail and appending over it can see a mix
      // of old and new bytes; the file settles at once, so look again before calling it corrupt.
      if (errorCode(e) !== STORE_CORRUPT) throw e;
      await sleep(CORRUPT_RETRY_MS);
      return await this.readOnce();
    }
  }

  private async readOnce(): Promise<JournalEntry[]> {
    for (;;) {
      const seg = this.seg ?? (await this.choose());
      if (!seg) return [];
      const buf = await readFrom(seg.path, this.offset);
      if (buf === undefined) {
        this.seg = undefined; // deleted by compaction (or an emptied tail removed): choose again
        continue;
      }
      const out = this.take(seg, buf);
      if (out.length > 0) return out;
      const newer = (await listSegments(this.dir)).find((s) => s.first > seg.first);
      if (!newer) return [];
      // A newer segment exists, so this one is frozen: drain what landed since the read above.
      const rest = await readFrom(seg.path, this.offset);
      if (rest !== undefined) {
        const late = this.take(seg, rest);
        if (late.length > 0) return late;
      }
      if (newer.first > this.next) {
        throw watchExpired(
          this.next - 1,
          `revisions ${this.next} to ${newer.first - 1} were compacted`,
        );
      }
      this.seg = newer;
      this.offset = 0;
    }
  }

  /** Parses `buf` (read at `this.offset`), advances, and keeps the entries not returned yet. */
  private take(seg: Segment, buf: Buffer): JournalEntry[] {
    const { entries, consumed } = parseEntries(buf, seg.path, this.offset);
    const out: JournalEntry[] = [];
    let next = this.next;
    for (const e of entries) {
      if (e.rev < next) continue;
      if (e.rev > next) {
        throw new TrellisError(
          STORE_CORRUPT,
          `config store journal ${seg.path} has revision ${e.rev} where ${next} was expected`,
        );
      }
      out.push(e);
      next++;
    }
    // Only advance once the whole chunk checked out, so a retry starts from the same place.
    this.offset += consumed;
    this.next = next;
    return out;
  }

  /** The segment holding `next`: the newest one starting at or before it. */
  private async choose(): Promise<Segment | undefined> {
    const segs = await listSegments(this.dir);
    const oldest = segs[0];
    if (!oldest) return undefined;
    let pick: Segment | undefined;
    for (const s of segs) if (s.first <= this.next) pick = s;
    if (!pick) {
      throw watchExpired(this.next - 1, `the journal now starts at revision ${oldest.first}`);
    }
    this.seg = pick;
    this.offset = 0;
    return pick;
  }
}
