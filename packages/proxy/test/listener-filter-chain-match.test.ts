// Filter chain selection (Envoy's FilterChainMatch order and "most specific wins" pruning) as
// table tests, the validation of filter chain matches, and acceptance of every listener the
// control plane generates (the translate goldens).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FilterChain, FilterChainMatch, Listener } from '@trellis/envoy';
import {
  checkFilterChainMatches,
  selectFilterChain,
  type ConnectionAttributes,
} from '../src/listener/filter-chain-match.js';
import { createNetworkFilterFactory } from '../src/listener/network-filters.js';
import { ListenerManager } from '../src/listener/listener-manager.js';
import { EMPTY_CONFIG } from '../src/xds/config.js';
import { FakeClusterManager, FakeStats } from './listener-fakes.js';

function chain(name: string, m: FilterChainMatch = {}): FilterChain {
  return { name, filterChainMatch: m, filters: [] };
}

function listener(chains: FilterChain[], def?: FilterChain): Listener {
  return { name: 'l', filterChains: chains, ...(def ? { defaultFilterChain: def } : {}) };
}

function conn(over: Partial<ConnectionAttributes> = {}): ConnectionAttributes {
  return {
    destinationAddress: '10.0.0.1',
    destinationPort: 8080,
    sourceAddress: '10.0.0.2',
    sourcePort: 40000,
    transportProtocol: 'raw_buffer',
    applicationProtocols: [],
    ...over,
  };
}

interface Case {
  readonly what: string;
  readonly chains: FilterChain[];
  readonly def?: FilterChain;
  readonly conn: Partial<ConnectionAttributes>;
  /** Name of the chain expected, or undefined for none. */
  readonly want: string | undefined;
}

const SNI_CHAINS = [
  chain('exact', { serverNames: ['www.example.com'] }),
  chain('wild-example', { serverNames: ['*.example.com'] }),
  chain('wild-com', { serverNames: ['*.com'] }),
  chain('any'),
];

// Istio's virtualInbound (translate golden listener-inbound.json), matches only.
const VIRTUAL_INBOUND = [
  chain('virtualInbound-blackhole', { destinationPort: 15006 }),
  chain('virtualInbound-catchall-http', {
    applicationProtocols: ['http/1.1', 'h2c'],
    transportProtocol: 'raw_buffer',
  }),
  chain('virtualInbound', { transportProtocol: 'raw_buffer' }),
  chain('0.0.0.0_80', { destinationPort: 80, transportProtocol: 'raw_buffer' }),
];

