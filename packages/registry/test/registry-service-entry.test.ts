// ServiceEntries: DNS, STATIC with inline endpoints, workloadSelector over WorkloadEntries and
// Pods, NONE, addresses, and collisions with Kubernetes Services.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot, type Endpoint } from '../src/index.js';
import { istio, loadSample, pod, service } from './fixtures.js';

const eps = (list: readonly Endpoint[]) =>
  list.map((e) => `${e.address}:${e.port}${e.ready ? '' : ` (${e.health})`}`);

test('service entry: DNS without endpoints resolves the host itself', () => {
  const snap = buildSnapshot(loadSample('bookinfo/networking/egress-rule-google-apis.yaml'), {
    version: '1',
  });
  const google = snap.service('www.googleapis.com', 'default');
  assert.ok(google);
  assert.equal(google.origin, 'ServiceEntry');
  assert.equal(google.name, 'www.googleapis.com');
  assert.equal(google.source.kind, 'ServiceEntry');
  assert.equal(google.resolution, 'DNSLB');
  assert.equal(google.location, 'MESH_EXTERNAL');
  assert.deepEqual(
    google.ports.map((p) => `${p.name}/${p.port}/${p.protocol}`),
    ['http/80/HTTP', 'https/443/HTTPS'],
  );
  assert.deepEqual(eps(snap.endpoints(google)), [
    'www.googleapis.com:80',
    'www.googleapis.com:443',
  ]);
  const e = snap.endpoints(google, 443)[0]!;
  assert.deepEqual(e.labels, {});
  assert.equal(e.tlsMode, 'disabled');
  assert.equal(e.workload, undefined);
});

test('service entry: one service per host; STATIC inline endpoints with ports, labels and identity', () => {
  const se = istio('ServiceEntry', 'vms', 'mysql', {
    hosts: ['mysql.vms.example', 'db.vms.example'],
    addresses: ['10.10.0.1/32', '10.20.0.0/16'],
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    ports: [
      { number: 3306, name: 'tcp-mysql', protocol: 'TCP', targetPort: 13306 },
      { number: 8080, name: 'http', protocol: 'HTTP' },
    ],
    exportTo: ['.'],
    subjectAltNames: ['spiffe://cluster.local/ns/vms/sa/legacy'],
    endpoints: [
      {
        address: '10.0.0.5',
        labels: { version: 'v1' },
        serviceAccount: 'mysql',
        locality: 'us-east/zone-a',
        network: 'vpc-1',
        weight: 3,
      },
      {
        address: '10.0.0.6',
        ports: { http: 18080 },
        labels: { 'security.istio.io/tlsMode': 'disabled' },
      },
      { address: 'unix:///var/run/mysql.sock' },
    ],
  });
  const snap = buildSnapshot([se], { version: '1' });
  assert.deepEqual(
    snap.services.map((s) => s.hostname),
    ['db.vms.example', 'mysql.vms.example'],
  );
  const svc = snap.service('mysql.vms.example', 'vms')!;
  assert.equal(svc.resolution, 'ClientSideLB');
  assert.equal(svc.location, 'MESH_INTERNAL');
  assert.deepEqual(svc.addresses, ['10.10.0.1', '10.20.0.0/16']);
  assert.equal(svc.defaultAddress, '10.10.0.1');
  assert.deepEqual(svc.exportTo, ['.']);
  assert.deepEqual(svc.serviceAccounts, [
    'spiffe://cluster.local/ns/vms/sa/legacy',
    'spiffe://cluster.local/ns/vms/sa/mysql',
  ]);
  assert.deepEqual(eps(snap.endpoints(svc, 3306)), [
    '/var/run/mysql.sock:0',
    '10.0.0.5:13306',
    '10.0.0.6:13306',
  ]);
  assert.deepEqual(eps(snap.endpoints(svc, 8080)), [
    '/var/run/mysql.sock:0',
    '10.0.0.5:8080',
    '10.0.0.6:18080',
  ]);
  const first = snap.endpoints(svc, 3306)[1]!;
  assert.deepEqual(first.labels, { version: 'v1' });
  assert.equal(first.serviceAccount, 'spiffe://cluster.local/ns/vms/sa/mysql');
  assert.equal(first.tlsMode, 'istio');
  assert.equal(first.locality, 'us-east/zone-a');
  assert.equal(first.network, 'vpc-1');
  assert.equal(first.weight, 3);
  assert.equal(snap.endpoints(svc, 3306)[0]?.unixSocket, true);
  assert.equal(snap.endpoints(svc, 3306)[2]?.tlsMode, 'disabled');
});

