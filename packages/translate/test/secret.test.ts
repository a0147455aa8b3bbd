// The SDS generator: Kubernetes Secrets served by `kubernetes://` name to the proxies istiod
// would serve them to (gateways, their own namespace; CA bundles to any proxy there), in
// istiod's formats and precedence, with every refused or broken credential left out and reported
// by name. Test certificates: test/fixtures/secret-test-* (test-only keys).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '@trellis/api';
import { TYPE_URL, verifyResource, type Secret } from '@trellis/envoy';
import { generateSecrets, formatSecretWarning, type Proxy } from '../src/index.js';
import { parseCredentialResourceName } from '../src/secret-name.js';
import {
  assertGolden,
  gatewayProxy,
  ingressGatewayObjects,
  loadYaml,
  podsFor,
  proxyForPod,
  snapshotOf,
} from './fixtures.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures');
const pem = (file: string): string => readFileSync(resolve(FIXTURES, file), 'utf8');
const A_CRT = pem('secret-test-a.crt');
const A_KEY = pem('secret-test-a.key');
const B_CRT = pem('secret-test-b.crt');
const B_KEY = pem('secret-test-b.key');
const CA_CRT = pem('secret-test-ca.crt');
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A Secret with `data` (values given as text, stored base64). */
function secret(
  name: string,
  values: Record<string, string>,
  opts: { namespace?: string; type?: string; stringData?: Record<string, string> } = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: opts.namespace ?? 'istio-system' },
    ...(opts.type ? { type: opts.type } : {}),
    data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, b64(v)])),
    ...(opts.stringData ? { stringData: opts.stringData } : {}),
  };
}

const SECRETS: KubeObject[] = [
  // kubernetes.io/tls with its CA in ca.crt.
  secret(
    'tls-cred',
    { 'tls.crt': A_CRT, 'tls.key': A_KEY, 'ca.crt': CA_CRT },
    { type: 'kubernetes.io/tls' },
  ),
  // Generic keys, CA in `cacert`.
  secret('generic-cred', { cert: B_CRT, key: B_KEY, cacert: CA_CRT }),
  // Both forms: the generic keys win (istiod tries them first).
  secret('both-cred', { cert: B_CRT, key: B_KEY, 'tls.crt': A_CRT, 'tls.key': A_KEY }),
  // A CA in its own `-cacert` Secret wins over the one in the credential.
  secret('split-cred', { 'tls.crt': A_CRT, 'tls.key': A_KEY, 'ca.crt': A_CRT }),
  secret('split-cred-cacert', { cacert: CA_CRT }),
  // stringData, as written to a store that keeps it (merged over data).
  secret(
    'string-cred',
    { 'tls.crt': 'overridden' },
    { stringData: { 'tls.crt': B_CRT, 'tls.key': B_KEY } },
  ),
  // OCSP staple and CRL are passed on.
  secret('stapled-cred', {
    'tls.crt': A_CRT,
    'tls.key': A_KEY,
    'tls.ocsp-staple': 'staple-bytes',
    'ca.crt': CA_CRT,
    'ca.crl': 'crl-bytes',
  }),
  // Another namespace's Secret.
  secret(
    'other-cred',
    { 'tls.crt': A_CRT, 'tls.key': A_KEY, 'ca.crt': CA_CRT },
    { namespace: 'default' },
  ),
];

const BROKEN: KubeObject[] = [
  secret('no-keys', { username: 'u', password: 'p' }),
  secret('empty-keys', { 'tls.crt': '', 'tls.key': '' }),
  secret('not-pem', { 'tls.crt': 'hello', 'tls.key': A_KEY }),
  secret('bad-pem', {
    'tls.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    'tls.key': A_KEY,
  }),
  secret('key-not-pem', { 'tls.crt': A_CRT, 'tls.key': 'not a key' }),
  secret('mismatch', { 'tls.crt': A_CRT, 'tls.key': B_KEY }),
  secret('encrypted', {
    'tls.crt': A_CRT,
    'tls.key': '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n',
  }),
  secret('ca-not-pem', { 'tls.crt': A_CRT, 'tls.key': A_KEY, 'ca.crt': 'nope' }),
];

