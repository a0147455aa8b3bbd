// @trellis/local: the local runtime: `trellis up` runs the control plane, gateways and the
// Deployments of the store as supervised local processes with sidecars.
export * from './backoff.js';
export * from './injection.js';
export * from './pod-naming.js';
export * from './readiness.js';
export * from './ports.js';
export * from './process-identity.js';
export * from './process-table.js';
export * from './runtime-files.js';
export * from './capture.js';
export * from './transparent.js';
export * from './netns.js';
export * from './cluster-ips.js';
export * from './app-env.js';
export * from './executable.js';
export * from './container-runner.js';
export * from './replica.js';
export * from './workload-controller.js';
export * from './status.js';
export * from './control-api.js';
export * from './runtime.js';
