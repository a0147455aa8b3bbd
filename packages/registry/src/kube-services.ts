// Kubernetes Services as registry services, with endpoints from EndpointSlices when the Service
// has any, else from the Pods (and IP-addressed WorkloadEntries) its selector picks.
// Semantics: Istio's kube registry (pilot/pkg/serviceregistry/kube ConvertService) and the
// Kubernetes EndpointSlice controller (target port resolution, readiness).
import type { KubeObject } from '@trellis/api';
import { isIP } from 'node:net';
import { addressEndpoint, workloadEndpoint } from './endpoints.js';
import { kubeServiceHostname } from './host.js';
import type {
  Endpoint,
  HealthStatus,
  Resolution,
  Service,
  ServicePort,
  Workload,
} from './model.js';
import type { MeshOptions } from './options.js';
import { protocolForKubePort } from './protocol.js';
import { asArray, asBool, asLabels, asNumber, asObject, asString, type Json } from './read.js';
import { parseExportToAnnotation } from './visibility.js';
import {
  ANNOTATION_CANONICAL_SERVICE_ACCOUNTS,
  ANNOTATION_EXPORT_TO,
  ANNOTATION_KUBERNETES_SERVICE_ACCOUNTS,
} from './well-known.js';
import { spiffeIdentity } from './workloads.js';
import type { WorkloadIndex } from './workload-index.js';

/** A service with its endpoints, before services of the same host are merged. */
export interface BuiltService {
  readonly service: Service;
  readonly endpoints: readonly Endpoint[];
}

/** Stands for "no Pod found" in the inputs of a slice endpoint. */
const NO_POD: object = Object.freeze({});

/**
 * What a Kubernetes Service's endpoints depend on besides the Service itself: its slices and the
 * Pods their endpoints name, or the workloads its selector picks. When these are the same
 * objects as last time, the previous result can be reused.
 */
export function kubeServiceInputs(
  obj: KubeObject,
  slices: readonly KubeObject[] | undefined,
  workloads: WorkloadIndex,
): object[] {
  const spec = asObject(obj.spec) ?? {};
  const namespace = obj.metadata.namespace ?? 'default';
  if (asString(spec.type) === 'ExternalName' && asString(spec.externalName)) return [];
  if (slices && slices.length > 0) {
    const out: object[] = [...slices];
    for (const slice of slices)
      for (const raw of asArray(slice.endpoints)) {
        const e = asObject(raw);
        out.push((e && podForSliceEndpoint(e, namespace, workloads)) ?? NO_POD);
      }
    return out;
  }
  if (spec.selector == null) return [];
  const selector = asLabels(spec.selector);
  return [
    ...workloads.selectPods(namespace, selector),
    ...workloads.selectEntries(namespace, selector),
  ];
}

/** One Kubernetes Service and its endpoints. */
export function buildKubeService(
  obj: KubeObject,
  slices: readonly KubeObject[] | undefined,
  workloads: WorkloadIndex,
  opts: MeshOptions,
): BuiltService {
  const namespace = obj.metadata.namespace ?? 'default';
  const spec = asObject(obj.spec) ?? {};
  const annotations = asLabels(obj.metadata.annotations);
  const type = asString(spec.type) ?? 'ClusterIP';
  const clusterIP = asString(spec.clusterIP) ?? '';
  const externalName = type === 'ExternalName' ? (asString(spec.externalName) ?? '') : '';

  let resolution: Resolution = 'ClientSideLB';
  if (externalName !== '') resolution = 'Alias';
  let addresses: string[] = [];
  if (clusterIP === 'None') resolution = 'Passthrough';
  else if (clusterIP !== '') {
    const ips = asArray(spec.clusterIPs).filter((x): x is string => typeof x === 'string');
    addresses = ips.length > 1 ? ips : [clusterIP];
  }

  const ports: ServicePort[] = [];
  for (const raw of asArray(spec.ports)) {
    const p = asObject(raw);
    const port = asNumber(p?.port);
    if (!p || port === undefined) continue;
    const name = asString(p.name) ?? '';
    const appProtocol = asString(p.appProtocol);
    const target = p.targetPort;
    ports.push({
      name,
      port,
      protocol: protocolForKubePort(port, name, asString(p.protocol), appProtocol),
      ...(typeof target === 'number' || typeof target === 'string' ? { targetPort: target } : {}),
      ...(appProtocol !== undefined ? { appProtocol } : {}),
    });
  }

  const declared: string[] = [];
  const canonical = annotations[ANNOTATION_CANONICAL_SERVICE_ACCOUNTS];
  if (canonical) declared.push(...canonical.split(','));
  const kubeAccounts = annotations[ANNOTATION_KUBERNETES_SERVICE_ACCOUNTS];
  if (kubeAccounts)
    for (const sa of kubeAccounts.split(','))
      declared.push(spiffeIdentity(opts.trustDomain, namespace, sa));

  const hostname = kubeServiceHostname(obj.metadata.name, namespace, opts.domainSuffix);
  const owner = { hostname, namespace };
  const publishNotReady = asBool(spec.publishNotReadyAddresses) ?? false;
  const selectorValue = spec.selector;
  const selector = selectorValue == null ? undefined : asLabels(selectorValue);

  let endpoints: Endpoint[] = [];
  if (resolution !== 'Alias') {
    if (slices && slices.length > 0) endpoints = sliceEndpoints(owner, ports, slices, workloads);
    else if (selector !== undefined)
      endpoints = selectorEndpoints(owner, ports, selector, publishNotReady, workloads);
  }

  const service: Service = {
    hostname,
    namespace,
    name: obj.metadata.name,
    origin: 'Kubernetes',
    source: { kind: 'Service', namespace, name: obj.metadata.name },
    ports,
    addresses,
    defaultAddress: addresses[0] ?? '0.0.0.0',
    exportTo: parseExportToAnnotation(annotations[ANNOTATION_EXPORT_TO]),
    labels: asLabels(obj.metadata.labels),
    ...(selector !== undefined ? { selector } : {}),
    location: externalName !== '' ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
    meshExternal: externalName !== '',
    resolution,
    ...(externalName !== '' ? { externalName } : {}),
    serviceAccounts: accountsOf(declared, endpoints),
    publishNotReadyAddresses: publishNotReady,
    ...(obj.metadata.creationTimestamp !== undefined
      ? { creationTimestamp: obj.metadata.creationTimestamp }
      : {}),
    ...(obj.metadata.resourceVersion !== undefined
      ? { resourceVersion: obj.metadata.resourceVersion }
      : {}),
  };
  return { service, endpoints };
}

