// A listener on a Unix domain socket (`address.pipe`, what a Sidecar egress or a Gateway server
// with `bind: unix://PATH` translates to), configured over ADS on a whole proxy: HTTP through it
// reaches the backend, the client counts as internal and adds no x-forwarded-for entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyMessage } from '@trellis/envoy';
import { Harness, plainBackend, routerHcm, staticCluster } from './tls-fixtures.js';

function getOver(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: { host: 'pipe.local' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP over a Unix domain socket listener, through a proxy configured over ADS', async () => {
  const backend = await plainBackend();
  const h = await Harness.start();
  const path = join(tmpdir(), `trellis-http-${process.pid}-${Date.now()}.sock`);
  try {
    const hcm = { ...routerHcm('backend', 'pipe'), useRemoteAddress: true } as AnyMessage;
    await h.configure(
      [staticCluster('backend', backend.port)],
      [
        {
          name: 'pipe',
          address: { pipe: { path } },
          filterChains: [{ filters: [{ name: 'hcm', typedConfig: hcm }] }],
        },
      ],
    );
    const r = await getOver(path, '/over-a-pipe');
    assert.equal(r.status, 200);
    const seen = backend.seen.at(-1);
    assert.equal(seen?.path, '/over-a-pipe');
    assert.equal(seen?.headers['x-forwarded-for'], undefined, 'no IP to append');
    assert.equal(seen?.headers['x-envoy-internal'], 'true');
  } finally {
    await h.close();
    await backend.close();
  }
});
