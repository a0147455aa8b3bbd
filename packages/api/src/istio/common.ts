// Message types shared by several Istio kinds (istio.io/api type names in comments).
import { checkQualifiedName, checkLabelValue, checkRegex } from '../validation/checks.js';
import { map, num, obj, str, uint32 } from '../validation/schema.js';

/** Kubernetes-style labels: `key: value` with Kubernetes' syntax rules for both. */
export const labels = map(str({ check: (v, ctx) => checkLabelValue(v, ctx) }), {
  key: (k, ctx) => checkQualifiedName(k, ctx),
});

/** istio.type.v1beta1.WorkloadSelector */
export const workloadSelector = obj({ matchLabels: labels });

/** istio.networking.v1.StringMatch: exactly one of exact, prefix, regex. */
export const stringMatch = obj(
  {
    exact: str(),
    prefix: str(),
    regex: str({ check: (r, ctx) => checkRegex(r, ctx) }),
  },
  { oneOf: [{ fields: ['exact', 'prefix', 'regex'] }] },
);

/** istio.networking.v1.PortSelector */
export const portSelector = obj({
  number: uint32({ min: 1, max: 65535 }),
});

/** istio.networking.v1.Percent: a double from 0 to 100. */
export const percent = obj({ value: num({ min: 0, max: 100 }) });
