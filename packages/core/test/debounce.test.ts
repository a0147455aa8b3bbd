// The debouncer on a hand-driven clock: quiet window, maximum delay, coalescing, one flush at a
// time, and errors that do not stop it. No test sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer, ManualTimers, type FlushInfo } from '../src/index.js';

function setup(opts: { quietMs?: number; maxMs?: number } = {}) {
  const timers = new ManualTimers();
  const flushes: { reasons: string[]; info: FlushInfo }[] = [];
  const d = new Debouncer<string[]>({
    ...opts,
    timers,
    merge: (a, b) => [...a, ...b],
    flush: (reasons, info) => {
      flushes.push({ reasons, info });
    },
  });
  return { timers, flushes, d };
}

test('debounce: flushes once after the quiet window, coalescing a burst', () => {
  const { timers, flushes, d } = setup();
  d.push(['a']);
  timers.advance(50);
  d.push(['b']);
  timers.advance(50);
  d.push(['c']);
  timers.advance(99);
  assert.equal(flushes.length, 0);
  assert.ok(d.pending);
  timers.advance(1);
  assert.equal(flushes.length, 1);
  assert.deepEqual(flushes[0]?.reasons, ['a', 'b', 'c']);
  assert.deepEqual(flushes[0]?.info, { events: 3, firstAt: 0, lastAt: 100, flushedAt: 200 });
  assert.ok(!d.pending);
  assert.equal(timers.pending, 0);
  timers.advance(1000);
  assert.equal(flushes.length, 1);
});

test('debounce: a steady stream flushes at the maximum delay', () => {
  const { timers, flushes, d } = setup({ quietMs: 100, maxMs: 1000 });
  for (let t = 0; t < 2500; t += 50) {
    d.push([String(t)]);
    timers.advance(50);
  }
  // Flushed at 1000 and 2000 (each burst's first event + 1 s), the rest still pending.
  assert.deepEqual(
    flushes.map((f) => [f.info.firstAt, f.info.flushedAt]),
    [
      [0, 1000],
      [1000, 2000],
    ],
  );
  assert.equal(flushes[0]?.reasons.length, 20);
  assert.equal(flushes[0]?.info.firstAt, 0);
  timers.advance(100);
  assert.equal(flushes.length, 3);
  assert.equal(
    flushes.reduce((n, f) => n + f.reasons.length, 0),
    50,
  );
});

test('debounce: defaults are 100 ms quiet and 10 s max; both can be overridden', () => {
  const { d } = setup();
  assert.equal(d.quietMs, 100);
  assert.equal(d.maxMs, 10_000);
  const custom = setup({ quietMs: 5, maxMs: 20 });
  custom.d.push(['x']);
  custom.timers.advance(5);
  assert.equal(custom.flushes.length, 1);
});

test('debounce: flushNow flushes immediately; close drops pending events', () => {
  const { timers, flushes, d } = setup();
  d.push(['a']);
  d.flushNow();
  assert.deepEqual(flushes[0]?.reasons, ['a']);
  assert.equal(timers.pending, 0);
  d.push(['b']);
  d.close();
  timers.advance(1000);
  d.push(['c']);
  timers.advance(1000);
  assert.equal(flushes.length, 1);
});

test('debounce: one flush at a time; events during a flush wait for the next window', async () => {
  const timers = new ManualTimers();
  const flushes: string[][] = [];
  let release: () => void = () => {};
  const d = new Debouncer<string[]>({
    timers,
    merge: (a, b) => [...a, ...b],
    flush: (reasons) => {
      flushes.push(reasons);
      return new Promise<void>((r) => {
        release = r;
      });
    },
  });
  d.push(['a']);
  timers.advance(100);
  assert.equal(flushes.length, 1);
  assert.ok(d.flushing);
  d.push(['b']);
  d.push(['c']);
  timers.advance(5000);
  assert.equal(flushes.length, 1, 'no second flush while the first runs');
  release();
  await Promise.resolve();
  await Promise.resolve();
  // The quiet window of b and c has long passed: flushed as soon as the first flush settled.
  assert.deepEqual(flushes[1], ['b', 'c']);
  release();
  await d.whenIdle();
  assert.ok(!d.flushing && !d.pending);
});

test('debounce: flushNow during a flush runs the next flush as soon as it settles', async () => {
  const timers = new ManualTimers();
  const flushes: string[][] = [];
  let release: () => void = () => {};
  const d = new Debouncer<string[]>({
    timers,
    merge: (a, b) => [...a, ...b],
    flush: (reasons) => {
      flushes.push(reasons);
      return new Promise<void>((r) => {
        release = r;
      });
    },
  });
  d.push(['a']);
  d.flushNow();
  d.push(['b']);
  d.flushNow();
  assert.equal(flushes.length, 1);
  release();
  await Promise.resolve();
  await Promise.resolve();
  // No quiet window for b: it was asked for at once.
  assert.deepEqual(flushes[1], ['b']);
  assert.equal(timers.now(), 0);
  release();
  await d.whenIdle();
  // A later push debounces as usual.
  d.push(['c']);
  timers.advance(99);
  assert.equal(flushes.length, 2);
  timers.advance(1);
  assert.deepEqual(flushes[2], ['c']);
  release();
  await d.whenIdle();
});

test('debounce: a throwing flush is reported and the debouncer keeps going', () => {
  const timers = new ManualTimers();
  const errors: unknown[] = [];
  let calls = 0;
  const d = new Debouncer<number>({
    timers,
    merge: (a, b) => a + b,
    flush: () => {
      calls++;
      if (calls === 1) throw new Error('boom');
    },
    onError: (e) => errors.push(e),
  });
  d.push(1);
  timers.advance(100);
  d.push(2);
  timers.advance(100);
  assert.equal(calls, 2);
  assert.equal(errors.length, 1);
  assert.throws(
    () => new Debouncer<number>({ quietMs: -1, merge: (a) => a, flush: () => {} }),
    RangeError,
  );
});
