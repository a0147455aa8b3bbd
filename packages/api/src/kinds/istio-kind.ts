// Builds the KindInfo of an Istio custom resource from its spec schema.
import type { KindInfo, NameRule, Support } from './kind.js';
import { obj, anyValue, type Schema } from '../validation/schema.js';
import type { ValidationContext } from '../validation/problem.js';

export interface IstioKindOptions {
  readonly group:
    'networking.istio.io' | 'security.istio.io' | 'telemetry.istio.io' | 'extensions.istio.io';
  readonly kind: string;
  readonly versions: readonly string[];
  readonly plural: string;
  readonly shortNames?: readonly string[];
  readonly spec: Schema<unknown>;
  readonly support?: Support;
  readonly nameRule?: NameRule;
  /** Checks over the whole object (e.g. rules that depend on metadata.namespace); runs after the spec's. */
  readonly check?: (object: Readonly<Record<string, unknown>>, ctx: ValidationContext) => void;
}

/** The top level of every Istio resource: `spec` is validated, `status` is kept. */
export function istioKind(o: IstioKindOptions): KindInfo {
  const top = obj(
    {
      apiVersion: anyValue(),
      kind: anyValue(),
      metadata: anyValue(),
      spec: o.spec,
      status: anyValue(),
    },
    { unknownFields: 'error' },
  );
  return {
    group: o.group,
    kind: o.kind,
    versions: o.versions,
    plural: o.plural,
    singular: o.kind.toLowerCase(),
    shortNames: o.shortNames ?? [],
    namespaced: true,
    support: o.support ?? 'supported',
    nameRule: o.nameRule ?? 'dns1123-subdomain',
    validate(object, ctx) {
      const before = ctx.typeErrorCount;
      top.validate(object, ctx);
      if (o.support === 'stored-only') {
        ctx.warn(`${o.kind} is stored but not applied: Trellis does not support ${o.kind} yet`);
      }
      if (o.check && ctx.typeErrorCount === before) o.check(object, ctx);
    },
  };
}

/** Versions served by each Istio group, as Istio's CRDs serve them. */
export const NETWORKING_VERSIONS = ['v1alpha3', 'v1beta1', 'v1'] as const;
export const SECURITY_VERSIONS = ['v1beta1', 'v1'] as const;
export const TELEMETRY_VERSIONS = ['v1alpha1', 'v1'] as const;
