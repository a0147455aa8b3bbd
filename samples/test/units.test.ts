// Unit tests of the samples' small parts: proxy selection (NO_PROXY), listen ports, curl's
// command line, httpbin's status pick, the session cookie and the propagated header list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { noProxyMatches, proxyForUrl } from '../src/common/proxy-env.js';
import { listenHost, listenPort } from '../src/common/listen-address.js';
import { formatWriteOut, parseCurlArgs } from '../src/curl.js';
import { pickStatus, canonicalHeaderName } from '../src/httpbin.js';
import { encodeSession, isValidUser, sessionUser } from '../src/bookinfo/productpage.js';
import { propagatedHeaders } from '../src/bookinfo/trace-headers.js';
import { reviewsConfig } from '../src/bookinfo/reviews.js';
import { serviceBaseUrl } from '../src/bookinfo/upstream.js';

test('proxyForUrl: http_proxy / HTTP_PROXY, https separately, NO_PROXY exclusions', () => {
  const env = { HTTP_PROXY: 'http://127.0.0.1:15080', NO_PROXY: 'localhost,127.0.0.1' };
  assert.equal(proxyForUrl(new URL('http://reviews:9080/x'), env)?.host, '127.0.0.1:15080');
  assert.equal(proxyForUrl(new URL('http://127.0.0.1:9080/x'), env), undefined);
  assert.equal(proxyForUrl(new URL('https://reviews/x'), env), undefined);
  assert.equal(proxyForUrl(new URL('http://reviews/'), {}), undefined);
  assert.equal(
    proxyForUrl(new URL('http://a/'), { http_proxy: '10.0.0.1:3128', HTTP_PROXY: 'http://x:1' })
      ?.host,
    '10.0.0.1:3128',
  );
  assert.throws(
    () => proxyForUrl(new URL('http://a/'), { http_proxy: 'socks5://h:1' }),
    /only http/,
  );
});

test('noProxyMatches: names, suffixes, wildcard, ports, IPs and CIDRs', () => {
  assert.ok(noProxyMatches('anything', 80, '*'));
  assert.ok(noProxyMatches('reviews', 9080, 'details, reviews'));
  assert.ok(noProxyMatches('api.example.com', 443, 'example.com'));
  assert.ok(noProxyMatches('api.example.com', 443, '.example.com'));
  assert.ok(noProxyMatches('example.com', 443, '.example.com'));
  assert.ok(!noProxyMatches('badexample.com', 443, 'example.com'));
  assert.ok(noProxyMatches('reviews', 9080, 'reviews:9080'));
  assert.ok(!noProxyMatches('reviews', 9081, 'reviews:9080'));
  assert.ok(noProxyMatches('10.1.2.3', 80, '10.0.0.0/8'));
  assert.ok(!noProxyMatches('11.1.2.3', 80, '10.0.0.0/8'));
  assert.ok(noProxyMatches('::1', 80, '[::1]'));
  assert.ok(!noProxyMatches('reviews', 80, ''));
});

test('listenPort: TRELLIS_PORT_<n>, then PORT for the first port, then the container port', () => {
  assert.equal(listenPort(9080, { TRELLIS_PORT_9080: '41000', PORT: '42000' }), 41000);
  assert.equal(listenPort(9080, { PORT: '42000' }), 42000);
  assert.equal(listenPort(9001, { PORT: '42000' }, false), 9001);
  assert.equal(listenPort(9080, {}), 9080);
  assert.throws(() => listenPort(9080, { PORT: 'http' }), /PORT/);
  assert.equal(listenHost({}), '0.0.0.0');
  assert.equal(listenHost({ HOST: '127.0.0.1' }), '127.0.0.1');
});

