// ServiceEntries as registry services: one service per host, with endpoints from inline
// `endpoints`, from the WorkloadEntries and Pods a `workloadSelector` picks (same namespace), or,
// for DNS resolution without either, the host itself.
// Semantics: Istio's serviceentry registry (pilot/pkg/serviceregistry/serviceentry conversion.go).
import type { KubeObject } from '@trellis/api';
import { isIP } from 'node:net';
import { addressEndpoint, workloadEndpoint } from './endpoints.js';
import { accountsOf, type BuiltService } from './kube-services.js';
import type { Endpoint, Labels, Resolution, Service, ServicePort, TlsMode } from './model.js';
import type { MeshOptions } from './options.js';
import { parseProtocol } from './protocol.js';
import { asArray, asLabels, asNumber, asObject, asPortMap, asString, type Json } from './read.js';
import { LABEL_TLS_MODE } from './well-known.js';
import { UNIX_ADDRESS_PREFIX, spiffeIdentity } from './workloads.js';
import type { WorkloadIndex } from './workload-index.js';

const RESOLUTIONS: Readonly<Record<string, Resolution>> = {
  NONE: 'Passthrough',
  STATIC: 'ClientSideLB',
  DNS: 'DNSLB',
  DNS_ROUND_ROBIN: 'DNSRoundRobinLB',
  DYNAMIC_DNS: 'DynamicDNS',
};

/** A ServiceEntry port, with the target port a number (or absent). */
interface EntryPort extends ServicePort {
  readonly targetPort?: number;
}

/** The workloads a ServiceEntry's endpoints depend on (those its workloadSelector picks). */
export function serviceEntryInputs(obj: KubeObject, workloads: WorkloadIndex): object[] {
  const selector = asObject(asObject(obj.spec)?.workloadSelector);
  if (!selector) return [];
  const labels = asLabels(selector.labels);
  const namespace = obj.metadata.namespace ?? 'default';
  return [
    ...workloads.selectEntries(namespace, labels),
    ...workloads.selectPods(namespace, labels),
  ];
}

/** The services (one per host) of a ServiceEntry, each with its endpoints. */
export function buildServiceEntry(
  obj: KubeObject,
  workloads: WorkloadIndex,
  opts: MeshOptions,
): BuiltService[] {
  const namespace = obj.metadata.namespace ?? 'default';
  const spec = asObject(obj.spec) ?? {};
  const resolutionName = asString(spec.resolution) ?? 'NONE';
  const resolution = RESOLUTIONS[resolutionName] ?? 'Passthrough';
  const location = asString(spec.location) === 'MESH_INTERNAL' ? 'MESH_INTERNAL' : 'MESH_EXTERNAL';

  const ports: EntryPort[] = [];
  for (const raw of asArray(spec.ports)) {
    const p = asObject(raw);
    const number = asNumber(p?.number);
    if (!p || number === undefined) continue;
    const targetPort = asNumber(p.targetPort);
    ports.push({
      name: asString(p.name) ?? '',
      port: number,
      protocol: parseProtocol(asString(p.protocol) ?? ''),
      ...(targetPort !== undefined && targetPort > 0 ? { targetPort } : {}),
    });
  }

  const addresses: string[] = [];
  for (const a of asArray(spec.addresses)) {
    const s = asString(a);
    if (!s) continue;
    if (isIP(s) !== 0) addresses.push(s);
    else {
      const slash = s.indexOf('/');
      const ip = s.slice(0, slash);
      const bits = s.slice(slash + 1);
      const family = isIP(ip);
      if (slash < 0 || family === 0 || !/^[0-9]+$/.test(bits)) continue;
      // A host-sized prefix (/32, /128) is the address itself.
      addresses.push(Number(bits) === (family === 4 ? 32 : 128) ? ip : s);
    }
  }

  const selectorLabels = asObject(spec.workloadSelector);
  const selector = selectorLabels ? asLabels(selectorLabels.labels) : undefined;
  const inline = asArray(spec.endpoints)
    .map(asObject)
    .filter((e): e is Json => e !== undefined);
  const declared = asArray(spec.subjectAltNames).filter((s): s is string => typeof s === 'string');
  const exportTo = asArray(spec.exportTo).filter((s): s is string => typeof s === 'string');
  const labels = asLabels(obj.metadata.labels);

  const out: BuiltService[] = [];
  const seenHosts = new Set<string>();
  for (const h of asArray(spec.hosts)) {
    const hostname = asString(h);
    if (!hostname || seenHosts.has(hostname)) continue;
    seenHosts.add(hostname);
    const owner = { hostname, namespace };
    const endpoints: Endpoint[] = [];
    const dns = resolution === 'DNSLB' || resolution === 'DNSRoundRobinLB';
    if (inline.length === 0 && selector === undefined && dns) {
      // DNS resolution and no endpoints: the host itself is the endpoint.
      for (const port of ports)
        endpoints.push(addressEndpoint(owner, port, hostname, port.targetPort ?? port.port));
    } else {
      for (const e of inline) endpoints.push(...inlineEndpoints(owner, ports, e, opts));
      if (selector !== undefined)
        endpoints.push(...selectedEndpoints(owner, ports, selector, workloads));
    }
    const service: Service = {
      hostname,
      namespace,
      name: hostname,
      origin: 'ServiceEntry',
      source: { kind: 'ServiceEntry', namespace, name: obj.metadata.name },
      ports,
      addresses,
      defaultAddress: addresses[0] ?? '0.0.0.0',
      exportTo,
      labels,
      ...(selector !== undefined ? { selector } : {}),
      location,
      meshExternal: location === 'MESH_EXTERNAL',
      resolution,
      serviceAccounts: accountsOf(declared, endpoints),
      publishNotReadyAddresses: false,
      ...(obj.metadata.creationTimestamp !== undefined
        ? { creationTimestamp: obj.metadata.creationTimestamp }
        : {}),
      ...(obj.metadata.resourceVersion !== undefined
        ? { resourceVersion: obj.metadata.resourceVersion }
        : {}),
    };
    out.push({ service, endpoints });
  }
  return out;
}

