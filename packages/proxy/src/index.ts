// @trellis/proxy: the data-plane proxy (Envoy's role), configured only through xDS.
export * from './proxy.js';
export * from './stream-info.js';
export * from './xds/index.js';
export * from './observability/index.js';
export * as admin from './admin/index.js';
export * as listener from './listener/index.js';
export * as upstream from './upstream/index.js';
export * as http from './http/index.js';
export * as tls from './tls/index.js';
