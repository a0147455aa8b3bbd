// Snapshots derived from their predecessor (updateSnapshot, buildSnapshot with `previous`) must
// equal snapshots built from scratch: for seeded random sequences of changes to Pods, Services,
// EndpointSlices, WorkloadEntries, ServiceEntries and routing configs, every lookup and every
// diff classification is compared with the from-scratch build. Also checks the identity
// contract translation caches rely on: a service whose endpoints did not change keeps its
// Service object and endpoint arrays (the same references).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@trellis/api';
import { seededRandom } from '@trellis/testing';
import {
  buildSnapshot,
  changedObjectKeys,
  diffSnapshots,
  updateSnapshot,
  type Snapshot,
  type SnapshotDiff,
} from '../src/index.js';
import { istio, obj, pod, service } from './fixtures.js';

const NAMESPACES = ['a', 'b', 'istio-system'];
const APPS = ['web', 'api', 'db'];
const IPS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'];

type Random = () => number;
const pick = <T>(r: Random, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const chance = (r: Random, p: number): boolean => r() < p;
const stamp = (r: Random): string => `2024-01-0${1 + Math.floor(r() * 3)}T00:00:00Z`;

/** The slots of the universe: each makes a random version of one object. */
const SLOTS: readonly { readonly key: string; readonly make: (r: Random) => KubeObject }[] = [
  ...['a', 'b'].flatMap((ns) =>
    Array.from({ length: 6 }, (_, i) => ({
      key: `/Pod/${ns}/p${i}`,
      make: (r: Random) => {
        const annotations: Record<string, string> = {};
        if (chance(r, 0.15))
          annotations['trellis.io/inbound-ports'] = pick(r, ['{"8080": 15106}', '{"8080": "x"}']);
        return pod(`p${i}`, ns, {
          labels: {
            app: pick(r, APPS),
            ...(chance(r, 0.6) ? { version: pick(r, ['v1', 'v2']) } : {}),
          },
          ...(chance(r, 0.9) ? { ip: pick(r, IPS) } : {}),
          ready: chance(r, 0.7),
          ...(chance(r, 0.1) ? { phase: 'Succeeded' } : {}),
          ...(chance(r, 0.1) ? { deleting: true } : {}),
          serviceAccount: pick(r, ['sa1', 'sa2']),
          containerPorts: [{ name: 'http', containerPort: pick(r, [8080, 9090]) }],
          annotations,
        });
      },
    })),
  ),
  ...['a', 'b'].flatMap((ns) =>
    APPS.map((app) => ({
      key: `/Service/${ns}/${app}`,
      make: (r: Random) => {
        const kind = r();
        const ports = [
          { name: 'http', port: 80, targetPort: pick<string | number>(r, ['http', 8080, 9090]) },
          ...(chance(r, 0.3) ? [{ name: 'tcp-x', port: 81 }] : []),
        ];
        const selector =
          kind < 0.1
            ? undefined
            : kind < 0.2
              ? {}
              : chance(r, 0.3)
                ? { app, version: 'v1' }
                : { app: pick(r, [app, app, 'web']) };
        return service(
          app,
          ns,
          kind > 0.95
            ? { type: 'ExternalName', externalName: 'x.example.com' }
            : {
                ...(chance(r, 0.2)
                  ? { clusterIP: 'None' }
                  : { clusterIP: `10.96.0.${app.length}` }),
                ...(selector ? { selector } : {}),
                ...(chance(r, 0.1) ? { publishNotReadyAddresses: true } : {}),
                ports,
              },
          {
            creationTimestamp: stamp(r),
            ...(chance(r, 0.2)
              ? { annotations: { 'networking.istio.io/exportTo': pick(r, ['.', 'b', '*']) } }
              : {}),
          },
        );
      },
    })),
  ),
  ...['s1', 's2'].map((name) => ({
    key: `discovery.k8s.io/EndpointSlice/a/${name}`,
    make: (r: Random): KubeObject => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name,
        namespace: 'a',
        labels: { 'kubernetes.io/service-name': pick(r, ['api', 'api', 'db']) },
      },
      addressType: 'IPv4',
      endpoints: Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({
        addresses: [pick(r, IPS)],
        conditions: { ready: chance(r, 0.7), terminating: chance(r, 0.3) },
        ...(chance(r, 0.6) ? { targetRef: { kind: 'Pod', name: `p${Math.floor(r() * 6)}` } } : {}),
      })),
      ports: [{ name: 'http', port: 8080 }],
    }),
  })),
  ...['a', 'b'].flatMap((ns) =>
    ['we0', 'we1'].map((name) => ({
      key: `networking.istio.io/WorkloadEntry/${ns}/${name}`,
      make: (r: Random) =>
        istio('WorkloadEntry', ns, name, {
          address: pick(r, [...IPS, 'vm.internal', 'unix:///var/run/app.sock']),
          labels: { app: pick(r, APPS) },
          ...(chance(r, 0.5) ? { serviceAccount: 'vm' } : {}),
          ports: { http: pick(r, [7070, 7071]) },
        }),
    })),
  ),
  ...['se1', 'se2'].map((name) => ({
    key: `networking.istio.io/ServiceEntry/a/${name}`,
    make: (r: Random) =>
      istio(
        'ServiceEntry',
        'a',
        name,
        {
          hosts: chance(r, 0.5)
            ? ['web.a.svc.cluster.local']
            : [pick(r, ['ext.example.com', 'db.a.svc.cluster.local'])],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
          resolution: pick(r, ['STATIC', 'DNS']),
          location: 'MESH_INTERNAL',
          ...(chance(r, 0.6)
            ? { workloadSelector: { labels: { app: pick(r, APPS) } } }
            : { endpoints: [{ address: pick(r, IPS), labels: { app: 'ext' } }] }),
        },
        { creationTimestamp: stamp(r) },
      ),
  })),
  {
    key: 'networking.istio.io/VirtualService/a/web',
    make: (r: Random) =>
      istio('VirtualService', 'a', 'web', {
        hosts: ['web'],
        ...(chance(r, 0.3) ? { exportTo: ['.'] } : {}),
        http: [{ route: [{ destination: { host: 'web', subset: pick(r, ['v1', 'v2']) } }] }],
      }),
  },
  ...['r1', 'r2'].map((name) => ({
    key: `networking.istio.io/DestinationRule/a/${name}`,
    make: (r: Random) =>
      istio(
        'DestinationRule',
        'a',
        name,
        {
          host: 'web',
          ...(chance(r, 0.2) ? { exportTo: ['.'] } : {}),
          subsets: [{ name: pick(r, ['v1', 'v2']), labels: { version: 'v1' } }],
        },
        { creationTimestamp: stamp(r) },
      ),
  })),
  {
    key: 'networking.istio.io/Sidecar/b/default',
    make: (r: Random) =>
      istio('Sidecar', 'b', 'default', { egress: [{ hosts: [pick(r, ['./*', '*/*'])] }] }),
  },
  {
    key: 'networking.istio.io/Gateway/istio-system/gw',
    make: (r: Random) =>
      istio('Gateway', 'istio-system', 'gw', {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: pick(r, [80, 8080]), name: 'http', protocol: 'HTTP' }, hosts: ['*'] },
        ],
      }),
  },
  {
    key: 'security.istio.io/PeerAuthentication/b/pa',
    make: (r: Random) =>
      obj('security.istio.io/v1', 'PeerAuthentication', 'b', 'pa', {
        mtls: { mode: pick(r, ['STRICT', 'PERMISSIVE']) },
      }),
  },
  {
    key: '/Namespace//b',
    make: (r: Random): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'b', labels: { 'istio-injection': pick(r, ['enabled', 'disabled']) } },
    }),
  },
];

