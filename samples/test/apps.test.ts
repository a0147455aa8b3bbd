// helloworld, httpbin, tcp-echo, sleep, and the curl / nc clients, each as a real process (the
// clients also through the test forward proxy that plays the sidecar).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import {
  BIN,
  cleanEnv,
  closedPort,
  httpCall,
  startSample,
  startTestProxy,
  type SampleProcess,
  type TestProxy,
} from './helpers.js';

/** Runs a one-shot `trellis-sample` command; resolves with its exit code and output. */
function runOnce(
  args: readonly string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: cleanEnv(env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
  });
}

/** Sends `input` on a TCP connection, half-closes, and resolves with everything received. */
function tcpExchange(port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.end(input));
    let got = '';
    socket.setEncoding('utf8').on('data', (c: string) => (got += c));
    socket.once('close', () => resolve(got));
    socket.once('error', reject);
  });
}

let httpbin: SampleProcess;
let echo: SampleProcess;
let proxy: TestProxy;

before(async () => {
  [httpbin, echo] = await Promise.all([
    startSample(['httpbin']),
    startSample(
      ['tcp-echo', '9000,9001,9002', 'one'],
      {
        PORT: '',
        TRELLIS_PORT_9000: '0',
        TRELLIS_PORT_9001: '0',
      },
      2,
    ),
  ]);
  proxy = await startTestProxy((authority) => {
    if (authority === 'httpbin:8000') return { port: httpbin.port };
    if (authority === 'tcp-echo:9000') return { port: echo.port };
    return undefined;
  });
});

after(async () => {
  await Promise.all([httpbin?.stop(), echo?.stop()]);
  await proxy?.close();
});

describe('helloworld', () => {
  test('answers /hello with its version and instance, and stops on SIGTERM', async () => {
    const hw = await startSample(['helloworld', '--version', 'v2'], {
      POD_NAME: 'helloworld-v2-abc',
    });
    try {
      const res = await httpCall(`http://127.0.0.1:${hw.port}/hello`);
      assert.equal(res.status, 200);
      assert.equal(res.body, 'Hello version: v2, instance: helloworld-v2-abc\n');
      assert.equal((await httpCall(`http://127.0.0.1:${hw.port}/health`)).status, 200);
      assert.equal((await httpCall(`http://127.0.0.1:${hw.port}/other`)).status, 404);
      await hw.waitForLine(/"GET \/hello HTTP\/1\.1" 200/);
    } finally {
      assert.equal(await hw.stop(), 0);
    }
  });

  test('listens on TRELLIS_PORT_5000 before PORT', async () => {
    const port = await closedPort();
    const hw = await startSample(['helloworld'], {
      PORT: '1',
      TRELLIS_PORT_5000: String(port),
      SERVICE_VERSION: 'v1',
    });
    try {
      assert.equal(hw.port, port);
      const res = await httpCall(`http://127.0.0.1:${port}/hello`);
      assert.match(res.body, /^Hello version: v1, instance: /);
    } finally {
      await hw.stop();
    }
  });

  test('a bad argument is a usage error (exit 2)', async () => {
    const r = await runOnce(['helloworld', '--colour', 'red']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown flag --colour/);
  });
});

describe('httpbin', { concurrency: true }, () => {
  const url = (path: string) => `http://127.0.0.1:${httpbin.port}${path}`;

  test('/get echoes args, headers (as lists), origin and url', async () => {
    const res = await httpCall(url('/get?a=1&a=2&b=x'), {
      headers: { 'x-request-id': 'abc', 'x-forwarded-for': '10.1.2.3, 127.0.0.1' },
    });
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body) as {
      args: Record<string, string[]>;
      headers: Record<string, string[]>;
      origin: string;
      url: string;
    };
    assert.deepEqual(body.args, { a: ['1', '2'], b: ['x'] });
    assert.deepEqual(body.headers['X-Request-Id'], ['abc']);
    assert.equal(body.origin, '10.1.2.3');
    assert.equal(body.url, `http://127.0.0.1:${httpbin.port}/get?a=1&a=2&b=x`);
    assert.equal((await httpCall(url('/get'), { method: 'POST' })).status, 405);
  });

  test('/headers, /ip, /user-agent', async () => {
    const headers = JSON.parse(
      (await httpCall(url('/headers'), { headers: { 'end-user': 'jason' } })).body,
    ) as { headers: Record<string, string[]> };
    assert.deepEqual(headers.headers['End-User'], ['jason']);
    const ip = JSON.parse((await httpCall(url('/ip'))).body) as { origin: string };
    assert.equal(ip.origin, '127.0.0.1');
    const ua = JSON.parse(
      (await httpCall(url('/user-agent'), { headers: { 'user-agent': 'tester' } })).body,
    ) as Record<string, string>;
    assert.equal(ua['user-agent'], 'tester');
  });

  test('/status/CODE answers that code; a list picks one of them', async () => {
    assert.equal((await httpCall(url('/status/418'))).status, 418);
    assert.equal((await httpCall(url('/status/503'))).status, 503);
    assert.equal((await httpCall(url('/status/204'))).status, 204);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add((await httpCall(url('/status/200,503'))).status);
    assert.ok([...seen].every((s) => s === 200 || s === 503));
    assert.equal((await httpCall(url('/status/abc'))).status, 400);
    assert.equal((await httpCall(url('/status/700'))).status, 400);
  });

  test('/delay/SECONDS answers after the delay', async () => {
    const started = Date.now();
    const res = await httpCall(url('/delay/1'));
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started >= 900);
    assert.equal((await httpCall(url('/delay/x'))).status, 400);
  });

  test('/anything and /post echo the body', async () => {
    const res = await httpCall(url('/anything/x?q=1'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"k":[1,2]}',
    });
    const body = JSON.parse(res.body) as { method: string; json: unknown; data: string };
    assert.equal(body.method, 'PUT');
    assert.deepEqual(body.json, { k: [1, 2] });
    const form = await httpCall(url('/post'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1&b=2',
    });
    assert.deepEqual((JSON.parse(form.body) as { form: unknown }).form, { a: ['1'], b: ['2'] });
    assert.equal((await httpCall(url('/post'))).status, 405);
    const index = await httpCall(url('/'));
    assert.match(index.body, /httpbin/);
  });
});

