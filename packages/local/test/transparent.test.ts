// Transparent capture end to end (Linux as root, with ip and iptables: CI runs so; elsewhere
// these tests FAIL with a message naming what is missing, they never skip): the runtime in-process
// gives each pod a network namespace and IP on its bridge, Services get cluster IPs and resolve by
// name through the pods' hosts files, an injected client reaches an injected server through
// both sidecars (iptables REDIRECT to 15001/15006), an uninjected pod has no rules, a removed
// pod's network goes with it, and stopping the runtime (or cleaning up after a killed one)
// leaves no namespace, link or /etc/netns directory behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@trellis/api';
import { keyOf, type ConfigStore } from '@trellis/config';
import {
  ETC_NETNS,
  LocalRuntime,
  TransparentNetwork,
  ipToInt,
  netnsName,
  networkFile,
  parseCidr,
  removeNetworkLeftovers,
  runTool,
  runtimePaths,
  transparentPrerequisites,
  type NetTools,
} from '../src/index.js';
import { HTTP_APP, JOB_APP, TRELLIS_BIN, deployment, eventually, get, pod } from './helpers.js';

const NS = 'tp';
let dir: string;
let rt: LocalRuntime;
let store: ConfigStore;
let tools: NetTools;

function requireTransparent(): NetTools {
  const p = transparentPrerequisites();
  assert.ok(
    p.tools,
    `transparent capture tests need Linux, root, ip and iptables (CI installs iptables iproute2 and runs as root); missing: ${p.missing.join(', ')}`,
  );
  return p.tools;
}

before(async () => {
  tools = requireTransparent();
  dir = mkdtempSync(join(tmpdir(), 'trellis-local-tp-'));
  rt = await LocalRuntime.start({
    stateDir: join(dir, 'state'),
    trellisBin: TRELLIS_BIN,
    capture: 'transparent',
    xdsPort: 0,
    monitoringPort: 0,
    ingress: { httpPort: 0, httpsPort: 0, tcpPort: 0 },
    backoff: { initialMs: 200, maxMs: 2_000 },
    proxyDrainMs: 100,
    maxGraceMs: 3_000,
    debounce: { quietMs: 10, maxMs: 500 },
  });
  store = rt.store;
});

after(async () => {
  if (!rt) return;
  const bridge = rt.info.network?.bridge ?? '';
  await rt.stop();
  const netns = await runTool(tools.ip, ['netns', 'list']);
  assert.doesNotMatch(netns, new RegExp(`^${bridge}-`, 'm'), 'no network namespace is left');
  const links = await runTool(tools.ip, ['-br', 'link']);
  assert.doesNotMatch(links, new RegExp(`^${bridge}`, 'm'), 'no bridge or veth is left');
  const etc = existsSync(ETC_NETNS) ? readdirSync(ETC_NETNS) : [];
  assert.deepEqual(
    etc.filter((d) => d.startsWith(`${bridge}-`)),
    [],
    'no /etc/netns directory is left',
  );
  assert.equal(existsSync(networkFile(runtimePaths(join(dir, 'state')).runtimeDir)), false);
  rmSync(dir, { recursive: true, force: true });
});

async function put(o: KubeObject): Promise<void> {
  const existing = await store.get(keyOf(o));
  if (existing) await store.update(o);
  else await store.create(o);
}

interface PodView {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly object: KubeObject;
}

