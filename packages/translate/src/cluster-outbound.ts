// Outbound clusters: one per service port (`outbound|PORT||HOST`) and one per DestinationRule
// subset (`outbound|PORT|SUBSET|HOST`), as Istio builds them (cluster.go buildOutboundClusters,
// cluster_builder.go applyDestinationRule / buildSubsetCluster / applyTrafficPolicy):
// - the discovery type follows the service's resolution: EDS for Kubernetes services and STATIC
//   ServiceEntries, STRICT_DNS for DNS, LOGICAL_DNS for DNS_ROUND_ROBIN, ORIGINAL_DST for
//   passthrough (headless Services, resolution NONE) except on gateways, which use EDS;
//   DNS clusters carry their endpoints and are left out when they have none;
// - the rule's policy for the port applies to the service cluster; each subset cluster gets the
//   subset's policy merged over it, its endpoints filtered by the subset's labels, and a
//   subset with PASSTHROUGH balancing becomes an ORIGINAL_DST cluster;
// - policies are applied in Istio's order: HTTP/2 upgrade, connection pool, outlier detection,
//   load balancer (locality failover needs the outlier detection), upstream TLS; then EDS config.
// Alias (ExternalName) services and UDP ports get no cluster.
import type { DiscoveryType } from '@trellis/envoy';
import type {
  ConsolidatedDestinationRule,
  Endpoint,
  Service,
  ServicePort,
} from '@trellis/registry';
import { applyEdsConfig, baseCluster, configPath, setIstioMetadata } from './cluster-base.js';
import type { ClusterContext } from './cluster-context.js';
import { finishCluster, type ClusterDraft } from './cluster-draft.js';
import { outboundClusterName, dnsSrvSubsetKey } from './listener-names.js';
import type { ClusterJson } from './cluster-types.js';
import {
  groupByLocality,
  hasLabels,
  includeEndpoint,
  loadAssignmentOf,
  localityEndpointOf,
} from './endpoint-lb.js';
import { endpointMtlsEnabled } from './endpoint-mtls.js';
import { applyLoadBalancer } from './load-balancer.js';
import { applyConnectionPool, applyHttp2Upgrade } from './traffic-policy-connection-pool.js';
import { destinationRuleForProxy } from './traffic-policy-lookup.js';
import {
  mergeTrafficPolicy,
  portTrafficPolicy,
  type EffectiveTrafficPolicy,
} from './traffic-policy-merge.js';
import { applyOutlierDetection } from './traffic-policy-outlier-detection.js';
import { serviceMtlsMode } from './tls-mtls-mode.js';
import { applyUpstreamTls } from './tls-upstream.js';

/** The discovery type of a service's clusters for this proxy (Istio's convertResolution). */
export function discoveryTypeOf(ctx: ClusterContext, service: Service): DiscoveryType {
  switch (service.resolution) {
    case 'ClientSideLB':
      return 'EDS';
    case 'DNSLB':
      return 'STRICT_DNS';
    case 'DNSRoundRobinLB':
      return 'LOGICAL_DNS';
    case 'Passthrough':
      return ctx.proxy.type === 'router' ? 'EDS' : 'ORIGINAL_DST';
    default:
      return 'EDS';
  }
}

/** Whether a service port gets outbound clusters at all. */
export function hasOutboundClusters(service: Service, port: ServicePort): boolean {
  return (
    service.resolution !== 'Alias' && service.resolution !== 'DynamicDNS' && port.protocol !== 'UDP'
  );
}

/** One outbound cluster's inputs. */
interface OutboundInput {
  readonly service: Service;
  readonly port: ServicePort;
  readonly rule: ConsolidatedDestinationRule | undefined;
  readonly endpoints: readonly Endpoint[];
}

/** The endpoints of a STATIC / DNS cluster (Istio's EndpointBuilder.FromServiceEndpoints). */
function staticLoadAssignment(
  ctx: ClusterContext,
  input: OutboundInput,
  name: string,
  type: DiscoveryType,
  subset: string,
): ReturnType<typeof loadAssignmentOf> | undefined {
  if (type !== 'STATIC' && type !== 'STRICT_DNS' && type !== 'LOGICAL_DNS') return undefined;
  const labels =
    subset === '' ? undefined : input.rule?.spec.subsets?.find((s) => s.name === subset)?.labels;
  let eps = input.endpoints.filter(
    (e) =>
      includeEndpoint(e, { ipOnly: false, grpc: false }) &&
      (!labels || hasLabels(labels, e.labels)),
  );
  if (type === 'LOGICAL_DNS') eps = eps.slice(0, 1);
  if (eps.length === 0) return undefined;
  const built = eps.map((endpoint) => ({
    endpoint,
    lb: localityEndpointOf(
      endpoint,
      endpointMtlsEnabled(ctx.snapshot, input.rule, subset, input.port.port, endpoint),
      ctx.mesh.clusterId,
    ),
  }));
  return loadAssignmentOf(name, groupByLocality(built));
}

/** What applyTrafficPolicy needs beyond the policy. */
interface PolicyTarget {
  readonly input: OutboundInput;
  readonly sni: string;
  readonly serviceMtlsPolicy: EffectiveTrafficPolicy | undefined;
}

