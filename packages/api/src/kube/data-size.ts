// The size limit Kubernetes puts on the data of a Secret or ConfigMap (1 MiB), and byte counting.

/** Kubernetes rejects a Secret or ConfigMap whose data is larger than this. */
export const MAX_DATA_BYTES = 1024 * 1024;

/** Bytes of a base64 text once decoded (line breaks ignored). */
export function base64DecodedLength(s: string): number {
  const t = s.replace(/[\r\n]/g, '');
  const pad = t.endsWith('==') ? 2 : t.endsWith('=') ? 1 : 0;
  return Math.floor((t.length * 3) / 4) - pad;
}

/** Bytes of a text in UTF-8. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
