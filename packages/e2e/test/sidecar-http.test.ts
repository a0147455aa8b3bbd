// A real control plane drives a real Trellis sidecar over xDS (delta and state of the world):
// an app's requests through the sidecar's explicit HTTP proxy port are routed by real
// VirtualServices and DestinationRules to real backends, a changed VirtualService takes effect
// without reconnecting, and the proxy reports Istio's metrics for what it carried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeObject } from '@trellis/api';
import { openFileStore } from '@trellis/config';
import { ControlPlane } from '@trellis/control-plane';
import { TrellisProxy, buildBootstrap } from '@trellis/proxy';
import { withTempDir } from '@trellis/testing';
import { eventually, freePort, put } from './mesh-fixture.js';

const ECHO_PORT = 9080;

/** An HTTP backend that answers with its version and what it received. */
async function backend(version: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ version, path: req.url, headers: req.headers, body }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

function pod(name: string, labels: Record<string, string>, inbound?: number): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      labels,
      ...(inbound !== undefined
        ? { annotations: { 'trellis.io/inbound-ports': JSON.stringify({ [ECHO_PORT]: inbound }) } }
        : {}),
    },
    spec: {
      serviceAccountName: labels.app ?? 'default',
      containers: [{ name: 'app', image: 'app', ports: [{ containerPort: ECHO_PORT }] }],
    },
    status: {
      phase: 'Running',
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function virtualService(defaultSubset: string): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'echo', namespace: 'default' },
    spec: {
      hosts: ['echo'],
      http: [
        {
          match: [{ headers: { 'end-user': { exact: 'jason' } } }],
          route: [{ destination: { host: 'echo', subset: 'v2' } }],
        },
        {
          route: [{ destination: { host: 'echo', subset: defaultSubset } }],
          // retry_priority previous_priorities in the route: the proxy must accept it.
          retries: { attempts: 2, retryOn: '5xx', retryRemoteLocalities: true },
          // Envoy's command operators in header values, as Istio users write them.
          headers: {
            request: { set: { 'x-client-ip': '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' } },
            response: { add: { 'x-served-by': '%UPSTREAM_REMOTE_ADDRESS% (100%%)' } },
          },
        },
      ],
    },
  };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An absolute-form request through the explicit HTTP proxy port, as an app with HTTP_PROXY sends. */
