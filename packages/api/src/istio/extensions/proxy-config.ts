// ProxyConfig (networking.istio.io/v1beta1): per-workload proxy settings (concurrency, environment,
// image). Trellis stores it but does not apply it; only the top-level shape of the spec is checked.
// Semantics: https://istio.io/latest/docs/reference/config/networking/proxy-config/
import { istioKind } from '../../kinds/istio-kind.js';
import { anyValue, obj, type ObjectOf } from '../../validation/schema.js';

const proxyConfigFields = {
  selector: anyValue(),
  concurrency: anyValue(),
  environmentVariables: anyValue(),
  image: anyValue(),
};
/** istio.networking.v1beta1.ProxyConfig: kept as written; Trellis does not read its content. */
export type ProxyConfigSpec = ObjectOf<typeof proxyConfigFields>;
export const proxyConfigSpec = obj(proxyConfigFields);

export const PROXY_CONFIG = istioKind({
  group: 'networking.istio.io',
  kind: 'ProxyConfig',
  versions: ['v1beta1'],
  plural: 'proxyconfigs',
  spec: proxyConfigSpec,
  support: 'stored-only',
});
