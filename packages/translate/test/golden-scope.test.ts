// What a proxy may reach: Sidecar egress hosts and ports, Sidecar ingress, outbound traffic
// policy, exportTo visibility, cross-namespace host names and source-dependent matches.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generate, simulate, type GeneratedResources } from '../src/index.js';
import { assertGolden, assertValidEnvoy, world } from './fixtures.js';

function svc(name: string, ns: string, port: number, extra = ''): string {
  return `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}${extra}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: ${port}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec: {containers: [{name: ${name}, image: ${name}}]}
---`;
}

const NAMESPACES = `
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---`;

const MESH = `${NAMESPACES}
${svc('frontend', 'team-a', 80)}
${svc('backend', 'team-a', 8080)}
${svc('billing', 'team-b', 8080)}
${svc('secret', 'team-b', 9000, ', annotations: {networking.istio.io/exportTo: "."}')}
${svc('telemetry', 'istio-system', 15014)}
`;

/** A summary of what a proxy can reach: listener names and each route config's virtual hosts. */
function reach(res: GeneratedResources): { listeners: string[]; routes: Record<string, string[]> } {
  const routes: Record<string, string[]> = {};
  for (const r of res.routes)
    routes[r.name ?? ''] = (r.virtualHosts ?? []).map((v) => v.name ?? '');
  return { listeners: res.listeners.map((l) => l.name ?? ''), routes };
}

