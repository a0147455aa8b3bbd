// Shared fixture of the mesh protocol tests (mesh-protocols.test.ts): a real control plane with a
// file store, one `echo` service whose two pods (v1, v2) each run four applications (HTTP/1.1 +
// WebSocket, HTTP/2 cleartext, gRPC, raw TCP echo) behind their own Trellis sidecar, a client
// sidecar (`sleep`) with an explicit HTTP proxy port, and an ingress gateway (`router`).
// Everything listens on 127.0.0.1 on ports allocated by the kernel (port 0).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  createServer as createH2Server,
  type Http2Server,
  type Http2ServerRequest,
} from 'node:http2';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
} from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer } from 'ws';
import type { KubeObject } from '@trellis/api';
import { keyOf, openFileStore, type ConfigStore } from '@trellis/config';
import { ControlPlane } from '@trellis/control-plane';
import { TrellisProxy, buildBootstrap, type BootstrapOptions } from '@trellis/proxy';

/** The `echo` service's ports (virtual: clients name them, the registry maps them to pods). */
export const PORTS = { http: 9080, http2: 9081, grpc: 9090, tcp: 9092, grpcWeb: 9093 } as const;

export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function listen(s: Server | Http2Server | NetServer, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });
  return (s.address() as AddressInfo).port;
}

/** What an application saw of one request. */
export interface Seen {
  version: string;
  httpVersion: string;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

/** JSON messages for the generic gRPC service (no .proto needed). */
const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString()) as unknown,
};

/** `echo.Echo`: unary `Say` and server-streaming `Count`. */
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Say: {
    path: '/echo.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
  Count: {
    path: '/echo.Echo/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

/** One pod's applications, each answering with the pod's version. */
export interface App {
  readonly version: string;
  /** `grpcweb`: the gRPC server's second port, behind the Service's `grpc-web` port. */
  readonly ports: { http: number; http2: number; grpc: number; tcp: number; grpcweb: number };
  /** Requests the HTTP/1.1 and HTTP/2 apps received. */
  readonly seen: Seen[];
  close(): Promise<void>;
}

function seenOf(version: string, req: IncomingMessage | Http2ServerRequest): Seen {
  return {
    version,
    httpVersion: req.httpVersion,
    method: req.method ?? '',
    path: req.url ?? '',
    headers: req.headers,
  };
}

export async function startApp(version: string): Promise<App> {
  const seen: Seen[] = [];
  const http = createServer((req, res) => {
    const s = seenOf(version, req);
    seen.push(s);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(s));
    });
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws, req) => {
    seen.push(seenOf(version, req));
    ws.on('message', (...args: unknown[]) => {
      const [data, isBinary] = args as [Buffer, boolean];
      ws.send(isBinary ? data : `${version}:${data.toString()}`);
    });
  });
  const h2 = createH2Server((req, res) => {
    const s = seenOf(version, req);
    seen.push(s);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ...s, authority: req.authority }));
    });
  });
  const tcp = createNetServer((sock) => {
    sock.write(`${version}:`);
    sock.pipe(sock);
    sock.on('error', () => undefined);
  });
  const g = new grpc.Server();
  g.addService(ECHO_SERVICE, {
    Say: (
      call: grpc.ServerUnaryCall<{ msg: string }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-version', version);
      cb(null, { msg: call.request.msg, version }, trailer);
    },
    Count: (call: grpc.ServerWritableStream<{ n: number }, unknown>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ i, version });
      const trailer = new grpc.Metadata();
      trailer.set('x-version', version);
      call.end(trailer);
    },
  });
  const bindGrpc = (): Promise<number> =>
    new Promise<number>((resolve, reject) =>
      g.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
  const grpcPort = await bindGrpc();
  const grpcWebPort = await bindGrpc();
  const ports = {
    http: await listen(http),
    http2: await listen(h2),
    grpc: grpcPort,
    tcp: await listen(tcp),
    grpcweb: grpcWebPort,
  };
  return {
    version,
    ports,
    seen,
    close: async () => {
      wss.close();
      for (const s of [http, h2, tcp]) {
        (s as { closeAllConnections?: () => void }).closeAllConnections?.();
        s.close();
      }
      g.forceShutdown();
      await Promise.resolve();
    },
  };
}

