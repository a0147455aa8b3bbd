// Secrets over ADS (SDS): subscribed by name when a listener or cluster references them and
// unsubscribed when unused (delta and SotW); a missing secret never holds warming back (the
// proxy goes live, connections needing it fail and say why); a secret that arrives or rotates
// takes effect for new connections without a listener restart; bad secrets are NACKed with the
// secret's name and why; /config_dump shows them with the private key redacted; /certs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import tls from 'node:tls';
import { TYPE_URL } from '@trellis/envoy';
import {
  CA,
  Harness,
  ads,
  caSecret,
  downstreamTls,
  handshake,
  inline,
  listener,
  plainBackend,
  routerHcm,
  serverCert,
  staticCluster,
  tlsCertificateSecret,
  upstreamTls,
  waitFor,
} from './tls-fixtures.js';

function gatewayListener(secret: string): ReturnType<typeof listener> {
  return listener('gateway', [
    {
      filterChainMatch: { serverNames: ['web.test'] },
      filters: [{ name: 'hcm', typedConfig: routerHcm('backend', 'gw') }],
      transportSocket: downstreamTls({
        commonTlsContext: {
          alpnProtocols: ['h2', 'http/1.1'],
          tlsCertificateSdsSecretConfigs: [{ name: secret, sdsConfig: ads }],
        },
      }),
    },
  ]);
}

function adminGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

