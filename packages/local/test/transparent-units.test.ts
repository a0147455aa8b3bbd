// Unit tests of transparent capture's pure parts: bridge, netns and veth names, the choice of a
// free subnet, pod and cluster IP allocation, istio-iptables' rules as iptables-restore input,
// a pod's hosts file and resolv.conf, and the environment of an app in a pod network of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from '@trellis/api';
import {
  ClusterIpTable,
  IpAllocator,
  appEnv,
  bridgeName,
  chooseSubnet,
  cidrsOverlap,
  hostVethName,
  hostsFile,
  intToIp,
  ipToInt,
  iptablesRules,
  netnsName,
  resolvConf,
  serviceNames,
  subnetAddresses,
} from '../src/index.js';

test('names: trl + 6 hex of the state directory, netns and veth names within 15 characters', () => {
  const a = bridgeName('/tmp/a/.trellis');
  assert.match(a, /^trl[0-9a-f]{6}$/);
  assert.equal(bridgeName('/tmp/a/.trellis'), a, 'deterministic');
  assert.notEqual(bridgeName('/tmp/b/.trellis'), a);
  assert.equal(netnsName(a, 3), `${a}-3`);
  assert.equal(hostVethName(a, 65534), `${a}v65534`);
  assert.ok(hostVethName(a, 65534).length <= 15);
  assert.throws(() => hostVethName(a, 1_000_000), /longer than 15/);
});

test('IPv4 arithmetic and CIDR overlap', () => {
  assert.equal(ipToInt('10.200.0.1'), (10 << 24) + (200 << 16) + 1);
  assert.equal(intToIp(ipToInt('255.255.255.254')), '255.255.255.254');
  assert.throws(() => ipToInt('10.0.0'), /not an IPv4 address/);
  assert.ok(cidrsOverlap('10.200.3.4/24', '10.200.0.0/16'));
  assert.ok(cidrsOverlap('10.0.0.0/8', '10.201.0.0/16'));
  assert.ok(!cidrsOverlap('10.199.255.1/16', '10.200.0.0/16'));
  assert.ok(!cidrsOverlap('192.168.1.1/24', '10.200.0.0/16'));
});

test('subnet: a 10.2xx.0.0/16 overlapping no interface address; none when all are taken', () => {
  const first = chooseSubnet('trlabcdef', []);
  assert.match(first ?? '', /^10\.2(0\d|[1-4]\d|5[0-4])\.0\.0\/16$/);
  const taken = [first!.replace('.0.0/16', '.0.1/16'), '127.0.0.1/8', 'fd00::2/64'];
  const second = chooseSubnet('trlabcdef', taken);
  assert.ok(second && second !== first);
  assert.equal(chooseSubnet('trlabcdef', [], [first!]), second, 'an excluded subnet is skipped');
  assert.equal(chooseSubnet('trlabcdef', ['10.0.0.1/8']), undefined);
  assert.deepEqual(subnetAddresses('10.201.0.0/16'), {
    hostIP: '10.201.0.1',
    probeIP: '10.201.0.2',
  });
});

test('pod IPs: sequential after the reserved ones, released ones reused only after a wrap', () => {
  const ips = new IpAllocator('10.201.0.0/16', 2);
  const a = ips.allocate();
  const b = ips.allocate();
  assert.deepEqual(
    [a, b],
    [
      { ip: '10.201.0.3', index: 3 },
      { ip: '10.201.0.4', index: 4 },
    ],
  );
  ips.release(a.ip);
  assert.equal(ips.allocate().ip, '10.201.0.5', 'next-fit: no immediate reuse');
  assert.equal(ips.has('10.201.0.3'), false);
  const small = new IpAllocator('10.0.0.0/29', 2); // .3 .. .6
  assert.deepEqual(
    [small.allocate().ip, small.allocate().ip, small.allocate().ip, small.allocate().ip],
    ['10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'],
  );
  assert.throws(() => small.allocate(), /no free address/);
  small.release('10.0.0.4');
  assert.equal(small.allocate().ip, '10.0.0.4', 'wraps around to a released address');
});

test('iptables: istio-iptables REDIRECT rules as one iptables-restore input', () => {
  const rules = iptablesRules({ probeSource: '10.201.0.2' });
  assert.equal(
    rules,
    [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':ISTIO_INBOUND - [0:0]',
      ':ISTIO_IN_REDIRECT - [0:0]',
      ':ISTIO_OUTPUT - [0:0]',
      ':ISTIO_REDIRECT - [0:0]',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -s 10.201.0.2/32 -p tcp -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('hosts file: Service names relative to the pod namespace, sorted; resolv.conf search path', () => {
  const services = [
    { namespace: 'other', name: 'db', clusterIP: '10.96.0.12' },
    { namespace: 'default', name: 'reviews', clusterIP: '10.96.0.11' },
  ];
  assert.deepEqual(serviceNames(services[1]!, 'default'), [
    'reviews',
    'reviews.default',
    'reviews.default.svc',
    'reviews.default.svc.cluster.local',
  ]);
  assert.equal(
    hostsFile({ namespace: 'default', name: 'web-1', ip: '10.201.0.3' }, services),
    '# Trellis: /etc/hosts of pod default/web-1, rewritten when Services change\n' +
      '127.0.0.1\tlocalhost\n' +
      '::1\tlocalhost ip6-localhost ip6-loopback\n' +
      '10.201.0.3\tweb-1\n' +
      '10.96.0.11\treviews reviews.default reviews.default.svc reviews.default.svc.cluster.local\n' +
      '10.96.0.12\tdb.other db.other.svc db.other.svc.cluster.local\n',
  );
  assert.match(
    resolvConf('bookinfo'),
    /^search bookinfo\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m,
  );
});

test('cluster IPs: from 10.96.0.10 up, stable per namespace/name across restarts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cluster-ips-'));
  try {
    const file = join(dir, 'cluster-ips.json');
    const t = new ClusterIpTable(file);
    assert.equal(t.ipFor('default', 'a'), '10.96.0.10');
    assert.equal(t.ipFor('default', 'b'), '10.96.0.11');
    assert.equal(t.ipFor('default', 'a'), '10.96.0.10', 'stable');
    t.claim('default', 'fixed', '10.96.0.12');
    const again = new ClusterIpTable(file);
    assert.equal(again.ipFor('default', 'b'), '10.96.0.11', 'persisted');
    assert.equal(again.ipFor('default', 'c'), '10.96.0.13', 'a claimed address is skipped');
    assert.equal(again.inRange('10.97.0.1'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('app env in a pod network of its own: HOST 0.0.0.0, POD_IP, PORT = containerPort', () => {
  const container: Container = {
    name: 'web',
    image: 'x',
    ports: [{ containerPort: 9080 }],
    env: [{ name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
  };
  const { env } = appEnv({
    container,
    podName: 'web-1',
    namespace: 'default',
    serviceAccount: 'default',
    labels: {},
    annotations: {},
    podIP: '10.201.0.3',
    hostIP: '10.201.0.1',
    bindHost: '0.0.0.0',
    actualPorts: new Map([[9080, 9080]]),
    captureEnv: {},
    baseEnv: { PATH: '/usr/bin', HTTP_PROXY: 'http://corp:3128' },
    binDirs: [],
  });
  assert.equal(env.HOST, '0.0.0.0');
  assert.equal(env.POD_IP, '10.201.0.3');
  assert.equal(env.MY_IP, '10.201.0.3');
  assert.equal(env.PORT, '9080');
  assert.equal(env.HTTP_PROXY, undefined);
});
