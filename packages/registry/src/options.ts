// Mesh-wide settings the registry and snapshot depend on, with Istio's defaults (MeshConfig
// `rootNamespace`, `trustDomain`, `defaultServiceExportTo` ...).
import { DEFAULT_DOMAIN_SUFFIX } from './host.js';

/** Settings that change how objects become services and how configs apply. */
export interface MeshOptions {
  /** DNS suffix of Kubernetes Service host names (`cluster.local`). */
  readonly domainSuffix: string;
  /** The config root namespace: its Sidecar, DestinationRules and policies apply mesh-wide. */
  readonly rootNamespace: string;
  /** The trust domain of SPIFFE identities (`spiffe://<trustDomain>/ns/NS/sa/SA`). */
  readonly trustDomain: string;
  /** exportTo of Services and ServiceEntries without one (MeshConfig `defaultServiceExportTo`). */
  readonly defaultServiceExportTo: readonly string[];
  /** exportTo of VirtualServices without one (`defaultVirtualServiceExportTo`). */
  readonly defaultVirtualServiceExportTo: readonly string[];
  /** exportTo of DestinationRules without one (`defaultDestinationRuleExportTo`). */
  readonly defaultDestinationRuleExportTo: readonly string[];
  /**
   * Gateways select gateway workloads of their own namespace only
   * (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE); by default they select across namespaces.
   */
  readonly scopeGatewayToNamespace: boolean;
}

export const DEFAULT_MESH_OPTIONS: MeshOptions = Object.freeze({
  domainSuffix: DEFAULT_DOMAIN_SUFFIX,
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  defaultServiceExportTo: Object.freeze(['*']),
  defaultVirtualServiceExportTo: Object.freeze(['*']),
  defaultDestinationRuleExportTo: Object.freeze(['*']),
  scopeGatewayToNamespace: false,
});

/** The defaults with the given settings applied. */
export function meshOptions(overrides: Partial<MeshOptions> = {}): MeshOptions {
  return Object.freeze({ ...DEFAULT_MESH_OPTIONS, ...overrides });
}
