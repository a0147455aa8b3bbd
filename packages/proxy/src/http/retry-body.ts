// The request body of a request that may be retried or mirrored: it flows to the current upstream
// attempt as it arrives (with backpressure) while a copy is kept, up to the buffer limit
// (per_request_buffer_limit_bytes, else 64 KiB here), so that a retry can replay it and a mirror
// can send it whole. Past the limit the copy is dropped and `onOverflow` fires: Envoy then
// abandons retries and shadowing for the request (`retry_or_shadow_abandoned`).
import type { Readable, Writable } from 'node:stream';

/** The buffer limit when neither the route nor the virtual host sets one. */
export const DEFAULT_RETRY_BUFFER_LIMIT_BYTES = 64 * 1024;

export class ReplayableBody {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private ended = false;
  private started = false;
  private sink: Writable | undefined;
  private stopped = false;
  private readonly endWaiters: (() => void)[] = [];

  constructor(
    private readonly source: Readable,
    private readonly limit: number,
    private readonly onOverflow: () => void,
    private readonly onChunk: (chunk: Buffer) => void,
  ) {}

  /** The body exceeded the limit: it cannot be replayed. */
  get abandoned(): boolean {
    return this.overflowed;
  }

  /** The whole body, once it ended within the limit. */
  get complete(): Buffer | undefined {
    return this.ended && !this.overflowed ? Buffer.concat(this.chunks) : undefined;
  }

  /** Calls `cb` once the body ended (at once if it has). */
  onEnd(cb: () => void): void {
    if (this.ended) cb();
    else this.endWaiters.push(cb);
  }

  /**
   * Sends the body to an attempt's sink: what was kept so far, then the rest as it arrives.
   * Returns false when the body cannot be replayed (past the limit on a later attempt).
   */
  attach(sink: Writable): boolean {
    if (this.stopped) return false;
    if (this.started && this.overflowed) return false;
    this.detach();
    this.sink = sink;
    sink.on('error', () => {});
    for (const c of this.chunks) sink.write(c);
    if (this.ended) {
      sink.end();
      return true;
    }
    sink.on('drain', this.onDrain);
    if (!this.started) {
      this.started = true;
      this.source.on('data', this.onData);
      this.source.once('end', this.onEndEvent);
    } else this.source.resume();
    return true;
  }

  /** Stops feeding the current sink (its attempt was reset); the source pauses meanwhile. */
  detach(): void {
    const s = this.sink;
    if (!s) return;
    s.off('drain', this.onDrain);
    this.sink = undefined;
    if (!this.ended) this.source.pause();
  }

  /** No more attempts: drain the source without keeping anything. */
  stop(): void {
    this.detach();
    this.stopped = true;
    this.chunks = [];
    if (!this.ended) {
      if (!this.started) {
        this.started = true;
        this.source.on('data', this.onData);
        this.source.once('end', this.onEndEvent);
      }
      this.source.resume();
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    this.onChunk(chunk);
    if (!this.overflowed && !this.stopped) {
      this.size += chunk.length;
      if (this.size > this.limit) {
        this.overflowed = true;
        this.chunks = [];
        this.onOverflow();
      } else this.chunks.push(chunk);
    }
    const s = this.sink;
    if (s && !s.write(chunk)) this.source.pause();
    else if (!s && !this.stopped) this.source.pause();
  };

  private readonly onDrain = (): void => {
    if (this.sink && !this.ended) this.source.resume();
  };

  private readonly onEndEvent = (): void => {
    this.ended = true;
    this.sink?.end();
    for (const cb of this.endWaiters.splice(0)) cb();
  };
}
