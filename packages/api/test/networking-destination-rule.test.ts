// DestinationRule validation: Istio's rules with exact paths and messages, and valid uses of
// consistent hashing, port-level settings, locality balancing, tunnels and client TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValid, check, runInvalidCases, type InvalidCase } from './invalid-cases.js';
import { destinationRule as dr } from './networking-fixtures.js';

const withPolicy = (trafficPolicy: unknown) => dr({ host: 'reviews', trafficPolicy });

export const DESTINATION_RULE_CASES: InvalidCase[] = [
  {
    name: 'values Envoy refuses: a ring over 8388608 entries, a warmup aggression of 0',
    yaml: withPolicy({
      loadBalancer: {
        consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 9000000 } },
        warmup: { duration: '10s', aggression: 0 },
      },
    }),
    errors: [
      'spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize: must be between 0 and 8388608, not 9000000',
      'spec.trafficPolicy.loadBalancer.warmup.aggression: must be greater than 0, not 0',
    ],
  },
  {
    name: 'host is required',
    yaml: dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    errors: ['spec.host: is required'],
  },
  {
    name: 'unknown field with a hint',
    yaml: withPolicy({ loadBalancer: { simpel: 'RANDOM' } }),
    errors: ['spec.trafficPolicy.loadBalancer.simpel: unknown field; did you mean "simple"?'],
  },
  {
    name: 'simple and consistentHash together',
    yaml: withPolicy({ loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }),
    errors: [
      'spec.trafficPolicy.loadBalancer: only one of "simple", "consistentHash" may be set; found "simple" and "consistentHash"',
    ],
  },
  {
    name: 'two hash keys, and a load balancer not in the enum',
    yaml: dr({
      host: 'reviews',
      trafficPolicy: {
        loadBalancer: { consistentHash: { httpHeaderName: 'x-user', useSourceIp: true } },
      },
      subsets: [{ name: 'v1', trafficPolicy: { loadBalancer: { simple: 'WEIGHTED' } } }],
    }),
    errors: [
      'spec.trafficPolicy.loadBalancer.consistentHash: only one of "httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName" may be set; found "httpHeaderName" and "useSourceIp"',
      'spec.subsets[0].trafficPolicy.loadBalancer.simple: must be one of: UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST; not "WEIGHTED"',
    ],
  },
  {
    name: 'maglev table size that is not prime, and an http cookie without a name',
    yaml: withPolicy({
      loadBalancer: { consistentHash: { httpCookie: { ttl: '0s' }, maglev: { tableSize: 1000 } } },
    }),
    errors: [
      'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name: is required',
      'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: must be a prime number, not 1000',
    ],
  },
  {
    name: 'deprecated minimumRingSize with ringHash',
    yaml: withPolicy({
      loadBalancer: {
        consistentHash: {
          useSourceIp: true,
          minimumRingSize: 1024,
          ringHash: { minimumRingSize: 1024 },
        },
      },
    }),
    errors: [
      'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize: must not be set together with ringHash or maglev',
    ],
    warnings: [
      'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize: is deprecated; use ringHash.minimumRingSize',
    ],
  },
  {
    name: 'duplicate and invalid subset names',
    yaml: dr({
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v1', labels: { version: 'v1b' } },
        { name: 'v2.0', labels: { version: 'v2' } },
      ],
    }),
    errors: [
      'spec.subsets[1].name: subset name "v1" is already used by subsets[0]',
      'spec.subsets[2].name: subset name "v2.0" must be a DNS-1123 label: at most 63 letters, digits and \'-\', starting and ending with a letter or digit',
    ],
  },
  {
    name: 'port-level setting without a port and without a policy',
    yaml: withPolicy({ portLevelSettings: [{}] }),
    errors: [
      'spec.trafficPolicy.portLevelSettings[0].port: is required',
      'spec.trafficPolicy.portLevelSettings[0]: must set at least one of loadBalancer, connectionPool, outlierDetection or tls',
    ],
  },
  {
    name: 'MUTUAL TLS without client certificates',
    yaml: withPolicy({ tls: { mode: 'MUTUAL', caCertificates: '/etc/certs/ca.pem' } }),
    errors: [
      'spec.trafficPolicy.tls.clientCertificate: is required when mode is MUTUAL and no credentialName is set',
      'spec.trafficPolicy.tls.privateKey: is required when mode is MUTUAL and no credentialName is set',
    ],
  },
  {
    name: 'TLS mode not in the enum, and certificates next to credentialName',
    yaml: dr({
      host: 'reviews',
      trafficPolicy: { tls: { mode: 'STRICT' } },
      subsets: [
        {
          name: 'v1',
          trafficPolicy: {
            tls: { mode: 'SIMPLE', credentialName: 'client-cert', caCertificates: '/ca.pem' },
          },
        },
      ],
    }),
    errors: [
      'spec.trafficPolicy.tls.mode: must be one of: DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL; not "STRICT"',
      'spec.subsets[0].trafficPolicy.tls.caCertificates: must not be set when credentialName is set',
    ],
  },
  {
    name: 'insecureSkipVerify with a CA',
    yaml: withPolicy({
      tls: {
        mode: 'SIMPLE',
        insecureSkipVerify: true,
        caCertificates: '/ca.pem',
        subjectAltNames: ['a'],
      },
    }),
    errors: [
      'spec.trafficPolicy.tls.caCertificates: must not be set when insecureSkipVerify is true',
      'spec.trafficPolicy.tls.subjectAltNames: must not be set when insecureSkipVerify is true',
    ],
  },
  {
    name: 'outlier detection: local-origin failures without split, percent out of range',
    yaml: withPolicy({
      outlierDetection: {
        consecutiveLocalOriginFailures: 5,
        maxEjectionPercent: 150,
        interval: '0.5ms',
      },
    }),
    errors: [
      'spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be between 0 and 100, not 150',
      'spec.trafficPolicy.outlierDetection.interval: only durations to millisecond precision are supported, not "0.5ms"',
      'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: takes effect only with splitExternalLocalOriginErrors: true',
    ],
  },
  {
    name: 'a traffic policy whose only field is null',
    yaml: withPolicy({ tls: null, loadBalancer: null }),
    errors: ['spec.trafficPolicy: must set at least one policy'],
  },
  {
    name: 'empty traffic policy and empty connection pool',
    yaml: dr({
      host: 'reviews',
      trafficPolicy: {},
      subsets: [{ name: 'v1', trafficPolicy: { connectionPool: {} } }],
    }),
    errors: [
      'spec.trafficPolicy: must set at least one policy',
      'spec.subsets[0].trafficPolicy.connectionPool: must set tcp, http or both',
    ],
  },
  {
    name: 'connection pool: negative limit, UPGRADE with useClientProtocol',
    yaml: withPolicy({
      connectionPool: {
        tcp: { maxConnections: -1, connectTimeout: '30ms' },
        http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true },
      },
    }),
    errors: [
      'spec.trafficPolicy.connectionPool.tcp.maxConnections: must not be negative, not -1',
      'spec.trafficPolicy.connectionPool.http.useClientProtocol: must not be true when h2UpgradePolicy is UPGRADE',
    ],
  },
  {
    name: 'tunnel with proxyProtocol, a bad tunnel protocol and target',
    yaml: withPolicy({
      tunnel: { protocol: 'GET', targetHost: 'bad host', targetPort: 0 },
      proxyProtocol: { version: 'V2' },
    }),
    errors: [
      'spec.trafficPolicy.tunnel.protocol: must be "CONNECT" or "POST", not "GET"',
      'spec.trafficPolicy.tunnel.targetHost: must be a fully qualified domain name or an IP address, not "bad host"',
      'spec.trafficPolicy.tunnel.targetPort: must be between 1 and 65535, not 0',
      'spec.trafficPolicy: only one of "tunnel", "proxyProtocol" may be set',
    ],
  },
  {
    name: 'locality: distribute and failover together, weights that do not add up',
    yaml: dr({
      host: 'reviews',
      trafficPolicy: {
        outlierDetection: { consecutive5xxErrors: 5 },
        loadBalancer: {
          localityLbSetting: {
            distribute: [
              { from: 'us-west/zone1/*', to: { 'us-west/zone1/*': 80, 'us-west/zone2/*': 10 } },
            ],
          },
        },
      },
      subsets: [
        {
          name: 'v1',
          trafficPolicy: {
            outlierDetection: { consecutive5xxErrors: 5 },
            loadBalancer: {
              localityLbSetting: {
                distribute: [{ from: 'us-west/*', to: { 'us-west/*': 100 } }],
                failover: [{ from: 'us-west', to: 'us-east' }],
              },
            },
          },
        },
      ],
    }),
    errors: [
      'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: weights must add up to 100, not 90',
      'spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting: only one of "distribute", "failover" may be set',
    ],
  },
  {
    name: 'invalid host and exportTo beyond the namespace with a workloadSelector',
    yaml: dr({
      host: 'reviews_svc',
      exportTo: ['*'],
      workloadSelector: { matchLabels: { app: 'productpage' } },
      trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
    }),
    errors: [
      'spec.host: host "reviews_svc": "reviews_svc" is not a valid DNS label or wildcard (a wildcard is allowed only as, or at the start of, the first label)',
      'spec.exportTo: a DestinationRule with a workloadSelector can be exported only to its own namespace (".")',
    ],
  },
];

