// Issue 4, "What must be shown": every protocol a service speaks, on real sockets, through a
// Trellis mesh driven by a real control plane — app → client sidecar (its explicit HTTP proxy
// port, as HTTP_PROXY / grpc_proxy hands it to apps in local mode) → the server pod's own sidecar
// (the pod's `trellis.io/inbound-ports` inbound listener) → the application, and client → ingress
// gateway → server sidecar → application. Routing comes from real VirtualServices: the header
// route `end-user: jason` picks subset v2, everything else v1; a TCP route sends the `tcp-` port
// to v2; the gateway's VirtualService sends /hello to v2.
//
// How each protocol travels through the explicit proxy port (what Istio users' clients do):
// - HTTP/1.1: absolute-form requests (`GET http://echo:9080/ HTTP/1.1`).
// - HTTP/2: h2c with prior knowledge to the proxy port, `:authority` naming the service; the
//   listener's codec is AUTO, so each stream is routed like a captured HTTP/2 request.
// - gRPC: @grpc/grpc-js honours `grpc_proxy` (then `http_proxy`) and tunnels with CONNECT; the
//   CONNECT is routed once (as `/` on its authority), the tunnel then carries h2c to the server
//   sidecar, whose inbound HTTP connection manager serves each gRPC call.
// - gRPC-Web: a browser-style HTTP/1.1 POST (`application/grpc-web-text`) to the Service's
//   `grpc-web` port goes over HTTP/2 to the server sidecar, whose gRPC-Web filter turns it into
//   gRPC for the app and the reply's trailers into the body's trailer frame.
// - WebSocket (`ws`): an Upgrade sent to the proxy port with the service as Host (routed per
//   request, like a captured upgrade), or a CONNECT tunnel as proxy agents do.
// - TCP: CONNECT to the `tcp-` port (a CONNECT virtual host of `http_proxy`, routed by the
//   VirtualService's `tcp` routes), then raw bytes; and a peer's raw connection to the server
//   sidecar's inbound listener.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { createCa, type CertificateAuthority } from '@trellis/testing';
import {
  ECHO_SERVICE,
  PORTS,
  eventually,
  freePort,
  put,
  requestLines,
  startMesh,
  type Mesh,
  type Seen,
} from './mesh-fixture.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function httpGet(port: number, path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A gRPC-Web text call (what a browser's grpc-web client sends) through the explicit proxy. */
function grpcWebText(
  port: number,
  url: string,
  message: unknown,
): Promise<{ status: number; headers: IncomingHttpHeaders; frames: Buffer[] }> {
  const payload = Buffer.from(JSON.stringify(message));
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: url,
        method: 'POST',
        headers: {
          host: new URL(url).host,
          'content-type': 'application/grpc-web-text',
          accept: 'application/grpc-web-text',
          'x-grpc-web': '1',
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('latin1')));
        res.on('end', () => {
          // Each frame is base64 on its own: decode group by group, then split the frames.
          const body = Buffer.concat(
            (text.match(/[^=]*={0,2}/g) ?? []).filter(Boolean).map((g) => Buffer.from(g, 'base64')),
          );
          const frames: Buffer[] = [];
          for (let i = 0; i < body.length;) {
            const len = body.readUInt32BE(i + 1);
            frames.push(body.subarray(i, i + 5 + len));
            i += 5 + len;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, frames });
        });
      },
    );
    req.on('error', reject);
    req.end(frame.toString('base64'));
  });
}

/** A GET over TLS to 127.0.0.1:port with `sni`, trusting `ca`; `alpn` picks HTTP/1.1 or h2. */
function httpsGet(
  port: number,
  path: string,
  sni: string,
  ca: string,
  alpn: 'http/1.1' | 'h2',
): Promise<Reply & { alpn: string | false; peerCert: string }> {
  if (alpn === 'h2') {
    return new Promise((resolve, reject) => {
      const session = h2connect(`https://127.0.0.1:${port}`, { servername: sni, ca });
      session.on('error', reject);
      const req = session.request({ ':path': path, ':authority': sni });
      let body = '';
      let headers: IncomingHttpHeaders = {};
      req.on('response', (h) => (headers = h as IncomingHttpHeaders));
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('error', reject);
      req.on('end', () => {
        const sock = session.socket as unknown as TLSSocket;
        const out = {
          status: Number(headers[':status']),
          headers,
          body,
          alpn: sock.alpnProtocol ?? false,
          peerCert: sock.getPeerCertificate().fingerprint256,
        };
        session.close();
        resolve(out);
      });
      req.end();
    });
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: sni,
        ca,
        headers: { host: sni },
        agent: new HttpsAgent({ ALPNProtocols: ['http/1.1'], keepAlive: false }),
      },
      (res) => {
        let body = '';
        const sock = res.socket as TLSSocket;
        const alpnNegotiated = sock.alpnProtocol ?? false;
        const peerCert = sock.getPeerCertificate().fingerprint256;
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            alpn: alpnNegotiated,
            peerCert,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Whether a TLS handshake with `sni` completes (the gateway closes chains no server matches). */
function handshake(port: number, sni: string, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: sni, ca }, () => {
      s.end();
      resolve('ok');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.setTimeout(5000, () => {
      s.destroy();
      resolve('timeout');
    });
  });
}

