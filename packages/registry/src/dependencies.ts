// What a service's endpoints may depend on, as keys: the EndpointSlices of a Kubernetes Service,
// the Pods its slices name (by name or by IP), and the workloads a selector may pick (one label
// of the selector, or the whole namespace for an empty selector). A changed workload or slice
// yields the keys it could affect; only the services registered under those keys are looked at
// again when a registry is derived from its predecessor. The keys over-approximate: a service
// found through them is rebuilt only when its actual inputs differ.
import type { KubeObject } from '@trellis/api';
import type { Labels, Workload } from './model.js';
import { asArray, asLabels, asObject, asString } from './read.js';

/** The EndpointSlices of Service `namespace/name`. */
export function sliceDep(namespace: string, service: string): string {
  return `s\u0000${namespace}\u0000${service}`;
}

function podDep(namespace: string, name: string): string {
  return `p\u0000${namespace}\u0000${name}`;
}

function addressDep(namespace: string, address: string): string {
  return `a\u0000${namespace}\u0000${address}`;
}

function labelDep(namespace: string, key: string, value: string): string {
  return `l\u0000${namespace}\u0000${key}=${value}`;
}

function namespaceDep(namespace: string): string {
  return `n\u0000${namespace}`;
}

/** How many workloads of a namespace carry a label (to choose the rarest label of a selector). */
export type LabelCount = (namespace: string, key: string, value: string) => number;

/**
 * The key of a selector: one of its labels (every workload it picks has that label; the one
 * fewest workloads carry, so that changes elsewhere do not reach the service), or the
 * namespace for an empty selector (it picks every workload there).
 */
export function selectorDep(namespace: string, selector: Labels, count?: LabelCount): string {
  let best: string | undefined;
  let bestCount = Infinity;
  for (const k in selector) {
    const n = count ? count(namespace, k, selector[k]!) : 0;
    if (n < bestCount || (n === bestCount && best !== undefined && k < best)) {
      best = k;
      bestCount = n;
    }
  }
  return best === undefined ? namespaceDep(namespace) : labelDep(namespace, best, selector[best]!);
}

/** The keys a workload (one version of it) can affect. */
export function workloadDeps(w: Workload): string[] {
  const out = [namespaceDep(w.namespace)];
  for (const k in w.labels) out.push(labelDep(w.namespace, k, w.labels[k]!));
  if (w.kind === 'Pod') {
    out.push(podDep(w.namespace, w.name));
    if (w.address !== '') out.push(addressDep(w.namespace, w.address));
  }
  return out;
}

/** The Service an EndpointSlice belongs to (`kubernetes.io/service-name`), if any. */
export function sliceOwner(slice: KubeObject, label: string): string | undefined {
  return asLabels(slice.metadata.labels)[label] || undefined;
}

/**
 * The keys of a Kubernetes Service (mirrors `kubeServiceInputs`): its slices always (a slice
 * may appear), then the Pods its slice endpoints name, or its selector.
 */
export function kubeServiceDeps(
  obj: KubeObject,
  slices: readonly KubeObject[] | undefined,
  count?: LabelCount,
): string[] {
  const namespace = obj.metadata.namespace ?? 'default';
  const out = new Set([sliceDep(namespace, obj.metadata.name)]);
  const spec = asObject(obj.spec) ?? {};
  if (asString(spec.type) === 'ExternalName' && asString(spec.externalName)) return [...out];
  if (slices && slices.length > 0) {
    for (const slice of slices)
      for (const raw of asArray(slice.endpoints)) {
        const e = asObject(raw);
        if (!e) continue;
        const ref = asObject(e.targetRef);
        const name = ref && (ref.kind === undefined || ref.kind === 'Pod') && asString(ref.name);
        if (ref && name) out.add(podDep(asString(ref.namespace) ?? namespace, name));
        const first = asString(asArray(e.addresses)[0]);
        if (first) out.add(addressDep(namespace, first));
      }
    return [...out].sort();
  }
  if (spec.selector != null) out.add(selectorDep(namespace, asLabels(spec.selector), count));
  return [...out].sort();
}

/** The keys of a ServiceEntry (mirrors `serviceEntryInputs`): its workloadSelector, if any. */
export function serviceEntryDeps(obj: KubeObject, count?: LabelCount): string[] {
  const selector = asObject(asObject(obj.spec)?.workloadSelector);
  if (!selector) return [];
  return [selectorDep(obj.metadata.namespace ?? 'default', asLabels(selector.labels), count)];
}
