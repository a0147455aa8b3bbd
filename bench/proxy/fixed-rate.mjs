#!/usr/bin/env node
// An open-loop, fixed-rate HTTP/1.1 load generator for the data-plane benchmark (what wrk2 does;
// wrk2 is not packaged in Debian). Run as its own process (bench/proxy/run.mjs pins it to the
// load core with taskset):
//
//   node bench/proxy/fixed-rate.mjs --port P --request-target URL --host H --rate 1000
//        --duration 10 [--connections 16] [--body-bytes 1024]
//
// Requests are scheduled at fixed intervals (rate per second) and sent on a pool of keep-alive
// connections (a request waits for an idle connection when every one is busy). Node's timers
// fire with about 1 ms of granularity, so a timer tick releases every request that has come due
// since the last one. Latency ("latency") is taken from that release to the last byte of the
// response: a stall of the system under test keeps requests waiting for a connection and that
// wait counts (no coordinated omission), while the generator's own timer lateness does not.
// Also kept: from the exact scheduled time ("scheduleLatency", wrk2's definition, which adds up
// to a timer tick) and from the write ("serviceLatency"). Each response must be a 200 with exactly
// --body-bytes of body; anything else counts as an error. Prints one JSON object on stdout.
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'request-target': { type: 'string', default: '/' },
    'host-header': { type: 'string' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    'body-bytes': { type: 'string', default: '1024' },
  },
});
if (o.port === undefined) throw new Error('--port is required');
const port = Number(o.port);
const rate = Number(o.rate);
const durationS = Number(o.duration);
const poolSize = Number(o.connections);
const bodyBytes = Number(o['body-bytes']);
const hostHeader = o['host-header'] ?? `${o.host}:${port}`;
const REQUEST = Buffer.from(
  `GET ${o['request-target']} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: trellis-bench\r\n\r\n`,
);

const nowNs = () => process.hrtime.bigint();

/**
 * One keep-alive connection with a minimal HTTP/1.1 response reader (status line, headers,
 * Content-Length or chunked body). One request in flight at a time.
 */
class Conn {
  constructor(onDone) {
    this.onDone = onDone;
    this.busy = false;
    this.buf = Buffer.alloc(0);
    this.socket = connect({ host: o.host, port, noDelay: true });
    this.socket.on('data', (d) => this.data(d));
    this.socket.on('error', (e) => this.fail(`socket: ${e.message}`));
    this.socket.on('close', () => this.fail('connection closed'));
    this.closed = false;
    this.reset();
  }

  reset() {
    this.head = undefined; // { status, length, chunked }
    this.bodySeen = 0;
    this.chunkState = 'size';
    this.chunkLeft = 0;
  }

  send(job) {
    this.busy = true;
    this.job = job;
    job.sentNs = nowNs();
    this.socket.write(REQUEST);
  }

  fail(why) {
    if (this.closed) return;
    this.closed = true;
    const job = this.job;
    this.job = undefined;
    this.busy = false;
    this.onDone(this, job, why);
  }