const HOSTS = [
  ...['a', 'b'].flatMap((ns) => APPS.map((app) => `${app}.${ns}.svc.cluster.local`)),
  'ext.example.com',
];

/** Every answer a snapshot gives, as plain data. */
function view(s: Snapshot): unknown {
  const r = s.registry;
  const workloadNames = SLOTS.filter(
    (x) => x.key.startsWith('/Pod/') || x.key.includes('/WorkloadEntry/'),
  ).map((x) => {
    const [, kind, ns, name] = x.key.split('/') as [
      string,
      'Pod' | 'WorkloadEntry',
      string,
      string,
    ];
    return { kind, ns, name };
  });
  return {
    version: s.version,
    objects: s.objects,
    objectLookups: SLOTS.map((x) => s.object(x.key) ?? null),
    services: s.services,
    endpoints: s.services.map((svc) => [
      s.endpoints(svc),
      ...svc.ports.map((p) => s.endpoints(svc, p.port)),
      s.endpoints(svc, 12345),
    ]),
    byHost: HOSTS.map((h) => [
      r.servicesForHostname(h),
      NAMESPACES.map((ns) => r.service(h, ns) ?? null),
    ]),
    byNamespace: NAMESPACES.map((ns) => r.servicesInNamespace(ns)),
    workloads: r.workloads,
    workloadLookups: workloadNames.map(({ kind, ns, name }) => [
      r.workload(kind, ns, name) ?? null,
      r.endpointsOfWorkload(kind, ns, name),
    ]),
    workloadsAt: [...IPS, 'vm.internal', '/var/run/app.sock'].map((ip) => r.workloadsAt(ip)),
    problems: s.problems,
    lists: [
      s.virtualServices,
      s.destinationRules,
      s.gateways,
      s.sidecars,
      s.serviceEntries,
      s.workloadEntries,
      s.workloadGroups,
      s.peerAuthentications,
      s.authorizationPolicies,
      s.requestAuthentications,
      s.telemetries,
      s.namespaces,
    ],
    perNamespace: NAMESPACES.map((ns) => ({
      visible: s.servicesVisibleFrom(ns),
      forHost: HOSTS.map((h) => s.serviceForHostname(h, ns) ?? null),
      vs: [s.virtualServicesForGateway(ns), s.virtualServicesForGateway(ns, 'istio-system/gw')],
      dr: HOSTS.map((h) => s.destinationRule(ns, h) ?? null),
      sidecar: s.sidecarFor(ns, { app: 'web' }) ?? null,
      gateways: s.gatewaysFor(ns, { istio: 'ingressgateway' }),
      policies: s.policies('PeerAuthentication', ns),
    })),
  };
}

