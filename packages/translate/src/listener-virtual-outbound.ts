// The outbound capture listener `virtualOutbound` on 15001 (Istio listener_builder.go
// buildVirtualOutboundListener): iptables sends every outbound connection here; with
// use_original_dst the connection is handed to the listener of its original destination, and
// what no listener claims takes the catch-all chain: PassthroughCluster under ALLOW_ANY (or the
// Sidecar's egressProxy), BlackHoleCluster under REGISTRY_ONLY. Connections addressed to 15001
// itself are dropped. Also the explicit HTTP proxy listener (Istio buildHTTPProxy), which local
// mode uses: absolute-form requests on `127.0.0.1:PORT` routed by the `http_proxy` route config.
import type { Filter, Listener } from '@trellis/envoy';
import { httpConnectionManagerFilter } from './http-connection-manager.js';
import {
  BLACKHOLE_CLUSTER,
  HTTP_PROXY_ROUTE_CONFIG,
  PASSTHROUGH_CLUSTER,
  PROXY_LISTEN_PORT,
  VIRTUAL_OUTBOUND_BLACKHOLE_CHAIN,
  VIRTUAL_OUTBOUND_CATCHALL_TCP_CHAIN,
  VIRTUAL_OUTBOUND_LISTENER,
  listenerName,
} from './listener-names.js';
import { localhostAddress, wildcardAddress } from './proxy.js';
import { destinationCluster } from './route.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import { tcpProxyFilter } from './tcp-proxy.js';

/** The cluster unknown outbound traffic goes to under the proxy's outbound traffic policy. */
export function catchAllCluster(ctx: ProxyContext): string {
  const p = ctx.scope.outboundTrafficPolicy;
  if (p.mode === 'REGISTRY_ONLY') return BLACKHOLE_CLUSTER;
  return p.egressProxy ? destinationCluster(p.egressProxy, undefined, 0) : PASSTHROUGH_CLUSTER;
}

/** The network filters of the catch-all chains (Istio buildOutboundCatchAllNetworkFiltersOnly). */
export function listenerCatchAllTcpFilters(ctx: ProxyContext): Filter[] {
  const cluster = catchAllCluster(ctx);
  return [tcpProxyFilter({ statPrefix: cluster, cluster })];
}

/** The `virtualOutbound` listener; undefined when the proxy does not capture traffic. */
export function buildVirtualOutboundListener(ctx: ProxyContext): Listener | undefined {
  if (ctx.proxy.interceptionMode === 'NONE') return undefined;
  return {
    name: VIRTUAL_OUTBOUND_LISTENER,
    address: {
      socketAddress: { address: wildcardAddress(ctx.proxy), portValue: PROXY_LISTEN_PORT },
    },
    ...(ctx.proxy.interceptionMode === 'TPROXY' ? { transparent: true } : {}),
    useOriginalDst: true,
    filterChains: [
      {
        name: VIRTUAL_OUTBOUND_BLACKHOLE_CHAIN,
        filterChainMatch: { destinationPort: PROXY_LISTEN_PORT },
        filters: [tcpProxyFilter({ statPrefix: BLACKHOLE_CLUSTER, cluster: BLACKHOLE_CLUSTER })],
      },
      { name: VIRTUAL_OUTBOUND_CATCHALL_TCP_CHAIN, filters: listenerCatchAllTcpFilters(ctx) },
    ],
    trafficDirection: 'OUTBOUND',
  };
}

/** The explicit HTTP proxy listener on `127.0.0.1:httpProxyPort`; undefined without a port. */
export function buildHttpProxyListener(ctx: ProxyContext): Listener | undefined {
  const port = ctx.proxy.httpProxyPort;
  if (port === undefined) return undefined;
  const bind = localhostAddress(ctx.proxy);
  const name = listenerName(bind, port);
  return {
    name,
    address: { socketAddress: { address: bind, portValue: port } },
    trafficDirection: 'OUTBOUND',
    continueOnListenerFiltersTimeout: true,
    listenerFiltersTimeout: '0s',
    filterChains: [
      {
        filters: [
          httpConnectionManagerFilter({
            statPrefix: `outbound_${name}`,
            rds: HTTP_PROXY_ROUTE_CONFIG,
            useRemoteAddress: false,
            overrides: { httpProtocolOptions: { allowAbsoluteUrl: true } },
          }),
        ],
      },
    ],
  };
}
