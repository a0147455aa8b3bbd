// Namespace (core/v1): cluster-scoped; its labels turn sidecar injection on (istio-injection=enabled).
import { list, obj, str } from '../validation/schema.js';
import { kubeKind } from './kube-kind.js';

export const NAMESPACE = kubeKind({
  group: '',
  kind: 'Namespace',
  plural: 'namespaces',
  shortNames: ['ns'],
  namespaced: false,
  nameRule: 'dns1123-label',
  fields: { spec: obj({ finalizers: list(str()) }, { unknownFields: 'keep' }) },
});
