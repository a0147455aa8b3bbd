// @trellis/api: resource types, the kinds Trellis serves, YAML loading and validation.
export * from './object.js';
export * from './validation/problem.js';
export * from './validation/schema.js';
export * from './validation/checks.js';
export * from './yaml/load.js';
export * from './kinds/kind.js';
export * from './kinds/registry.js';
export * from './validate.js';
export * from './kube/index.js';
export * from './istio/networking/index.js';
export * from './istio/security/index.js';
export * from './istio/telemetry/index.js';
// Both define a ServicePort: Istio's (ServiceEntry) keeps the name, Kubernetes' is renamed.
export type { ServicePort } from './istio/networking/index.js';
export type { ServicePort as KubeServicePort } from './kube/index.js';
