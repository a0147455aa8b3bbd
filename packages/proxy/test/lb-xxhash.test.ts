// xxHash64: known vectors (computed with the reference C library, libxxhash 0.8.1, and
// Envoy's own test value for "foo"), every code path by input length, and a cross-check against
// a straightforward BigInt implementation on random inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom, xxHash64, xxHash64Into } from '../src/upstream/lb/index.js';

// [length, XXH64(seed 0), XXH64(seed 0x9E3779B97F4A7C15)] of bytes (i * 31 + 7) % 256.
const BY_LENGTH: [number, bigint, bigint][] = [
  [0, 0xef46db3751d8e999n, 0xc4349fc93c010000n],
  [1, 0xa96c7f0ce858bbb7n, 0x585882422a6165e7n],
  [3, 0x56e6957632a487f9n, 0x5acb303e78133c22n],
  [4, 0xc60d15b1e3ff8f04n, 0x7d51d5e2461732b3n],
  [5, 0x808815858624dd4en, 0x7f8b72856a42bb63n],
  [7, 0xafbefc3d6c6f9a8en, 0x2ce9adec2b2c8104n],
  [8, 0x3da5c7aa269683e0n, 0x758848f033fa76a2n],
  [9, 0x4b17a9ba9e215c09n, 0xd4576cf554b7d929n],
  [15, 0xae2a37eb9357caa7n, 0xa18d5c90d722cee3n],
  [16, 0xa19ad429b02bc413n, 0xe3594f9058b426e7n],
  [17, 0xfe9f0feb7eeedc09n, 0xa0c8a40ef8f3a9f7n],
  [31, 0x4a74f3a1a39ad4a1n, 0x8137041f5af88413n],
  [32, 0x8d57d6a4671cc43dn, 0x184ebcf3745cd46cn],
  [33, 0x62c9fd21ed857664n, 0x52fac3c981f3cc2en],
  [47, 0x05e3ab06c6bb0a6bn, 0x37b10e45d45d4df1n],
  [63, 0x5c320a0d2707057fn, 0x64ef99a2e94cc7bdn],
  [64, 0x7bbabbc45729d17en, 0xf7f22435fe1ab128n],
  [65, 0xf3980c34bae65dc1n, 0x7a0b76a812617c73n],
  [100, 0xefa0ad2d3e70c151n, 0xbc7ab33be7528c18n],
  [255, 0x2c3db4bb567f731en, 0x76dc2ba578c894b9n],
  [1000, 0x99594f4828043d35n, 0xda717f741f399f3fn],
];

const pattern = (n: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) % 256);

test('xxHash64 matches the reference library for every input length path', () => {
  for (const [n, seed0, seedBig] of BY_LENGTH) {
    assert.equal(xxHash64(pattern(n)), seed0, `length ${n}, seed 0`);
    assert.equal(xxHash64(pattern(n), 0x9e3779b97f4a7c15n), seedBig, `length ${n}, big seed`);
  }
});

test('xxHash64 of strings hashes their UTF-8 bytes', () => {
  assert.equal(xxHash64(''), 0xef46db3751d8e999n);
  assert.equal(xxHash64('a'), 0xd24ec4f1a98c6e5bn);
  assert.equal(xxHash64('abc'), 0x44bc2cf5ad770999n);
  // Envoy's hash_test.cc: HashUtil::xxHash64("foo") == 3728699739546630719.
  assert.equal(xxHash64('foo'), 3728699739546630719n);
  assert.equal(xxHash64('Nobody inspects the spammish repetition'), 0xfbcea83c8a378bf1n);
  assert.equal(xxHash64('Nobody inspects the spammish repetition', 20141025n), 0xce06936136852706n);
  assert.equal(xxHash64('abc', 1n), 0xbea9ca8199328908n);
  assert.equal(xxHash64('héllo wörld ☃'), 0xc6f31b61bcc7f364n);
  assert.equal(xxHash64('héllo wörld ☃'), xxHash64(Buffer.from('héllo wörld ☃', 'utf8')));
  // Ring hash point keys and Maglev host keys.
  assert.equal(xxHash64('10.0.0.1:80_0'), 0x75041381e7371a08n);
  assert.equal(xxHash64('10.1.0.3:9080'), 0x923dcda1c19b5dfen);
  assert.equal(xxHash64('10.1.0.3:9080', 1n), 0xcc458bbab5d2c9fbn);
  assert.equal(xxHash64('[::1]:8080'), 0x4a01777e5480c1efn);
  // Long strings (beyond the reused encoding buffer) still hash right.
  const long = 'x'.repeat(5000);
  assert.equal(xxHash64(long), xxHash64(Buffer.from(long)));
});

