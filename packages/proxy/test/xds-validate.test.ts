// Validation of received xDS resources: everything the control plane generates (the
// translate golden files) is accepted; fields and types outside the supported-fields table
// are rejected with their exact path; Envoy's semantic checks hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import {
  CONFIG_TYPE_URL,
  TYPE_URL,
  encodeResource,
  findMessageType,
  messageType,
  type Cluster,
  type Listener,
  type RouteConfiguration,
} from '@trellis/envoy';
import {
  SUPPORTED_FIELDS,
  checkListenerSet,
  compileRe2,
  decodeXdsResource,
  effectiveHttpFilters,
  jsonFieldName,
  protoNamesInProblem,
  translateRe2Substitution,
  unknownFields,
  validateResource,
  type FieldRule,
  type ProxyResourceTypeUrl,
} from '../src/xds/index.js';

const GOLDEN = new URL('../../../translate/test/golden/', import.meta.url);

type Json = Record<string, unknown>;

/** Finds the resources in a golden file, whatever its shape, as [type, resource, where]. */
function goldenResources(file: string): [ProxyResourceTypeUrl, Json, string][] {
  const out: [ProxyResourceTypeUrl, Json, string][] = [];
  const visit = (v: unknown, where: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, `${where}[${i}]`));
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const o = v as Json;
    if (file.startsWith('cluster-') && 'name' in o) out.push([TYPE_URL.Cluster, o, where]);
    else if ('clusterName' in o && 'endpoints' in o)
      out.push([TYPE_URL.ClusterLoadAssignment, o, where]);
    else if ('virtualHosts' in o) out.push([TYPE_URL.RouteConfiguration, o, where]);
    else if ('filterChains' in o || ('address' in o && 'name' in o))
      out.push([TYPE_URL.Listener, o, where]);
    else if ('domains' in o && 'routes' in o)
      out.push([TYPE_URL.RouteConfiguration, { name: 'golden', virtualHosts: [o] }, where]);
    else if ('match' in o)
      out.push([
        TYPE_URL.RouteConfiguration,
        { name: 'golden', virtualHosts: [{ name: 'vh', domains: ['*'], routes: [o] }] },
        where,
      ]);
    else for (const [k, x] of Object.entries(o)) visit(x, `${where}.${k}`);
  };
  visit(JSON.parse(readFileSync(new URL(file, GOLDEN), 'utf8')), file);
  return out;
}

test('every resource of every translate golden file is accepted', () => {
  const files = readdirSync(GOLDEN).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 40, `expected the golden files, found ${files.length}`);
  const counts = new Map<string, number>();
  const problems: string[] = [];
  for (const file of files) {
    const listenersOfFile = new Map<string, Listener[]>();
    for (const [type, resource, where] of goldenResources(file)) {
      counts.set(type, (counts.get(type) ?? 0) + 1);
      for (const p of validateResource(type, resource)) problems.push(`${where}: ${p}`);
      if (type === TYPE_URL.Listener) {
        // Listeners of one generated set (one array) must not share an address.
        const set = where.replace(/\[\d+\]$/, '');
        listenersOfFile.set(set, [...(listenersOfFile.get(set) ?? []), resource]);
      }
    }
    for (const [set, ls] of listenersOfFile)
      for (const p of checkListenerSet(ls)) problems.push(`${set}: ${p}`);
  }
  assert.deepEqual(problems, []);
  for (const t of [
    TYPE_URL.Listener,
    TYPE_URL.RouteConfiguration,
    TYPE_URL.Cluster,
    TYPE_URL.ClusterLoadAssignment,
  ])
    assert.ok((counts.get(t) ?? 0) > 0, `no golden ${t}`);
});

