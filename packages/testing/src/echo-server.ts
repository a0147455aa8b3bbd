// A real gRPC echo server for integration tests, bound to 127.0.0.1 on an ephemeral port.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const ECHO_PROTO = join(import.meta.dirname, '..', '..', 'protos', 'echo.proto');

export interface EchoRequest {
  message?: string;
  failCode?: number;
  delayMs?: number;
  failFirst?: number;
}

export interface EchoReply {
  message: string;
  server: string;
  version: string;
  metadata: Record<string, string>;
}

interface EchoPackage {
  trellis: { testing: { v1: { Echo: grpc.ServiceClientConstructor } } };
}

let cached: EchoPackage | undefined;

/** The loaded Echo package (service definition and client constructor). */
export function echoPackage(): EchoPackage {
  cached ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(ECHO_PROTO, { keepCase: false, longs: Number, defaults: true }),
  ) as unknown as EchoPackage;
  return cached;
}

export interface EchoServer {
  readonly port: number;
  readonly name: string;
  readonly version: string;
  /** Calls served so far. */
  calls(): number;
  close(): Promise<void>;
}

/** Starts an echo server named `name` (reported in replies) on 127.0.0.1:0. */
export async function startEchoServer(name: string, version: string): Promise<EchoServer> {
  const server = new grpc.Server();
  let calls = 0;
  const failures = new Map<string, number>();
  const Echo = echoPackage().trellis.testing.v1.Echo;
  server.addService(Echo.service, {
    Echo: (
      call: grpc.ServerUnaryCall<EchoRequest, EchoReply>,
      callback: grpc.sendUnaryData<EchoReply>,
    ) => {
      calls++;
      const req = call.request;
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
      const key = req.message ?? '';
      const failedSoFar = failures.get(key) ?? 0;
      const transient = (req.failFirst ?? 0) > failedSoFar;
      if (transient) failures.set(key, failedSoFar + 1);
      const answer = (): void => {
        if (transient)
          callback({
            code: req.failCode || grpc.status.UNAVAILABLE,
            details: `${name} failed call ${failedSoFar + 1} of ${req.failFirst}`,
          });
        else if (req.failCode)
          callback({ code: req.failCode, details: `${name} failed on request` });
        else callback(null, { message: req.message ?? '', server: name, version, metadata });
      };
      if (req.delayMs) setTimeout(answer, req.delayMs);
      else answer();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    name,
    version,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}