/** The sorted union of declared identities and those of the endpoints. */
export function accountsOf(declared: readonly string[], endpoints: readonly Endpoint[]): string[] {
  const set = new Set(declared.filter((s) => s !== ''));
  for (const e of endpoints) if (e.serviceAccount !== undefined) set.add(e.serviceAccount);
  return [...set].sort();
}

/**
 * A targetPort resolved against a workload, as Kubernetes does: absent, 0 or '' means the
 * service port; a number is itself; a name is the workload's port of that name (undefined when
 * the workload has none: it gets no endpoint for this port).
 */
function resolveTargetPort(port: ServicePort, workload: Workload): number | undefined {
  const t = port.targetPort;
  if (t === undefined || t === 0 || t === '') return port.port;
  if (typeof t === 'number') return t;
  return workload.ports[t];
}

function selectorEndpoints(
  owner: { hostname: string; namespace: string },
  ports: readonly ServicePort[],
  selector: Readonly<Record<string, string>>,
  publishNotReady: boolean,
  workloads: WorkloadIndex,
): Endpoint[] {
  const out: Endpoint[] = [];
  const pods = workloads.selectPods(owner.namespace, selector);
  for (const pod of pods) {
    if (pod.address === '') continue;
    const health: HealthStatus = publishNotReady ? 'Healthy' : pod.health;
    for (const port of ports) {
      const target = resolveTargetPort(port, pod);
      if (target !== undefined) out.push(workloadEndpoint(owner, port, pod, target, health));
    }
  }
  // Kubernetes Services also select WorkloadEntries with IP addresses (Istio's kube registry).
  for (const we of workloads.selectEntries(owner.namespace, selector)) {
    if (we.unixSocket || isIP(we.address) === 0) continue;
    for (const port of ports) {
      const byName = we.ports[port.name];
      const t = port.targetPort;
      let target: number | undefined;
      if (byName !== undefined) target = byName;
      else if (typeof t === 'number' && t > 0) target = t;
      else if (typeof t === 'string' && t !== '') target = we.ports[t] ?? port.port;
      else target = port.port;
      out.push(workloadEndpoint(owner, port, we, target));
    }
  }
  return out;
}

/**
 * Endpoints from the Service's EndpointSlices (IPv4/IPv6; FQDN slices are skipped, as Istio
 * does). Each address takes labels and identity from its Pod (by targetRef, else by IP).
 * Readiness is the slice's `ready` condition (absent means ready); a not-ready terminating
 * endpoint is Terminating.
 */
function sliceEndpoints(
  owner: { hostname: string; namespace: string },
  ports: readonly ServicePort[],
  slices: readonly KubeObject[],
  workloads: WorkloadIndex,
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const slice of slices) {
    const addressType = asString(slice.addressType);
    if (addressType !== 'IPv4' && addressType !== 'IPv6') continue;
    const slicePorts = new Map<string, number>();
    for (const raw of asArray(slice.ports)) {
      const p = asObject(raw);
      const n = asNumber(p?.port);
      if (p && n !== undefined) slicePorts.set(asString(p.name) ?? '', n);
    }
    for (const raw of asArray(slice.endpoints)) {
      const e = asObject(raw);
      if (!e) continue;
      const health = sliceHealth(asObject(e.conditions));
      const pod = podForSliceEndpoint(e, owner.namespace, workloads);
      for (const a of asArray(e.addresses)) {
        const address = asString(a);
        if (!address) continue;
        for (const port of ports) {
          const n = slicePorts.get(port.name);
          if (n === undefined) continue;
          if (pod && pod.address === address)
            out.push(workloadEndpoint(owner, port, pod, n, health));
          else if (pod) out.push(workloadEndpoint(owner, port, { ...pod, address }, n, health));
          else out.push(addressEndpoint(owner, port, address, n, { health }));
        }
      }
    }
  }
  return out;
}

function sliceHealth(conditions: Json | undefined): HealthStatus {
  const ready = asBool(conditions?.ready);
  if (ready === undefined || ready) return 'Healthy';
  if (asBool(conditions?.terminating) === true) return 'Terminating';
  return 'UnHealthy';
}

function podForSliceEndpoint(
  e: Json,
  namespace: string,
  workloads: WorkloadIndex,
): Workload | undefined {
  const ref = asObject(e.targetRef);
  if (ref && (ref.kind === undefined || ref.kind === 'Pod')) {
    const name = asString(ref.name);
    const ns = asString(ref.namespace) ?? namespace;
    if (name) {
      const pod = workloads.get('Pod', ns, name);
      if (pod) return pod;
    }
  }
  const first = asString(asArray(e.addresses)[0]);
  return first ? workloads.podByAddress(namespace, first) : undefined;
}
