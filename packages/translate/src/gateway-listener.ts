// Gateway listeners (Istio gateway.go buildGatewayListeners, buildGatewayTCPBasedFilterChains).
// One listener `0.0.0.0_PORT` (or `BIND_PORT`; a `unix://PATH` bind listens on the pipe PATH)
// per server port:
// - HTTP servers: one chain, an HTTP connection manager with RDS `http.PORT`;
// - HTTPS servers terminating TLS: a chain per server, matched by SNI (its hosts), with the TLS
//   context (certificate from SDS `kubernetes://CREDENTIAL`, client CA `...-cacert` for MUTUAL)
//   and RDS `https.PORT.NAME.GATEWAY.NAMESPACE`;
// - TLS servers terminating TLS and plain TCP servers: a TCP proxy from the VirtualService `tcp`
//   routes bound to the gateway;
// - PASSTHROUGH servers: a chain per VirtualService `tls` match, by SNI;
// - AUTO_PASSTHROUGH servers: a chain per service port (and subset) of the mesh matching the
//   server hosts, by the SNI `outbound_.PORT_.SUBSET_.HOST` with Istio mTLS ALPNs.
import type { L4MatchAttributes, ServerTlsSettings } from '@trellis/api';
import type { DownstreamTlsContext, Filter, Listener } from '@trellis/envoy';
import { hostSubsetOf } from '@trellis/registry';
import {
  buildFilterChain,
  inspectorsFor,
  tlsInspector,
  type FilterChainOpts,
} from './filter-chain.js';
import { intersectHosts } from './gateway-route.js';
import { isPassthroughServer, type MergedGateway, type MergedServer } from './gateway-servers.js';
import { httpConnectionManagerFilter } from './http-connection-manager.js';
import {
  ISTIO_MTLS_ALPNS,
  dnsSrvSubsetKey,
  listenerAddress,
  listenerName,
} from './listener-names.js';
import { outboundNetworkFilters } from './listener-outbound.js';
import { wildcardAddress } from './proxy.js';
import type { ProxyContext } from './sidecar-scope-context.js';
import { scopedVirtualServices, type ScopedVirtualService } from './sidecar-scope.js';
import { singleDestinationTcpProxy } from './tcp-proxy.js';
import {
  SDS_CA_SUFFIX,
  SDS_DEFAULT_RESOURCE,
  SDS_ROOT_RESOURCE,
  credentialResourceName,
  fileCertResourceName,
  fileRootResourceName,
  sdsSecretConfig,
} from './tls-sds.js';

const ALPN_HTTP = ['h2', 'http/1.1'];
const TLS_VERSIONS: Readonly<
  Record<string, 'TLS_AUTO' | 'TLSv1_0' | 'TLSv1_1' | 'TLSv1_2' | 'TLSv1_3'>