  data(d) {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.job === undefined) {
        if (this.buf.length > 0) return this.fail('bytes without a request');
        return;
      }
      if (this.head === undefined) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
        this.buf = this.buf.subarray(end + 4);
        const status = Number(lines[0]?.split(' ')[1]);
        let length = -1;
        let chunked = false;
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          const name = l.slice(0, c).trim().toLowerCase();
          const value = l.slice(c + 1).trim();
          if (name === 'content-length') length = Number(value);
          else if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
        }
        this.head = { status, length, chunked };
      }
      if (!this.head.chunked) {
        if (this.head.length < 0) return this.fail('response without a length');
        const take = Math.min(this.head.length - this.bodySeen, this.buf.length);
        this.bodySeen += take;
        this.buf = this.buf.subarray(take);
        if (this.bodySeen < this.head.length) return;
      } else {
        // Chunked: 'size' line, 'data' bytes, its CRLF; a zero size ends it (no trailers sent).
        while (this.chunkState !== 'end') {
          if (this.chunkState === 'size' || this.chunkState === 'last') {
            const eol = this.buf.indexOf('\r\n');
            if (eol < 0) return;
            const line = this.buf.subarray(0, eol).toString('latin1');
            this.buf = this.buf.subarray(eol + 2);
            if (this.chunkState === 'last') {
              if (line === '') this.chunkState = 'end';
              continue;
            }
            const size = parseInt(line, 16);
            if (Number.isNaN(size)) return this.fail('bad chunk size');
            this.chunkState = size === 0 ? 'last' : 'data';
            this.chunkLeft = size;
          } else if (this.chunkState === 'data') {
            const take = Math.min(this.chunkLeft, this.buf.length);
            this.chunkLeft -= take;
            this.bodySeen += take;
            this.buf = this.buf.subarray(take);
            if (this.chunkLeft > 0) return;
            this.chunkState = 'crlf';
          } else {
            if (this.buf.length < 2) return;
            this.buf = this.buf.subarray(2);
            this.chunkState = 'size';
          }
        }
      }
      const job = this.job;
      const { status } = this.head;
      const seen = this.bodySeen;
      this.job = undefined;
      this.busy = false;
      this.reset();
      this.onDone(
        this,
        job,
        status !== 200
          ? `status ${status}`
          : seen !== bodyBytes
            ? `body of ${seen} bytes`
            : undefined,
      );
    }
  }
}

const latencies = []; // µs from the release
const fromSchedule = []; // µs from the scheduled time
const service = []; // µs from the write
const errors = {};
const queue = [];
let pool = [];
let completed = 0;
let scheduled = 0;
let finished = false;

function onDone(conn, job, error) {
  if (job !== undefined) {
    const end = nowNs();
    if (error === undefined) {
      latencies.push(Number(end - job.releasedNs) / 1000);
      fromSchedule.push(Number(end - job.dueNs) / 1000);
      service.push(Number(end - job.sentNs) / 1000);
    } else errors[error] = (errors[error] ?? 0) + 1;
    completed++;
  }
  if (conn.closed && !finished) {
    pool = pool.filter((c) => c !== conn);
    pool.push(new Conn(onDone));
  }
  dispatch();
}

function dispatch() {
  while (queue.length > 0) {
    const idle = pool.find((c) => !c.busy && !c.closed);
    if (idle === undefined) return;
    idle.send(queue.shift());
  }
}

for (let i = 0; i < poolSize; i++) pool.push(new Conn(onDone));

const intervalNs = BigInt(Math.round(1e9 / rate));
const total = Math.round(rate * durationS);
const start = nowNs() + 50_000_000n; // let the connections open

await new Promise((resolve) => {
  const tick = () => {
    const now = nowNs();
    while (scheduled < total && start + BigInt(scheduled) * intervalNs <= now) {
      queue.push({ dueNs: start + BigInt(scheduled) * intervalNs, releasedNs: now });
      scheduled++;
    }
    dispatch();
    if (scheduled < total) setTimeout(tick, 1);
    else resolve();
  };
  tick();
});
const drainDeadline = Date.now() + 10_000;
while (completed < total && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 5));
const elapsedS = Number(nowNs() - start) / 1e9;
finished = true;
for (const c of pool) c.socket.destroy();

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const summarize = (xs) => {
  const s = Float64Array.from(xs).sort();
  return {
    p50Us: pct(s, 50),
    p90Us: pct(s, 90),
    p99Us: pct(s, 99),
    p999Us: pct(s, 99.9),
    maxUs: s.length > 0 ? s[s.length - 1] : null,
  };
};
process.stdout.write(
  JSON.stringify({
    rate,
    durationS,
    connections: poolSize,
    scheduled,
    completed,
    ok: latencies.length,
    missing: total - completed,
    errors,
    elapsedS,
    achievedRps: completed / elapsedS,
    latency: summarize(latencies),
    scheduleLatency: summarize(fromSchedule),
    serviceLatency: summarize(service),
  }) + '\n',
);
process.exit(0);