test('curl command line: bundled short options, values and long options', () => {
  const o = parseCurlArgs([
    '-sSo',
    '/dev/null',
    '-w%{http_code}',
    '-H',
    'end-user: jason',
    '--max-time=2',
    '-XPOST',
    'http://a/',
  ]);
  assert.equal(o.silent && o.showError, true);
  assert.equal(o.output, '/dev/null');
  assert.equal(o.writeOut, '%{http_code}');
  assert.deepEqual(o.headers, [['end-user', 'jason']]);
  assert.equal(o.maxTimeSeconds, 2);
  assert.equal(o.method, 'POST');
  assert.deepEqual(o.urls, ['http://a/']);
  assert.throws(() => parseCurlArgs(['-Z', 'http://a/']), /unknown option -Z/);
  assert.throws(() => parseCurlArgs(['-s']), /no URL/);
  const out = formatWriteOut('%{http_code} %{size_download}\\n%%', {
    status: 0,
    url: 'x',
    size: 3,
    started: process.hrtime.bigint(),
    type: '',
  });
  assert.equal(out, '000 3\n%');
});

test('pickStatus: one code, a uniform list, weights, and bad input', () => {
  assert.equal(
    pickStatus('503', () => 0.99),
    503,
  );
  assert.equal(
    pickStatus('200,503', () => 0.1),
    200,
  );
  assert.equal(
    pickStatus('200,503', () => 0.9),
    503,
  );
  assert.equal(
    pickStatus('200:0.9,503:0.1', () => 0.85),
    200,
  );
  assert.equal(
    pickStatus('200:0.9,503:0.1', () => 0.95),
    503,
  );
  assert.equal(
    pickStatus('99', () => 0),
    undefined,
  );
  assert.equal(
    pickStatus('200:x', () => 0),
    undefined,
  );
  assert.equal(canonicalHeaderName('x-b3-traceid'), 'X-B3-Traceid');
});

test('session cookie round trip; bad cookies mean no user', () => {
  const req = (cookie: string) => ({ headers: { cookie } }) as unknown as IncomingMessage;
  assert.equal(sessionUser(req(`a=b; session=${encodeSession('jason')}`)), 'jason');
  assert.equal(sessionUser(req('session=!!!')), undefined);
  assert.equal(
    sessionUser(req(`session=${Buffer.from('{"user":7}').toString('base64url')}`)),
    undefined,
  );
  assert.ok(isValidUser('jason'));
  assert.ok(!isValidUser(''));
  assert.ok(!isValidUser('j\r\nx'));
  assert.ok(!isValidUser('jäson'));
});

test('propagated headers: trace and user headers only', () => {
  const out = propagatedHeaders({
    'x-request-id': 'r',
    'x-b3-traceid': 't',
    traceparent: 'p',
    'end-user': 'jason',
    'x-private': 'no',
    host: 'productpage:9080',
  });
  assert.deepEqual(out, {
    'x-request-id': 'r',
    'x-b3-traceid': 't',
    traceparent: 'p',
    'end-user': 'jason',
  });
});

test('reviews versions and upstream addresses', () => {
  assert.deepEqual(
    (({ version, ratingsEnabled, starColor, ratingsTimeoutMs }) => ({
      version,
      ratingsEnabled,
      starColor,
      ratingsTimeoutMs,
    }))(reviewsConfig(['--version', 'v3'], {})),
    { version: 'v3', ratingsEnabled: true, starColor: 'red', ratingsTimeoutMs: 2500 },
  );
  assert.equal(reviewsConfig([], {}).ratingsEnabled, false);
  assert.equal(reviewsConfig(['--version=v2'], { ENABLE_RATINGS: 'false' }).ratingsEnabled, false);
  assert.throws(() => reviewsConfig(['--version', 'v4'], {}), /unknown reviews version/);
  assert.equal(serviceBaseUrl('ratings', {}), 'http://ratings:9080');
  assert.equal(
    serviceBaseUrl('ratings', {
      SERVICES_DOMAIN: 'default.svc.cluster.local',
      RATINGS_SERVICE_PORT: '80',
    }),
    'http://ratings.default.svc.cluster.local:80',
  );
});
