// Which Gateway resources configure a gateway proxy: those whose `selector` labels the gateway
// workload has (an empty selector selects every gateway proxy). Gateways select across
// namespaces unless the mesh scopes them to their own (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE).
import type { GatewayConfig } from './config.js';
import { compareByCreation } from './config.js';
import { selectsLabels } from './labels.js';
import type { Labels } from './model.js';

export class GatewayIndex {
  readonly #all: readonly GatewayConfig[];
  readonly #byRef = new Map<string, GatewayConfig>();

  constructor(
    all: readonly GatewayConfig[],
    private readonly scopeToNamespace: boolean,
  ) {
    this.#all = Object.freeze([...all].sort(compareByCreation));
    for (const g of this.#all) this.#byRef.set(g.ref, g);
  }

  /** Every Gateway, oldest first. */
  get all(): readonly GatewayConfig[] {
    return this.#all;
  }

  /** The Gateways that select a gateway workload of `namespace` with `labels`, oldest first. */
  forWorkload(namespace: string, labels: Labels): readonly GatewayConfig[] {
    return this.#all.filter(
      (g) =>
        (!this.scopeToNamespace || g.namespace === namespace) &&
        selectsLabels(g.spec.selector ?? {}, labels),
    );
  }

  /** A Gateway by `namespace/name`. */
  byRef(ref: string): GatewayConfig | undefined {
    return this.#byRef.get(ref);
  }
}