> = {
  TLS_AUTO: 'TLS_AUTO',
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

const sdsConfig = sdsSecretConfig;
const credentialResource = credentialResourceName;

/**
 * The certificate and key files of a server (Istio ApplyToCommonTLSContext): each complete entry
 * of `tlsCertificates` (an RSA and an ECDSA one, say), else `serverCertificate` / `privateKey`.
 */
function fileCertificates(
  tls: ServerTlsSettings,
): { serverCertificate: string; privateKey: string }[] {
  const given = tls.tlsCertificates?.length ? tls.tlsCertificates : [tls];
  const out = [];
  for (const { serverCertificate, privateKey } of given)
    if (serverCertificate && privateKey) out.push({ serverCertificate, privateKey });
  return out;
}

/**
 * The TLS context of a server that terminates TLS (Istio BuildListenerTLSContext). Certificates
 * come from SDS: `credentialName` (`kubernetes://NAME`), the workload certificate `default` for
 * ISTIO_MUTUAL, or file paths (`file-cert:CERT~KEY`, one per `tlsCertificates` entry, with the
 * client CA `file-root:CA`).
 */
export function gatewayTlsContext(
  tls: ServerTlsSettings,
  alpn: readonly string[],
): DownstreamTlsContext {
  const mode = tls.mode ?? 'PASSTHROUGH';
  const common: NonNullable<DownstreamTlsContext['commonTlsContext']> = {
    alpnProtocols: [...alpn],
  };
  const requireClient = mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL';
  const validate = requireClient || mode === 'OPTIONAL_MUTUAL';
  const names = tls.credentialNames?.length
    ? tls.credentialNames
    : tls.credentialName
      ? [tls.credentialName]
      : [];
  const files = fileCertificates(tls);
  if (mode === 'ISTIO_MUTUAL') {
    common.tlsCertificateSdsSecretConfigs = [sdsConfig(SDS_DEFAULT_RESOURCE)];
    common.combinedValidationContext = {
      defaultValidationContext: {},
      validationContextSdsSecretConfig: sdsConfig(SDS_ROOT_RESOURCE),
    };
  } else if (names.length > 0) {
    common.tlsCertificateSdsSecretConfigs = names.map((n) => sdsConfig(credentialResource(n)));
    if (validate)
      common.combinedValidationContext = {
        defaultValidationContext: {
          ...(tls.subjectAltNames?.length
            ? {
                matchTypedSubjectAltNames: tls.subjectAltNames.map((s) => ({
                  sanType: 'DNS' as const,
                  matcher: { exact: s },
                })),
              }
            : {}),
          ...(tls.verifyCertificateSpki?.length
            ? { verifyCertificateSpki: [...tls.verifyCertificateSpki] }
            : {}),
          ...(tls.verifyCertificateHash?.length
            ? { verifyCertificateHash: [...tls.verifyCertificateHash] }
            : {}),
        },
        validationContextSdsSecretConfig: sdsConfig(
          credentialResource(tls.caCertCredentialName ?? `${names[0] ?? ''}${SDS_CA_SUFFIX}`),
        ),
      };
  } else if (files.length > 0) {
    common.tlsCertificateSdsSecretConfigs = files.map((f) =>
      sdsConfig(fileCertResourceName(f.serverCertificate, f.privateKey)),
    );
    // One CA for every certificate, as Istio: the server's, else the first an entry names.
    const ca =
      tls.caCertificates ?? tls.tlsCertificates?.find((c) => c.caCertificates)?.caCertificates;
    if (validate && ca)
      common.combinedValidationContext = {
        defaultValidationContext: {},
        validationContextSdsSecretConfig: sdsConfig(fileRootResourceName(ca)),
      };
  }
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const params: NonNullable<typeof common.tlsParams> = {};
    const min = TLS_VERSIONS[tls.minProtocolVersion ?? 'TLS_AUTO'];
    const max = TLS_VERSIONS[tls.maxProtocolVersion ?? 'TLS_AUTO'];
    if (min && min !== 'TLS_AUTO') params.tlsMinimumProtocolVersion = min;
    if (max && max !== 'TLS_AUTO') params.tlsMaximumProtocolVersion = max;
    if (tls.cipherSuites?.length) params.cipherSuites = [...tls.cipherSuites];
    if (Object.keys(params).length > 0) common.tlsParams = params;
  }
  return { commonTlsContext: common, requireClientCertificate: requireClient };
}

function gatewayHcm(statPrefix: string, rds: string, grpcWeb: boolean): Filter {
  return httpConnectionManagerFilter({
    statPrefix,
    rds,
    useRemoteAddress: true,
    grpcWeb,
    overrides: {
      xffNumTrustedHops: 0,
      forwardClientCertDetails: 'SANITIZE_SET',
      setCurrentClientCertDetails: { subject: true, cert: true, dns: true, uri: true },
      serverName: 'istio-envoy',
      httpProtocolOptions: {},
    },
  });
}

/** Istio l4SingleMatch: a TLS/TCP match applies to this server and gateway. */
function l4Matches(m: L4MatchAttributes | undefined, s: MergedServer): boolean {
  if (!m) return true;
  if ((m.port ?? 0) !== 0 && m.port !== s.server.port.number) return false;
  const gws = m.gateways ?? [];
  return gws.length === 0 || gws.includes(s.gateway);
}

function gatewayVirtualServices(ctx: ProxyContext, s: MergedServer): ScopedVirtualService[] {
  return scopedVirtualServices(ctx.snapshot, ctx.proxy.namespace, s.gateway).filter(
    (vs) =>
      intersectHosts(
        s.hosts.map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h)),
        vs.spec.hosts ?? [],
      ).length > 0,
  );
}

/** Istio buildGatewayNetworkFiltersFromTCPRoutes. */
function tcpRouteFilters(ctx: ProxyContext, s: MergedServer): Filter[] {
  for (const vs of gatewayVirtualServices(ctx, s)) {
    for (const tcp of vs.spec.tcp ?? []) {
      const matches = tcp.match ?? [];
      if (matches.length > 0 && !matches.some((m) => l4Matches(m, s))) continue;
      if (tcp.route.length === 0) continue;
      return outboundNetworkFilters(ctx, tcp.route, s.server.port.number, vs);
    }
  }
  return [];
}

