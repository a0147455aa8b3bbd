// Kubernetes Services with endpoints from Pods (bookinfo's Deployments turned into Pods) and
// from EndpointSlices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot, type Endpoint } from '../src/index.js';
import { loadSample, pod, service, withPods } from './fixtures.js';

const bookinfo = () => withPods(loadSample('bookinfo/platform/kube/bookinfo.yaml'));

/** `address:port (health)` of endpoints, for compact assertions. */
const eps = (list: readonly Endpoint[]) =>
  list.map((e) => `${e.address}:${e.port}${e.ready ? '' : ` (${e.health})`}`);

test('kube: bookinfo Services become services with Istio host names and protocols', () => {
  const snap = buildSnapshot(bookinfo(), { version: '1' });
  assert.deepEqual(
    snap.services.map((s) => s.hostname),
    [
      'details.default.svc.cluster.local',
      'productpage.default.svc.cluster.local',
      'ratings.default.svc.cluster.local',
      'reviews.default.svc.cluster.local',
    ],
  );
  const reviews = snap.service('reviews.default.svc.cluster.local', 'default');
  assert.ok(reviews);
  assert.equal(reviews.name, 'reviews');
  assert.equal(reviews.origin, 'Kubernetes');
  assert.deepEqual(reviews.source, { kind: 'Service', namespace: 'default', name: 'reviews' });
  assert.deepEqual(reviews.ports, [{ name: 'http', port: 9080, protocol: 'HTTP' }]);
  assert.deepEqual(reviews.selector, { app: 'reviews' });
  assert.deepEqual(reviews.labels, { app: 'reviews', service: 'reviews' });
  assert.equal(reviews.resolution, 'ClientSideLB');
  assert.equal(reviews.location, 'MESH_INTERNAL');
  assert.equal(reviews.meshExternal, false);
  assert.deepEqual(reviews.addresses, []);
  assert.equal(reviews.defaultAddress, '0.0.0.0');
  assert.deepEqual(reviews.exportTo, []);
  assert.deepEqual(reviews.serviceAccounts, [
    'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
  ]);
});