/** A diff without versions (chains differ only in the objects' history). */
function classify(d: SnapshotDiff): unknown {
  const { fromVersion: _f, toVersion: _t, ...rest } = d;
  return rest;
}

/** Runs one seeded sequence of changes through three chains and compares them at each step. */
function run(seed: number, steps: number): void {
  const r = seededRandom(seed);
  const objects = new Map<string, KubeObject>();
  for (const slot of SLOTS) if (chance(r, 0.8)) objects.set(slot.key, slot.make(r));
  let scratch = buildSnapshot([...objects.values()], { version: '0' });
  let incremental = buildSnapshot([...objects.values()], { version: '0' });
  let rebuilt = incremental;
  for (let step = 1; step <= steps; step++) {
    const changes = new Map<string, KubeObject | undefined>();
    const n = 1 + Math.floor(r() * (chance(r, 0.2) ? 6 : 2));
    for (let i = 0; i < n; i++) {
      const slot = pick(r, SLOTS);
      const now = objects.get(slot.key);
      let next: KubeObject | undefined;
      if (chance(r, 0.15)) next = undefined;
      else if (now && chance(r, 0.1))
        next = structuredClone(now); // an equal copy
      else next = slot.make(r);
      if (next) objects.set(slot.key, next);
      else objects.delete(slot.key);
      changes.set(slot.key, next);
    }
    const version = String(step);
    const at = `seed ${seed} step ${step} (${[...changes.keys()].join(', ')})`;
    const nextScratch = buildSnapshot([...objects.values()], { version });
    const nextIncremental = updateSnapshot(incremental, changes, { version });
    const nextRebuilt = buildSnapshot([...objects.values()], { version }, rebuilt);
    const expected = view(nextScratch);
    assert.deepEqual(view(nextIncremental), expected, `updateSnapshot differs at ${at}`);
    assert.deepEqual(view(nextRebuilt), expected, `buildSnapshot(previous) differs at ${at}`);

    const want = classify(diffSnapshots(scratch, nextScratch));
    const diff = diffSnapshots(incremental, nextIncremental);
    assert.deepEqual(classify(diff), want, `diff differs at ${at}`);
    assert.deepEqual(
      classify(diffSnapshots(rebuilt, nextRebuilt)),
      want,
      `diff (rebuilt) at ${at}`,
    );
    assert.ok(
      changedObjectKeys(incremental, nextIncremental),
      'derived snapshots know their changes',
    );
    checkIdentity(incremental, nextIncremental, diff, at);

    scratch = nextScratch;
    incremental = nextIncremental;
    rebuilt = nextRebuilt;
  }
}

