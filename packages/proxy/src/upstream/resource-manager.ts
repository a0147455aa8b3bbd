// Envoy's circuit breaker resources for one cluster (ResourceManagerImpl): counts of
// connections, pending requests, requests and retries against the thresholds.
//
// TODO(issue 6): read `circuit_breakers.thresholds` (DEFAULT priority; max_connections,
// max_pending_requests, max_requests, max_retries, retry_budget), refuse in the `can*` checks
// with the overflow counters (upstream_cx_overflow, upstream_rq_pending_overflow,
// upstream_rq_retry_overflow) and 503 UO. Until then the Envoy defaults are only reported and
// nothing is refused: the hooks are where the pools and the router already call them.
import type { ResourceManagerApi } from './api.js';

/** Envoy's defaults when a cluster sets no thresholds. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_PENDING_REQUESTS = 1024;
export const DEFAULT_MAX_REQUESTS = 1024;
export const DEFAULT_MAX_RETRIES = 3;

export class ResourceManager implements ResourceManagerApi {
  readonly maxConnections = DEFAULT_MAX_CONNECTIONS;
  readonly maxPendingRequests = DEFAULT_MAX_PENDING_REQUESTS;
  readonly maxRequests = DEFAULT_MAX_REQUESTS;
  readonly maxRetries = DEFAULT_MAX_RETRIES;
  connections = 0;
  pendingRequests = 0;
  requests = 0;
  retries = 0;

  canCreateConnection(): boolean {
    return true;
  }

  canQueueRequest(): boolean {
    return true;
  }

  canSendRequest(): boolean {
    return true;
  }

  canRetry(): boolean {
    return true;
  }
}