function world(extra: readonly KubeObject[] = []) {
  const base = [
    ...ingressGatewayObjects(),
    ...loadYaml(
      `
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep, namespace: istio-system}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec: {containers: [{name: sleep, image: sleep}]}
`,
      'sleep.yaml',
      'istio-system',
    ),
  ];
  const objects = [...base, ...podsFor(base), ...SECRETS, ...extra];
  const snapshot = snapshotOf(objects);
  return {
    snapshot,
    gateway: gatewayProxy(snapshot, objects),
    sidecar: proxyForPod(snapshot, objects, 'sleep-0', 'istio-system'),
  };
}

function serve(proxy: Proxy, names: readonly string[], extra: readonly KubeObject[] = []) {
  return generateSecrets(world(extra).snapshot, proxy, names);
}

const decode = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

function byName(list: readonly Secret[]): Map<string, Secret> {
  return new Map(list.map((s) => [s.name ?? '', s]));
}

function assertValidSecrets(list: readonly Secret[]): void {
  for (const s of list)
    assert.deepEqual(verifyResource(TYPE_URL.Secret, s).errors, [], `${s.name} is valid Envoy`);
}

describe('generateSecrets', () => {
  const { gateway, sidecar } = world();

  test('golden: a gateway asks for certificates and CA bundles', () => {
    const names = [
      'kubernetes://tls-cred',
      'kubernetes://tls-cred-cacert',
      'kubernetes://generic-cred',
      'kubernetes://generic-cred-cacert',
      'kubernetes://istio-system/tls-cred',
      'kubernetes://split-cred-cacert',
      'kubernetes://stapled-cred',
      'kubernetes://stapled-cred-cacert',
      // Resolved elsewhere: left out silently.
      'default',
      'ROOTCA',
      'file-cert:/etc/certs/cert.pem~/etc/certs/key.pem',
      'file-root:/etc/certs/root.pem',
    ];
    const out = serve(gateway, names);
    assert.deepEqual(out.warnings, []);
    assertValidSecrets(out.secrets);
    assertGolden('secret-gateway', out.secrets);
    assert.deepEqual(
      out.secrets.map((s) => s.name),
      [...names.filter((n) => n.startsWith('kubernetes://'))].sort(),
    );
  });

  test('certificate and key: tls.crt/tls.key, generic cert/key first, stringData over data', () => {
    const got = byName(
      serve(gateway, [
        'kubernetes://tls-cred',
        'kubernetes://generic-cred',
        'kubernetes://both-cred',
        'kubernetes://string-cred',
      ]).secrets,
    );
    const pair = (n: string) => {
      const tls = got.get(n)?.tlsCertificate;
      return [decode(tls?.certificateChain?.inlineBytes), decode(tls?.privateKey?.inlineBytes)];
    };
    assert.deepEqual(pair('kubernetes://tls-cred'), [A_CRT, A_KEY]);
    assert.deepEqual(pair('kubernetes://generic-cred'), [B_CRT, B_KEY]);
    assert.deepEqual(pair('kubernetes://both-cred'), [B_CRT, B_KEY]);
    assert.deepEqual(pair('kubernetes://string-cred'), [B_CRT, B_KEY]);
    assert.equal(got.get('kubernetes://tls-cred')?.validationContext, undefined);
  });

  test('CA bundle: the NAME-cacert Secret first, else ca.crt / cacert of NAME', () => {
    const got = byName(
      serve(gateway, [
        'kubernetes://tls-cred-cacert',
        'kubernetes://generic-cred-cacert',
        'kubernetes://split-cred-cacert',
        'kubernetes://stapled-cred-cacert',
      ]).secrets,
    );
    const ca = (n: string) => decode(got.get(n)?.validationContext?.trustedCa?.inlineBytes);
    assert.equal(ca('kubernetes://tls-cred-cacert'), CA_CRT);
    assert.equal(ca('kubernetes://generic-cred-cacert'), CA_CRT);
    // split-cred holds A_CRT in ca.crt; its -cacert Secret holds the real CA.
    assert.equal(ca('kubernetes://split-cred-cacert'), CA_CRT);
    const stapled = got.get('kubernetes://stapled-cred-cacert')?.validationContext;
    assert.equal(decode(stapled?.crl?.inlineBytes), 'crl-bytes');
    assert.equal(got.get('kubernetes://tls-cred-cacert')?.tlsCertificate, undefined);
  });

  test('the OCSP staple of a kubernetes.io/tls Secret is passed on', () => {
    const [s] = serve(gateway, ['kubernetes://stapled-cred']).secrets;
    assert.equal(decode(s?.tlsCertificate?.ocspStaple?.inlineBytes), 'staple-bytes');
  });

  test('a sidecar gets CA bundles of its namespace, never keys', () => {
    const out = serve(sidecar, ['kubernetes://tls-cred', 'kubernetes://tls-cred-cacert']);
    assert.deepEqual(
      out.secrets.map((s) => s.name),
      ['kubernetes://tls-cred-cacert'],
    );
    assert.equal(out.warnings.length, 1);
    const w = out.warnings[0]!;
    assert.equal(w.resourceName, 'kubernetes://tls-cred');
    assert.equal(w.secret, 'istio-system/tls-cred');
    assert.match(w.message, /sidecar: only gateways \(router proxies\) may read/);
    assert.match(
      formatSecretWarning(w),
      /^SDS kubernetes:\/\/tls-cred \(Secret istio-system\/tls-cred\): /,
    );
  });

  test("only the proxy's own namespace: kubernetes://NAMESPACE/NAME elsewhere is refused", () => {
    const out = serve(gateway, [
      'kubernetes://default/other-cred',
      'kubernetes://default/other-cred-cacert',
      'kubernetes://istio-system/tls-cred',
    ]);
    assert.deepEqual(
      out.secrets.map((s) => s.name),
      ['kubernetes://istio-system/tls-cred'],
    );
    assert.deepEqual(
      out.warnings.map((w) => [w.resourceName, w.secret]),
      [
        ['kubernetes://default/other-cred', 'default/other-cred'],
        ['kubernetes://default/other-cred-cacert', 'default/other-cred-cacert'],
      ],
    );
    for (const w of out.warnings) assert.match(w.message, /only from the proxy's own namespace/);
  });

  test('missing Secrets and bad names give nothing, with a warning', () => {
    const out = serve(gateway, [
      'kubernetes://nope',
      'kubernetes://nope-cacert',
      'kubernetes://',
      'kubernetes://a/b/c',
      'kubernetes-gateway://istio-system/tls-cred',
      'configmap://istio-system/ca',
    ]);
    assert.deepEqual(out.secrets, []);
    assert.deepEqual(
      out.warnings.map((w) => w.resourceName),
      [
        'configmap://istio-system/ca',
        'kubernetes-gateway://istio-system/tls-cred',
        'kubernetes://',
        'kubernetes://a/b/c',
        'kubernetes://nope',
        'kubernetes://nope-cacert',
      ],
    );
    const msg = new Map(out.warnings.map((w) => [w.resourceName, w.message]));
    assert.equal(msg.get('kubernetes://nope'), 'the Secret does not exist');
    assert.match(
      msg.get('kubernetes://nope-cacert') ?? '',
      /neither Secret istio-system\/nope-cacert nor istio-system\/nope exists/,
    );
    assert.match(msg.get('kubernetes-gateway://istio-system/tls-cred') ?? '', /not supported/);
  });

  test('broken Secrets are reported by name and left out; the others are still served', () => {
    const names = [
      ...BROKEN.map((s) => `kubernetes://${s.metadata.name}`),
      'kubernetes://ca-not-pem-cacert',
      'kubernetes://tls-cred',
    ];
    const out = serve(gateway, names, BROKEN);
    assert.deepEqual(
      out.secrets.map((s) => s.name),
      // ca-not-pem's certificate and key are fine: only its CA bundle is broken.
      ['kubernetes://ca-not-pem', 'kubernetes://tls-cred'],
    );
    const msg = new Map(out.warnings.map((w) => [w.secret, w.message]));
    const expect: [string, RegExp][] = [
      [
        'no-keys',
        /expected keys \(cert and key\) or \(tls.crt and tls.key\); found: password, username/,
      ],
      ['empty-keys', /found keys "tls.crt" and "tls.key", but they were empty/],
      ['not-pem', /tls.crt holds no PEM certificate/],
      ['bad-pem', /tls.crt: certificate 1 of 1 does not parse/],
      ['key-not-pem', /tls.key holds no PEM private key/],
      ['mismatch', /tls.key does not match the certificate in tls.crt/],
      ['encrypted', /tls.key is encrypted/],
      ['ca-not-pem', /ca.crt holds no PEM certificate/],
    ];
    for (const [name, re] of expect) assert.match(msg.get(`istio-system/${name}`) ?? '', re, name);
    assert.equal(out.warnings.length, expect.length);
  });

  test('an expired certificate is served, with a warning (as istiod does)', () => {
    const now = Date.parse('2200-01-01T00:00:00Z');
    const { snapshot } = world();
    const out = generateSecrets(
      snapshot,
      gateway,
      ['kubernetes://tls-cred', 'kubernetes://tls-cred-cacert'],
      { now },
    );
    assert.equal(out.secrets.length, 2);
    assert.deepEqual(
      out.warnings.map((w) => w.resourceName),
      ['kubernetes://tls-cred', 'kubernetes://tls-cred-cacert'],
    );
    for (const w of out.warnings) assert.match(w.message, /expired at 2126-/);
    // Today, nothing to say.
    const fresh = generateSecrets(snapshot, gateway, ['kubernetes://tls-cred'], {
      now: Date.parse('2030-01-01T00:00:00Z'),
    });
    assert.deepEqual(fresh.warnings, []);
  });

  test('no names, nothing: SDS is never a wildcard subscription', () => {
    assert.deepEqual(serve(gateway, []), { secrets: [], warnings: [] });
    assert.deepEqual(generateSecrets(world().snapshot, gateway, undefined), {
      secrets: [],
      warnings: [],
    });
  });

  test('same inputs, same output; duplicates asked once', () => {
    const { snapshot } = world();
    const names = ['kubernetes://tls-cred', 'kubernetes://generic-cred', 'kubernetes://tls-cred'];
    const a = generateSecrets(snapshot, gateway, names);
    const b = generateSecrets(snapshot, gateway, [...names].reverse());
    assert.deepEqual(a, b);
    assert.equal(a.secrets.length, 2);
  });
});

describe('parseCredentialResourceName', () => {
  test("kubernetes://NAME is in the proxy's namespace, NAMESPACE/NAME where it says", () => {
    assert.deepEqual(parseCredentialResourceName('kubernetes://cred', 'gw'), {
      kind: 'kubernetes',
      resourceName: 'kubernetes://cred',
      namespace: 'gw',
      name: 'cred',
      caOnly: false,
    });
    assert.deepEqual(parseCredentialResourceName('kubernetes://team/cred-cacert', 'gw'), {
      kind: 'kubernetes',
      resourceName: 'kubernetes://team/cred-cacert',
      namespace: 'team',
      name: 'cred-cacert',
      caOnly: true,
    });
  });

  test('names resolved elsewhere are local; others invalid', () => {
    for (const n of ['default', 'ROOTCA', 'file-cert:/a~/b', 'file-root:system'])
      assert.equal(parseCredentialResourceName(n, 'gw').kind, 'local', n);
    for (const n of [
      'kubernetes://',
      'kubernetes://a/',
      'kubernetes://A',
      'kubernetes://a/b/c',
      'x://y',
      'cred',
    ])
      assert.equal(parseCredentialResourceName(n, 'gw').kind, 'invalid', n);
  });
});
