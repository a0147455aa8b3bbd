// Observability: the stats store (Envoy stats and Istio's metrics), peer metadata exchange and
// access logs.
export * from './stats-api.js';
export * from './stats-store.js';
export * from './log-context.js';
export * from './peer-metadata.js';
export * from './istio-metrics.js';
export * from './access-log.js';