/** A Pod of `echo` (or another app) whose ports are its sidecar's inbound ports. */
export function pod(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  app?: { ports: App['ports']; inbound: App['ports'] },
): KubeObject {
  const containerPorts = app
    ? (Object.keys(app.ports) as (keyof App['ports'])[]).map((k) => ({
        name: k,
        containerPort: app.ports[k],
      }))
    : [];
  const inbound = app
    ? Object.fromEntries(
        (Object.keys(app.ports) as (keyof App['ports'])[]).map((k) => [
          String(app.ports[k]),
          app.inbound[k],
        ]),
      )
    : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels,
      ...(inbound ? { annotations: { 'trellis.io/inbound-ports': JSON.stringify(inbound) } } : {}),
    },
    spec: {
      serviceAccountName: labels.app ?? 'default',
      containers: [{ name: 'app', image: 'app', ports: containerPorts }],
    },
    status: {
      phase: 'Running',
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

export async function put(store: ConfigStore, o: KubeObject): Promise<void> {
  const existing = await store.get(keyOf(o));
  const rv = existing?.metadata.resourceVersion;
  if (existing && rv !== undefined)
    await store.update({ ...o, metadata: { ...o.metadata, resourceVersion: rv } });
  else await store.create(o);
}

export { eventually } from '@trellis/testing';

/** The running mesh. */
export interface Mesh {
  readonly store: ConfigStore;
  readonly cp: ControlPlane;
  readonly apps: { v1: App; v2: App };
  readonly sidecars: { v1: TrellisProxy; v2: TrellisProxy };
  /** Each server sidecar's inbound ports (the pods' `trellis.io/inbound-ports`). */
  readonly inbound: { v1: App['ports']; v2: App['ports'] };
  readonly client: TrellisProxy;
  readonly gateway: TrellisProxy;
  /** The client sidecar's explicit HTTP proxy port (its HTTP_PROXY). */
  readonly httpProxyPort: number;
  /** The port the gateway's Gateway server binds. */
  readonly gatewayPort: number;
  readonly gatewayHost: string;
  close(): Promise<void>;
}

/** Debugging: TRELLIS_E2E_ACCESS_LOG=/dev/stderr prints every proxy's access log. */
const ACCESS_LOG = process.env.TRELLIS_E2E_ACCESS_LOG;

async function startProxy(
  cp: ControlPlane,
  o: Omit<BootstrapOptions, 'xdsAddress' | 'adminPort' | 'ip'>,
): Promise<TrellisProxy> {
  return TrellisProxy.start({
    bootstrap: buildBootstrap({
      ip: '127.0.0.1',
      xdsAddress: `127.0.0.1:${cp.xdsPort}`,
      adminPort: 0,
      ...o,
    }),
    adminPort: 0,
    healthPort: null,
    ...(ACCESS_LOG ? { accessLogFile: ACCESS_LOG } : {}),
  });
}

export async function startMesh(dir: string): Promise<Mesh> {
  const apps = { v1: await startApp('v1'), v2: await startApp('v2') };
  const inbound = async (): Promise<App['ports']> => ({
    http: await freePort(),
    http2: await freePort(),
    grpc: await freePort(),
    tcp: await freePort(),
    grpcweb: await freePort(),
  });
  const inboundPorts = { v1: await inbound(), v2: await inbound() };
  const store = await openFileStore(dir);
  const cp = await ControlPlane.start({
    store,
    xdsAddress: '127.0.0.1:0',
    monitoringHost: '127.0.0.1',
    monitoringPort: 0,
    debounce: { quietMs: 10, maxMs: 1000 },
  });
  const httpProxyPort = await freePort();
  const gatewayPort = await freePort();
  const gatewayHost = 'hello.example.com';
  const objects: KubeObject[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        selector: { app: 'echo' },
        ports: [
          { name: 'http', port: PORTS.http, targetPort: 'http' },
          { name: 'http2', port: PORTS.http2, targetPort: 'http2' },
          { name: 'grpc', port: PORTS.grpc, targetPort: 'grpc' },
          { name: 'tcp-echo', port: PORTS.tcp, targetPort: 'tcp' },
          { name: 'grpc-web', port: PORTS.grpcWeb, targetPort: 'grpcweb' },
        ],
      },
    },
    pod(
      'echo-v1',
      'default',
      { app: 'echo', version: 'v1' },
      {
        ports: apps.v1.ports,
        inbound: inboundPorts.v1,
      },
    ),
    pod(
      'echo-v2',
      'default',
      { app: 'echo', version: 'v2' },
      {
        ports: apps.v2.ports,
        inbound: inboundPorts.v2,
      },
    ),
    pod('sleep-0', 'default', { app: 'sleep', version: 'v1' }),
    pod('istio-ingressgateway-0', 'istio-system', {
      app: 'istio-ingressgateway',
      istio: 'ingressgateway',
    }),
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        host: 'echo',
        // Istio's auto mTLS would have every client speak TLS to these `tlsMode: istio`
        // endpoints (their pods run a sidecar). Trellis has no CA yet to issue the workload
        // certificates (SDS `default` / `ROOTCA`: a connection needing them fails with 503 UF),
        // so the mesh runs in plaintext, as an Istio user opts out of mTLS for a host:
        // tls.mode DISABLE.
        trafficPolicy: { tls: { mode: 'DISABLE' } },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        hosts: ['echo'],
        http: [
          {
            match: [{ headers: { 'end-user': { exact: 'jason' } } }],
            route: [{ destination: { host: 'echo', subset: 'v2' } }],
          },
          { route: [{ destination: { host: 'echo', subset: 'v1' } }] },
        ],
        tcp: [
          {
            match: [{ port: PORTS.tcp }],
            route: [{ destination: { host: 'echo', subset: 'v2', port: { number: PORTS.tcp } } }],
          },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'hello-gateway', namespace: 'istio-system' },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [
          {
            port: { number: gatewayPort, name: 'http', protocol: 'HTTP' },
            hosts: [gatewayHost],
          },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'hello', namespace: 'default' },
      spec: {
        hosts: [gatewayHost],
        gateways: ['istio-system/hello-gateway'],
        http: [
          {
            match: [{ uri: { prefix: '/hello' } }],
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
    },
  ];
  for (const o of objects) await put(store, o);

  const started: TrellisProxy[] = [];
  try {
    const sidecar = async (v: 'v1' | 'v2'): Promise<TrellisProxy> => {
      const p = await startProxy(cp, {
        podName: `echo-${v}`,
        namespace: 'default',
        labels: { app: 'echo', version: v },
        serviceAccount: 'echo',
      });
      started.push(p);
      return p;
    };
    const sidecars = { v1: await sidecar('v1'), v2: await sidecar('v2') };
    const client = await startProxy(cp, {
      podName: 'sleep-0',
      namespace: 'default',
      labels: { app: 'sleep', version: 'v1' },
      serviceAccount: 'sleep',
      httpProxyPort,
    });
    started.push(client);
    const gateway = await startProxy(cp, {
      type: 'router',
      podName: 'istio-ingressgateway-0',
      namespace: 'istio-system',
      labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
      serviceAccount: 'istio-ingressgateway',
    });
    started.push(gateway);
    await Promise.all(started.map((p) => p.whenReady()));
    return {
      store,
      cp,
      apps,
      sidecars,
      inbound: inboundPorts,
      client,
      gateway,
      httpProxyPort,
      gatewayPort,
      gatewayHost,
      close: async () => {
        for (const p of started) await p.close();
        await cp.close();
        await store.close();
        await apps.v1.close();
        await apps.v2.close();
      },
    };
  } catch (e) {
    for (const p of started) await p.close();
    await cp.close();
    await store.close();
    await apps.v1.close();
    await apps.v2.close();
    throw e;
  }
}

/** GET /stats/prometheus of a proxy. */
export async function prometheus(p: TrellisProxy): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${p.adminPort}/stats/prometheus`);
  return r.text();
}

/** The `istio_requests_total` lines of a proxy that contain every fragment. */
export async function requestLines(p: TrellisProxy, ...fragments: string[]): Promise<string[]> {
  return (await prometheus(p))
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total{') && fragments.every((f) => l.includes(f)));
}