/**
 * The port of a workload for a ServiceEntry port, by Istio's priority: the workload's port of
 * the same name, then the entry's `targetPort`, then the port number.
 */
function entryTargetPort(port: EntryPort, named: Readonly<Record<string, number>>): number {
  const byName = named[port.name];
  if (byName !== undefined && byName > 0) return byName;
  return port.targetPort ?? port.port;
}

/** An inline endpoint (a WorkloadEntry shape) for every port of the entry. */
function inlineEndpoints(
  owner: { hostname: string; namespace: string },
  ports: readonly EntryPort[],
  e: Json,
  opts: MeshOptions,
): Endpoint[] {
  const raw = asString(e.address) ?? '';
  const unixSocket = raw.startsWith(UNIX_ADDRESS_PREFIX);
  const address = unixSocket ? raw.slice(UNIX_ADDRESS_PREFIX.length) : raw;
  const labels = asLabels(e.labels);
  const sa = asString(e.serviceAccount) ?? '';
  const named = asPortMap(e.ports);
  const locality = asString(e.locality);
  const network = asString(e.network);
  const weight = asNumber(e.weight);
  const tlsMode = entryTlsMode(labels, sa);
  return ports.map((port) =>
    addressEndpoint(owner, port, address, entryTargetPort(port, named), {
      labels,
      unixSocket,
      tlsMode,
      ...(sa !== ''
        ? { serviceAccount: spiffeIdentity(opts.trustDomain, owner.namespace, sa) }
        : {}),
      ...(locality ? { locality } : {}),
      ...(network ? { network } : {}),
      ...(weight !== undefined && weight > 0 ? { weight } : {}),
    }),
  );
}

/** Endpoints of the WorkloadEntries and Pods of the entry's namespace that the selector picks. */
function selectedEndpoints(
  owner: { hostname: string; namespace: string },
  ports: readonly EntryPort[],
  selector: Labels,
  workloads: WorkloadIndex,
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const we of workloads.selectEntries(owner.namespace, selector))
    for (const port of ports)
      out.push(workloadEndpoint(owner, port, we, entryTargetPort(port, we.ports)));
  for (const pod of workloads.selectPods(owner.namespace, selector)) {
    if (pod.address === '') continue;
    for (const port of ports)
      out.push(workloadEndpoint(owner, port, pod, entryTargetPort(port, pod.ports)));
  }
  return out;
}

/** Istio's rule for WorkloadEntry shapes: the tlsMode label, else `istio` with a service account. */
function entryTlsMode(labels: Labels, serviceAccount: string): TlsMode {
  const label = labels[LABEL_TLS_MODE];
  if (label !== undefined) return label === 'istio' ? 'istio' : 'disabled';
  return serviceAccount !== '' ? 'istio' : 'disabled';
}
