// Test fixtures: YAML loading, Deployments turned into Pods, small object builders and a
// manual clock.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifests, type KubeObject } from '@trellis/api';

/** istio-samples/samples in /work/shared (from packages/registry/dist/test/), or $TRELLIS_SHARED. */
export const SAMPLES = join(
  process.env.TRELLIS_SHARED ?? join(import.meta.dirname, '../../../../../shared'),
  'istio-samples/samples',
);

/** Every object of a YAML text, with `namespace` filled in where absent. */
export function loadYaml(text: string, namespace = 'default'): KubeObject[] {
  const r = loadManifests(text, 'test.yaml');
  if (r.problems.length > 0) throw new Error(r.problems.map((p) => p.message).join('; '));
  return r.objects
    .map((o) => o.value as KubeObject)
    .filter((o) => o !== null && typeof o === 'object')
    .map((o) =>
      o.kind === 'Namespace' || o.metadata.namespace !== undefined
        ? o
        : { ...o, metadata: { ...o.metadata, namespace } },
    );
}

/** A sample file under istio-samples/samples. */
export function loadSample(rel: string, namespace = 'default'): KubeObject[] {
  return loadYaml(readFileSync(join(SAMPLES, rel), 'utf8'), namespace);
}

export interface PodOptions {
  readonly ready?: boolean;
  readonly ip?: string;
  readonly annotations?: Record<string, string>;
  readonly creationTimestamp?: string;
}

/**
 * The Pods a Deployment would run: `replicas` of them (default 1), named `<deployment>-<i>`,
 * with the template's labels and spec, an IP from `nextIp` and a Ready condition.
 */
export function podsOf(
  deployment: KubeObject,
  nextIp: () => string,
  opts: PodOptions = {},
): KubeObject[] {
  const spec = deployment.spec as {
    replicas?: number;
    template: { metadata?: { labels?: Record<string, string> }; spec: unknown };
  };
  const out: KubeObject[] = [];
  for (let i = 0; i < (spec.replicas ?? 1); i++) {
    out.push(
      pod(`${deployment.metadata.name}-${i}`, deployment.metadata.namespace ?? 'default', {
        labels: spec.template.metadata?.labels ?? {},
        spec: spec.template.spec,
        ip: opts.ip ?? nextIp(),
        ready: opts.ready ?? true,
        ...(opts.annotations ? { annotations: opts.annotations } : {}),
      }),
    );
  }
  return out;
}

/** Turns every Deployment of a list into its Pods (IPs 10.0.0.1, 10.0.0.2, ...). */
export function withPods(objects: readonly KubeObject[]): KubeObject[] {
  let n = 0;
  const nextIp = (): string => `10.0.${Math.floor(++n / 250)}.${n % 250}`;
  return objects.flatMap((o) => (o.kind === 'Deployment' ? [o, ...podsOf(o, nextIp)] : [o]));
}

/** A Pod. */
export function pod(
  name: string,
  namespace: string,
  o: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    spec?: unknown;
    ip?: string;
    ready?: boolean;
    phase?: string;
    deleting?: boolean;
    serviceAccount?: string;
    containerPorts?: { name?: string; containerPort: number }[];
  } = {},
): KubeObject {
  const spec =
    o.spec ??
    ({
      ...(o.serviceAccount ? { serviceAccountName: o.serviceAccount } : {}),
      containers: [{ name: 'app', image: 'app', ports: o.containerPorts ?? [] }],
    } as const);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: o.labels ?? {},
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.deleting ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}),
    },
    spec,
    status: {
      phase: o.phase ?? 'Running',
      ...(o.ip !== undefined ? { podIP: o.ip } : {}),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

/** Any namespaced object. */
export function obj(
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
  spec: unknown,
  meta: Record<string, unknown> = {},
): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace, ...meta }, spec };
}

/** A Kubernetes Service. */
export function service(
  name: string,
  namespace: string,
  spec: unknown,
  meta: Record<string, unknown> = {},
): KubeObject {
  return obj('v1', 'Service', namespace, name, spec, meta);
}

/** An Istio networking object (networking.istio.io/v1). */
export function istio(
  kind: string,
  namespace: string,
  name: string,
  spec: unknown,
  meta: Record<string, unknown> = {},
): KubeObject {
  return obj('networking.istio.io/v1', kind, namespace, name, spec, meta);
}

export { ManualTimers } from '@trellis/core';

/** Lets queued promise callbacks and immediates run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
