// EnvoyFilter, ProxyConfig and WasmPlugin: accepted and stored with a warning that Trellis does not
// apply them; only the top-level shape of the spec is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateManifests } from '../src/index.js';
import { runInvalidCases, type InvalidCase } from './invalid-cases.js';

const ENVOY_FILTER = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: custom-protocol
  namespace: istio-config
spec:
  workloadSelector:
    labels: {app: reviews}
  configPatches:
  - applyTo: NETWORK_FILTER
    match:
      context: SIDECAR_OUTBOUND
      listener:
        portNumber: 9307
        filterChain:
          filter:
            name: "envoy.filters.network.tcp_proxy"
    patch:
      operation: INSERT_BEFORE
      value:
        name: "envoy.extensions.filters.network.mongo_proxy"
        typed_config:
          "@type": "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"
          stat_prefix: mongo
  priority: 10
`;

const PROXY_CONFIG = `apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata:
  name: per-workload-proxyconfig
spec:
  selector:
    matchLabels: {app: ratings}
  concurrency: 0
  environmentVariables: {ISTIO_META_X: "y"}
  image: {imageType: distroless}
`;

const WASM_PLUGIN = `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: openid-connect
spec:
  selector:
    matchLabels: {istio: ingressgateway}
  url: oci://private-registry:5000/openid-connect/openid:latest
  imagePullPolicy: IfNotPresent
  imagePullSecret: private-registry-pull-secret
  phase: AUTHN
  pluginConfig:
    openid_server: authn
    openid_realm: ingress
  failStrategy: FAIL_OPEN
`;

export const STORED_ONLY_CASES: InvalidCase[] = [
  {
    name: 'EnvoyFilter is stored with a warning',
    yaml: ENVOY_FILTER,
    errors: [],
    warnings: ['EnvoyFilter is stored but not applied: Trellis does not support EnvoyFilter yet'],
  },
  {
    name: 'ProxyConfig is stored with a warning',
    yaml: PROXY_CONFIG,
    errors: [],
    warnings: ['ProxyConfig is stored but not applied: Trellis does not support ProxyConfig yet'],
  },
  {
    name: 'WasmPlugin is stored with a warning',
    yaml: WASM_PLUGIN,
    errors: [],
    warnings: ['WasmPlugin is stored but not applied: Trellis does not support WasmPlugin yet'],
  },
  {
    name: 'an unknown top-level EnvoyFilter field is still an error',
    yaml: ENVOY_FILTER.replace('  priority: 10', '  prioriti: 10'),
    errors: ['spec.prioriti: unknown field; did you mean "priority"?'],
    warnings: ['EnvoyFilter is stored but not applied: Trellis does not support EnvoyFilter yet'],
  },
  {
    name: 'a WasmPlugin spec that is not an object',
    yaml: 'apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: w\nspec: [url]\n',
    errors: ['spec: must be an object, not a list'],
  },
  {
    name: 'EnvoyFilter at a version Istio does not serve',
    yaml: ENVOY_FILTER.replace('networking.istio.io/v1alpha3', 'networking.istio.io/v1'),
    errors: ['apiVersion: EnvoyFilter is not served at version v1; served versions: v1alpha3'],
  },
];

runInvalidCases('stored-only kinds', STORED_ONLY_CASES);

test('stored-only kinds keep their spec content as written', () => {
  const r = validateManifests(ENVOY_FILTER, 'ef.yaml');
  assert.equal(r.errorCount, 0);
  const spec = r.objects[0]?.object.spec as { configPatches: { patch: { value: unknown } }[] };
  assert.deepEqual(spec.configPatches[0]?.patch.value, {
    name: 'envoy.extensions.filters.network.mongo_proxy',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy',
      stat_prefix: 'mongo',
    },
  });
});
