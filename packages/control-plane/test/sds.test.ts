// The control plane serves gateway credentials over SDS on the ADS stream, as istiod does: a
// router proxy subscribing to `kubernetes://NAME` (SotW and delta) receives the Secret's
// certificate and key, and a new one when the Secret changes; a sidecar asking for a key gets
// nothing (and its stream goes on), an unknown name gets nothing; only proxies of the Secret's
// namespace hear of a change; /debug/config_dump redacts private keys.
// Test certificates: test/fixtures/secret-test-* (test-only keys).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { KubeObject } from '@trellis/api';
import { keyOf, openFileStore, type ConfigStore } from '@trellis/config';
import {
  TYPE_URL,
  adsServiceDefinition,
  decodeResource,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EncodedAny,
  type Node,
} from '@trellis/envoy';
import { ControlPlane } from '../src/index.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures');
const pem = (file: string): string => readFileSync(resolve(FIXTURES, file), 'utf8');
const A_CRT = pem('secret-test-a.crt');
const A_KEY = pem('secret-test-a.key');
const B_CRT = pem('secret-test-b.crt');
const B_KEY = pem('secret-test-b.key');
const CA_CRT = pem('secret-test-ca.crt');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const text = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

const GW = 'istio-system';

function tlsSecret(name: string, namespace: string, crt: string, key: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(crt), 'tls.key': b64(key), 'ca.crt': b64(CA_CRT) },
  };
}

