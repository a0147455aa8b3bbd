// DestinationRule traffic policies on clusters: load balancers, consistent hash (and the route
// hash policy), connection pools, outlier detection, locality settings, TLS modes, port-level
// settings and subset merging. Each golden keeps the fields of one feature; every cluster is
// checked whole with verifyResource.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '@trellis/envoy';
import { generateClusters } from '../src/cluster-builder.js';
import { hashPolicyFor, hashPolicyForDestination } from '../src/load-balancer-hash-policy.js';
import { mergeTrafficPolicy } from '../src/traffic-policy-merge.js';
import {
  assertGolden,
  assertValidResources,
  bookinfoObjects,
  bookinfoRules,
  proxyForPod,
  snapshotOf,
} from './cluster-fixtures.js';

const CDS = TYPE_URL.Cluster;
const REVIEWS = 'reviews.default.svc.cluster.local';

/** The reviews clusters (service and subsets) productpage's sidecar gets under `rules`. */
function reviewsClusters(...rules: string[]) {
  const snap = snapshotOf(bookinfoObjects(), ...rules);
  return generateClusters(snap, proxyForPod(snap, 'productpage-v1')).filter((c) =>
    c.name?.endsWith(`|${REVIEWS}`),
  );
}

const dr = (body: string): string =>
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
${body}`;

test('load balancer: simple algorithms, PASSTHROUGH and warmup per subset (golden)', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 30s}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {loadBalancer: {simple: LEAST_CONN, warmupDurationSecs: 10s}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: RANDOM}}
  - name: v3
    labels: {version: v3}
    trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}`),
  );
  assertGolden('cluster-load-balancer', CDS, clusters, [
    'type',
    'lbPolicy',
    'leastRequestLbConfig',
    'roundRobinLbConfig',
    'edsClusterConfig',
  ]);
});

test('load balancer: consistent hash gives RING_HASH or MAGLEV clusters (golden)', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 60s, path: /}, ringHash: {minimumRingSize: 4096}}}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}}
  - name: v3
    labels: {version: v3}
    trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: user, minimumRingSize: 2048}}}`),
  );
  assertGolden('cluster-consistent-hash', CDS, clusters, [
    'lbPolicy',
    'ringHashLbConfig',
    'maglevLbConfig',
  ]);
});

test('hashPolicyFor: every consistentHash key becomes the route hash policy', () => {
  assert.deepEqual(
    hashPolicyFor({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } }),
    {
      header: { headerName: 'x-user' },
    },
  );
  assert.deepEqual(
    hashPolicyFor({
      loadBalancer: {
        consistentHash: {
          httpCookie: {
            name: 'session',
            ttl: '1h',
            path: '/app',
            attributes: [{ name: 'SameSite', value: 'Strict' }],
          },
        },
      },
    }),
    {
      cookie: {
        name: 'session',
        ttl: '3600s',
        path: '/app',
        attributes: [{ name: 'SameSite', value: 'Strict' }],
      },
    },
  );
  assert.deepEqual(
    hashPolicyFor({ loadBalancer: { consistentHash: { httpCookie: { name: 'c' } } } }),
    {
      cookie: { name: 'c' },
    },
  );
  assert.deepEqual(hashPolicyFor({ loadBalancer: { consistentHash: { useSourceIp: true } } }), {
    connectionProperties: { sourceIp: true },
  });
  assert.deepEqual(
    hashPolicyFor({ loadBalancer: { consistentHash: { httpQueryParameterName: 'u' } } }),
    {
      queryParameter: { name: 'u' },
    },
  );
  assert.equal(hashPolicyFor({ loadBalancer: { simple: 'ROUND_ROBIN' } }), undefined);
  assert.equal(hashPolicyFor(undefined), undefined);
});

test('hashPolicyForDestination: subset port-level, subset, port-level, then the rule', () => {
  const snap = snapshotOf(
    bookinfoObjects(),
    dr(`  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: top}}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {consistentHash: {httpHeaderName: top-port}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: subset}}
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {consistentHash: {httpHeaderName: subset-port}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: subset}}
  - name: v3
    labels: {version: v3}`),
  );
  const proxy = proxyForPod(snap, 'productpage-v1');
  const header = (port: number | undefined, subset?: string) =>
    hashPolicyForDestination(snap, proxy, REVIEWS, port, subset)?.header?.headerName;
  assert.equal(header(9080, 'v1'), 'subset-port');
  assert.equal(header(9080, 'v2'), 'subset');
  assert.equal(header(9080, 'v3'), 'top-port');
  assert.equal(header(9080), 'top-port');
  assert.equal(header(undefined), 'top');
  assert.equal(
    hashPolicyForDestination(snap, proxy, 'ratings.default.svc.cluster.local', 9080),
    undefined,
  );
});

test('connection pool: tcp and http settings become thresholds and protocol options (golden)', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}
        maxConnectionDuration: 1h
        idleTimeout: 10m
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 1000
        maxRequestsPerConnection: 5
        maxRetries: 2
        idleTimeout: 30s
    retryBudget: {percent: 25, minRetryConcurrency: 5}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool:
        http: {http2MaxRequests: 1}`),
  ).filter(
    (c) => c.name === `outbound|9080||${REVIEWS}` || c.name === `outbound|9080|v1|${REVIEWS}`,
  );
  assertGolden('cluster-connection-pool', CDS, clusters, [
    'connectTimeout',
    'circuitBreakers',
    'upstreamConnectionOptions',
    'typedExtensionProtocolOptions',
  ]);
});

