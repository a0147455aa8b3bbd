// ServiceAccount (core/v1): the workload identity; Trellis issues SPIFFE certificates for
// spiffe://<trust-domain>/ns/<namespace>/sa/<name>.
import { bool, list, obj, str } from '../validation/schema.js';
import { kubeKind } from './kube-kind.js';

const keep = { unknownFields: 'keep' } as const;

export const SERVICE_ACCOUNT = kubeKind({
  group: '',
  kind: 'ServiceAccount',
  plural: 'serviceaccounts',
  shortNames: ['sa'],
  fields: {
    secrets: list(obj({ name: str(), namespace: str() }, keep)),
    imagePullSecrets: list(obj({ name: str() }, keep)),
    automountServiceAccountToken: bool(),
  },
});
