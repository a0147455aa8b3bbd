// Inbound clusters of a sidecar: `inbound|PORT||` for each port its workload serves, forwarding to
// the application (Istio's buildInboundClusters, buildInboundCluster and
// buildInboundClustersFromSidecar, in the `localhost` inbound mode Trellis uses):
// - without a Sidecar `ingress`: one cluster per workload port (the endpoints' target port),
//   STATIC to 127.0.0.1:PORT (::1 on IPv6-only proxies), the upstream protocol from the service
//   port, telemetry metadata naming every service served on that port;
// - with Sidecar `ingress` listeners: one cluster per listener port, to its defaultEndpoint
//   (`127.0.0.1:P`, `0.0.0.0:P` = the workload's address, `unix://path`), ORIGINAL_DST when it has
//   none;
// - only the connection pool applies inbound: the DestinationRule the proxy sees for its own
//   service (its policy for the port), replaced by the Sidecar's connectionPool for the port
//   (an ingress listener's, else `inboundConnectionPool`).
// A sidecar whose interception mode is NONE gets inbound clusters only from Sidecar ingress, and,
// in Trellis local mode, for the ports its Pod maps to sidecar inbound ports
// (`trellis.io/inbound-ports`). There the application may listen elsewhere than its declared port
// (`trellis.io/app-ports`): the cluster forwards to that port.
import type { ConnectionPoolSettings, IstioIngressListener, SidecarSpec } from '@trellis/api';
import type { ClusterLoadAssignment } from '@trellis/envoy';
import type { Endpoint, Service } from '@trellis/registry';
import { parseProtocol, UNIX_ADDRESS_PREFIX } from '@trellis/registry';
import { baseCluster, configPath, setIstioMetadata } from './cluster-base.js';
import type { ClusterContext } from './cluster-context.js';
import { finishCluster } from './cluster-draft.js';
import { inboundClusterName } from './listener-names.js';
import { INBOUND_PASSTHROUGH_BIND_IPV4 } from './cluster-special.js';
import type { ClusterJson } from './cluster-types.js';
import { isIpv6Proxy, localhostAddress } from './proxy.js';
import { applyConnectionPool } from './traffic-policy-connection-pool.js';
import { destinationRuleForProxy } from './traffic-policy-lookup.js';
import { portTrafficPolicy, type EffectiveTrafficPolicy } from './traffic-policy-merge.js';

/** Largest duration Envoy accepts, Istio's "never clean up" for inbound ORIGINAL_DST clusters. */
const MAX_DURATION = '9223372035s';

/** The endpoints the proxy's own workload serves (its service instances). */
export function proxyServiceInstances(ctx: ClusterContext): readonly Endpoint[] {
  const w = ctx.proxy.workload;
  if (!w) return [];
  return ctx.snapshot.registry.endpointsOfWorkload(w.kind, w.namespace, w.name);
}

/** The Sidecar's connection pool for an inbound port (Istio's InboundConnectionPoolForPort). */
export function sidecarInboundPool(
  sidecar: SidecarSpec | undefined,
  port: number,
): ConnectionPoolSettings | undefined {
  if (!sidecar) return undefined;
  const listener = sidecar.ingress?.find((l) => l.port.number === port);
  return listener?.connectionPool ?? sidecar.inboundConnectionPool;
}

function staticAssignment(name: string, address: string, port: number): ClusterLoadAssignment {
  const unix = address.startsWith(UNIX_ADDRESS_PREFIX);
  return {
    clusterName: name,
    endpoints: [
      {
        lbEndpoints: [
          {
            endpoint: {
              address: unix
                ? { pipe: { path: address.slice(UNIX_ADDRESS_PREFIX.length) } }
                : { socketAddress: { address, portValue: port } },
            },
          },
        ],
      },
    ],
  };
}

interface InboundInput {
  readonly port: number;
  /** Where the application listens ('' → ORIGINAL_DST). */
  readonly bind: string;
  readonly targetPort: number;
  readonly protocol: Service['ports'][number]['protocol'];
  readonly services: readonly Service[];
  readonly servicePort: number | undefined;
}