test('outlier detection: Istio mapping, disabled detectors and the panic threshold (golden)', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 7
      consecutiveGatewayErrors: 0
      interval: 5m
      baseEjectionTime: 15m
      maxEjectionPercent: 50
      minHealthPercent: 25
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      outlierDetection:
        splitExternalLocalOriginErrors: true
        consecutiveLocalOriginFailures: 3
        consecutive5xxErrors: 0`),
  ).filter(
    (c) => c.name === `outbound|9080||${REVIEWS}` || c.name === `outbound|9080|v1|${REVIEWS}`,
  );
  assertGolden('cluster-outlier-detection', CDS, clusters, ['outlierDetection', 'commonLbConfig']);
});

test('locality: distribute and failover (with outlier detection) turn on locality weighting', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: {us-east/*: 80, us-west/*: 20}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      outlierDetection: {consecutive5xxErrors: 5}
      loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-west}]}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-west}]}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      loadBalancer: {localityLbSetting: {enabled: false}}`),
  );
  assertGolden('cluster-locality-lb', CDS, clusters, ['commonLbConfig']);
});

test('tls: DISABLE, SIMPLE, MUTUAL and ISTIO_MUTUAL upstream contexts (golden)', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    tls: {mode: DISABLE}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {tls: {mode: SIMPLE, sni: reviews.example.com, subjectAltNames: [reviews.example.com]}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/crl.pem}
  - name: v3
    labels: {version: v3}
    trafficPolicy: {tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/default/sa/custom]}}`),
  );
  assertGolden('cluster-tls-modes', CDS, clusters, [
    'transportSocket',
    'transportSocketMatches',
    'typedExtensionProtocolOptions',
    'metadata',
  ]);
});

test('tls: credentialName is used by gateways and selected sidecars, never other sidecars', () => {
  const rule = (selector: string) =>
    dr(`${selector}  trafficPolicy:
    tls: {mode: SIMPLE, credentialName: reviews-ca}`);
  const plain = reviewsClusters(rule(''));
  assert.equal(plain[0]?.transportSocket, undefined);
  assert.equal(plain[0]?.transportSocketMatches, undefined);
  const selected = reviewsClusters(rule('  workloadSelector: {matchLabels: {app: productpage}}\n'));
  assertValidResources(CDS, selected);
  const ctx = selected[0]?.transportSocket?.typedConfig as unknown as {
    commonTlsContext: {
      combinedValidationContext: { validationContextSdsSecretConfig: { name: string } };
    };
  };
  assert.equal(
    ctx.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name,
    'kubernetes://reviews-ca-cacert',
  );
});

test('tls: destination-rule-all-mtls.yaml gives ISTIO_MUTUAL on every subset, without socket matches', () => {
  const snap = snapshotOf([
    ...bookinfoObjects(),
    ...bookinfoRules('destination-rule-all-mtls.yaml'),
  ]);
  const clusters = generateClusters(snap, proxyForPod(snap, 'productpage-v1'));
  assertValidResources(CDS, clusters);
  const v1 = clusters.find((c) => c.name === `outbound|9080|v1|${REVIEWS}`);
  assert.equal(v1?.transportSocketMatches, undefined);
  const ctx = v1?.transportSocket?.typedConfig as unknown as {
    sni: string;
    commonTlsContext: { alpnProtocols: string[] };
  };
  assert.equal(ctx.sni, `outbound_.9080_.v1_.${REVIEWS}`);
  assert.deepEqual(ctx.commonTlsContext.alpnProtocols, ['istio-peer-exchange', 'istio']);
});

test('tls: auto mTLS is off for PeerAuthentication DISABLE and with enableAutoMtls false', () => {
  const pa = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: DISABLE}}`;
  const off = reviewsClusters(pa);
  assert.equal(off[0]?.transportSocketMatches, undefined);
  const snap = snapshotOf(bookinfoObjects());
  const noAuto = generateClusters(
    snap,
    proxyForPod(snap, 'productpage-v1'),
    [`outbound|9080||${REVIEWS}`],
    {
      mesh: { enableAutoMtls: false },
    },
  );
  assert.equal(noAuto[0]?.transportSocketMatches, undefined);
  assert.equal(noAuto[0]?.transportSocket, undefined);
});

