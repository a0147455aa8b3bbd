// bookinfo as real processes: productpage, details, reviews v1/v2/v3 and ratings, wired through a
// test forward proxy that plays the sidecar (absolute-form requests to `reviews:9080`...) and
// routes by the `end-user` header the way Istio's sample VirtualServices do, with faults.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import {
  closedPort,
  httpCall,
  startSample,
  startTestProxy,
  type ProxyDecision,
  type SampleProcess,
  type TestProxy,
} from './helpers.js';

const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const RATINGS_ERROR = 'Ratings service is currently unavailable';

let proxy: TestProxy;
let deadPort = 0;
const apps: Record<string, SampleProcess> = {};
let base = '';

/** Which reviews version a user gets, and which fault ratings has for them. */
function decide(authority: string, headers: IncomingHttpHeaders): ProxyDecision | undefined {
  const user = headers['end-user'];
  const port = (name: string) => apps[name]?.port ?? deadPort;
  switch (authority) {
    case 'details:9080':
      return { port: user === 'nodetails' ? deadPort : port('details') };
    case 'reviews:9080': {
      const v2 = ['jason', 'delay', 'abort'];
      const v3 = ['red', 'delay-v3'];
      const version =
        typeof user === 'string' && v2.includes(user)
          ? 'reviews-v2'
          : typeof user === 'string' && v3.includes(user)
            ? 'reviews-v3'
            : 'reviews-v1';
      return { port: port(version) };
    }
    case 'ratings:9080':
      if (user === 'delay' || user === 'delay-v3') return { port: port('ratings'), delayMs: 7_000 };
      if (user === 'abort') return { abort: 500 };
      return { port: port('ratings') };
    default:
      return undefined;
  }
}

before(async () => {
  deadPort = await closedPort();
  proxy = await startTestProxy(decide);
  const viaProxy = { HTTP_PROXY: proxy.url };
  const started = await Promise.all([
    startSample(['bookinfo-details'], { POD_NAME: 'details-v1-test' }),
    startSample(['bookinfo-ratings'], { POD_NAME: 'ratings-v1-test' }),
    startSample(['bookinfo-reviews', '--version', 'v1'], {
      ...viaProxy,
      POD_NAME: 'reviews-v1-test',
    }),
    startSample(['bookinfo-reviews', '--version=v2'], { ...viaProxy, POD_NAME: 'reviews-v2-test' }),
    startSample(['bookinfo-reviews'], {
      ...viaProxy,
      SERVICE_VERSION: 'v3',
      POD_NAME: 'reviews-v3-test',
    }),
    startSample(['bookinfo-productpage'], { ...viaProxy, POD_NAME: 'productpage-v1-test' }),
  ]);
  const names = ['details', 'ratings', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'productpage'];
  started.forEach((p, i) => (apps[names[i] ?? ''] = p));
  base = `http://127.0.0.1:${apps['productpage']?.port}`;
});

after(async () => {
  await Promise.all(Object.values(apps).map((a) => a.stop()));
  await proxy?.close();
});

let nextId = 0;
/** A fresh x-request-id, so a test finds its own requests in the proxy's record. */
function requestId(): string {
  return `test-${process.pid}-${++nextId}`;
}

