// What Trellis knows about one kind of resource: names, versions, scope and validation.
import type { ValidationContext } from '../validation/problem.js';

/** How Trellis treats a kind it accepts. */
export type Support =
  /** Validated, stored and acted on. */
  | 'supported'
  /** Validated and stored, with a warning that Trellis does not apply it (EnvoyFilter, WasmPlugin, ProxyConfig). */
  | 'stored-only';

/** The rule a kind's metadata.name follows. */
export type NameRule = 'dns1123-subdomain' | 'dns1123-label' | 'dns1035-label';

export interface KindInfo {
  /** API group; '' for the Kubernetes core group. */
  readonly group: string;
  readonly kind: string;
  /** Served versions, oldest first; the last is the preferred one. */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly namespaced: boolean;
  readonly support: Support;
  readonly nameRule: NameRule;
  /**
   * Validates everything but apiVersion, kind and metadata (which are checked for all kinds).
   * `ctx` is at the object's root; report paths like `spec.http[0].timeout`.
   */
  validate(object: Readonly<Record<string, unknown>>, ctx: ValidationContext): void;
}

/** `virtualservices.networking.istio.io`, `services` for the core group. */
export function resourceName(k: KindInfo): string {
  return k.group === '' ? k.plural : `${k.plural}.${k.group}`;
}

/** `networking.istio.io/v1` for the preferred version. */
export function preferredApiVersion(k: KindInfo): string {
  const v = k.versions[k.versions.length - 1]!;
  return k.group === '' ? v : `${k.group}/${v}`;
}
