// @trellis/core: errors with codes, Result, and small utilities shared by every package.
export * from './errors.js';
export * from './result.js';
export * from './deep.js';
export * from './metrics.js';
export * from './debounce.js';
export * from './manual-timers.js';
