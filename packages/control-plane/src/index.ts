// @trellis/control-plane: the istiod equivalent: store -> registry -> translation -> xDS, plus monitoring.
export * from './sync-status.js';
export * from './config-dump.js';
export * from './monitoring-server.js';
export * from './translation-source.js';
export * from './control-plane.js';
export * from './scope-key.js';