function applyOutboundPolicy(
  ctx: ClusterContext,
  d: ClusterDraft,
  policy: EffectiveTrafficPolicy | undefined,
  target: PolicyTarget,
): ReturnType<typeof applyUpstreamTls> {
  const { service, port, rule, endpoints } = target.input;
  applyHttp2Upgrade(d, port.protocol, ctx.mesh, policy?.connectionPool);
  applyConnectionPool(d, ctx.mesh, policy?.connectionPool, policy?.retryBudget);
  applyOutlierDetection(d, policy?.outlierDetection);
  applyLoadBalancer(d, policy?.loadBalancer, ctx.mesh, ctx.locality);
  const mode = applyUpstreamTls(d, {
    tls: policy?.tls,
    serviceAccounts: service.serviceAccounts,
    sni: target.sni,
    autoMtls: ctx.mesh.enableAutoMtls,
    meshExternal: service.meshExternal,
    serviceEntry: service.origin === 'ServiceEntry',
    serviceMtlsMode: serviceMtlsMode(ctx.snapshot, service, target.serviceMtlsPolicy, endpoints),
    sidecar: ctx.sidecar,
    ruleHasWorkloadSelector: rule?.workloadSelector !== undefined,
  });
  if (d.cluster.type === 'ORIGINAL_DST') d.cluster.lbPolicy = 'CLUSTER_PROVIDED';
  applyEdsConfig(d);
  return mode;
}

function addRuleMetadata(
  d: ClusterDraft,
  rule: ConsolidatedDestinationRule,
  policy: EffectiveTrafficPolicy | undefined,
): void {
  setIstioMetadata(d, 'config', configPath(rule));
  const mode = policy?.tls?.mode;
  if (mode === 'SIMPLE' || mode === 'MUTUAL') setIstioMetadata(d, 'alpn_override', 'false');
}

/** The outbound clusters of one service port: the service cluster, then its subsets. */
export function outboundClustersForPort(
  ctx: ClusterContext,
  service: Service,
  port: ServicePort,
  filter?: (name: string) => boolean,
): ClusterJson[] {
  const rule = destinationRuleForProxy(
    ctx.snapshot,
    ctx.proxy,
    service.hostname,
    service.namespace,
  );
  const endpoints = ctx.snapshot.endpoints(service, port.port);
  const input: OutboundInput = { service, port, rule, endpoints };
  const out: ClusterJson[] = [];

  const name = outboundClusterName(service.hostname, port.port, '');
  let type = discoveryTypeOf(ctx, service);
  const la = staticLoadAssignment(ctx, input, name, type, '');
  if (type !== 'EDS' && type !== 'ORIGINAL_DST' && !la) return out;
  const main = baseCluster(ctx, {
    name,
    type,
    ...(la ? { loadAssignment: la } : {}),
    protocol: port.protocol,
    services: [service],
  });
  const top = portTrafficPolicy(rule?.spec.trafficPolicy, port.port).policy;
  applyOutboundPolicy(ctx, main, top, {
    input,
    sni: dnsSrvSubsetKey(service.hostname, port.port, ''),
    serviceMtlsPolicy: rule?.spec.trafficPolicy,
  });
  if (service.meshExternal) setIstioMetadata(main, 'external', true);
  if (rule) addRuleMetadata(main, rule, top);
  if (!filter || filter(name)) out.push(finishCluster(main));
  type = main.cluster.type ?? type;

  for (const subset of rule?.spec.subsets ?? []) {
    const subsetName = outboundClusterName(service.hostname, port.port, subset.name);
    if (filter && !filter(subsetName)) continue;
    const passthrough = subset.trafficPolicy?.loadBalancer?.simple === 'PASSTHROUGH';
    const subsetType: DiscoveryType = passthrough ? 'ORIGINAL_DST' : type;
    const subsetLa = passthrough
      ? undefined
      : staticLoadAssignment(ctx, input, subsetName, subsetType, subset.name);
    if (subsetType !== 'EDS' && subsetType !== 'ORIGINAL_DST' && !subsetLa) continue;
    const d = baseCluster(ctx, {
      name: subsetName,
      type: subsetType,
      ...(subsetLa ? { loadAssignment: subsetLa } : {}),
      protocol: port.protocol,
      services: [service],
    });
    const policy = mergeTrafficPolicy(top, subset.trafficPolicy, port.port);
    applyOutboundPolicy(ctx, d, policy, {
      input,
      sni: dnsSrvSubsetKey(service.hostname, port.port, subset.name),
      serviceMtlsPolicy: subset.trafficPolicy,
    });
    if (rule) addRuleMetadata(d, rule, policy);
    setIstioMetadata(d, 'subset', subset.name);
    out.push(finishCluster(d));
  }
  return out;
}

/** Every outbound cluster of the services, in order. */
export function outboundClusters(
  ctx: ClusterContext,
  services: readonly Service[],
  filter?: (name: string) => boolean,
): ClusterJson[] {
  const out: ClusterJson[] = [];
  for (const service of services)
    for (const port of service.ports)
      if (hasOutboundClusters(service, port))
        out.push(...outboundClustersForPort(ctx, service, port, filter));
  return out;
}
