// Unit tests of the retry decisions (retry-policy.ts) and the replayable request body
// (retry-body.ts): every retry_on condition, the control headers, the budget and its stats, the
// circuit breaker hook, the back-off ranges (injected random), previous_hosts.
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'node:test';
import type { RetryPolicy } from '@trellis/envoy';
import { ReplayableBody } from '../src/http/retry-body.js';
import {
  createRetryState,
  parseRetryOn,
  RETRY_ON,
  type RetryState,
  type RetryStats,
} from '../src/http/retry-policy.js';
import type { ResourceManagerApi } from '../src/upstream/api.js';
import type { PriorityLoad } from '../src/upstream/lb/priority-load.js';
import type { LbHost } from '../src/upstream/lb/types.js';
import { FakeStats } from './http-fixtures.js';

function state(p: RetryPolicy | undefined, hdrs: Record<string, string> = {}): RetryState {
  const s = createRetryState(p, (n) => hdrs[n], hdrs);
  assert.ok(s, 'a retry state');
  return s;
}

function stats(): { s: RetryStats; f: FakeStats } {
  const f = new FakeStats('c');
  return {
    f,
    s: {
      upstream_rq_retry: f.counter('upstream_rq_retry'),
      upstream_rq_retry_success: f.counter('upstream_rq_retry_success'),
      upstream_rq_retry_overflow: f.counter('upstream_rq_retry_overflow'),
      upstream_rq_retry_limit_exceeded: f.counter('upstream_rq_retry_limit_exceeded'),
    },
  };
}

function resources(allow = true): ResourceManagerApi {
  return {
    maxConnections: 1,
    maxPendingRequests: 1,
    maxRequests: 1,
    maxRetries: 3,
    connections: 0,
    pendingRequests: 0,
    requests: 0,
    retries: 0,
    canCreateConnection: () => true,
    canQueueRequest: () => true,
    canSendRequest: () => true,
    canRetry: () => allow,
  };
}

test('parseRetryOn: router and gRPC conditions, unknown ones ignored', () => {
  assert.equal(parseRetryOn('5xx, gateway-error'), RETRY_ON.FIVE_XX | RETRY_ON.GATEWAY_ERROR);
  assert.equal(parseRetryOn('unavailable,bogus'), RETRY_ON.GRPC_UNAVAILABLE);
  assert.equal(parseRetryOn('unavailable', true, false), 0, 'x-envoy-retry-on: router only');
  assert.equal(parseRetryOn('5xx', false, true), 0, 'x-envoy-retry-grpc-on: gRPC only');
  assert.equal(parseRetryOn(undefined), 0);
});

test('response conditions: 5xx, gateway-error, retriable-4xx, status codes, headers, gRPC', () => {
  const on = (retryOn: string, extra: Partial<RetryPolicy> = {}): RetryState =>
    state({ retryOn, ...extra });
  assert.ok(on('5xx').wouldRetryFromHeaders(500, {}));
  assert.ok(on('5xx').wouldRetryFromHeaders(503, {}));
  assert.ok(!on('5xx').wouldRetryFromHeaders(404, {}));
  assert.ok(on('gateway-error').wouldRetryFromHeaders(502, {}));
  assert.ok(on('gateway-error').wouldRetryFromHeaders(504, {}));
  assert.ok(!on('gateway-error').wouldRetryFromHeaders(500, {}));
  assert.ok(on('retriable-4xx').wouldRetryFromHeaders(409, {}));
  assert.ok(!on('retriable-4xx').wouldRetryFromHeaders(400, {}));
  const codes = on('retriable-status-codes', { retriableStatusCodes: [503, 418] });
  assert.ok(codes.wouldRetryFromHeaders(418, {}));
  assert.ok(!codes.wouldRetryFromHeaders(500, {}));
  assert.ok(
    !on('connect-failure', { retriableStatusCodes: [503] }).wouldRetryFromHeaders(503, {}),
    'codes only count with retriable-status-codes',
  );
  const hdr = on('retriable-headers', {
    retriableHeaders: [{ name: 'x-retry-me', stringMatch: { exact: 'yes' } }],
  });
  assert.ok(hdr.wouldRetryFromHeaders(200, { 'x-retry-me': 'yes' }));
  assert.ok(!hdr.wouldRetryFromHeaders(200, { 'x-retry-me': 'no' }));
  const grpc = on('cancelled,deadline-exceeded,resource-exhausted,unavailable,internal');
  for (const g of ['1', '4', '8', '13', '14'])
    assert.ok(grpc.wouldRetryFromHeaders(200, { 'grpc-status': g }), `grpc-status ${g}`);
  assert.ok(!grpc.wouldRetryFromHeaders(200, { 'grpc-status': '0' }));
  assert.ok(!grpc.wouldRetryFromHeaders(200, { 'grpc-status': '2' }));
  assert.ok(!on('unavailable').wouldRetryFromHeaders(200, { 'grpc-status': '13' }));
});

