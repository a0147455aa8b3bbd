// The HTTP side of the proxy: connection manager, router, route matching.
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_HEADERS_COUNT,
  DEFAULT_MAX_REQUEST_HEADERS_KB,
  DEFAULT_REQUEST_HEADERS_TIMEOUT_MS,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  HttpConnectionManagerImpl,
  type DownstreamConnectionInfo,
  type HttpConnectionManagerOptions,
} from './connection-manager.js';
export { HcmStats } from './hcm-stats.js';
export { HeaderMutation } from './header-mutation.js';
export { RequestHeaders, type HeaderMap } from './headers.js';
export { DETAILS, httpToGrpcStatus, upstreamResetReply } from './local-reply.js';
export { normalizePath, redirectLocation } from './path.js';
export {
  compileRouteConfig,
  DEFAULT_ROUTE_TIMEOUT_MS,
  findRoute,
  type CompiledRoute,
  type CompiledRouteConfig,
  type CompiledVirtualHost,
  type RouteRequest,
} from './route-match.js';
export {
  ActiveStream,
  parseGrpcTimeout,
  type HttpFilterFactory,
  type HttpStreamFilter,
  type RouterConfig,
  type StreamCompleteCallback,
  type StreamHeaders,
} from './router.js';
