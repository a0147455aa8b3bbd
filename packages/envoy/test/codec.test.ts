import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONFIG_TYPE_URL,
  TYPE_URL,
  XdsCodecError,
  decodeResource,
  encodeAny,
  encodeResource,
  findMessageType,
  messageType,
  protoLoadStats,
  toAny,
  tryDecodeResource,
  verifyResource,
} from '../src/index.js';
import { cluster, listener, loadAssignment, routeConfig, secret, tcpListener } from './fixtures.js';

test('the shared root loads every resource and config type', () => {
  const stats = protoLoadStats();
  assert.ok(stats.files > 50, `files: ${stats.files}`);
  assert.ok(stats.millis > 0);
  for (const url of [...Object.values(TYPE_URL), ...Object.values(CONFIG_TYPE_URL)]) {
    assert.ok(findMessageType(url.slice(url.lastIndexOf('/') + 1)), url);
  }
  assert.ok(messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest'));
  assert.equal(findMessageType('envoy.nope.v3.Nothing'), undefined);
});

const cases: [string, string, object][] = [
  ['listener (HTTP, TLS, listener filters)', TYPE_URL.Listener, listener],
  ['listener (TCP proxy, weighted)', TYPE_URL.Listener, tcpListener],
  ['route configuration', TYPE_URL.RouteConfiguration, routeConfig],
  ['cluster', TYPE_URL.Cluster, cluster],
  ['cluster load assignment', TYPE_URL.ClusterLoadAssignment, loadAssignment],
  ['secret', TYPE_URL.Secret, secret],
];

for (const [name, typeUrl, obj] of cases) {
  test(`round trip: ${name}`, () => {
    assert.deepEqual(verifyResource(typeUrl, obj), { errors: [], warnings: [] });
    const any = encodeResource(typeUrl, obj);
    assert.equal(any.typeUrl, typeUrl);
    const back = decodeResource(any);
    assert.deepEqual(back, { '@type': typeUrl, ...obj });
    // Decoding again after re-encoding the decoded form gives the same bytes.
    assert.deepEqual(encodeAny(back).value, any.value);
  });
}

test('encoding is deterministic: key order and map order do not matter', () => {
  const a = encodeResource(TYPE_URL.Cluster, cluster);
  const b = encodeResource(TYPE_URL.Cluster, cluster);
  assert.deepEqual(a.value, b.value);
  const reordered = Object.fromEntries(Object.entries(cluster).reverse());
  reordered.metadata = {
    filterMetadata: {
      istio: { subset: 'v2', services: cluster.metadata?.filterMetadata?.istio?.services },
    },
  };
  assert.deepEqual(encodeResource(TYPE_URL.Cluster, reordered).value, a.value);
});

test('default scalar values are omitted, wrapper values are kept', () => {
  const withDefaults = {
    name: 'c',
    altStatName: '',
    respectDnsTtl: false,
    lbPolicy: 'ROUND_ROBIN',
  };
  assert.deepEqual(
    encodeResource(TYPE_URL.Cluster, withDefaults).value,
    encodeResource(TYPE_URL.Cluster, { name: 'c' }).value,
  );
  const back = decodeResource(
    encodeResource(TYPE_URL.Cluster, { name: 'c', perConnectionBufferLimitBytes: 0 }),
  );
  assert.deepEqual(back, {
    '@type': TYPE_URL.Cluster,
    name: 'c',
    perConnectionBufferLimitBytes: 0,
  });
});

test('durations, 64-bit integers and bytes use proto3 JSON forms', () => {
  const back = decodeResource(
    encodeResource(TYPE_URL.Cluster, {
      name: 'c',
      connectTimeout: '1.500s',
      ringHashLbConfig: { minimumRingSize: 2048 },
    }),
  );
  assert.equal(back.connectTimeout, '1.5s');
  assert.deepEqual(back.ringHashLbConfig, { minimumRingSize: '2048' });
});

function setAt(root: unknown, path: readonly (string | number)[], value: unknown): void {
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path[path.length - 1] as string | number] = value;
}

