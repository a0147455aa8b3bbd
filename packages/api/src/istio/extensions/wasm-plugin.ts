// WasmPlugin (extensions.istio.io/v1alpha1): WebAssembly filters for the proxy. Trellis stores it
// but does not apply it; only the top-level shape of the spec is checked.
// Semantics: https://istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/
import { istioKind } from '../../kinds/istio-kind.js';
import { anyValue, obj, type ObjectOf } from '../../validation/schema.js';

const wasmPluginFields = {
  selector: anyValue(),
  targetRef: anyValue(),
  targetRefs: anyValue(),
  url: anyValue(),
  sha256: anyValue(),
  imagePullPolicy: anyValue(),
  imagePullSecret: anyValue(),
  verificationKey: anyValue(),
  pluginConfig: anyValue(),
  pluginName: anyValue(),
  phase: anyValue(),
  priority: anyValue(),
  failStrategy: anyValue(),
  vmConfig: anyValue(),
  match: anyValue(),
  type: anyValue(),
};
/** istio.extensions.v1alpha1.WasmPlugin: kept as written; Trellis does not read its content. */
export type WasmPluginSpec = ObjectOf<typeof wasmPluginFields>;
export const wasmPluginSpec = obj(wasmPluginFields);

export const WASM_PLUGIN = istioKind({
  group: 'extensions.istio.io',
  kind: 'WasmPlugin',
  versions: ['v1alpha1'],
  plural: 'wasmplugins',
  spec: wasmPluginSpec,
  support: 'stored-only',
});
