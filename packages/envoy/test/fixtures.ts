// Representative resources, shaped like what Istio generates for a bookinfo sidecar.
import { CONFIG_TYPE_URL as C, toAny } from '../src/index.js';
import type {
  Cluster,
  ClusterLoadAssignment,
  HttpConnectionManager,
  Listener,
  RouteConfiguration,
  Secret,
  TcpProxy,
  UpstreamTlsContext,
  DownstreamTlsContext,
  HTTPFault,
  CorsPolicy,
  HttpProtocolOptions,
} from '../src/index.js';

const ads = { ads: {}, resourceApiVersion: 'V3' as const };

export const hcm: HttpConnectionManager = {
  statPrefix: 'outbound_0.0.0.0_9080',
  rds: { configSource: ads, routeConfigName: '9080' },
  httpFilters: [
    { name: 'envoy.filters.http.fault', typedConfig: toAny(C.HttpFault, {}) },
    { name: 'envoy.filters.http.cors', typedConfig: toAny(C.Cors, {}) },
    {
      name: 'envoy.filters.http.router',
      typedConfig: toAny(C.Router, { suppressEnvoyHeaders: true }),
    },
  ],
  tracing: {
    clientSampling: { value: 100 },
    randomSampling: { value: 1 },
    overallSampling: { value: 100 },
  },
  streamIdleTimeout: '0s',
  useRemoteAddress: false,
  normalizePath: true,
  pathWithEscapedSlashesAction: 'KEEP_UNCHANGED',
  requestIdExtension: {
    typedConfig: toAny(C.UuidRequestIdConfig, { useRequestIdForTraceSampling: true }),
  },
  upgradeConfigs: [{ upgradeType: 'websocket' }],
  accessLog: [
    {
      name: 'envoy.access_loggers.file',
      typedConfig: toAny(C.FileAccessLog, {
        path: '/dev/stdout',
        logFormat: { textFormatSource: { inlineString: '[%START_TIME%] "%REQ(:METHOD)%"\n' } },
      }),
    },
  ],
};

const downstreamTls: DownstreamTlsContext = {
  commonTlsContext: {
    tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' },
    tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: ads }],
    combinedValidationContext: {
      defaultValidationContext: {
        matchTypedSubjectAltNames: [
          { sanType: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } },
        ],
      },
      validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: ads },
    },
    alpnProtocols: ['h2', 'http/1.1'],
  },
  requireClientCertificate: true,
};

export const listener: Listener = {
  name: '0.0.0.0_9080',
  address: { socketAddress: { address: '0.0.0.0', portValue: 9080 } },
  trafficDirection: 'OUTBOUND',
  bindToPort: false,
  listenerFilters: [
    { name: 'envoy.filters.listener.tls_inspector', typedConfig: toAny(C.TlsInspector, {}) },
    { name: 'envoy.filters.listener.http_inspector', typedConfig: toAny(C.HttpInspector, {}) },
  ],
  listenerFiltersTimeout: '0s',
  continueOnListenerFiltersTimeout: true,
  filterChains: [
    {
      filterChainMatch: {
        transportProtocol: 'tls',
        applicationProtocols: ['istio', 'h2'],
        serverNames: ['reviews'],
      },
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: toAny(C.HttpConnectionManager, hcm),
        },
      ],
      transportSocket: {
        name: 'envoy.transport_sockets.tls',
        typedConfig: toAny(C.DownstreamTlsContext, downstreamTls),
      },
      name: 'tls',
    },
  ],
  metadata: {
    filterMetadata: { 'istio.io': { kind: 'outbound', port: 9080, tags: ['a', null, true] } },
  },
};

const tcpProxy: TcpProxy = {
  statPrefix: 'outbound|3306||mysqldb.default.svc.cluster.local',
  weightedClusters: {
    clusters: [
      { name: 'outbound|3306|v1|mysqldb.default.svc.cluster.local', weight: 80 },
      { name: 'outbound|3306|v2|mysqldb.default.svc.cluster.local', weight: 20 },
    ],
  },
  idleTimeout: '3600s',
  maxConnectAttempts: 3,
};