function node(type: 'router' | 'sidecar', pod: string, namespace: string): Node {
  return {
    id: `${type}~10.0.0.9~${pod}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace, LABELS: { app: pod } },
  };
}

const AdsClient = grpc.makeGenericClientConstructor(
  adsServiceDefinition,
  'AggregatedDiscoveryService',
);

/** One ADS stream: the responses received, in order, and a way to wait for the next. */
class Stream<Req, Res> {
  readonly #queue: Res[] = [];
  readonly #waiters: ((r: Res) => void)[] = [];
  constructor(readonly call: grpc.ClientDuplexStream<Req, Res>) {
    call.on('data', (r: Res) => {
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.#queue.push(r);
    });
    call.on('error', () => undefined);
  }
  send(r: Req): void {
    this.call.write(r);
  }
  next(what: string, ms = 5_000): Promise<Res> {
    const r = this.#queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(done), 1);
        reject(new Error(`no response (${what}) within ${ms} ms`));
      }, ms);
      const done = (x: Res): void => {
        clearTimeout(timer);
        resolve(x);
      };
      this.#waiters.push(done);
    });
  }
  /** Responses received and not yet taken. */
  get buffered(): number {
    return this.#queue.length;
  }
  close(): void {
    this.call.cancel();
  }
}

type Sotw = Stream<DiscoveryRequest, DiscoveryResponse>;
type Delta = Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

let dir: string;
let store: ConfigStore;
let cp: ControlPlane;
let client: grpc.Client;
const warnings: string[] = [];
const streams: { close(): void }[] = [];

function sotw(): Sotw {
  const c = client as unknown as {
    StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  };
  const s = new Stream(c.StreamAggregatedResources());
  streams.push(s);
  return s;
}

function delta(): Delta {
  const c = client as unknown as {
    DeltaAggregatedResources(): grpc.ClientDuplexStream<
      DeltaDiscoveryRequest,
      DeltaDiscoveryResponse
    >;
  };
  const s = new Stream(c.DeltaAggregatedResources());
  streams.push(s);
  return s;
}

async function put(o: KubeObject): Promise<void> {
  const cur = await store.get(keyOf(o));
  if (!cur) await store.create(o);
  else
    await store.update({
      ...o,
      metadata: { ...o.metadata, resourceVersion: cur.metadata.resourceVersion ?? '' },
    });
}

/** Writes `o` and waits until the control plane has built and pushed the change. */
async function change(o: KubeObject): Promise<void> {
  const before = cp.snapshot?.version;
  await put(o);
  for (let i = 0; i < 500 && cp.snapshot?.version === before; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.notEqual(cp.snapshot?.version, before, 'the change reached the control plane');
  await cp.whenIdle();
}

/** Secrets of a SotW response, by name. */
function secretsOf(r: DiscoveryResponse): Map<string, Record<string, unknown>> {
  assert.equal(r.typeUrl, TYPE_URL.Secret);
  assert.equal(r.encodedResources?.length ?? 0, 0);
  const out = new Map<string, Record<string, unknown>>();
  for (const any of r.resources ?? []) {
    const s = decodeResource(any);
    out.set(String(s.name), s);
  }
  return out;
}

/** The certificate chain and key of a decoded Secret, as text. */
function pair(s: Record<string, unknown> | undefined): [string, string] {
  const tls = (s?.tlsCertificate ?? {}) as {
    certificateChain?: { inlineBytes?: string };
    privateKey?: { inlineBytes?: string };
  };
  return [text(tls.certificateChain?.inlineBytes), text(tls.privateKey?.inlineBytes)];
}

function caOf(s: Record<string, unknown> | undefined): string {
  const vc = (s?.validationContext ?? {}) as { trustedCa?: { inlineBytes?: string } };
  return text(vc.trustedCa?.inlineBytes);
}

/** Subscribes a SotW stream to `names` and returns the first response (ACKed). */
async function subscribe(
  s: Sotw,
  n: Node,
  typeUrl: string,
  names: string[],
): Promise<DiscoveryResponse> {
  s.send({ node: n, typeUrl, resourceNames: names });
  const r = await s.next(`${typeUrl} for ${n.id}`);
  ack(s, r, names);
  return r;
}

function ack(s: Sotw, r: DiscoveryResponse, names: string[]): void {
  s.send({
    typeUrl: r.typeUrl ?? '',
    resourceNames: names,
    versionInfo: r.versionInfo ?? '',
    responseNonce: r.nonce ?? '',
  });
}

/** Gives the server time to push anything it was going to push (for "nothing came" checks). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-sds-'));
  store = await openFileStore(dir);
  await put(tlsSecret('gw-cred', GW, A_CRT, A_KEY));
  await put(tlsSecret('team-cred', 'team', A_CRT, A_KEY));
  cp = await ControlPlane.start({
    store,
    xdsAddress: '127.0.0.1:0',
    monitoringPort: 0,
    debounce: { quietMs: 10, maxMs: 200 },
  });
  cp.source.onSecretWarning = (m) => warnings.push(m);
  client = new AdsClient(`127.0.0.1:${cp.xdsPort}`, grpc.credentials.createInsecure());
});

after(async () => {
  for (const s of streams) s.close();
  client?.close();
  await cp?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SDS from the control plane', () => {
  test('SotW: a gateway gets its credential, a pushed update, and nothing for unknown names', async () => {
    const gw = sotw();
    const n = node('router', 'ingress-sotw', GW);
    const names = ['kubernetes://gw-cred', 'kubernetes://gw-cred-cacert', 'kubernetes://missing'];
    let r = await subscribe(gw, n, TYPE_URL.Secret, names);
    let got = secretsOf(r);
    assert.deepEqual([...got.keys()].sort(), [
      'kubernetes://gw-cred',
      'kubernetes://gw-cred-cacert',
    ]);
    assert.deepEqual(pair(got.get('kubernetes://gw-cred')), [A_CRT, A_KEY]);
    assert.equal(caOf(got.get('kubernetes://gw-cred-cacert')), CA_CRT);
    assert.ok(
      warnings.some((w) => w.includes('kubernetes://missing') && w.includes('does not exist')),
      `a warning about the missing Secret (${JSON.stringify(warnings)})`,
    );

    // A team namespace gateway subscribed to its own credential hears nothing of istio-system's.
    const team = sotw();
    await subscribe(team, node('router', 'ingress-team', 'team'), TYPE_URL.Secret, [
      'kubernetes://team-cred',
    ]);

    await change(tlsSecret('gw-cred', GW, B_CRT, B_KEY));
    r = await gw.next('SDS push after the Secret changed');
    got = secretsOf(r);
    assert.deepEqual(pair(got.get('kubernetes://gw-cred')), [B_CRT, B_KEY]);
    ack(gw, r, names);
    await settle();
    assert.equal(team.buffered, 0, 'a gateway of another namespace is not pushed to');
  });

  test('delta: a gateway gets its credential, then only what changed', async () => {
    const gw = delta();
    const n = node('router', 'ingress-delta', GW);
    gw.send({
      node: n,
      typeUrl: TYPE_URL.Secret,
      resourceNamesSubscribe: [
        'kubernetes://gw-cred',
        'kubernetes://gw-cred-cacert',
        'kubernetes://missing',
      ],
    });
    let r = await gw.next('delta SDS');
    assert.equal(r.typeUrl, TYPE_URL.Secret);
    const first = new Map((r.resources ?? []).map((x) => [x.name ?? '', x]));
    assert.deepEqual([...first.keys()].sort(), [
      'kubernetes://gw-cred',
      'kubernetes://gw-cred-cacert',
    ]);
    const cred = decodeResource(first.get('kubernetes://gw-cred')?.resource as EncodedAny);
    const current = (await store.get(keyOf(tlsSecret('gw-cred', GW, '', '')))) as KubeObject;
    const data = current.data as Record<string, string>;
    assert.deepEqual(pair(cred), [text(data['tls.crt']), text(data['tls.key'])]);
    gw.send({ typeUrl: TYPE_URL.Secret, responseNonce: r.nonce ?? '' });

    await change(tlsSecret('gw-cred', GW, A_CRT, A_KEY));
    r = await gw.next('delta SDS push after the Secret changed');
    // The CA part did not change: only the certificate is sent again.
    assert.deepEqual(
      (r.resources ?? []).map((x) => x.name),
      ['kubernetes://gw-cred'],
    );
    assert.deepEqual(pair(decodeResource(r.resources?.[0]?.resource as EncodedAny)), [
      A_CRT,
      A_KEY,
    ]);
    gw.send({ typeUrl: TYPE_URL.Secret, responseNonce: r.nonce ?? '' });
  });

  test('a sidecar asking for a key gets nothing, its stream goes on; CA bundles it may have', async () => {
    const sc = sotw();
    const n = node('sidecar', 'sleep-0', GW);
    let r = await subscribe(sc, n, TYPE_URL.Secret, ['kubernetes://gw-cred']);
    assert.deepEqual([...secretsOf(r).keys()], []);
    assert.ok(
      warnings.some((w) => w.includes('istio-system/gw-cred') && w.includes('sidecar')),
      `a warning naming the Secret and the refusal (${JSON.stringify(warnings)})`,
    );
    // The stream still serves: the CA part (public, as istiod allows) and other types.
    const names = ['kubernetes://gw-cred', 'kubernetes://gw-cred-cacert'];
    sc.send({
      typeUrl: TYPE_URL.Secret,
      resourceNames: names,
      versionInfo: r.versionInfo ?? '',
      responseNonce: r.nonce ?? '',
    });
    r = await sc.next('SDS after the subscription grew');
    assert.deepEqual([...secretsOf(r).keys()], ['kubernetes://gw-cred-cacert']);
    ack(sc, r, names);
    const cds = await subscribe(sc, n, TYPE_URL.Cluster, []);
    assert.equal(cds.typeUrl, TYPE_URL.Cluster);
    assert.ok((cds.resources?.length ?? 0) + (cds.encodedResources?.length ?? 0) > 0);
  });

  test('a broken Secret is not served and is reported by name; the rest still is', async () => {
    const gw = sotw();
    const n = node('router', 'ingress-broken', GW);
    const names = ['kubernetes://gw-cred', 'kubernetes://gw-cred-cacert'];
    let r = await subscribe(gw, n, TYPE_URL.Secret, names);
    assert.equal(secretsOf(r).size, 2);
    // A key that does not match the certificate: the proxy would reject it.
    await change(tlsSecret('gw-cred', GW, A_CRT, B_KEY));
    r = await gw.next('SDS push after the Secret broke');
    assert.deepEqual([...secretsOf(r).keys()], ['kubernetes://gw-cred-cacert']);
    ack(gw, r, names);
    assert.ok(
      warnings.some(
        (w) =>
          w.includes('(Secret istio-system/gw-cred)') &&
          w.includes('does not match the certificate'),
      ),
      `a warning naming the broken Secret (${JSON.stringify(warnings)})`,
    );
    await change(tlsSecret('gw-cred', GW, A_CRT, A_KEY));
    r = await gw.next('SDS push after the Secret was fixed');
    assert.deepEqual(pair(secretsOf(r).get('kubernetes://gw-cred')), [A_CRT, A_KEY]);
    ack(gw, r, names);
  });

  test('/debug/config_dump shows the secrets with private keys redacted', async () => {
    const gw = sotw();
    const n = node('router', 'ingress-dump', GW);
    await subscribe(gw, n, TYPE_URL.Secret, ['kubernetes://gw-cred']);
    const res = await fetch(
      `http://127.0.0.1:${cp.monitoringPort}/debug/config_dump?proxyID=ingress-dump.${GW}`,
    );
    assert.equal(res.status, 200);
    const dump = (await res.json()) as { configs: Record<string, unknown>[] };
    const section = dump.configs.find((c) => String(c['@type']).endsWith('SecretsConfigDump'));
    const active = (section?.dynamicActiveSecrets ?? []) as { secret: Record<string, unknown> }[];
    assert.equal(active.length, 1);
    const [chain, key] = pair(active[0]?.secret);
    assert.equal(chain, A_CRT);
    assert.equal(key, '[redacted]');
    assert.ok(!JSON.stringify(dump).includes(b64(A_KEY)), 'the key appears nowhere in the dump');
  });

  test('/debug/configz does not show Secret data', async () => {
    const res = await fetch(`http://127.0.0.1:${cp.monitoringPort}/debug/configz`);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.ok(body.includes('"gw-cred"'), 'the Secret is listed');
    assert.ok(!body.includes(b64(A_KEY)) && !body.includes(b64(B_KEY)), 'no private key shown');
  });

  test('a Secret change sends a gateway SDS and nothing else', async () => {
    const gw = sotw();
    const n = node('router', 'ingress-only-sds', GW);
    const names = ['kubernetes://gw-cred'];
    await subscribe(gw, n, TYPE_URL.Secret, names);
    await subscribe(gw, n, TYPE_URL.Cluster, []);
    await subscribe(gw, n, TYPE_URL.ClusterLoadAssignment, ['outbound|80||nothing.example.com']);
    await settle();
    assert.equal(gw.buffered, 0);
    await change(tlsSecret('gw-cred', GW, B_CRT, B_KEY));
    const r = await gw.next('SDS push');
    assert.equal(r.typeUrl, TYPE_URL.Secret);
    ack(gw, r, names);
    await settle();
    assert.equal(gw.buffered, 0, 'only SDS was pushed');
  });
});