test('sds (delta): subscribe, apply without waiting, rotate, NACK a bad secret, unsubscribe', async () => {
  const backend = await plainBackend();
  const h = await Harness.start('delta');
  try {
    // The listener is applied although its secret has not arrived (no warming on secrets).
    await h.configure(
      [staticCluster('backend', backend.port)],
      [gatewayListener('kubernetes://web')],
    );
    const port = await h.port('gateway');
    await waitFor(
      () => h.proxy.ads.status().types.secrets.subscribed.length > 0,
      'SDS subscription',
    );
    const sub = (await h.secretRequests()).find((r) => r.resourceNamesSubscribe?.length);
    assert.deepEqual(sub?.resourceNamesSubscribe, ['kubernetes://web']);
    assert.equal(h.proxy.state, 'LIVE');

    const early = await handshake(port, { servername: 'web.test', ca: CA.cert });
    assert.equal(early.ok, false);
    const factory = `listener.127.0.0.1_${port}.server_ssl_socket_factory`;
    assert.equal(h.counter(`${factory}.downstream_context_secrets_not_ready`), 1);

    // The secret arrives: new connections use it, without a listener change.
    const first = serverCert('web.test');
    const n1 = await h.push(TYPE_URL.Secret, [
      ['kubernetes://web', tlsCertificateSecret('kubernetes://web', first)],
    ]);
    assert.equal((await h.answer(TYPE_URL.Secret, n1)).error, undefined);
    await waitFor(() => h.proxy.secrets.active().has('kubernetes://web'), 'secret applied');
    const ok = await handshake(port, { servername: 'web.test', ca: CA.cert });
    assert.equal(ok.ok, true);
    const serialOf = (): Promise<string | undefined> =>
      new Promise((resolve) => {
        const s = tls.connect(
          { host: '127.0.0.1', port, servername: 'web.test', ca: CA.cert },
          () => {
            resolve(s.getPeerX509Certificate()?.serialNumber);
            s.destroy();
          },
        );
        s.on('error', () => resolve(undefined));
      });
    assert.equal(await serialOf(), first.serialNumber);
    assert.equal(h.counter('listener_manager.listener_modified'), 0, 'no listener change');

    // Rotation.
    const second = serverCert('web.test');
    const n2 = await h.push(TYPE_URL.Secret, [
      ['kubernetes://web', tlsCertificateSecret('kubernetes://web', second)],
    ]);
    await h.answer(TYPE_URL.Secret, n2);
    await waitFor(
      async () => (await serialOf()) === second.serialNumber,
      'the rotated certificate',
    );

    // A bad secret (the key of another certificate) is NACKed with its name and why; the
    // previous one stays.
    const bad = {
      name: 'kubernetes://web',
      tlsCertificate: { certificateChain: inline(second.chain), privateKey: inline(first.key) },
    };
    const n3 = await h.push(TYPE_URL.Secret, [['kubernetes://web', bad]]);
    const nack = await h.answer(TYPE_URL.Secret, n3);
    assert.match(
      nack.error ?? '',
      /secret "kubernetes:\/\/web": tls_certificate\.private_key: does not match the certificate/,
    );
    const notPem = {
      name: 'kubernetes://web',
      tlsCertificate: { certificateChain: inline('nope'), privateKey: inline('nope') },
    };
    const n4 = await h.push(TYPE_URL.Secret, [['kubernetes://web', notPem]]);
    assert.match(
      (await h.answer(TYPE_URL.Secret, n4)).error ?? '',
      /tls_certificate\.certificate_chain: no PEM certificate found/,
    );
    assert.equal(await serialOf(), second.serialNumber);

    // Unsupported fields of a secret are NACKed with their path.
    const n5 = await h.push(TYPE_URL.Secret, [
      [
        'kubernetes://web',
        { name: 'kubernetes://web', sessionTicketKeys: { keys: [inline('k')] } },
      ],
    ]);
    assert.match((await h.answer(TYPE_URL.Secret, n5)).error ?? '', /session_ticket_keys/);

    // /config_dump: the secret with its key redacted; /certs.
    const dump = JSON.parse(await adminGet(h.proxy.adminPort, '/config_dump')) as {
      configs: { '@type': string; dynamic_active_secrets?: { name: string; secret: unknown }[] }[];
    };
    const secrets = dump.configs.find((c) => c['@type'].endsWith('SecretsConfigDump'));
    assert.equal(secrets?.dynamic_active_secrets?.[0]?.name, 'kubernetes://web');
    const text = JSON.stringify(secrets);
    assert.ok(text.includes('[redacted]'));
    assert.ok(!text.includes('PRIVATE KEY'));
    const certs = JSON.parse(await adminGet(h.proxy.adminPort, '/certs')) as {
      certificates: { cert_chain: { serial_number: string; subject_alt_names: unknown[] }[] }[];
    };
    assert.equal(
      certs.certificates[0]?.cert_chain[0]?.serial_number,
      second.serialNumber.toLowerCase(),
    );
    assert.deepEqual(certs.certificates[0]?.cert_chain[0]?.subject_alt_names, [
      { dns: 'web.test' },
    ]);

    // The listener goes away: the secret is unsubscribed.
    const ln = await h.push(TYPE_URL.Listener, [], ['gateway']);
    await h.answer(TYPE_URL.Listener, ln);
    await waitFor(() => h.proxy.ads.status().types.secrets.subscribed.length === 0, 'unsubscribed');
    await waitFor(
      () =>
        h.ads.delta[0]?.requests.some(
          (r) =>
            r.typeUrl === TYPE_URL.Secret &&
            (r.resourceNamesUnsubscribe ?? []).includes('kubernetes://web'),
        ),
      'SDS unsubscription',
    );
  } finally {
    await h.close();
    await backend.close();
  }
});