test('reset conditions: reset, 5xx/gateway-error, refused-stream, connect-failure, per-try timeouts', () => {
  const on = (retryOn: string): RetryState => state({ retryOn });
  assert.ok(on('reset').wouldRetryFromReset('connection_termination'));
  assert.ok(on('5xx').wouldRetryFromReset('remote_reset'));
  assert.ok(on('gateway-error').wouldRetryFromReset('connection_failure'));
  assert.ok(on('refused-stream').wouldRetryFromReset('remote_refused_stream_reset'));
  assert.ok(!on('refused-stream').wouldRetryFromReset('remote_reset'));
  assert.ok(on('connect-failure').wouldRetryFromReset('connection_failure'));
  assert.ok(on('connect-failure').wouldRetryFromReset('connection_timeout'));
  assert.ok(!on('connect-failure').wouldRetryFromReset('connection_termination'));
  assert.ok(on('5xx').wouldRetryFromReset('per_try_timeout'));
  assert.ok(on('reset').wouldRetryFromReset('per_try_timeout'));
  assert.ok(!on('connect-failure,refused-stream').wouldRetryFromReset('per_try_timeout'));
  assert.ok(on('reset-before-request').wouldRetryFromReset('connection_termination', false));
  assert.ok(!on('reset-before-request').wouldRetryFromReset('connection_termination', true));
  assert.ok(!on('retriable-status-codes').wouldRetryFromReset('remote_reset'));
});

test('no policy and no header: no retry state; headers add conditions and set the budget', () => {
  assert.equal(
    createRetryState(undefined, () => undefined, {}),
    undefined,
  );
  assert.equal(
    createRetryState({ retryOn: '' }, () => undefined, {}),
    undefined,
  );
  const h: Record<string, string> = {
    'x-envoy-retry-on': '5xx',
    'x-envoy-retry-grpc-on': 'unavailable',
  };
  const s = state(undefined, h);
  assert.equal(s.retriesRemaining, 1, 'one retry by default');
  assert.ok(s.wouldRetryFromHeaders(500, {}));
  assert.ok(s.wouldRetryFromHeaders(200, { 'grpc-status': '14' }));
  const combined = state(
    { retryOn: 'connect-failure', numRetries: 2 },
    { 'x-envoy-retry-on': 'retriable-status-codes', 'x-envoy-retriable-status-codes': '418' },
  );
  assert.equal(combined.retriesRemaining, 2);
  assert.ok(combined.wouldRetryFromHeaders(418, {}), 'header conditions and codes added');
  assert.ok(combined.wouldRetryFromReset('connection_failure'), 'policy conditions kept');
  assert.equal(
    state({ retryOn: '5xx', numRetries: 2 }, { 'x-envoy-max-retries': '5' }).retriesRemaining,
    5,
    'x-envoy-max-retries wins over num_retries',
  );
  const byHeaderName = state(undefined, {
    'x-envoy-retry-on': 'retriable-headers',
    'x-envoy-retriable-header-names': 'x-upstream-busy',
  });
  assert.ok(byHeaderName.wouldRetryFromHeaders(200, { 'x-upstream-busy': '1' }));
  // retriable_request_headers: only matching requests are retried at all.
  const gated: RetryPolicy = {
    retryOn: '5xx',
    retriableRequestHeaders: [{ name: ':method', stringMatch: { exact: 'GET' } }],
  };
  assert.equal(
    createRetryState(gated, () => undefined, { ':method': 'POST' }),
    undefined,
  );
  assert.ok(createRetryState(gated, () => undefined, { ':method': 'GET' }));
});