test('golden resources round-trip through the wire and validate with proto rules', (t) => {
  // What the proxy really does: decode bytes, check PGV rules, the table and semantics.
  let checked = 0;
  const problems: string[] = [];
  for (const file of readdirSync(GOLDEN).filter((f) => f.endsWith('.json'))) {
    for (const [type, resource, where] of goldenResources(file)) {
      let any;
      try {
        any = encodeResource(type, resource);
      } catch (e) {
        // Not the proxy's concern: the control plane could not send it either.
        t.diagnostic(`${where}: @trellis/envoy cannot encode it: ${String(e)}`);
        continue;
      }
      const r = decodeXdsResource(type, any, where);
      if (!r.ok) problems.push(...r.error);
      else checked++;
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 100, `only ${checked} resources round-tripped`);
});

test('the supported-fields table names real messages and fields only', () => {
  const problems: string[] = [];
  const rows = Object.keys(SUPPORTED_FIELDS);
  const checkRef = (where: string, rule: FieldRule): void => {
    if (typeof rule === 'string') {
      if (!(rule in SUPPORTED_FIELDS)) problems.push(`${where}: no row for ${rule}`);
    } else if (typeof rule === 'object' && 'map' in rule) {
      checkRef(where, rule.map);
    } else if (typeof rule === 'object' && 'any' in rule) {
      for (const t of rule.any)
        if (!(t in SUPPORTED_FIELDS)) problems.push(`${where}: no row for ${t}`);
    }
  };
  for (const name of rows) {
    const type = findMessageType(name);
    if (!type) {
      problems.push(`${name}: not a loaded message type`);
      continue;
    }
    const fields = new Set(type.fieldsArray.map((f) => jsonFieldName(f.name)));
    for (const [field, rule] of Object.entries(SUPPORTED_FIELDS[name] ?? {})) {
      if (!fields.has(jsonFieldName(field))) problems.push(`${name}.${field}: no such field`);
      checkRef(`${name}.${field}`, rule);
    }
  }
  assert.deepEqual(problems, []);
});

const HCM = CONFIG_TYPE_URL.HttpConnectionManager;

function listener(overrides: Partial<Listener> = {}, hcm: Json = {}): Listener {
  return {
    name: '0.0.0.0_9080',
    address: { socketAddress: { address: '0.0.0.0', portValue: 9080 } },
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typedConfig: {
              '@type': HCM,
              statPrefix: 'outbound_0.0.0.0_9080',
              rds: { configSource: { ads: {} }, routeConfigName: '9080' },
              httpFilters: [
                {
                  name: 'envoy.filters.http.router',
                  typedConfig: { '@type': CONFIG_TYPE_URL.Router },
                },
              ],
              ...hcm,
            } as Json as never,
          },
        ],
      },
    ],
    ...overrides,
  };
}

test('fields outside the table are rejected with their path', () => {
  assert.deepEqual(validateResource(TYPE_URL.Listener, listener()), []);
  assert.deepEqual(
    validateResource(
      TYPE_URL.Listener,
      listener({ transparent: true }, { tracing: { verbose: true }, skipXffAppend: true }),
    ),
    [
      'filter_chains[0].filters[0].typed_config.tracing: field HttpConnectionManager.tracing is not implemented by the Trellis proxy',
      'transparent: field Listener.transparent is not implemented by the Trellis proxy',
    ],
  );
  const cluster: Json = {
    name: 'outbound|9080||reviews.default.svc.cluster.local',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {} }, serviceName: 'x' },
    lbPolicy: 'LOAD_BALANCING_POLICY_CONFIG',
    healthChecks: [{ timeout: '1s' }],
    circuitBreakers: { thresholds: [{ maxRequests: 5, madeUp: 1 }] },
  };
  assert.deepEqual(validateResource(TYPE_URL.Cluster, cluster), [
    'lb_policy: LOAD_BALANCING_POLICY_CONFIG is not implemented by the Trellis proxy (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV, CLUSTER_PROVIDED)',
    'health_checks: field Cluster.health_checks is not implemented by the Trellis proxy',
    'circuit_breakers.thresholds[0].made_up: field CircuitBreakers.Thresholds.made_up is not implemented by the Trellis proxy',
  ]);
});

