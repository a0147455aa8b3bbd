// Envoy matching semantics the simulation implements: virtual host domain order, header and
// query matchers (present, inverted, missing-as-empty), route path specifiers, filter chains.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  headerBag,
  headerMatches,
  routeMatches,
  selectFilterChain,
  selectVirtualHost,
} from '../src/simulate-match.js';

describe('simulate: Envoy matching', () => {
  test('virtual host domains: exact, then longest suffix wildcard, then prefix wildcard, then *', () => {
    const vhosts = [
      { name: 'any', domains: ['*'] },
      { name: 'prefix', domains: ['api.*'] },
      { name: 'suffix-short', domains: ['*.com'] },
      { name: 'suffix-long', domains: ['*.example.com'] },
      { name: 'exact', domains: ['www.example.com', 'www.example.com:8080'] },
    ];
    const pick = (h: string, ignorePort = false): string | undefined =>
      selectVirtualHost(vhosts, h, ignorePort)?.name;
    assert.equal(pick('www.example.com'), 'exact');
    assert.equal(pick('WWW.Example.com'), 'exact');
    assert.equal(pick('www.example.com:8080'), 'exact');
    assert.equal(pick('www.example.com:9090'), 'any'); // the port is part of the host
    assert.equal(pick('www.example.com:9090', true), 'exact');
    assert.equal(pick('shop.example.com'), 'suffix-long');
    assert.equal(pick('foo.com'), 'suffix-short');
    assert.equal(pick('api.internal'), 'prefix');
    assert.equal(pick('.com'), 'any'); // a wildcard matches at least one character
    assert.equal(selectVirtualHost([{ name: 'x', domains: ['a'] }], 'b', false), undefined);
  });

  test('header matchers: present, exact, inverted, missing header', () => {
    const h = headerBag({ 'X-User': 'jason', 'x-empty': '' });
    assert.ok(headerMatches({ name: 'x-user', stringMatch: { exact: 'jason' } }, h));
    assert.ok(!headerMatches({ name: 'x-user', stringMatch: { exact: 'JASON' } }, h));
    assert.ok(
      headerMatches({ name: 'x-user', stringMatch: { exact: 'JASON', ignoreCase: true } }, h),
    );
    assert.ok(headerMatches({ name: 'x-user', presentMatch: true }, h));
    assert.ok(!headerMatches({ name: 'x-missing', presentMatch: true }, h));
    // withoutHeaders {regex: "*"}: present + invert, a missing header matches.
    assert.ok(headerMatches({ name: 'x-missing', presentMatch: true, invertMatch: true }, h));
    assert.ok(!headerMatches({ name: 'x-user', presentMatch: true, invertMatch: true }, h));
    // withoutHeaders {exact: v}: invert + treat missing as empty.
    const notV = {
      name: 'x-missing',
      stringMatch: { exact: 'v' },
      invertMatch: true,
      treatMissingHeaderAsEmpty: true,
    };
    assert.ok(headerMatches(notV, h));
    assert.ok(!headerMatches({ ...notV, treatMissingHeaderAsEmpty: false }, h));
    assert.ok(headerMatches({ name: 'x-user', stringMatch: { safeRegex: { regex: 'j.*n' } } }, h));
    assert.ok(!headerMatches({ name: 'x-user', stringMatch: { safeRegex: { regex: 'j' } } }, h));
  });

  test('route matches: prefix, exact path, regex (full), case sensitivity, query parameters', () => {
    const req = (path: string, headers: Record<string, string> = {}) => ({
      path,
      headers: headerBag(headers),
    });
    assert.ok(routeMatches({ prefix: '/api' }, req('/api/v1?x=1')));
    assert.ok(routeMatches({ prefix: '/api' }, req('/apix')));
    assert.ok(!routeMatches({ prefix: '/API' }, req('/api')));
    assert.ok(routeMatches({ prefix: '/API', caseSensitive: false }, req('/api')));
    assert.ok(routeMatches({ path: '/login' }, req('/login?next=/')));
    assert.ok(!routeMatches({ path: '/login' }, req('/login/')));
    assert.ok(routeMatches({ safeRegex: { regex: '/delay/[0-9]+' } }, req('/delay/3')));
    assert.ok(!routeMatches({ safeRegex: { regex: '/delay/[0-9]+' } }, req('/delay/3/x')));
    assert.ok(routeMatches({ pathSeparatedPrefix: '/api' }, req('/api/x')));
    assert.ok(!routeMatches({ pathSeparatedPrefix: '/api' }, req('/apix')));
    const q = {
      prefix: '/',
      queryParameters: [
        { name: 'debug', stringMatch: { exact: '1' } },
        { name: 'v', presentMatch: true },
      ],
    };
    assert.ok(routeMatches(q, req('/?debug=1&v')));
    assert.ok(!routeMatches(q, req('/?debug=2&v')));
    assert.ok(!routeMatches(q, req('/?debug=1')));
  });

  test('filter chains: destination port, longest prefix, exact SNI over wildcard, transport, ALPN', () => {
    const chains = [
      { name: 'port', filterChainMatch: { destinationPort: 80 } },
      {
        name: 'wide',
        filterChainMatch: { prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] },
      },
      {
        name: 'narrow',
        filterChainMatch: { prefixRanges: [{ addressPrefix: '10.1.0.0', prefixLen: 16 }] },
      },
      { name: 'sni-wild', filterChainMatch: { serverNames: ['*.example.com'] } },
      { name: 'sni-exact', filterChainMatch: { serverNames: ['a.example.com'] } },
      {
        name: 'http',
        filterChainMatch: {
          transportProtocol: 'raw_buffer',
          applicationProtocols: ['http/1.1', 'h2c'],
        },
      },
      { name: 'raw', filterChainMatch: { transportProtocol: 'raw_buffer' } },
    ];
    const conn = {
      destinationPort: 1,
      destinationIp: '192.0.2.1',
      serverName: '',
      transportProtocol: 'raw_buffer',
      applicationProtocols: [] as string[],
    };
    const pick = (c: Partial<typeof conn>): string | undefined =>
      selectFilterChain(chains, { ...conn, ...c })?.name;
    assert.equal(pick({ destinationPort: 80 }), 'port');
    assert.equal(pick({ destinationIp: '10.2.0.1' }), 'wide');
    assert.equal(pick({ destinationIp: '10.1.2.3' }), 'narrow');
    assert.equal(pick({ serverName: 'a.example.com', transportProtocol: 'tls' }), 'sni-exact');
    assert.equal(pick({ serverName: 'b.example.com', transportProtocol: 'tls' }), 'sni-wild');
    assert.equal(pick({ applicationProtocols: ['http/1.1'] }), 'http');
    assert.equal(pick({}), 'raw');
    assert.equal(pick({ transportProtocol: 'tls' }), undefined);
  });
});
