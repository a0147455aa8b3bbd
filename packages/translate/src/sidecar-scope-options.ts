// Mesh-wide traffic defaults listener and route generation read (Istio MeshConfig
// `outboundTrafficPolicy` and `defaultHttpRetryPolicy`), with Istio's defaults.
import type { HTTPRetry } from '@trellis/api';

/** Mesh-wide defaults for outbound traffic. */
export interface MeshTrafficDefaults {
  /** What happens to traffic for destinations outside the registry (Istio: ALLOW_ANY). */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Retry policy of routes without `retries` (Istio: unset, so its built-in default). */
  readonly defaultHttpRetryPolicy?: HTTPRetry;
}

/** Istio's defaults. */
export const DEFAULT_MESH_TRAFFIC: MeshTrafficDefaults = Object.freeze({
  outboundTrafficPolicy: 'ALLOW_ANY',
});
