// Istio's request-routing and TCP traffic-shifting tasks, reproduced on the local runtime with
// real processes: `trellis up` (a background daemon: control plane + ingress gateway), Trellis's
// own samples (bookinfo, helloworld, tcp-echo) deployed from their Kubernetes manifests with
// sidecars injected, and Istio's networking YAML from ../shared/istio-samples applied unmodified.
// Every request enters through the ingress gateway, as in Istio's tasks. The same suite runs twice:
// with explicit capture (anywhere) and with transparent capture (`--capture=transparent`: a
// network namespace per pod and istio-iptables' rules; Linux as root with ip and iptables, as in
// CI: there the suite FAILS, never skips, when they are missing).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { transparentPrerequisites } from '@trellis/local';
import {
  ISTIO,
  SAMPLES,
  eventually,
  http,
  mustTrellis,
  trellis,
  startLocalMesh,
  type LocalMesh,
  type Reply,
} from './local-fixture.js';

const BOOKINFO_NET = join(ISTIO, 'bookinfo', 'networking');

/** The reviews version the product page shows (`data-reviews-version`), or the error text. */
function reviewsVersion(page: Reply): string {
  if (page.status !== 200) return `HTTP ${page.status}`;
  const m = /data-reviews-version="(v[0-9])"/.exec(page.body);
  if (m?.[1]) return m[1];
  if (page.body.includes('product reviews are currently unavailable')) return 'reviews-error';
  return 'none';
}

/** One line through a TCP connection to the gateway: tcp-echo answers `<prefix> <line>`. */
function tcpEcho(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setTimeout(10_000, () => s.destroy(new Error('timed out')));
    s.on('connect', () => s.write(`${line}\n`));
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\n')) {
        s.end();
        resolve(got.trim());
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got.trim()));
  });
}

type Capture = 'explicit' | 'transparent';