test('xxHash64Into gives the two 32-bit halves of xxHash64', () => {
  const out = new Uint32Array(2);
  for (const s of ['', 'user-jason', '10.0.0.1:80_17', 'z'.repeat(77)]) {
    for (const seed of [0, 1]) {
      xxHash64Into(s, out, seed);
      const h = xxHash64(s, BigInt(seed));
      assert.equal(out[0], Number(h >> 32n));
      assert.equal(out[1], Number(h & 0xffffffffn));
    }
  }
});

test('xxHash64 agrees with a BigInt implementation on random inputs and seeds', () => {
  const rnd = seededRandom(42);
  for (let t = 0; t < 400; t++) {
    const n = rnd.nextUint32() % 300;
    const bytes = Uint8Array.from({ length: n }, () => rnd.nextUint32() & 0xff);
    const seed = (BigInt(rnd.nextUint32()) << 32n) | BigInt(rnd.nextUint32());
    assert.equal(xxHash64(bytes, seed), referenceXxh64(bytes, seed), `case ${t} (length ${n})`);
  }
  // Seeds outside 64 bits are taken modulo 2^64, like a uint64_t.
  assert.equal(xxHash64('abc', -1n), referenceXxh64(Buffer.from('abc'), (1n << 64n) - 1n));
});

// --- A direct transcription of XXH64 with BigInt, as an independent oracle. ---
const M64 = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M64;
const round = (acc: bigint, input: bigint): bigint =>
  (rotl((acc + input * P2) & M64, 31n) * P1) & M64;
const merge = (acc: bigint, val: bigint): bigint =>
  ((((acc ^ round(0n, val)) * P1) & M64) + P4) & M64;
const u64 = (b: Uint8Array, p: number): bigint => {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]!);
  return v;
};
const u32 = (b: Uint8Array, p: number): bigint => {
  let v = 0n;
  for (let i = 3; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]!);
  return v;
};

function referenceXxh64(b: Uint8Array, seed: bigint): bigint {
  seed &= M64;
  const len = b.length;
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & M64;
    let v2 = (seed + P2) & M64;
    let v3 = seed;
    let v4 = (seed - P1) & M64;
    while (p + 32 <= len) {
      v1 = round(v1, u64(b, p));
      v2 = round(v2, u64(b, p + 8));
      v3 = round(v3, u64(b, p + 16));
      v4 = round(v4, u64(b, p + 24));
      p += 32;
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M64;
    h = merge(h, v1);
    h = merge(h, v2);
    h = merge(h, v3);
    h = merge(h, v4);
  } else {
    h = (seed + P5) & M64;
  }
  h = (h + BigInt(len)) & M64;
  while (p + 8 <= len) {
    h ^= round(0n, u64(b, p));
    h = (((rotl(h, 27n) * P1) & M64) + P4) & M64;
    p += 8;
  }
  if (p + 4 <= len) {
    h ^= (u32(b, p) * P1) & M64;
    h = (((rotl(h, 23n) * P2) & M64) + P3) & M64;
    p += 4;
  }
  while (p < len) {
    h ^= (BigInt(b[p]!) * P5) & M64;
    h = (rotl(h, 11n) * P1) & M64;
    p++;
  }
  h ^= h >> 33n;
  h = (h * P2) & M64;
  h ^= h >> 29n;
  h = (h * P3) & M64;
  h ^= h >> 32n;
  return h;
}