const isReady = (p: KubeObject): boolean =>
  (
    (p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []
  ).some((c) => c.type === 'Ready' && c.status === 'True');

/** The one ready pod of `app`, with its IP and network namespace. */
async function readyPod(app: string): Promise<PodView> {
  return eventually(
    `a ready ${app} pod`,
    async () => {
      const { items } = await store.list({ group: '', kind: 'Pod' }, { namespace: NS });
      const ps = items.filter((p) => p.metadata.labels?.app === app);
      const p = ps[0];
      if (ps.length !== 1 || !p || !isReady(p)) return undefined;
      const ip = (p.status as { podIP: string }).podIP;
      const { base } = parseCidr(rt.info.network!.subnet);
      return {
        name: p.metadata.name,
        ip,
        netns: netnsName(rt.info.network!.bridge, ipToInt(ip) - base),
        object: p,
      };
    },
    30_000,
  );
}

const nat = (netns: string): Promise<string> =>
  runTool(tools.ip, ['netns', 'exec', netns, 'iptables-save', '-t', 'nat']);

test(
  'pods get their own address; Services resolve to cluster IPs; traffic goes through both sidecars',
  { timeout: 60_000 },
  async () => {
    const net = rt.info.network;
    assert.ok(net, 'daemon.json records the pod network');
    assert.equal(rt.info.capture, 'transparent');
    await put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'istio-injection': 'enabled' } },
    });
    await put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: NS },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 9080 }] },
    });
    await put(deployment('web', NS, { command: ['node', HTTP_APP], port: 9080 }));
    await put(deployment('client', NS, { command: ['node', HTTP_APP], port: 8080 }));
    await put(
      deployment('plain', NS, {
        command: ['node', HTTP_APP],
        port: 9090,
        labels: { 'sidecar.istio.io/inject': 'false' },
      }),
    );
    const web = await readyPod('web');
    const client = await readyPod('client');
    const plain = await readyPod('plain');

    // Addresses and Kubernetes-native pods.
    for (const p of [web, client, plain]) {
      assert.ok(
        parseCidr(`${p.ip}/16`).base === parseCidr(net.subnet).base,
        `${p.ip} in ${net.subnet}`,
      );
      assert.deepEqual((p.object.status as { podIPs: unknown }).podIPs, [{ ip: p.ip }]);
      const annotations = Object.keys(p.object.metadata.annotations ?? {});
      assert.deepEqual(
        annotations.filter((a) => a.startsWith('trellis.io/')),
        [],
        'no local-mode port annotations',
      );
    }
    assert.equal(new Set([web.ip, client.ip, plain.ip]).size, 3);
    const svc = await eventually('a cluster IP for web', async () => {
      const s = await store.get({ group: '', kind: 'Service', namespace: NS, name: 'web' });
      const ip = (s?.spec as { clusterIP?: string } | undefined)?.clusterIP;
      return ip ? { ip, ips: (s?.spec as { clusterIPs?: unknown }).clusterIPs } : undefined;
    });
    assert.match(svc.ip, /^10\.96\.\d+\.\d+$/);
    assert.deepEqual(svc.ips, [svc.ip]);

    // The app's environment: its own port on every address, no proxy variables.
    const env = (
      JSON.parse((await get(`http://${plain.ip}:9090/env`)).body) as {
        env: Record<string, string>;
      }
    ).env;
    assert.deepEqual(
      [env.HOST, env.PORT, env.POD_IP, env.HTTP_PROXY],
      ['0.0.0.0', '9090', plain.ip, undefined],
    );

    // Name resolution inside a pod.
    const hosts = readFileSync(join(ETC_NETNS, client.netns, 'hosts'), 'utf8');
    assert.match(hosts, new RegExp(`^${svc.ip.replace(/\./g, '\\.')}\\tweb web\\.${NS} `, 'm'));
    const resolved = await runTool(tools.ip, [
      'netns',
      'exec',
      client.netns,
      'getent',
      'hosts',
      'web',
    ]);
    assert.match(resolved, new RegExp(`^${svc.ip.replace(/\./g, '\\.')}\\s`));

    // iptables: injected pods have istio-iptables' rules, the uninjected one none.
    assert.match(await nat(web.netns), /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    assert.match(await nat(web.netns), /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    assert.doesNotMatch(await nat(plain.netns), /ISTIO/);

    // The sidecar runs as the proxy user.
    const row = rt.status().pods.find((p) => p.name === web.name);
    const proxyPid = row?.pids['istio-proxy'];
    assert.ok(proxyPid, 'the sidecar runs');
    assert.match(readFileSync(`/proc/${proxyPid}/status`, 'utf8'), /^Uid:\s+1337\s/m);
    assert.equal(row?.podIP, web.ip);

    // client -> http://web (cluster IP, port 80) -> client sidecar 15001 -> web pod 9080 ->
    // web sidecar 15006 -> the app.
    const r = await eventually('client reaches web by name', async () => {
      const res = await get(
        `http://${client.ip}:8080/call?url=${encodeURIComponent('http://web/hello')}`,
      );
      return res.status === 200 ? res : undefined;
    });
    const body = JSON.parse(r.body) as { name: string; path: string };
    assert.deepEqual([body.name, body.path], ['web', '/hello']);
    const logs = join(dir, 'state', 'logs', NS);
    await eventually('access logs of both sidecars', () => {
      const out = readFileSync(join(logs, client.name, 'proxy.log'), 'utf8');
      const inb = readFileSync(join(logs, web.name, 'proxy.log'), 'utf8');
      return out.includes(`outbound|80||web.${NS}.svc.cluster.local`) &&
        inb.includes('inbound|9080||')
        ? true
        : undefined;
    });
  },
);

test('a new Service reaches running pods: hosts files are rewritten in place', async () => {
  const client = await readyPod('client');
  const file = join(ETC_NETNS, client.netns, 'hosts');
  const inode = statSync(file).ino;
  await put({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'late', namespace: NS },
    spec: { selector: { app: 'late' }, ports: [{ name: 'http', port: 80 }] },
  });
  const resolved = await eventually('late resolves inside the pod', async () => {
    const out = await runTool(tools.ip, [
      'netns',
      'exec',
      client.netns,
      'getent',
      'hosts',
      `late.${NS}`,
    ]);
    return out.trim() !== '' ? out : undefined;
  });
  assert.match(resolved, /^10\.96\./);
  assert.equal(statSync(file).ino, inode, 'same inode: the bind mount sees the new content');
});

