// What the policy kinds share (AuthorizationPolicy, RequestAuthentication, Telemetry):
// istio.type.v1beta1.PolicyTargetReference and the rule that a policy picks its workloads one way
// only (selector, targetRef or targetRefs).
import { isDns1123Subdomain } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import { list, obj, req, str, type ObjectOf, type OneOf } from '../../validation/schema.js';
import type { TypeWorkloadSelector } from '../common.js';

/** The resources a policy may target, as Istio allows them: [group, kind]; '' and 'core' are the core group. */
const TARGET_KINDS: readonly (readonly [string, string])[] = [
  ['core', 'Service'],
  ['networking.istio.io', 'ServiceEntry'],
  ['gateway.networking.k8s.io', 'Gateway'],
  ['gateway.networking.k8s.io', 'GatewayClass'],
];

const policyTargetReferenceFields = {
  group: str({
    check: (g, ctx) => {
      if (g !== '' && !isDns1123Subdomain(g))
        ctx.error(`group ${JSON.stringify(g)} must be empty or a DNS-1123 subdomain`);
    },
  }),
  kind: req(str({ nonEmpty: true, maxLength: 63 })),
  name: req(str({ nonEmpty: true, maxLength: 253 })),
  namespace: str(),
};
/** istio.type.v1beta1.PolicyTargetReference: the resource (Service, ServiceEntry, Gateway) a policy attaches to. */
export type PolicyTargetReference = ObjectOf<typeof policyTargetReferenceFields>;
export const policyTargetReference = obj(policyTargetReferenceFields, {
  check: checkPolicyTargetReference,
});

function checkPolicyTargetReference(ref: PolicyTargetReference, ctx: ValidationContext): void {
  if (ref.namespace)
    ctx
      .field('namespace')
      .error('must not be set: a policy can only target resources in its own namespace');
  const group = ref.group === undefined || ref.group === '' ? 'core' : ref.group;
  if (ref.kind && !TARGET_KINDS.some(([g, k]) => g === group && k === ref.kind))
    ctx.error(
      `cannot target ${group}/${ref.kind}; supported targets: Service, ServiceEntry (networking.istio.io), Gateway and GatewayClass (gateway.networking.k8s.io)`,
    );
}

/** `targetRefs`: at most 16 targets, as Istio's CRD allows. */
export const policyTargetReferences = list(policyTargetReference, { maxItems: 16 });

/** At most one of selector, targetRef and targetRefs may be set. */
export const SELECTOR_OR_TARGET: OneOf = { fields: ['selector', 'targetRef', 'targetRefs'] };

/** True when a selector names at least one label. */
export function hasSelectorLabels(selector: TypeWorkloadSelector | undefined): boolean {
  return Object.keys(selector?.matchLabels ?? {}).length > 0;
}
