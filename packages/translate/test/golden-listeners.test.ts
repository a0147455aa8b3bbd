// Golden tests of sidecar listeners, one feature per golden (test/golden/listener-*.json), plus
// simulations that check the behaviour each listener must have.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generate, simulate } from '../src/index.js';
import { assertGolden, assertValidEnvoy, pick, world } from './fixtures.js';

const HTTPBIN = `
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin, version: v1}}
    spec:
      serviceAccountName: httpbin
      containers: [{name: httpbin, image: httpbin, ports: [{containerPort: 80}]}]
`;

const TCP_ECHO = `
apiVersion: v1
kind: Service
metadata: {name: tcp-echo}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}, {name: tcp-other, port: 9001}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tcp-echo-v1}
spec:
  selector: {matchLabels: {app: tcp-echo, version: v1}}
  template:
    metadata: {labels: {app: tcp-echo, version: v1}}
    spec: {containers: [{name: tcp-echo, image: tcp-echo}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tcp-echo-v2}
spec:
  selector: {matchLabels: {app: tcp-echo, version: v2}}
  template:
    metadata: {labels: {app: tcp-echo, version: v2}}
    spec: {containers: [{name: tcp-echo, image: tcp-echo}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tcp-echo}
spec:
  host: tcp-echo
  trafficPolicy:
    connectionPool: {tcp: {idleTimeout: 1h}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

describe('golden: sidecar outbound listeners', () => {
  test('HTTP port: 0.0.0.0_PORT with RDS by port and a passthrough default chain', () => {
    const w = world(HTTPBIN);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    assertGolden('listener-outbound-http', pick(res, { listeners: ['0.0.0.0_8000'] }));
    const r = simulate(res, { port: 8000, host: 'httpbin.default:8000', protocol: 'http' });
    assert.equal(r.listener, '0.0.0.0_8000');
    assert.equal(r.cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
    const tcp = simulate(res, { port: 8000, address: '192.0.2.7', protocol: 'tcp' });
    assert.equal(tcp.filterChain, 'PassthroughFilterChain');
    assert.equal(tcp.cluster, 'PassthroughCluster');
  });

  test('TCP port: VIP_PORT with tcp_proxy; VirtualService tcp routes split by weight', () => {
    const w = world(`${TCP_ECHO}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{port: 9000}]
    route:
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v1}, weight: 80}
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v2}, weight: 20}`);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    const vip = res.listeners.find((l) => l.name?.endsWith('_9000'))?.address?.socketAddress
      ?.address;
    assert.ok(vip);
    assertGolden('listener-outbound-tcp', pick(res, { listeners: [`${vip}_9000`, `${vip}_9001`] }));
    const r = simulate(res, { port: 9000, address: vip, protocol: 'tcp' });
    assert.equal(r.outcome, 'tcp');
    assert.deepEqual(
      r.clusters.map((c) => [c.name, c.weight, c.endpoints.length]),
      [
        ['outbound|9000|v1|tcp-echo.default.svc.cluster.local', 80, 1],
        ['outbound|9000|v2|tcp-echo.default.svc.cluster.local', 20, 1],
      ],
    );
    const other = simulate(res, { port: 9001, address: vip, protocol: 'tcp' });
    assert.equal(other.cluster, 'outbound|9001||tcp-echo.default.svc.cluster.local');
  });

  test('TLS routes: filter chains by SNI (ServiceEntry without addresses)', () => {
    const w = world(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cdn}
spec:
  hosts: ["*.cdn.example.com"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: egress-gateway-target}
spec:
  hosts: [egress.internal]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  tls:
  - match: [{sniHosts: [api.example.com], port: 443}]
    route:
    - destination: {host: egress.internal, port: {number: 443}}`);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    assertGolden('listener-outbound-tls-sni', pick(res, { listeners: ['0.0.0.0_443'] }));
    const api = simulate(res, {
      port: 443,
      address: '203.0.113.9',
      sni: 'api.example.com',
      protocol: 'tls',
    });
    assert.equal(api.cluster, 'outbound|443||egress.internal');
    const cdn = simulate(res, {
      port: 443,
      address: '203.0.113.9',
      sni: 'img.cdn.example.com',
      protocol: 'tls',
    });
    assert.equal(cdn.cluster, 'outbound|443||*.cdn.example.com');
    const unknown = simulate(res, {
      port: 443,
      address: '203.0.113.9',
      sni: 'other.org',
      protocol: 'tls',
    });
    assert.equal(unknown.filterChain, 'PassthroughFilterChain');
  });

  test('a port without protocol is sniffed: TCP and HTTP chains, RDS `HOST:PORT`', () => {
    const w = world(`
apiVersion: v1
kind: Service
metadata: {name: legacy}
spec:
  selector: {app: legacy}
  ports: [{port: 7070}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy}
spec:
  selector: {matchLabels: {app: legacy}}
  template:
    metadata: {labels: {app: legacy}}
    spec: {containers: [{name: legacy, image: legacy}]}`);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    const l = res.listeners.find((x) => x.name?.endsWith('_7070'));
    assert.ok(l?.name);
    const rcName = 'legacy.default.svc.cluster.local:7070';
    assertGolden('listener-outbound-sniffed', pick(res, { listeners: [l.name], routes: [rcName] }));
    const vip = l.address?.socketAddress?.address ?? '';
    const http = simulate(res, { port: 7070, address: vip, host: 'anything', protocol: 'http' });
    assert.equal(http.routeConfig, rcName);
    assert.equal(http.cluster, 'outbound|7070||legacy.default.svc.cluster.local');
    const tcp = simulate(res, { port: 7070, address: vip, protocol: 'tcp' });
    assert.equal(tcp.outcome, 'tcp');
    assert.equal(tcp.cluster, 'outbound|7070||legacy.default.svc.cluster.local');
  });

  test('headless TCP service: a listener per endpoint address', () => {
    const w = world(`
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tcp-db, port: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}`);
    const res = generate(w.snapshot, w.proxy());
    assertValidEnvoy(res);
    const names = res.listeners.map((l) => l.name).filter((n) => n?.endsWith('_5432'));
    assert.deepEqual(names, ['10.1.0.2_5432', '10.1.0.3_5432']);
    assertGolden('listener-outbound-headless', pick(res, { listeners: ['10.1.0.2_5432'] }));
  });

  test('virtualOutbound under ALLOW_ANY and REGISTRY_ONLY', () => {
    const w = world(HTTPBIN);
    const allow = generate(w.snapshot, w.proxy());
    assertValidEnvoy(allow);
    const registryOnly = generate(w.snapshot, w.proxy(), {
      mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' },
    });
    assertValidEnvoy(registryOnly);
    assertGolden('listener-virtual-outbound', {
      allowAny: pick(allow, { listeners: ['virtualOutbound'] }).listeners,
      registryOnly: pick(registryOnly, { listeners: ['virtualOutbound'] }).listeners,
      registryOnlyCatchAllVirtualHost: registryOnly.routes
        .find((r) => r.name === '8000')
        ?.virtualHosts?.at(-1),
    });
    const blocked = simulate(registryOnly, { port: 8000, host: 'example.com', protocol: 'http' });
    assert.equal(blocked.virtualHost, 'block_all');
    assert.equal(blocked.outcome, 'direct-response');
    assert.equal(blocked.directResponse?.status, 502);
    const tcp = simulate(registryOnly, { port: 5432, address: '192.0.2.1', protocol: 'tcp' });
    assert.equal(tcp.cluster, 'BlackHoleCluster');
    const self = simulate(allow, { port: 15001, address: '10.1.0.1', protocol: 'tcp' });
    assert.equal(self.filterChain, 'virtualOutbound-blackhole');
  });

  test('explicit HTTP proxy listener (local mode) and its http_proxy route config', () => {
    const w = world(HTTPBIN);
    const res = generate(
      w.snapshot,
      w.proxy('sleep-0', 'default', {
        metadata: { HTTP_PROXY_PORT: '15080', INTERCEPTION_MODE: 'NONE' },
      }),
    );
    assertValidEnvoy(res);
    // No capture: outbound ports bind 127.0.0.1 (as Istio does), no virtual listeners.
    assert.deepEqual(res.listeners.map((l) => l.name).sort(), [
      '127.0.0.1_15080',
      '127.0.0.1_80',
      '127.0.0.1_8000',
    ]);
    assertGolden(
      'listener-http-proxy',
      pick(res, { listeners: ['127.0.0.1_15080'], routes: ['http_proxy'] }),
    );
    const r = simulate(res, {
      port: 15080,
      host: 'httpbin.default:8000',
      protocol: 'http',
      direction: 'direct',
    });
    assert.equal(r.routeConfig, 'http_proxy');
    assert.equal(r.cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
  });
});