test('kube: bookinfo endpoints are the ready Pods the selector picks, with labels and identity', () => {
  const snap = buildSnapshot(bookinfo(), { version: '1' });
  const reviews = snap.service('reviews.default.svc.cluster.local', 'default')!;
  const list = snap.endpoints(reviews, 9080);
  assert.equal(list.length, 3);
  assert.deepEqual(
    list.map((e) => e.labels.version),
    ['v1', 'v2', 'v3'],
  );
  const v2 = list.find((e) => e.labels.version === 'v2')!;
  assert.equal(v2.port, 9080);
  assert.equal(v2.targetPort, 9080);
  assert.equal(v2.servicePort, 9080);
  assert.equal(v2.servicePortName, 'http');
  assert.equal(v2.hostname, 'reviews.default.svc.cluster.local');
  assert.equal(v2.serviceAccount, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
  assert.equal(v2.health, 'Healthy');
  assert.equal(v2.tlsMode, 'disabled');
  assert.deepEqual(v2.workload, { kind: 'Pod', namespace: 'default', name: 'reviews-v2-0' });
  assert.equal(snap.endpoints(reviews, 9999).length, 0);
  const details = snap.service('details.default.svc.cluster.local', 'default')!;
  assert.equal(snap.endpoints(details).length, 1);
  // The Pod is a workload a proxy can find by name; it serves reviews on 9080.
  const w = snap.workload('Pod', 'default', 'reviews-v2-0')!;
  assert.equal(w.identity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
  assert.deepEqual(
    snap.registry.endpointsOfWorkload('Pod', 'default', 'reviews-v2-0').map((e) => e.hostname),
    ['reviews.default.svc.cluster.local'],
  );
  assert.deepEqual(
    snap.registry.workloadsAt(w.address).map((x) => x.name),
    ['reviews-v2-0'],
  );
});

test('kube: readiness, terminating, finished and IP-less pods', () => {
  const objects = [
    service('web', 'ns1', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] }),
    pod('ready', 'ns1', { labels: { app: 'web' }, ip: '10.0.0.1' }),
    pod('not-ready', 'ns1', { labels: { app: 'web' }, ip: '10.0.0.2', ready: false }),
    pod('deleting', 'ns1', { labels: { app: 'web' }, ip: '10.0.0.3', deleting: true }),
    pod('done', 'ns1', { labels: { app: 'web' }, ip: '10.0.0.4', phase: 'Succeeded' }),
    pod('no-ip', 'ns1', { labels: { app: 'web' } }),
    pod('other-app', 'ns1', { labels: { app: 'db' }, ip: '10.0.0.6' }),
    pod('other-ns', 'ns2', { labels: { app: 'web' }, ip: '10.0.0.7' }),
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const svc = snap.service('web.ns1.svc.cluster.local', 'ns1')!;
  assert.deepEqual(eps(snap.endpoints(svc)), [
    '10.0.0.1:80',
    '10.0.0.2:80 (UnHealthy)',
    '10.0.0.3:80 (Terminating)',
  ]);
  // publishNotReadyAddresses sends every pod as healthy.
  const publish = buildSnapshot(
    [
      service('web', 'ns1', {
        selector: { app: 'web' },
        publishNotReadyAddresses: true,
        ports: [{ port: 80 }],
      }),
      ...objects.slice(1),
    ],
    { version: '1' },
  );
  assert.deepEqual(eps(publish.endpoints(svc)), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
});

test('kube: target ports by number, by container port name, and missing names', () => {
  const containerPorts = [
    { name: 'web', containerPort: 8080 },
    { name: 'admin', containerPort: 9901 },
  ];
  const snap = buildSnapshot(
    [
      service('app', 'default', {
        selector: { app: 'app' },
        ports: [
          { name: 'http', port: 80, targetPort: 'web' },
          { name: 'tcp-admin', port: 9000, targetPort: 'admin' },
          { name: 'grpc', port: 7070, targetPort: 17070 },
          { name: 'tls', port: 443, targetPort: 'nope' },
        ],
      }),
      pod('a', 'default', { labels: { app: 'app' }, ip: '10.0.0.1', containerPorts }),
    ],
    { version: '1' },
  );
  const svc = snap.service('app.default.svc.cluster.local', 'default')!;
  assert.deepEqual(
    svc.ports.map((p) => `${p.name}:${p.port}:${p.protocol}:${String(p.targetPort)}`),
    ['http:80:HTTP:web', 'tcp-admin:9000:TCP:admin', 'grpc:7070:GRPC:17070', 'tls:443:TLS:nope'],
  );
  assert.deepEqual(
    snap.endpoints(svc).map((e) => `${e.servicePort}->${e.port}`),
    ['80->8080', '7070->17070', '9000->9901'],
  );
  assert.equal(snap.endpoints(svc, 443).length, 0);
});

test('kube: local mode maps application ports to sidecar inbound ports', () => {
  const snap = buildSnapshot(
    [
      service('reviews', 'default', {
        selector: { app: 'reviews' },
        ports: [
          { name: 'http', port: 9080 },
          { name: 'grpc', port: 9090 },
        ],
      }),
      pod('reviews-1', 'default', {
        labels: { app: 'reviews' },
        ip: '127.0.0.1',
        annotations: {
          'trellis.io/inbound-ports': '{"9080": 15106}',
          'trellis.io/app-ports': '{"9080": 41234}',
          'sidecar.istio.io/status': '{}',
        },
      }),
      pod('reviews-2', 'default', {
        labels: { app: 'reviews' },
        ip: '127.0.0.1',
        annotations: { 'trellis.io/inbound-ports': '{"9080": "x"}', 'trellis.io/app-ports': '[]' },
      }),
    ],
    { version: '1' },
  );
  const svc = snap.service('reviews.default.svc.cluster.local', 'default')!;
  assert.deepEqual(
    snap
      .endpoints(svc)
      .map((e) => `${e.workload?.name} ${e.servicePort}: ${e.port}->${e.targetPort} ${e.tlsMode}`),
    [
      // Sorted by service port, address, then the port dialled.
      'reviews-2 9080: 9080->9080 disabled',
      'reviews-1 9080: 15106->9080 istio',
      'reviews-1 9090: 9090->9090 istio',
      'reviews-2 9090: 9090->9090 disabled',
    ],
  );
  assert.deepEqual(snap.workload('Pod', 'default', 'reviews-1')?.inboundPorts, { '9080': 15106 });
  assert.deepEqual(snap.workload('Pod', 'default', 'reviews-1')?.appPorts, { '9080': 41234 });
  assert.deepEqual(snap.workload('Pod', 'default', 'reviews-2')?.appPorts, {});
  assert.deepEqual(
    snap.problems.map((p) => `${p.object.kind} ${p.object.name}: ${p.message}`),
    [
      'Pod reviews-2: annotation trellis.io/inbound-ports is ignored: the port for 9080 must be a port number between 1 and 65535, not "x"',
      'Pod reviews-2: annotation trellis.io/app-ports is ignored: must be a JSON object from port number to port number',
    ],
  );
  // Two pods share 127.0.0.1: a proxy finds its workload by name, not by address.
  assert.equal(snap.registry.workloadsAt('127.0.0.1').length, 2);
});

test('kube: headless, ExternalName, cluster IPs, exportTo and service-account annotations', () => {
  const snap = buildSnapshot(
    [
      service('headless', 'default', { clusterIP: 'None', ports: [{ name: 'tcp', port: 5432 }] }),
      service('ext', 'default', { type: 'ExternalName', externalName: 'db.example.com' }),
      service('vip', 'default', {
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10', 'fd00::10'],
        ports: [{ port: 53, protocol: 'UDP', name: 'dns' }],
      }),
      service(
        'private',
        'default',
        { clusterIP: '10.96.0.11', ports: [{ port: 80 }] },
        {
          annotations: {
            'networking.istio.io/exportTo': '., istio-system',
            'alpha.istio.io/kubernetes-serviceaccounts': 'web,api',
            'alpha.istio.io/canonical-serviceaccounts': 'spiffe://other/ns/x/sa/y',
          },
        },
      ),
    ],
    { version: '1' },
  );
  const get = (name: string) => snap.service(`${name}.default.svc.cluster.local`, 'default')!;
  assert.equal(get('headless').resolution, 'Passthrough');
  assert.equal(get('headless').defaultAddress, '0.0.0.0');
  assert.equal(get('ext').resolution, 'Alias');
  assert.equal(get('ext').externalName, 'db.example.com');
  assert.equal(get('ext').meshExternal, true);
  assert.deepEqual(get('vip').addresses, ['10.96.0.10', 'fd00::10']);
  assert.equal(get('vip').ports[0]?.protocol, 'UDP');
  assert.deepEqual(get('private').exportTo, ['.', 'istio-system']);
  assert.deepEqual(get('private').serviceAccounts, [
    'spiffe://cluster.local/ns/default/sa/api',
    'spiffe://cluster.local/ns/default/sa/web',
    'spiffe://other/ns/x/sa/y',
  ]);
  assert.deepEqual(get('private').ports, [{ name: '', port: 80, protocol: 'UnsupportedProtocol' }]);
});

test('kube: a custom domain suffix and trust domain', () => {
  const snap = buildSnapshot(bookinfo(), {
    version: '1',
    domainSuffix: 'example.org',
    trustDomain: 'corp.example',
  });
  const r = snap.service('ratings.default.svc.example.org', 'default')!;
  assert.deepEqual(r.serviceAccounts, ['spiffe://corp.example/ns/default/sa/bookinfo-ratings']);
});

test('kube: EndpointSlices, when present, give the endpoints', () => {
  const slice = (name: string, endpoints: unknown[], ports: unknown[]) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints,
    ports,
  });
  const objects = [
    service('web', 'default', {
      selector: { app: 'web' },
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    }),
    pod('web-a', 'default', {
      labels: { app: 'web', version: 'v1' },
      ip: '10.0.0.1',
      serviceAccount: 'web',
    }),
    pod('web-b', 'default', { labels: { app: 'web', version: 'v2' }, ip: '10.0.0.2' }),
    slice(
      'web-1',
      [
        {
          addresses: ['10.0.0.1'],
          conditions: { ready: true },
          targetRef: { kind: 'Pod', name: 'web-a' },
        },
        { addresses: ['10.0.0.2'], conditions: { ready: false, terminating: true } },
        { addresses: ['10.0.0.9'], conditions: { ready: false } },
      ],
      [{ name: 'http', port: 8080 }],
    ),
    slice('web-2', [{ addresses: ['10.0.0.10'] }], [{ name: 'other', port: 1 }]),
    {
      ...slice('web-3', [{ addresses: ['db.example.com'] }], [{ name: 'http', port: 8080 }]),
      addressType: 'FQDN',
    },
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const svc = snap.service('web.default.svc.cluster.local', 'default')!;
  const list = snap.endpoints(svc);
  assert.deepEqual(eps(list), [
    '10.0.0.1:8080',
    '10.0.0.2:8080 (Terminating)',
    '10.0.0.9:8080 (UnHealthy)',
  ]);
  assert.deepEqual(list[0]?.labels, { app: 'web', version: 'v1' });
  assert.equal(list[0]?.serviceAccount, 'spiffe://cluster.local/ns/default/sa/web');
  // Found by IP when there is no targetRef.
  assert.deepEqual(list[1]?.workload, { kind: 'Pod', namespace: 'default', name: 'web-b' });
  assert.deepEqual(list[2]?.labels, {});
  assert.equal(list[2]?.workload, undefined);
  assert.deepEqual(svc.serviceAccounts, [
    'spiffe://cluster.local/ns/default/sa/default',
    'spiffe://cluster.local/ns/default/sa/web',
  ]);
});