runInvalidCases('destination rule', DESTINATION_RULE_CASES);

test('destination rule: at least 9 invalid cases', () => {
  assert.ok(DESTINATION_RULE_CASES.length >= 9);
});

test('destination rule: consistent hash variants are valid', () => {
  const hashes = [
    { httpHeaderName: 'x-user' },
    {
      httpCookie: {
        name: 'session',
        path: '/',
        ttl: '3600s',
        attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }],
      },
    },
    { httpCookie: { name: 'session', ttl: '0s' } },
    { useSourceIp: true, ringHash: { minimumRingSize: 1024 } },
    { httpQueryParameterName: 'user', maglev: { tableSize: 65537 } },
  ];
  for (const consistentHash of hashes)
    assertValid(withPolicy({ loadBalancer: { consistentHash } }));
});

test('destination rule: port-level settings, locality, warmup, tunnel and TLS are valid', () => {
  assertValid(
    dr(
      {
        host: '*.example.com',
        exportTo: ['.'],
        workloadSelector: { matchLabels: { app: 'client' } },
        trafficPolicy: {
          loadBalancer: {
            simple: 'LEAST_REQUEST',
            warmup: { duration: '60s', minimumPercent: 10, aggression: 1.5 },
            localityLbSetting: {
              enabled: true,
              failover: [{ from: 'us-east', to: 'eu-west' }],
              failoverPriority: ['topology.istio.io/network'],
            },
          },
          outlierDetection: {
            consecutive5xxErrors: 7,
            consecutiveGatewayErrors: 3,
            interval: '5m',
            baseEjectionTime: '15m',
            maxEjectionPercent: 50,
            minHealthPercent: 20,
            splitExternalLocalOriginErrors: true,
            consecutiveLocalOriginFailures: 2,
          },
          connectionPool: {
            tcp: {
              maxConnections: 100,
              connectTimeout: '30ms',
              tcpKeepalive: { time: '7200s', interval: '75s', probes: 9 },
              maxConnectionDuration: '1h',
              idleTimeout: '1h',
            },
            http: {
              http1MaxPendingRequests: 1,
              http2MaxRequests: 1000,
              maxRequestsPerConnection: 10,
              maxRetries: 3,
              idleTimeout: '30s',
              h2UpgradePolicy: 'DO_NOT_UPGRADE',
              useClientProtocol: true,
              maxConcurrentStreams: 100,
            },
          },
          retryBudget: { percent: 20, minRetryConcurrency: 3 },
          portLevelSettings: [
            { port: { number: 443 }, tls: { mode: 'SIMPLE', sni: 'api.example.com' } },
            {
              port: { number: 8443 },
              tls: {
                mode: 'MUTUAL',
                clientCertificate: '/etc/certs/client.pem',
                privateKey: '/etc/certs/key.pem',
                caCertificates: '/etc/certs/ca.pem',
                subjectAltNames: ['api.example.com'],
              },
            },
            { port: { number: 80 }, loadBalancer: { simple: 'ROUND_ROBIN' } },
          ],
        },
        subsets: [
          {
            name: 'v1',
            labels: { version: 'v1' },
            trafficPolicy: {
              tunnel: { protocol: 'CONNECT', targetHost: 'egress.example.com', targetPort: 8080 },
            },
          },
          {
            name: 'V2',
            labels: { version: 'v2' },
            trafficPolicy: { proxyProtocol: { version: 'V1' } },
          },
          {
            name: 'v3',
            trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: 'client-credential' } },
          },
        ],
      },
      'client-ns',
    ),
  );
});

test('destination rule: failover without outlier detection is a warning', () => {
  const { errors, warnings } = check(
    withPolicy({
      loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'us-west' }] } },
    }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, [
    'spec.trafficPolicy.loadBalancer.localityLbSetting: locality failover takes effect only with outlierDetection set',
  ]);
});
