// VirtualService mirroring → Envoy request mirror policies (Istio route.go MirrorPercent,
// MirrorPercentByPolicy, TranslateRequestMirrorPolicy): `mirror` with `mirrorPercentage` (a
// fraction of a million), the deprecated integer `mirrorPercent` (of a hundred) or 100% by
// default; each of `mirrors` with its own `percentage`. An explicit 0% mirrors nothing. Mirrored
// requests are not trace-sampled.
import type { HTTPMirrorPolicy, HTTPRoute } from '@trellis/api';
import type { RequestMirrorPolicy, RuntimeFractionalPercent } from '@trellis/envoy';
import { integerToFraction, percentToFraction } from './route-fault.js';

/** The share of traffic `mirror` copies; undefined when it is explicitly 0. */
export function mirrorPercent(r: HTTPRoute): RuntimeFractionalPercent | undefined {
  if (r.mirrorPercentage !== undefined)
    return (r.mirrorPercentage.value ?? 0) > 0
      ? { defaultValue: percentToFraction(r.mirrorPercentage) }
      : undefined;
  const legacy = r.mirrorPercent ?? r.mirror_percent;
  if (legacy !== undefined)
    return legacy > 0 ? { defaultValue: integerToFraction(legacy) } : undefined;
  return { defaultValue: integerToFraction(100) };
}

/** The share of traffic one of `mirrors` copies; undefined when it is explicitly 0. */
export function mirrorPolicyPercent(m: HTTPMirrorPolicy): RuntimeFractionalPercent | undefined {
  if (m.percentage !== undefined)
    return (m.percentage.value ?? 0) > 0
      ? { defaultValue: percentToFraction(m.percentage) }
      : undefined;
  return { defaultValue: integerToFraction(100) };
}

/** A mirror policy to a cluster. */
export function mirrorPolicy(
  cluster: string,
  fraction: RuntimeFractionalPercent,
): RequestMirrorPolicy {
  return { cluster, runtimeFraction: fraction, traceSampled: false };
}