const CASES: Case[] = [
  // 1. destination port
  {
    what: 'port: the chain for the port wins',
    chains: [chain('p80', { destinationPort: 80 }), chain('any')],
    conn: { destinationPort: 80 },
    want: 'p80',
  },
  {
    what: 'port: other ports take the chain without one',
    chains: [chain('p80', { destinationPort: 80 }), chain('any')],
    conn: { destinationPort: 81 },
    want: 'any',
  },
  {
    what: 'port: a matched port is not given up when a later criterion fails',
    chains: [
      chain('p80', { destinationPort: 80, transportProtocol: 'tls' }),
      chain('raw', { transportProtocol: 'raw_buffer' }),
    ],
    def: chain('default'),
    conn: { destinationPort: 80 },
    want: 'default',
  },
  // 2. destination IP
  {
    what: 'prefix_ranges: longest prefix wins (/16 over /8)',
    chains: [
      chain('ten', { prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] }),
      chain('ten-one', { prefixRanges: [{ addressPrefix: '10.1.0.0', prefixLen: 16 }] }),
      chain('any'),
    ],
    conn: { destinationAddress: '10.1.2.3' },
    want: 'ten-one',
  },
  {
    what: 'prefix_ranges: /8 when the /16 does not contain it',
    chains: [
      chain('ten', { prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] }),
      chain('ten-one', { prefixRanges: [{ addressPrefix: '10.1.0.0', prefixLen: 16 }] }),
      chain('any'),
    ],
    conn: { destinationAddress: '10.2.0.1' },
    want: 'ten',
  },
  {
    what: 'prefix_ranges: no range is the catch-all',
    chains: [
      chain('ten', { prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] }),
      chain('any'),
    ],
    conn: { destinationAddress: '192.168.1.1' },
    want: 'any',
  },
  {
    what: 'prefix_ranges: /32 exact address',
    chains: [
      chain('one', { prefixRanges: [{ addressPrefix: '10.0.0.1', prefixLen: 32 }] }),
      chain('any'),
    ],
    conn: { destinationAddress: '10.0.0.1' },
    want: 'one',
  },
  {
    what: 'prefix_ranges: IPv4-mapped IPv6 destination matches an IPv4 range',
    chains: [
      chain('ten', { prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] }),
      chain('any'),
    ],
    conn: { destinationAddress: '::ffff:10.9.9.9' },
    want: 'ten',
  },
  {
    what: 'prefix_ranges: IPv6 range',
    chains: [
      chain('v6', { prefixRanges: [{ addressPrefix: 'fd00::', prefixLen: 8 }] }),
      chain('any'),
    ],
    conn: { destinationAddress: 'fd12::1' },
    want: 'v6',
  },
  {
    what: 'prefix_ranges: an IPv6 range does not match IPv4',
    chains: [chain('v6', { prefixRanges: [{ addressPrefix: '::', prefixLen: 0 }] })],
    conn: { destinationAddress: '10.0.0.1' },
    want: undefined,
  },
  // 3. server names
  {
    what: 'server_names: exact beats wildcards',
    chains: SNI_CHAINS,
    conn: { serverName: 'www.example.com', transportProtocol: 'tls' },
    want: 'exact',
  },
  {
    what: 'server_names: *.example.com for another label',
    chains: SNI_CHAINS,
    conn: { serverName: 'api.example.com', transportProtocol: 'tls' },
    want: 'wild-example',
  },
  {
    what: 'server_names: the longest wildcard suffix for several labels',
    chains: SNI_CHAINS,
    conn: { serverName: 'a.b.example.com', transportProtocol: 'tls' },
    want: 'wild-example',
  },
  {
    what: 'server_names: *.example.com needs a label before it, *.com matches',
    chains: SNI_CHAINS,
    conn: { serverName: 'example.com', transportProtocol: 'tls' },
    want: 'wild-com',
  },
  {
    what: 'server_names: no server name matched → chain without server_names',
    chains: SNI_CHAINS,
    conn: { serverName: 'foo.org', transportProtocol: 'tls' },
    want: 'any',
  },
  {
    what: 'server_names: no SNI → chain without server_names',
    chains: SNI_CHAINS,
    conn: {},
    want: 'any',
  },
  {
    what: 'server_names: compared case-insensitively',
    chains: SNI_CHAINS,
    conn: { serverName: 'WWW.Example.COM', transportProtocol: 'tls' },
    want: 'exact',
  },
  {
    what: 'server_names: no SNI and no catch-all → default chain',
    chains: [chain('exact', { serverNames: ['a.example.com'] })],
    def: chain('PassthroughFilterChain'),
    conn: {},
    want: 'PassthroughFilterChain',
  },
  {
    what: 'server_names: matched SNI is not given up when transport fails later',
    chains: [
      chain('sni-raw', { serverNames: ['a.example.com'], transportProtocol: 'raw_buffer' }),
      chain('tls', { transportProtocol: 'tls' }),
    ],
    conn: { serverName: 'a.example.com', transportProtocol: 'tls' },
    want: undefined,
  },
  // 4. transport protocol
  {
    what: 'transport_protocol: tls',
    chains: [
      chain('tls', { transportProtocol: 'tls' }),
      chain('raw', { transportProtocol: 'raw_buffer' }),
      chain('any'),
    ],
    conn: { transportProtocol: 'tls' },
    want: 'tls',
  },
  {
    what: 'transport_protocol: unknown protocol → chain without one',
    chains: [chain('tls', { transportProtocol: 'tls' }), chain('any')],
    conn: { transportProtocol: 'raw_buffer' },
    want: 'any',
  },
  // 5. application protocols
  {
    what: 'application_protocols: the first offered protocol that a chain names wins',
    chains: [
      chain('h11', { applicationProtocols: ['http/1.1'] }),
      chain('h2', { applicationProtocols: ['h2'] }),
    ],
    conn: { applicationProtocols: ['h2', 'http/1.1'] },
    want: 'h2',
  },
  {
    what: 'application_protocols: later offered protocol when the first is not named',
    chains: [chain('h11', { applicationProtocols: ['http/1.1'] }), chain('any')],
    conn: { applicationProtocols: ['h2', 'http/1.1'] },
    want: 'h11',
  },
  {
    what: 'application_protocols: none named → chain without application_protocols',
    chains: [
      chain('istio', { applicationProtocols: ['istio', 'istio-peer-exchange'] }),
      chain('any'),
    ],
    conn: { applicationProtocols: ['h2'] },
    want: 'any',
  },
  // 6. direct source
  {
    what: 'direct_source_prefix_ranges: longest prefix',
    chains: [
      chain('direct', { directSourcePrefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 24 }] }),
      chain('any'),
    ],
    conn: { sourceAddress: '10.0.0.7' },
    want: 'direct',
  },
  // 7. source type
  {
    what: 'source_type: loopback source is local',
    chains: [
      chain('local', { sourceType: 'SAME_IP_OR_LOOPBACK' }),
      chain('external', { sourceType: 'EXTERNAL' }),
    ],
    conn: { sourceAddress: '127.0.0.1' },
    want: 'local',
  },
  {
    what: 'source_type: same source and destination IP is local',
    chains: [
      chain('local', { sourceType: 'SAME_IP_OR_LOOPBACK' }),
      chain('external', { sourceType: 'EXTERNAL' }),
    ],
    conn: { sourceAddress: '10.0.0.1', destinationAddress: '10.0.0.1' },
    want: 'local',
  },
  {
    what: 'source_type: another IP is external',
    chains: [
      chain('local', { sourceType: 'SAME_IP_OR_LOOPBACK' }),
      chain('external', { sourceType: 'EXTERNAL' }),
    ],
    conn: { sourceAddress: '10.0.0.2' },
    want: 'external',
  },
  {
    what: 'source_type: external connection falls to ANY when only LOCAL is named',
    chains: [chain('local', { sourceType: 'SAME_IP_OR_LOOPBACK' }), chain('any')],
    conn: { sourceAddress: '10.0.0.2' },
    want: 'any',
  },
  {
    what: 'source_type: LOCAL beats ANY for a local connection',
    chains: [chain('local', { sourceType: 'SAME_IP_OR_LOOPBACK' }), chain('any')],
    conn: { sourceAddress: '::1' },
    want: 'local',
  },
  // 8. source IP
  {
    what: 'source_prefix_ranges: longest prefix',
    chains: [
      chain('s8', { sourcePrefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] }),
      chain('s24', { sourcePrefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 24 }] }),
      chain('any'),
    ],
    conn: { sourceAddress: '10.0.0.2' },
    want: 's24',
  },
  {
    what: 'source_prefix_ranges: unmatched source → chain without ranges',
    chains: [
      chain('s8', { sourcePrefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }] }),
      chain('any'),
    ],
    conn: { sourceAddress: '172.16.0.1' },
    want: 'any',
  },
  // 9. source port
  {
    what: 'source_ports: exact port',
    chains: [chain('sp', { sourcePorts: [40000, 40001] }), chain('any')],
    conn: { sourcePort: 40001 },
    want: 'sp',
  },
  {
    what: 'source_ports: other port',
    chains: [chain('sp', { sourcePorts: [40000] }), chain('any')],
    conn: { sourcePort: 50000 },
    want: 'any',
  },
  // Order between criteria
  {
    what: 'order: destination port is decided before server name',
    chains: [
      chain('sni', { serverNames: ['a.example.com'] }),
      chain('port', { destinationPort: 8080 }),
    ],
    conn: { destinationPort: 8080, serverName: 'a.example.com', transportProtocol: 'tls' },
    want: 'port',
  },
  {
    what: 'order: server name is decided before transport protocol',
    chains: [
      chain('sni', { serverNames: ['a.example.com'] }),
      chain('tls', { transportProtocol: 'tls' }),
    ],
    conn: { serverName: 'a.example.com', transportProtocol: 'tls' },
    want: 'sni',
  },
  {
    what: 'no chain and no default → none',
    chains: [chain('p80', { destinationPort: 80 })],
    conn: { destinationPort: 81 },
    want: undefined,
  },
  // Istio's virtualInbound
  {
    what: 'virtualInbound: port 80 chain for plaintext HTTP to 80',
    chains: VIRTUAL_INBOUND,
    conn: { destinationPort: 80, applicationProtocols: ['http/1.1'] },
    want: '0.0.0.0_80',
  },
  {
    what: 'virtualInbound: HTTP to an unknown port → catch-all HTTP',
    chains: VIRTUAL_INBOUND,
    conn: { destinationPort: 9090, applicationProtocols: ['h2c'] },
    want: 'virtualInbound-catchall-http',
  },
  {
    what: 'virtualInbound: raw TCP to an unknown port → passthrough TCP',
    chains: VIRTUAL_INBOUND,
    conn: { destinationPort: 9090 },
    want: 'virtualInbound',
  },
  {
    what: 'virtualInbound: direct connection to 15006 → blackhole',
    chains: VIRTUAL_INBOUND,
    conn: { destinationPort: 15006, applicationProtocols: ['http/1.1'] },
    want: 'virtualInbound-blackhole',
  },
  {
    what: 'virtualInbound: TLS to an unknown port matches nothing',
    chains: VIRTUAL_INBOUND,
    conn: { destinationPort: 9090, transportProtocol: 'tls' },
    want: undefined,
  },
];

