// The admin `/certs` view (Envoy's envoy.admin.v3.Certificates): the certificates of every
// secret the proxy holds (SDS secrets and the agent-resolved `file-cert:` / `file-root:` ones),
// with serial number, SANs, validity and days until expiration.
import type { X509Certificate } from 'node:crypto';
import type { CertificateValidationContext, DataSource, TlsCertificate } from '@trellis/envoy';
import { readDataSource } from './data-source.js';
import { parseSubjectAltNames } from './peer-verifier.js';
import { parseCertificates } from './pem.js';
import type { SecretManager } from './secret-manager.js';

const DAY_MS = 86_400_000;

const SAN_KEY: Readonly<Record<string, string>> = {
  DNS: 'dns',
  URI: 'uri',
  EMAIL: 'email',
  IP_ADDRESS: 'ip_address',
  OTHER: 'other_name',
};

function details(cert: X509Certificate, path: string, now: number): Record<string, unknown> {
  const validTo = new Date(cert.validTo).getTime();
  return {
    path,
    serial_number: cert.serialNumber.toLowerCase(),
    subject_alt_names: parseSubjectAltNames(cert.subjectAltName).map((s) => ({
      [SAN_KEY[s.type] ?? 'other_name']: s.value,
    })),
    days_until_expiration: String(Math.max(0, Math.floor((validTo - now) / DAY_MS))),
    valid_from: new Date(cert.validFrom).toISOString(),
    expiration_time: new Date(validTo).toISOString(),
  };
}

function certsOf(ds: DataSource | undefined, secrets: SecretManager, now: number): unknown[] {
  if (!ds) return [];
  const r = readDataSource(ds, secrets.files);
  if (!r.ok) return [];
  const parsed = parseCertificates(r.data);
  if (!parsed.ok) return [];
  const path = ds.filename ?? '<inline>';
  return parsed.certs.map((c) => details(c, path, now));
}

/** Envoy's `/certs` body for the proxy's secrets. */
export function certificatesDump(
  secrets: SecretManager,
  now = Date.now(),
): { certificates: unknown[] } {
  const certificates: unknown[] = [];
  const add = (
    cert: TlsCertificate | undefined,
    ca: CertificateValidationContext | undefined,
  ): void => {
    certificates.push({
      ca_cert: certsOf(ca?.trustedCa, secrets, now),
      cert_chain: certsOf(cert?.certificateChain, secrets, now),
    });
  };
  for (const [, s] of [...secrets.active()].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
    add(s.secret.tlsCertificate, s.secret.validationContext);
  for (const [name, v] of [...secrets.local()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (name.startsWith('file-cert:')) add(v as TlsCertificate, undefined);
    else add(undefined, v as CertificateValidationContext);
  }
  return { certificates };
}
