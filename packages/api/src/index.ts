// @trellis/api: resource types, the kinds Trellis serves, YAML loading and validation.
export * from './object.js';
export * from './validation/problem.js';
export * from './validation/schema.js';
export * from './validation/checks.js';
export * from './yaml/load.js';
export * from './kinds/kind.js';
export * from './kinds/registry.js';
export * from './validate.js';
