// Fixtures of the tls-*.test.ts suites: a whole TrellisProxy driven by the scriptable fake ADS
// server (delta or SotW), a test PKI, backends (plain HTTP, HTTPS, HTTP/2 over TLS), builders
// for TLS listeners and clusters in Envoy's proto3-JSON shape, and TLS clients.
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import {
  CONFIG_TYPE_URL,
  TYPE_URL,
  type Cluster,
  type DeltaDiscoveryRequest,
  type FilterChain,
  type Listener,
  type Secret,
  type AnyMessage,
  type TransportSocket,
} from '@trellis/envoy';
import { createCa, type CertificateAuthority, type IssuedCertificate } from '@trellis/testing';
import { buildBootstrap, TrellisProxy, type XdsProtocol } from '../src/index.js';
import {
  deltaResponse,
  FakeAdsServer,
  sotwResponse,
  waitFor,
  type DeltaStream,
  type SotwStream,
} from './xds-fake-ads.js';

export { waitFor };

// ---- PKI: one mesh CA, certificates issued per test

export const CA: CertificateAuthority = createCa({ commonName: 'Trellis TLS Test CA' });
export const OTHER_CA: CertificateAuthority = createCa({ commonName: 'Untrusted CA' });
export const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';

export function serverCert(...dnsNames: string[]): IssuedCertificate {
  return CA.issue({ dnsNames, usages: ['server'] });
}

export function clientCert(uri: string, ca: CertificateAuthority = CA): IssuedCertificate {
  return ca.issue({ uris: [uri], usages: ['client'] });
}

// ---- Resource builders (proto3 JSON)

export const inline = (pem: string): { inlineString: string } => ({ inlineString: pem });
export const ads = { ads: {}, resourceApiVersion: 'V3' as const };

export function tlsCertificateSecret(name: string, c: IssuedCertificate): Secret {
  return {
    name,
    tlsCertificate: { certificateChain: inline(c.chain), privateKey: inline(c.key) },
  };
}

export function caSecret(name: string, ca: CertificateAuthority = CA): Secret {
  return { name, validationContext: { trustedCa: inline(ca.cert) } };
}

export function routerHcm(cluster: string, statPrefix = 'ingress'): AnyMessage {
  return {
    '@type': CONFIG_TYPE_URL.HttpConnectionManager,
    statPrefix,
    routeConfig: {
      name: 'local',
      virtualHosts: [
        {
          name: 'all',
          domains: ['*'],
          routes: [{ match: { prefix: '/' }, route: { cluster, timeout: '5s' } }],
        },
      ],
    },
    httpFilters: [
      {
        name: 'envoy.filters.http.router',
        typedConfig: { '@type': CONFIG_TYPE_URL.Router },
      },
    ],
  } as AnyMessage;
}

export function tcpProxy(cluster: string): AnyMessage {
  return { '@type': CONFIG_TYPE_URL.TcpProxy, statPrefix: cluster, cluster } as AnyMessage;
}

export function downstreamTls(ctx: Record<string, unknown>): TransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: { '@type': CONFIG_TYPE_URL.DownstreamTlsContext, ...ctx },
  };
}

export function upstreamTls(ctx: Record<string, unknown>): TransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: { '@type': CONFIG_TYPE_URL.UpstreamTlsContext, ...ctx },
  };
}

export function listener(
  name: string,
  chains: FilterChain[],
  extra: Partial<Listener> = {},
): Listener {
  return {
    name,
    address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    listenerFilters: [
      {
        name: 'envoy.filters.listener.tls_inspector',
        typedConfig: { '@type': CONFIG_TYPE_URL.TlsInspector },
      },
    ],
    filterChains: chains,
    ...extra,
  };
}

export function staticCluster(name: string, port: number, extra: Partial<Cluster> = {}): Cluster {
  return {
    name,
    type: 'STATIC',
    connectTimeout: '2s',
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } },
          ],
        },
      ],
    },
    ...extra,
  };
}

export function httpProtocolOptions(o: Record<string, unknown>): Record<string, AnyMessage> {
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': CONFIG_TYPE_URL.HttpProtocolOptions,
      ...o,
    },
  };
}

// ---- The proxy under a fake control plane

