// `trellis proxy-status` and `trellis proxy-config` against a running control plane with a real
// xDS client (a proxyless gRPC client) connected.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { openFileStore, type ConfigStore } from '@trellis/config';
import { ControlPlane } from '@trellis/control-plane';
import { echoPackage, startEchoServer, type EchoServer } from '@trellis/testing';
import { trellis } from './harness.js';

grpcXds.register();

let dir: string;
let store: ConfigStore;
let cp: ControlPlane;
let echo: EchoServer;
let client: grpc.Client;
let address: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-proxy-cmds-'));
  store = await openFileStore(join(dir, 'state'));
  echo = await startEchoServer('echo-v1-0', 'v1');
  await store.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'default' },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc' }] },
  });
  await store.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'echo-v1-0', namespace: 'default', labels: { app: 'echo', version: 'v1' } },
    spec: {
      containers: [
        { name: 'echo', image: 'echo', ports: [{ name: 'grpc', containerPort: echo.port }] },
      ],
    },
    status: { podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
  });
  await store.create({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'echo', namespace: 'default' },
    spec: { host: 'echo', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  });
  cp = await ControlPlane.start({
    store,
    xdsAddress: '127.0.0.1:0',
    monitoringPort: 0,
    debounce: { quietMs: 20 },
  });
  address = `127.0.0.1:${cp.monitoringPort}`;
  const bootstrap = {
    xds_servers: [
      {
        server_uri: `127.0.0.1:${cp.xdsPort}`,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    node: {
      id: 'sidecar~127.0.0.1~shop-0.default~default.svc.cluster.local',
      metadata: { GENERATOR: 'grpc' },
      locality: {},
    },
  };
  const Echo = echoPackage().trellis.testing.v1.Echo;
  client = new Echo(
    'xds:///echo.default.svc.cluster.local:7070',
    grpc.credentials.createInsecure(),
    {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    },
  );
  await new Promise<void>((resolve, reject) =>
    (client as unknown as { Echo(r: object, cb: (e: Error | null) => void): void }).Echo({}, (e) =>
      e ? reject(e) : resolve(),
    ),
  );
});

after(async () => {
  client?.close();
  await cp?.close();
  await store?.close();
  await echo?.close();
  await rm(dir, { recursive: true, force: true });
});

test('proxy-status lists the connected proxy as SYNCED for every type it asked for', async () => {
  const r = await trellis(join(dir, 'state'), ['proxy-status', '--control-plane', address]);
  assert.equal(r.code, 0, r.stderr);
  const [header, row] = r.stdout.trim().split('\n');
  assert.deepEqual(header!.split(/\s{2,}/), [
    'NAME',
    'CLUSTER',
    'CDS',
    'LDS',
    'EDS',
    'RDS',
    'TYPE',
    'VERSION',
  ]);
  assert.match(
    row!,
    /^shop-0\.default\s+Kubernetes\s+SYNCED \(\d+s\)\s+SYNCED \(\d+s\)\s+SYNCED \(\d+s\)\s+SYNCED \(\d+s\)\s+proxyless/,
  );
  const json = await trellis(join(dir, 'state'), [
    'proxy-status',
    'shop-0',
    '--control-plane',
    address,
    '-o',
    'json',
  ]);
  const statuses = JSON.parse(json.stdout) as {
    proxy: string;
    types: { CDS: { sent: string; acked: string } };
  }[];
  assert.equal(statuses[0]?.proxy, 'shop-0.default');
  assert.equal(statuses[0]?.types.CDS.sent, statuses[0]?.types.CDS.acked);
  const missing = await trellis(join(dir, 'state'), [
    'proxy-status',
    'nobody',
    '--control-plane',
    address,
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /proxy nobody is not connected/);
});

test('proxy-config prints clusters, listeners, routes and endpoints as istioctl does', async () => {
  const run = (...args: string[]) =>
    trellis(join(dir, 'state'), ['proxy-config', ...args, '--control-plane', address]);
  const clusters = await run('cluster', 'shop-0');
  assert.equal(clusters.code, 0, clusters.stderr);
  assert.deepEqual(clusters.stdout.split('\n')[0]!.split(/\s{2,}/), [
    'SERVICE FQDN',
    'PORT',
    'SUBSET',
    'DIRECTION',
    'TYPE',
    'DESTINATION RULE',
  ]);
  assert.match(clusters.stdout, /echo\.default\.svc\.cluster\.local\s+7070\s+-\s+outbound\s+EDS/);
  assert.match(
    clusters.stdout,
    /echo\.default\.svc\.cluster\.local\s+7070\s+v1\s+outbound\s+EDS\s+echo\.default/,
  );
  const v1Only = await run('cluster', 'shop-0.default', '--subset', 'v1');
  assert.equal(v1Only.stdout.trim().split('\n').length, 2);
  const listeners = await run('listener', 'shop-0');
  assert.match(
    listeners.stdout,
    /echo\.default\.svc\.cluster\.local:7070\s+-\s+API listener \(proxyless gRPC\)\s+Route: /,
  );
  const routes = await run('route', 'shop-0');
  assert.match(routes.stdout, /^NAME\s+VHOST NAME\s+DOMAINS\s+MATCH\s+VIRTUAL SERVICE/);
  assert.match(
    routes.stdout,
    /echo\.default\.svc\.cluster\.local:7070\s+echo\.default\.svc\.cluster\.local \+ \d+ more\.\.\.\s+\/\*/,
  );
  const endpoints = await run(
    'endpoint',
    'shop-0',
    '--cluster',
    'outbound|7070|v1|echo.default.svc.cluster.local',
  );
  assert.match(
    endpoints.stdout,
    new RegExp(
      `127\\.0\\.0\\.1:${echo.port}\\s+HEALTHY\\s+OK\\s+outbound\\|7070\\|v1\\|echo\\.default\\.svc\\.cluster\\.local`,
    ),
  );
  const raw = await run('cluster', 'shop-0', '-o', 'json');
  const dump = JSON.parse(raw.stdout) as { '@type': string; dynamicActiveClusters: unknown[] };
  assert.equal(dump['@type'], 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump');
  assert.ok(dump.dynamicActiveClusters.length >= 2);
});

test('proxy-config and proxy-status explain what is wrong', async () => {
  const r = await trellis(join(dir, 'state'), [
    'proxy-config',
    'cluster',
    'ghost',
    '--control-plane',
    address,
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /proxy ghost is not connected/);
  const bad = await trellis(join(dir, 'state'), [
    'proxy-config',
    'widgets',
    'shop-0',
    '--control-plane',
    address,
  ]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /proxy-config needs a type: cluster, listener, route, endpoint, secret or all/,
  );
  const down = await trellis(join(dir, 'state'), [
    'proxy-status',
    '--control-plane',
    '127.0.0.1:1',
  ]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach the control plane at 127\.0\.0\.1:1: connection refused/);
});