test('unknown typed configs: network filters, listener filters, HTTP filters unless optional', () => {
  const rbac = listener();
  const chain = rbac.filterChains?.[0];
  assert.ok(chain?.filters);
  chain.filters.unshift({
    name: 'envoy.filters.network.rbac',
    typedConfig: { '@type': CONFIG_TYPE_URL.NetworkRbac, statPrefix: 'x' } as never,
  });
  rbac.listenerFilters = [
    {
      name: 'envoy.filters.listener.proxy_protocol',
      typedConfig: { '@type': CONFIG_TYPE_URL.ProxyProtocol },
    },
  ];
  assert.deepEqual(validateResource(TYPE_URL.Listener, rbac), [
    'filter_chains[0].filters[0].typed_config: type type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC is not implemented by the Trellis proxy here (supported: HttpConnectionManager, TcpProxy)',
    'listener_filters[0].typed_config: type type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol is not implemented by the Trellis proxy here (supported: TlsInspector, HttpInspector, OriginalDst)',
  ]);

  const stats = {
    name: 'istio.stats',
    typedConfig: { '@type': CONFIG_TYPE_URL.TypedStruct, typeUrl: 'x' },
  };
  const router = {
    name: 'envoy.filters.http.router',
    typedConfig: { '@type': CONFIG_TYPE_URL.Router },
  };
  assert.deepEqual(
    validateResource(TYPE_URL.Listener, listener({}, { httpFilters: [stats, router] })),
    [
      'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config: type type.googleapis.com/udpa.type.v1.TypedStruct is not implemented by the Trellis proxy here (supported: Router, HTTPFault, Cors, FilterConfig, GrpcWeb); set is_optional to have it skipped',
    ],
  );
  const optional = listener({}, { httpFilters: [{ ...stats, isOptional: true }, router] });
  assert.deepEqual(validateResource(TYPE_URL.Listener, optional), []);
  const hcm = optional.filterChains?.[0]?.filters?.[0]?.typedConfig as never;
  assert.deepEqual(effectiveHttpFilters(hcm), [
    { index: 1, type: 'envoy.extensions.filters.http.router.v3.Router' },
  ]);
  // An unknown filter without typed_config, by name only.
  assert.deepEqual(
    validateResource(
      TYPE_URL.Listener,
      listener({}, { httpFilters: [{ name: 'istio.alpn' }, router] }),
    ),
    [
      'filter_chains[0].filters[0].typed_config.http_filters[0]: HTTP filter "istio.alpn" has no typed_config and is not one the Trellis proxy implements',
    ],
  );
});

test('semantic checks of listeners', () => {
  const router = { name: 'r', typedConfig: { '@type': CONFIG_TYPE_URL.Router } };
  const fault = { name: 'f', typedConfig: { '@type': CONFIG_TYPE_URL.HttpFault } };
  assert.deepEqual(
    validateResource(TYPE_URL.Listener, listener({}, { httpFilters: [router, fault] })),
    [
      'filter_chains[0].filters[0].typed_config.http_filters[0]: the router filter must be the last HTTP filter',
      'filter_chains[0].filters[0].typed_config.http_filters[1]: the last HTTP filter must be the router (envoy.filters.http.router)',
    ],
  );
  const l = listener();
  const chain = l.filterChains?.[0];
  assert.ok(chain);
  l.filterChains = [chain, { ...chain, name: 'second' }];
  l.address = { socketAddress: { address: 'localhost', portValue: 9080 } };
  assert.deepEqual(validateResource(TYPE_URL.Listener, l), [
    'address.socket_address.address: must be an IP address, not "localhost"',
    "filter_chains[1].filter_chain_match: is the same as filter_chains[0]'s: multiple filter chains with the same matching rules",
  ]);
  assert.deepEqual(validateResource(TYPE_URL.Listener, listener({ filterChains: [] })), [
    'filter_chains: a listener needs at least one filter chain or a default_filter_chain',
  ]);
  const tcp = listener({
    filterChains: [
      {
        filters: [
          {
            name: 'tcp',
            typedConfig: {
              '@type': CONFIG_TYPE_URL.TcpProxy,
              statPrefix: 's',
              cluster: 'c',
            } as never,
          },
        ],
        transportSocket: {
          name: 'tls',
          typedConfig: { '@type': CONFIG_TYPE_URL.UpstreamTlsContext },
        },
      },
    ],
  });
  assert.deepEqual(validateResource(TYPE_URL.Listener, tcp), [
    'filter_chains[0].transport_socket.typed_config: a downstream transport socket must be DownstreamTlsContext or RawBuffer, not UpstreamTlsContext',
  ]);
  const a = listener({ name: 'a' });
  const b = listener({ name: 'b' });
  assert.deepEqual(checkListenerSet([a, b]), [
    'listener "b": address 0.0.0.0:9080 is also used by listener "a"',
  ]);
});

