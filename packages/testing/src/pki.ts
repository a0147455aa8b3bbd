// A small X.509 PKI for tests, with node:crypto only: creates certificate authorities and issues
// leaf (and intermediate) certificates with DNS, URI (SPIFFE), IP and e-mail SANs, EC P-256
// (default) or RSA keys and chosen validity periods, returned as PEM. The TBSCertificate is
// DER-encoded here and signed with crypto.sign; nothing is shelled out to openssl.
//
// Layout: a minimal DER encoder (the ASN.1 types X.509 needs), then the certificate profile
// (RFC 5280: names, validity, extensions), then the CA. It is meant to grow into Trellis's CA
// (packages/ca): keep the encoder generic and the profile explicit.
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';

// ---------------------------------------------------------------------------------------
// DER encoding (X.690), only what certificates use

/** DER tag numbers and classes. */
const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with the given identifier octet. */
export function derTlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

export function derSequence(...items: Buffer[]): Buffer {
  return derTlv(TAG.SEQUENCE, Buffer.concat(items));
}

/** A SET OF: DER sorts the encoded elements. */
export function derSet(...items: Buffer[]): Buffer {
  return derTlv(TAG.SET, Buffer.concat([...items].sort((a, b) => Buffer.compare(a, b))));
}

/** A non-negative INTEGER from big-endian bytes (minimal, with a 0x00 when the top bit is set). */
export function derUnsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = bytes.subarray(i);
  if (v.length === 0) v = Buffer.from([0]);
  if (((v[0] as number) & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return derTlv(TAG.INTEGER, v);
}

export function derSmallInteger(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return derUnsignedInteger(Buffer.from(bytes));
}

export function derBoolean(v: boolean): Buffer {
  return derTlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0x00]));
}

export function derNull(): Buffer {
  return derTlv(TAG.NULL, Buffer.alloc(0));
}

export function derOctetString(b: Buffer): Buffer {
  return derTlv(TAG.OCTET_STRING, b);
}

/** A BIT STRING of whole bytes with `unusedBits` unused trailing bits in the last one. */
export function derBitString(b: Buffer, unusedBits = 0): Buffer {
  return derTlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), b]));
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isInteger(a) || a < 0))
    throw new Error(`bad OID ${dotted}`);
  const out: number[] = [(arcs[0] as number) * 40 + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128))
      groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return derTlv(TAG.OID, Buffer.from(out));
}

/** `[n] EXPLICIT` (constructed, context-specific). */
export function derExplicit(n: number, inner: Buffer): Buffer {
  return derTlv(0xa0 | n, inner);
}

/** `[n] IMPLICIT` of a primitive type (context-specific): the content without its own tag. */
export function derImplicitPrimitive(n: number, content: Buffer): Buffer {
  return derTlv(0x80 | n, content);
}

/** UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), at second precision. */
export function derTime(d: Date): Buffer {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return derTlv(TAG.UTC_TIME, Buffer.from(`${p(y % 100)}${rest}`));
  return derTlv(TAG.GENERALIZED_TIME, Buffer.from(`${p(y, 4)}${rest}`));
}

function isPrintable(s: string): boolean {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
}

// ---------------------------------------------------------------------------------------
// The certificate profile

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  country: '2.5.4.6',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** A distinguished name (each attribute optional; an empty name is allowed, as SPIFFE uses). */
export interface DistinguishedName {
  readonly commonName?: string;
  readonly organization?: string;
  readonly organizationalUnit?: string;
  readonly country?: string;
}

function encodeName(n: DistinguishedName): Buffer {
  const rdns: Buffer[] = [];
  const attr = (oid: string, value: string | undefined, printable = false): void => {
    if (value === undefined || value === '') return;
    const str =
      printable || isPrintable(value)
        ? derTlv(TAG.PRINTABLE_STRING, Buffer.from(value, 'latin1'))
        : derTlv(TAG.UTF8_STRING, Buffer.from(value, 'utf8'));
    rdns.push(derSet(derSequence(derOid(oid), str)));
  };
  attr(OID.country, n.country, true);
  attr(OID.organization, n.organization);
  attr(OID.organizationalUnit, n.organizationalUnit);
  attr(OID.commonName, n.commonName);
  return derSequence(...rdns);
}