describe('golden: sidecar inbound listeners', () => {
  test('virtualInbound: passthrough chains and one chain per workload port', () => {
    const w = world(HTTPBIN);
    const res = generate(w.snapshot, w.proxy('httpbin-0'));
    assertValidEnvoy(res);
    assertGolden('listener-inbound', pick(res, { listeners: ['virtualInbound'] }));
    const r = simulate(res, {
      port: 80,
      host: 'httpbin:8000',
      protocol: 'http',
      direction: 'inbound',
    });
    assert.equal(r.filterChain, '0.0.0.0_80');
    assert.equal(r.routeConfig, 'inbound|80||');
    assert.equal(r.cluster, 'inbound|80||');
    const other = simulate(res, { port: 3000, protocol: 'tcp', direction: 'inbound' });
    assert.equal(other.filterChain, 'virtualInbound');
    assert.equal(other.cluster, 'InboundPassthroughCluster');
    const otherHttp = simulate(res, { port: 3000, protocol: 'http', direction: 'inbound' });
    assert.equal(otherHttp.filterChain, 'virtualInbound-catchall-http');
    assert.equal(otherHttp.cluster, 'InboundPassthroughCluster');
  });

  test('local mode: a bound listener on the sidecar inbound port', () => {
    const w = world(
      HTTPBIN.replace(
        'metadata: {labels: {app: httpbin, version: v1}}',
        `metadata:\n      labels: {app: httpbin, version: v1}\n      annotations: {trellis.io/inbound-ports: '{"80": 15106}'}`,
      ),
    );
    const res = generate(
      w.snapshot,
      w.proxy('httpbin-0', 'default', { metadata: { INTERCEPTION_MODE: 'NONE' } }),
    );
    assertValidEnvoy(res);
    assertGolden('listener-inbound-local', pick(res, { listeners: ['10.1.0.2_15106'] }));
    const r = simulate(res, {
      port: 15106,
      host: 'httpbin:8000',
      protocol: 'http',
      direction: 'inbound',
      listener: '10.1.0.2_15106',
    });
    assert.equal(r.cluster, 'inbound|80||');
  });
});