/** A TrellisProxy and the fake ADS server it talks to. */
export class Harness {
  #nonce = 0;
  #version = 0;

  private constructor(
    readonly ads: FakeAdsServer,
    readonly proxy: TrellisProxy,
    readonly protocol: XdsProtocol,
  ) {}

  static async start(protocol: XdsProtocol = 'delta'): Promise<Harness> {
    const ads = new FakeAdsServer();
    const port = await ads.start();
    const proxy = await TrellisProxy.start({
      bootstrap: buildBootstrap({
        ip: '127.0.0.1',
        podName: 'tls-0',
        namespace: 'default',
        serviceAccount: 'tls',
        xdsAddress: `127.0.0.1:${port}`,
        adminPort: 0,
      }),
      protocol,
      adminPort: 0,
      healthPort: null,
      drainTimeMs: 100,
      ...(process.env.TLS_DEBUG
        ? { log: (l: string, m: string, f?: unknown) => console.log(l, m, JSON.stringify(f)) }
        : {}),
    });
    return new Harness(ads, proxy, protocol);
  }

  delta(): Promise<DeltaStream> {
    return this.ads.deltaStream(0);
  }

  sotw(): Promise<SotwStream> {
    return this.ads.sotwStream(0);
  }

  /**
   * Sends resources of a type (delta: the named resources and removals; SotW: the full set).
   * Resolves with the nonce used.
   */
  async push(
    typeUrl: string,
    resources: readonly (readonly [string, object])[],
    removed: readonly string[] = [],
  ): Promise<string> {
    const nonce = `n${++this.#nonce}`;
    const version = `v${++this.#version}`;
    if (this.protocol === 'delta') {
      const s = await this.delta();
      s.send(
        deltaResponse(
          typeUrl,
          version,
          nonce,
          resources.map(([n, r]) => [n, version, r]),
          removed,
        ),
      );
    } else {
      const s = await this.sotw();
      s.send(
        sotwResponse(
          typeUrl,
          version,
          nonce,
          resources.map(([, r]) => r),
        ),
      );
    }
    return nonce;
  }

  /** The proxy's answer (ACK or NACK) to the response with `nonce`. */
  async answer(typeUrl: string, nonce: string): Promise<{ error: string | undefined }> {
    if (this.protocol === 'delta') {
      const s = await this.delta();
      const r = await s.take(
        (x) => x.typeUrl === typeUrl && x.responseNonce === nonce,
        `answer to ${nonce}`,
      );
      return { error: r.errorDetail?.message };
    }
    const s = await this.sotw();
    const r = await s.take(
      (x) => x.typeUrl === typeUrl && x.responseNonce === nonce,
      `answer to ${nonce}`,
    );
    return { error: r.errorDetail?.message };
  }

  /** Clusters then listeners (Envoy's order), waiting until the listeners are bound. */
  async configure(clusters: readonly Cluster[], listeners: readonly Listener[]): Promise<void> {
    const cn = await this.push(
      TYPE_URL.Cluster,
      clusters.map((c) => [c.name ?? '', c] as const),
    );
    await this.answer(TYPE_URL.Cluster, cn);
    const ln = await this.push(
      TYPE_URL.Listener,
      listeners.map((l) => [l.name ?? '', l] as const),
    );
    const a = await this.answer(TYPE_URL.Listener, ln);
    if (a.error) throw new Error(`listeners NACKed: ${a.error}`);
    for (const l of listeners) await this.port(l.name ?? '');
  }

  /** Where a listener listens, once bound. */
  async port(name: string): Promise<number> {
    const a = await waitFor(() => this.proxy.listeners.boundAddress(name), `listener ${name}`);
    return a.port;
  }

  counter(name: string): number {
    return this.proxy.stats.counter(name).value;
  }

  /** Delta requests of the Secret type received so far (subscriptions). */
  async secretRequests(): Promise<DeltaDiscoveryRequest[]> {
    const s = await this.delta();
    return s.requests.filter((r) => r.typeUrl === TYPE_URL.Secret);
  }

  async close(): Promise<void> {
    await this.proxy.close();
    this.ads.stop();
  }
}

// ---- Backends

export interface SeenRequest {
  readonly path: string;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly sni: string | undefined;
  readonly alpn: string | false | undefined;
  readonly peer: string | undefined;
}

