// Golden tests of proxyless gRPC resources (GENERATOR: grpc): the API listener named as the
// client's target, its RDS route configuration `outbound|PORT||HOST`, and the server listener.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generate, generateListeners, generateRoutes, simulate } from '../src/index.js';
import {
  assertGolden,
  assertGrpcAcceptsListenersAndRoutes,
  assertValidEnvoy,
  world,
} from './fixtures.js';

const ECHO = `
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 7070}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1}
spec:
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec: {containers: [{name: echo, image: echo, ports: [{containerPort: 7070}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v2}
spec:
  selector: {matchLabels: {app: echo, version: v2}}
  template:
    metadata: {labels: {app: echo, version: v2}}
    spec: {containers: [{name: echo, image: echo, ports: [{containerPort: 7070}]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-canary: {exact: "true"}}}]
    route:
    - destination: {host: echo, subset: v2}
  - timeout: 2s
    route:
    - {destination: {host: echo, subset: v1}, weight: 80}
    - {destination: {host: echo, subset: v2}, weight: 20}
`;

const GRPC = { GENERATOR: 'grpc' };

describe('golden: proxyless gRPC', () => {
  test('API listener named as requested, RDS outbound|PORT||HOST', () => {
    const w = world(ECHO);
    const proxy = w.proxy('sleep-0', 'default', { metadata: GRPC });
    const listeners = generateListeners(w.snapshot, proxy, [
      'echo:7070',
      'echo.default.svc.cluster.local:7070',
    ]);
    assert.deepEqual(
      listeners.map((l) => l.name),
      ['echo.default.svc.cluster.local:7070', 'echo:7070'],
    );
    const routes = generateRoutes(w.snapshot, proxy, [
      'outbound|7070||echo.default.svc.cluster.local',
    ]);
    assertValidEnvoy({ listeners, routes });
    assertGrpcAcceptsListenersAndRoutes({ listeners, routes });
    assertGolden('grpc-client', { listeners, routes });
    const res = { listeners, routes };
    const canary = simulate(res, {
      port: 7070,
      host: 'echo:7070',
      protocol: 'grpc',
      headers: { 'x-canary': 'true' },
      listener: 'echo:7070',
    });
    assert.equal(canary.cluster, 'outbound|7070|v2|echo.default.svc.cluster.local');
    const split = simulate(res, {
      port: 7070,
      host: 'echo:7070',
      protocol: 'grpc',
      listener: 'echo:7070',
    });
    assert.deepEqual(
      split.clusters.map((c) => [c.name, c.weight]),
      [
        ['outbound|7070|v1|echo.default.svc.cluster.local', 80],
        ['outbound|7070|v2|echo.default.svc.cluster.local', 20],
      ],
    );
    assert.equal(split.timeout, '2s');
  });

  test('generate() for a gRPC client: every outbound listener and its routes', () => {
    const w = world(ECHO);
    const res = generate(w.snapshot, w.proxy('sleep-0', 'default', { metadata: GRPC }));
    assertValidEnvoy(res);
    assertGrpcAcceptsListenersAndRoutes(res);
    assert.deepEqual(
      res.listeners.map((l) => l.name),
      ['echo.default.svc.cluster.local:7070', 'sleep.default.svc.cluster.local:80'],
    );
    assert.deepEqual(
      res.routes.map((r) => r.name),
      [
        'outbound|7070||echo.default.svc.cluster.local',
        'outbound|80||sleep.default.svc.cluster.local',
      ],
    );
  });

  test('server listener for a gRPC server', () => {
    const w = world(ECHO);
    const proxy = w.proxy('echo-v1-0', 'default', { metadata: GRPC });
    const listeners = generateListeners(w.snapshot, proxy, [
      'xds.istio.io/grpc/lds/inbound/0.0.0.0:7070',
    ]);
    assertValidEnvoy({ listeners });
    assertGrpcAcceptsListenersAndRoutes({ listeners });
    assertGolden('grpc-server', listeners);
    assert.deepEqual(
      generateListeners(w.snapshot, proxy, ['xds.istio.io/grpc/lds/inbound/0.0.0.0:9999']),
      [],
    );
  });
});
