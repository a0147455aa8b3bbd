// EnvoyFilter (networking.istio.io/v1alpha3): raw patches to generated Envoy configuration. Trellis
// stores it (so existing manifests apply unmodified) but does not apply it; only the top-level
// shape of the spec is checked.
// Semantics: https://istio.io/latest/docs/reference/config/networking/envoy-filter/
import { istioKind } from '../../kinds/istio-kind.js';
import { anyValue, obj, type ObjectOf } from '../../validation/schema.js';

const envoyFilterFields = {
  workloadSelector: anyValue(),
  targetRefs: anyValue(),
  configPatches: anyValue(),
  priority: anyValue(),
};
/** istio.networking.v1alpha3.EnvoyFilter: kept as written; Trellis does not read its content. */
export type EnvoyFilterSpec = ObjectOf<typeof envoyFilterFields>;
export const envoyFilterSpec = obj(envoyFilterFields);

export const ENVOY_FILTER = istioKind({
  group: 'networking.istio.io',
  kind: 'EnvoyFilter',
  versions: ['v1alpha3'],
  plural: 'envoyfilters',
  spec: envoyFilterSpec,
  support: 'stored-only',
});