describe('sidecar scope and visibility', () => {
  test('default scope: every exported service; exportTo "." hides team-b/secret from team-a', () => {
    const w = world(MESH, { sleep: false });
    const res = generate(w.snapshot, w.proxy('frontend-0', 'team-a'));
    assertValidEnvoy(res);
    assertGolden('scope-default', reach(res));
    assert.ok(!res.clusters.some((c) => c.name?.includes('secret')));
  });

  test('Sidecar egress hosts limit services, routes and clusters', () => {
    const w = world(
      `${MESH}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: team-a}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}`,
      { sleep: false },
    );
    const res = generate(w.snapshot, w.proxy('frontend-0', 'team-a'));
    assertValidEnvoy(res);
    assertGolden('scope-sidecar-egress', reach(res));
    const billing = simulate(res, { port: 8080, host: 'billing.team-b:8080', protocol: 'http' });
    assert.equal(billing.virtualHost, 'block_all');
    assert.equal(billing.directResponse?.status, 502);
    const backend = simulate(res, { port: 8080, host: 'backend:8080', protocol: 'http' });
    assert.equal(backend.cluster, 'outbound|8080||backend.team-a.svc.cluster.local');
  });

  test('Sidecar egress listener with a port; VirtualService destinations are added', () => {
    const w = world(
      `${MESH}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: team-a}
spec:
  hosts: [backend]
  http:
  - match: [{uri: {prefix: /bill}}]
    route:
    - destination: {host: billing.team-b.svc.cluster.local, port: {number: 8080}}
  - route:
    - destination: {host: backend}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend, namespace: team-a}
spec:
  workloadSelector: {labels: {app: frontend}}
  egress:
  - port: {number: 8080, protocol: HTTP, name: http}
    hosts: ["./backend.team-a.svc.cluster.local"]
  - hosts: ["istio-system/*"]`,
      { sleep: false },
    );
    const res = generate(w.snapshot, w.proxy('frontend-0', 'team-a'));
    assertValidEnvoy(res);
    assertGolden('scope-sidecar-egress-port', reach(res));
    assert.ok(
      res.clusters.some((c) => c.name === 'outbound|8080||billing.team-b.svc.cluster.local'),
    );
    const bill = simulate(res, {
      port: 8080,
      host: 'backend:8080',
      path: '/bill',
      protocol: 'http',
    });
    assert.equal(bill.cluster, 'outbound|8080||billing.team-b.svc.cluster.local');
    // Another workload of the namespace is not selected: it sees everything.
    const other = generate(w.snapshot, w.proxy('backend-0', 'team-a'));
    assert.ok(
      other.routes.some(
        (r) => r.name === '8080' && r.virtualHosts?.some((v) => v.name?.startsWith('billing')),
      ),
    );
  });

  test('Sidecar ingress listener replaces the service ports on the inbound side', () => {
    const w = world(
      `${MESH}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: backend, namespace: team-a}
spec:
  workloadSelector: {labels: {app: backend}}
  ingress:
  - port: {number: 9090, protocol: HTTP, name: http-admin}
    defaultEndpoint: 127.0.0.1:9090`,
      { sleep: false },
    );
    const res = generate(w.snapshot, w.proxy('backend-0', 'team-a'));
    assertValidEnvoy(res);
    const vi = res.listeners.find((l) => l.name === 'virtualInbound');
    assert.deepEqual(
      vi?.filterChains?.map((c) => c.name),
      [
        'virtualInbound-blackhole',
        'virtualInbound-catchall-http',
        'virtualInbound',
        '0.0.0.0_9090',
      ],
    );
    const r = simulate(res, {
      port: 9090,
      host: 'backend',
      protocol: 'http',
      direction: 'inbound',
    });
    assert.equal(r.cluster, 'inbound|9090||');
  });

  test('host names: the short name only from the same namespace', () => {
    const w = world(MESH, { sleep: false });
    const res = generate(w.snapshot, w.proxy('frontend-0', 'team-a'));
    const rc = res.routes.find((r) => r.name === '8080');
    const domains: Record<string, string[]> = Object.fromEntries(
      (rc?.virtualHosts ?? []).map((v): [string, string[]] => [v.name ?? '', v.domains ?? []]),
    );
    assertGolden('virtual-host-domains', domains);
    const billing = domains['billing.team-b.svc.cluster.local:8080'] ?? [];
    assert.ok(!billing.includes('billing'));
    assert.ok(billing.includes('billing.team-b'));
    assert.ok((domains['backend.team-a.svc.cluster.local:8080'] ?? []).includes('backend'));
  });

  test('VirtualService exportTo "." applies only in its namespace', () => {
    const w = world(
      `${MESH}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: billing-private, namespace: team-b}
spec:
  hosts: [billing.team-b.svc.cluster.local]
  exportTo: ["."]
  http:
  - directResponse: {status: 503}`,
      { sleep: false },
    );
    const fromA = simulate(generate(w.snapshot, w.proxy('frontend-0', 'team-a')), {
      port: 8080,
      host: 'billing.team-b',
      protocol: 'http',
    });
    assert.equal(fromA.cluster, 'outbound|8080||billing.team-b.svc.cluster.local');
    const fromB = simulate(generate(w.snapshot, w.proxy('billing-0', 'team-b')), {
      port: 8080,
      host: 'billing',
      protocol: 'http',
    });
    assert.equal(fromB.outcome, 'direct-response');
  });

  test('sourceLabels, sourceNamespace and port conditions are decided per proxy', () => {
    const w = world(
      `${MESH}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: team-a}
spec:
  hosts: [backend.team-a.svc.cluster.local]
  http:
  - match: [{sourceLabels: {app: frontend}}]
    route:
    - destination: {host: backend.team-a.svc.cluster.local}
    headers: {request: {set: {x-from: frontend}}}
  - match: [{sourceNamespace: team-b}]
    directResponse: {status: 403}
  - match: [{port: 9999}]
    directResponse: {status: 500}
  - route:
    - destination: {host: backend.team-a.svc.cluster.local}`,
      { sleep: false },
    );
    const ask = (pod: string, ns: string): ReturnType<typeof simulate> =>
      simulate(generate(w.snapshot, w.proxy(pod, ns)), {
        port: 8080,
        host: 'backend.team-a:8080',
        protocol: 'http',
      });
    assert.equal(ask('frontend-0', 'team-a').requestHeadersToAdd?.[0]?.header?.value, 'frontend');
    assert.equal(ask('billing-0', 'team-b').directResponse?.status, 403);
    const fromTelemetry = ask('telemetry-0', 'istio-system');
    assert.equal(fromTelemetry.outcome, 'forward');
    assert.equal(fromTelemetry.requestHeadersToAdd, undefined);
  });
});
