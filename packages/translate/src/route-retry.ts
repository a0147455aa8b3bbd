// VirtualService retries → Envoy RetryPolicy (Istio route/retry/retry.go). Without a `retries`
// block Istio applies its default policy: 2 retries on
// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with 503 as the
// retriable status, the previous_hosts host predicate and 5 host selection attempts. Attempts 0
// disables retries. A policy given starts from the default and overrides it: status codes in
// retryOn become retriable_status_codes (adding `retriable-status-codes` when missing). With a
// consistent-hash load balancer the previous_hosts predicate is left out (retries stay on the
// hashed host).
import type { HTTPRetry } from '@trellis/api';
import { CONFIG_TYPE_URL, type RetryPolicy } from '@trellis/envoy';
import { durationFromIstio } from './http-duration.js';
import { WELLKNOWN } from './listener-names.js';

/** Istio's default retryOn conditions. */
export const DEFAULT_RETRY_ON =
  'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
/** Istio's default number of retries. */
export const DEFAULT_RETRY_ATTEMPTS = 2;
/** Istio's host selection attempts. */
export const HOST_SELECTION_RETRY_MAX_ATTEMPTS = '5';

const PREVIOUS_PRIORITIES_TYPE_URL =
  'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

/** A RetryPolicy (its retry_priority carries retryRemoteLocalities). */
export type RetryPolicyWithPriority = RetryPolicy;

/** HTTP status codes with a standard reason phrase (Go's http.StatusText). */
const KNOWN_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
  305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
  416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
  506, 507, 508, 510, 511,
]);

function previousHostsPredicate(): NonNullable<RetryPolicy['retryHostPredicate']> {
  return [
    {
      name: WELLKNOWN.previousHosts,
      typedConfig: { '@type': CONFIG_TYPE_URL.PreviousHostsPredicate },
    },
  ];
}

/** Istio's default policy (a fresh object). */
export function defaultRetryPolicy(consistentHash = false): RetryPolicyWithPriority {
  const p: RetryPolicyWithPriority = {
    retryOn: DEFAULT_RETRY_ON,
    numRetries: DEFAULT_RETRY_ATTEMPTS,
    hostSelectionRetryMaxAttempts: HOST_SELECTION_RETRY_MAX_ATTEMPTS,
    retriableStatusCodes: [503],
  };
  if (!consistentHash) p.retryHostPredicate = previousHostsPredicate();
  return p;
}

function parseRetryOn(retryOn: string): { on: string; codes: number[] } {
  const on: string[] = [];
  const codes: number[] = [];
  for (const raw of retryOn.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const n = /^[0-9]+$/.test(part) ? Number(part) : NaN;
    if (KNOWN_STATUS.has(n)) codes.push(n);
    else on.push(part);
  }
  return { on: on.join(','), codes };
}

/**
 * The Envoy retry policy for a route: `retries` as written, else the mesh default
 * (`meshDefault`), else Istio's default. Undefined when retries are disabled (attempts 0).
 */
export function translateRetryPolicy(
  retries: HTTPRetry | undefined,
  consistentHash: boolean,
  meshDefault?: HTTPRetry,
): RetryPolicyWithPriority | undefined {
  const out = defaultRetryPolicy(consistentHash);
  const policy = retries ?? meshDefault;
  if (!policy) return out;
  if ((policy.attempts ?? 0) <= 0) return undefined;
  out.numRetries = policy.attempts ?? 0;
  if (policy.retryOn) {
    const { on, codes } = parseRetryOn(policy.retryOn);
    out.retryOn = on;
    out.retriableStatusCodes = codes;
    if (codes.length > 0 && !on.includes('retriable-status-codes'))
      out.retryOn = on === '' ? 'retriable-status-codes' : `${on},retriable-status-codes`;
    if (codes.length === 0) delete out.retriableStatusCodes;
  }
  const perTry = durationFromIstio(policy.perTryTimeout);
  if (perTry !== undefined) out.perTryTimeout = perTry;
  if (policy.retryIgnorePreviousHosts !== undefined) {
    if (policy.retryIgnorePreviousHosts) out.retryHostPredicate = previousHostsPredicate();
    else delete out.retryHostPredicate;
  }
  if (policy.retryRemoteLocalities === true) {
    // Istio's previous_priorities setting: two attempts per priority level before moving on.
    const typedConfig = { '@type': PREVIOUS_PRIORITIES_TYPE_URL, updateFrequency: 2 };
    out.retryPriority = { name: WELLKNOWN.previousPriorities, typedConfig };
  }
  const backoff = durationFromIstio(policy.backoff);
  if (backoff !== undefined) out.retryBackOff = { baseInterval: backoff };
  return out;
}
