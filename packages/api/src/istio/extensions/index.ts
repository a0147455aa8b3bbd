// Kinds Trellis accepts and stores without applying: EnvoyFilter and ProxyConfig
// (networking.istio.io) and WasmPlugin (extensions.istio.io).
import type { KindInfo } from '../../kinds/kind.js';
import { ENVOY_FILTER } from './envoy-filter.js';
import { PROXY_CONFIG } from './proxy-config.js';
import { WASM_PLUGIN } from './wasm-plugin.js';

export * from './envoy-filter.js';
export * from './proxy-config.js';
export * from './wasm-plugin.js';

export const EXTENSIONS_KINDS: readonly KindInfo[] = [ENVOY_FILTER, PROXY_CONFIG, WASM_PLUGIN];
