// Istio's traffic-management tasks, reproduced on the local runtime with real processes and the
// real Istio YAML from ../shared/istio-samples (issue 6): fault injection (a 7 s delay and an
// abort for user jason), request timeouts, mirroring, and circuit breaking with a load
// generator; and the Secure Gateways task (httpbin over HTTPS with a credentialName Secret).
// Requests enter through the ingress gateway (bookinfo) or leave the `sleep` workload through its
// sidecar (httpbin), as in Istio's tasks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { createCa } from '@trellis/testing';
import { join } from 'node:path';
import {
  ISTIO,
  ROOT,
  SAMPLES,
  applyYaml,
  eventually,
  http,
  mustTrellis,
  podOf,
  startLocalMesh,
  trellis,
  type LocalMesh,
  type Reply,
} from './local-fixture.js';

const NET = join(ISTIO, 'bookinfo', 'networking');
const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const RATINGS_ERROR = 'Ratings service is currently unavailable';

/** The load generator run as the sleep workload's app would: through its sidecar. */
function load(
  proxyPort: number,
  args: string[],
): Promise<{ codes: Record<string, number>; requests: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(ROOT, 'samples', 'bin', 'trellis-sample.js'), 'load', '--json', ...args],
      {
        env: { ...process.env, HTTP_PROXY: `http://127.0.0.1:${proxyPort}`, NO_PROXY: '' },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${err.message}: ${stderr}`))
          : resolve(JSON.parse(stdout) as { codes: Record<string, number>; requests: number }),
    );
  });
}

/** Whether a config_dump holds the cluster with `max_connections: 1`. */
function hasCircuitBreaker(node: unknown, cluster: string): boolean {
  if (Array.isArray(node)) return node.some((n) => hasCircuitBreaker(n, cluster));
  if (node === null || typeof node !== 'object') return false;
  const o = node as Record<string, unknown>;
  if (
    o.name === cluster &&
    JSON.stringify(o.circuitBreakers ?? o.circuit_breakers ?? {}).match(/"max_?[cC]onnections":1\b/)
  )
    return true;
  return Object.values(o).some((v) => hasCircuitBreaker(v, cluster));
}

describe("Istio's traffic-management tasks on the local runtime", () => {
  let mesh: LocalMesh;
  let jason = '';
  const page = (cookie?: string): Promise<Reply> =>
    http(mesh.ingress.httpPort, '/productpage', {
      headers: cookie ? { cookie } : {},
      timeoutMs: 30_000,
    });
  const timed = async (cookie?: string): Promise<{ ms: number; r: Reply }> => {
    const t0 = performance.now();
    const r = await page(cookie);
    return { ms: performance.now() - t0, r };
  };

  before(async () => {
    mesh = await startLocalMesh();
    await mustTrellis(
      mesh.dir,
      'apply',
      '-f',
      join(SAMPLES, 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'),
      '-f',
      join(SAMPLES, 'httpbin', 'httpbin-v1-v2.yaml'),
      '-f',
      join(SAMPLES, 'sleep', 'sleep.yaml'),
      '-f',
      join(NET, 'bookinfo-gateway.yaml'),
      '-f',
      join(NET, 'destination-rule-all.yaml'),
      '-f',
      join(NET, 'virtual-service-all-v1.yaml'),
    );
    await eventually(
      'the product page through the gateway',
      async () => {
        const r = await page();
        return r.status === 200 && r.body.includes('Book Details') ? r : undefined;
      },
      120_000,
    );
    const login = await http(mesh.ingress.httpPort, '/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=jason&passwd=jason',
    });
    const setCookie = login.headers['set-cookie'];
    jason = (Array.isArray(setCookie) ? setCookie : [setCookie ?? ''])
      .map((c) => c.split(';')[0])
      .join('; ');
    assert.ok(jason.includes('='), 'logging in as jason sets a session cookie');
  });

  after(async () => {
    await mesh?.down();
  });

  test('fault injection: a 7 s ratings delay for jason; the page gives up on reviews after about 6 s', async () => {
    await mustTrellis(mesh.dir, 'apply', '-f', join(NET, 'virtual-service-reviews-test-v2.yaml'));
    await eventually('jason on reviews v2 with its ratings', async () => {
      const p = await page(jason);
      return p.body.includes('data-reviews-version="v2"') && p.body.includes('glyphicon-star')
        ? true
        : undefined;
    });
    await mustTrellis(
      mesh.dir,
      'apply',
      '-f',
      join(NET, 'virtual-service-ratings-test-delay.yaml'),
    );
    // productpage waits 3 s for reviews and tries twice; reviews v2 waits 10 s for ratings.
    const { ms, r } = await eventually(
      'the delay to apply',
      async () => {
        const t = await timed(jason);
        return t.r.body.includes(REVIEWS_ERROR) && t.ms > 4_500 ? t : undefined;
      },
      90_000,
    );
    assert.equal(r.status, 200);
    assert.ok(ms > 5_000 && ms < 10_000, `the page took ${Math.round(ms)} ms`);
    // Everyone else is on v1, which never calls ratings: no delay.
    const other = await timed();
    assert.ok(!other.r.body.includes(REVIEWS_ERROR));
    assert.ok(other.ms < 3_000, `an anonymous page took ${Math.round(other.ms)} ms`);
  });

  test('fault injection: an HTTP abort for jason shows that ratings are unavailable', async () => {
    await mustTrellis(
      mesh.dir,
      'apply',
      '-f',
      join(NET, 'virtual-service-ratings-test-abort.yaml'),
    );
    const r = await eventually('the abort to apply', async () => {
      const p = await page(jason);
      return p.body.includes(RATINGS_ERROR) ? p : undefined;
    });
    assert.equal(r.status, 200);
    assert.match(r.body, /data-reviews-version="v2"/);
    assert.ok(!(await page()).body.includes(RATINGS_ERROR), 'others are not affected');
  });

  test('request timeouts: a 2 s ratings delay, then a 0.5 s timeout on reviews', async () => {
    await applyYaml(
      mesh.dir,
      'timeouts-1',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts: [ratings]
  http:
  - fault:
      delay:
        percentage: {value: 100}
        fixedDelay: 2s
    route:
    - destination: {host: ratings, subset: v1}
`,
    );
    const slow = await eventually('the 2 s delay', async () => {
      const t = await timed();
      return t.ms > 1_900 && t.r.body.includes('data-reviews-version="v2"') ? t : undefined;
    });
    assert.ok(!slow.r.body.includes(REVIEWS_ERROR) && !slow.r.body.includes(RATINGS_ERROR));
    await applyYaml(
      mesh.dir,
      'timeouts-2',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
    timeout: 0.5s
`,
    );
    // Two tries of 0.5 s each (productpage retries once), then the reviews error.
    const { ms } = await eventually('the 0.5 s timeout', async () => {
      const t = await timed();
      return t.r.body.includes(REVIEWS_ERROR) ? t : undefined;
    });
    // The error alone proves the timeout (a 2 s delay is within productpage's own 3 s); the
    // bound tells the 0.5 s route timeout from productpage's 2 × 3 s.
    assert.ok(ms < 2_900, `the page took ${Math.round(ms)} ms`);
  });

  test('mirroring: v1 answers, v2 gets a copy with the -shadow host', async () => {
    const sleep = await podOf(mesh, 'sleep');
    const proxyPort = sleep.ports.proxy;
    assert.ok(proxyPort, `the sleep sidecar's HTTP proxy port: ${JSON.stringify(sleep.ports)}`);
    await applyYaml(
      mesh.dir,
      'mirror',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
      weight: 100
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 100.0}
`,
    );
    const logs = async (d: string): Promise<string[]> =>
      (await trellis(mesh.dir, 'logs', d)).stdout.split('\n');
    // A fresh id per try: requests sent before the VirtualService reached the sidecar were
    // balanced over both versions.
    await eventually('a request served by v1 and mirrored to v2', async () => {
      const id = randomUUID();
      const r = await http(proxyPort, `http://httpbin:8000/headers?id=${id}`, {
        headers: { host: 'httpbin:8000' },
      });
      assert.equal(r.status, 200);
      await new Promise((res) => setTimeout(res, 300));
      const v1 = (await logs('httpbin-v1')).filter((l) => l.includes(id));
      const v2 = (await logs('httpbin-v2')).filter((l) => l.includes(id));
      const primary = v1.length === 1 && v1[0]?.includes('host=httpbin:8000') === true;
      const shadow = v2.length === 1 && v2[0]?.includes('host=httpbin-shadow:8000') === true;
      return primary && shadow ? true : undefined;
    });
  });

  test('circuit breaking: beyond one connection and one pending request, 503 UO and upstream_rq_pending_overflow', async () => {
    const sleep = await podOf(mesh, 'sleep');
    const proxyPort = sleep.ports.proxy;
    const adminPort = sleep.ports.admin;
    assert.ok(proxyPort && adminPort, JSON.stringify(sleep.ports));
    await mustTrellis(mesh.dir, 'delete', 'virtualservice', 'httpbin');
    await applyYaml(
      mesh.dir,
      'circuit-breaker',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
`,
    );
    const cluster = 'outbound|8000||httpbin.default.svc.cluster.local';
    await eventually('the circuit breaker in the sleep sidecar', async () => {
      const dump = await http(adminPort, '/config_dump');
      return hasCircuitBreaker(JSON.parse(dump.body), cluster) ? true : undefined;
    });
    // fortio -c 3 -qps 0 -n 30, as the task runs it.
    const result = await load(proxyPort, [
      '-c',
      '3',
      '-qps',
      '0',
      '-n',
      '30',
      'http://httpbin:8000/get',
    ]);
    const ok = result.codes['200'] ?? 0;
    const overflow = result.codes['503'] ?? 0;
    assert.equal(ok + overflow, 30, JSON.stringify(result.codes));
    assert.ok(ok > 0 && overflow > 0, JSON.stringify(result.codes));
    const stats = await http(adminPort, '/stats');
    const pending = new RegExp(
      `cluster\\.${cluster.replace(/[|.]/g, '\\$&')};?\\.upstream_rq_pending_overflow: (\\d+)`,
    ).exec(stats.body);
    assert.ok(
      pending && Number(pending[1]) > 0,
      `upstream_rq_pending_overflow is counted:\n${stats.body
        .split('\n')
        .filter((l) => l.includes('8000||httpbin') && /overflow|_rq_|cx_total|_open/.test(l))
        .join('\n')
        .slice(0, 3000)}`,
    );
    await eventually('the overflow flag in the access log', async () => {
      const accessLog = (await trellis(mesh.dir, 'logs', 'sleep', '-c', 'proxy')).stdout;
      return /" 503 UO upstream_reset_before_response_started\{overflow\}/.test(accessLog)
        ? true
        : undefined;
    });
  });
  test('secure gateways: httpbin over HTTPS with a credentialName Secret (SIMPLE TLS)', async () => {
    // Istio's task: a certificate for httpbin.example.com in a kubernetes.io/tls Secret beside the
    // ingress gateway, a Gateway with an HTTPS server on 443, a VirtualService to httpbin.
    const ca = createCa({ commonName: 'example.com root' });
    const leaf = ca.issue({ commonName: 'httpbin.example.com', dnsNames: ['httpbin.example.com'] });
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    await applyYaml(
      mesh.dir,
      'secure-gateway',
      `apiVersion: v1
kind: Secret
metadata:
  name: httpbin-credential
  namespace: istio-system
type: kubernetes.io/tls
data:
  tls.crt: ${b64(leaf.chain)}
  tls.key: ${b64(leaf.key)}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential
    hosts:
    - httpbin.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin-secure
spec:
  hosts:
  - httpbin.example.com
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: /status
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
`,
    );
    const get = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: mesh.ingress.httpsPort,
            path,
            servername: 'httpbin.example.com',
            headers: { host: 'httpbin.example.com' },
            ca: ca.cert,
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    // `curl -v -HHost:httpbin.example.com --cacert example.com.crt https://httpbin.example.com/status/418`
    await eventually(
      'HTTPS through the ingress gateway',
      async () => ((await get('/status/418').catch(() => 0)) === 418 ? true : undefined),
      60_000,
    );
  });
});