function bookinfoSuite(capture: Capture): void {
  let mesh: LocalMesh;
  let dir = '';
  let ingress = { httpPort: 0, tcpPort: 0 };
  const page = (headers: Record<string, string> = {}): Promise<Reply> =>
    http(ingress.httpPort, '/productpage', { headers });

  before(async () => {
    if (capture === 'transparent') {
      const { missing } = transparentPrerequisites();
      assert.deepEqual(
        missing,
        [],
        `--capture=transparent needs Linux, root, ip and iptables (CI installs iptables iproute2 and runs as root); missing: ${missing.join(', ')}`,
      );
    }
    mesh = await startLocalMesh([`--capture=${capture}`]);
    dir = mesh.dir;
    ingress = mesh.ingress;
    await mustTrellis(
      dir,
      'apply',
      '-f',
      join(SAMPLES, 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'),
      '-f',
      join(BOOKINFO_NET, 'bookinfo-gateway.yaml'),
      '-f',
      join(BOOKINFO_NET, 'destination-rule-all.yaml'),
    );
    await eventually(
      'the product page through the ingress gateway',
      async () => {
        const r = await page();
        return r.status === 200 && r.body.includes('Book Details') ? r : undefined;
      },
      120_000,
    );
  });

  after(async () => {
    await mesh?.down();
  });

  test('every workload runs with its sidecar, synced', async () => {
    // SYNCED may lag a moment behind Ready while a last push is acknowledged.
    const status = await eventually('every sidecar SYNCED', async () => {
      const out = await mustTrellis(dir, 'status');
      return out.split('\n').filter((l) => /STALE|NOT SENT/.test(l)).length === 0 ? out : undefined;
    });
    for (const w of [
      'productpage-v1',
      'details-v1',
      'ratings-v1',
      'reviews-v1',
      'reviews-v2',
      'reviews-v3',
    ]) {
      const line = status.split('\n').find((l) => l.includes(` ${w}-`));
      assert.ok(line, `${w} in:\n${status}`);
      if (!/2\/2\s+Running/.test(line) || !/SYNCED/.test(line)) {
        // Say why: the sidecar's and the app's last log lines.
        const tail = async (c: string) =>
          (await trellis(dir, 'logs', w, '-c', c, '--tail', '30')).stdout;
        assert.fail(
          `${line}\n--- proxy log:\n${await tail('proxy')}\n--- app log:\n${await tail('app')}`,
        );
      }
    }
  });

  test('without a VirtualService, all three reviews versions appear', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 60 && seen.size < 3; i++) seen.add(reviewsVersion(await page()));
    assert.deepEqual([...seen].sort(), ['v1', 'v2', 'v3']);
  });

  test('virtual-service-all-v1 sends everyone to v1', async () => {
    await mustTrellis(dir, 'apply', '-f', join(BOOKINFO_NET, 'virtual-service-all-v1.yaml'));
    await eventually('v1 only', async () => {
      for (let i = 0; i < 10; i++) if (reviewsVersion(await page()) !== 'v1') return undefined;
      return true;
    });
  });

  test('virtual-service-reviews-test-v2: jason (logged in via /login) gets v2, others v1', async () => {
    await mustTrellis(
      dir,
      'apply',
      '-f',
      join(BOOKINFO_NET, 'virtual-service-reviews-test-v2.yaml'),
    );
    const login = await http(ingress.httpPort, '/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=jason&passwd=jason',
    });
    assert.ok(login.status === 302 || login.status === 200, `login: HTTP ${login.status}`);
    const setCookie = login.headers['set-cookie'];
    const cookie = (Array.isArray(setCookie) ? setCookie : [setCookie ?? ''])
      .map((c) => c.split(';')[0])
      .join('; ');
    assert.ok(cookie.includes('='), 'the login sets a session cookie');
    await eventually('jason on v2', async () => {
      for (let i = 0; i < 5; i++)
        if (reviewsVersion(await page({ cookie })) !== 'v2') return undefined;
      return true;
    });
    for (let i = 0; i < 5; i++) assert.equal(reviewsVersion(await page()), 'v1');
    const jasonPage = await page({ cookie });
    assert.match(jasonPage.body, /jason/);
  });

  test('virtual-service-reviews-50-v3 splits v1/v3 evenly (within tolerance)', async () => {
    await mustTrellis(dir, 'apply', '-f', join(BOOKINFO_NET, 'virtual-service-reviews-50-v3.yaml'));
    await eventually('v3 appears', async () =>
      reviewsVersion(await page()) === 'v3' ? true : undefined,
    );
    const counts = new Map<string, number>();
    const n = 200;
    for (let i = 0; i < n; i++) {
      const v = reviewsVersion(await page());
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const v1 = counts.get('v1') ?? 0;
    const v3 = counts.get('v3') ?? 0;
    assert.equal(v1 + v3, n, JSON.stringify([...counts]));
    // Binomial(200, 0.5): sd ≈ 7.1; 70..130 is beyond 4 sd either way.
    assert.ok(v1 >= 70 && v1 <= 130, `v1 ${v1} / v3 ${v3}`);
  });

  test('helloworld: the gateway sample answers /hello from v1 and v2', async () => {
    await mustTrellis(
      dir,
      'apply',
      '-f',
      join(SAMPLES, 'helloworld', 'helloworld.yaml'),
      '-f',
      join(ISTIO, 'helloworld', 'helloworld-gateway.yaml'),
    );
    const seen = new Set<string>();
    await eventually('both helloworld versions', async () => {
      const r = await http(ingress.httpPort, '/hello');
      const m = /Hello version: (v[12]), instance: (\S+)/.exec(r.body);
      if (r.status === 200 && m?.[1]) seen.add(m[1]);
      return seen.size === 2 ? true : undefined;
    });
  });

  test('tcp-echo: all to v1, then 80/20 between v1 and v2 through the gateway', async () => {
    await mustTrellis(
      dir,
      'apply',
      '-f',
      join(SAMPLES, 'tcp-echo', 'tcp-echo-services.yaml'),
      '-f',
      join(ISTIO, 'tcp-echo', 'tcp-echo-all-v1.yaml'),
    );
    await eventually('tcp-echo v1 through the gateway', async () => {
      for (let i = 0; i < 5; i++)
        if ((await tcpEcho(ingress.tcpPort, 'world')) !== 'one world') return undefined;
      return true;
    });
    await mustTrellis(dir, 'apply', '-f', join(ISTIO, 'tcp-echo', 'tcp-echo-20-v2.yaml'));
    await eventually('tcp-echo v2 appears', async () =>
      (await tcpEcho(ingress.tcpPort, 'world')) === 'two world' ? true : undefined,
    );
    let one = 0;
    let two = 0;
    const n = 100;
    for (let i = 0; i < n; i++) {
      const r = await tcpEcho(ingress.tcpPort, 'world');
      if (r === 'one world') one++;
      else if (r === 'two world') two++;
    }
    assert.equal(one + two, n, `one ${one}, two ${two}`);
    // Binomial(100, 0.2): sd = 4; 6..36 is beyond 3.5 sd either way.
    assert.ok(two >= 6 && two <= 36, `one ${one}, two ${two}`);
  });
}

describe('bookinfo, helloworld and tcp-echo on the local runtime (explicit capture)', () => {
  bookinfoSuite('explicit');
});

describe('bookinfo, helloworld and tcp-echo on the local runtime (transparent capture)', () => {
  bookinfoSuite('transparent');
});
