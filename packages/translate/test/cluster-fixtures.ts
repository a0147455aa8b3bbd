// Fixtures of the cluster and endpoint tests: real objects (bookinfo's Services, ServiceAccounts
// and Deployments, one Pod derived from each Deployment as Kubernetes and the injector would make
// it), snapshots built by the registry's buildSnapshot, proxies built from Istio node ids, and
// the golden-file check (REFRESH_GOLDEN=true rewrites the files).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifests, type KubeObject } from '@trellis/api';
import { encodeResource, TYPE_URL, verifyResource } from '@trellis/envoy';
import { buildSnapshot, type Snapshot } from '@trellis/registry';
import { proxyFromNode, type Proxy } from '../src/proxy.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The shared directory: $TRELLIS_SHARED, or /work/shared relative to packages/translate/dist/test/. */
export const SHARED =
  process.env.TRELLIS_SHARED ?? join(here, '..', '..', '..', '..', '..', 'shared');
export const BOOKINFO = join(SHARED, 'istio-samples', 'samples', 'bookinfo');
const GOLDEN_DIR = join(here, '..', '..', 'test', 'golden');

/** Every object of a YAML text (fails on syntax errors). */
export function parseObjects(text: string, file = 'inline.yaml'): KubeObject[] {
  const r = loadManifests(text, file);
  assert.deepEqual(r.problems, [], `${file} does not parse`);
  return r.objects.map((o) => o.value as KubeObject);
}

/** Every object of a YAML file; objects without a namespace get `namespace`. */
export function readObjects(path: string, namespace = 'default'): KubeObject[] {
  return parseObjects(readFileSync(path, 'utf8'), path).map((o) => withNamespace(o, namespace));
}

function withNamespace(o: KubeObject, namespace: string): KubeObject {
  if (o.metadata.namespace !== undefined) return o;
  return { ...o, metadata: { ...o.metadata, namespace } };
}

interface PodOptions {
  readonly ip: string;
  readonly namespace?: string;
  /** Sidecar injected (tlsMode istio); default true. */
  readonly sidecar?: boolean;
  readonly ready?: boolean;
  /** `region.zone.subzone` for the istio-locality label. */
  readonly locality?: string;
  readonly extraLabels?: Readonly<Record<string, string>>;
  readonly suffix?: string;
}

/** The Pod a Deployment's ReplicaSet would create, as the sidecar injector leaves it. */
export function podFor(deployment: KubeObject, opts: PodOptions): KubeObject {
  const spec = deployment.spec as {
    template: { metadata?: { labels?: Record<string, string> }; spec: Record<string, unknown> };
  };
  const name = deployment.metadata.name;
  const hash = hashOf(name);
  const sidecar = opts.sidecar ?? true;
  const labels: Record<string, string> = {
    ...spec.template.metadata?.labels,
    'pod-template-hash': hash,
    ...(sidecar
      ? {
          'security.istio.io/tlsMode': 'istio',
          'service.istio.io/canonical-name': spec.template.metadata?.labels?.app ?? name,
          'service.istio.io/canonical-revision':
            spec.template.metadata?.labels?.version ?? 'latest',
        }
      : {}),
    ...(opts.locality !== undefined ? { 'istio-locality': opts.locality } : {}),
    ...opts.extraLabels,
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${name}-${hash}-${opts.suffix ?? 'abcde'}`,
      namespace: opts.namespace ?? deployment.metadata.namespace ?? 'default',
      labels,
      ...(sidecar
        ? { annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' } }
        : {}),
      creationTimestamp: '2024-01-01T00:00:00Z',
    },
    spec: spec.template.spec,
    status: {
      phase: 'Running',
      podIP: opts.ip,
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
    },
  };
}

/** A stable fake pod-template-hash. */
function hashOf(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(36).padStart(8, '0').slice(0, 8);
}

/** bookinfo.yaml (namespace default) plus one ready, injected Pod per Deployment (10.1.0.N). */
export function bookinfoObjects(): KubeObject[] {
  const objects = readObjects(join(BOOKINFO, 'platform', 'kube', 'bookinfo.yaml'));
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const pods = deployments.map((d, i) => podFor(d, { ip: `10.1.0.${i + 1}` }));
  return [...objects, ...pods];
}

/** The bookinfo Deployment named `name`. */
export function deployment(objects: readonly KubeObject[], name: string): KubeObject {
  const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name);
  assert.ok(d, `no Deployment ${name}`);
  return d;
}

/** A snapshot of the objects with every config passed as YAML text added (namespace default). */
export function snapshotOf(objects: readonly KubeObject[], ...yaml: string[]): Snapshot {
  const extra = yaml.flatMap((y) => parseObjects(y).map((o) => withNamespace(o, 'default')));
  return buildSnapshot([...objects, ...extra], { version: 'test' });
}

/** The sample DestinationRules of bookinfo (`destination-rule-all.yaml` ...). */
export function bookinfoRules(file: string): KubeObject[] {
  return readObjects(join(BOOKINFO, 'networking', file));
}

interface ProxyOptions {
  readonly type?: 'sidecar' | 'router';
  readonly generator?: 'grpc';
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** The proxy of a Pod of the snapshot (by name prefix, e.g. `productpage-v1`). */
export function proxyForPod(snapshot: Snapshot, podPrefix: string, opts: ProxyOptions = {}): Proxy {
  const w = snapshot.registry.workloads.find(
    (x) => x.kind === 'Pod' && x.name.startsWith(`${podPrefix}-`),
  );
  assert.ok(w, `no Pod ${podPrefix}-*`);
  const r = proxyFromNode(
    {
      id: `${opts.type ?? 'sidecar'}~${w.address}~${w.name}.${w.namespace}~${w.namespace}.svc.cluster.local`,
      metadata: {
        NAMESPACE: w.namespace,
        LABELS: w.labels,
        SERVICE_ACCOUNT: w.serviceAccount,
        ...(opts.generator ? { GENERATOR: opts.generator } : {}),
        ...opts.metadata,
      },
    },
    { workload: w },
  );
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

/** A proxy with no registry workload (a gateway or a client outside the registry). */
export function standaloneProxy(
  id: string,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  opts: ProxyOptions = {},
): Proxy {
  const r = proxyFromNode({
    id: `${opts.type ?? 'sidecar'}~10.9.0.1~${id}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: {
      NAMESPACE: namespace,
      LABELS: labels,
      ...(opts.generator ? { GENERATOR: opts.generator } : {}),
      ...opts.metadata,
    },
  });
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

