// Test fixtures for translation: real Istio sample YAML (validated with @trellis/api), the Pods
// a Kubernetes cluster would run for its Deployments (deterministic names and IPs), cluster IPs
// for Services, an ingress gateway, snapshots, proxies, and golden-file helpers.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { validateManifests, type KubeObject } from '@trellis/api';
import { TYPE_URL, encodeResource, formatNodeId, verifyResource } from '@trellis/envoy';
import { buildSnapshot, type Snapshot } from '@trellis/registry';
import { proxyFromNode, type GeneratedResources, type Proxy } from '../src/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The shared directory (TRELLIS_SHARED, else `../../../../../shared` from dist/test); fails if missing. */
export function sharedDir(): string {
  const dir = process.env.TRELLIS_SHARED ?? resolve(HERE, '../../../../../shared');
  assert.ok(
    existsSync(join(dir, 'istio-samples')),
    `the shared samples are missing: ${dir}/istio-samples (set TRELLIS_SHARED)`,
  );
  return dir;
}

/** A file of the Istio samples (`samples/bookinfo/...`). */
export function samplePath(rel: string): string {
  return join(sharedDir(), 'istio-samples', rel);
}

/** Loads and validates YAML; every object must be valid. */
export function loadYaml(text: string, file = 'inline.yaml', namespace = 'default'): KubeObject[] {
  const r = validateManifests(text, file, { namespace });
  const errors = r.problems.filter((p) => p.severity === 'error');
  assert.deepEqual(
    errors.map((p) => `${p.path}: ${p.message}`),
    [],
    `${file} must be valid`,
  );
  return r.objects.map((o) => o.object);
}

/** Loads a sample file. */
export function loadSample(rel: string, namespace = 'default'): KubeObject[] {
  return loadYaml(readFileSync(samplePath(rel), 'utf8'), rel, namespace);
}

let ipCounter = 0;
let vipCounter = 0;

/** Deterministic cluster IPs for Services without one (10.96.0.N, in order of appearance). */
export function withClusterIps(objects: readonly KubeObject[]): KubeObject[] {
  vipCounter = 0;
  return objects.map((o) => {
    if (o.kind !== 'Service') return o;
    const spec = (o.spec ?? {}) as Record<string, unknown>;
    if (spec.clusterIP !== undefined) return o;
    vipCounter++;
    return { ...o, spec: { ...spec, clusterIP: `10.96.0.${vipCounter}` } };
  });
}

/**
 * The Pods of the Deployments: `NAME-0` (... `NAME-(replicas-1)`), labels of the template plus
 * the injected sidecar's `security.istio.io/tlsMode: istio`, Running and Ready, IPs 10.1.0.N.
 */
