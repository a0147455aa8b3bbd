// Secret (core/v1): credentials (for example gateway TLS certificates named by credentialName).
// There is no spec: data, stringData, type and immutable sit at the top level.
import { checkBase64, checkDataKey } from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import { bool, map, str, type ObjectOf } from '../validation/schema.js';
import { base64DecodedLength, MAX_DATA_BYTES, utf8Length } from './data-size.js';
import { kubeKind } from './kube-kind.js';

/** Keys each built-in Secret type must have (in data or stringData); `anyOf` means one of them. */
const REQUIRED_KEYS: Readonly<
  Record<string, { allOf?: readonly string[]; anyOf?: readonly string[] }>
> = {
  'kubernetes.io/tls': { allOf: ['tls.crt', 'tls.key'] },
  'kubernetes.io/dockercfg': { allOf: ['.dockercfg'] },
  'kubernetes.io/dockerconfigjson': { allOf: ['.dockerconfigjson'] },
  'kubernetes.io/ssh-auth': { allOf: ['ssh-privatekey'] },
  'kubernetes.io/basic-auth': { anyOf: ['username', 'password'] },
};

const secretFields = {
  type: str(),
  data: map(str({ check: (v, ctx) => checkBase64(v, ctx, 'stringData') }), { key: checkDataKey }),
  stringData: map(str(), { key: checkDataKey }),
  immutable: bool(),
};
/** core/v1 Secret: the fields beside apiVersion, kind and metadata. */
export type SecretData = ObjectOf<typeof secretFields> & { readonly metadata?: unknown };

function checkSecret(s: SecretData, ctx: ValidationContext): void {
  const type = s.type || 'Opaque';
  const keys = new Set([...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]);
  const rule = REQUIRED_KEYS[type];
  for (const k of rule?.allOf ?? []) {
    if (!keys.has(k))
      ctx.field('data').error(`must have key ${JSON.stringify(k)} for a Secret of type ${type}`);
  }
  if (rule?.anyOf && !rule.anyOf.some((k) => keys.has(k)))
    ctx
      .field('data')
      .error(
        `must have key ${rule.anyOf.map((k) => JSON.stringify(k)).join(' or ')} for a Secret of type ${type}`,
      );
  if (type === 'kubernetes.io/service-account-token') {
    const ann = (s.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations;
    if (typeof ann?.['kubernetes.io/service-account.name'] !== 'string')
      ctx
        .at('metadata', 'annotations')
        .error(
          'must have kubernetes.io/service-account.name for a Secret of type kubernetes.io/service-account-token',
        );
  }
  let size = 0;
  for (const v of Object.values(s.data ?? {})) size += base64DecodedLength(v);
  for (const v of Object.values(s.stringData ?? {})) size += utf8Length(v);
  if (size > MAX_DATA_BYTES)
    ctx.field('data').error(`must hold at most ${MAX_DATA_BYTES} bytes in all, not ${size}`);
}

export const SECRET = kubeKind({
  group: '',
  kind: 'Secret',
  plural: 'secrets',
  fields: secretFields,
  check: checkSecret,
});
