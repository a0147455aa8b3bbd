// Consistent hashing (issue 6): the route's hash_policy (header, cookie with generation and
// Set-Cookie, source IP, query parameter, terminal, Envoy's combination), minimal remapping of
// RING_HASH and MAGLEV when endpoints change, and real requests sticking to one backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Cluster, ClusterLoadAssignment, HashPolicy } from '@trellis/envoy';
import { RequestHeaders } from '../src/http/headers.js';
import {
  cookieValue,
  generateHash,
  queryParameter,
  setCookieValue,
  type HashCookie,
} from '../src/http/hash-policy.js';
import { createLoadBalancer } from '../src/upstream/lb/index.js';
import { seededRandom } from '../src/upstream/lb/random.js';
import { xxHash64 } from '../src/upstream/lb/xxhash64.js';
import {
  echoJson,
  request,
  simpleRoutes,
  startH1Backend,
  startProxy,
  staticCluster,
  type Backend,
} from './http-fixtures.js';

function headers(map: Record<string, string | string[]>, path = '/'): RequestHeaders {
  return new RequestHeaders({ ...map }, 'GET', path, 'example.com', 'http');
}

function hashOf(
  policies: HashPolicy[],
  h: RequestHeaders,
  remoteAddress = '10.0.0.1:5555',
): { hash: bigint | undefined; cookies: HashCookie[] } {
  const cookies: HashCookie[] = [];
  const hash = generateHash(policies, { headers: h, remoteAddress }, (c) => cookies.push(c));
  return { hash, cookies };
}

test('header: xxHash64 of the value; repeated values sorted; absent → no hash', () => {
  const p: HashPolicy[] = [{ header: { headerName: 'x-user' } }];
  assert.equal(hashOf(p, headers({ 'x-user': 'jason' })).hash, xxHash64('jason'));
  assert.equal(hashOf(p, headers({})).hash, undefined);
  const ab = hashOf(p, headers({ 'x-user': ['a', 'b'] })).hash;
  assert.equal(ab, xxHash64('b', xxHash64('a')));
  assert.equal(hashOf(p, headers({ 'x-user': ['b', 'a'] })).hash, ab);
  assert.equal(
    hashOf([{ header: { headerName: ':authority' } }], headers({})).hash,
    xxHash64('example.com'),
  );
  const rw: HashPolicy[] = [
    {
      header: {
        headerName: 'x-user',
        regexRewrite: { pattern: { regex: '-v[0-9]+$' }, substitution: '' },
      },
    },
  ];
  assert.equal(hashOf(rw, headers({ 'x-user': 'jason-v2' })).hash, xxHash64('jason'));
});

test("several policies combine as Envoy's (rotate left, xor); terminal stops at the first hash", () => {
  const a = xxHash64('A');
  const b = xxHash64('B');
  const h = headers({ 'x-a': 'A', 'x-b': 'B' });
  const both = hashOf([{ header: { headerName: 'x-a' } }, { header: { headerName: 'x-b' } }], h);
  const rotl = ((a << 1n) | (a >> 63n)) & ((1n << 64n) - 1n);
  assert.equal(both.hash, rotl ^ b);
  const terminal = hashOf(
    [{ header: { headerName: 'x-a' }, terminal: true }, { header: { headerName: 'x-b' } }],
    h,
  );
  assert.equal(terminal.hash, a);
  const skipped = hashOf(
    [{ header: { headerName: 'x-none' }, terminal: true }, { header: { headerName: 'x-b' } }],
    h,
  );
  assert.equal(skipped.hash, b, 'a terminal policy without a hash does not stop');
});

test('cookie: hashed when present; generated (with Set-Cookie) when absent and a ttl is given', () => {
  const p: HashPolicy[] = [{ cookie: { name: 'session', ttl: '3600s', path: '/app' } }];
  const present = hashOf(p, headers({ cookie: 'a=1; session="abc"' }));
  assert.equal(present.hash, xxHash64('abc'));
  assert.equal(present.cookies.length, 0);
  const gen = hashOf(p, headers({}), '10.1.2.3:4567');
  const value = xxHash64('10.1.2.3:4567').toString(16).padStart(16, '0');
  assert.equal(gen.hash, xxHash64(value));
  assert.deepEqual(gen.cookies, [
    { name: 'session', value, ttlSeconds: 3600, path: '/app', attributes: [] },
  ]);
  const [cookie] = gen.cookies;
  assert.ok(cookie);
  assert.equal(setCookieValue(cookie), `session="${value}"; Max-Age=3600; Path=/app; HttpOnly`);
  assert.equal(
    setCookieValue({
      ...cookie,
      ttlSeconds: 0,
      path: '',
      attributes: [{ name: 'SameSite', value: 'Strict' }],
    }),
    `session="${value}"; SameSite=Strict; HttpOnly`,
    'ttl 0: a session cookie',
  );
  const noTtl = hashOf([{ cookie: { name: 'session' } }], headers({}));
  assert.equal(noTtl.hash, undefined);
  assert.equal(noTtl.cookies.length, 0);
  assert.equal(cookieValue({ cookie: ['x=1', 'y=2; session=zz'] }, 'session'), 'zz');
});

