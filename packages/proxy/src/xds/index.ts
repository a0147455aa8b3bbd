// The proxy's xDS side: bootstrap, ADS client, validation of what it receives, and the
// immutable configuration it hands to the rest of the proxy.
export * from './config.js';
export * from './bootstrap.js';
export * from './backoff.js';
export * from './re2.js';
export * from './supported-fields.js';
export * from './validate.js';
export * from './wire-scan.js';
export * from './ads-client.js';
