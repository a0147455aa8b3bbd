// x-request-id values: random (version 4) UUIDs, as Envoy's default request-id extension makes
// them. Random bytes are drawn from the CSPRNG in blocks, and each UUID is written as ASCII into
// a small scratch buffer and read back as one flat string (crypto.randomUUID builds it from
// twenty concatenated pieces, which the socket write then has to flatten).
import { randomFillSync } from 'node:crypto';

/** Random bytes for this many UUIDs are drawn at once. */
const BATCH = 256;
const pool = Buffer.alloc(16 * BATCH);
let next = pool.length;
const out = Buffer.alloc(36);
const HEX = new Uint8Array(16);
for (let i = 0; i < 16; i++) HEX[i] = '0123456789abcdef'.charCodeAt(i);
/** Where each of the 16 bytes goes in the 36 characters (dashes after bytes 4, 6, 8, 10). */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
out[8] = out[13] = out[18] = out[23] = 0x2d;

/** A new random UUID (RFC 9562 version 4), lower-case. */
export function newRequestId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const base = next;
  next += 16;
  for (let i = 0; i < 16; i++) {
    let b = pool[base + i]!;
    if (i === 6)
      b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10
    const at = AT[i]!;
    out[at] = HEX[b >> 4]!;
    out[at + 1] = HEX[b & 15]!;
  }
  return out.toString('latin1', 0, 36);
}