/**
 * Istio (and gRPC's xDS client, which reads nothing else) still use the deprecated
 * `match_subject_alt_names`; that is the one deprecation warning the tests accept.
 */
const ACCEPTED_WARNING = /matchSubjectAltNames: deprecated field$/;

/**
 * A false positive of @trellis/envoy's rule checker: `override_auto_sni_header` has
 * `ignore_empty: true`, which the checker does not honour yet, so an unset field is reported as an
 * invalid (empty) header name. Accepted only while the field is really unset (Istio never sets it).
 */
const KNOWN_CHECKER_BUG =
  /upstreamHttpProtocolOptions\.overrideAutoSniHeader: must be a valid HTTP header name, not ""$/;

/** Asserts that every resource is valid Envoy v3 of the type (no errors, no other warnings). */
export function assertValidResources(typeUrl: string, resources: readonly unknown[]): void {
  for (const r of resources) {
    const v = verifyResource(typeUrl, r);
    const setsOverride = JSON.stringify(r).includes('overrideAutoSniHeader');
    const errors = setsOverride ? v.errors : v.errors.filter((e) => !KNOWN_CHECKER_BUG.test(e));
    assert.deepEqual(
      { errors, warnings: v.warnings.filter((w) => !ACCEPTED_WARNING.test(w)) },
      { errors: [], warnings: [] },
      `invalid ${typeUrl}: ${JSON.stringify((r as { name?: string; clusterName?: string }).name ?? (r as { clusterName?: string }).clusterName)}`,
    );
  }
}

/**
 * Compares resources with `test/golden/NAME.json` after checking each with verifyResource;
 * `REFRESH_GOLDEN=true` writes the file instead. With `fields`, the golden keeps only those
 * top-level fields of each resource (plus its name), so it shows one feature; the whole resource
 * is still verified.
 */
export function assertGolden(
  name: string,
  typeUrl: string,
  all: readonly unknown[],
  fields?: readonly string[],
): void {
  assertValidResources(typeUrl, all);
  const resources = fields ? all.map((r) => pick(r as Record<string, unknown>, fields)) : all;
  const file = join(GOLDEN_DIR, `${name}.json`);
  const text = JSON.stringify(resources, null, 2) + '\n';
  if (process.env.REFRESH_GOLDEN === 'true' || !existsSync(file)) {
    if (process.env.REFRESH_GOLDEN !== 'true')
      assert.fail(`golden file ${file} is missing; run with REFRESH_GOLDEN=true to create it`);
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
    formatWithPrettier(file);
    return;
  }
  assert.deepEqual(
    JSON.parse(text),
    JSON.parse(readFileSync(file, 'utf8')),
    `golden ${name}.json differs`,
  );
}

function pick(r: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['name', 'clusterName', ...fields]) if (r[k] !== undefined) out[k] = r[k];
  return out;
}

/** The result of a gRPC xDS resource decoder: the resource, or why gRPC rejects (NACKs) it. */
interface GrpcDecodeResult {
  readonly name?: string;
  readonly error?: string;
}

interface GrpcResourceType {
  decode(context: unknown, resource: { type_url: string; value: Buffer }): GrpcDecodeResult;
}

const requireFromHere = createRequire(import.meta.url);

function grpcResourceType(file: string, exported: string): GrpcResourceType {
  const mod = requireFromHere(`@grpc/grpc-js-xds/build/src/xds-resource-type/${file}`) as Record<
    string,
    { get(): GrpcResourceType }
  >;
  const type = mod[exported];
  assert.ok(type, `@grpc/grpc-js-xds has no ${exported}`);
  return type.get();
}

/**
 * Asserts that @grpc/grpc-js-xds (a real, third-party xDS client) accepts every resource: each is
 * encoded as the xDS server would send it and decoded with gRPC's own validation, which rejects
 * every field gRPC does not support.
 */
export function assertGrpcAccepts(typeUrl: string, resources: readonly unknown[]): void {
  const type =
    typeUrl === TYPE_URL.Cluster
      ? grpcResourceType('cluster-resource-type.js', 'ClusterResourceType')
      : grpcResourceType('endpoint-resource-type.js', 'EndpointResourceType');
  const context = { bootstrap: { certificateProviders: { default: {} } }, server: {} };
  for (const r of resources) {
    const encoded = encodeResource(typeUrl, r);
    const decoded = type.decode(context, {
      type_url: encoded.typeUrl,
      value: Buffer.from(encoded.value),
    });
    assert.equal(decoded.error, undefined, `gRPC rejects ${decoded.name}: ${decoded.error}`);
  }
}

/** Formats a rewritten golden file the way the repository's format check expects. */
function formatWithPrettier(file: string): void {
  const bin = requireFromHere.resolve('prettier/bin/prettier.cjs');
  const r = spawnSync(process.execPath, [bin, '--write', '--log-level', 'warn', file], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `prettier failed on ${file}: ${r.stderr}`);
}
