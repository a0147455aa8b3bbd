// Namespace existence, as on a Kubernetes cluster with Istio installed: `default`,
// `kube-system`, `kube-public` and `istio-system` always exist; others need a Namespace object.
import type { ManifestObject } from '@trellis/api';
import type { ConfigStore } from '@trellis/config';

export const BUILTIN_NAMESPACES: readonly string[] = [
  'default',
  'kube-system',
  'kube-public',
  'istio-system',
];

/** Returns the namespaces the batch uses that neither exist nor are created by the batch. */
export async function ensureNamespaces(
  store: ConfigStore,
  objects: readonly ManifestObject[],
): Promise<string[]> {
  const created = new Set(
    objects
      .filter((o) => o.kind.kind === 'Namespace' && o.kind.group === '')
      .map((o) => o.object.metadata.name),
  );
  const used = new Set<string>();
  for (const o of objects) if (o.object.metadata.namespace) used.add(o.object.metadata.namespace);
  const missing: string[] = [];
  for (const ns of [...used].sort()) {
    if (BUILTIN_NAMESPACES.includes(ns) || created.has(ns)) continue;
    if (!(await store.get({ group: '', kind: 'Namespace', name: ns }))) missing.push(ns);
  }
  return missing;
}