export const tcpListener: Listener = {
  name: '0.0.0.0_3306',
  address: { socketAddress: { address: '0.0.0.0', portValue: 3306 } },
  filterChains: [
    {
      filters: [
        { name: 'envoy.filters.network.tcp_proxy', typedConfig: toAny(C.TcpProxy, tcpProxy) },
      ],
    },
  ],
};

const fault: HTTPFault = {
  delay: { fixedDelay: '7s', percentage: { numerator: 100000, denominator: 'MILLION' } },
  abort: { httpStatus: 500, percentage: { numerator: 10 } },
};

const cors: CorsPolicy = {
  allowOriginStringMatch: [
    { exact: 'https://example.com' },
    { safeRegex: { regex: 'https://.*\\.example\\.org' } },
  ],
  allowMethods: 'GET,POST',
  allowHeaders: 'x-custom',
  maxAge: '86400',
  allowCredentials: true,
};

export const routeConfig: RouteConfiguration = {
  name: '9080',
  validateClusters: false,
  ignorePortInHostMatching: true,
  virtualHosts: [
    {
      name: 'reviews.default.svc.cluster.local:9080',
      domains: [
        'reviews.default.svc.cluster.local',
        'reviews',
        'reviews.default',
        'reviews.default.svc',
        '10.0.0.7',
      ],
      includeRequestAttemptCount: true,
      routes: [
        {
          name: 'jason',
          match: {
            prefix: '/',
            caseSensitive: false,
            headers: [
              { name: 'end-user', stringMatch: { exact: 'jason' } },
              { name: 'x-debug', presentMatch: true, invertMatch: true },
            ],
            queryParameters: [{ name: 'v', stringMatch: { prefix: '2' } }],
          },
          route: {
            weightedClusters: {
              clusters: [
                {
                  name: 'outbound|9080|v2|reviews.default.svc.cluster.local',
                  weight: 75,
                  requestHeadersToAdd: [
                    {
                      header: { key: 'x-split', value: 'v2' },
                      appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
                    },
                  ],
                },
                { name: 'outbound|9080|v3|reviews.default.svc.cluster.local', weight: 25 },
              ],
            },
            timeout: '1.5s',
            retryPolicy: {
              retryOn:
                'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
              numRetries: 2,
              perTryTimeout: '0.25s',
              retryHostPredicate: [
                {
                  name: 'envoy.retry_host_predicates.previous_hosts',
                  typedConfig: toAny(C.PreviousHostsPredicate, {}),
                },
              ],
              hostSelectionRetryMaxAttempts: '5',
              retriableStatusCodes: [503],
            },
            requestMirrorPolicies: [
              {
                cluster: 'outbound|9080|v1|reviews.default.svc.cluster.local',
                runtimeFraction: { defaultValue: { numerator: 50 } },
                traceSampled: false,
              },
            ],
            hashPolicy: [
              { cookie: { name: 'user', ttl: '10s', path: '/' } },
              { connectionProperties: { sourceIp: true } },
            ],
            maxStreamDuration: { maxStreamDuration: '0s', grpcTimeoutHeaderMax: '0s' },
            regexRewrite: { pattern: { regex: '^/v1/(.*)' }, substitution: '/\\1' },
          },
          typedPerFilterConfig: {
            'envoy.filters.http.fault': toAny(C.HttpFault, fault),
            'envoy.filters.http.cors': toAny(C.CorsPolicy, cors),
          },
          decorator: { operation: 'reviews.default.svc.cluster.local:9080/*' },
          responseHeadersToRemove: ['x-internal'],
        },
        {
          match: { safeRegex: { regex: '/old/.*' } },
          redirect: {
            hostRedirect: 'new.example.com',
            pathRedirect: '/new',
            responseCode: 'PERMANENT_REDIRECT',
            portRedirect: 8443,
          },
        },
        {
          match: { path: '/health' },
          directResponse: { status: 200, body: { inlineString: 'ok' } },
        },
        {
          match: { prefix: '/' },
          route: { cluster: 'outbound|9080||reviews.default.svc.cluster.local', timeout: '0s' },
        },
      ],
    },
  ],
};

