// @trellis/proxy listeners: the listener manager, filter chain matching, listener filters
// (tls_inspector, http_inspector, original_dst) and the tcp_proxy network filter.
export * from './types.js';
export * from './listener-manager.js';
export * from './filter-chain-match.js';
export * from './network-filters.js';
export * from './tcp-proxy.js';
export {
  parseClientHello,
  MAX_CLIENT_HELLO_SIZE,
  type ClientHelloResult,
} from './tls-inspector.js';
export {
  detectHttp,
  HTTP_INSPECT_LIMIT,
  type HttpDetectResult,
  type HttpProtocolGuess,
} from './http-inspector.js';
export { originalDestination, type OriginalDestinationFn } from './original-dst.js';
export { formatAddress, statAddress, normalizeIp } from './ip.js';
