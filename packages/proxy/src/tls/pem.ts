// Checks of PEM TLS material with node:crypto, so that bad certificates, keys and CA bundles are
// refused with a reason (a NACK for inline material and SDS secrets, a connection failure for
// files) rather than failing obscurely in a handshake.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { errorMessage } from '@trellis/core';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle; an error when there is none or one does not parse. */
export function parseCertificates(
  pem: Buffer | string,
): { ok: true; certs: X509Certificate[] } | { ok: false; error: string } {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return { ok: false, error: 'no PEM certificate found' };
  const certs: X509Certificate[] = [];
  for (let i = 0; i < blocks.length; i++) {
    try {
      certs.push(new X509Certificate(blocks[i] as string));
    } catch (e) {
      return { ok: false, error: `certificate #${i + 1} does not parse: ${errorMessage(e)}` };
    }
  }
  return { ok: true, certs };
}

/** A PEM private key (PKCS#8, PKCS#1 or SEC1), optionally encrypted with `passphrase`. */
export function parsePrivateKey(
  pem: Buffer | string,
  passphrase?: string,
): { ok: true; key: KeyObject } | { ok: false; error: string } {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
    return { ok: false, error: 'no PEM private key found' };
  try {
    return {
      ok: true,
      key: createPrivateKey({
        key: text,
        format: 'pem',
        ...(passphrase !== undefined ? { passphrase } : {}),
      }),
    };
  } catch (e) {
    return { ok: false, error: `private key does not parse: ${errorMessage(e)}` };
  }
}

/**
 * Problems of a certificate chain and its key: both parse, and the key is the first
 * certificate's. Empty when they are usable.
 */
export function certificateAndKeyProblems(
  chain: Buffer | string,
  key: Buffer | string,
  passphrase?: string,
): string[] {
  const problems: string[] = [];
  const c = parseCertificates(chain);
  if (!c.ok) problems.push(`certificate_chain: ${c.error}`);
  const k = parsePrivateKey(key, passphrase);
  if (!k.ok) problems.push(`private_key: ${k.error}`);
  if (c.ok && k.ok && !(c.certs[0] as X509Certificate).checkPrivateKey(k.key))
    problems.push('private_key: does not match the certificate (key values mismatch)');
  return problems;
}
