// The README's main job, `trellis demo`, as a user runs it: from nothing to bookinfo answering
// through the ingress gateway, the printed next steps, a second run finding everything in place,
// and `trellis down` stopping it all. Ports are chosen by the kernel so tests can run in parallel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDaemonInfo, runtimePaths } from '@trellis/local';
import { http, trellis } from './local-fixture.js';

const PORT_FLAGS = [
  'xds-port',
  'monitoring-port',
  'ingress-port',
  'ingress-https-port',
  'ingress-tcp-port',
].flatMap((f) => [`--${f}`, '0']);

test('trellis demo: bookinfo with sidecars behind the gateway, then next steps; idempotent; down', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'trellis-demo-'));
  const dir = join(parent, 'state');
  try {
    const first = await trellis(dir, 'demo', ...PORT_FLAGS);
    assert.equal(first.code, 0, first.stderr);
    const info = readDaemonInfo(runtimePaths(dir));
    assert.ok(info?.ingress);
    const url = `http://127.0.0.1:${info.ingress.httpPort}/productpage`;
    assert.match(first.stdout, /Bookinfo is up \([0-9.]+ s\)/);
    assert.ok(first.stdout.includes(url), first.stdout);
    assert.match(first.stdout, /virtual-service-reviews-test-v2\.yaml/);
    assert.match(
      first.stdout,
      /trellis proxy-config route productpage-v1-[0-9a-f]{10}-[a-z0-9]{5}/,
    );

    const page = await http(info.ingress.httpPort, '/productpage');
    assert.equal(page.status, 200);
    assert.match(page.body, /data-reviews-version="v[123]"/);
    const status = await trellis(dir, 'status');
    assert.match(status.stdout, /productpage-v1-\S+\s+2\/2\s+Running/);

    // Again: the mesh is already up and every object unchanged.
    const again = await trellis(dir, 'demo', ...PORT_FLAGS);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already running/);
    assert.match(again.stdout, /deployment\.apps\/productpage-v1 unchanged/);
  } finally {
    const down = await trellis(dir, 'down');
    rmSync(parent, { recursive: true, force: true });
    assert.equal(down.code, 0, down.stderr);
  }
});