test('shouldRetry: budget, limit exceeded, circuit breaker overflow, success, retry resource', () => {
  const { s, f } = stats();
  const r = resources();
  const st = state({ retryOn: '5xx', numRetries: 2 });
  assert.equal(st.shouldRetry(false, r, s, true), 'no');
  assert.equal(f.get('c.upstream_rq_retry_success'), 0, 'no retry happened yet');
  assert.equal(st.shouldRetry(true, r, s, true), 'retry');
  assert.equal(r.retries, 1, 'a scheduled retry holds a retry resource');
  assert.equal(st.shouldRetry(true, r, s, false), 'retry');
  assert.equal(r.retries, 1, 'released, then taken again');
  assert.equal(st.shouldRetry(true, r, s, true), 'limit_exceeded');
  assert.equal(r.retries, 0);
  assert.equal(f.get('c.upstream_rq_retry'), 2);
  assert.equal(f.get('c.upstream_rq_retry_limit_exceeded'), 1);

  const ok = state({ retryOn: '5xx', numRetries: 3 });
  assert.equal(ok.shouldRetry(true, r, s, true), 'retry');
  assert.equal(ok.shouldRetry(false, r, s, true), 'no');
  assert.equal(f.get('c.upstream_rq_retry_success'), 1);
  assert.equal(r.retries, 0);

  const full = state({ retryOn: '5xx', numRetries: 3 });
  assert.equal(full.shouldRetry(true, resources(false), s, true), 'overflow');
  assert.equal(f.get('c.upstream_rq_retry_overflow'), 1);
});

test('back-off: fully jittered exponential, 25 ms base by default, capped at 10 × base', () => {
  const st = state({ retryOn: '5xx', numRetries: 10 });
  const top = (): number => 0.999999;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map(() => st.nextBackoffMs(top)),
    [24, 74, 174, 250, 250, 250],
  );
  const zero = state({ retryOn: '5xx' });
  assert.equal(
    zero.nextBackoffMs(() => 0),
    0,
  );
  const custom = state({
    retryOn: '5xx',
    retryBackOff: { baseInterval: '0.100s', maxInterval: '0.150s' },
  });
  assert.equal(
    custom.nextBackoffMs(() => 0.5),
    50,
  );
  assert.equal(
    custom.nextBackoffMs(() => 0.999),
    150,
    '(2^2 - 1) × 100 capped at 150',
  );
});

test('previous_hosts: a retry avoids the hosts tried, with host_selection_retry_max_attempts', () => {
  const host = (id: string): LbHost =>
    ({ id, address: '127.0.0.1', port: 1, weight: 1, priority: 0 }) as unknown as LbHost;
  const st = state({
    retryOn: '5xx',
    retryHostPredicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
    hostSelectionRetryMaxAttempts: '5',
  });
  st.onHostAttempted(host('a'));
  const p = st.hostPredicate();
  assert.ok(p);
  assert.equal(p.hostSelectionRetryCount, 5);
  assert.ok(p.avoid?.(host('a')));
  assert.ok(!p.avoid?.(host('b')));
  assert.equal(state({ retryOn: '5xx' }).hostPredicate(), undefined, 'no predicate configured');
});