test('the strict check reports every problem with its path', () => {
  const bad: unknown = structuredClone(listener);
  const hcmPath = ['filterChains', 0, 'filters', 0, 'typedConfig'];
  setAt(bad, [...hcmPath, 'routeConfig2'], {});
  setAt(bad, [...hcmPath, 'stat_prefix'], 'x');
  setAt(bad, [...hcmPath, 'httpFilters', 2, 'name'], '');
  setAt(bad, [...hcmPath, 'codecType'], 'HTTP9');
  setAt(bad, ['address', 'socketAddress', 'portValue'], '80');
  setAt(bad, ['bindToPort'], 'no');
  setAt(bad, ['listenerFiltersTimeout'], '5 seconds');
  setAt(bad, ['filterChains', 0, 'filterChainMatch', 'serverNames'], 'reviews');
  setAt(bad, ['metadata', 'filterMetadata', 'istio.io'], 5);
  const { errors } = verifyResource(TYPE_URL.Listener, bad);
  assert.deepEqual([...errors].sort(), [
    'address.socketAddress.portValue: must be an integer, not "80"',
    'bindToPort: must be a boolean, not "no"',
    'filterChains[0].filterChainMatch.serverNames: must be an array, not "reviews"',
    'filterChains[0].filters[0].typedConfig.codecType: unknown CodecType value "HTTP9": AUTO, HTTP1, HTTP2, HTTP3',
    'filterChains[0].filters[0].typedConfig.httpFilters[2].name: must be at least 1 character long, not 0',
    'filterChains[0].filters[0].typedConfig.routeConfig2: unknown field',
    'filterChains[0].filters[0].typedConfig.stat_prefix: unknown field (the JSON name is statPrefix)',
    'listenerFiltersTimeout: must be a duration such as "1.5s", not "5 seconds"',
    'metadata.filterMetadata["istio.io"]: must be an object, not number 5',
  ]);
  assert.throws(
    () => encodeResource(TYPE_URL.Listener, bad),
    (e: unknown) =>
      e instanceof XdsCodecError && e.code === 'TRELLIS_XDS_ENCODE' && e.problems.length === 9,
  );
});

test('the strict check applies Envoy validation rules and oneofs', () => {
  const { errors } = verifyResource(TYPE_URL.RouteConfiguration, {
    name: 'r',
    virtualHosts: [
      {
        name: 'v',
        domains: ['*'],
        routes: [
          { match: {}, route: { cluster: 'a' } },
          { match: { prefix: '/', path: '/x' }, route: { cluster: 'a', clusterHeader: 'x-c' } },
          { match: { prefix: '/' } },
          {
            match: {
              prefix: '/',
              headers: [{ name: 'bad header\n', stringMatch: { exact: 'x' } }],
            },
            route: { cluster: '', retryPolicy: { numRetries: -1 } },
          },
        ],
      },
      { name: '', domains: [] },
    ],
  });
  assert.deepEqual([...errors].sort(), [
    'virtualHosts[0].routes[0].match: one of prefix, path, safeRegex, connectMatcher, pathSeparatedPrefix, pathMatchPolicy is required',
    'virtualHosts[0].routes[1].match.path: cannot be set together with prefix (only one field of pathSpecifier may be set)',
    'virtualHosts[0].routes[1].route.clusterHeader: cannot be set together with cluster (only one field of clusterSpecifier may be set)',
    'virtualHosts[0].routes[2]: one of route, redirect, directResponse, filterAction, nonForwardingAction is required',
    'virtualHosts[0].routes[3].match.headers[0].name: must be a valid HTTP header name, not "bad header\\n"',
    'virtualHosts[0].routes[3].route.cluster: must be at least 1 character long, not 0',
    'virtualHosts[0].routes[3].route.retryPolicy.numRetries: must be an integer between 0 and 4294967295, not -1',
    'virtualHosts[1].domains: must have at least 1 item, not 0',
    'virtualHosts[1].name: must be at least 1 character long, not 0',
  ]);
  const c = verifyResource(TYPE_URL.Cluster, {
    name: 'c',
    connectTimeout: '0s',
    edsClusterConfig: { edsConfig: {} },
  });
  assert.deepEqual([...c.errors].sort(), [
    'connectTimeout: must be longer than 0s',
    'edsClusterConfig.edsConfig: one of path, pathConfigSource, apiConfigSource, ads, self is required',
  ]);
});

