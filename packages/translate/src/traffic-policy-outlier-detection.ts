// DestinationRule outlierDetection → Envoy outlier detection, as Istio maps it
// (cluster_traffic_policy.go applyOutlierDetection):
// - success-rate ejection is always disabled (enforcing_success_rate 0);
// - consecutive5xxErrors / consecutiveGatewayErrors, when written, set the count and enforce
//   100% (0 disables that detector: count 0, enforcing 0); left out, Envoy's defaults apply
//   (5 consecutive 5xx, gateway errors off);
// - interval, baseEjectionTime and maxEjectionPercent (when above 0) pass through;
// - splitExternalLocalOriginErrors turns on local-origin tracking with
//   consecutiveLocalOriginFailures (enforced 100%) and disables local-origin success rate;
// - the healthy panic threshold becomes minHealthPercent (0 when unset, so Envoy never
//   balances over unhealthy hosts just because few are healthy).
// The deprecated consecutiveErrors is ignored, as in current Istio.
import type { OutlierDetection as IstioOutlierDetection } from '@trellis/api';
import type { OutlierDetection } from '@trellis/envoy';
import type { ClusterDraft } from './cluster-draft.js';
import { durationFromIstio } from './http-duration.js';

/** Applies an outlier detection policy to a cluster (nothing when absent). */
export function applyOutlierDetection(
  d: ClusterDraft,
  outlier: IstioOutlierDetection | undefined,
): void {
  if (!outlier) return;
  const out: OutlierDetection = { enforcingSuccessRate: 0 };
  if (outlier.consecutive5xxErrors != null) {
    const v = outlier.consecutive5xxErrors;
    out.consecutive5xx = v;
    out.enforcingConsecutive5xx = v > 0 ? 100 : 0;
  }
  if (outlier.consecutiveGatewayErrors != null) {
    const v = outlier.consecutiveGatewayErrors;
    out.consecutiveGatewayFailure = v;
    out.enforcingConsecutiveGatewayFailure = v > 0 ? 100 : 0;
  }
  const interval = durationFromIstio(outlier.interval);
  if (interval !== undefined) out.interval = interval;
  const base = durationFromIstio(outlier.baseEjectionTime);
  if (base !== undefined) out.baseEjectionTime = base;
  const maxEjection = outlier.maxEjectionPercent ?? 0;
  if (maxEjection > 0) out.maxEjectionPercent = maxEjection;
  if (outlier.splitExternalLocalOriginErrors) {
    out.splitExternalLocalOriginErrors = true;
    const local = outlier.consecutiveLocalOriginFailures ?? 0;
    if (local > 0) {
      out.consecutiveLocalOriginFailure = local;
      out.enforcingConsecutiveLocalOriginFailure = 100;
    }
    out.enforcingLocalOriginSuccessRate = 0;
  }
  d.cluster.outlierDetection = out;
  const min = outlier.minHealthPercent ?? 0;
  d.cluster.commonLbConfig = { ...d.cluster.commonLbConfig, healthyPanicThreshold: { value: min } };
}
