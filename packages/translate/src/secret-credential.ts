// Kubernetes Secrets read as TLS credentials, with istiod's keys and precedence
// (pilot/pkg/credentials/kube/secrets.go):
// - a certificate and key from `cert` + `key` (generic Secrets, tried first) or `tls.crt` +
//   `tls.key` (kubernetes.io/tls, with an optional OCSP staple in `tls.ocsp-staple`);
// - a CA bundle from `cacert` or `ca.crt`, with a revocation list from `crl` or `ca.crl`.
// A key counts only when its value is not empty. `data` is base64; `stringData` is plain text
// that Kubernetes merges over `data` when the Secret is written (a file store may keep it as
// written, so it is merged here the same way).
//
// Unlike istiod, the PEM is checked: a certificate or key that does not parse, or a key that does
// not match its certificate, is an error, since the proxy would reject (NACK) the whole SDS
// response that carried it. Results are remembered per Secret object (snapshots share their
// immutable objects), so each Secret is parsed once, not once per proxy and push.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { KubeObject } from '@trellis/api';
import { err, ok, type Result } from '@trellis/core';

/** A certificate chain and its private key, as stored (PEM bytes). */
export interface CertificateCredential {
  readonly certificateChain: Buffer;
  readonly privateKey: Buffer;
  readonly ocspStaple?: Buffer;
  /** Expiry of the first (leaf) certificate, ms since the epoch. */
  readonly notAfter: number;
}

/** A CA bundle (PEM bytes) and its revocation list. */
export interface CaCredential {
  readonly trustedCa: Buffer;
  readonly crl?: Buffer;
  /** The earliest expiry in the bundle, ms since the epoch. */
  readonly notAfter: number;
}

const GENERIC_CERT = 'cert';
const GENERIC_KEY = 'key';
const GENERIC_CA = 'cacert';
const GENERIC_CRL = 'crl';
const TLS_CERT = 'tls.crt';
const TLS_KEY = 'tls.key';
const TLS_OCSP_STAPLE = 'tls.ocsp-staple';
const TLS_CA = 'ca.crt';
const TLS_CRL = 'ca.crl';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----/;

/** The decoded values of a Secret: `data` (base64), then `stringData` over it. */
export function secretValues(secret: KubeObject): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const data = secret.data;
  if (data !== null && typeof data === 'object')
    for (const [k, v] of Object.entries(data as Record<string, unknown>))
      if (typeof v === 'string') out.set(k, Buffer.from(v, 'base64'));
  const stringData = secret.stringData;
  if (stringData !== null && typeof stringData === 'object')
    for (const [k, v] of Object.entries(stringData as Record<string, unknown>))
      if (typeof v === 'string') out.set(k, Buffer.from(v, 'utf8'));
  return out;
}

const hasValue = (d: ReadonlyMap<string, Buffer>, ...keys: string[]): boolean =>
  keys.every((k) => (d.get(k)?.length ?? 0) > 0);

const hasKeys = (d: ReadonlyMap<string, Buffer>, ...keys: string[]): boolean =>
  keys.every((k) => d.has(k));

/** `a, b, c and 2 more` (istiod's truncatedKeysMessage). */
function keysFound(d: ReadonlyMap<string, Buffer>): string {
  const keys = [...d.keys()].sort();
  if (keys.length === 0) return 'no keys';
  return keys.length <= 3
    ? keys.join(', ')
    : `${keys.slice(0, 3).join(', ')} and ${keys.length - 3} more`;
}

/** The certificates of a PEM bundle, parsed; an error names `key`. */
function parseCertificates(pem: Buffer, key: string): Result<X509Certificate[]> {
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return err(`${key} holds no PEM certificate`);
  const certs: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return err(`${key}: certificate ${i + 1} of ${blocks.length} does not parse (${why})`);
    }
  }
  return ok(certs);
}

