// Port protocols: Istio's names for ServiceEntry protocols, and Kubernetes port names and
// appProtocol read as Istio reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  afterTlsTermination,
  isAutoProtocol,
  isHttp2Protocol,
  isHttpProtocol,
  isTcpProtocol,
  isTlsProtocol,
  parseProtocol,
  protocolForKubePort,
  type Protocol,
} from '../src/index.js';

test('protocol: names parse case-insensitively to Istio spellings', () => {
  const table: [string, Protocol][] = [
    ['http', 'HTTP'],
    ['HTTP', 'HTTP'],
    ['Http2', 'HTTP2'],
    ['https', 'HTTPS'],
    ['grpc', 'GRPC'],
    ['GRPC-WEB', 'GRPC-Web'],
    ['tcp', 'TCP'],
    ['tls', 'TLS'],
    ['udp', 'UDP'],
    ['mongo', 'Mongo'],
    ['redis', 'Redis'],
    ['MySQL', 'MySQL'],
    ['http_proxy', 'HTTP_PROXY'],
    ['', 'UnsupportedProtocol'],
    ['thrift', 'UnsupportedProtocol'],
    ['http-foo', 'UnsupportedProtocol'],
  ];
  for (const [name, want] of table) assert.equal(parseProtocol(name), want, name);
});

test('protocol: Kubernetes port names, appProtocol and transport', () => {
  const table: [number, string | undefined, string | undefined, string | undefined, Protocol][] = [
    // port, name, transport, appProtocol → protocol
    [9080, 'http', undefined, undefined, 'HTTP'],
    [9080, 'http-web', 'TCP', undefined, 'HTTP'],
    [80, 'HTTP-api', undefined, undefined, 'HTTP'],
    [8080, 'http2', undefined, undefined, 'HTTP2'],
    [8080, 'http2-foo', undefined, undefined, 'HTTP2'],
    [9090, 'grpc', undefined, undefined, 'GRPC'],
    [9090, 'grpc-status', undefined, undefined, 'GRPC'],
    [9090, 'grpc-web', undefined, undefined, 'GRPC-Web'],
    [9090, 'grpc-web-ui', undefined, undefined, 'GRPC-Web'],
    [9000, 'tcp', undefined, undefined, 'TCP'],
    [9000, 'tcp-db', undefined, undefined, 'TCP'],
    [443, 'tls', undefined, undefined, 'TLS'],
    [443, 'https', undefined, undefined, 'HTTPS'],
    [443, 'https-admin', undefined, undefined, 'HTTPS'],
    [27017, 'mongo', undefined, undefined, 'Mongo'],
    [6379, 'redis', undefined, undefined, 'Redis'],
    [3306, 'mysql', undefined, undefined, 'MySQL'],
    [53, 'dns', 'UDP', undefined, 'UDP'],
    [53, 'http', 'UDP', 'http', 'UDP'],
    [8000, 'web', undefined, undefined, 'UnsupportedProtocol'],
    [8000, '', undefined, undefined, 'UnsupportedProtocol'],
    [8000, undefined, undefined, undefined, 'UnsupportedProtocol'],
    [8000, 'httpfoo', undefined, undefined, 'UnsupportedProtocol'],
    // Well-known server-first ports are TCP when the name says nothing.
    [3306, 'db', undefined, undefined, 'TCP'],
    [27017, '', undefined, undefined, 'TCP'],
    [25, 'smtp', undefined, undefined, 'TCP'],
    [53, 'dns', 'TCP', undefined, 'TCP'],
    // appProtocol wins over the name.
    [8000, 'tcp', undefined, 'http', 'HTTP'],
    [8000, 'http', undefined, 'grpc', 'GRPC'],
    [8000, 'http', undefined, 'kubernetes.io/h2c', 'HTTP2'],
    [8000, 'tcp', undefined, 'kubernetes.io/ws', 'HTTP'],
    [8000, 'tcp', undefined, 'kubernetes.io/wss', 'HTTPS'],
    [8000, 'http', undefined, 'example.com/custom', 'UnsupportedProtocol'],
    [8000, 'http', 'SCTP', undefined, 'HTTP'],
  ];
  for (const [port, name, transport, app, want] of table)
    assert.equal(
      protocolForKubePort(port, name, transport, app),
      want,
      `${port}/${name}/${transport}/${app}`,
    );
});

test('protocol: families', () => {
  assert.ok(isHttpProtocol('GRPC-Web') && isHttpProtocol('HTTP_PROXY') && !isHttpProtocol('HTTPS'));
  assert.ok(isHttp2Protocol('GRPC') && !isHttp2Protocol('HTTP'));
  assert.ok(isTcpProtocol('MySQL') && isTcpProtocol('HTTPS') && !isTcpProtocol('HTTP'));
  assert.ok(isTlsProtocol('TLS') && !isTlsProtocol('TCP'));
  assert.ok(isAutoProtocol('UnsupportedProtocol') && !isAutoProtocol('TCP'));
  assert.equal(afterTlsTermination('HTTPS'), 'HTTP');
  assert.equal(afterTlsTermination('TLS'), 'TCP');
  assert.equal(afterTlsTermination('GRPC'), 'GRPC');
});