test('service entry: workloadSelector picks WorkloadEntries and Pods of its namespace', () => {
  const objects = [
    istio('ServiceEntry', 'vms', 'ratings-vm', {
      hosts: ['ratings.vms.svc.cluster.local'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
      workloadSelector: { labels: { app: 'ratings' } },
    }),
    istio('WorkloadEntry', 'vms', 'vm-1', {
      address: '192.168.1.10',
      labels: { app: 'ratings', version: 'v2' },
      serviceAccount: 'ratings',
      ports: { http: 19080 },
    }),
    istio(
      'WorkloadEntry',
      'vms',
      'vm-2',
      { address: '192.168.1.11', labels: { app: 'ratings' } },
      {},
    ),
    {
      ...istio('WorkloadEntry', 'vms', 'vm-3', {
        address: '192.168.1.12',
        labels: { app: 'ratings' },
      }),
      status: { conditions: [{ type: 'Healthy', status: 'False' }] },
    },
    istio('WorkloadEntry', 'other', 'vm-4', {
      address: '192.168.1.13',
      labels: { app: 'ratings' },
    }),
    istio('WorkloadEntry', 'vms', 'vm-5', { address: '192.168.1.14', labels: { app: 'reviews' } }),
    pod('ratings-pod', 'vms', {
      labels: { app: 'ratings' },
      ip: '10.0.0.9',
      containerPorts: [{ name: 'http', containerPort: 8080 }],
    }),
  ];
  const snap = buildSnapshot(objects, { version: '1' });
  const svc = snap.service('ratings.vms.svc.cluster.local', 'vms')!;
  assert.deepEqual(svc.selector, { app: 'ratings' });
  assert.deepEqual(eps(snap.endpoints(svc)), [
    '10.0.0.9:8080',
    '192.168.1.10:19080',
    '192.168.1.11:9080',
    '192.168.1.12:9080 (UnHealthy)',
  ]);
  const vm1 = snap.endpoints(svc).find((e) => e.workload?.name === 'vm-1')!;
  assert.deepEqual(vm1.labels, { app: 'ratings', version: 'v2' });
  assert.equal(vm1.serviceAccount, 'spiffe://cluster.local/ns/vms/sa/ratings');
  assert.equal(vm1.tlsMode, 'istio');
  assert.equal(snap.workload('WorkloadEntry', 'vms', 'vm-2')?.tlsMode, 'disabled');
});

test('service entry: NONE is passthrough without endpoints; wildcard hosts are kept', () => {
  const snap = buildSnapshot(
    [
      istio('ServiceEntry', 'default', 'wiki', {
        hosts: ['*.wikipedia.org'],
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
        resolution: 'NONE',
      }),
      istio('ServiceEntry', 'default', 'auto', {
        hosts: ['auto.example.com'],
        ports: [{ number: 8000, name: 'p' }],
        resolution: 'DNS_ROUND_ROBIN',
      }),
    ],
    { version: '1' },
  );
  const wiki = snap.service('*.wikipedia.org', 'default')!;
  assert.equal(wiki.resolution, 'Passthrough');
  assert.equal(wiki.meshExternal, true);
  assert.equal(wiki.defaultAddress, '0.0.0.0');
  assert.equal(snap.endpoints(wiki).length, 0);
  const auto = snap.service('auto.example.com', 'default')!;
  assert.equal(auto.resolution, 'DNSRoundRobinLB');
  assert.equal(auto.ports[0]?.protocol, 'UnsupportedProtocol');
  assert.deepEqual(eps(snap.endpoints(auto)), ['auto.example.com:8000']);
});

test('service entry: a Kubernetes Service wins its host over a ServiceEntry; endpoints merge', () => {
  const snap = buildSnapshot(
    [
      istio(
        'ServiceEntry',
        'default',
        'squat',
        {
          hosts: ['web.default.svc.cluster.local'],
          ports: [{ number: 80, name: 'tcp', protocol: 'TCP' }],
          resolution: 'STATIC',
          endpoints: [{ address: '10.9.9.9' }],
        },
        { creationTimestamp: '2020-01-01T00:00:00Z' },
      ),
      service(
        'web',
        'default',
        { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] },
        { creationTimestamp: '2024-01-01T00:00:00Z' },
      ),
      pod('web-0', 'default', { labels: { app: 'web' }, ip: '10.0.0.1' }),
    ],
    { version: '1' },
  );
  const svc = snap.service('web.default.svc.cluster.local', 'default')!;
  assert.equal(svc.origin, 'Kubernetes');
  assert.equal(svc.ports[0]?.protocol, 'HTTP');
  assert.deepEqual(eps(snap.endpoints(svc)), ['10.0.0.1:80', '10.9.9.9:80']);
  assert.deepEqual(
    snap.problems.map((p) => `${p.object.kind} ${p.object.name}`),
    ['ServiceEntry squat'],
  );
});

test('service entry: Kubernetes Services select IP WorkloadEntries too', () => {
  const snap = buildSnapshot(
    [
      service('details', 'default', {
        selector: { app: 'details' },
        ports: [{ name: 'http', port: 9080, targetPort: 9080 }],
      }),
      istio('WorkloadEntry', 'default', 'details-process', {
        address: '127.0.0.1',
        labels: { app: 'details' },
        ports: { http: 15206 },
      }),
      istio('WorkloadEntry', 'default', 'details-dns', {
        address: 'details.internal',
        labels: { app: 'details' },
      }),
    ],
    { version: '1' },
  );
  const svc = snap.service('details.default.svc.cluster.local', 'default')!;
  assert.deepEqual(eps(snap.endpoints(svc)), ['127.0.0.1:15206']);
});