/** Subject alternative names of a certificate. */
export interface SubjectAltNames {
  readonly dnsNames?: readonly string[];
  /** e.g. `spiffe://cluster.local/ns/default/sa/sleep`. */
  readonly uris?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly emails?: readonly string[];
}

function ipBytes(ip: string): Buffer {
  const v = isIP(ip);
  if (v === 4) return Buffer.from(ip.split('.').map(Number));
  if (v !== 6) throw new Error(`not an IP address: ${ip}`);
  // Expand `::` and an embedded IPv4 tail.
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const b = v4[1].split('.').map(Number);
    s =
      s.slice(0, -v4[1].length) +
      `${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function encodeGeneralNames(san: SubjectAltNames): Buffer {
  const names: Buffer[] = [];
  for (const e of san.emails ?? []) names.push(derImplicitPrimitive(1, Buffer.from(e, 'latin1')));
  for (const d of san.dnsNames ?? []) names.push(derImplicitPrimitive(2, Buffer.from(d, 'latin1')));
  for (const u of san.uris ?? []) names.push(derImplicitPrimitive(6, Buffer.from(u, 'latin1')));
  for (const ip of san.ipAddresses ?? []) names.push(derImplicitPrimitive(7, ipBytes(ip)));
  return derSequence(...names);
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return derSequence(derOid(oid), ...(critical ? [derBoolean(true)] : []), derOctetString(value));
}

/** KeyUsage bits (RFC 5280 4.2.1.3), as a DER BIT STRING with the minimal unused bits. */
function keyUsageBits(bits: readonly number[]): Buffer {
  let v = 0;
  for (const b of bits) v |= 0x80 >> b;
  let unused = 0;
  while (unused < 7 && (v & (1 << unused)) === 0) unused++;
  return derBitString(Buffer.from([v]), unused);
}

const KEY_USAGE = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

/** The key types the PKI makes. */
export type KeyType = 'ec' | 'rsa';

function generateKey(type: KeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  return type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function signatureAlgorithm(signer: KeyObject): { der: Buffer; hash: string } {
  if (signer.asymmetricKeyType === 'ec')
    return { der: derSequence(derOid(OID.ecdsaWithSha256)), hash: 'sha256' };
  if (signer.asymmetricKeyType === 'rsa')
    return { der: derSequence(derOid(OID.sha256WithRsa), derNull()), hash: 'sha256' };
  throw new Error(`unsupported signing key type ${String(signer.asymmetricKeyType)}`);
}

/** The SubjectKeyIdentifier of a public key: SHA-1 of the subjectPublicKey bits (method 1). */
function keyIdentifier(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }: the bit
  // string is the last element; its content after the unused-bits octet is the key.
  const bits = lastTlvContent(spki);
  return createHash('sha1').update(bits.subarray(1)).digest();
}

/** The content octets of the last TLV inside a DER SEQUENCE. */
function lastTlvContent(seq: Buffer): Buffer {
  const inner = tlvContent(seq, 0);
  let off = 0;
  let last: Buffer = Buffer.alloc(0);
  while (off < inner.length) {
    const { content, end } = readTlv(inner, off);
    last = content;
    off = end;
  }
  return last;
}

function readTlv(b: Buffer, off: number): { content: Buffer; end: number } {
  let len = b[off + 1] as number;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[p + i] as number);
    p += n;
  }
  return { content: b.subarray(p, p + len), end: p + len };
}

function tlvContent(b: Buffer, off: number): Buffer {
  return readTlv(b, off).content;
}

function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/** What a certificate is for (extended key usage); default both. */
export type CertificateUsage = 'server' | 'client';

/** Options of a certificate to issue. */
export interface IssueOptions extends SubjectAltNames {
  readonly subject?: DistinguishedName;
  /** Shorthand for `subject.commonName`. */
  readonly commonName?: string;
  /** Default: one minute ago (clock skew). */
  readonly notBefore?: Date;
  /** Default: `notBefore` + `validityDays`. */
  readonly notAfter?: Date;
  /** Default 365. */
  readonly validityDays?: number;
  /** Default `ec` (P-256). */
  readonly keyType?: KeyType;
  /** Extended key usages; default both server and client. */
  readonly usages?: readonly CertificateUsage[];
  /** Issue a CA certificate (an intermediate when issued by a CA). */
  readonly isCa?: boolean;
  /** basicConstraints pathLenConstraint of a CA certificate. */
  readonly pathLength?: number;
  /** A given key pair instead of a new one (its public key is certified). */
  readonly privateKey?: KeyObject;
}

/** An issued certificate and its key, as PEM. */
export interface IssuedCertificate {
  /** The certificate (PEM). */
  readonly cert: string;
  /** The private key (PKCS#8 PEM). */
  readonly key: string;
  /** The certificate followed by the intermediates up to (not including) the root. */
  readonly chain: string;
  readonly keyObject: KeyObject;
  readonly certificate: X509Certificate;
  /** Hex, upper case (as X509Certificate.serialNumber). */
  readonly serialNumber: string;
}

/** A certificate authority that can issue certificates (and intermediate authorities). */
export interface CertificateAuthority extends IssuedCertificate {
  /** Issues a leaf certificate signed by this authority. */
  issue(options?: IssueOptions): IssuedCertificate;
  /** Issues an intermediate authority signed by this one. */
  intermediate(options?: IssueOptions): CertificateAuthority;
}

interface Signer {
  readonly name: Buffer;
  readonly key: KeyObject;
  readonly keyId: Buffer;
  /** PEMs of the signer's certificate and its intermediates (not the root). */
  readonly chain: string;
  readonly isRoot: boolean;
}

const DAY_MS = 86_400_000;

function buildCertificate(options: IssueOptions, signer: Signer | undefined): IssuedCertificate {
  const keys = options.privateKey
    ? { privateKey: options.privateKey, publicKey: createPublicKey(options.privateKey) }
    : generateKey(options.keyType ?? 'ec');
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const subjectName = encodeName({
    ...options.subject,
    ...(options.commonName !== undefined ? { commonName: options.commonName } : {}),
  });
  const issuer: Signer = signer ?? {
    name: subjectName,
    key: keys.privateKey,
    keyId: keyIdentifier(spki),
    chain: '',
    isRoot: true,
  };
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter =
    options.notAfter ?? new Date(notBefore.getTime() + (options.validityDays ?? 365) * DAY_MS);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  if (serial[0] === 0) serial[0] = 1;

  const isCa = options.isCa === true;
  const exts: Buffer[] = [];
  exts.push(
    extension(
      OID.basicConstraints,
      true,
      isCa
        ? derSequence(
            derBoolean(true),
            ...(options.pathLength !== undefined ? [derSmallInteger(options.pathLength)] : []),
          )
        : derSequence(),
    ),
  );
  exts.push(
    extension(
      OID.keyUsage,
      true,
      keyUsageBits(
        isCa
          ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]
          : keys.publicKey.asymmetricKeyType === 'rsa'
            ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment]
            : [KEY_USAGE.digitalSignature],
      ),
    ),
  );
  if (!isCa) {
    const usages = options.usages ?? ['server', 'client'];
    if (usages.length > 0)
      exts.push(
        extension(
          OID.extKeyUsage,
          false,
          derSequence(
            ...usages.map((u) => derOid(u === 'server' ? OID.serverAuth : OID.clientAuth)),
          ),
        ),
      );
  }
  exts.push(extension(OID.subjectKeyIdentifier, false, derOctetString(keyIdentifier(spki))));
  exts.push(
    extension(
      OID.authorityKeyIdentifier,
      false,
      derSequence(derImplicitPrimitive(0, issuer.keyId)),
    ),
  );
  const hasSan =
    (options.dnsNames?.length ?? 0) +
      (options.uris?.length ?? 0) +
      (options.ipAddresses?.length ?? 0) +
      (options.emails?.length ?? 0) >
    0;
  if (hasSan) {
    // RFC 5280 4.2.1.6: critical when the subject is empty (SPIFFE identities).
    const emptySubject = subjectName.length <= 2;
    exts.push(extension(OID.subjectAltName, emptySubject, encodeGeneralNames(options)));
  }

  const alg = signatureAlgorithm(issuer.key);
  const tbs = derSequence(
    derExplicit(0, derSmallInteger(2)),
    derUnsignedInteger(serial),
    alg.der,
    issuer.name,
    derSequence(derTime(notBefore), derTime(notAfter)),
    subjectName,
    spki,
    derExplicit(3, derSequence(...exts)),
  );
  const signature = sign(alg.hash, tbs, issuer.key);
  const der = derSequence(tbs, alg.der, derBitString(signature));
  const cert = toPem('CERTIFICATE', der);
  const certificate = new X509Certificate(cert);
  return {
    cert,
    key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    chain: cert + issuer.chain,
    keyObject: keys.privateKey,
    certificate,
    serialNumber: certificate.serialNumber,
  };
}

function authorityFrom(
  issued: IssuedCertificate,
  chainOfIssuer: string,
  isRoot: boolean,
): CertificateAuthority {
  const spki = createPublicKey(issued.keyObject).export({ type: 'spki', format: 'der' });
  const signer: Signer = {
    name: encodeNameFromCert(issued.certificate),
    key: issued.keyObject,
    keyId: keyIdentifier(spki),
    chain: isRoot ? '' : issued.cert + chainOfIssuer,
    isRoot,
  };
  return {
    ...issued,
    issue: (options = {}) => buildCertificate({ ...options, isCa: false }, signer),
    intermediate: (options = {}) => {
      const inter = buildCertificate(
        { commonName: 'Trellis Test Intermediate CA', ...options, isCa: true },
        signer,
      );
      return authorityFrom(inter, signer.chain, false);
    },
  };
}

/** The DER subject Name of a certificate, exactly as encoded in it (the issuer of what it signs). */
function encodeNameFromCert(c: X509Certificate): Buffer {
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial, sigAlg, issuer,
  // validity, subject, ... } }: walk to the sixth element.
  const tbs = tlvContent(c.raw, 0);
  const tbsInner = tlvContent(tbs, 0);
  let off = 0;
  for (let i = 0; i < 5; i++) off = readTlv(tbsInner, off).end;
  const { end } = readTlv(tbsInner, off);
  return Buffer.from(tbsInner.subarray(off, end));
}

/** Options of a root CA. */
export type CaOptions = Omit<IssueOptions, 'isCa' | 'usages'>;

/**
 * A self-signed root certificate authority (default: CN "Trellis Test Root CA", O "Trellis",
 * EC P-256, valid ten years).
 */
export function createCa(options: CaOptions = {}): CertificateAuthority {
  const root = buildCertificate(
    {
      subject: { organization: 'Trellis' },
      commonName: 'Trellis Test Root CA',
      validityDays: 3650,
      ...options,
      isCa: true,
    },
    undefined,
  );
  return authorityFrom(root, '', true);
}

/** A self-signed leaf certificate (no CA). */
export function selfSigned(options: IssueOptions = {}): IssuedCertificate {
  return buildCertificate({ ...options, isCa: false }, undefined);
}

/** The SPIFFE identity Istio gives a service account: `spiffe://TD/ns/NS/sa/SA`. */
export function spiffeId(
  namespace: string,
  serviceAccount: string,
  trustDomain = 'cluster.local',
): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