/** Istio buildGatewayNetworkFiltersFromTLSRoutes (PASSTHROUGH). */
function tlsRouteChains(
  ctx: ProxyContext,
  s: MergedServer,
  seenSni: Set<string>,
): FilterChainOpts[] {
  const out: FilterChainOpts[] = [];
  for (const vs of gatewayVirtualServices(ctx, s)) {
    for (const tls of vs.spec.tls ?? []) {
      if (tls.route.length === 0) continue;
      for (const m of tls.match) {
        if (!l4Matches(m, s)) continue;
        if (m.sniHosts.some((h) => seenSni.has(h))) continue;
        for (const h of m.sniHosts) seenSni.add(h);
        out.push({
          sniHosts: m.sniHosts,
          networkFilters: outboundNetworkFilters(ctx, tls.route, s.server.port.number, vs),
        });
      }
    }
  }
  return out;
}

/** Istio builtAutoPassthroughFilterChains. */
function autoPassthroughChains(ctx: ProxyContext, s: MergedServer): FilterChainOpts[] {
  const out: FilterChainOpts[] = [];
  for (const svc of ctx.scope.services) {
    if (svc.meshExternal) continue;
    if (!s.sniHosts.some((h) => hostSubsetOf(svc.hostname, h))) continue;
    const rule = ctx.scope.destinationRule(svc.hostname)?.spec;
    for (const p of svc.ports) {
      if (p.protocol === 'UDP') continue;
      const cluster = dnsSrvSubsetKey(svc.hostname, p.port);
      out.push({
        sniHosts: [cluster],
        applicationProtocols: ISTIO_MTLS_ALPNS,
        networkFilters: [singleDestinationTcpProxy(cluster, cluster, '', rule)],
      });
      for (const sub of rule?.subsets ?? []) {
        const sc = dnsSrvSubsetKey(svc.hostname, p.port, sub.name);
        out.push({
          sniHosts: [sc],
          applicationProtocols: ISTIO_MTLS_ALPNS,
          networkFilters: [singleDestinationTcpProxy(sc, sc, sub.name, rule)],
        });
      }
    }
  }
  return out;
}

/** The listeners of a gateway proxy, sorted by name. */
export function buildGatewayListeners(ctx: ProxyContext, merged: MergedGateway): Listener[] {
  const out: Listener[] = [];
  for (const gp of merged.ports) {
    const bind = gp.bind !== '' ? gp.bind : wildcardAddress(ctx.proxy);
    const name = listenerName(bind, gp.port);
    const chains: FilterChainOpts[] = [];
    if (gp.http) {
      const first = gp.servers[0];
      if (!first?.routeName) continue;
      chains.push({
        networkFilters: [],
        http: gatewayHcm(`outbound_${name}`, first.routeName, first.protocol === 'GRPC-Web'),
      });
    } else {
      const seenSni = new Set<string>();
      for (const s of gp.servers) {
        const tls = s.server.tls;
        if (s.protocol === 'HTTPS' && tls && !isPassthroughServer(s.server) && s.routeName) {
          chains.push({
            sniHosts: s.sniHosts,
            tlsContext: gatewayTlsContext(tls, ALPN_HTTP),
            networkFilters: [],
            http: gatewayHcm(s.server.name || `outbound_${name}`, s.routeName, false),
          });
        } else if (!tls) {
          const filters = tcpRouteFilters(ctx, s);
          if (filters.length > 0) chains.push({ networkFilters: filters });
        } else if (!isPassthroughServer(s.server)) {
          const filters = tcpRouteFilters(ctx, s);
          const alpn = tls.mode === 'ISTIO_MUTUAL' ? ['istio-peer-exchange', 'istio'] : ALPN_HTTP;
          if (filters.length > 0)
            chains.push({
              sniHosts: s.sniHosts,
              tlsContext: gatewayTlsContext(tls, alpn),
              networkFilters: filters,
            });
        } else if (tls.mode === 'AUTO_PASSTHROUGH') {
          chains.push(...autoPassthroughChains(ctx, s));
        } else {
          chains.push(...tlsRouteChains(ctx, s, seenSni));
        }
      }
    }
    if (chains.length === 0) continue;
    const { tls } = inspectorsFor(chains);
    out.push({
      name,
      address: listenerAddress(bind, gp.port),
      trafficDirection: 'OUTBOUND',
      ...(tls ? { listenerFilters: [tlsInspector()] } : {}),
      filterChains: chains.map((c) => buildFilterChain(c, true)),
      continueOnListenerFiltersTimeout: false,
      listenerFiltersTimeout: '0s',
    });
  }
  return out.sort((a, b) =>
    (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
  );
}