/** An absolute-form request through the explicit HTTP proxy port, as an app with HTTP_PROXY sends. */
function viaProxy(port: number, url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return httpGet(port, url, { host: new URL(url).host, ...headers });
}

/** A CONNECT tunnel through the explicit proxy port: the status and, on 200, the socket. */
function connectTunnel(
  port: number,
  authority: string,
): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority },
    });
    req.on('connect', (res, socket, head) => {
      if (head.length > 0) socket.unshift(head);
      resolve({ status: res.statusCode ?? 0, socket });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, socket: res.socket });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads from a socket until `want` bytes arrived. */
function readBytes(socket: Socket, want: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (c: Buffer): void => {
      got += c.toString();
      if (got.length >= want) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => resolve(got));
  });
}

/** Sends one message on an open WebSocket and resolves with the echo. */
async function wsRoundTrip(ws: WebSocket, msg: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const reply = new Promise<string>((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve(d.toString()));
    ws.once('error', reject);
  });
  ws.send(msg);
  return reply;
}

let dir: string;
let mesh: Mesh;

function lastSeen(v: 'v1' | 'v2', path: string): Seen | undefined {
  return mesh.apps[v].seen.findLast((s) => s.path === path);
}

describe('mesh protocols through sidecars and a gateway', { timeout: 120_000 }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-mesh-'));
    mesh = await startMesh(dir);
    // The first routed reply: the client sidecar has its routes, the server sidecars theirs.
    await eventually('a routed reply through both sidecars', async () => {
      const r = await viaProxy(mesh.httpProxyPort, `http://echo:${PORTS.http}/warmup`);
      return r.status === 200 ? r : undefined;
    });
  });
  after(async () => {
    await mesh?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('HTTP/1.1: a VirtualService header route picks the subset, through the server sidecar', async () => {
    const plain = await viaProxy(mesh.httpProxyPort, `http://echo:${PORTS.http}/h1?x=1`);
    assert.equal(plain.status, 200);
    const got = JSON.parse(plain.body) as Seen;
    assert.equal(got.version, 'v1');
    assert.equal(got.path, '/h1?x=1');
    assert.equal(got.httpVersion, '1.1');
    assert.ok(got.headers['x-request-id'], 'the client sidecar adds x-request-id');
    assert.ok(plain.headers['x-envoy-upstream-service-time'] !== undefined);

    const jason = await viaProxy(mesh.httpProxyPort, `http://echo:${PORTS.http}/h1-jason`, {
      'end-user': 'jason',
    });
    assert.equal(jason.status, 200);
    assert.equal((JSON.parse(jason.body) as Seen).version, 'v2');
    assert.equal(lastSeen('v1', '/h1-jason'), undefined, 'v1 never saw the jason request');

    // Both hops reported the request: the client sidecar as source, v2's sidecar as destination.
    const dest = await eventually('the destination report', async () => {
      const l = await requestLines(
        mesh.sidecars.v2,
        'reporter="destination"',
        'response_code="200"',
        'request_protocol="http"',
      );
      return l.length > 0 ? l : undefined;
    });
    assert.match(dest[0] ?? '', /destination_workload="echo-v2"/);
    assert.match(dest[0] ?? '', /destination_canonical_revision="v2"/);
    const src = await requestLines(
      mesh.client,
      'reporter="source"',
      'destination_canonical_revision="v2"',
      'response_code="200"',
    );
    assert.ok(src.length > 0, 'the client sidecar reports the v2 request');
  });

  test('HTTP/2: h2c prior knowledge to the proxy port is routed per stream and stays HTTP/2 end to end', async () => {
    const session = h2connect(`http://127.0.0.1:${mesh.httpProxyPort}`);
    session.on('error', () => undefined);
    try {
      const get = (path: string, extra: Record<string, string> = {}): Promise<Reply> =>
        new Promise((resolve, reject) => {
          const s = session.request({
            ':method': 'GET',
            ':path': path,
            ':authority': `echo:${PORTS.http2}`,
            ...extra,
          });
          let status = 0;
          let headers: IncomingHttpHeaders = {};
          let body = '';
          s.on('response', (h) => {
            status = Number(h[':status']);
            headers = h;
          });
          s.on('data', (c: Buffer) => (body += c.toString()));
          s.on('end', () => resolve({ status, headers, body }));
          s.on('error', reject);
          s.end();
        });
      const [a, b] = await Promise.all([get('/h2-a'), get('/h2-b', { 'end-user': 'jason' })]);
      assert.equal(a.status, 200, a.body);
      assert.equal(b.status, 200, b.body);
      const sa = JSON.parse(a.body) as Seen & { authority: string };
      const sb = JSON.parse(b.body) as Seen & { authority: string };
      assert.equal(sa.version, 'v1');
      assert.equal(sb.version, 'v2', 'two streams of one connection take different routes');
      assert.equal(sa.httpVersion, '2.0', 'the application was reached with HTTP/2');
      assert.equal(sb.httpVersion, '2.0');
      assert.equal(sa.authority, `echo:${PORTS.http2}`);
      assert.ok(a.headers['x-envoy-upstream-service-time'] !== undefined);
    } finally {
      session.close();
    }
  });

  test('gRPC with @grpc/grpc-js via grpc_proxy (CONNECT): unary and server streaming with trailers', async () => {
    const saved = {
      grpc_proxy: process.env.grpc_proxy,
      no_grpc_proxy: process.env.no_grpc_proxy,
      no_proxy: process.env.no_proxy,
    };
    process.env.grpc_proxy = `http://127.0.0.1:${mesh.httpProxyPort}`;
    delete process.env.no_grpc_proxy;
    delete process.env.no_proxy;
    const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
    let client: grpc.Client;
    try {
      client = new Client(`echo:${PORTS.grpc}`, grpc.credentials.createInsecure());
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    try {
      const c = client as unknown as {
        Say(
          req: { msg: string },
          md: grpc.Metadata,
          cb: (e: grpc.ServiceError | null, r?: { msg: string; version: string }) => void,
        ): grpc.ClientUnaryCall;
        Count(req: { n: number }): grpc.ClientReadableStream<{ i: number; version: string }>;
      };
      let trailers: grpc.Metadata | undefined;
      const reply = await new Promise<{ msg: string; version: string }>((resolve, reject) => {
        const call = c.Say({ msg: 'hello' }, new grpc.Metadata(), (e, r) =>
          e || !r ? reject(e ?? new Error('no reply')) : resolve(r),
        );
        call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
      });
      assert.deepEqual(reply, { msg: 'hello', version: 'v1' });
      await eventually('the status', () => Promise.resolve(trailers));
      assert.deepEqual(trailers?.get('x-version'), ['v1'], 'trailers cross both sidecars');

      const items: { i: number; version: string }[] = [];
      const status = await new Promise<grpc.StatusObject>((resolve, reject) => {
        const stream = c.Count({ n: 5 });
        stream.on('data', (d: { i: number; version: string }) => items.push(d));
        stream.on('status', resolve);
        stream.on('error', reject);
      });
      assert.equal(status.code, grpc.status.OK);
      assert.deepEqual(status.metadata.get('x-version'), ['v1']);
      assert.deepEqual(
        items.map((d) => d.i),
        [0, 1, 2, 3, 4],
      );
      assert.ok(items.every((d) => d.version === 'v1'));

      // The server sidecar served the calls as gRPC over its inbound HTTP connection manager.
      const lines = await eventually('the destination gRPC report', async () => {
        const l = await requestLines(
          mesh.sidecars.v1,
          'reporter="destination"',
          'request_protocol="grpc"',
          'grpc_response_status="0"',
        );
        return l.length > 0 ? l : undefined;
      });
      assert.match(lines[0] ?? '', /destination_service="echo\.default\.svc\.cluster\.local"/);
    } finally {
      client.close();
    }
  });

  test('gRPC-Web (a GRPC-WEB port): a browser-style text call over HTTP/1.1, trailers in the body', async () => {
    const r = await grpcWebText(mesh.httpProxyPort, `http://echo:${PORTS.grpcWeb}/echo.Echo/Say`, {
      msg: 'from a browser',
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/grpc-web-text+proto');
    assert.equal(r.frames.length, 2, 'one message and the trailer frame');
    const [message, trailer] = r.frames as [Buffer, Buffer];
    assert.equal(message[0], 0);
    const reply = JSON.parse(message.subarray(5).toString()) as { msg: string; version: string };
    assert.equal(reply.msg, 'from a browser');
    assert.equal(trailer[0], 0x80);
    const trailers = trailer.subarray(5).toString();
    assert.match(trailers, /grpc-status:0\r\n/);
    assert.match(trailers, new RegExp(`x-version:${reply.version}\\r\\n`));
  });

  test('WebSocket with ws: an Upgrade to the proxy port is routed by the VirtualService', async () => {
    const ws = new WebSocket(`ws://echo:${PORTS.http}/ws`, {
      headers: { 'end-user': 'jason' },
      createConnection: () => netConnect(mesh.httpProxyPort, '127.0.0.1'),
    });
    try {
      assert.equal(await wsRoundTrip(ws, 'ping'), 'v2:ping');
      const next = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
      ws.send('again');
      assert.equal(await next, 'v2:again', 'the upgraded connection stays open both ways');
    } finally {
      ws.close();
    }
  });

  test('WebSocket with ws through a CONNECT tunnel', async () => {
    const t = await connectTunnel(mesh.httpProxyPort, `echo:${PORTS.http}`);
    assert.equal(t.status, 200);
    const ws = new WebSocket(`ws://echo:${PORTS.http}/ws-tunnel`, {
      createConnection: () => t.socket,
    });
    try {
      // The CONNECT is routed as `/` on its authority: the default route, v1.
      assert.equal(await wsRoundTrip(ws, 'hi'), 'v1:hi');
      assert.ok(lastSeen('v1', '/ws-tunnel'), 'v1 accepted the WebSocket');
    } finally {
      ws.close();
    }
  });

  test("raw TCP: CONNECT through the client sidecar's explicit proxy port follows the VirtualService tcp route", async () => {
    // `http_proxy` has a CONNECT virtual host per TCP service port; the VirtualService's `tcp`
    // route for the port sends it to v2, whose sidecar proxies it to the app's TCP echo.
    for (const authority of [`echo:${PORTS.tcp}`, `echo.default.svc.cluster.local:${PORTS.tcp}`]) {
      const { status, socket } = await connectTunnel(mesh.httpProxyPort, authority);
      try {
        assert.equal(status, 200, authority);
        const read = readBytes(socket, 'v2:'.length + 'hello'.length);
        socket.write('hello');
        assert.equal(await read, 'v2:hello', authority);
      } finally {
        socket.destroy();
      }
    }
  });

  test("raw TCP: a peer's connection to the server sidecar's inbound port is proxied to the app", async () => {
    // What a client sidecar's tcp_proxy dials for the `tcp-echo` port: the endpoint address, v2's
    // sidecar inbound listener (tcp_proxy → inbound|PORT|| → the application).
    const socket = netConnect(mesh.inbound.v2.tcp, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const read = readBytes(socket, 'v2:'.length + 'ping-pong'.length);
      socket.write('ping-pong');
      assert.equal(await read, 'v2:ping-pong');
      const more = readBytes(socket, 'again'.length);
      socket.write('again');
      assert.equal(await more, 'again', 'the connection carries bytes both ways until closed');
    } finally {
      socket.destroy();
    }
    const tcp = await eventually('the TCP report', async () => {
      const prom = await (
        await fetch(`http://127.0.0.1:${mesh.sidecars.v2.adminPort}/stats/prometheus`)
      ).text();
      return prom
        .split('\n')
        .find(
          (x) =>
            x.startsWith('istio_tcp_connections_opened_total{') &&
            x.includes('reporter="destination"'),
        );
    });
    assert.match(tcp, /destination_workload="echo-v2"/);
    assert.match(tcp, /destination_service="echo\.default\.svc\.cluster\.local"/);
    assert.match(tcp, /destination_service_name="echo"/);
    assert.match(tcp, /destination_service_namespace="default"/);
    assert.match(tcp, /request_protocol="tcp"/);
  });

  test('gateway: a Gateway and a bound VirtualService route /hello to the backend', async () => {
    const ok = await eventually('the gateway route', async () => {
      const r = await httpGet(mesh.gatewayPort, '/hello/world', { host: mesh.gatewayHost });
      return r.status === 200 ? r : undefined;
    });
    const got = JSON.parse(ok.body) as Seen;
    assert.equal(got.version, 'v2');
    assert.equal(got.path, '/hello/world');
    assert.ok(got.headers['x-forwarded-for'] !== undefined, 'the gateway sets x-forwarded-for');
    const lines = await eventually('the gateway report', async () => {
      const l = await requestLines(
        mesh.sidecars.v2,
        'reporter="destination"',
        'response_code="200"',
      );
      return l.some((x) => x.includes('source_workload="istio-ingressgateway-0"')) ? l : undefined;
    });
    assert.ok(lines.length > 0);

    // A host no Gateway server declares: no route (404 NR), and the backend sees nothing.
    const seenBefore = mesh.apps.v1.seen.length + mesh.apps.v2.seen.length;
    const nr = await httpGet(mesh.gatewayPort, '/hello', { host: 'other.example.com' });
    assert.equal(nr.status, 404);
    // A path the VirtualService does not route: 404 too.
    const noPath = await httpGet(mesh.gatewayPort, '/elsewhere', { host: mesh.gatewayHost });
    assert.equal(noPath.status, 404);
    assert.equal(mesh.apps.v1.seen.length + mesh.apps.v2.seen.length, seenBefore);
    const nrLines = await requestLines(mesh.gateway, 'response_code="404"', 'response_flags="NR"');
    assert.ok(nrLines.length > 0, 'the gateway reports the 404s with the NR flag');
  });
  test('gateway TLS: credentialName from a Secret, SNI, HTTP/1.1 and h2 by ALPN, a rotated certificate', async () => {
    const host = 'secure.example.com';
    const port = await freePort();
    const tlsSecret = (ca: CertificateAuthority, name: string) => {
      const leaf = ca.issue({ commonName: host, dnsNames: [host], usages: ['server'] });
      return {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: 'istio-system' },
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': Buffer.from(leaf.chain).toString('base64'),
          'tls.key': Buffer.from(leaf.key).toString('base64'),
        },
      };
    };
    const ca1 = createCa({ commonName: 'example root 1' });
    await put(mesh.store, tlsSecret(ca1, 'secure-credential'));
    // As in Istio's "Secure Gateways" task: an HTTPS server with tls.mode SIMPLE.
    await put(mesh.store, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'secure-gateway', namespace: 'istio-system' },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [
          {
            port: { number: port, name: 'https', protocol: 'HTTPS' },
            tls: { mode: 'SIMPLE', credentialName: 'secure-credential' },
            hosts: [host],
          },
        ],
      },
    });
    await put(mesh.store, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'secure', namespace: 'default' },
      spec: {
        hosts: [host],
        gateways: ['istio-system/secure-gateway'],
        http: [
          {
            route: [
              {
                destination: {
                  host: 'echo.default.svc.cluster.local',
                  subset: 'v2',
                  port: { number: PORTS.http },
                },
              },
            ],
          },
        ],
      },
    });
    const h1 = await eventually(
      'HTTPS through the gateway',
      async () => {
        const r = await httpsGet(port, '/secure-h1', host, ca1.cert, 'http/1.1').catch(
          () => undefined,
        );
        return r?.status === 200 ? r : undefined;
      },
      20_000,
    );
    assert.equal(h1.alpn, 'http/1.1');
    const seen1 = JSON.parse(h1.body) as Seen;
    assert.equal(seen1.version, 'v2');
    assert.equal(seen1.path, '/secure-h1');
    assert.equal(seen1.headers['x-forwarded-proto'], 'https');

    const h2 = await httpsGet(port, '/secure-h2', host, ca1.cert, 'h2');
    assert.equal(h2.status, 200);
    assert.equal(h2.alpn, 'h2', 'the gateway offers h2 by ALPN');
    assert.equal((JSON.parse(h2.body) as Seen).path, '/secure-h2');

    // No server for this name: no filter chain, the handshake fails.
    assert.notEqual(await handshake(port, 'other.example.com', ca1.cert), 'ok');
    // A client that does not trust the issuer refuses the gateway.
    const stranger = createCa({ commonName: 'someone else' });
    assert.notEqual(await handshake(port, host, stranger.cert), 'ok');

    // A new certificate from another authority: SDS pushes it, new connections get it.
    const ca2 = createCa({ commonName: 'example root 2' });
    await put(mesh.store, tlsSecret(ca2, 'secure-credential'));
    const rotated = await eventually(
      'the rotated certificate',
      async () => {
        const r = await httpsGet(port, '/secure-rotated', host, ca2.cert, 'http/1.1').catch(
          () => undefined,
        );
        return r?.status === 200 ? r : undefined;
      },
      20_000,
    );
    assert.notEqual(rotated.peerCert, h1.peerCert);
    assert.notEqual(await handshake(port, host, ca1.cert), 'ok', 'the old root no longer verifies');
  });
});
