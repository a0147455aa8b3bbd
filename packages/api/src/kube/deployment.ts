// Deployment (apps/v1): replicas of a pod template, selected by labels.
import type { ValidationContext } from '../validation/problem.js';
import {
  bool,
  enumOf,
  int,
  intOrString,
  map,
  obj,
  req,
  str,
  type ObjectOf,
} from '../validation/schema.js';
import { labels } from '../istio/common.js';
import { kubeKind } from './kube-kind.js';
import { checkNonEmptySelector, labelSelector, selectorMatches } from './label-selector.js';
import { podSpec } from './pod-spec.js';

const keep = { unknownFields: 'keep' } as const;

/** maxSurge / maxUnavailable: a count (>= 0) or a percentage such as "25%". */
function checkCountOrPercent(v: number | string, ctx: ValidationContext): void {
  if (typeof v === 'number') {
    if (v < 0) ctx.error(`must not be negative, not ${v}`);
  } else if (!/^\d+%$/.test(v)) {
    ctx.error(`must be a number or a percentage such as "25%", not ${JSON.stringify(v)}`);
  }
}

function isZero(v: number | string | undefined): boolean {
  return v === 0 || (typeof v === 'string' && /^0+%$/.test(v));
}

const rollingUpdateFields = {
  maxUnavailable: intOrString({ check: checkCountOrPercent }),
  maxSurge: intOrString({ check: checkCountOrPercent }),
};
/** apps/v1 RollingUpdateDeployment */
export type RollingUpdateDeployment = ObjectOf<typeof rollingUpdateFields>;

const strategyFields = {
  type: enumOf(['Recreate', 'RollingUpdate'] as const),
  rollingUpdate: obj(rollingUpdateFields, {
    ...keep,
    check: (r, ctx) => {
      if (typeof r.maxUnavailable === 'string' && Number(r.maxUnavailable.slice(0, -1)) > 100)
        ctx.field('maxUnavailable').error(`must not be above 100%, not ${r.maxUnavailable}`);
      if (isZero(r.maxUnavailable) && isZero(r.maxSurge))
        ctx.field('maxUnavailable').error('must not be 0 when maxSurge is 0');
    },
  }),
};
/** apps/v1 DeploymentStrategy */
export type DeploymentStrategy = ObjectOf<typeof strategyFields>;

const templateMetadataFields = { name: str(), labels, annotations: map(str()) };
const podTemplateFields = { metadata: obj(templateMetadataFields, keep), spec: req(podSpec) };
/** core/v1 PodTemplateSpec */
export type PodTemplateSpec = ObjectOf<typeof podTemplateFields>;

const deploymentSpecFields = {
  replicas: int({ min: 0 }),
  selector: req(labelSelector),
  template: req(obj(podTemplateFields, keep)),
  strategy: obj(strategyFields, keep),
  minReadySeconds: int({ min: 0 }),
  revisionHistoryLimit: int({ min: 0 }),
  progressDeadlineSeconds: int({ min: 0 }),
  paused: bool(),
};
/** apps/v1 DeploymentSpec */
export type DeploymentSpec = ObjectOf<typeof deploymentSpecFields>;
export const deploymentSpec = obj(deploymentSpecFields, { ...keep, check: checkDeployment });

function checkDeployment(spec: DeploymentSpec, ctx: ValidationContext): void {
  // Checks run even when a required field is missing (that is not a type error).
  if (spec.selector === undefined || spec.template === undefined) return;
  checkNonEmptySelector(spec.selector, ctx.field('selector'), 'Deployment');
  const templateLabels = spec.template.metadata?.labels;
  if (!selectorMatches(spec.selector, templateLabels))
    ctx
      .at('template', 'metadata', 'labels')
      .error(
        'selector does not match template labels: every pod of the template must match spec.selector',
      );
  const restart = spec.template.spec?.restartPolicy;
  if (restart !== undefined && restart !== 'Always')
    ctx
      .at('template', 'spec', 'restartPolicy')
      .error(`must be Always for a Deployment, not ${restart}`);
  if (spec.strategy?.type === 'Recreate' && spec.strategy.rollingUpdate !== undefined)
    ctx.at('strategy', 'rollingUpdate').error('must not be set when the strategy type is Recreate');
  if (
    spec.progressDeadlineSeconds !== undefined &&
    spec.progressDeadlineSeconds <= (spec.minReadySeconds ?? 0)
  )
    ctx
      .field('progressDeadlineSeconds')
      .error(
        `must be greater than minReadySeconds (${spec.minReadySeconds ?? 0}), not ${spec.progressDeadlineSeconds}`,
      );
}

export const DEPLOYMENT = kubeKind({
  group: 'apps',
  kind: 'Deployment',
  plural: 'deployments',
  shortNames: ['deploy'],
  fields: { spec: req(deploymentSpec) },
});
