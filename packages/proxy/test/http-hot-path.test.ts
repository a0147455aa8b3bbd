// Hand-written replacements for per-request work on the hot path: header-name interning shared by
// the two HTTP/1.1 parsers (src/upstream/header-names.ts), the x-request-id generator
// (src/http/request-id.ts), and the host:port and absolute-form request-target parsers, checked
// against the regular expressions they replace on random input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '@trellis/testing';
import { Http1ResponseParser } from '../src/upstream/http1-codec.js';
import { parseRequestHead } from '../src/http/http1-server.js';
import {
  headerNameFromBytes,
  headerNameFromString,
  learntHeaderNames,
} from '../src/upstream/header-names.js';
import { newRequestId } from '../src/http/request-id.js';
import { splitAbsoluteUrl } from '../src/http/connection-manager.js';
import { parseHostPort } from '../src/upstream/cluster.js';
import { newStreamInfo } from '../src/stream-info.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

test('header names: lower-cased from bytes and from strings, any spelling, same string', () => {
  for (const raw of ['Content-Type', 'content-type', 'CONTENT-TYPE', 'cOnTeNt-TyPe']) {
    const b = bytes(`xx${raw}:`);
    assert.equal(headerNameFromBytes(b, 2, 2 + raw.length), 'content-type');
    assert.equal(headerNameFromString(`xx${raw}:`, 2, 2 + raw.length), 'content-type');
  }
  // A name that is a prefix or an extension of a known one is not mistaken for it.
  assert.equal(headerNameFromString('x-request-i', 0, 11), 'x-request-i');
  assert.equal(headerNameFromString('x-request-idx', 0, 13), 'x-request-idx');
  assert.equal(headerNameFromString('hosT', 0, 4), 'host');
  // Symbols and digits are not folded (`^` is not `~`, `_` is not DEL).
  assert.equal(headerNameFromString('a^b', 0, 3), 'a^b');
  assert.equal(headerNameFromString('a~b', 0, 3), 'a~b');
  assert.equal(headerNameFromString('X_Y', 0, 3), 'x_y');
  assert.equal(headerNameFromBytes(bytes('X-Custom-9'), 0, 10), 'x-custom-9');
  // Own properties, never the prototype.
  assert.equal(headerNameFromString('__Proto__', 0, 9), '__proto__');
});

test('header names: unknown names are learnt up to a bound, and still answered after it', () => {
  const before = learntHeaderNames();
  const a = headerNameFromString('X-Learnt-Once', 0, 13);
  const after = learntHeaderNames();
  assert.equal(after, before + 1);
  assert.equal(headerNameFromString('x-learnt-once', 0, 13), a);
  assert.equal(learntHeaderNames(), after, 'a known name is not learnt twice');
  for (let i = 0; i < 2000; i++) {
    const n = `X-Flood-${i}`;
    assert.equal(headerNameFromBytes(bytes(n), 0, n.length), n.toLowerCase());
  }
  assert.ok(learntHeaderNames() <= 512, `learnt ${learntHeaderNames()}`);
  const late = 'X-After-The-Bound-Was-Reached';
  assert.equal(headerNameFromString(late, 0, late.length), late.toLowerCase());
});

test('header names: both parsers key header objects by the lower-cased names', () => {
  const head = parseRequestHead(
    'GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: r1\r\nx-ODD-Name: v\r\nAccept: */*\r\n\r\n',
  );
  assert.deepEqual(Object.keys(head.headers), ['host', 'x-request-id', 'x-odd-name', 'accept']);
  assert.equal(head.headers['x-request-id'], 'r1');
  let got: Record<string, unknown> | undefined;
  const parser = new Http1ResponseParser({
    onInformational() {},
    onHead(_status, headers) {
      got = { ...headers };
    },
    onBody() {},
    onComplete() {},
  });
  parser.start('GET', false);
  parser.execute(
    bytes('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSERVER: s\r\nX-Odd-Name: v\r\n\r\n'),
  );
  assert.deepEqual(got, { 'content-length': '0', server: 's', 'x-odd-name': 'v' });
});