/**
 * Services whose endpoints did not change keep their endpoint arrays (whole and per port);
 * services not reported changed keep their Service object.
 */
function checkIdentity(prev: Snapshot, next: Snapshot, diff: SnapshotDiff, at: string): void {
  const key = (h: string, ns: string): string => `${ns}/${h}`;
  const endpointsChanged = new Set(diff.endpoints.map((e) => key(e.hostname, e.namespace)));
  const servicesChanged = new Set(diff.services.map((e) => key(e.hostname, e.namespace)));
  for (const s of next.services) {
    const k = key(s.hostname, s.namespace);
    const old = prev.service(s.hostname, s.namespace);
    if (!old) continue;
    if (!servicesChanged.has(k)) assert.equal(s, old, `service ${k} kept at ${at}`);
    if (endpointsChanged.has(k)) continue;
    assert.equal(next.endpoints(s), prev.endpoints(old), `endpoints of ${k} kept at ${at}`);
    for (const p of s.ports)
      assert.equal(
        next.endpoints(s, p.port),
        prev.endpoints(old, p.port),
        `port ${p.port} of ${k} at ${at}`,
      );
  }
}

test('incremental: derived snapshots equal from-scratch builds over random changes', () => {
  for (let seed = 1; seed <= 40; seed++) run(seed, 25);
});

test('incremental: an endpoint-only change shares everything else with the previous snapshot', () => {
  const objects = [
    service('web', 'a', {
      clusterIP: '10.96.0.1',
      selector: { app: 'web' },
      ports: [{ name: 'http', port: 80 }],
    }),
    service('api', 'a', {
      clusterIP: '10.96.0.2',
      selector: { app: 'api' },
      ports: [{ name: 'http', port: 80 }],
    }),
    pod('web-0', 'a', { labels: { app: 'web' }, ip: '10.0.0.1', serviceAccount: 'web' }),
    pod('web-1', 'a', { labels: { app: 'web' }, ip: '10.0.0.2', serviceAccount: 'web' }),
    pod('api-0', 'a', { labels: { app: 'api' }, ip: '10.0.0.3', serviceAccount: 'api' }),
    istio('VirtualService', 'a', 'web', {
      hosts: ['web'],
      http: [{ route: [{ destination: { host: 'web' } }] }],
    }),
  ];
  const first = buildSnapshot(objects, { version: '1' });
  const flipped = pod('web-1', 'a', {
    labels: { app: 'web' },
    ip: '10.0.0.2',
    serviceAccount: 'web',
    ready: false,
  });
  const second = updateSnapshot(first, new Map([['/Pod/a/web-1', flipped]]), { version: '2' });
  const d = diffSnapshots(first, second);
  assert.equal(d.scope, 'eds');
  assert.deepEqual(
    d.endpoints.map((e) => e.hostname),
    ['web.a.svc.cluster.local'],
  );
  assert.deepEqual(changedObjectKeys(first, second), ['/Pod/a/web-1']);
  const api = { hostname: 'api.a.svc.cluster.local', namespace: 'a' };
  const web = { hostname: 'web.a.svc.cluster.local', namespace: 'a' };
  assert.equal(second.service(api.hostname, 'a'), first.service(api.hostname, 'a'));
  assert.equal(second.endpoints(api), first.endpoints(api));
  assert.equal(second.endpoints(api, 80), first.endpoints(api, 80));
  assert.notEqual(second.endpoints(web), first.endpoints(web));
  // The service itself did not change (same identities), so it is the same object.
  assert.equal(second.service(web.hostname, 'a'), first.service(web.hostname, 'a'));
  assert.equal(second.virtualServices, first.virtualServices);
  assert.deepEqual(
    second.endpoints(web).map((e) => `${e.address} ${e.health}`),
    ['10.0.0.1 Healthy', '10.0.0.2 UnHealthy'],
  );
  // The previous snapshot is untouched.
  assert.deepEqual(
    first.endpoints(web).map((e) => `${e.address} ${e.health}`),
    ['10.0.0.1 Healthy', '10.0.0.2 Healthy'],
  );
  // An object given under another key is refused.
  assert.throws(() =>
    updateSnapshot(first, new Map([['/Pod/a/other', flipped]]), { version: '3' }),
  );
});
