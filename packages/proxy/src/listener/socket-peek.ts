// Peeking at the first bytes of an accepted socket for the listener filters without losing
// them: bytes are read in paused ('readable') mode, accumulated, and pushed back with
// `socket.unshift()` before the socket is handed on, so its new owner reads them first.
//
// Everything here is synchronous with the socket's events on purpose: a promise continuation
// would run after Node has emitted 'end' (after which unshift is an error). When the peer
// ends the stream while the filters still want bytes, the caller is told `eof` (Envoy then
// closes the connection: downstream_listener_filter_remote_close).
import type { Socket } from 'node:net';

export type PeekEvent = 'data' | 'eof' | 'error';

/** Accumulates a socket's first bytes until released. */
export class SocketPeek {
  readonly #socket: Socket;
  readonly #onEvent: (e: PeekEvent) => void;
  #chunks: Buffer[] = [];
  #data: Buffer = Buffer.alloc(0);
  #reading = false;
  #released = false;

  /** `onEvent` runs synchronously from the socket's events. */
  constructor(socket: Socket, onEvent: (e: PeekEvent) => void) {
    this.#socket = socket;
    this.#onEvent = onEvent;
  }

  /** The bytes peeked so far. */
  get data(): Buffer {
    if (this.#chunks.length > 0) {
      this.#data = Buffer.concat([this.#data, ...this.#chunks]);
      this.#chunks = [];
    }
    return this.#data;
  }

  /** Starts (or keeps) reading; further bytes are reported with `data`. */
  read(): void {
    if (this.#reading || this.#released) return;
    this.#reading = true;
    this.#socket.on('readable', this.#onReadable);
    this.#socket.on('end', this.#onEnd);
    this.#socket.on('close', this.#onClose);
  }

  /** Stops peeking and puts every byte read back at the front of the socket. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#reading) {
      this.#socket.off('readable', this.#onReadable);
      this.#socket.off('end', this.#onEnd);
      this.#socket.off('close', this.#onClose);
    }
    const data = this.data;
    this.#data = Buffer.alloc(0);
    if (data.length > 0 && !this.#socket.destroyed && !this.#socket.readableEnded) {
      this.#socket.unshift(data);
    }
  }

  readonly #onReadable = (): void => {
    let got = false;
    let chunk: unknown;
    while ((chunk = this.#socket.read()) !== null) {
      if (Buffer.isBuffer(chunk) && chunk.length > 0) {
        this.#chunks.push(chunk);
        got = true;
      }
    }
    if (got && !this.#released) this.#onEvent('data');
  };

  readonly #onEnd = (): void => {
    if (!this.#released) this.#onEvent('eof');
  };

  readonly #onClose = (): void => {
    if (!this.#released) this.#onEvent('error');
  };
}