test('port-level settings replace the top-level policy; subsets override field by field (golden)', () => {
  const clusters = reviewsClusters(
    dr(`  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 10}}
    portLevelSettings:
    - port: {number: 9080}
      outlierDetection: {consecutive5xxErrors: 3}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        connectionPool: {tcp: {maxConnections: 2}}`),
  );
  assertGolden('cluster-port-level', CDS, clusters, [
    'lbPolicy',
    'circuitBreakers',
    'outlierDetection',
  ]);
});

test('mergeTrafficPolicy: Istio precedence rules', () => {
  const top = {
    loadBalancer: { simple: 'RANDOM' as const },
    connectionPool: { tcp: { maxConnections: 10 } },
    portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'SIMPLE' as const } }],
  };
  assert.deepEqual(mergeTrafficPolicy(top, undefined, 81), {
    loadBalancer: { simple: 'RANDOM' },
    connectionPool: { tcp: { maxConnections: 10 } },
  });
  assert.deepEqual(mergeTrafficPolicy(top, undefined, 80), { tls: { mode: 'SIMPLE' } });
  assert.deepEqual(mergeTrafficPolicy(top, { loadBalancer: { simple: 'ROUND_ROBIN' } }, 81), {
    loadBalancer: { simple: 'ROUND_ROBIN' },
    connectionPool: { tcp: { maxConnections: 10 } },
  });
  assert.deepEqual(
    mergeTrafficPolicy(
      top,
      { portLevelSettings: [{ port: { number: 81 }, outlierDetection: {} }] },
      81,
    ),
    { outlierDetection: {} },
  );
  assert.deepEqual(mergeTrafficPolicy(undefined, { tls: { mode: 'ISTIO_MUTUAL' } }, 81), {
    tls: { mode: 'ISTIO_MUTUAL' },
  });
});

test('lookup: a DestinationRule with a workloadSelector applies only to the sidecars it selects', () => {
  const rule = dr(`  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy: {loadBalancer: {simple: RANDOM}}`);
  const snap = snapshotOf(bookinfoObjects(), rule);
  const lb = (pod: string) =>
    generateClusters(snap, proxyForPod(snap, pod), [`outbound|9080||${REVIEWS}`])[0]?.lbPolicy;
  assert.equal(lb('productpage-v1'), 'RANDOM');
  assert.equal(lb('details-v1'), 'LEAST_REQUEST');
});

test('lookup: the proxy namespace wins, then the service namespace, then the root namespace; exportTo', () => {
  const rootRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: root, namespace: istio-system}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}`;
  const hidden = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hidden, namespace: other}
spec:
  host: reviews.default.svc.cluster.local
  exportTo: [other]
  trafficPolicy: {loadBalancer: {simple: RANDOM}}`;
  const lb = (...rules: string[]) => reviewsClusters(...rules)[0]?.lbPolicy;
  assert.equal(lb(rootRule), 'ROUND_ROBIN');
  assert.equal(lb(rootRule, hidden), 'ROUND_ROBIN');
  assert.equal(lb(rootRule, dr('  trafficPolicy: {loadBalancer: {simple: RANDOM}}')), 'RANDOM');
});