function viaProxy(port: number, url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: '127.0.0.1', port, path: url, method: 'GET', headers: { host: u.host, ...headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function adminGet(port: number, path: string): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return r.text();
}

for (const protocol of ['delta', 'sotw'] as const) {
  test(`a sidecar routes by real VirtualServices over ${protocol} xDS`, { timeout: 60_000 }, () =>
    withTempDir(async (dir) => {
      const v1 = await backend('v1');
      const v2 = await backend('v2');
      const store = await openFileStore(dir);
      const cp = await ControlPlane.start({
        store,
        xdsAddress: '127.0.0.1:0',
        monitoringHost: '127.0.0.1',
        monitoringPort: 0,
        debounce: { quietMs: 10, maxMs: 1000 },
      });
      const httpProxyPort = await freePort();
      let proxy: TrellisProxy | undefined;
      try {
        for (const o of [
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'echo', namespace: 'default' },
            spec: {
              selector: { app: 'echo' },
              ports: [{ name: 'http', port: ECHO_PORT, targetPort: ECHO_PORT }],
            },
          },
          pod('echo-v1', { app: 'echo', version: 'v1' }, v1.port),
          pod('echo-v2', { app: 'echo', version: 'v2' }, v2.port),
          pod('sleep-0', { app: 'sleep', version: 'v1' }),
          {
            apiVersion: 'networking.istio.io/v1',
            kind: 'DestinationRule',
            metadata: { name: 'echo', namespace: 'default' },
            spec: {
              host: 'echo',
              subsets: [
                { name: 'v1', labels: { version: 'v1' } },
                { name: 'v2', labels: { version: 'v2' } },
              ],
            },
          },
          virtualService('v1'),
        ] as KubeObject[])
          await put(store, o);

        proxy = await TrellisProxy.start({
          bootstrap: buildBootstrap({
            ip: '127.0.0.1',
            podName: 'sleep-0',
            namespace: 'default',
            labels: { app: 'sleep', version: 'v1' },
            serviceAccount: 'sleep',
            xdsAddress: `127.0.0.1:${cp.xdsPort}`,
            httpProxyPort,
            adminPort: 0,
          }),
          protocol,
          adminPort: 0,
          healthPort: null,
        });
        await proxy.whenReady();
        const p = proxy;

        // The default route goes to v1; end-user: jason goes to v2.
        const first = await eventually('a routed reply', async () => {
          const r = await viaProxy(httpProxyPort, `http://echo:${ECHO_PORT}/hello?x=1`);
          return r.status === 200 ? r : undefined;
        });
        const got = JSON.parse(first.body) as {
          version: string;
          path: string;
          headers: Record<string, string>;
        };
        assert.equal(got.version, 'v1');
        assert.equal(got.path, '/hello?x=1');
        assert.ok(got.headers['x-request-id'], 'the sidecar adds x-request-id');
        assert.equal(got.headers['x-client-ip'], '127.0.0.1');
        assert.equal(first.headers['x-served-by'], `127.0.0.1:${v1.port} (100%)`);
        assert.ok(first.headers['x-envoy-upstream-service-time'] !== undefined);
        const jason = await viaProxy(httpProxyPort, `http://echo:${ECHO_PORT}/`, {
          'end-user': 'jason',
        });
        assert.equal((JSON.parse(jason.body) as { version: string }).version, 'v2');

        // A VirtualService change reaches the running proxy: everyone goes to v2.
        const connectsBefore = p.ads.status().connectAttempts;
        await put(store, virtualService('v2'));
        await eventually('the new route', async () => {
          const r = await viaProxy(httpProxyPort, `http://echo:${ECHO_PORT}/`);
          return (JSON.parse(r.body) as { version: string }).version === 'v2' ? true : undefined;
        });
        assert.equal(p.ads.status().connectAttempts, connectsBefore, 'no reconnect');

        // An unknown host: ALLOW_ANY passes it through to its own address, which does not resolve.
        const nowhere = await viaProxy(httpProxyPort, `http://nowhere.invalid:${ECHO_PORT}/`);
        assert.equal(nowhere.status, 503);
        assert.match(nowhere.body, /upstream connect error/);

        // Istio's metrics for what went through, reported by the source.
        const prom = await adminGet(p.adminPort, '/stats/prometheus');
        const line = prom
          .split('\n')
          .find(
            (l) =>
              l.startsWith('istio_requests_total{') &&
              l.includes('reporter="source"') &&
              l.includes('destination_canonical_revision="v2"') &&
              l.includes('response_code="200"'),
          );
        assert.ok(line, 'no istio_requests_total line for the v2 requests');
        assert.match(line, /source_workload_namespace="default"/);
        assert.match(line, /destination_service="echo\.default\.svc\.cluster\.local"/);
        assert.match(line, /destination_workload="echo-v2"/);
        assert.match(line, /response_flags="-"/);
        assert.ok(
          prom.includes(
            'envoy_cluster_upstream_rq_total{cluster_name="outbound|9080|v2|echo.default.svc.cluster.local"}',
          ),
          'Envoy cluster stats carry the cluster name as a label',
        );
        const dump = JSON.parse(await adminGet(p.adminPort, '/config_dump')) as {
          configs: { '@type': string }[];
        };
        assert.ok(dump.configs.some((c) => c['@type'].endsWith('ListenersConfigDump')));
        const clusters = await adminGet(p.adminPort, '/clusters');
        assert.match(
          clusters,
          new RegExp(
            `outbound\\|${ECHO_PORT}\\|v1\\|echo\\.default\\.svc\\.cluster\\.local::127\\.0\\.0\\.1:${v1.port}`,
          ),
        );
      } finally {
        await proxy?.close();
        await cp.close();
        await store.close();
        v1.server.close();
        v2.server.close();
      }
    }),
  );
}
