// xxHash64 (XXH64, Yann Collet's algorithm), the hash Envoy uses for ring hash / Maglev host keys
// and for the HTTP router's hash_policy values (headers, cookies, source IP, query parameters).
// 64-bit arithmetic is done on pairs of unsigned 32-bit halves (no BigInt on the hot path);
// only the final result is a bigint. Strings are hashed as their UTF-8 bytes, like Envoy.

const MASK32 = 0xffff_ffffn;
const hi32 = (v: bigint): number => Number((v >> 32n) & MASK32);
const lo32 = (v: bigint): number => Number(v & MASK32);

const PRIME1 = 0x9e3779b185ebca87n;
const PRIME2 = 0xc2b2ae3d27d4eb4fn;
const PRIME3 = 0x165667b19e3779f9n;
const PRIME4 = 0x85ebca77c2b2ae63n;
const PRIME5 = 0x27d4eb2f165667c5n;
const NEG_PRIME1 = BigInt.asUintN(64, -PRIME1);

const P1H = hi32(PRIME1);
const P1L = lo32(PRIME1);
const P2H = hi32(PRIME2);
const P2L = lo32(PRIME2);
const P3H = hi32(PRIME3);
const P3L = lo32(PRIME3);
const P4H = hi32(PRIME4);
const P4L = lo32(PRIME4);
const P5H = hi32(PRIME5);
const P5L = lo32(PRIME5);
const NP1H = hi32(NEG_PRIME1);
const NP1L = lo32(NEG_PRIME1);

// Result registers of the 64-bit helpers below (high and low halves).
let rH = 0;
let rL = 0;

/** (a * b) mod 2^64. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const carry = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  rL = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  rH = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** (a + b) mod 2^64. */
function add64(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rL = lo >>> 0;
  rH = (ah + bh + (lo > 0xffff_ffff ? 1 : 0)) >>> 0;
}

/** Rotate left by 0 < n < 32. */
function rotl64(h: number, l: number, n: number): void {
  rH = ((h << n) | (l >>> (32 - n))) >>> 0;
  rL = ((l << n) | (h >>> (32 - n))) >>> 0;
}

/** XXH64_round: acc = rotl(acc + input * PRIME2, 31) * PRIME1. */
function round(accH: number, accL: number, inH: number, inL: number): void {
  mul64(inH, inL, P2H, P2L);
  add64(accH, accL, rH, rL);
  rotl64(rH, rL, 31);
  mul64(rH, rL, P1H, P1L);
}

/** XXH64_mergeRound: acc = (acc ^ round(0, val)) * PRIME1 + PRIME4. */
function mergeRound(accH: number, accL: number, vH: number, vL: number): void {
  round(0, 0, vH, vL);
  mul64((accH ^ rH) >>> 0, (accL ^ rL) >>> 0, P1H, P1L);
  add64(rH, rL, P4H, P4L);
}