test('semantic checks of routes: clusters, regexes, domains, bodies', () => {
  const rc: RouteConfiguration = {
    name: '9080',
    virtualHosts: [
      {
        name: 'a',
        domains: ['reviews', 'rev*ews'],
        routes: [
          { match: { safeRegex: { regex: '/(?=x)api' } }, route: { cluster: 'c' } },
          { match: { prefix: '/' }, route: { timeout: '1s' } },
          {
            match: { prefix: '/r' },
            route: {
              cluster: 'c',
              regexRewrite: { pattern: { regex: 'a(b' }, substitution: '\\1' },
            },
          },
          {
            match: { prefix: '/w' },
            route: { weightedClusters: { clusters: [{ name: 'x', weight: 0 }] } },
          },
          {
            match: { prefix: '/x' },
            route: { cluster: 'c', retryPolicy: { retryOn: '5xx,bogus' } },
          },
          {
            match: { prefix: '/d' },
            directResponse: { status: 200, body: { inlineString: 'x'.repeat(5000) } },
          },
        ],
      },
      { name: 'b', domains: ['REVIEWS'], routes: [] },
    ],
  };
  assert.deepEqual(validateResource(TYPE_URL.RouteConfiguration, rc), [
    'virtual_hosts[0].routes[0].match.safe_regex.regex: lookaround assertions are not supported by RE2',
    'virtual_hosts[0].routes[2].route.regex_rewrite.pattern.regex: invalid regular expression "a(b": Unterminated group',
    'virtual_hosts[0].domains[1]: invalid domain "rev*ews": a wildcard may only start or end it',
    'virtual_hosts[0].routes[1].route: references no cluster (set cluster, cluster_header or weighted_clusters)',
    'virtual_hosts[0].routes[3].route.weighted_clusters.clusters: weights add up to 0',
    'virtual_hosts[0].routes[4].route.retry_policy.retry_on: unknown retry condition "bogus"',
    'virtual_hosts[0].routes[5].direct_response.body: is 5000 bytes; the maximum is 4096',
    'virtual_hosts[1].domains[0]: duplicate domain "REVIEWS" (also in virtual host "a")',
  ]);
});

test('semantic checks of clusters and load assignments', () => {
  const c: Cluster = {
    name: 'PassthroughCluster',
    type: 'ORIGINAL_DST',
    lbPolicy: 'ROUND_ROBIN',
    maglevLbConfig: { tableSize: '65536' },
    typedExtensionProtocolOptions: {
      'envoy.filters.network.http_connection_manager': {
        '@type': CONFIG_TYPE_URL.HttpProtocolOptions,
        explicitHttpConfig: { http2ProtocolOptions: {} },
      } as never,
    },
  };
  assert.deepEqual(validateResource(TYPE_URL.Cluster, c), [
    'lb_policy: must be CLUSTER_PROVIDED for an ORIGINAL_DST cluster, not ROUND_ROBIN',
    'maglev_lb_config.table_size: must be a prime number, not 65536',
    'typed_extension_protocol_options["envoy.filters.network.http_connection_manager"]: unknown protocol options "envoy.filters.network.http_connection_manager" (the proxy reads only envoy.extensions.upstreams.http.v3.HttpProtocolOptions)',
  ]);
  assert.deepEqual(
    validateResource(TYPE_URL.Cluster, {
      name: 'e',
      type: 'EDS',
      edsClusterConfig: { serviceName: 'e' },
    }),
    ['eds_cluster_config.eds_config: must be ads: the proxy fetches endpoints only over ADS'],
  );
  assert.deepEqual(
    validateResource(TYPE_URL.ClusterLoadAssignment, {
      clusterName: 'e',
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 80 } } } },
            { endpoint: { address: { socketAddress: { address: '10.0.0.2' } } } },
            {},
          ],
        },
      ],
    }),
    [
      'endpoints[0].lb_endpoints[1].endpoint.address.socket_address.port_value: is required',
      'endpoints[0].lb_endpoints[2].endpoint: is required',
    ],
  );
});

