// `trellis apply`: validates every object first, then creates or replaces each one in the store.
import type { KubeObject, ManifestObject } from '@trellis/api';
import { ConflictError, deepEqual, errorMessage } from '@trellis/core';
import { keyOf, type ConfigStore } from '@trellis/config';
import { UsageError, flagBool, flagString, flagStrings } from '../args.js';
import {
  FILE_FLAG,
  NAMESPACE_FLAG,
  RECURSIVE_FLAG,
  printProblems,
  qualifiedName,
  type Command,
} from '../command.js';
import { readBatch } from '../manifests.js';
import { ensureNamespaces } from '../namespaces.js';

/** Metadata the store owns; never taken from a manifest, never compared. */
const SERVER_FIELDS = [
  'resourceVersion',
  'uid',
  'generation',
  'creationTimestamp',
  'managedFields',
  'selfLink',
];
const MAX_CONFLICT_RETRIES = 5;

/** The object as it should be written: server-owned metadata and status dropped. */
export function desiredOf(o: KubeObject): KubeObject {
  const metadata: Record<string, unknown> = { ...o.metadata };
  for (const f of SERVER_FIELDS) delete metadata[f];
  const out: Record<string, unknown> = { ...o, metadata };
  delete out.status;
  return out as KubeObject;
}

/**
 * Fields the API server assigns when a manifest leaves them out, kept across applies as
 * `kubectl apply` keeps them: a Service's cluster IPs (the local runtime allocates them in
 * transparent capture mode).
 */
function keepServerAssigned(desired: KubeObject, current: KubeObject): KubeObject {
  if (desired.kind !== 'Service' || desired.apiVersion !== 'v1') return desired;
  const want = (desired.spec ?? {}) as Record<string, unknown>;
  const have = (current.spec ?? {}) as Record<string, unknown>;
  if (want.clusterIP !== undefined || have.clusterIP === undefined) return desired;
  const spec: Record<string, unknown> = { ...want, clusterIP: have.clusterIP };
  if (want.clusterIPs === undefined && have.clusterIPs !== undefined)
    spec.clusterIPs = have.clusterIPs;
  return { ...desired, spec };
}

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

/** Creates or replaces one object, retrying on a conflicting concurrent write. */
export async function applyObject(store: ConfigStore, object: KubeObject): Promise<ApplyOutcome> {
  const manifest = desiredOf(object);
  for (let attempt = 0; ; attempt++) {
    const current = await store.get(keyOf(manifest));
    const desired = current ? keepServerAssigned(manifest, current) : manifest;
    try {
      if (!current) {
        await store.create(desired);
        return 'created';
      }
      const currentDesired = desiredOf(current);
      if (deepEqual(currentDesired, desired)) return 'unchanged';
      await store.update({
        ...desired,
        metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion ?? '' },
      });
      return 'configured';
    } catch (e) {
      const retriable =
        e instanceof ConflictError || (e as { code?: string }).code === 'TRELLIS_ALREADY_EXISTS';
      if (!retriable || attempt >= MAX_CONFLICT_RETRIES) throw e;
    }
  }
}

/** Namespaces first (so objects in them can land), then file order. */
function applyOrder(objects: readonly ManifestObject[]): ManifestObject[] {
  const rank = (o: ManifestObject): number =>
    o.kind.kind === 'Namespace' && o.kind.group === '' ? 0 : 1;
  return [...objects].sort((a, b) => rank(a) - rank(b));
}

export const applyCommand: Command = {
  name: 'apply',
  summary: 'Validate manifests and create or update their objects',
  usage: 'trellis apply -f FILE|DIR|- [-R] [-n NS]',
  description:
    'Validates every object first and applies nothing if any object has an error. Then creates each\n' +
    'object, or replaces it when it changed, printing created, configured or unchanged for each.\n' +
    'Namespaced objects without a namespace go to -n NS (default "default"); the namespace must exist.',
  flags: [FILE_FLAG, RECURSIVE_FLAG, NAMESPACE_FLAG],
  examples: [
    'trellis apply -f ../shared/istio-samples/samples/bookinfo/networking/virtual-service-all-v1.yaml',
    'trellis apply -f manifests/ -R -n bookinfo',
  ],
  async run(args, { io, openStore }) {
    const inputs = [...flagStrings(args, 'filename'), ...args.positional];
    if (inputs.length === 0) throw new UsageError('apply needs -f FILE|DIR|-');
    const ns = flagString(args, 'namespace');
    const batch = await readBatch(
      inputs,
      {
        recursive: flagBool(args, 'recursive'),
        validate: { namespace: ns ?? 'default', namespaceExplicit: ns !== undefined },
      },
      io,
    );
    printProblems(batch.problems, io);
    if (batch.errorCount > 0) {
      io.stderr(
        `${batch.errorCount} error${batch.errorCount === 1 ? '' : 's'}: nothing was applied\n`,
      );
      return 1;
    }
    const store = await openStore();
    try {
      const missing = await ensureNamespaces(store, batch.objects);
      if (missing.length > 0) {
        for (const m of missing)
          io.stderr(
            `error: namespace "${m}" not found: apply a Namespace manifest for it or run 'trellis create namespace ${m}'\n`,
          );
        io.stderr('nothing was applied\n');
        return 1;
      }
      let failed = 0;
      for (const m of applyOrder(batch.objects)) {
        const name = qualifiedName(m.kind, m.object.metadata.name);
        try {
          const outcome = await applyObject(store, m.object);
          io.stdout(`${name} ${outcome}\n`);
        } catch (e) {
          failed++;
          io.stderr(`error: ${m.source.file}:${m.source.line} ${name}: ${errorMessage(e)}\n`);
        }
      }
      return failed > 0 ? 1 : 0;
    } finally {
      await store.close();
    }
  },
};