test('source IP and query parameter', () => {
  assert.equal(
    hashOf([{ connectionProperties: { sourceIp: true } }], headers({}), '192.168.1.9:31000').hash,
    xxHash64('192.168.1.9'),
  );
  assert.equal(
    hashOf([{ connectionProperties: { sourceIp: true } }], headers({}), '[::1]:8080').hash,
    xxHash64('::1'),
  );
  const q: HashPolicy[] = [{ queryParameter: { name: 'user' } }];
  assert.equal(hashOf(q, headers({}, '/p?x=1&user=bob&user=al')).hash, xxHash64('bob'));
  assert.equal(hashOf(q, headers({}, '/p?x=1')).hash, undefined);
  assert.equal(queryParameter('/p?user', 'user'), '');
  assert.equal(queryParameter('/p?u=%20x', 'u'), '%20x', 'not decoded');
});

function cla(ports: number[]): ClusterLoadAssignment {
  return {
    clusterName: 'h',
    endpoints: [
      {
        lbEndpoints: ports.map((p) => ({
          endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: p } } },
        })),
      },
    ],
  };
}

for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
  test(`${policy}: removing one of 8 hosts remaps about 1/8 of the keys`, () => {
    const c: Cluster = { name: 'h', lbPolicy: policy };
    const ports = [1, 2, 3, 4, 5, 6, 7, 8];
    const clb = createLoadBalancer(c, cla(ports), { random: seededRandom(3) });
    const keys = Array.from({ length: 2000 }, (_, i) => xxHash64(`user-${i}`));
    const before = keys.map((hash) => clb.lb.choose({ hash })?.id);
    assert.equal(new Set(before).size, 8, 'every host gets keys');
    assert.deepEqual(
      keys.map((hash) => clb.lb.choose({ hash })?.id),
      before,
      'the same key always gives the same host',
    );
    clb.update(cla(ports.filter((p) => p !== 5)));
    const after = keys.map((hash) => clb.lb.choose({ hash })?.id);
    let movedTotal = 0;
    before.forEach((id, i) => {
      if (id === '10.0.0.1:5') assert.notEqual(after[i], id);
      if (after[i] !== id) movedTotal++;
    });
    const owned = before.filter((id) => id === '10.0.0.1:5').length;
    // The removed host's keys (about 1/8) move, and a few others as the remaining hosts take
    // more points (ring) or table slots (maglev): far from the ~7/8 of `hash mod N`.
    assert.ok(movedTotal >= owned);
    assert.ok(movedTotal / keys.length < 2 / ports.length, `moved ${movedTotal}/${keys.length}`);
  });
}

test('real sockets: RING_HASH on x-user sticks to one backend; a generated cookie sticks too', async () => {
  const backends: Backend[] = [];
  for (const n of ['a', 'b', 'c', 'd']) backends.push(await startH1Backend(echoJson(n)));
  const proxy = await startProxy({
    clusters: [
      staticCluster(
        'c1',
        backends.map((b) => b.port),
        { lbPolicy: 'RING_HASH', ringHashLbConfig: { minimumRingSize: '1024' } },
      ),
    ],
    routes: [
      simpleRoutes('c1', {
        hashPolicy: [
          { header: { headerName: 'x-user' }, terminal: true },
          { cookie: { name: 'sticky', ttl: '60s', path: '/' } },
        ],
      }),
    ],
  });
  try {
    const backendOf = async (h: Record<string, string>): Promise<string> =>
      String((await request(proxy.port, { headers: h })).headers['x-backend']);
    const seen = new Set<string>();
    for (let u = 0; u < 12; u++) {
      const first = await backendOf({ 'x-user': `user-${u}` });
      for (let i = 0; i < 3; i++) assert.equal(await backendOf({ 'x-user': `user-${u}` }), first);
      seen.add(first);
    }
    assert.ok(seen.size >= 2, 'different users spread over the backends');

    const r = await request(proxy.port);
    const setCookie = r.headers['set-cookie'];
    assert.ok(setCookie && setCookie.length === 1, 'a cookie is generated');
    const m = /^sticky="([0-9a-f]{16})"; Max-Age=60; Path=\/; HttpOnly$/.exec(setCookie[0] ?? '');
    assert.ok(m, setCookie[0]);
    const withCookie = { cookie: `sticky="${m[1]}"` };
    const first = await backendOf(withCookie);
    assert.equal(first, String(r.headers['x-backend']), 'the cookie leads to the same backend');
    for (let i = 0; i < 4; i++) assert.equal(await backendOf(withCookie), first);
    const again = await request(proxy.port, { headers: withCookie });
    assert.equal(again.headers['set-cookie'], undefined, 'no new cookie when it is sent');
  } finally {
    await proxy.close();
    for (const b of backends) await b.close();
  }
});
