// The load generator: argument parsing and a run against a real server that answers 200 and 503
// in turn, counted per status code like fortio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseLoadArgs, runLoadTest } from '../src/load.js';

test('load: parses -c -n -qps --json URL and rejects bad input', () => {
  assert.deepEqual(parseLoadArgs(['-c', '3', '-n', '30', '-qps', '0', 'http://httpbin:8000/get']), {
    url: 'http://httpbin:8000/get',
    connections: 3,
    requests: 30,
    qps: 0,
    json: false,
  });
  assert.throws(() => parseLoadArgs(['-c', '0', 'http://x/']), /-c needs a positive whole number/);
  assert.throws(() => parseLoadArgs(['-n', '2']), /needs a URL/);
  assert.throws(() => parseLoadArgs(['--bogus', 'http://x/']), /unexpected argument/);
});

test('load: counts status codes over concurrent connections', async () => {
  let n = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((_req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      res.statusCode = n++ % 2 === 0 ? 200 : 503;
      res.end('x');
    }, 5);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const r = await runLoadTest({
      url: `http://127.0.0.1:${port}/get`,
      connections: 2,
      requests: 20,
      qps: 0,
      json: true,
    });
    assert.deepEqual(r.codes, { '200': 10, '503': 10 });
    assert.equal(maxInFlight, 2);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
