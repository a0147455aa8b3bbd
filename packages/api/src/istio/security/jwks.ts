// Checks of an inline JSON Web Key Set (RequestAuthentication `jwks`): it must parse as JSON with a
// `keys` list, and each key must have the members its type needs (RFC 7517 and RFC 7518).

/** Members each key type needs, all base64url strings except `crv`. */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
  oct: ['k'],
  OKP: ['crv', 'x'],
};
const CURVES: Readonly<Record<string, readonly string[]>> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519', 'Ed448', 'X25519', 'X448'],
};
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Every problem with a JWKS text, each a short sentence; empty when it is valid. */
export function jwksProblems(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return [`must be a JSON Web Key Set in JSON: ${(e as Error).message}`];
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return ['must be a JSON Web Key Set: a JSON object with a "keys" list'];
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) return ['must be a JSON Web Key Set: a JSON object with a "keys" list'];
  if (keys.length === 0) return ['must have at least one key in "keys"'];
  const out: string[] = [];
  keys.forEach((key: unknown, i) => {
    const where = `keys[${i}]`;
    if (key === null || typeof key !== 'object' || Array.isArray(key)) {
      out.push(`${where} must be a JSON object`);
      return;
    }
    const k = key as Record<string, unknown>;
    if (typeof k.kty !== 'string') {
      out.push(`${where} must have a "kty" (RSA, EC, oct or OKP)`);
      return;
    }
    const members = REQUIRED_MEMBERS[k.kty];
    if (!members) {
      out.push(
        `${where}: unknown key type "kty": ${JSON.stringify(k.kty)}; one of RSA, EC, oct, OKP`,
      );
      return;
    }
    for (const m of members) {
      const v = k[m];
      if (typeof v !== 'string' || v === '') {
        out.push(`${where}: a ${k.kty} key must have "${m}"`);
      } else if (m === 'crv') {
        const curves = CURVES[k.kty] ?? [];
        if (!curves.includes(v))
          out.push(`${where}: unknown curve ${JSON.stringify(v)}; one of ${curves.join(', ')}`);
      } else if (!BASE64URL.test(v)) {
        out.push(`${where}: "${m}" must be base64url-encoded`);
      }
    }
  });
  return out;
}
