// Whether an endpoint is marked for Istio mTLS in its metadata (Istio's mtlsChecker): when the
// DestinationRule sets a TLS mode for the cluster (the subset's own policy for a subset cluster,
// the rule's for the service cluster, a matching port-level setting winning), only ISTIO_MUTUAL
// marks it; otherwise it is marked when it runs a sidecar (`security.istio.io/tlsMode: istio`)
// and its PeerAuthentication does not DISABLE mTLS on its port.
import type { TrafficPolicy } from '@trellis/api';
import type { ConsolidatedDestinationRule, Endpoint, Snapshot } from '@trellis/registry';
import { portLevelSetting } from './traffic-policy-merge.js';
import { workloadMtlsMode } from './tls-mtls-mode.js';

function tlsModeOf(policy: TrafficPolicy | undefined, port: number): string | undefined {
  if (!policy) return undefined;
  const p = portLevelSetting(policy, port);
  if (p?.tls) return p.tls.mode ?? 'DISABLE';
  if (policy.tls) return policy.tls.mode ?? 'DISABLE';
  return undefined;
}

/** The DestinationRule's TLS mode for a cluster, if it sets one. */
export function ruleTlsMode(
  rule: ConsolidatedDestinationRule | undefined,
  subset: string,
  port: number,
): string | undefined {
  if (!rule) return undefined;
  if (subset === '') return tlsModeOf(rule.spec.trafficPolicy, port);
  const s = rule.spec.subsets?.find((x) => x.name === subset);
  return s ? tlsModeOf(s.trafficPolicy, port) : undefined;
}

/** Whether the endpoint's metadata says it takes Istio mTLS. */
export function endpointMtlsEnabled(
  snapshot: Snapshot,
  rule: ConsolidatedDestinationRule | undefined,
  subset: string,
  servicePort: number,
  e: Endpoint,
): boolean {
  const mode = ruleTlsMode(rule, subset, servicePort);
  if (mode !== undefined) return mode === 'ISTIO_MUTUAL';
  if (e.tlsMode !== 'istio') return false;
  const ns = e.workload?.namespace ?? e.serviceNamespace;
  return workloadMtlsMode(snapshot, ns, e.labels, e.targetPort) !== 'DISABLE';
}
