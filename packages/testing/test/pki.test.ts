// The test PKI issues certificates that node:crypto parses and verifies and that real TLS
// handshakes accept (and reject when they should).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import {
  createServer,
  connect,
  type ConnectionOptions,
  type TLSSocket,
  type Server,
  type TlsOptions,
} from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  createCa,
  derOid,
  derTime,
  derUnsignedInteger,
  selfSigned,
  spiffeId,
} from '../src/index.js';

test('pki: DER primitives', () => {
  assert.equal(derOid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(derOid('2.5.29.17').toString('hex'), '0603551d11');
  assert.equal(derUnsignedInteger(Buffer.from([0x80])).toString('hex'), '02020080');
  assert.equal(derUnsignedInteger(Buffer.from([0, 0, 5])).toString('hex'), '020105');
  assert.equal(
    derTime(new Date(Date.UTC(2030, 0, 2, 3, 4, 5))).toString('latin1'),
    '\x17\x0d300102030405Z',
  );
  assert.equal(
    derTime(new Date(Date.UTC(2050, 0, 2, 3, 4, 5))).toString('latin1'),
    '\x18\x0f20500102030405Z',
  );
});

test('pki: a CA and a leaf with DNS, URI, IP and e-mail SANs parse and verify', () => {
  const ca = createCa({ commonName: 'Test Root' });
  const caCert = new X509Certificate(ca.cert);
  assert.equal(caCert.ca, true);
  assert.equal(caCert.subject, 'O=Trellis\nCN=Test Root');
  assert.ok(caCert.verify(createPublicKey(ca.key)), 'self-signed root verifies');

  const sa = spiffeId('default', 'sleep');
  assert.equal(sa, 'spiffe://cluster.local/ns/default/sa/sleep');
  const leaf = ca.issue({
    commonName: 'sleep',
    dnsNames: ['sleep.default.svc.cluster.local', '*.example.com'],
    uris: [sa],
    ipAddresses: ['127.0.0.1', '::1'],
    emails: ['ops@example.com'],
  });
  const x = new X509Certificate(leaf.cert);
  assert.equal(x.ca, false);
  assert.equal(x.issuer, 'O=Trellis\nCN=Test Root');
  assert.equal(x.subject, 'CN=sleep');
  assert.equal(
    x.subjectAltName,
    'email:ops@example.com, DNS:sleep.default.svc.cluster.local, DNS:*.example.com, ' +
      `URI:${sa}, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`,
  );
  assert.ok(x.verify(caCert.publicKey), 'signed by the CA');
  assert.ok(!x.verify(createCa().certificate.publicKey), 'not signed by another CA');
  assert.ok(x.checkIssued(caCert));
  assert.equal(x.checkHost('sleep.default.svc.cluster.local'), 'sleep.default.svc.cluster.local');
  assert.equal(x.checkHost('api.example.com'), '*.example.com');
  assert.equal(x.checkHost('other.test'), undefined);
  assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(x.checkEmail('ops@example.com'), 'ops@example.com');
  assert.ok(x.checkPrivateKey(leaf.keyObject));
  assert.equal(x.publicKey.asymmetricKeyType, 'ec');
  assert.equal(leaf.serialNumber, x.serialNumber);
  assert.equal(leaf.chain, leaf.cert, 'a leaf of a root has no intermediates');
});

test('pki: validity periods, RSA keys, SPIFFE-only certificates, intermediates', () => {
  const ca = createCa({ keyType: 'rsa' });
  assert.equal(ca.certificate.publicKey.asymmetricKeyType, 'rsa');
  const notBefore = new Date(Date.UTC(2020, 0, 1));
  const notAfter = new Date(Date.UTC(2021, 0, 1));
  const old = ca.issue({ dnsNames: ['old.test'], notBefore, notAfter, keyType: 'rsa' });
  assert.equal(new Date(old.certificate.validFrom).getTime(), notBefore.getTime());
  assert.equal(new Date(old.certificate.validTo).getTime(), notAfter.getTime());
  assert.ok(old.certificate.verify(ca.certificate.publicKey));

  // No subject: the SAN carries the identity (and is critical).
  const id = ca.issue({ uris: [spiffeId('ns1', 'sa1', 'example.org')] });
  assert.equal(id.certificate.subject, undefined);
  assert.equal(id.certificate.subjectAltName, 'URI:spiffe://example.org/ns/ns1/sa/sa1');

  const inter = ca.intermediate({ commonName: 'Intermediate' });
  assert.equal(inter.certificate.ca, true);
  assert.ok(inter.certificate.verify(ca.certificate.publicKey));
  const leaf = inter.issue({ dnsNames: ['deep.test'] });
  assert.ok(leaf.certificate.verify(inter.certificate.publicKey));
  assert.equal(leaf.chain, leaf.cert + inter.cert, 'the chain carries the intermediate');

  const self = selfSigned({ dnsNames: ['self.test'] });
  assert.ok(self.certificate.verify(self.certificate.publicKey));
});

async function tlsServer(
  options: TlsOptions,
): Promise<{ server: Server; port: number; peers: (string | undefined)[] }> {
  const peers: (string | undefined)[] = [];
  const server = createServer(options, (s: TLSSocket) => {
    const peer = s.getPeerX509Certificate();
    peers.push(peer?.subjectAltName);
    s.end('hello');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, peers };
}

function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ ok: true; data: string } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1', ...options });
    let data = '';
    c.on('data', (d: Buffer) => (data += d.toString()));
    c.on('end', () => resolve({ ok: true, data }));
    c.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

test('pki: real TLS handshakes with server and client certificates', async () => {
  const ca = createCa();
  const inter = ca.intermediate();
  const server = inter.issue({ dnsNames: ['api.test'], usages: ['server'] });
  const client = ca.issue({ uris: [spiffeId('default', 'sleep')], usages: ['client'] });
  const s = await tlsServer({
    key: server.key,
    cert: server.chain,
    ca: ca.cert,
    requestCert: true,
    rejectUnauthorized: true,
  });
  try {
    // Server verified through the intermediate the server sends; client certificate accepted.
    const good = await handshake(s.port, {
      servername: 'api.test',
      ca: ca.cert,
      key: client.key,
      cert: client.cert,
    });
    assert.deepEqual(good, { ok: true, data: 'hello' });
    assert.deepEqual(s.peers, ['URI:spiffe://cluster.local/ns/default/sa/sleep']);

    // The wrong host name fails the client's identity check.
    const wrongHost = await handshake(s.port, {
      servername: 'other.test',
      ca: ca.cert,
      key: client.key,
      cert: client.cert,
    });
    assert.deepEqual(wrongHost, { ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });

    // Another root does not verify the server.
    const other = createCa();
    const untrusted = await handshake(s.port, {
      servername: 'api.test',
      ca: other.cert,
      key: client.key,
      cert: client.cert,
    });
    assert.equal(untrusted.ok, false);

    // An expired certificate is refused.
    const expired = ca.issue({
      dnsNames: ['api.test'],
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const s2 = await tlsServer({ key: expired.key, cert: expired.cert });
    try {
      const r = await handshake(s2.port, { servername: 'api.test', ca: ca.cert });
      assert.deepEqual(r, { ok: false, code: 'CERT_HAS_EXPIRED' });
    } finally {
      s2.server.close();
    }
  } finally {
    s.server.close();
  }
});