export function podsFor(objects: readonly KubeObject[]): KubeObject[] {
  ipCounter = 0;
  const out: KubeObject[] = [];
  for (const d of objects) {
    if (d.kind !== 'Deployment') continue;
    const spec = (d.spec ?? {}) as {
      replicas?: number;
      template?: {
        metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
        spec?: Record<string, unknown>;
      };
    };
    const replicas = spec.replicas ?? 1;
    for (let i = 0; i < replicas; i++) {
      ipCounter++;
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${d.metadata.name}-${i}`,
          namespace: d.metadata.namespace ?? 'default',
          labels: {
            ...(spec.template?.metadata?.labels ?? {}),
            'security.istio.io/tlsMode': 'istio',
          },
          ...(spec.template?.metadata?.annotations
            ? { annotations: spec.template.metadata.annotations }
            : {}),
          creationTimestamp: '2024-01-01T00:00:00Z',
        },
        spec: { ...(spec.template?.spec ?? {}) },
        status: {
          phase: 'Running',
          podIP: `10.1.0.${ipCounter}`,
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      });
    }
  }
  return out;
}

/** The istio-ingressgateway Service and Deployment (Istio's default install), as YAML. */
export const INGRESS_GATEWAY_YAML = `
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  clusterIP: 10.96.100.1
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template:
    metadata: {labels: {istio: ingressgateway, app: istio-ingressgateway}}
    spec:
      serviceAccountName: istio-ingressgateway-service-account
      containers:
      - name: istio-proxy
        image: istio/proxyv2
        ports: [{containerPort: 8080}, {containerPort: 8443}]
`;

/** The istio-ingressgateway Service and Deployment, in istio-system. */
export function ingressGatewayObjects(): KubeObject[] {
  return loadYaml(INGRESS_GATEWAY_YAML, 'ingress.yaml', 'istio-system');
}

/** Bookinfo (Services with cluster IPs, Deployments, their Pods) plus extra objects. */
export function bookinfoObjects(...extra: readonly KubeObject[][]): KubeObject[] {
  const base = withClusterIps(loadSample('samples/bookinfo/platform/kube/bookinfo.yaml'));
  const gw = ingressGatewayObjects();
  const all = [...base, ...gw];
  // Pod IPs continue after bookinfo's; the gateway pod is made with the rest.
  return [...all, ...podsFor(all), ...extra.flat()];
}

/** A snapshot of objects. */
export function snapshotOf(objects: readonly KubeObject[]): Snapshot {
  return buildSnapshot(objects, { version: 'test' });
}

/** The Pod object of a name in the list. */
function podOf(objects: readonly KubeObject[], namespace: string, name: string): KubeObject {
  const p = objects.find(
    (o) =>
      o.kind === 'Pod' &&
      o.metadata.name === name &&
      (o.metadata.namespace ?? 'default') === namespace,
  );
  assert.ok(p, `no pod ${namespace}/${name}`);
  return p;
}

/** The Proxy of a Pod, as its sidecar (or gateway, `router`) would introduce itself. */
export function proxyForPod(
  snapshot: Snapshot,
  objects: readonly KubeObject[],
  name: string,
  namespace = 'default',
  opts: { type?: 'sidecar' | 'router'; metadata?: Record<string, unknown> } = {},
): Proxy {
  const pod = podOf(objects, namespace, name);
  const ip = (pod.status as { podIP: string }).podIP;
  const spec = pod.spec as { serviceAccountName?: string };
  const workload = snapshot.workload('Pod', namespace, name);
  const r = proxyFromNode(
    {
      id: formatNodeId({
        type: opts.type ?? 'sidecar',
        ip,
        id: `${name}.${namespace}`,
        domain: `${namespace}.svc.cluster.local`,
      }),
      metadata: {
        NAMESPACE: namespace,
        LABELS: pod.metadata.labels ?? {},
        SERVICE_ACCOUNT: spec.serviceAccountName ?? 'default',
        WORKLOAD_NAME: name.replace(/-[0-9]+$/, ''),
        ...(opts.metadata ?? {}),
      },
    },
    workload ? { workload } : {},
  );
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

/** The ingress gateway proxy. */
export function gatewayProxy(snapshot: Snapshot, objects: readonly KubeObject[]): Proxy {
  return proxyForPod(snapshot, objects, 'istio-ingressgateway-0', 'istio-system', {
    type: 'router',
  });
}

/** Asserts every resource is valid Envoy v3 (strict proto check). */
export function assertValidEnvoy(res: Partial<GeneratedResources>): void {
  const problems: string[] = [];
  const check = (
    typeUrl: string,
    list: readonly { name?: string; clusterName?: string }[] | undefined,
  ): void => {
    for (const r of list ?? []) {
      const v = verifyResource(typeUrl, r);
      for (const e of v.errors) problems.push(`${r.name ?? r.clusterName ?? '?'}: ${e}`);
    }
  };
  check(TYPE_URL.Listener, res.listeners);
  check(TYPE_URL.RouteConfiguration, res.routes);
  check(TYPE_URL.Cluster, res.clusters);
  check(TYPE_URL.ClusterLoadAssignment, res.endpoints);
  assert.deepEqual(problems, [], 'generated resources must be valid Envoy v3');
}

const GOLDEN_DIR = resolve(HERE, '../../test/golden');

/**
 * Compares `actual` (JSON) with `test/golden/NAME.json`; `REFRESH_GOLDEN=true` rewrites the file.
 */
export function assertGolden(name: string, actual: unknown): void {
  const file = join(GOLDEN_DIR, `${name}.json`);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (process.env.REFRESH_GOLDEN === 'true' || !existsSync(file)) {
    if (process.env.REFRESH_GOLDEN !== 'true' && process.env.CI)
      assert.fail(`golden file ${name}.json is missing (run with REFRESH_GOLDEN=true)`);
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
    formatWithPrettier(file);
    return;
  }
  const expected = readFileSync(file, 'utf8');
  assert.deepEqual(
    JSON.parse(text),
    JSON.parse(expected),
    `golden ${name}.json differs (REFRESH_GOLDEN=true rewrites it)`,
  );
}

/** A small world: services, deployments and configs from YAML, plus a `sleep` client. */
export interface World {
  readonly objects: KubeObject[];
  readonly snapshot: Snapshot;
  /** The proxy of a pod (`sleep-0` by default). */
  proxy(
    name?: string,
    namespace?: string,
    opts?: { type?: 'sidecar' | 'router'; metadata?: Record<string, unknown> },
  ): Proxy;
}

const SLEEP = `
apiVersion: v1
kind: Service
metadata: {name: sleep}
spec:
  selector: {app: sleep}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep, version: v1}}
    spec:
      serviceAccountName: sleep
      containers: [{name: sleep, image: curl}]
`;

/** Builds a world from YAML (namespace `default` unless the objects say otherwise). */
export function world(yaml: string, opts: { sleep?: boolean } = {}): World {
  const objs = withClusterIps(
    loadYaml((opts.sleep === false ? '' : `${SLEEP}\n---\n`) + yaml, 'world.yaml'),
  );
  const objects = [...objs, ...podsFor(objs)];
  const snapshot = snapshotOf(objects);
  return {
    objects,
    snapshot,
    proxy: (name = 'sleep-0', namespace = 'default', o = {}) =>
      proxyForPod(snapshot, objects, name, namespace, o),
  };
}

/** Resources by name, for focused goldens. */
export function pick(
  res: GeneratedResources,
  names: {
    listeners?: readonly string[];
    routes?: readonly string[];
    clusters?: readonly string[];
  },
): Partial<GeneratedResources> {
  const by = <T extends { name?: string }>(
    list: readonly T[],
    wanted: readonly string[] | undefined,
  ): T[] | undefined =>
    wanted
      ? wanted.map((n) => {
          const r = list.find((x) => x.name === n);
          assert.ok(r, `no resource ${n}; have ${list.map((x) => x.name).join(', ')}`);
          return r;
        })
      : undefined;
  const out: Partial<GeneratedResources> = {};
  const l = by(res.listeners, names.listeners);
  if (l) (out as { listeners?: unknown }).listeners = l;
  const r = by(res.routes, names.routes);
  if (r) (out as { routes?: unknown }).routes = r;
  const c = by(res.clusters, names.clusters);
  if (c) (out as { clusters?: unknown }).clusters = c;
  return out;
}

/** The routes of a virtual host of a route configuration. */
export function vhostRoutes(
  res: GeneratedResources,
  routeConfig: string,
  vhost: string,
): unknown[] {
  const rc = res.routes.find((r) => r.name === routeConfig);
  assert.ok(rc, `no route config ${routeConfig}`);
  const vh = rc.virtualHosts?.find((v) => v.name === vhost);
  assert.ok(
    vh,
    `no virtual host ${vhost} in ${routeConfig}: ${(rc.virtualHosts ?? []).map((v) => v.name).join(', ')}`,
  );
  return vh.routes ?? [];
}

/** Formats a written golden file as the repository's format check (`prettier --check .`) expects. */
function formatWithPrettier(file: string): void {
  const bin = createRequire(import.meta.url).resolve('prettier/bin/prettier.cjs');
  const r = spawnSync(process.execPath, [bin, '--write', '--log-level', 'warn', file], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `prettier failed on ${file}: ${r.stderr}`);
}

interface GrpcResourceType {
  decode(
    context: unknown,
    resource: { type_url: string; value: Buffer },
  ): { readonly name?: string; readonly error?: string };
}

function grpcResourceType(file: string, exported: string): GrpcResourceType {
  const mod = createRequire(import.meta.url)(
    `@grpc/grpc-js-xds/build/src/xds-resource-type/${file}`,
  ) as Record<string, { get(): GrpcResourceType }>;
  const type = mod[exported];
  assert.ok(type, `@grpc/grpc-js-xds has no ${exported}`);
  return type.get();
}

/**
 * Asserts that @grpc/grpc-js-xds (a third-party xDS client) accepts the listeners and route
 * configurations: each is encoded as the xDS server sends it and decoded with gRPC's validation.
 */
export function assertGrpcAcceptsListenersAndRoutes(res: Partial<GeneratedResources>): void {
  // The HTTP filters gRPC supports (router, fault, RBAC) are known once xDS support is registered.
  (createRequire(import.meta.url)('@grpc/grpc-js-xds') as { register(): void }).register();
  const context = { bootstrap: { certificateProviders: { default: {} } }, server: {} };
  const check = (typeUrl: string, type: GrpcResourceType, list: readonly unknown[]): void => {
    for (const r of list) {
      const encoded = encodeResource(typeUrl, r);
      const decoded = type.decode(context, {
        type_url: encoded.typeUrl,
        value: Buffer.from(encoded.value),
      });
      assert.equal(decoded.error, undefined, `gRPC rejects ${decoded.name}: ${decoded.error}`);
    }
  };
  check(
    TYPE_URL.Listener,
    grpcResourceType('listener-resource-type.js', 'ListenerResourceType'),
    res.listeners ?? [],
  );
  check(
    TYPE_URL.RouteConfiguration,
    grpcResourceType('route-config-resource-type.js', 'RouteConfigurationResourceType'),
    res.routes ?? [],
  );
}
