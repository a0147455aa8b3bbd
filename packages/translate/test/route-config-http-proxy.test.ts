// The explicit HTTP proxy's `http_proxy` route configuration serves every port of every service:
// VirtualService routes must resolve per service port (a destination without a port, a match on
// `port`), never to port 0 (`outbound|0|...`, a cluster that does not exist).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generate, simulate } from '../src/index.js';
import { assertValidEnvoy, world } from './fixtures.js';

const ECHO = `
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 9080}, {name: http2, port: 9081}, {name: tcp-echo, port: 9092}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1}
spec:
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec:
      containers: [{name: echo, image: echo, ports: [{containerPort: 9080}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{port: 9081, uri: {prefix: /only-h2}}]
    route: [{destination: {host: echo, subset: v2}}]
  - route: [{destination: {host: echo, subset: v1}}]
`;

test('http_proxy: VirtualService routes of a multi-port service resolve per port', () => {
  const w = world(ECHO);
  const res = generate(
    w.snapshot,
    w.proxy('sleep-0', 'default', {
      metadata: { HTTP_PROXY_PORT: '15080', INTERCEPTION_MODE: 'NONE' },
    }),
  );
  assertValidEnvoy(res);
  const at = (host: string, path: string): string | undefined =>
    simulate(res, { port: 15080, host, path, protocol: 'http', direction: 'direct' }).cluster;
  assert.equal(at('echo:9080', '/'), 'outbound|9080|v1|echo.default.svc.cluster.local');
  assert.equal(at('echo:9081', '/'), 'outbound|9081|v1|echo.default.svc.cluster.local');
  // The port match applies on 9081 only.
  assert.equal(at('echo:9081', '/only-h2'), 'outbound|9081|v2|echo.default.svc.cluster.local');
  assert.equal(at('echo:9080', '/only-h2'), 'outbound|9080|v1|echo.default.svc.cluster.local');
  const clusters = JSON.stringify(res.routes);
  assert.doesNotMatch(clusters, /outbound\|0\|/);
});