function inboundCluster(
  ctx: ClusterContext,
  sidecar: SidecarSpec | undefined,
  input: InboundInput,
): ClusterJson {
  const name = inboundClusterName(input.port);
  const la = input.bind !== '' ? staticAssignment(name, input.bind, input.targetPort) : undefined;
  const d = baseCluster(ctx, {
    name,
    type: la ? 'STATIC' : 'ORIGINAL_DST',
    ...(la ? { loadAssignment: la } : {}),
    protocol: input.protocol,
    services: input.services,
  });
  if (!la) d.cluster.cleanupInterval = MAX_DURATION;

  let policy: EffectiveTrafficPolicy | undefined;
  const primary = input.services[0];
  if (primary && input.servicePort !== undefined) {
    const rule = destinationRuleForProxy(
      ctx.snapshot,
      ctx.proxy,
      primary.hostname,
      primary.namespace,
    );
    if (rule?.spec.trafficPolicy) {
      policy = portTrafficPolicy(rule.spec.trafficPolicy, input.servicePort).policy;
      setIstioMetadata(d, 'config', configPath(rule));
    }
  }
  const pool = sidecarInboundPool(sidecar, input.port) ?? policy?.connectionPool;
  applyConnectionPool(d, ctx.mesh, pool, policy?.retryBudget);
  if (d.cluster.type === 'ORIGINAL_DST') d.cluster.lbPolicy = 'CLUSTER_PROVIDED';

  const local =
    input.bind === '127.0.0.1' ||
    input.bind === '::1' ||
    input.bind.startsWith(UNIX_ADDRESS_PREFIX);
  if (!local)
    d.cluster.upstreamBindConfig = {
      sourceAddress: { address: INBOUND_PASSTHROUGH_BIND_IPV4, portValue: 0 },
    };
  return finishCluster(d);
}

/** Where a Sidecar ingress listener's defaultEndpoint points: [address, port]. */
function ingressEndpoint(
  ctx: ClusterContext,
  l: IstioIngressListener,
): [string, number] | undefined {
  const ep = l.defaultEndpoint ?? '';
  if (ep === '') return ['', 0];
  if (ep.startsWith(UNIX_ADDRESS_PREFIX)) return [ep, 0];
  const colon = ep.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = ep.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(ep.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  const ips = ctx.proxy.ipAddresses;
  switch (host) {
    case '0.0.0.0':
      return [ips.find((ip) => !ip.includes(':')) ?? '127.0.0.1', port];
    case '::':
      return [ips.find((ip) => ip.includes(':')) ?? '::1', port];
    case '127.0.0.1':
      return [isIpv6Proxy(ctx.proxy) ? '::1' : '127.0.0.1', port];
    case '::1':
      return [isIpv6Proxy(ctx.proxy) || ips.length === 0 ? '::1' : '127.0.0.1', port];
    default:
      return undefined;
  }
}

/** The inbound clusters of a sidecar proxy. */
export function inboundClusters(ctx: ClusterContext): ClusterJson[] {
  if (!ctx.sidecar) return [];
  const sidecar = ctx.snapshot.sidecarFor(ctx.proxy.namespace, ctx.proxy.labels)?.spec;
  const instances = proxyServiceInstances(ctx);
  const ingress = sidecar?.ingress ?? [];
  const out: ClusterJson[] = [];
  if (ingress.length > 0) {
    for (const l of ingress) {
      const ep = ingressEndpoint(ctx, l);
      if (!ep) continue;
      const port = l.port.number ?? 0;
      const instance = instances.find((e) => e.targetPort === port);
      const service = instance
        ? ctx.snapshot.service(instance.hostname, instance.serviceNamespace)
        : undefined;
      out.push(
        inboundCluster(ctx, sidecar, {
          port,
          bind: ep[0],
          targetPort: ep[1],
          protocol: parseProtocol(l.port.protocol ?? ''),
          services: service ? [service] : [],
          servicePort: instance?.servicePort,
        }),
      );
    }
    return out;
  }
  const w = ctx.proxy.workload;
  const explicitOnly = ctx.proxy.interceptionMode === 'NONE';
  if (explicitOnly && (!w || Object.keys(w.inboundPorts).length === 0)) return [];
  const byPort = new Map<number, Endpoint[]>();
  for (const e of instances) {
    if (e.targetPort <= 0) continue;
    if (explicitOnly && w?.inboundPorts[String(e.targetPort)] === undefined) continue;
    const list = byPort.get(e.targetPort);
    if (list) list.push(e);
    else byPort.set(e.targetPort, [e]);
  }
  const bind = localhostAddress(ctx.proxy);
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const list = byPort.get(port)!;
    const first = list[0]!;
    const primary = ctx.snapshot.service(first.hostname, first.serviceNamespace);
    const svcPort = primary?.ports.find((p) => p.port === first.servicePort);
    const seen = new Set<string>();
    const services: Service[] = [];
    for (const e of list) {
      if (e.servicePort !== first.servicePort || seen.has(e.hostname)) continue;
      const s = ctx.snapshot.service(e.hostname, e.serviceNamespace);
      if (!s) continue;
      seen.add(e.hostname);
      services.push(s);
    }
    out.push(
      inboundCluster(ctx, sidecar, {
        port,
        bind,
        targetPort: w?.appPorts[String(port)] ?? port,
        protocol: svcPort?.protocol ?? 'UnsupportedProtocol',
        services,
        servicePort: first.servicePort,
      }),
    );
  }
  return out;
}
