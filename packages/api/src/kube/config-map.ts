// ConfigMap (core/v1): configuration data. There is no spec: data, binaryData and immutable sit at
// the top level.
import { checkBase64, checkDataKey } from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import { bool, map, str, type ObjectOf } from '../validation/schema.js';
import { base64DecodedLength, MAX_DATA_BYTES, utf8Length } from './data-size.js';
import { kubeKind } from './kube-kind.js';

const configMapFields = {
  data: map(str(), { key: checkDataKey }),
  binaryData: map(str({ check: (v, ctx) => checkBase64(v, ctx, 'data') }), { key: checkDataKey }),
  immutable: bool(),
};
/** core/v1 ConfigMap: the fields beside apiVersion, kind and metadata. */
export type ConfigMapData = ObjectOf<typeof configMapFields>;

function checkConfigMap(cm: ConfigMapData, ctx: ValidationContext): void {
  for (const k of Object.keys(cm.binaryData ?? {})) {
    if (cm.data && Object.hasOwn(cm.data, k))
      ctx
        .at('binaryData', k)
        .error(`key ${JSON.stringify(k)} is also in data; a key may be in only one of them`);
  }
  let size = 0;
  for (const [k, v] of Object.entries(cm.data ?? {})) size += utf8Length(k) + utf8Length(v);
  for (const [k, v] of Object.entries(cm.binaryData ?? {}))
    size += utf8Length(k) + base64DecodedLength(v);
  if (size > MAX_DATA_BYTES)
    ctx.error(`data and binaryData must hold at most ${MAX_DATA_BYTES} bytes in all, not ${size}`);
}

export const CONFIG_MAP = kubeKind({
  group: '',
  kind: 'ConfigMap',
  plural: 'configmaps',
  shortNames: ['cm'],
  fields: configMapFields,
  check: checkConfigMap,
});
