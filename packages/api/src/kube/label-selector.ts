// Kubernetes label selectors (matchLabels and matchExpressions) and matching labels against them.
import { checkLabelValue, checkQualifiedName } from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import { enumOf, list, obj, req, str, type ObjectOf } from '../validation/schema.js';
import { labels } from '../istio/common.js';

const requirementFields = {
  key: req(str({ check: (k, ctx) => checkQualifiedName(k, ctx) })),
  operator: req(enumOf(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const)),
  values: list(str({ check: (v, ctx) => checkLabelValue(v, ctx) })),
};
/** k8s.io/apimachinery LabelSelectorRequirement: `key operator values`. */
export type LabelSelectorRequirement = ObjectOf<typeof requirementFields>;
const requirement = obj(requirementFields, {
  unknownFields: 'keep',
  check: (r, ctx) => {
    const n = r.values?.length ?? 0;
    if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0)
      ctx.field('values').error(`must have at least one value when operator is ${r.operator}`);
    if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0)
      ctx.field('values').error(`must be empty when operator is ${r.operator}`);
  },
});

const labelSelectorFields = { matchLabels: labels, matchExpressions: list(requirement) };
/** k8s.io/apimachinery LabelSelector */
export type LabelSelector = ObjectOf<typeof labelSelectorFields>;
export const labelSelector = obj(labelSelectorFields, { unknownFields: 'keep' });

/** True when a selector has no requirement at all (it would select everything). */
export function isEmptySelector(s: LabelSelector): boolean {
  return Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions?.length ?? 0) === 0;
}

/** Whether a set of labels satisfies every requirement of a selector. */
export function selectorMatches(
  s: LabelSelector,
  set: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = set ?? {};
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of s.matchExpressions ?? []) {
    if (e.key === undefined) return false;
    const has = Object.hasOwn(l, e.key);
    const inValues = has && (e.values ?? []).includes(l[e.key]!);
    switch (e.operator) {
      case 'In':
        if (!inValues) return false;
        break;
      case 'NotIn':
        if (inValues) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** Reports an empty selector on `ctx` (`what` says whose selector it is). */
export function checkNonEmptySelector(
  s: LabelSelector,
  ctx: ValidationContext,
  what: string,
): void {
  if (isEmptySelector(s))
    ctx.error(
      `must have matchLabels or matchExpressions: an empty selector is not allowed for a ${what}`,
    );
}
