// The clusters every proxy has whatever the services (Istio's buildBlackHoleCluster,
// buildDefaultPassthroughCluster, buildInboundPassthroughCluster):
// - BlackHoleCluster: STATIC without endpoints; routes that must fail point here;
// - PassthroughCluster (sidecars): ORIGINAL_DST to wherever the app was connecting, HTTP in the
//   downstream protocol with a 5 minute idle timeout, Istio's default circuit breakers;
// - InboundPassthroughCluster (sidecars): the same for inbound traffic to ports no listener
//   handles, sent from 127.0.0.6 (or ::6) so that the capture rules do not loop it back.
import { draftOf, finishCluster, type ClusterDraft } from './cluster-draft.js';
import type { ClusterContext } from './cluster-context.js';
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  PASSTHROUGH_CLUSTER,
} from './listener-names.js';
import type { ClusterJson } from './cluster-types.js';
import { durationFromIstio } from './http-duration.js';
import { applyConnectionPool } from './traffic-policy-connection-pool.js';

/** Source address of inbound passthrough traffic (IPv4), excluded from capture. */
export const INBOUND_PASSTHROUGH_BIND_IPV4 = '127.0.0.6';
/** Source address of inbound passthrough traffic (IPv6). */
export const INBOUND_PASSTHROUGH_BIND_IPV6 = '::6';

/** BlackHoleCluster. */
export function blackHoleCluster(ctx: ClusterContext): ClusterJson {
  return {
    name: BLACKHOLE_CLUSTER,
    type: 'STATIC',
    connectTimeout: durationFromIstio(ctx.mesh.connectTimeout) ?? '10s',
    lbPolicy: 'ROUND_ROBIN',
    altStatName: `${BLACKHOLE_CLUSTER};`,
  };
}

function passthroughDraft(ctx: ClusterContext, name: string): ClusterDraft {
  const d = draftOf({
    name,
    type: 'ORIGINAL_DST',
    lbPolicy: 'CLUSTER_PROVIDED',
    altStatName: `${name};`,
  });
  d.http = {
    commonHttpProtocolOptions: { idleTimeout: '300s' },
    useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
  };
  applyConnectionPool(d, ctx.mesh, undefined);
  return d;
}

/** PassthroughCluster. */
export function passthroughCluster(ctx: ClusterContext): ClusterJson {
  return finishCluster(passthroughDraft(ctx, PASSTHROUGH_CLUSTER));
}

/** InboundPassthroughCluster, bound to 127.0.0.6 / ::6 by the proxy's address families. */
export function inboundPassthroughCluster(ctx: ClusterContext): ClusterJson {
  const d = passthroughDraft(ctx, INBOUND_PASSTHROUGH_CLUSTER);
  const ips = ctx.proxy.ipAddresses;
  const v4 = ips.length === 0 || ips.some((ip) => !ip.includes(':'));
  const v6 = ips.some((ip) => ip.includes(':'));
  d.cluster.upstreamBindConfig = {
    sourceAddress: {
      address: v4 ? INBOUND_PASSTHROUGH_BIND_IPV4 : INBOUND_PASSTHROUGH_BIND_IPV6,
      portValue: 0,
    },
    ...(v4 && v6
      ? {
          extraSourceAddresses: [
            { address: { address: INBOUND_PASSTHROUGH_BIND_IPV6, portValue: 0 } },
          ],
        }
      : {}),
  };
  return finishCluster(d);
}