const upstreamTls: UpstreamTlsContext = {
  commonTlsContext: {
    tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: ads }],
    combinedValidationContext: {
      defaultValidationContext: {
        matchTypedSubjectAltNames: [
          {
            sanType: 'URI',
            matcher: { exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' },
          },
        ],
      },
      validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: ads },
    },
    alpnProtocols: ['istio-peer-exchange', 'istio'],
  },
  sni: 'outbound_.9080_.v2_.reviews.default.svc.cluster.local',
};

const protocolOptions: HttpProtocolOptions = {
  commonHttpProtocolOptions: { idleTimeout: '3600s', maxRequestsPerConnection: 100 },
  useDownstreamProtocolConfig: {
    httpProtocolOptions: {},
    http2ProtocolOptions: { maxConcurrentStreams: 1073741824 },
  },
};

export const cluster: Cluster = {
  name: 'outbound|9080|v2|reviews.default.svc.cluster.local',
  type: 'EDS',
  edsClusterConfig: {
    edsConfig: ads,
    serviceName: 'outbound|9080|v2|reviews.default.svc.cluster.local',
  },
  connectTimeout: '10s',
  lbPolicy: 'RING_HASH',
  ringHashLbConfig: { minimumRingSize: '1024' },
  circuitBreakers: {
    thresholds: [
      {
        maxConnections: 100,
        maxPendingRequests: 10,
        maxRequests: 4294967295,
        maxRetries: 3,
        trackRemaining: true,
      },
    ],
  },
  outlierDetection: {
    consecutive5xx: 7,
    interval: '5s',
    baseEjectionTime: '900s',
    maxEjectionPercent: 100,
    enforcingConsecutive5xx: 100,
    enforcingSuccessRate: 0,
    consecutiveGatewayFailure: 5,
  },
  commonLbConfig: { localityWeightedLbConfig: {}, healthyPanicThreshold: {} },
  typedExtensionProtocolOptions: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': toAny(
      C.HttpProtocolOptions,
      protocolOptions,
    ),
  },
  transportSocketMatches: [
    {
      name: 'tlsMode-istio',
      match: { tlsMode: 'istio' },
      transportSocket: {
        name: 'envoy.transport_sockets.tls',
        typedConfig: toAny(C.UpstreamTlsContext, upstreamTls),
      },
    },
    {
      name: 'tlsMode-disabled',
      match: {},
      transportSocket: {
        name: 'envoy.transport_sockets.raw_buffer',
        typedConfig: toAny(C.RawBuffer, {}),
      },
    },
  ],
  metadata: {
    filterMetadata: {
      istio: {
        services: [
          { host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' },
        ],
        subset: 'v2',
      },
    },
  },
};

export const loadAssignment: ClusterLoadAssignment = {
  clusterName: 'outbound|9080|v2|reviews.default.svc.cluster.local',
  endpoints: [
    {
      locality: { region: 'us-east1', zone: 'us-east1-b' },
      loadBalancingWeight: 2,
      lbEndpoints: [
        {
          endpoint: { address: { socketAddress: { address: '10.1.2.3', portValue: 9080 } } },
          healthStatus: 'HEALTHY',
          loadBalancingWeight: 1,
          metadata: {
            filterMetadata: {
              'envoy.transport_socket_match': { tlsMode: 'istio' },
              istio: { workload: 'reviews-v2;default;reviews;v2;Kubernetes' },
            },
          },
        },
        {
          endpoint: { address: { socketAddress: { address: '10.1.2.4', portValue: 9080 } } },
          loadBalancingWeight: 1,
        },
      ],
    },
    {
      locality: { region: 'us-west1' },
      priority: 1,
      lbEndpoints: [
        { endpoint: { address: { socketAddress: { address: '10.2.0.1', portValue: 9080 } } } },
      ],
    },
  ],
};

export const secret: Secret = {
  name: 'default',
  tlsCertificate: {
    certificateChain: {
      inlineBytes: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64'),
    },
    privateKey: { inlineBytes: Buffer.from('-----BEGIN PRIVATE KEY-----\n').toString('base64') },
  },
};