test('x-request-id: version 4 UUIDs, lower-case, distinct across refills of the random pool', () => {
  const seen = new Set<string>();
  const re = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  for (let i = 0; i < 1000; i++) {
    const id = newRequestId();
    assert.match(id, re);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
  // Every hex digit shows up in every free position over many ids (nothing stuck).
  const digits = Array.from({ length: 36 }, () => new Set<string>());
  for (const id of seen) for (let k = 0; k < 36; k++) digits[k]!.add(id[k]!);
  for (let k = 0; k < 36; k++) {
    if (k === 8 || k === 13 || k === 18 || k === 23) assert.deepEqual([...digits[k]!], ['-']);
    else if (k === 14) assert.deepEqual([...digits[k]!], ['4']);
    else if (k === 19) assert.equal(digits[k]!.size, 4);
    else assert.equal(digits[k]!.size, 16, `position ${k}`);
  }
});

function randomString(r: () => number, alphabet: string, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

test('host:port parsing agrees with the regular expressions it replaced', () => {
  const byRegex = (v: string): { address: string; port: number } | undefined => {
    const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:]+):(\d{1,5})$/.exec(v);
    if (!m?.[1] || !m[2]) return undefined;
    const port = Number(m[2]);
    return port > 0 && port < 65536 ? { address: m[1], port } : undefined;
  };
  const fixed = ['echo:9080', '[::1]:443', '[::1]:0', 'a:65535', 'a:65536', 'a:', ':80', '[]:80'];
  for (const v of [...fixed, '[a]b:80', 'a:b:80', '[::1]:123456', 'host:00080', '[x]]:1'])
    assert.deepEqual(parseHostPort(v), byRegex(v), v);
  const r = seededRandom(7);
  for (let i = 0; i < 20_000; i++) {
    const v = randomString(r, '[]:0123456789ab.', 12);
    assert.deepEqual(parseHostPort(v), byRegex(v), JSON.stringify(v));
  }
});

test('absolute-form request targets split as the regular expression it replaced did', () => {
  const byRegex = (url: string): unknown => {
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]+)(.*)$/.exec(url);
    if (!m?.[1] || !m[2]) return undefined;
    const scheme = m[1].toLowerCase();
    return {
      scheme: scheme === 'http' || scheme === 'https' ? scheme : undefined,
      authority: m[2],
      rest: m[3] ?? '',
    };
  };
  const fixed = [
    'http://echo:9080/1k',
    'HTTPS://a.b/c?d#e',
    'http://a',
    'http:///x',
    'ftp://a/b',
    'h2c+x://a',
    '1http://a',
    'http:/a',
    'Http://a?b',
  ];
  for (const v of fixed) assert.deepEqual(splitAbsoluteUrl(v), byRegex(v), v);
  const r = seededRandom(11);
  for (let i = 0; i < 20_000; i++) {
    const prefixes = ['http://', 'HTTPS://', 'h-1://', 'http:/', ''];
    const v =
      prefixes[Math.floor(r() * prefixes.length)]! + randomString(r, 'hHtTpPsS:/?#a1+.-', 14);
    assert.deepEqual(splitAbsoluteUrl(v), byRegex(v), JSON.stringify(v));
  }
});

test('StreamInfo metadata: inherited from the connection, set without a map, the same once materialised', () => {
  const conn = new Map<string, unknown>([
    ['peer', 'spiffe://a'],
    ['shared', 1],
  ]);
  const info = newStreamInfo({
    protocol: 'HTTP/1.1',
    listenerName: 'l',
    direction: 'inbound',
    downstreamRemoteAddress: '',
    downstreamLocalAddress: '',
  });
  assert.equal(info.metadataSize, 0);
  info.inheritMetadata(conn);
  assert.equal(info.metadataValue('peer'), 'spiffe://a');
  assert.equal(info.metadataSize, 2);
  info.setMetadata('downstream_peer', { app: 'x' });
  info.setMetadata('shared', 2);
  assert.equal(info.metadataSize, 3, 'an overridden inherited key counts once');
  assert.equal(info.metadataValue('shared'), 2);
  info.setMetadata('third', 3);
  assert.equal(info.metadataValue('third'), 3);
  assert.deepEqual(
    [...info.metadata].sort(),
    [
      ['downstream_peer', { app: 'x' }],
      ['peer', 'spiffe://a'],
      ['shared', 2],
      ['third', 3],
    ].sort(),
  );
  info.metadata.set('fourth', 4);
  info.setMetadata('fifth', 5);
  assert.equal(info.metadataSize, 6);
  assert.equal(info.metadataValue('fifth'), 5);
  // The connection's map is never written.
  assert.deepEqual(
    [...conn],
    [
      ['peer', 'spiffe://a'],
      ['shared', 1],
    ],
  );
  // Inheriting after values were set keeps the stream's own values.
  const late = newStreamInfo({
    protocol: 'HTTP/1.1',
    listenerName: 'l',
    direction: 'inbound',
    downstreamRemoteAddress: '',
    downstreamLocalAddress: '',
  });
  late.setMetadata('shared', 'mine');
  late.inheritMetadata(conn);
  assert.equal(late.metadataValue('shared'), 'mine');
  assert.equal(late.metadataValue('peer'), 'spiffe://a');
  assert.equal(late.metadataSize, 2);
});
