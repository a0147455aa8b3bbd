// Pods and WorkloadEntries as Workloads: address, labels, identity, locality, health and the
// ports a service's targetPort can name. Semantics follow Istio's kube and serviceentry
// registries (pilot/pkg/serviceregistry) and the Kubernetes endpoints controller (which pods
// count as ready).
import type { KubeObject } from '@trellis/api';
import { deepFreeze } from '@trellis/core';
import type { HealthStatus, Labels, TlsMode, Workload } from './model.js';
import {
  asArray,
  asLabels,
  asNumber,
  asObject,
  asPortMap,
  asString,
  path,
  type Json,
} from './read.js';
import {
  ANNOTATION_INBOUND_PORTS,
  ANNOTATION_SIDECAR_STATUS,
  ANNOTATION_APP_PORTS,
  LABEL_LOCALITY,
  LABEL_NETWORK,
  LABEL_TLS_MODE,
} from './well-known.js';

/** The prefix of a Unix domain socket address in a WorkloadEntry. */
export const UNIX_ADDRESS_PREFIX = 'unix://';

/** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
export function spiffeIdentity(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** A workload plus what went wrong reading it (a bad annotation), if anything. */
export interface WorkloadResult {
  readonly workload?: Workload;
  readonly problems: readonly string[];
}

/**
 * A Pod as a workload. Pods that have finished (phase Succeeded or Failed) are not workloads:
 * Kubernetes drops them from endpoints. Readiness follows the Pod's `Ready` condition; a Pod being
 * deleted is `Terminating`.
 */
export function podWorkload(pod: KubeObject, trustDomain: string): WorkloadResult {
  const problems: string[] = [];
  const status = asObject(pod.status);
  const phase = asString(status?.phase);
  if (phase === 'Succeeded' || phase === 'Failed') return { problems };
  const namespace = pod.metadata.namespace ?? 'default';
  const spec = asObject(pod.spec);
  const labels = asLabels(pod.metadata.labels);
  const annotations = asLabels(pod.metadata.annotations);
  const serviceAccount =
    asString(spec?.serviceAccountName) || asString(spec?.serviceAccount) || 'default';
  const address = asString(status?.podIP) ?? asString(path(asArray(status?.podIPs)[0], 'ip')) ?? '';

  let health: HealthStatus = podReady(status) ? 'Healthy' : 'UnHealthy';
  if (pod.metadata.deletionTimestamp != null) health = 'Terminating';

  const ports: Record<string, number> = {};
  for (const c of asArray(spec?.containers)) {
    for (const p of asArray(asObject(c)?.ports)) {
      const name = asString(asObject(p)?.name);
      const n = asNumber(asObject(p)?.containerPort);
      if (name && n !== undefined && !(name in ports)) ports[name] = n;
    }
  }

  const portMap = (annotation: string): Readonly<Record<string, number>> => {
    const text = annotations[annotation];
    if (text === undefined) return {};
    const parsed = parseInboundPorts(text);
    if (typeof parsed !== 'string') return parsed;
    problems.push(`annotation ${annotation} is ignored: ${parsed}`);
    return {};
  };
  const inboundPorts = portMap(ANNOTATION_INBOUND_PORTS);
  const appPorts = portMap(ANNOTATION_APP_PORTS);

  const locality = labels[LABEL_LOCALITY];
  const network = labels[LABEL_NETWORK];
  const nodeName = asString(spec?.nodeName);
  const workload: Workload = {
    kind: 'Pod',
    namespace,
    name: pod.metadata.name,
    ...(pod.metadata.uid !== undefined ? { uid: pod.metadata.uid } : {}),
    address,
    unixSocket: false,
    labels,
    serviceAccount,
    identity: spiffeIdentity(trustDomain, namespace, serviceAccount),
    ...(locality ? { locality: locality.replaceAll('.', '/') } : {}),
    ...(network ? { network } : {}),
    health,
    ready: health === 'Healthy',
    tlsMode: podTlsMode(labels, annotations),
    ports,
    inboundPorts,
    appPorts,
    ...(nodeName ? { nodeName } : {}),
    ...(pod.metadata.creationTimestamp !== undefined
      ? { creationTimestamp: pod.metadata.creationTimestamp }
      : {}),
  };
  return deepFreeze({ workload, problems });
}

