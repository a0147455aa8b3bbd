// Endpoints: a workload (or a bare address) serving one port of one service.
import type { Endpoint, HealthStatus, ServicePort, Workload } from './model.js';
import { EMPTY_LABELS } from './read.js';

/** The service an endpoint belongs to. */
export interface EndpointOwner {
  readonly hostname: string;
  readonly namespace: string;
}

/**
 * The endpoint of `workload` for `port`, whose application listens on `targetPort`. In local mode
 * the workload's sidecar inbound port for `targetPort` (if mapped) is what peers dial. A Unix
 * socket has port 0.
 */
export function workloadEndpoint(
  owner: EndpointOwner,
  port: ServicePort,
  workload: Workload,
  targetPort: number,
  health: HealthStatus = workload.health,
): Endpoint {
  const dial = workload.unixSocket ? 0 : (workload.inboundPorts[String(targetPort)] ?? targetPort);
  return {
    hostname: owner.hostname,
    serviceNamespace: owner.namespace,
    servicePortName: port.name,
    servicePort: port.port,
    address: workload.address,
    unixSocket: workload.unixSocket,
    port: dial,
    targetPort: workload.unixSocket ? 0 : targetPort,
    labels: workload.labels,
    ...(workload.identity !== undefined ? { serviceAccount: workload.identity } : {}),
    ...(workload.locality !== undefined ? { locality: workload.locality } : {}),
    ...(workload.network !== undefined ? { network: workload.network } : {}),
    ...(workload.weight !== undefined ? { weight: workload.weight } : {}),
    health,
    ready: health === 'Healthy',
    tlsMode: workload.tlsMode,
    workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name },
  };
}

/** An endpoint that is only an address (ServiceEntry inline endpoints, DNS hosts, unknown IPs). */
export function addressEndpoint(
  owner: EndpointOwner,
  port: ServicePort,
  address: string,
  targetPort: number,
  extra: Partial<
    Pick<
      Endpoint,
      'labels' | 'serviceAccount' | 'locality' | 'network' | 'weight' | 'tlsMode' | 'unixSocket'
    >
  > & { readonly health?: HealthStatus } = {},
): Endpoint {
  const health = extra.health ?? 'Healthy';
  const unixSocket = extra.unixSocket ?? false;
  return {
    hostname: owner.hostname,
    serviceNamespace: owner.namespace,
    servicePortName: port.name,
    servicePort: port.port,
    address,
    unixSocket,
    port: unixSocket ? 0 : targetPort,
    targetPort: unixSocket ? 0 : targetPort,
    labels: extra.labels ?? EMPTY_LABELS,
    ...(extra.serviceAccount !== undefined ? { serviceAccount: extra.serviceAccount } : {}),
    ...(extra.locality !== undefined ? { locality: extra.locality } : {}),
    ...(extra.network !== undefined ? { network: extra.network } : {}),
    ...(extra.weight !== undefined ? { weight: extra.weight } : {}),
    health,
    ready: health === 'Healthy',
    tlsMode: extra.tlsMode ?? 'disabled',
  };
}

/** Orders endpoints by service port, address, port and workload, for stable output. */
export function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return (
    a.servicePort - b.servicePort ||
    cmp(a.address, b.address) ||
    a.port - b.port ||
    cmp(a.workload?.kind ?? '', b.workload?.kind ?? '') ||
    cmp(a.workload?.name ?? '', b.workload?.name ?? '')
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
