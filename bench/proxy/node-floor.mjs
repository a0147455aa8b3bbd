#!/usr/bin/env node
// The floor of any Node.js proxy on the benchmark's path (peer `node-floor` in run.mjs): the least
// work a proxy written for Node.js can do per request, so that Trellis can be compared with what
// the runtime allows as well as with nginx. It is not a proxy anyone should use: it forwards each
// downstream connection's bytes unchanged to its own upstream connection (one read and one write
// each way, no header parsing beyond the response framing it needs to know where a response
// ends), and understands only what the benchmark sends: GET requests without bodies, responses
// with Content-Length.
//
//   node bench/proxy/node-floor.mjs --listen PORT --upstream PORT [--host 127.0.0.1]
import { Buffer } from 'node:buffer';
import { createServer, connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    listen: { type: 'string' },
    upstream: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const UP_PORT = Number(o.upstream);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

const server = createServer({ noDelay: true }, (down) => {
  const up = connect({ host: o.host, port: UP_PORT, noDelay: true });
  // Response framing: bytes of the current response's body still to pass, or -1 in a head.
  let remaining = -1;
  let head = null;
  down.on('data', (chunk) => {
    if (!up.write(chunk)) down.pause();
  });
  up.on('drain', () => down.resume());
  up.on('data', (chunk) => {
    let data = chunk;
    while (data.length > 0) {
      if (remaining < 0) {
        head = head === null ? data : Buffer.concat([head, data]);
        const end = head.indexOf(CRLFCRLF);
        if (end < 0) return;
        const m = CONTENT_LENGTH.exec(head.latin1Slice(0, end + 2));
        if (!m) {
          down.destroy();
          up.destroy();
          return;
        }
        remaining = Number(m[1]);
        data = head;
        head = null;
        const take = Math.min(data.length, end + 4 + remaining);
        remaining -= take - end - 4;
        if (!down.write(data.subarray(0, take))) up.pause();
        data = data.subarray(take);
      } else {
        const take = Math.min(data.length, remaining);
        remaining -= take;
        if (!down.write(take === data.length ? data : data.subarray(0, take))) up.pause();
        data = data.subarray(take);
      }
      if (remaining === 0) remaining = -1;
    }
  });
  down.on('drain', () => up.resume());
  const close = () => {
    down.destroy();
    up.destroy();
  };
  down.on('error', close);
  up.on('error', close);
  down.on('close', close);
  up.on('close', close);
});
server.listen(Number(o.listen), '127.0.0.1', () =>
  console.log(`node-floor on 127.0.0.1:${server.address().port} → ${o.host}:${UP_PORT}`),
);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