test('decoding: wrong type, undecodable bytes, proto rules with proto field names', () => {
  const any = encodeResource(TYPE_URL.Listener, listener());
  const ok = decodeXdsResource(TYPE_URL.Listener, any, 'resources[0]');
  assert.ok(ok.ok);
  assert.equal(ok.value.name, '0.0.0.0_9080');

  const wrong = decodeXdsResource(TYPE_URL.Cluster, any, 'resources[3]');
  assert.deepEqual(!wrong.ok && wrong.error, [
    'resources[3]: has type "type.googleapis.com/envoy.config.listener.v3.Listener" in a response of type "type.googleapis.com/envoy.config.cluster.v3.Cluster"',
  ]);

  const garbage = decodeXdsResource(
    TYPE_URL.Cluster,
    { typeUrl: TYPE_URL.Cluster, value: new Uint8Array([0x0a, 0x05, 0x61]) },
    'resources[1]',
  );
  assert.equal(garbage.ok, false);
  assert.match(
    !garbage.ok ? (garbage.error[0] ?? '') : '',
    /^resources\[1\]: cannot decode cluster: /,
  );

  // Bytes the strict encoder would refuse: a negative connect timeout (PGV: must be > 0).
  const T = messageType('envoy.config.cluster.v3.Cluster');
  const bytes = T.encode(T.fromObject({ name: 'c', connectTimeout: { seconds: -5 } })).finish();
  const pgv = decodeXdsResource(
    TYPE_URL.Cluster,
    { typeUrl: TYPE_URL.Cluster, value: bytes },
    'resources[0]',
  );
  assert.deepEqual(!pgv.ok && pgv.error, ['cluster "c": connect_timeout: must be longer than 0s']);
  const lax = decodeXdsResource(
    TYPE_URL.Cluster,
    { typeUrl: TYPE_URL.Cluster, value: bytes },
    'resources[0]',
    { protoRules: false },
  );
  assert.ok(lax.ok);

  assert.equal(
    protoNamesInProblem(
      'filterChains[0].filters[0].typedConfig.statPrefix: must be at least 1 character long',
    ),
    'filter_chains[0].filters[0].typed_config.stat_prefix: must be at least 1 character long',
  );
  assert.equal(
    protoNamesInProblem('typedExtensionProtocolOptions["a.b.C"].commonHttpProtocolOptions: x'),
    'typed_extension_protocol_options["a.b.C"].common_http_protocol_options: x',
  );
});