export interface Backend {
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

function record(seen: SeenRequest[], req: http.IncomingMessage | http2.Http2ServerRequest): void {
  const s = req.socket as Partial<TLSSocket>;
  seen.push({
    path: req.url ?? '',
    httpVersion: req.httpVersion,
    headers: req.headers,
    sni: typeof s.servername === 'string' ? s.servername : undefined,
    alpn: s.alpnProtocol ?? undefined,
    peer: s.getPeerX509Certificate?.()?.subjectAltName,
  });
}

async function listen(
  server: http.Server | https.Server | http2.Http2SecureServer,
): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A plaintext HTTP/1.1 backend answering `backend <path>`. */
export async function plainBackend(): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    record(seen, req);
    req.resume();
    res.end(`backend ${req.url ?? ''}`);
  });
  const port = await listen(server);
  return {
    port,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** An HTTPS backend (HTTP/2 and HTTP/1.1 by ALPN) with `cert`, optionally requiring client certificates. */
export async function tlsBackend(
  cert: IssuedCertificate,
  opts: { requireClientCa?: CertificateAuthority; h2?: boolean } = {},
): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): void => {
    record(seen, req);
    req.resume();
    res.end(`tls backend ${req.url ?? ''} HTTP/${req.httpVersion}`);
  };
  const common = {
    key: cert.key,
    cert: cert.chain,
    ...(opts.requireClientCa
      ? { ca: opts.requireClientCa.cert, requestCert: true, rejectUnauthorized: true }
      : {}),
  };
  const server =
    opts.h2 === false
      ? https.createServer(common, handler)
      : http2.createSecureServer({ ...common, allowHTTP1: true }, handler);
  const port = await listen(server);
  return {
    port,
    seen,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}

// ---- Clients

export interface TlsReply {
  readonly status: number;
  readonly body: string;
  readonly alpn: string | false;
  readonly peer: string | undefined;
}

/** One HTTP/1.1 request over TLS (a new connection). */
export function httpsGet(
  port: number,
  path: string,
  o: tls.ConnectionOptions,
  headers: Record<string, string> = {},
): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        ...o,
        headers: { host: typeof o.servername === 'string' ? o.servername : 'example', ...headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const s = res.socket as TLSSocket;
          resolve({
            status: res.statusCode ?? 0,
            body,
            alpn: s.alpnProtocol ?? false,
            peer: s.getPeerX509Certificate()?.subjectAltName,
          });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request over TLS (ALPN h2). */
export async function h2Get(
  port: number,
  path: string,
  o: tls.ConnectionOptions,
): Promise<TlsReply> {
  const session = http2.connect(`https://127.0.0.1:${port}`, o as http2.SecureClientSessionOptions);
  try {
    await Promise.race([
      once(session, 'connect'),
      once(session, 'error').then(([e]) => Promise.reject(e as Error)),
    ]);
    const socket = session.socket as TLSSocket;
    const req = session.request({ ':path': path, ':authority': String(o.servername ?? 'example') });
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    let body = '';
    req.on('data', (d: string) => (body += d));
    await once(req, 'end');
    return {
      status,
      body,
      alpn: socket.alpnProtocol ?? false,
      peer: socket.getPeerX509Certificate()?.subjectAltName,
    };
  } finally {
    session.close();
  }
}

/** A TLS handshake only: the server's certificate SANs, or the error code. */
export function handshake(
  port: number,
  o: tls.ConnectionOptions,
): Promise<
  { ok: true; peer: string | undefined; alpn: string | false } | { ok: false; code: string }
> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...o });
    s.once('secureConnect', () => {
      // With TLS 1.3 the server verifies our certificate after our Finished: wait a moment
      // for its verdict (a close) before calling the handshake good.
      const result = {
        ok: true as const,
        peer: s.getPeerX509Certificate()?.subjectAltName,
        alpn: s.alpnProtocol ?? false,
      };
      s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      let got = false;
      s.once('data', () => {
        got = true;
        s.destroy();
        resolve(result);
      });
      s.once('close', () => {
        if (!got) resolve({ ok: false, code: 'closed after handshake' });
      });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      resolve({ ok: false, code: e.code ?? e.message });
      s.destroy();
    });
  });
}
