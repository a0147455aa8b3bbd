// Verification of a TLS peer's certificate with Envoy's semantics (DefaultCertValidator): the
// chain against trusted_ca (OpenSSL has checked it during the handshake; the result is read
// here), allow_expired_certificate, trust_chain_verification ACCEPT_UNTRUSTED, the subject
// alternative names against match_typed_subject_alt_names / match_subject_alt_names, and the
// certificate pins verify_certificate_spki / verify_certificate_hash. Each failure names the
// stat Envoy counts (`ssl.fail_verify_san`, ...) and a reason in Envoy's words.
import { createHash, type X509Certificate } from 'node:crypto';
import type {
  CertificateValidationContext,
  StringMatcher,
  SubjectAltNameMatcher,
} from '@trellis/envoy';
import { compileStringMatcher, type StringPredicate } from '../http/string-matcher.js';

/** A subject alternative name of a certificate. */
export interface SubjectAltName {
  readonly type: 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS' | 'OTHER';
  readonly value: string;
}

const TYPES: Readonly<Record<string, SubjectAltName['type']>> = {
  DNS: 'DNS',
  URI: 'URI',
  email: 'EMAIL',
  'IP Address': 'IP_ADDRESS',
};

/** Compressed IPv6 (`::1`), as Envoy prints IP SANs; IPv4 unchanged. */
function canonicalIp(v: string): string {
  if (!v.includes(':')) return v;
  try {
    return new URL(`http://[${v}]/`).hostname.slice(1, -1);
  } catch {
    return v;
  }
}

/**
 * Parses node's `X509Certificate.subjectAltName` (`DNS:a, URI:spiffe://..., IP Address:1.2.3.4`;
 * values with special characters are JSON-quoted).
 */
export function parseSubjectAltNames(s: string | undefined): SubjectAltName[] {
  const out: SubjectAltName[] = [];
  if (!s) return out;
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const typeName = s.slice(i, colon);
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        value = s.slice(colon + 2, j);
      }
      next = s.indexOf(', ', j);
    } else {
      next = s.indexOf(', ', colon + 1);
      value = s.slice(colon + 1, next < 0 ? s.length : next);
    }
    const type = TYPES[typeName] ?? 'OTHER';
    out.push({ type, value: type === 'IP_ADDRESS' ? canonicalIp(value) : value });
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** Envoy's dnsNameMatch: `*.example.com` in a certificate matches exactly one more label. */
export function dnsNameMatch(name: string, pattern: string): boolean {
  const n = name.toLowerCase();
  const p = pattern.toLowerCase();
  if (n === p) return true;
  if (!p.startsWith('*.')) return false;
  const suffix = p.slice(1);
  if (!n.endsWith(suffix)) return false;
  const label = n.slice(0, n.length - suffix.length);
  return label.length > 0 && !label.includes('.');
}

type SanPredicate = (san: SubjectAltName) => boolean;

function sanPredicate(
  type: SubjectAltName['type'] | undefined,
  m: StringMatcher | undefined,
): SanPredicate {
  const matcher = m ?? {};
  const pred: StringPredicate = compileStringMatcher(matcher);
  const exact = matcher.exact;
  return (san) => {
    if (type !== undefined && san.type !== type) return false;
    // A wildcard DNS SAN matches an exact matcher as a DNS name would.
    if (san.type === 'DNS' && exact !== undefined && dnsNameMatch(exact, san.value)) return true;
    return pred(san.value);
  };
}

const SAN_TYPE: Readonly<Record<string, SubjectAltName['type']>> = {
  DNS: 'DNS',
  URI: 'URI',
  EMAIL: 'EMAIL',
  IP_ADDRESS: 'IP_ADDRESS',
};

/** Compiles the SAN matchers of a validation context (typed, else the untyped list). */
export function compileSanMatchers(v: CertificateValidationContext): SanPredicate[] {
  const typed = v.matchTypedSubjectAltNames ?? [];
  const out: SanPredicate[] = typed.map((t: SubjectAltNameMatcher) => {
    const type = SAN_TYPE[t.sanType ?? ''];
    return type ? sanPredicate(type, t.matcher) : () => false;
  });
  const legacy = (v as { matchSubjectAltNames?: StringMatcher[] }).matchSubjectAltNames;
  for (const m of legacy ?? []) out.push(sanPredicate(undefined, m));
  return out;
}