test('RE2 patterns: translated, anchored, and RE2-only limits enforced', () => {
  const re = (p: string): RegExp => {
    const r = compileRe2(p);
    assert.ok(r.ok, r.ok ? '' : r.error);
    return r.value;
  };
  assert.ok(re('/api/v[0-9]+').test('/api/v2'));
  assert.equal(re('/api/v[0-9]+').test('/api/v2/x'), false, 'safe_regex matches the whole value');
  assert.ok(re('(?i)/Reviews/.*').test('/reviews/1'));
  assert.equal(re('(?P<id>[0-9]+)').exec('42')?.groups?.id, '42');
  assert.ok(re('\\A/a\\z').test('/a'));
  assert.ok(re('[[:digit:]]+x').test('12x'));
  assert.ok(re('\\Q.*\\E').test('.*'));
  assert.equal(re('\\Q.*\\E').test('ab'), false);
  assert.ok(re('\\pL+').test('héllo'));
  assert.ok(compileRe2('a{2,1000}').ok);
  // Flag groups anywhere, scoped or to the end of their group, and (?U).
  const matches = (p: string, yes: string[], no: string[]): void => {
    for (const v of yes) assert.ok(re(p).test(v), `${p} should match ${JSON.stringify(v)}`);
    for (const v of no) assert.ok(!re(p).test(v), `${p} should not match ${JSON.stringify(v)}`);
  };
  matches('a(?i)b', ['ab', 'aB'], ['Ab']);
  matches('(?i:/scoped)x', ['/SCOPEDx', '/scopedx'], ['/scopedX']);
  matches('x(?i:a|b.c)', ['xA', 'xB-C'], ['xC', 'x|']);
  matches('(?i)a(?-i)b', ['Ab', 'ab'], ['AB']);
  matches('(a(?i)b)c', ['aBc'], ['aBC']);
  matches('x(?i)[a-c]+', ['xAbC', 'xabc'], ['XABC', 'xabd']);
  matches('(?s:.)', ['\n'], []);
  matches('.', ['x'], ['\n']);
  matches('[[:^digit:]]+', ['abc'], ['a1']);
  matches('[^a[:^digit:]]', ['5'], ['a', 'x']);
  matches('\\C\\C', ['xy'], ['x']);
  const lazy = (p: string, v: string): string | undefined => {
    const r = compileRe2(p, { anchored: false });
    assert.ok(r.ok, r.ok ? '' : r.error);
    return r.value.exec(v)?.[0];
  };
  assert.equal(lazy('(?U)a+', 'aaa'), 'a', '(?U): greedy becomes lazy');
  assert.equal(lazy('(?U)a+?', 'aaa'), 'aaa', '(?U): lazy becomes greedy');
  assert.equal(lazy('(?m)^b$', 'a\nb\nc'), 'b');
  assert.equal(lazy('b$', 'a\nb\nc'), undefined);
  for (const [p, why] of [
    ['(a)\\1', 'backreference \\1 is not supported by RE2'],
    ['a(?=b)', 'lookaround assertions are not supported by RE2'],
    ['a(?<!b)', 'lookaround assertions are not supported by RE2'],
    ['a{1001}', 'bad repetition operator {1001}: RE2 allows counts up to 1000'],
    ['[a', 'missing closing ]'],
    ['a(?x)b', 'invalid or unsupported group (?x)'],
  ] as const) {
    const r = compileRe2(p);
    assert.deepEqual(r, { ok: false, error: why }, p);
  }
  const unanchored = compileRe2('/v1/', { anchored: false, global: true });
  assert.ok(unanchored.ok);
  const sub = translateRe2Substitution('/v2/\\1-\\0$');
  assert.deepEqual(sub, { ok: true, value: '/v2/$1-$&$$' });
  assert.equal(translateRe2Substitution('\\x').ok, false);
  assert.equal('/v1/x'.replace(/\/v(1)\//, sub.ok ? sub.value : ''), '/v2/1-/v1/$x');
});

/** A length-delimited protobuf field. */
function ld(field: number, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n > 127) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  return Buffer.concat([
    Buffer.from(varint((field << 3) | 2)),
    Buffer.from(varint(body.length)),
    body,
  ]);
}

test('field numbers unknown to the protos are found in the bytes, nested in Anys too', () => {
  const UNKNOWN_999 = Buffer.from([0xb8, 0x3e, 0x01]); // field 999, varint 1
  const hcm = encodeResource(HCM, {
    statPrefix: 's',
    rds: { configSource: { ads: {} }, routeConfigName: '80' },
    httpFilters: [{ name: 'r', typedConfig: { '@type': CONFIG_TYPE_URL.Router } }],
  });
  const head = encodeResource(TYPE_URL.Listener, {
    name: 'l',
    address: { socketAddress: { address: '0.0.0.0', portValue: 80 } },
  }).value;
  // Listener.filter_chains = 3, FilterChain.filters = 3, Filter.name = 1, Filter.typed_config = 4.
  const filter = Buffer.concat([
    ld(1, 'hcm'),
    ld(4, Buffer.concat([ld(1, HCM), ld(2, Buffer.concat([hcm.value, UNKNOWN_999]))])),
  ]);
  const bytes = Buffer.concat([head, ld(3, ld(3, filter)), UNKNOWN_999]);
  assert.deepEqual(unknownFields('envoy.config.listener.v3.Listener', bytes), [
    'filter_chains[0].filters[0].typed_config: field number 999 of HttpConnectionManager is unknown to the Trellis proxy',
    'field number 999 of Listener is unknown to the Trellis proxy',
  ]);
  const r = decodeXdsResource(
    TYPE_URL.Listener,
    { typeUrl: TYPE_URL.Listener, value: bytes },
    'resources[0]',
  );
  assert.deepEqual(!r.ok && r.error, [
    'listener "l": filter_chains[0].filters[0].typed_config: field number 999 of HttpConnectionManager is unknown to the Trellis proxy',
    'listener "l": field number 999 of Listener is unknown to the Trellis proxy',
  ]);
  // Without the unknown fields the same listener is fine.
  const clean = Buffer.concat([
    head,
    ld(
      3,
      ld(3, Buffer.concat([ld(1, 'hcm'), ld(4, Buffer.concat([ld(1, HCM), ld(2, hcm.value)]))])),
    ),
  ]);
  assert.deepEqual(unknownFields('envoy.config.listener.v3.Listener', clean), []);
  assert.ok(
    decodeXdsResource(TYPE_URL.Listener, { typeUrl: TYPE_URL.Listener, value: clean }, 'r').ok,
  );
});

/** A route configuration of one catch-all route to cluster `c`, with `route` merged in. */
function oneRoute(route: Record<string, unknown>): object {
  return {
    name: 'r',
    virtualHosts: [
      {
        name: 'v',
        domains: ['*'],
        routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, ...route }],
      },
    ],
  };
}

