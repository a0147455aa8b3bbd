// @trellis/config: the config store interface and its backends.
export * from './store.js';
