// Randomness for the load balancers, injectable so tests are deterministic: a tiny interface,
// the process-wide default (Math.random) and a seeded generator (sfc32) for tests.

/** A source of uniformly distributed unsigned 32-bit integers. */
export interface Random {
  nextUint32(): number;
}

/** Math.random-backed randomness: the default in production. */
export const defaultRandom: Random = {
  nextUint32: () => Math.floor(Math.random() * 0x1_0000_0000) >>> 0,
};

/** A uniformly random integer in [0, n) (n ≥ 1). */
export function randomBelow(random: Random, n: number): number {
  return n <= 1 ? 0 : random.nextUint32() % n;
}

/**
 * A seeded generator (Chris Doty-Humphrey's sfc32, seeded through splitmix32): the same seed
 * gives the same sequence on every run.
 */
export function seededRandom(seed: number): Random {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) next();
  return { nextUint32: next };
}
