// One registry endpoint as an Envoy LbEndpoint, and endpoints grouped by locality into a
// ClusterLoadAssignment (Istio's EndpointBuilder.generate / buildEnvoyLbEndpoint):
// - only healthy endpoints are sent (Istio drops unready endpoints unless told otherwise, and
//   sends draining ones only to persistent-session services, which Trellis does not have);
//   terminating ones are dropped too;
// - the address is `IP:port`, or a pipe for a Unix socket; the weight is the endpoint's, else 1;
// - metadata: `envoy.transport_socket_match: {tlsMode: istio}` when the endpoint takes Istio mTLS
//   (auto mTLS picks the TLS transport socket with it), and `istio: {workload:
//   "NAME;NAMESPACE;CANONICAL_NAME;CANONICAL_REVISION;CLUSTER"}` for telemetry;
// - groups are sorted by locality, each weighted by the sum of its endpoints' weights.
import type { ClusterLoadAssignment, LbEndpoint, Metadata } from '@trellis/envoy';
import type { Endpoint, Labels } from '@trellis/registry';
import {
  envoyLocality,
  type LocalityEndpoint,
  type LocalityGroup,
  withTopologyLabels,
} from './load-balancer-locality.js';
import { isIP } from 'node:net';

/** The endpoint metadata filter that cluster transport socket matches read (`tlsMode`). */
export const TRANSPORT_SOCKET_MATCH_METADATA = 'envoy.transport_socket_match';

/** Which endpoints go out. */
export interface EndpointFilter {
  /** EDS sends only IP addresses (DNS names belong to DNS clusters) and Unix sockets. */
  readonly ipOnly: boolean;
  /** Proxyless gRPC clients dial IP addresses only (no Unix sockets). */
  readonly grpc: boolean;
}

/** Whether an endpoint is sent to proxies. */
export function includeEndpoint(e: Endpoint, f: EndpointFilter): boolean {
  if (e.health !== 'Healthy') return false;
  if (e.address === '') return false;
  if (e.unixSocket) return !f.grpc;
  if (f.ipOnly && isIP(e.address) === 0) return false;
  return true;
}

const POD_TEMPLATE_HASH = 'pod-template-hash';

/**
 * The workload (Deployment) name of an endpoint, as Istio reports it: a Pod of a ReplicaSet
 * drops its `-HASH-xxxxx` suffix (the ReplicaSet's pod-template-hash label), other Pods and
 * WorkloadEntries keep their name; '' for an address-only endpoint.
 */
export function workloadNameOf(e: Endpoint): string {
  const w = e.workload;
  if (!w) return '';
  if (w.kind !== 'Pod') return w.name;
  const hash = e.labels[POD_TEMPLATE_HASH];
  if (hash !== undefined && hash !== '') {
    const marker = `-${hash}-`;
    const at = w.name.lastIndexOf(marker);
    if (at > 0) return w.name.slice(0, at);
    if (w.name.endsWith(`-${hash}`)) return w.name.slice(0, -hash.length - 1);
  }
  return w.name;
}

/** Istio's canonical service name and revision of a workload (`latest` written as ''). */
export function canonicalService(labels: Labels, workloadName: string): [string, string] {
  const name =
    labels['service.istio.io/canonical-name'] ??
    labels['app.kubernetes.io/name'] ??
    labels.app ??
    workloadName;
  const revision =
    labels['service.istio.io/canonical-revision'] ??
    labels['app.kubernetes.io/version'] ??
    labels.version ??
    'latest';
  return [name, revision === 'latest' ? '' : revision];
}

/** An endpoint as an LbEndpoint with the labels failover priorities read. */
export function localityEndpointOf(
  e: Endpoint,
  mtlsEnabled: boolean,
  clusterId: string,
): LocalityEndpoint {
  const workloadName = workloadNameOf(e);
  const [canonicalName, canonicalRevision] = canonicalService(e.labels, workloadName);
  const namespace = e.workload?.namespace ?? e.serviceNamespace;
  const filterMetadata: Metadata['filterMetadata'] = {};
  if (mtlsEnabled && e.tlsMode === 'istio')
    filterMetadata[TRANSPORT_SOCKET_MATCH_METADATA] = { tlsMode: 'istio' };
  filterMetadata.istio = {
    workload: [workloadName, namespace, canonicalName, canonicalRevision, clusterId].join(';'),
  };
  const lb: LbEndpoint = {
    endpoint: {
      address: e.unixSocket
        ? { pipe: { path: e.address } }
        : { socketAddress: { address: e.address, portValue: e.port } },
    },
    healthStatus: 'HEALTHY',
    metadata: { filterMetadata },
    loadBalancingWeight: e.weight !== undefined && e.weight > 0 ? e.weight : 1,
  };
  return { lb, labels: withTopologyLabels(e.labels, e.locality, e.network, clusterId) };
}

/** Endpoints grouped by locality, localities sorted, each weighted by its endpoints' sum. */
export function groupByLocality(
  endpoints: readonly { readonly endpoint: Endpoint; readonly lb: LocalityEndpoint }[],
): LocalityGroup[] {
  const byLocality = new Map<string, LocalityEndpoint[]>();
  for (const { endpoint, lb } of endpoints) {
    const key = endpoint.locality ?? '';
    const list = byLocality.get(key);
    if (list) list.push(lb);
    else byLocality.set(key, [lb]);
  }
  return [...byLocality.keys()].sort().map((locality) => {
    const eps = byLocality.get(locality)!;
    const weight = eps.reduce(
      (s, e) => Math.min(s + (e.lb.loadBalancingWeight ?? 0), 4294967295),
      0,
    );
    return { locality, endpoints: eps, weight, priority: 0 };
  });
}

/** The ClusterLoadAssignment of groups. */
export function loadAssignmentOf(
  clusterName: string,
  groups: readonly LocalityGroup[],
): ClusterLoadAssignment {
  if (groups.length === 0) return { clusterName };
  return {
    clusterName,
    endpoints: groups.map((g) => ({
      locality: envoyLocality(g.locality),
      lbEndpoints: g.endpoints.map((e) => e.lb),
      loadBalancingWeight: g.weight,
      ...(g.priority > 0 ? { priority: g.priority } : {}),
    })),
  };
}

/** Whether `labels` has every `selector` label with the same value (an empty selector: all). */
export function hasLabels(selector: Labels, labels: Labels): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}
