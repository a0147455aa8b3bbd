// Pod (core/v1): one instance of a workload; the local runtime runs its containers' commands.
import { req } from '../validation/schema.js';
import { kubeKind } from './kube-kind.js';
import { podSpec } from './pod-spec.js';

export const POD = kubeKind({
  group: '',
  kind: 'Pod',
  plural: 'pods',
  shortNames: ['po'],
  fields: { spec: req(podSpec) },
});