function readCertificate(d: ReadonlyMap<string, Buffer>): Result<CertificateCredential> {
  let certKey: string;
  let keyKey: string;
  if (hasValue(d, GENERIC_CERT, GENERIC_KEY)) [certKey, keyKey] = [GENERIC_CERT, GENERIC_KEY];
  else if (hasValue(d, TLS_CERT, TLS_KEY)) [certKey, keyKey] = [TLS_CERT, TLS_KEY];
  else if (hasKeys(d, GENERIC_CERT, GENERIC_KEY))
    return err(`found keys "${GENERIC_CERT}" and "${GENERIC_KEY}", but they were empty`);
  else if (hasKeys(d, TLS_CERT, TLS_KEY))
    return err(`found keys "${TLS_CERT}" and "${TLS_KEY}", but they were empty`);
  else
    return err(
      `expected keys (${GENERIC_CERT} and ${GENERIC_KEY}) or (${TLS_CERT} and ${TLS_KEY}); found: ${keysFound(d)}`,
    );
  const chain = d.get(certKey) as Buffer;
  const keyPem = d.get(keyKey) as Buffer;
  const certs = parseCertificates(chain, certKey);
  if (!certs.ok) return certs;
  const leaf = certs.value[0] as X509Certificate;
  const keyText = keyPem.toString('utf8');
  const header = PEM_PRIVATE_KEY.exec(keyText);
  if (!header) return err(`${keyKey} holds no PEM private key`);
  if (header[1]?.includes('ENCRYPTED'))
    return err(`${keyKey} is encrypted (the proxy has no password for it)`);
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey({ key: keyText, format: 'pem' }));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return err(`${keyKey}: the private key does not parse (${why})`);
  }
  if (!matches) return err(`${keyKey} does not match the certificate in ${certKey}`);
  const staple = certKey === TLS_CERT && hasValue(d, TLS_OCSP_STAPLE);
  return ok({
    certificateChain: chain,
    privateKey: keyPem,
    ...(staple ? { ocspStaple: d.get(TLS_OCSP_STAPLE) as Buffer } : {}),
    notAfter: Date.parse(leaf.validTo),
  });
}

function readCa(d: ReadonlyMap<string, Buffer>): Result<CaCredential> {
  let caKey: string;
  let crlKey: string;
  if (hasValue(d, GENERIC_CA)) [caKey, crlKey] = [GENERIC_CA, GENERIC_CRL];
  else if (hasValue(d, TLS_CA)) [caKey, crlKey] = [TLS_CA, TLS_CRL];
  else if (hasKeys(d, GENERIC_CA)) return err(`found key "${GENERIC_CA}", but it was empty`);
  else if (hasKeys(d, TLS_CA)) return err(`found key "${TLS_CA}", but it was empty`);
  else return err(`expected key ${GENERIC_CA} or ${TLS_CA}; found: ${keysFound(d)}`);
  const bundle = d.get(caKey) as Buffer;
  const certs = parseCertificates(bundle, caKey);
  if (!certs.ok) return certs;
  return ok({
    trustedCa: bundle,
    ...(hasValue(d, crlKey) ? { crl: d.get(crlKey) as Buffer } : {}),
    notAfter: Math.min(...certs.value.map((c) => Date.parse(c.validTo))),
  });
}

interface Parsed {
  certificate?: Result<CertificateCredential>;
  ca?: Result<CaCredential>;
}

const parsed = new WeakMap<KubeObject, Parsed>();

function parsedOf(secret: KubeObject): Parsed {
  let p = parsed.get(secret);
  if (!p) parsed.set(secret, (p = {}));
  return p;
}

/** The certificate and key of a Secret (istiod's ExtractCertInfo), checked. */
export function certificateCredential(secret: KubeObject): Result<CertificateCredential> {
  const p = parsedOf(secret);
  return (p.certificate ??= readCertificate(secretValues(secret)));
}

/** The CA bundle of a Secret (istiod's ExtractRoot), checked. */
export function caCredential(secret: KubeObject): Result<CaCredential> {
  const p = parsedOf(secret);
  return (p.ca ??= readCa(secretValues(secret)));
}
