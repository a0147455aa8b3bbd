// Unit tests of the router's timeout computation (timeout-policy.ts): route timeout, grpc-timeout
// with its cap and offset, the x-envoy-upstream-rq-(per-try-)timeout-ms headers, the per-try
// timeout dropped when not below the global one, and the expected-timeout headers of attempts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HeaderMap } from '../src/http/headers.js';
import {
  expectedTimeoutMs,
  finalTimeouts,
  formatGrpcTimeout,
  setTimeoutHeaders,
} from '../src/http/timeout-policy.js';

test('route timeout, grpc-timeout (capped, offset) and the override headers', () => {
  const route = { timeoutMs: 15_000, grpcTimeoutHeaderMaxMs: undefined };
  assert.deepEqual(finalTimeouts(route, {}, false), {
    globalMs: 15_000,
    perTryMs: 0,
    perTryIdleMs: 0,
  });
  const h: HeaderMap = { 'x-envoy-upstream-rq-timeout-ms': '250', 'grpc-timeout': '1S' };
  assert.equal(finalTimeouts(route, h, true).globalMs, 250);
  assert.equal(h['x-envoy-upstream-rq-timeout-ms'], undefined, 'consumed');
  const grpcRoute = { timeoutMs: 0, grpcTimeoutHeaderMaxMs: 500, grpcTimeoutHeaderOffsetMs: 100 };
  assert.equal(finalTimeouts(grpcRoute, { 'grpc-timeout': '300m' }, true).globalMs, 200);
  assert.equal(finalTimeouts(grpcRoute, { 'grpc-timeout': '2S' }, true).globalMs, 500, 'capped');
  assert.equal(finalTimeouts(grpcRoute, {}, true).globalMs, 0, 'no header: the route timeout');
  assert.equal(
    finalTimeouts(grpcRoute, { 'grpc-timeout': '2S' }, false).globalMs,
    0,
    'not a gRPC request',
  );
  assert.equal(
    finalTimeouts({ timeoutMs: 0, grpcTimeoutHeaderMaxMs: 0 }, { 'grpc-timeout': '2S' }, true)
      .globalMs,
    2000,
    '0 = uncapped',
  );
});

test('per-try timeout: the policy, x-envoy-upstream-rq-per-try-timeout-ms, dropped when ≥ global', () => {
  const route = { timeoutMs: 1500, grpcTimeoutHeaderMaxMs: undefined, perTryTimeoutMs: 500 };
  assert.equal(finalTimeouts(route, {}, false).perTryMs, 500);
  const h: HeaderMap = { 'x-envoy-upstream-rq-per-try-timeout-ms': '100' };
  assert.equal(finalTimeouts(route, h, false).perTryMs, 100);
  assert.equal(h['x-envoy-upstream-rq-per-try-timeout-ms'], undefined, 'consumed');
  assert.equal(finalTimeouts({ ...route, perTryTimeoutMs: 1500 }, {}, false).perTryMs, 0);
  assert.equal(
    finalTimeouts({ ...route, timeoutMs: 0, perTryTimeoutMs: 1500 }, {}, false).perTryMs,
    1500,
    'no global timeout',
  );
});

test('expected timeout of an attempt and its headers', () => {
  const t = { globalMs: 1000, perTryMs: 300, perTryIdleMs: 0 };
  assert.equal(expectedTimeoutMs(t, 0), 300);
  assert.equal(expectedTimeoutMs(t, 800), 200, 'what is left of the global timeout');
  assert.equal(expectedTimeoutMs(t, 1200), 1);
  assert.equal(expectedTimeoutMs({ globalMs: 0, perTryMs: 0, perTryIdleMs: 0 }, 5), 0);
  const h: HeaderMap = {};
  setTimeoutHeaders(h, t, 0, true, true);
  assert.equal(h['x-envoy-expected-rq-timeout-ms'], '300');
  assert.equal(h['grpc-timeout'], '300m');
  const none: HeaderMap = {};
  setTimeoutHeaders(none, { globalMs: 0, perTryMs: 0, perTryIdleMs: 0 }, 0, true, true);
  assert.deepEqual(none, {});
  const suppressed: HeaderMap = {};
  setTimeoutHeaders(suppressed, t, 0, false, false);
  assert.deepEqual(suppressed, {});
  assert.equal(formatGrpcTimeout(1500), '1500m');
  assert.equal(formatGrpcTimeout(200_000_000), '200000S');
});