test('a removed pod takes its network namespace and /etc/netns directory with it', async () => {
  const plain = await readyPod('plain');
  await put(
    deployment('plain', NS, {
      command: ['node', HTTP_APP],
      port: 9090,
      replicas: 0,
      labels: { 'sidecar.istio.io/inject': 'false' },
    }),
  );
  await eventually('the namespace is gone', async () => {
    const list = await runTool(tools.ip, ['netns', 'list']);
    return !list.split('\n').some((l) => l.split(' ')[0] === plain.netns) &&
      !existsSync(join(ETC_NETNS, plain.netns))
      ? true
      : undefined;
  });
});

test(
  'an injected Pod runs to completion through the capture: Succeeded, then its sidecar and network go',
  { timeout: 120_000 },
  async () => {
    await readyPod('web');
    const seen = new Map<string, number>();
    rt.controller.onReconcile = () => {
      const row = rt.status().pods.find((p) => p.namespace === NS && p.name === 'job');
      for (const [c, pid] of Object.entries(row?.pids ?? {})) seen.set(c, pid);
    };
    // No HTTP_PROXY here: the call to the Service name is captured by iptables (15001).
    await put(
      pod('job', NS, {
        command: ['node', JOB_APP, 'call', 'http://web/from-job'],
        restartPolicy: 'Never',
      }),
    );
    const done = await eventually(
      'the job pod finished',
      async () => {
        const p = await store.get({ group: '', kind: 'Pod', namespace: NS, name: 'job' });
        const phase = (p?.status as { phase?: string } | undefined)?.phase;
        return phase === 'Succeeded' || phase === 'Failed' ? p : undefined;
      },
      90_000, // the job retries its call for up to 45 s (a loaded machine starts pods slowly)
    );
    rt.controller.onReconcile = undefined;
    const st = done.status as {
      phase: string;
      podIP: string;
      containerStatuses: { name: string; state: { terminated?: { exitCode: number } } }[];
    };
    assert.equal(st.phase, 'Succeeded', JSON.stringify(st));
    const proxyPid = seen.get('istio-proxy');
    assert.ok(proxyPid, 'the sidecar ran');
    assert.ok(!existsSync(`/proc/${proxyPid}`), 'the sidecar process is gone');
    assert.ok(
      st.containerStatuses.find((c) => c.name === 'istio-proxy')?.state.terminated,
      'the sidecar is terminated',
    );
    const log = readFileSync(join(dir, 'state', 'logs', NS, 'job', 'app.log'), 'utf8');
    assert.match(log, /status 200 body .*"name":"web".*"path":"\/from-job"/);
    const { base } = parseCidr(rt.info.network!.subnet);
    const netns = netnsName(rt.info.network!.bridge, ipToInt(st.podIP) - base);
    const list = await runTool(tools.ip, ['netns', 'list']);
    assert.ok(
      !list.split('\n').some((l) => l.split(' ')[0] === netns),
      `the finished pod's namespace ${netns} is removed`,
    );
    assert.equal(rt.status().pods.find((p) => p.name === 'job')?.status, 'Completed');
    await store.delete({ group: '', kind: 'Pod', namespace: NS, name: 'job' });
  },
);

test('what a killed runtime left of its network is removed by the next up or down', async () => {
  const d = mkdtempSync(join(tmpdir(), 'trellis-local-tp-left-'));
  const runtimeDir = join(d, 'runtime');
  try {
    const net = await TransparentNetwork.create({
      stateDir: d,
      runtimeDir,
      tools,
      log: () => {},
    });
    const a = await net.addPod({ namespace: 'x', name: 'a', injected: true });
    await net.addPod({ namespace: 'x', name: 'b', injected: false });
    // No close(): the runtime "was killed".
    assert.ok(existsSync(join(ETC_NETNS, a.netns, 'hosts')));
    const removed = await removeNetworkLeftovers(d, runtimeDir);
    assert.ok(removed.includes(`netns ${a.netns}`), removed.join(', '));
    assert.ok(removed.includes(`link ${net.bridge}`), removed.join(', '));
    assert.doesNotMatch(await runTool(tools.ip, ['netns', 'list']), new RegExp(net.bridge));
    assert.doesNotMatch(await runTool(tools.ip, ['-br', 'link']), new RegExp(net.bridge));
    assert.equal(existsSync(join(ETC_NETNS, a.netns)), false);
    assert.deepEqual(await removeNetworkLeftovers(d, runtimeDir), [], 'nothing the second time');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('as another user, `trellis up --capture=transparent` names what is missing, starts nothing', async () => {
  const d = mkdtempSync(join(tmpdir(), 'trellis-local-tp-user-'));
  try {
    const state = join(d, 'state');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        tools.setpriv,
        [
          '--reuid',
          '1337',
          '--regid',
          '1337',
          '--clear-groups',
          process.execPath,
          TRELLIS_BIN,
          'up',
          '--capture=transparent',
          '--state-dir',
          state,
        ],
        { timeout: 20_000 },
        (err, _out, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
      ),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /--capture=transparent needs Linux, root, ip and iptables; missing: root/,
    );
    assert.equal(existsSync(state), false, 'nothing started, no state directory');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