describe('tcp-echo', () => {
  test('answers each line with the prefix, on every assigned port', async () => {
    assert.equal(echo.ports.length, 2);
    assert.ok(echo.lines.some((l) => l.includes('port 9002: no TRELLIS_PORT_9002')));
    for (const port of echo.ports) {
      assert.equal(await tcpExchange(port, 'hello\nworld\n'), 'one hello\none world\n');
    }
    // A last line without a newline is answered too.
    assert.equal(await tcpExchange(echo.port, 'a\nb'), 'one a\none b');
  });

  test('needs PORTS and PREFIX', async () => {
    const r = await runOnce(['tcp-echo', '9000']);
    assert.equal(r.code, 2);
  });
});

describe('sleep', () => {
  test('idles until SIGTERM, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'sleep'], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    await new Promise<void>((resolve) => {
      const check = () =>
        out.includes('sleeping until stopped') ? resolve() : setTimeout(check, 20);
      check();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  test('sleep SECONDS ends by itself', async () => {
    const r = await runOnce(['sleep', '0.2']);
    assert.equal(r.code, 0);
  });
});

describe('curl and nc', { concurrency: true }, () => {
  test('curl sends absolute-form requests through HTTP_PROXY, by service name', async () => {
    const r = await runOnce(
      ['curl', '-s', '-H', 'x-request-id: curl-1', 'http://httpbin:8000/headers'],
      {
        HTTP_PROXY: proxy.url,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { headers: Record<string, string[]> };
    assert.deepEqual(body.headers['X-Request-Id'], ['curl-1']);
    const seen = proxy.seen.find((s) => s.headers['x-request-id'] === 'curl-1');
    assert.equal(seen?.authority, 'httpbin:8000');
    assert.equal(seen?.path, '/headers');
  });

  test("curl -s -o /dev/null -w '%{http_code}' prints the status only", async () => {
    const env = { http_proxy: proxy.url };
    const ok = await runOnce(
      ['curl', '-so', '/dev/null', '-w', '%{http_code}\\n', 'http://httpbin:8000/get'],
      env,
    );
    assert.equal(ok.stdout, '200\n');
    const err = await runOnce(
      ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://httpbin:8000/status/503'],
      env,
    );
    assert.equal(err.stdout, '503');
    assert.equal(err.code, 0);
    const noRoute = await runOnce(
      ['curl', '-sw', '%{http_code}', '-o', '/dev/null', 'http://nowhere:80/'],
      env,
    );
    assert.equal(noRoute.stdout, '503');
  });

  test('curl -f fails with 22 on an error status; -i shows the status line', async () => {
    const env = { HTTP_PROXY: proxy.url };
    const r = await runOnce(['curl', '-sSf', 'http://httpbin:8000/status/500'], env);
    assert.equal(r.code, 22);
    assert.match(r.stderr, /returned error: 500/);
    const i = await runOnce(['curl', '-si', 'http://httpbin:8000/status/201'], env);
    assert.match(i.stdout, /^HTTP\/1\.1 201 Created\r\n/);
  });

  test('curl connects directly without a proxy, or when NO_PROXY excludes the host', async () => {
    const direct = await runOnce(['curl', '-s', `http://127.0.0.1:${httpbin.port}/ip`]);
    assert.equal(direct.code, 0);
    const excluded = await runOnce(['curl', '-s', `http://127.0.0.1:${httpbin.port}/ip`], {
      HTTP_PROXY: proxy.url,
      NO_PROXY: 'localhost,127.0.0.1',
    });
    assert.equal(excluded.code, 0);
    assert.match(excluded.stdout, /"origin":"127\.0\.0\.1"/);
    assert.ok(
      !proxy.seen.some((r) => r.authority === `127.0.0.1:${httpbin.port}`),
      'the proxy was not used',
    );
  });

  test('curl exits 7 when nothing listens', async () => {
    const port = await closedPort();
    const r = await runOnce(['curl', '-sS', `http://127.0.0.1:${port}/`]);
    assert.equal(r.code, 7);
    assert.match(r.stderr, /^curl: \(7\)/);
  });

  test('nc reaches a TCP service through the proxy with CONNECT', async () => {
    const r = await runOnce(['nc', 'tcp-echo', '9000'], { HTTP_PROXY: proxy.url }, 'hi there\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'one hi there\n');
    assert.ok(proxy.seen.some((s) => s.method === 'CONNECT' && s.authority === 'tcp-echo:9000'));
  });
});
