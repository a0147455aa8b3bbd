// Golden tests of gateway listeners and routes (test/golden/gateway-*.json): HTTP servers,
// HTTPS with credentialName (SDS), httpsRedirect, host matching per server (`ns/host`), TLS
// passthrough and AUTO_PASSTHROUGH, TCP servers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '@trellis/api';
import { generate, simulate, type GeneratedResources } from '../src/index.js';
import {
  assertGolden,
  assertValidEnvoy,
  gatewayProxy,
  ingressGatewayObjects,
  loadYaml,
  podsFor,
  proxyForPod,
  snapshotOf,
  withClusterIps,
} from './fixtures.js';

const APPS = `
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: team-a}
spec:
  selector: {app: api}
  ports: [{name: http, port: 8000}, {name: tls, port: 8443}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: team-a}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api}]}
`;

function gateway(configs: string): GeneratedResources {
  const objs = withClusterIps([
    ...loadYaml(APPS, 'apps.yaml'),
    ...ingressGatewayObjects(),
    ...loadYaml(configs, 'gw.yaml'),
  ]);
  const objects: KubeObject[] = [...objs, ...podsFor(objs)];
  const snapshot = snapshotOf(objects);
  const res = generate(snapshot, gatewayProxy(snapshot, objects));
  assertValidEnvoy(res);
  return res;
}

