// Certificate fields as Envoy prints them: subjects and issuers as RFC 2253 strings, subject
// alternative names by type (from node's `subjectAltName` text).
import type { X509Certificate } from 'node:crypto';

/** The subjectAltName entries of one type (`URI`, `DNS`) of a certificate. */
export function sans(cert: X509Certificate, type: 'URI' | 'DNS'): string[] {
  const out: string[] = [];
  for (const entry of splitSans(cert.subjectAltName ?? '')) {
    if (entry.startsWith(`${type}:`)) out.push(entry.slice(type.length + 1));
  }
  return out;
}

/** Splits node's `subjectAltName` text (`DNS:a, URI:b`; quoted entries may contain commas). */
function splitSans(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"') {
      quoted = !quoted;
      continue;
    }
    if (c === '\\' && quoted && i + 1 < text.length) {
      cur += text[++i];
      continue;
    }
    if (c === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out.map((e) => e.replace(/^(\w+):"(.*)"$/, '$1:$2'));
}

/** Node's one-attribute-per-line subject as an RFC 2253 string (most specific first). */
export function rfc2253(subject: string | undefined): string {
  // An empty subject (SPIFFE certificates often have none) is undefined in node.
  return (subject ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .map((l) => {
      const i = l.indexOf('=');
      return i < 0 ? l : `${l.slice(0, i)}=${l.slice(i + 1).replace(/([,+"\\<>;])/g, '\\$1')}`;
    })
    .join(',');
}
