// The `istio.io/dry-run` annotation: Istio accepts it only on ALLOW and DENY AuthorizationPolicies,
// with a boolean value, and rejects it on every other kind.
import type { ValidationContext } from '../../validation/problem.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

const GO_BOOLS = ['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'];

/** The annotation's value when the object has it (as a string), else undefined. */
function dryRunValue(object: Readonly<Record<string, unknown>>): string | undefined {
  const meta = object.metadata;
  if (meta === null || typeof meta !== 'object') return undefined;
  const ann = (meta as { annotations?: unknown }).annotations;
  if (ann === null || typeof ann !== 'object') return undefined;
  const v = (ann as Record<string, unknown>)[DRY_RUN_ANNOTATION];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Checks the dry-run annotation of an object: `action` is the AuthorizationPolicy action, or
 * undefined for kinds that do not support the annotation at all.
 */
export function checkDryRunAnnotation(
  object: Readonly<Record<string, unknown>>,
  ctx: ValidationContext,
  kind: string,
  action?: string,
): void {
  const value = dryRunValue(object);
  if (value === undefined) return;
  const c = ctx.at('metadata', 'annotations', DRY_RUN_ANNOTATION);
  if (action === undefined) return c.error(`is only supported on AuthorizationPolicy, not ${kind}`);
  if (action !== 'ALLOW' && action !== 'DENY')
    return c.error(`is only supported with action ALLOW or DENY, not ${action}`);
  if (!GO_BOOLS.includes(value)) c.error(`must be "true" or "false", not ${JSON.stringify(value)}`);
}
