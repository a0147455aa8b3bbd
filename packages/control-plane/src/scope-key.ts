// The scope of a sidecar: every proxy attribute the *outbound* part of its configuration
// depends on. Sidecars with equal scope keys get identical outbound listeners, routes, clusters
// and endpoints, so the control plane builds and encodes them once per scope, not per proxy.
import { isIP } from 'node:net';
import { resolveShortName, type Snapshot } from '@trellis/registry';
import type { Proxy } from '@trellis/translate';

type J = Record<string, unknown>;
const obj = (v: unknown): J =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * The label keys any selector of the snapshot looks at (Sidecar and DestinationRule workload
 * selectors, VirtualService sourceLabels, locality failoverPriority). Only the values of these
 * keys can make two proxies' outbound configuration differ.
 */
export function selectorLabelKeys(snapshot: Snapshot): string[] {
  const keys = new Set<string>();
  const addLabels = (v: unknown): void => {
    for (const k of Object.keys(obj(v))) keys.add(k);
  };
  for (const o of snapshot.objects) {
    const spec = obj(o.spec);
    if (o.kind === 'Sidecar' || o.kind === 'DestinationRule')
      addLabels(obj(spec.workloadSelector).labels);
    if (o.kind === 'DestinationRule') {
      const policies = [spec.trafficPolicy, ...arr(spec.subsets).map((s) => obj(s).trafficPolicy)];
      for (const p of policies) {
        const lb = obj(obj(p).loadBalancer);
        for (const k of arr(obj(lb.localityLbSetting).failoverPriority))
          if (typeof k === 'string') keys.add(k.split('=')[0]!);
        for (const pl of arr(obj(p).portLevelSettings))
          for (const k of arr(obj(obj(obj(pl).loadBalancer).localityLbSetting).failoverPriority))
            if (typeof k === 'string') keys.add(k.split('=')[0]!);
      }
    }
    if (o.kind === 'VirtualService')
      for (const section of ['http', 'tcp', 'tls'])
        for (const rule of arr(spec[section]))
          for (const m of arr(obj(rule).match)) addLabels(obj(m).sourceLabels);
  }
  return [...keys].sort();
}

/** The scope key of a sidecar; undefined for proxies whose output is not shared (gateways, gRPC clients). */
export function scopeKey(
  proxy: Proxy,
  labelKeys: readonly string[],
  anyNamespace = false,
): string | undefined {
  if (proxy.type !== 'sidecar' || proxy.generator === 'grpc') return undefined;
  const families = [...new Set(proxy.ipAddresses.map((ip) => isIP(ip)))].sort().join('');
  const md = proxy.metadata;
  return JSON.stringify([
    anyNamespace ? '*' : proxy.namespace,
    labelKeys.map((k) => proxy.labels[k] ?? null),
    proxy.workload?.locality ?? proxy.labels['istio-locality'] ?? null,
    proxy.workload?.network ?? md.NETWORK ?? null,
    proxy.clusterId,
    anyNamespace ? '*' : proxy.dnsDomain,
    families,
    proxy.interceptionMode,
    proxy.httpProxyPort ?? null,
    proxy.explicitCapture === true,
  ]);
}

const isPublic = (exportTo: unknown): boolean =>
  exportTo === undefined ||
  (Array.isArray(exportTo) && (exportTo.length === 0 || exportTo.includes('*')));

/**
 * Namespaces whose sidecars may get clusters and endpoints that differ from other namespaces'.
 * Everywhere else the namespace does not matter to CDS and EDS (it does to routes: short host
 * names), so those namespaces share one build. A namespace is special when it holds a Sidecar,
 * a config or service exported only to some namespaces, a DestinationRule with a workload
 * selector, or a DestinationRule for a host of another namespace (a client namespace's rule
 * wins over the service's). Returns undefined when the mesh defaults make every namespace
 * special (an exportTo default other than '*').
 */
export function specialNamespaces(snapshot: Snapshot): ReadonlySet<string> | undefined {
  const m = snapshot.mesh as unknown as J;
  for (const k of [
    'defaultServiceExportTo',
    'defaultVirtualServiceExportTo',
    'defaultDestinationRuleExportTo',
  ])
    if (!isPublic(m[k])) return undefined;
  const out = new Set<string>();
  for (const o of snapshot.objects) {
    const ns = o.metadata.namespace ?? '';
    const spec = obj(o.spec);
    const annotations = obj(o.metadata.annotations);
    switch (o.kind) {
      case 'Sidecar':
        out.add(ns);
        break;
      case 'Service':
        if (annotations['networking.istio.io/exportTo'] !== undefined) out.add(ns);
        break;
      case 'ServiceEntry':
      case 'VirtualService':
        if (!isPublic(spec.exportTo)) out.add(ns);
        break;
      case 'DestinationRule': {
        if (!isPublic(spec.exportTo) || spec.workloadSelector != null) {
          out.add(ns);
          break;
        }
        const host = typeof spec.host === 'string' ? spec.host : '';
        const svc = snapshot.serviceForHostname(
          resolveShortName(host, ns, snapshot.mesh.domainSuffix),
          ns,
        );
        if (!svc || svc.namespace !== ns) out.add(ns);
        break;
      }
    }
  }
  return out;
}
