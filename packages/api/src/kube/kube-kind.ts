// Builds the KindInfo of a Kubernetes kind from the schema of its top-level fields. Kubernetes
// objects keep fields Trellis does not know (they are stored and served back unchanged).
import type { KindInfo, NameRule } from '../kinds/kind.js';
import type { ValidationContext } from '../validation/problem.js';
import { anyValue, obj, type AnySchema, type ObjectOf } from '../validation/schema.js';

export interface KubeKindOptions<F extends Record<string, AnySchema>> {
  /** '' for the core group. */
  readonly group: '' | 'apps';
  readonly kind: string;
  readonly plural: string;
  readonly shortNames?: readonly string[];
  readonly namespaced?: boolean;
  readonly nameRule?: NameRule;
  /** Top-level fields besides apiVersion, kind, metadata and status (`spec`, or `data` for a Secret). */
  readonly fields: F;
  /** Checks over the top-level fields; runs only when they are well typed. */
  readonly check?: (object: ObjectOf<F>, ctx: ValidationContext) => void;
}

/** A Kubernetes kind served at version v1 of its group, validated by the fields that matter. */
export function kubeKind<F extends Record<string, AnySchema>>(o: KubeKindOptions<F>): KindInfo {
  const top = obj(
    {
      apiVersion: anyValue(),
      kind: anyValue(),
      metadata: anyValue(),
      status: anyValue(),
      ...o.fields,
    },
    {
      unknownFields: 'keep',
      ...(o.check ? { check: (v: ObjectOf<F>, ctx: ValidationContext) => o.check?.(v, ctx) } : {}),
    },
  );
  return {
    group: o.group,
    kind: o.kind,
    versions: ['v1'],
    plural: o.plural,
    singular: o.kind.toLowerCase(),
    shortNames: o.shortNames ?? [],
    namespaced: o.namespaced ?? true,
    support: 'supported',
    nameRule: o.nameRule ?? 'dns1123-subdomain',
    validate(object, ctx) {
      top.validate(object, ctx);
    },
  };
}
