// The HTTP connection manager network filter (Istio listener_builder.go
// buildHTTPConnectionManager): codec AUTO, routes over RDS (`ads`, no initial fetch timeout) or
// inline, Istio's path normalisation, websocket upgrades, no stream idle timeout, a UUID request
// id, and the HTTP filters route configs rely on: grpc_stats, fault, CORS, then the router.
// Filters for mTLS, authorization and telemetry plug in through `extraHttpFilters` (inserted
// before the built-ins) when those issues land.
import { CONFIG_TYPE_URL, toAny } from '@trellis/envoy';
import type { Filter, HttpConnectionManager, HttpFilter, RouteConfiguration } from '@trellis/envoy';
import { WELLKNOWN } from './listener-names.js';

/** The HTTP filters every Istio connection manager has (grpc-web first on gRPC-Web ports). */
export function standardHttpFilters(grpcWeb = false): HttpFilter[] {
  const out: HttpFilter[] = [];
  if (grpcWeb)
    out.push({ name: WELLKNOWN.grpcWeb, typedConfig: toAny(CONFIG_TYPE_URL.GrpcWeb, {}) });
  out.push(
    {
      name: WELLKNOWN.grpcStats,
      typedConfig: toAny(CONFIG_TYPE_URL.GrpcStats, {
        emitFilterState: true,
        statsForAllMethods: false,
      }),
    },
    { name: WELLKNOWN.fault, typedConfig: toAny(CONFIG_TYPE_URL.HttpFault, {}) },
    { name: WELLKNOWN.cors, typedConfig: toAny(CONFIG_TYPE_URL.Cors, {}) },
    { name: WELLKNOWN.router, typedConfig: toAny(CONFIG_TYPE_URL.Router, {}) },
  );
  return out;
}

/** What distinguishes one connection manager from another. */
export interface HttpConnectionManagerOptions {
  readonly statPrefix: string;
  /** Route configuration name fetched over RDS; or `routeConfig` inline. */
  readonly rds?: string;
  readonly routeConfig?: RouteConfiguration;
  /** Use the peer address as the client address (gateways; sidecars do not). */
  readonly useRemoteAddress: boolean;
  /** The port carries gRPC-Web (adds the grpc_web filter). */
  readonly grpcWeb?: boolean;
  /** Filters placed before the built-in ones (authn, authz, stats: later issues). */
  readonly extraHttpFilters?: readonly HttpFilter[];
  /** Extra fields (gateway XFF and client certificate settings, explicit proxy options). */
  readonly overrides?: Partial<HttpConnectionManager>;
}

/** The connection manager as a network filter. */
export function httpConnectionManagerFilter(opts: HttpConnectionManagerOptions): Filter {
  const hcm: HttpConnectionManager = {
    statPrefix: opts.statPrefix,
    codecType: 'AUTO',
    ...(opts.rds !== undefined
      ? {
          rds: {
            configSource: { ads: {}, initialFetchTimeout: '0s', resourceApiVersion: 'V3' },
            routeConfigName: opts.rds,
          },
        }
      : { routeConfig: opts.routeConfig ?? { name: '', virtualHosts: [] } }),
    httpFilters: [...(opts.extraHttpFilters ?? []), ...standardHttpFilters(opts.grpcWeb)],
    normalizePath: true,
    pathWithEscapedSlashesAction: 'KEEP_UNCHANGED',
    useRemoteAddress: opts.useRemoteAddress,
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    streamIdleTimeout: '0s',
    requestIdExtension: {
      typedConfig: toAny(CONFIG_TYPE_URL.UuidRequestIdConfig, {
        useRequestIdForTraceSampling: true,
      }),
    },
    ...opts.overrides,
  };
  return {
    name: WELLKNOWN.httpConnectionManager,
    typedConfig: toAny(CONFIG_TYPE_URL.HttpConnectionManager, hcm),
  };
}

/** The HCM inside a network filter built by `httpConnectionManagerFilter` (for tests and simulation). */
export function connectionManagerOf(f: Filter | undefined): HttpConnectionManager | undefined {
  if (!f || f.name !== WELLKNOWN.httpConnectionManager || !f.typedConfig) return undefined;
  return f.typedConfig as unknown as HttpConnectionManager;
}
