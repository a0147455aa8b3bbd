// The mutual TLS mode a server side accepts, from PeerAuthentication, as clients need it for
// auto mTLS (Istio's AuthenticationPolicies.GetNamespaceMutualTLSMode, authn factory
// GetMutualTLSModeForPort and PushContext.BestEffortInferServiceMTLSMode):
// - mesh-wide: the oldest PeerAuthentication without selector in the root namespace;
// - namespace-wide: the oldest one without selector in the namespace;
// - workload: the oldest one in the namespace whose selector matches the workload, with its
//   portLevelMtls (keyed by the workload's port);
// an UNSET mode inherits from the level above; with nothing set the mode is PERMISSIVE.
import type { PeerAuthenticationSpec } from '@trellis/api';
import type { Config, Endpoint, Labels, Service, Snapshot } from '@trellis/registry';
import { hasLabels } from './endpoint-lb.js';
import type { EffectiveTrafficPolicy } from './traffic-policy-merge.js';

/** A server's mTLS mode; UNKNOWN when no policy says anything. */
export type MtlsMode = 'UNKNOWN' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

type PeerAuthentication = Config<PeerAuthenticationSpec>;

function modeOf(spec: { readonly mode?: string } | undefined): MtlsMode {
  const m = spec?.mode;
  return m === 'DISABLE' || m === 'PERMISSIVE' || m === 'STRICT' ? m : 'UNKNOWN';
}

function peerAuthentications(snapshot: Snapshot, namespace: string): readonly PeerAuthentication[] {
  return snapshot.policies('PeerAuthentication', namespace) as readonly PeerAuthentication[];
}

function namespacePolicy(snapshot: Snapshot, namespace: string): PeerAuthentication | undefined {
  return peerAuthentications(snapshot, namespace).find(
    (p) => p.namespace === namespace && p.spec.selector == null,
  );
}

/**
 * The mode of a namespace from namespace-wide, then mesh-wide PeerAuthentication; UNKNOWN when
 * neither sets one.
 */
export function namespaceMtlsMode(snapshot: Snapshot, namespace: string): MtlsMode {
  const ns = modeOf(namespacePolicy(snapshot, namespace)?.spec.mtls);
  if (ns !== 'UNKNOWN') return ns;
  return modeOf(namespacePolicy(snapshot, snapshot.mesh.rootNamespace)?.spec.mtls);
}

/** The mode a workload (namespace, labels) accepts on one of its ports. */
export function workloadMtlsMode(
  snapshot: Snapshot,
  namespace: string,
  labels: Labels,
  port: number,
): MtlsMode {
  let mode = namespaceMtlsMode(snapshot, namespace);
  if (mode === 'UNKNOWN') mode = 'PERMISSIVE';
  const workload = peerAuthentications(snapshot, namespace).find(
    (p) =>
      p.namespace === namespace &&
      p.spec.selector != null &&
      hasLabels(p.spec.selector.matchLabels ?? {}, labels),
  );
  if (!workload) return mode;
  const own = modeOf(workload.spec.mtls);
  if (own !== 'UNKNOWN') mode = own;
  const portMode = modeOf(workload.spec.portLevelMtls?.[String(port)]);
  return portMode !== 'UNKNOWN' ? portMode : mode;
}

/**
 * Istio's best guess of the mode a service's servers accept, for auto mTLS: UNKNOWN for mesh
 * external services; DISABLE for a passthrough service (or PASSTHROUGH load balancing) when any
 * endpoint has no sidecar or there are none; else the namespace / mesh PeerAuthentication mode,
 * falling back to PERMISSIVE.
 */
export function serviceMtlsMode(
  snapshot: Snapshot,
  service: Service,
  policy: EffectiveTrafficPolicy | undefined,
  endpoints: readonly Endpoint[],
): MtlsMode {
  if (service.meshExternal) return 'UNKNOWN';
  if (service.resolution === 'Passthrough' || policy?.loadBalancer?.simple === 'PASSTHROUGH') {
    if (endpoints.length === 0) return 'DISABLE';
    if (endpoints.some((e) => e.tlsMode === 'disabled')) return 'DISABLE';
  }
  const mode = namespaceMtlsMode(snapshot, service.namespace);
  return mode === 'UNKNOWN' ? 'PERMISSIVE' : mode;
}
