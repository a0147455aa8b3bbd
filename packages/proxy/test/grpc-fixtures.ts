// A gRPC test service with JSON messages (no .proto needed, and its frames are easy to build by
// hand): Count streams n replies, Chat echoes upper-cased, Fail ends with the status it is asked
// for.
import * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString()) as unknown,
};

function method(path: string, requestStream: boolean, responseStream: boolean) {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const STREAM_SERVICE: grpc.ServiceDefinition = {
  Count: method('/test.Stream/Count', false, true),
  Chat: method('/test.Stream/Chat', true, true),
  Fail: method('/test.Stream/Fail', false, false),
};

export async function startStreamServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new grpc.Server();
  server.addService(STREAM_SERVICE, {
    Count: (call: grpc.ServerWritableStream<{ n: number }, { i: number }>) => {
      let i = 0;
      const tick = (): void => {
        if (i >= call.request.n) {
          call.end();
          return;
        }
        call.write({ i: i++ });
        setTimeout(tick, 5);
      };
      tick();
    },
    Chat: (call: grpc.ServerDuplexStream<{ text: string }, { echo: string }>) => {
      call.on('data', (m: { text: string }) => call.write({ echo: m.text.toUpperCase() }));
      call.on('end', () => {
        const md = new grpc.Metadata();
        md.set('x-final', 'bye');
        call.end(md);
      });
    },
    Fail: (
      call: grpc.ServerUnaryCall<{ code: number; message: string }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => cb({ code: call.request.code, details: call.request.message }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { port, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}