async function login(user: string): Promise<string> {
  const res = await httpCall(`${base}/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      referer: `${base}/productpage`,
    },
    body: new URLSearchParams({ username: user, passwd: 'password' }).toString(),
  });
  assert.equal(res.status, 302);
  assert.equal(res.headers.location, '/productpage');
  const cookie = res.headers['set-cookie']?.[0];
  assert.ok(cookie, 'login sets a cookie');
  return cookie.split(';')[0] ?? '';
}

function seenFor(id: string, authority: string) {
  return proxy.seen.filter((r) => r.authority === authority && r.headers['x-request-id'] === id);
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('productpage', { concurrency: true }, () => {
  test('shows the details and v1 reviews (no stars) to an anonymous user', async () => {
    const id = requestId();
    const res = await httpCall(`${base}/productpage`, { headers: { 'x-request-id': id } });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /text\/html/);
    assert.ok(res.body.includes('The Comedy of Errors'));
    assert.ok(res.body.includes('Book Details'));
    assert.ok(res.body.includes('Book Reviews'));
    assert.ok(res.body.includes('paperback'));
    assert.ok(res.body.includes('123-1234567890'));
    assert.ok(res.body.includes('Reviewer1') && res.body.includes('Reviewer2'));
    assert.ok(res.body.includes('data-reviews-version="v1"'));
    assert.ok(res.body.includes('reviews-v1-test'));
    assert.ok(!res.body.includes('glyphicon-star'), 'v1 shows no stars');
    assert.equal(seenFor(id, 'ratings:9080').length, 0, 'v1 does not call ratings');
    assert.equal(seenFor(id, 'reviews:9080')[0]?.headers['end-user'], undefined);
  });

  test('a signed-in user is sent as end-user: jason gets v2 with black stars', async () => {
    const cookie = await login('jason');
    const id = requestId();
    const res = await httpCall(`${base}/productpage`, {
      headers: { cookie, 'x-request-id': id },
    });
    assert.equal(res.status, 200);
    assert.ok(res.body.includes('jason'), 'the page shows who is signed in');
    assert.ok(res.body.includes('data-reviews-version="v2"'));
    assert.ok(res.body.includes('<font color="black">'));
    assert.ok(!res.body.includes('<font color="red">'));
    // Reviewer1 gave 5 stars, Reviewer2 4.
    assert.equal(count(res.body, 'glyphicon glyphicon-star"'), 9);
    assert.equal(count(res.body, 'glyphicon-star-empty'), 1);
    for (const authority of ['details:9080', 'reviews:9080', 'ratings:9080']) {
      const calls = seenFor(id, authority);
      assert.equal(calls.length, 1, authority);
      assert.equal(calls[0]?.headers['end-user'], 'jason', authority);
    }
  });

  test('v3 shows red stars', async () => {
    const cookie = await login('red');
    const res = await httpCall(`${base}/productpage`, { headers: { cookie } });
    assert.ok(res.body.includes('data-reviews-version="v3"'));
    assert.ok(res.body.includes('<font color="red">'));
    assert.equal(count(res.body, 'glyphicon glyphicon-star"'), 9);
  });

  test('logout clears the session cookie', async () => {
    const cookie = await login('jason');
    const res = await httpCall(`${base}/logout`, { headers: { cookie } });
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, '/productpage');
    assert.match(res.headers['set-cookie']?.[0] ?? '', /^session=;.*Max-Age=0/);
    const page = await httpCall(`${base}/productpage`);
    assert.ok(page.body.includes('name="username"'), 'anonymous users see the sign-in form');
  });

  test('propagates trace, request-id and user headers to details, reviews and ratings', async () => {
    const cookie = await login('jason');
    const id = requestId();
    const sent: Record<string, string> = {
      'x-request-id': id,
      'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
      'x-b3-spanid': 'e457b5a2e4d86bd1',
      'x-b3-parentspanid': '05e3ac9a4f6e3b90',
      'x-b3-sampled': '1',
      b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'congo=t61rcWkgMzE',
      'x-ot-span-context': 'abc;def;ghi',
      'user-agent': 'sample-test/1.0',
    };
    const res = await httpCall(`${base}/productpage`, {
      headers: { ...sent, cookie, 'x-private': 'not-for-upstreams' },
    });
    assert.equal(res.status, 200);
    for (const authority of ['details:9080', 'reviews:9080', 'ratings:9080']) {
      const call = seenFor(id, authority)[0];
      assert.ok(call, `${authority} was called`);
      for (const [name, value] of Object.entries(sent))
        assert.equal(call.headers[name], value, `${authority} ${name}`);
      assert.equal(call.headers['end-user'], 'jason', `${authority} end-user`);
      assert.equal(call.headers['x-private'], undefined, `${authority} x-private`);
      assert.equal(call.headers.host, authority, 'absolute-form request with the service host');
    }
    // The cookie travels too (Istio's list), so header matches on it work downstream.
    assert.equal(seenFor(id, 'reviews:9080')[0]?.headers.cookie, cookie);
  });

  test('details unavailable: the page says so and still shows reviews', async () => {
    const cookie = await login('nodetails');
    const res = await httpCall(`${base}/productpage`, { headers: { cookie } });
    assert.equal(res.status, 200);
    assert.ok(res.body.includes(DETAILS_ERROR));
    assert.ok(res.body.includes('Book Reviews'));
  });

  test('ratings aborted with 500: reviews v2 answers "Ratings service is currently unavailable"', async () => {
    const cookie = await login('abort');
    const res = await httpCall(`${base}/productpage`, { headers: { cookie } });
    assert.ok(res.body.includes(RATINGS_ERROR));
    assert.ok(res.body.includes('data-reviews-version="v2"'));
    assert.ok(!res.body.includes('glyphicon-star'));
  });

  test('ratings delayed 7 s: productpage gives up on reviews after two 3 s tries', async () => {
    const cookie = await login('delay');
    const id = requestId();
    const started = Date.now();
    const res = await httpCall(`${base}/productpage`, { headers: { cookie, 'x-request-id': id } });
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200);
    assert.ok(res.body.includes(REVIEWS_ERROR), 'the reviews error is shown');
    assert.ok(res.body.includes('Book Details'), 'details still shown');
    assert.equal(seenFor(id, 'reviews:9080').length, 2, 'reviews is tried twice');
    // Two 3 s tries, not one, and not the 7 s delay twice (generous bounds).
    assert.ok(elapsed >= 5_500, `answered after ${elapsed} ms`);
    assert.ok(elapsed < 13_000, `answered after ${elapsed} ms`);
  });

  test('ratings delayed 7 s: reviews v3 stops waiting for ratings after 2.5 s', async () => {
    const cookie = await login('delay-v3');
    const started = Date.now();
    const res = await httpCall(`${base}/productpage`, { headers: { cookie } });
    const elapsed = Date.now() - started;
    assert.ok(res.body.includes('data-reviews-version="v3"'));
    assert.ok(res.body.includes(RATINGS_ERROR));
    assert.ok(!res.body.includes(REVIEWS_ERROR));
    assert.ok(elapsed >= 2_000 && elapsed < 6_000, `answered after ${elapsed} ms`);
  });

  test('JSON API and health', async () => {
    const products = await httpCall(`${base}/api/v1/products`);
    assert.equal(products.status, 200);
    const list = JSON.parse(products.body) as { id: number; title: string }[];
    assert.equal(list[0]?.title, 'The Comedy of Errors');
    const details = JSON.parse((await httpCall(`${base}/api/v1/products/0`)).body) as Record<
      string,
      unknown
    >;
    assert.equal(details['author'], 'William Shakespeare');
    assert.equal(details['id'], 0);
    const reviews = JSON.parse((await httpCall(`${base}/api/v1/products/0/reviews`)).body) as {
      reviews: unknown[];
      podname: string;
    };
    assert.equal(reviews.reviews.length, 2);
    assert.equal(reviews.podname, 'reviews-v1-test');
    const ratings = await httpCall(`${base}/api/v1/products/0/ratings`);
    assert.deepEqual(JSON.parse(ratings.body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    assert.equal((await httpCall(`${base}/api/v1/products/x`)).status, 400);
    assert.equal((await httpCall(`${base}/nope`)).status, 404);
    const health = await httpCall(`${base}/health`);
    assert.equal(health.status, 200);
    const index = await httpCall(`${base}/`);
    assert.ok(index.body.includes('productpage'));
    const css = await httpCall(`${base}/static/style.css`);
    assert.match(css.headers['content-type'] ?? '', /text\/css/);
  });

  test('details, reviews and ratings answered directly', async () => {
    const d = (name: string) => `http://127.0.0.1:${apps[name]?.port}`;
    assert.equal((await httpCall(`${d('details')}/details/abc`)).status, 400);
    assert.equal((await httpCall(`${d('details')}/health`)).status, 200);
    const v1 = JSON.parse((await httpCall(`${d('reviews-v1')}/reviews/0`)).body) as {
      reviews: { rating?: unknown }[];
    };
    assert.ok(
      v1.reviews.every((r) => r.rating === undefined),
      'v1 reviews carry no rating',
    );
    const v2 = JSON.parse((await httpCall(`${d('reviews-v2')}/reviews/0`)).body) as {
      reviews: { rating?: unknown }[];
    };
    assert.deepEqual(v2.reviews[0]?.rating, { stars: 5, color: 'black' });
    const post = await httpCall(`${d('ratings')}/ratings/7`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ Reviewer1: 2 }),
    });
    assert.equal(post.status, 200);
    const got = JSON.parse((await httpCall(`${d('ratings')}/ratings/7`)).body) as {
      ratings: Record<string, number>;
    };
    assert.deepEqual(got.ratings, { Reviewer1: 2, Reviewer2: 4 });
    const bad = await httpCall(`${d('ratings')}/ratings/7`, { method: 'POST', body: '{"a":9}' });
    assert.equal(bad.status, 400);
  });
});

describe('process behaviour', () => {
  test('one log line per request, and SIGTERM stops the process cleanly', async () => {
    const pp = apps['productpage'];
    assert.ok(pp);
    await pp.waitForLine(/"GET \/productpage HTTP\/1\.1" 200 /);
    const details = apps['details'];
    assert.ok(details);
    await httpCall(`http://127.0.0.1:${details.port}/details/0?probe=log`);
    await details.waitForLine(/"GET \/details\/0\?probe=log HTTP\/1\.1" 200 /);
    assert.equal(details.lines.filter((l) => l.includes('probe=log')).length, 1);
    assert.equal(await details.stop(), 0);
    assert.ok(details.lines.some((l) => l.includes('received SIGTERM')));
  });
});