/** Whether a Pod's `Ready` condition is True (Kubernetes' `IsPodReady`). */
function podReady(status: Json | undefined): boolean {
  for (const c of asArray(status?.conditions)) {
    const o = asObject(c);
    if (o?.type === 'Ready') return o.status === 'True';
  }
  return false;
}

/** The label wins; otherwise an injected sidecar (its status annotation) means `istio`. */
function podTlsMode(labels: Labels, annotations: Labels): TlsMode {
  const label = labels[LABEL_TLS_MODE];
  if (label !== undefined) return label === 'istio' ? 'istio' : 'disabled';
  return annotations[ANNOTATION_SIDECAR_STATUS] !== undefined ? 'istio' : 'disabled';
}

/**
 * Parses `trellis.io/inbound-ports` (and `trellis.io/app-ports`): a JSON object from application
 * port (a number as a key) to another port. Returns the map or a message.
 */
export function parseInboundPorts(text: string): Readonly<Record<string, number>> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `not valid JSON: ${JSON.stringify(text)}`;
  }
  const o = asObject(value);
  if (!o) return 'must be a JSON object from port number to port number';
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!/^[1-9][0-9]{0,4}$/.test(k) || Number(k) > 65535)
      return `key ${JSON.stringify(k)} must be a port number between 1 and 65535`;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
      return `the port for ${k} must be a port number between 1 and 65535, not ${JSON.stringify(v)}`;
    out[k] = v;
  }
  return out;
}

/**
 * A WorkloadEntry as a workload. Its health is Healthy unless its `Healthy` status condition is
 * False (set by health checking). Without a `security.istio.io/tlsMode` label, a service account
 * means `istio` (Istio's rule for WorkloadEntries).
 */
export function workloadEntryWorkload(we: KubeObject, trustDomain: string): Workload {
  const namespace = we.metadata.namespace ?? 'default';
  const spec = asObject(we.spec);
  const rawAddress = asString(spec?.address) ?? '';
  const unixSocket = rawAddress.startsWith(UNIX_ADDRESS_PREFIX);
  const labels = asLabels(spec?.labels);
  const serviceAccount = asString(spec?.serviceAccount) ?? '';
  const locality = asString(spec?.locality);
  const network = asString(spec?.network);
  const weight = asNumber(spec?.weight);
  let health: HealthStatus = 'Healthy';
  for (const c of asArray(path(we, 'status', 'conditions'))) {
    const o = asObject(c);
    if (o?.type === 'Healthy' && o.status === 'False') health = 'UnHealthy';
  }
  const tlsLabel = labels[LABEL_TLS_MODE];
  const tlsMode: TlsMode =
    tlsLabel !== undefined
      ? tlsLabel === 'istio'
        ? 'istio'
        : 'disabled'
      : serviceAccount !== ''
        ? 'istio'
        : 'disabled';
  return {
    kind: 'WorkloadEntry',
    namespace,
    name: we.metadata.name,
    ...(we.metadata.uid !== undefined ? { uid: we.metadata.uid } : {}),
    address: unixSocket ? rawAddress.slice(UNIX_ADDRESS_PREFIX.length) : rawAddress,
    unixSocket,
    labels,
    serviceAccount,
    ...(serviceAccount !== ''
      ? { identity: spiffeIdentity(trustDomain, namespace, serviceAccount) }
      : {}),
    ...(locality ? { locality } : {}),
    ...(network ? { network } : {}),
    ...(weight !== undefined && weight > 0 ? { weight } : {}),
    health,
    ready: health === 'Healthy',
    tlsMode,
    ports: asPortMap(spec?.ports),
    inboundPorts: {},
    appPorts: {},
    ...(we.metadata.creationTimestamp !== undefined
      ? { creationTimestamp: we.metadata.creationTimestamp }
      : {}),
  };
}
