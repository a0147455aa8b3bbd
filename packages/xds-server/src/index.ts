// @trellis/xds-server: the Aggregated Discovery Service (state-of-the-world and delta).
export * from './server.js';
export * from './proxy-info.js';
export * from './resource-source.js';
export * from './stats.js';
export {
  pushOrder,
  type Clock,
  type ConnectionStatus,
  type TypeStatus,
  type SentRecord,
  type AckRecord,
  type NackRecord,
  type XdsServerHooks,
  type XdsLogger,
} from './connection.js';
export { resourceVersion } from './delta.js';
