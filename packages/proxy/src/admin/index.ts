// The admin interface: Envoy's admin HTTP server (15000) and the health listener (15021).
export * from './admin-server.js';
export * from './clusters-view.js';
export * from './config-dump.js';