/** How peers are verified: compiled once per validation context. */
export interface PeerVerification {
  /** trusted_ca is set: the chain must verify (unless ACCEPT_UNTRUSTED). */
  readonly checkChain: boolean;
  readonly allowExpired: boolean;
  readonly sanMatchers: readonly SanPredicate[];
  /** SHA-256 of the SubjectPublicKeyInfo, base64. */
  readonly spkiPins: ReadonlySet<string>;
  /** SHA-256 of the certificate, lower-case hex without colons. */
  readonly hashPins: ReadonlySet<string>;
}

export function compilePeerVerification(
  v: CertificateValidationContext,
  hasTrustedCa: boolean,
): PeerVerification {
  return {
    checkChain: hasTrustedCa && v.trustChainVerification !== 'ACCEPT_UNTRUSTED',
    allowExpired: v.allowExpiredCertificate === true,
    sanMatchers: compileSanMatchers(v),
    spkiPins: new Set(v.verifyCertificateSpki ?? []),
    hashPins: new Set(
      (v.verifyCertificateHash ?? []).map((h) => h.replaceAll(':', '').toLowerCase()),
    ),
  };
}

/** Whether a verification does anything (a peer certificate is then requested / checked). */
export function verifiesPeer(p: PeerVerification): boolean {
  return p.checkChain || p.sanMatchers.length > 0 || p.spkiPins.size > 0 || p.hashPins.size > 0;
}

/** A failed verification: the stat Envoy counts (under `ssl.`) and why. */
export interface VerifyFailure {
  readonly stat:
    'fail_verify_no_cert' | 'fail_verify_error' | 'fail_verify_san' | 'fail_verify_cert_hash';
  readonly reason: string;
}

/**
 * Verifies a peer certificate. `chainError` is OpenSSL's verdict on the chain (the socket's
 * authorizationError; undefined when it verified).
 */
export function verifyPeerCertificate(
  p: PeerVerification,
  cert: X509Certificate | undefined,
  chainError: string | undefined,
): VerifyFailure | undefined {
  if (!cert) return { stat: 'fail_verify_no_cert', reason: 'peer did not return a certificate' };
  if (p.checkChain && chainError !== undefined) {
    if (!(p.allowExpired && chainError === 'CERT_HAS_EXPIRED'))
      return {
        stat: 'fail_verify_error',
        reason: `verify cert failed: X509_verify_cert: certificate verification error: ${chainError}`,
      };
  }
  if (p.sanMatchers.length > 0) {
    const sans = parseSubjectAltNames(cert.subjectAltName);
    if (!sans.some((san) => p.sanMatchers.some((m) => m(san))))
      return { stat: 'fail_verify_san', reason: 'verify cert failed: verify SAN list' };
  }
  if (p.spkiPins.size > 0 || p.hashPins.size > 0) {
    const hash = createHash('sha256').update(cert.raw).digest('hex');
    const spki = createHash('sha256')
      .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64');
    if (!p.hashPins.has(hash) && !p.spkiPins.has(spki))
      return { stat: 'fail_verify_cert_hash', reason: 'verify cert failed: cert hash and spki' };
  }
  return undefined;
}

/** The URI SANs of a certificate (the SPIFFE identity is the first). */
export function uriSans(cert: X509Certificate | undefined): string[] {
  if (!cert) return [];
  return parseSubjectAltNames(cert.subjectAltName)
    .filter((s) => s.type === 'URI')
    .map((s) => s.value);
}

/** The DNS SANs of a certificate. */
export function dnsSans(cert: X509Certificate | undefined): string[] {
  if (!cert) return [];
  return parseSubjectAltNames(cert.subjectAltName)
    .filter((s) => s.type === 'DNS')
    .map((s) => s.value);
}
