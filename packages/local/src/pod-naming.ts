// Pod names as a Deployment's ReplicaSet makes them: `<deployment>-<pod-template-hash>-<5 chars>`.
// The hash is over the pod template (so a changed template rolls the replicas); the suffix uses
// the Kubernetes alphabet (no vowels or look-alikes).
import { createHash, randomInt } from 'node:crypto';

/** Kubernetes' `rand.String` alphabet: lowercase consonants and digits without look-alikes. */
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** 10 hex characters identifying a pod template (canonical JSON: keys sorted). */
export function podTemplateHash(template: unknown): string {
  return createHash('sha256').update(canonicalJson(template)).digest('hex').slice(0, 10);
}

/** `n` random characters of the Kubernetes name-suffix alphabet. */
export function randomSuffix(n = 5, random: (max: number) => number = randomInt): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[random(ALPHABET.length)];
  return s;
}

/** `reviews-v1-5c8d7e9f0a-x7k2p`; a name that is not free gets a new suffix (up to 20 tries). */
export function podName(
  deployment: string,
  hash: string,
  taken: (name: string) => boolean = () => false,
  random?: (max: number) => number,
): string {
  for (let i = 0; i < 20; i++) {
    const name = `${deployment}-${hash}-${randomSuffix(5, random)}`;
    if (!taken(name)) return name;
  }
  throw new Error(`could not find a free pod name for ${deployment}-${hash}`);
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