test('previous_priorities: every update_frequency attempts, the priorities tried are excluded', () => {
  const host = (priority: number): LbHost =>
    ({ id: `h${priority}`, address: '127.0.0.1', port: 1, weight: 1, priority }) as LbHost;
  // Three levels: P0 fully healthy, P1 half healthy (overprovisioned to 70), P2 all degraded.
  const original: PriorityLoad = {
    healthy: [100, 0, 0],
    degraded: [0, 0, 0],
    panic: [false, false, false],
    health: [100, 70, 0],
    degradedAvailability: [0, 0, 100],
  };
  const st = state({
    retryOn: '5xx',
    numRetries: 6,
    retryPriority: {
      name: 'envoy.retry_priorities.previous_priorities',
      typedConfig: {
        '@type':
          'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
        updateFrequency: 2,
      } as never,
    },
  });
  const load = (): PriorityLoad => {
    const f = st.hostPredicate()?.priorityLoad;
    assert.ok(f, 'a retry priority is configured');
    return f(original);
  };
  st.onHostAttempted(host(0));
  assert.deepEqual(load().healthy, [100, 0, 0], 'the first two attempts use the original load');
  st.onHostAttempted(host(0));
  const third = load();
  // P0 excluded: P1's health (70) first, the rest to P2's degraded hosts.
  assert.deepEqual(
    [third.healthy, third.degraded],
    [
      [0, 70, 0],
      [0, 0, 30],
    ],
  );
  assert.equal(third.panic, original.panic);
  st.onHostAttempted(host(1));
  assert.deepEqual(load().healthy, [0, 70, 0], 'kept until the next update');
  st.onHostAttempted(host(1));
  const fifth = load();
  assert.deepEqual(
    [fifth.healthy, fifth.degraded],
    [
      [0, 0, 0],
      [0, 0, 100],
    ],
    'P0 and P1 tried: P2',
  );
  st.onHostAttempted(host(2));
  st.onHostAttempted(host(2));
  assert.deepEqual(load().healthy, [100, 0, 0], 'every level tried: back to the original load');
  assert.equal(state({ retryOn: '5xx' }).hostPredicate()?.priorityLoad, undefined);
});

/** A writable that collects what it gets, with a small high-water mark. */
function collector(): { sink: Writable; data: () => string; ended: () => boolean } {
  const chunks: Buffer[] = [];
  let ended = false;
  const sink = new Writable({
    highWaterMark: 4,
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  return { sink, data: () => Buffer.concat(chunks).toString(), ended: () => ended };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('ReplayableBody: streams to the attempt, replays to the next, gives the whole body', async () => {
  const src = new PassThrough();
  let overflow = 0;
  let seen = 0;
  const body = new ReplayableBody(
    src,
    100,
    () => overflow++,
    (c) => (seen += c.length),
  );
  const a = collector();
  assert.ok(body.attach(a.sink));
  src.write('hello ');
  await tick();
  assert.equal(a.data(), 'hello ');
  body.detach();
  const b = collector();
  assert.ok(body.attach(b.sink));
  src.end('world');
  await tick();
  await tick();
  assert.equal(b.data(), 'hello world', 'the retry gets what was sent before, then the rest');
  assert.ok(b.ended());
  assert.equal(body.complete?.toString(), 'hello world');
  assert.equal(seen, 11);
  assert.equal(overflow, 0);
  const c = collector();
  assert.ok(body.attach(c.sink), 'an attempt after the end gets the body at once');
  await tick();
  assert.equal(c.data(), 'hello world');
});

test('ReplayableBody: past the limit the copy is dropped and a later attempt is refused', async () => {
  const src = new PassThrough();
  let overflow = 0;
  const body = new ReplayableBody(
    src,
    8,
    () => overflow++,
    () => {},
  );
  const a = collector();
  body.attach(a.sink);
  src.write('0123456789');
  src.end();
  await tick();
  await tick();
  assert.equal(a.data(), '0123456789', 'the first attempt still gets everything');
  assert.equal(overflow, 1);
  assert.ok(body.abandoned);
  assert.equal(body.complete, undefined);
  assert.equal(body.attach(collector().sink), false);
});