test('sds (SotW): the subscription names the secrets; a validation context secret verifies upstreams', async () => {
  const { tlsBackend } = await import('./tls-fixtures.js');
  const upstream = await tlsBackend(serverCert('api.test'), { h2: false });
  const h = await Harness.start('sotw');
  try {
    const cluster = staticCluster('api', upstream.port, {
      transportSocket: upstreamTls({
        sni: 'api.test',
        commonTlsContext: {
          combinedValidationContext: {
            defaultValidationContext: {
              matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'api.test' } }],
            },
            validationContextSdsSecretConfig: { name: 'api-ca', sdsConfig: ads },
          },
        },
      }),
    });
    const out = listener('out', [
      { filters: [{ name: 'hcm', typedConfig: routerHcm('api', 'out') }] },
    ]);
    delete (out as { listenerFilters?: unknown }).listenerFilters;
    await h.configure([cluster], [out]);
    const s = await h.sotw();
    const sub = await s.take(
      (r) => r.typeUrl === TYPE_URL.Secret && (r.resourceNames ?? []).length > 0,
      'SotW SDS request',
    );
    assert.deepEqual(sub.resourceNames, ['api-ca']);
    const port = await h.port('out');
    const get = (): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port, path: '/x', agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject),
      );
    const missing = await get();
    assert.equal(missing.status, 503);
    assert.match(missing.body, /Secret is not supplied by SDS: api-ca/);
    assert.equal(
      h.counter('cluster.api.client_ssl_socket_factory.upstream_context_secrets_not_ready'),
      1,
    );
    const n = await h.push(TYPE_URL.Secret, [['api-ca', caSecret('api-ca')]]);
    assert.equal((await h.answer(TYPE_URL.Secret, n)).error, undefined);
    await waitFor(() => h.proxy.secrets.active().has('api-ca'), 'secret applied');
    const ok = await get();
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'tls backend /x HTTP/1.1');
  } finally {
    await h.close();
    await upstream.close();
  }
});

test('sds: secrets that never arrive (default, ROOTCA) do not stall warming; 503 UF names them', async () => {
  const backend = await plainBackend();
  const h = await Harness.start('delta');
  try {
    const mesh = staticCluster('outbound|9080||reviews', backend.port, {
      transportSocketMatches: [
        {
          name: 'tlsMode-istio',
          match: { tlsMode: 'istio' },
          transportSocket: upstreamTls({
            sni: 'outbound_.9080_._.reviews.default.svc.cluster.local',
            commonTlsContext: {
              alpnProtocols: ['istio-peer-exchange', 'istio'],
              tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: ads }],
              combinedValidationContext: {
                defaultValidationContext: {},
                validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: ads },
              },
            },
          }),
        },
        {
          name: 'tlsMode-disabled',
          match: {},
          transportSocket: {
            name: 'envoy.transport_sockets.raw_buffer',
            typedConfig: {
              '@type':
                'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
            },
          },
        },
      ],
    });
    mesh.loadAssignment = {
      clusterName: 'outbound|9080||reviews',
      endpoints: [
        {
          lbEndpoints: [
            {
              endpoint: {
                address: { socketAddress: { address: '127.0.0.1', portValue: backend.port } },
              },
              metadata: {
                filterMetadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } },
              },
            },
          ],
        },
      ],
    };
    const out = listener('out', [
      { filters: [{ name: 'hcm', typedConfig: routerHcm('outbound|9080||reviews', 'out') }] },
    ]);
    delete (out as { listenerFilters?: unknown }).listenerFilters;
    await h.configure([mesh], [out]);
    await h.proxy.whenReady();
    assert.equal(h.proxy.state, 'LIVE');
    await waitFor(
      () => h.proxy.ads.status().types.secrets.subscribed.length > 0,
      'SDS subscription',
    );
    const sub = (await h.secretRequests()).find((r) => r.resourceNamesSubscribe?.length);
    assert.deepEqual([...(sub?.resourceNamesSubscribe ?? [])].sort(), ['ROOTCA', 'default']);
    const port = await h.port('out');
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject),
    );
    assert.equal(r.status, 503);
    assert.match(r.body, /Secret is not supplied by SDS: default/);
    assert.equal(backend.seen.length, 0);
    const dump = JSON.parse(await adminGet(h.proxy.adminPort, '/config_dump')) as {
      configs: { '@type': string; dynamic_warming_secrets?: { name: string }[] }[];
    };
    const secrets = dump.configs.find((c) => c['@type'].endsWith('SecretsConfigDump'));
    assert.deepEqual(
      secrets?.dynamic_warming_secrets?.map((s) => s.name),
      ['ROOTCA', 'default'],
    );
  } finally {
    await h.close();
    await backend.close();
  }
});