describe('golden: gateways', () => {
  test('HTTP server with hosts per namespace and httpsRedirect', () => {
    const res = gateway(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["./web.example.com", "team-a/api.example.com", "*/shared.example.com"]
  - port: {number: 80, name: http-redirect, protocol: HTTP}
    hosts: ["secure.example.com"]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com, api.example.com, shared.example.com]
  gateways: [public]
  http:
  - route:
    - destination: {host: web}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: team-a}
spec:
  hosts: ["*.example.com"]
  gateways: [default/public]
  http:
  - match: [{uri: {prefix: /api}}]
    route:
    - destination: {host: api, port: {number: 8000}}`);
    assertGolden('gateway-http', { listeners: res.listeners, routes: res.routes });
    const at = (host: string, path = '/'): ReturnType<typeof simulate> =>
      simulate(res, { port: 8080, host, path, protocol: 'http', direction: 'direct' });
    assert.equal(at('web.example.com').cluster, 'outbound|80||web.default.svc.cluster.local');
    // api.example.com is admitted only for VirtualServices of team-a.
    assert.equal(
      at('api.example.com', '/api/x').cluster,
      'outbound|8000||api.team-a.svc.cluster.local',
    );
    assert.equal(at('api.example.com', '/').error, 'no route');
    // shared.example.com (`*/`) is admitted for both namespaces: their routes are concatenated
    // (oldest VirtualService first, then by name) with catch-all routes last.
    assert.equal(
      at('shared.example.com', '/api').cluster,
      'outbound|8000||api.team-a.svc.cluster.local',
    );
    assert.equal(
      at('shared.example.com', '/').cluster,
      'outbound|80||web.default.svc.cluster.local',
    );
    assert.equal(at('other.example.com').error, 'no virtual host');
    const redirect = res.routes[0]?.virtualHosts?.find((v) => v.name === 'secure.example.com:80');
    assert.equal(redirect?.requireTls, 'ALL');
  });

  test('HTTPS servers terminating TLS with credentialName, each with its own route config', () => {
    const res = gateway(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-web, protocol: HTTPS}
    hosts: [web.example.com]
    tls: {mode: SIMPLE, credentialName: web-cert, minProtocolVersion: TLSV1_2}
  - port: {number: 443, name: https-api, protocol: HTTPS}
    hosts: [api.example.com]
    tls: {mode: MUTUAL, credentialName: api-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com, api.example.com]
  gateways: [secure]
  http:
  - route:
    - destination: {host: web}`);
    assertGolden('gateway-https', { listeners: res.listeners, routes: res.routes });
    assert.deepEqual(
      res.routes.map((r) => r.name),
      ['https.443.https-api.secure.default', 'https.443.https-web.secure.default'],
    );
    const web = simulate(res, {
      port: 8443,
      host: 'web.example.com',
      sni: 'web.example.com',
      protocol: 'https',
      direction: 'direct',
    });
    assert.equal(web.routeConfig, 'https.443.https-web.secure.default');
    assert.equal(web.cluster, 'outbound|80||web.default.svc.cluster.local');
    const api = simulate(res, {
      port: 8443,
      host: 'api.example.com',
      sni: 'api.example.com',
      protocol: 'https',
      direction: 'direct',
    });
    assert.equal(api.routeConfig, 'https.443.https-api.secure.default');
  });

  test('TLS PASSTHROUGH by SNI, AUTO_PASSTHROUGH by cluster SNI, and an opaque TCP server', () => {
    const res = gateway(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: passthrough, namespace: team-a}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [api.example.com]
    tls: {mode: PASSTHROUGH}
  - port: {number: 15443, name: tls-auto, protocol: TLS}
    hosts: ["*.team-a.svc.cluster.local"]
    tls: {mode: AUTO_PASSTHROUGH}
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-tls, namespace: team-a}
spec:
  hosts: [api.example.com]
  gateways: [passthrough]
  tls:
  - match: [{sniHosts: [api.example.com], port: 443}]
    route:
    - destination: {host: api, port: {number: 8443}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-tcp, namespace: team-a}
spec:
  hosts: ["*"]
  gateways: [passthrough]
  tcp:
  - match: [{port: 31400}]
    route:
    - destination: {host: api, port: {number: 8000}}`);
    assertGolden('gateway-tls-tcp', { listeners: res.listeners });
    const tls = simulate(res, {
      port: 8443,
      sni: 'api.example.com',
      protocol: 'tls',
      direction: 'direct',
    });
    assert.equal(tls.cluster, 'outbound|8443||api.team-a.svc.cluster.local');
    const auto = simulate(res, {
      port: 15443,
      sni: 'outbound_.8000_._.api.team-a.svc.cluster.local',
      protocol: 'tls',
      direction: 'direct',
    });
    assert.equal(auto.outcome, 'error'); // no ALPN offered: AUTO_PASSTHROUGH requires Istio mTLS
    const mtls = simulate(res, {
      port: 15443,
      sni: 'outbound_.8000_._.api.team-a.svc.cluster.local',
      alpn: ['istio-peer-exchange', 'istio'],
      protocol: 'tls',
      direction: 'direct',
    });
    assert.equal(mtls.cluster, 'outbound_.8000_._.api.team-a.svc.cluster.local');
    const tcp = simulate(res, { port: 31400, protocol: 'tcp', direction: 'direct' });
    assert.equal(tcp.cluster, 'outbound|8000||api.team-a.svc.cluster.local');
  });

  test('a VirtualService bound to the gateway and to mesh: match `gateways` picks the rules', () => {
    const configs = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  gateways: [mesh, public]
  http:
  - match: [{gateways: [public], uri: {prefix: /admin}}]
    directResponse: {status: 403}
  - route:
    - destination: {host: web}`;
    const objs = withClusterIps([
      ...loadYaml(APPS, 'apps.yaml'),
      ...ingressGatewayObjects(),
      ...loadYaml(configs, 'gw.yaml'),
    ]);
    const objects: KubeObject[] = [...objs, ...podsFor(objs)];
    const snapshot = snapshotOf(objects);
    const gw = generate(snapshot, gatewayProxy(snapshot, objects));
    assertValidEnvoy(gw);
    const fromGateway = simulate(gw, {
      port: 8080,
      host: 'web.default.svc.cluster.local',
      path: '/admin',
      protocol: 'http',
      direction: 'direct',
    });
    assert.equal(fromGateway.directResponse?.status, 403);
    const sidecar = generate(snapshot, proxyForPod(snapshot, objects, 'api-0', 'team-a'));
    const fromMesh = simulate(sidecar, {
      port: 80,
      host: 'web.default.svc.cluster.local',
      path: '/admin',
      protocol: 'http',
    });
    assert.equal(fromMesh.cluster, 'outbound|80||web.default.svc.cluster.local');
  });
});
