// The echo server answers, fails on request, and delays on request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { echoPackage, startEchoServer, type EchoReply, type EchoRequest } from '../src/index.js';

function call(client: grpc.Client, req: EchoRequest): Promise<EchoReply> {
  return new Promise((resolve, reject) =>
    (
      client as unknown as {
        Echo: (r: EchoRequest, cb: (e: grpc.ServiceError | null, r: EchoReply) => void) => void;
      }
    ).Echo(req, (e, r) => (e ? reject(e) : resolve(r))),
  );
}

test('echo server: replies with its name, fails with a status, delays', async () => {
  const s = await startEchoServer('echo-v1-0', 'v1');
  const Echo = echoPackage().trellis.testing.v1.Echo;
  const client = new Echo(`127.0.0.1:${s.port}`, grpc.credentials.createInsecure());
  try {
    const r = await call(client, { message: 'hi' });
    assert.equal(r.server, 'echo-v1-0');
    assert.equal(r.version, 'v1');
    assert.equal(r.message, 'hi');
    await assert.rejects(
      call(client, { failCode: grpc.status.UNAVAILABLE }),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
    );
    const t0 = Date.now();
    await call(client, { delayMs: 150 });
    assert.ok(Date.now() - t0 >= 140);
    await assert.rejects(call(client, { message: 't', failFirst: 2 }), /failed call 1 of 2/);
    await assert.rejects(call(client, { message: 't', failFirst: 2 }), /failed call 2 of 2/);
    assert.equal((await call(client, { message: 't', failFirst: 2 })).message, 't');
    assert.equal(s.calls(), 6);
  } finally {
    client.close();
    await s.close();
  }
});