test('nested Anys must name a loaded type', () => {
  const { errors } = verifyResource(TYPE_URL.Listener, {
    name: 'l',
    filterChains: [
      {
        filters: [
          { name: 'a', typedConfig: { '@type': 'type.googleapis.com/istio.nope.Filter', x: 1 } },
          { name: 'b', typedConfig: { x: 1 } },
        ],
      },
    ],
  });
  assert.deepEqual(errors, [
    'filterChains[0].filters[0].typedConfig.@type: unknown type "type.googleapis.com/istio.nope.Filter"',
    'filterChains[0].filters[1].typedConfig.@type: is required',
  ]);
});

test('deprecated fields are warnings', () => {
  const r = verifyResource(TYPE_URL.RouteConfiguration, {
    name: 'r',
    virtualHosts: [
      {
        name: 'v',
        domains: ['*'],
        routes: [{ match: { prefix: '/' }, route: { cluster: 'c', weightedClusters: undefined } }],
        requestHeadersToAdd: [{ header: { key: 'a', value: 'b' }, append: true }],
      },
    ],
  });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, ['virtualHosts[0].requestHeadersToAdd[0].append: deprecated field']);
});

test('well-known types inside an Any use the value form', () => {
  const any = encodeResource(TYPE_URL.Listener, {
    name: 'l',
    metadata: {
      typedFilterMetadata: {
        x: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '2s' },
      },
    },
  });
  assert.deepEqual(decodeResource(any).metadata, {
    typedFilterMetadata: {
      x: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '2s' },
    },
  });
});

test('decoding reports unreadable nested types and malformed bytes', () => {
  const L = messageType('envoy.config.listener.v3.Listener');
  const bytes = L.encode({
    name: 'l',
    filterChains: [
      {
        filters: [
          {
            name: 'f',
            typedConfig: {
              type_url: 'type.googleapis.com/acme.Unknown',
              value: new Uint8Array([8, 1]),
            },
          },
        ],
      },
    ],
  }).finish();
  const r = tryDecodeResource({ typeUrl: TYPE_URL.Listener, value: bytes });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error.code, 'TRELLIS_XDS_DECODE');
    assert.deepEqual(r.error.problems, [
      'filterChains[0].filters[0].typedConfig: cannot read type "type.googleapis.com/acme.Unknown"',
    ]);
  }
  const garbage = tryDecodeResource({
    typeUrl: TYPE_URL.Cluster,
    value: new Uint8Array([0x0a, 0xff, 0xff, 0xff]),
  });
  assert.equal(garbage.ok, false);
  const unknown = tryDecodeResource({
    typeUrl: 'type.googleapis.com/acme.Thing',
    value: new Uint8Array(),
  });
  assert.equal(unknown.ok, false);
});

test('decode with verify rejects what Envoy would reject', () => {
  const C = messageType('envoy.config.cluster.v3.Cluster');
  const bytes = C.encode({ name: '' }).finish();
  assert.throws(
    () => decodeResource({ typeUrl: TYPE_URL.Cluster, value: bytes }, { verify: true }),
    /name: must be at least 1 character/,
  );
});

test('toAny and encodeAny', () => {
  const a = encodeAny(toAny(TYPE_URL.Cluster, { name: 'x' }));
  assert.deepEqual(a, encodeResource(TYPE_URL.Cluster, { name: 'x' }));
});

test('ignore_empty: an empty value skips the field rules, a set one is checked', () => {
  const withHeader = (h: string) =>
    verifyResource(TYPE_URL.Cluster, {
      ...cluster,
      upstreamHttpProtocolOptions: { autoSni: true, overrideAutoSniHeader: h },
    });
  assert.deepEqual(withHeader('').errors, []);
  assert.deepEqual(withHeader(':authority').errors, []);
  assert.match(withHeader('bad\nheader').errors.join('\n'), /valid HTTP header name/);
});
