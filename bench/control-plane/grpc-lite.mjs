// A lean gRPC client for the simulated proxies: bidirectional ADS streams over node:http2 with
// gRPC's framing (a 5-byte prefix per message, `grpc-status` in the trailers), and nothing else.
// On the wire it is the same gRPC as @grpc/grpc-js's client; it only skips that client's
// per-message machinery (interceptors, metadata, status filters), which would otherwise make
// 500 simulated proxies in one process the bottleneck of a push instead of the control plane.
// `run.mjs --proxies-client grpc-js` uses @grpc/grpc-js instead, to compare.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService/';
const { NGHTTP2_CANCEL } = http2.constants;

/** One HTTP/2 connection; each `open` is an ADS stream on it. */
export class LiteChannel {
  constructor(target) {
    this.session = http2.connect(`http://${target}`);
    // Errors end the streams (reported there); the session itself has no one to tell.
    this.session.on('error', () => undefined);
  }

  /**
   * An ADS stream: `method` is 'DeltaAggregatedResources' or 'StreamAggregatedResources',
   * `decode` turns a response message (a Buffer) into what 'data' listeners get.
   */
  open(method, decode) {
    return new LiteCall(this.session, SERVICE + method, decode);
  }

  close() {
    this.session.close();
  }
}

/**
 * A bidirectional stream with the parts of grpc-js's ClientDuplexStream the proxies use:
 * `write(message)`, `cancel()`, and the events 'data' (a decoded response), 'error' and
 * 'status' ({ code, details }).
 */
class LiteCall extends EventEmitter {
  constructor(session, path, decode) {
    super();
    this.decode = decode;
    this.chunks = [];
    this.buffered = 0;
    this.status = undefined;
    this.stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.stream.on('data', (chunk) => this.onData(chunk));
    // Trailers-only responses carry the status in the headers.
    this.stream.on('response', (h) => this.noteStatus(h));
    this.stream.on('trailers', (h) => this.noteStatus(h));
    this.stream.on('error', (e) => this.emit('error', e));
    this.stream.on('close', () => {
      const s = this.status ?? { code: 14, details: 'stream closed without a status' };
      if (s.code !== 0) this.emit('error', new Error(`${s.code} ${s.details}`));
      this.emit('status', s);
    });
  }

  noteStatus(h) {
    if (h['grpc-status'] === undefined) return;
    const details = h['grpc-message'];
    this.status = {
      code: Number(h['grpc-status']),
      details: details ? decodeURIComponent(String(details)) : '',
    };
  }

  /** Sends one message (an encoded request). */
  write(message) {
    const frame = Buffer.allocUnsafe(5 + message.byteLength);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, 5);
    this.stream.write(frame);
  }

  cancel() {
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  /** Splits the byte stream into messages: each a 5-byte prefix and its length in bytes. */
  onData(chunk) {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    for (;;) {
      if (this.buffered < 5) return;
      const head = this.chunks[0].byteLength >= 5 ? this.chunks[0] : this.take(5, false);
      const length = head.readUInt32BE(1);
      if (head[0] !== 0) {
        this.emit('error', new Error('compressed gRPC messages are not supported'));
        this.cancel();
        return;
      }
      if (this.buffered < 5 + length) return;
      const framed = this.take(5 + length, true);
      this.emit('data', this.decode(framed.subarray(5)));
    }
  }

  /** The first `n` buffered bytes as one Buffer; `consume` removes them. */
  take(n, consume) {
    const first = this.chunks[0];
    let out;
    if (first.byteLength >= n) out = first.subarray(0, n);
    else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      for (const c of this.chunks) {
        const k = Math.min(c.byteLength, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (off === n) break;
      }
    }
    if (!consume) return out;
    this.buffered -= n;
    let left = n;
    while (left > 0) {
      const c = this.chunks[0];
      if (c.byteLength <= left) {
        left -= c.byteLength;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    return out;
  }
}