for (const c of CASES) {
  test(`filter chain match: ${c.what}`, () => {
    const l = listener(c.chains, c.def);
    assert.deepEqual(checkFilterChainMatches(l), [], 'the table listener itself must be valid');
    assert.equal(selectFilterChain(l, conn(c.conn))?.name, c.want);
  });
}

test('filter chain match validation: overlapping and invalid matches are rejected', () => {
  const cases: [FilterChain[], RegExp][] = [
    [[chain('a'), chain('b')], /same matching rules/],
    [
      [chain('a', { serverNames: ['x.com', 'y.com'] }), chain('b', { serverNames: ['y.com'] })],
      /overlapping/,
    ],
    [
      [chain('a', { prefixRanges: [{ addressPrefix: '0.0.0.0', prefixLen: 0 }] }), chain('b')],
      /overlapping/,
    ],
    [[chain('a', { serverNames: ['foo*.example.com'] })], /partial wildcards/],
    [[chain('a', { serverNames: ['*'] })], /partial wildcards/],
    [[chain('a', { destinationPort: 70000 })], /destinationPort/],
    [
      [chain('a', { prefixRanges: [{ addressPrefix: '10.0.0.300', prefixLen: 8 }] })],
      /malformed CIDR/,
    ],
    [
      [chain('a', { prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 33 }] })],
      /malformed CIDR/,
    ],
    [[chain('a', { sourcePorts: [0] })], /sourcePorts\[0\]/],
  ];
  for (const [chains, re] of cases) {
    const problems = checkFilterChainMatches(listener(chains));
    assert.ok(
      problems.some((p) => re.test(p)),
      `${JSON.stringify(chains)} → ${JSON.stringify(problems)}`,
    );
  }
  // Distinct values in one dimension do not overlap.
  assert.deepEqual(
    checkFilterChainMatches(
      listener([
        chain('a', { serverNames: ['x.com'] }),
        chain('b', { serverNames: ['y.com'] }),
        chain('c'),
      ]),
    ),
    [],
  );
});

