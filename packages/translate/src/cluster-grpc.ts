// Clusters for proxyless gRPC clients (node metadata GENERATOR: grpc), as Istio's grpcgen builds
// them (pilot/pkg/networking/grpcgen/cds.go), within what gRPC's xDS client accepts (gRFCs A27,
// A28, A29, A32, A42, A50; @grpc/grpc-js-xds validates every field it reads and NACKs others):
// - every cluster is EDS over ADS, the service cluster and one per DestinationRule subset;
// - balancing is ROUND_ROBIN, or RING_HASH for a consistent hash (maglev falls back to a ring,
//   gRPC has no Maglev); LEAST_REQUEST and RANDOM are not offered to gRPC and fall back to
//   ROUND_ROBIN, as in Istio;
// - circuit breakers: the thresholds as for Envoy (gRPC reads max_requests, from
//   http2MaxRequests);
// - outlier detection as for Envoy (success-rate ejection disabled);
// - TLS only when the DestinationRule says ISTIO_MUTUAL (a gRPC client may not use xDS
//   credentials, so auto mTLS is off): the certificates come from the client's certificate
//   provider instance `default` (`default` / `ROOTCA`), never from SDS, and without TLS
//   parameters, which gRPC rejects.
import type { LoadBalancerSettings } from '@trellis/api';
import type { Service, ServicePort } from '@trellis/registry';
import { applyEdsConfig, configPath, setIstioMetadata } from './cluster-base.js';
import type { ClusterContext } from './cluster-context.js';
import { draftOf, type ClusterDraft } from './cluster-draft.js';
import { outboundClusterName } from './listener-names.js';
import { hasOutboundClusters } from './cluster-outbound.js';
import type { ClusterJson, UpstreamTlsContextJson } from './cluster-types.js';
import { applyConnectionPool } from './traffic-policy-connection-pool.js';
import { clusterTrafficPolicy, destinationRuleForProxy } from './traffic-policy-lookup.js';
import { applyOutlierDetection } from './traffic-policy-outlier-detection.js';
import { exactMatchers, tlsTransportSocket } from './tls-upstream.js';
import { SDS_DEFAULT_RESOURCE, SDS_ROOT_RESOURCE } from './tls-sds.js';

/** The certificate provider instance Istio's gRPC bootstrap defines. */
export const GRPC_CERTIFICATE_PROVIDER = 'default';

/** The upstream TLS context of an ISTIO_MUTUAL cluster for a gRPC client. */
export function grpcUpstreamTlsContext(sans: readonly string[]): UpstreamTlsContextJson {
  const matchers = exactMatchers(sans);
  return {
    commonTlsContext: {
      tlsCertificateProviderInstance: {
        instanceName: GRPC_CERTIFICATE_PROVIDER,
        certificateName: SDS_DEFAULT_RESOURCE,
      },
      validationContext: {
        caCertificateProviderInstance: {
          instanceName: GRPC_CERTIFICATE_PROVIDER,
          certificateName: SDS_ROOT_RESOURCE,
        },
        ...(matchers ? { matchSubjectAltNames: matchers } : {}),
      },
    },
  };
}

function applyGrpcLoadBalancer(d: ClusterDraft, lb: LoadBalancerSettings | undefined): void {
  const hash = lb?.consistentHash;
  if (!hash) {
    d.cluster.lbPolicy = 'ROUND_ROBIN';
    return;
  }
  d.cluster.lbPolicy = 'RING_HASH';
  const size = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize ?? 0;
  d.cluster.ringHashLbConfig = { minimumRingSize: String(size !== 0 ? size : 1024) };
}

/** The gRPC clusters of one service port: the service cluster and its subsets. */
export function grpcClustersForPort(
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
  const subsets = ['', ...(rule?.spec.subsets ?? []).map((s) => s.name)];
  const out: ClusterJson[] = [];
  for (const subset of subsets) {
    const name = outboundClusterName(service.hostname, port.port, subset);
    if (filter && !filter(name)) continue;
    const policy = clusterTrafficPolicy(rule, port.port, subset);
    const d = draftOf({ name, type: 'EDS' });
    applyConnectionPool(d, ctx.mesh, policy?.connectionPool);
    delete d.http;
    applyOutlierDetection(d, policy?.outlierDetection);
    applyGrpcLoadBalancer(d, policy?.loadBalancer);
    if (policy?.tls?.mode === 'ISTIO_MUTUAL') {
      const sans =
        policy.tls.subjectAltNames && policy.tls.subjectAltNames.length > 0
          ? policy.tls.subjectAltNames
          : service.serviceAccounts;
      d.cluster.transportSocket = tlsTransportSocket(grpcUpstreamTlsContext(sans));
    }
    // Which DestinationRule shaped the cluster, as istiod records it (istioctl proxy-config shows it).
    if (rule) setIstioMetadata(d, 'config', configPath(rule));
    applyEdsConfig(d);
    out.push(d.cluster);
  }
  return out;
}

/** Every gRPC cluster of the services. */
export function grpcClusters(
  ctx: ClusterContext,
  services: readonly Service[],
  filter?: (name: string) => boolean,
): ClusterJson[] {
  const out: ClusterJson[] = [];
  for (const service of services)
    for (const port of service.ports)
      if (hasOutboundClusters(service, port))
        out.push(...grpcClustersForPort(ctx, service, port, filter));
  return out;
}