test('retry_priority: previous_priorities (Istio retryRemoteLocalities) with update_frequency > 0', () => {
  // What the translator writes for retries.retryRemoteLocalities: true.
  const rc = (updateFrequency: number): object =>
    oneRoute({
      route: {
        cluster: 'c',
        retryPolicy: {
          retryOn: '5xx',
          retryPriority: {
            name: 'envoy.retry_priorities.previous_priorities',
            typedConfig: {
              '@type':
                'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
              updateFrequency,
            },
          },
        },
      },
    });
  assert.deepEqual(validateResource(TYPE_URL.RouteConfiguration, rc(2)), []);
  const problems = validateResource(TYPE_URL.RouteConfiguration, rc(0));
  assert.ok(problems.length >= 1, 'update_frequency 0 is refused');
  assert.ok(
    problems.some((p) =>
      p.includes('virtual_hosts[0].routes[0].route.retry_policy.retry_priority'),
    ),
    problems.join('\n'),
  );
});

test('header values: Envoy format strings are accepted; unknown operators and a lone % are refused', () => {
  const rc = (value: string): object =>
    oneRoute({ requestHeadersToAdd: [{ header: { key: 'x-client', value } }] });
  for (const ok of [
    '100%% sure',
    '%DOWNSTREAM_REMOTE_ADDRESS%',
    'ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%; t=%START_TIME(%s.%3f)%',
    '%REQ(x-b3-traceid?x-request-id)%',
    '%UPSTREAM_METADATA(["istio", "workload"])%',
    '%PER_REQUEST_STATE(io.example.name)%',
  ])
    assert.deepEqual(validateResource(TYPE_URL.RouteConfiguration, rc(ok)), [], ok);
  const at =
    'virtual_hosts\\[0\\]\\.routes\\[0\\]\\.request_headers_to_add\\[0\\]\\.header\\.value: ';
  for (const [bad, why] of [
    ['%NOT_AN_OPERATOR%', 'Not supported field in StreamInfo: NOT_AN_OPERATOR'],
    ['50% off', 'no command operator at position 2 \\(a literal percent sign is written %%\\)'],
    ['%UPSTREAM_METADATA(["istio"])%', 'UPSTREAM_METADATA requires a namespace and a key'],
    ['%REQ%', 'REQ requires a header name'],
  ] as const) {
    const problems = validateResource(TYPE_URL.RouteConfiguration, rc(bad));
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', new RegExp(at + '.*' + why), bad);
  }
});