function read32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** XXH64 of `b` with the seed (sH, sL); the result is left in (rH, rL). */
function xxh64(b: Uint8Array, len: number, sH: number, sL: number): void {
  let p = 0;
  let hH: number;
  let hL: number;
  if (len >= 32) {
    add64(sH, sL, P1H, P1L);
    add64(rH, rL, P2H, P2L);
    let v1H = rH;
    let v1L = rL;
    add64(sH, sL, P2H, P2L);
    let v2H = rH;
    let v2L = rL;
    let v3H = sH;
    let v3L = sL;
    add64(sH, sL, NP1H, NP1L);
    let v4H = rH;
    let v4L = rL;
    const limit = len - 32;
    do {
      round(v1H, v1L, read32(b, p + 4), read32(b, p));
      v1H = rH;
      v1L = rL;
      round(v2H, v2L, read32(b, p + 12), read32(b, p + 8));
      v2H = rH;
      v2L = rL;
      round(v3H, v3L, read32(b, p + 20), read32(b, p + 16));
      v3H = rH;
      v3L = rL;
      round(v4H, v4L, read32(b, p + 28), read32(b, p + 24));
      v4H = rH;
      v4L = rL;
      p += 32;
    } while (p <= limit);
    rotl64(v1H, v1L, 1);
    hH = rH;
    hL = rL;
    rotl64(v2H, v2L, 7);
    add64(hH, hL, rH, rL);
    hH = rH;
    hL = rL;
    rotl64(v3H, v3L, 12);
    add64(hH, hL, rH, rL);
    hH = rH;
    hL = rL;
    rotl64(v4H, v4L, 18);
    add64(hH, hL, rH, rL);
    mergeRound(rH, rL, v1H, v1L);
    mergeRound(rH, rL, v2H, v2L);
    mergeRound(rH, rL, v3H, v3L);
    mergeRound(rH, rL, v4H, v4L);
    hH = rH;
    hL = rL;
  } else {
    add64(sH, sL, P5H, P5L);
    hH = rH;
    hL = rL;
  }
  add64(hH, hL, Math.floor(len / 0x1_0000_0000), len >>> 0);
  hH = rH;
  hL = rL;
  while (p + 8 <= len) {
    round(0, 0, read32(b, p + 4), read32(b, p));
    rotl64((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, 27);
    mul64(rH, rL, P1H, P1L);
    add64(rH, rL, P4H, P4L);
    hH = rH;
    hL = rL;
    p += 8;
  }
  if (p + 4 <= len) {
    mul64(0, read32(b, p), P1H, P1L);
    rotl64((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, 23);
    mul64(rH, rL, P2H, P2L);
    add64(rH, rL, P3H, P3L);
    hH = rH;
    hL = rL;
    p += 4;
  }
  while (p < len) {
    mul64(0, b[p]!, P5H, P5L);
    rotl64((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, 11);
    mul64(rH, rL, P1H, P1L);
    hH = rH;
    hL = rL;
    p++;
  }
  // Avalanche.
  hL = (hL ^ (hH >>> 1)) >>> 0; // h ^= h >> 33
  mul64(hH, hL, P2H, P2L);
  hH = rH;
  hL = (rL ^ ((rL >>> 29) | (rH << 3))) >>> 0; // h ^= h >> 29
  hH = (hH ^ (hH >>> 29)) >>> 0;
  mul64(hH, hL, P3H, P3L);
  rL = (rL ^ rH) >>> 0; // h ^= h >> 32
}

/**
 * XXH64 of a string (as UTF-8) or of bytes, with a 64-bit seed: the same value as Envoy's
 * `HashUtil::xxHash64(value, seed)`.
 */
export function xxHash64(input: string | Uint8Array, seed = 0n): bigint {
  if (seed === 0n) hashInput(input, 0, 0);
  else {
    const s = BigInt.asUintN(64, seed);
    hashInput(input, hi32(s), lo32(s));
  }
  return (BigInt(rH) << 32n) | BigInt(rL);
}

// Strings are encoded into a reused buffer (grown on demand) instead of a new Buffer each time.
const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

function hashInput(input: string | Uint8Array, sH: number, sL: number): void {
  if (typeof input !== 'string') {
    xxh64(input, input.length, sH, sL);
    return;
  }
  const max = input.length * 3;
  if (max > scratch.length) scratch = new Uint8Array(Math.max(max, scratch.length * 2));
  const { written } = encoder.encodeInto(input, scratch);
  xxh64(scratch, written, sH, sL);
}

/**
 * XXH64 of `input` written into `out` as [high 32 bits, low 32 bits] (no bigint: for building
 * rings and tables). `seed` is a 32-bit unsigned value here.
 */
export function xxHash64Into(input: string | Uint8Array, out: Uint32Array, seed = 0): void {
  hashInput(input, 0, seed >>> 0);
  out[0] = rH;
  out[1] = rL;
}