/** Every Listener object in a golden JSON document. */
function goldenListeners(v: unknown, out: Listener[]): Listener[] {
  if (Array.isArray(v)) for (const x of v) goldenListeners(x, out);
  else if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('address' in o && ('filterChains' in o || 'apiListener' in o || 'defaultFilterChain' in o))
      out.push(o);
    else for (const x of Object.values(o)) goldenListeners(x, out);
  }
  return out;
}

test('every listener the control plane generates (translate goldens) is accepted', () => {
  const dir = join(import.meta.dirname, '..', '..', '..', 'translate', 'test', 'golden');
  const listeners: [string, Listener][] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    for (const l of goldenListeners(JSON.parse(readFileSync(join(dir, f), 'utf8')), []))
      listeners.push([`${f}:${l.name ?? ''}`, l]);
  }
  assert.ok(listeners.length >= 15, `found ${listeners.length} golden listeners`);
  const factory = createNetworkFilterFactory({
    tcpProxy: { clusterManager: new FakeClusterManager(), stats: new FakeStats() },
    httpConnectionManager: () => () => {},
    transportSocket: () => (s) => s,
  });
  const manager = new ListenerManager({ networkFilters: factory, stats: new FakeStats() });
  for (const [where, l] of listeners) {
    assert.deepEqual(checkFilterChainMatches(l), [], where);
    const errors = manager.validate({ ...EMPTY_CONFIG, listeners: new Map([[l.name ?? '', l]]) });
    assert.deepEqual(errors, [], where);
  }
});
