// Access logs: Istio's default text and JSON formats line for line, Envoy's command operators,
// configuration errors, filters, and the sinks (a file that loses no line on close, stdout).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessLog, AnyMessage } from '@trellis/envoy';
import {
  AccessLogManager,
  ISTIO_JSON_FORMAT,
  ISTIO_TEXT_FORMAT,
  fileSink,
  formatStartTime,
  jsonFormatter,
  logContext,
  streamSink,
  textFormatter,
  type AccessLogFormatter,
  type LogContext,
} from '../src/observability/index.js';
import {
  RESPONSE_FLAGS,
  ResponseFlagSet,
  formatResponseFlags,
  newStreamInfo,
  type StreamInfo,
} from '../src/stream-info.js';

const START = Date.UTC(2024, 4, 17, 9, 3, 7, 42);

function httpInfo(): StreamInfo {
  const i = newStreamInfo(
    {
      protocol: 'HTTP/1.1',
      listenerName: '0.0.0.0_9080',
      direction: 'outbound',
      downstreamRemoteAddress: '10.1.0.9:51234',
      downstreamLocalAddress: '10.96.0.7:9080',
    },
    START,
    0,
  );
  i.method = 'GET';
  i.path = '/productpage?u=normal';
  i.authority = 'productpage:9080';
  i.userAgent = 'curl/8.5.0';
  i.requestId = '7c9d2e0a-7e3b-4f5e-9b1c-1f2e3d4c5b6a';
  i.responseCode = 200;
  i.responseCodeDetails = 'via_upstream';
  i.bytesReceived = 0;
  i.bytesSent = 5183;
  i.durationMs = 27.9;
  i.upstreamServiceTimeMs = 25.2;
  i.upstreamCluster = 'outbound|9080||productpage.default.svc.cluster.local';
  i.upstreamHost = '10.1.0.20:9080';
  i.upstreamLocalAddress = '10.1.0.9:40212';
  i.routeName = 'default';
  i.attemptCount = 1;
  return i;
}

function fmt(f: ReturnType<typeof textFormatter>): AccessLogFormatter {
  assert.ok(f.ok, f.ok ? '' : f.error);
  return f.value;
}

describe('access log formats', () => {
  test("Istio's default text format, exactly", () => {
    const i = httpInfo();
    const line = fmt(textFormatter(ISTIO_TEXT_FORMAT)).format(
      logContext(i, { 'x-forwarded-for': '10.1.0.9' }, { 'x-envoy-upstream-service-time': '25' }),
    );
    assert.equal(
      line,
      '[2024-05-17T09:03:07.042Z] "GET /productpage?u=normal HTTP/1.1" 200 - via_upstream - "-" 0 5183 27 25 ' +
        '"10.1.0.9" "curl/8.5.0" "7c9d2e0a-7e3b-4f5e-9b1c-1f2e3d4c5b6a" "productpage:9080" "10.1.0.20:9080" ' +
        'outbound|9080||productpage.default.svc.cluster.local 10.1.0.9:40212 10.96.0.7:9080 10.1.0.9:51234 - default\n',
    );
  });

  test('a local reply: flags, details, missing upstream values are -', () => {
    const i = httpInfo();
    i.responseCode = 503;
    i.responseCodeDetails = 'upstream_reset_before_response_started{connection_failure}';
    i.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_CONNECTION_FAILURE);
    i.responseFlags.add(RESPONSE_FLAGS.UPSTREAM_RETRY_LIMIT_EXCEEDED);
    i.upstreamTransportFailureReason = 'delayed connect error: 111';
    i.bytesSent = 91;
    i.durationMs = 3;
    delete i.upstreamServiceTimeMs;
    delete i.upstreamLocalAddress;
    delete i.xForwardedFor;
    i.requestedServerName = 'productpage.default.svc.cluster.local';
    const line = fmt(textFormatter(ISTIO_TEXT_FORMAT)).format({ info: i });
    assert.equal(
      line,
      '[2024-05-17T09:03:07.042Z] "GET /productpage?u=normal HTTP/1.1" 503 UF,URX ' +
        'upstream_reset_before_response_started{connection_failure} - "delayed connect error: 111" 0 91 3 - ' +
        '"-" "curl/8.5.0" "7c9d2e0a-7e3b-4f5e-9b1c-1f2e3d4c5b6a" "productpage:9080" "10.1.0.20:9080" ' +
        'outbound|9080||productpage.default.svc.cluster.local - 10.96.0.7:9080 10.1.0.9:51234 ' +
        'productpage.default.svc.cluster.local default\n',
    );
  });

  test('a TCP connection in the text format', () => {
    const i = newStreamInfo(
      {
        protocol: 'TCP',
        listenerName: '0.0.0.0_9001',
        direction: 'outbound',
        downstreamRemoteAddress: '10.1.0.9:40000',
        downstreamLocalAddress: '10.96.0.9:9001',
      },
      START,
      0,
    );
    i.bytesReceived = 12;
    i.bytesSent = 12;
    i.durationMs = 1500;
    i.upstreamCluster = 'outbound|9001||tcp-echo.default.svc.cluster.local';
    i.upstreamHost = '10.1.0.30:9001';
    i.upstreamLocalAddress = '10.1.0.9:40001';
    const line = fmt(textFormatter(ISTIO_TEXT_FORMAT)).format({ info: i });
    assert.equal(
      line,
      '[2024-05-17T09:03:07.042Z] "- - -" 0 - - - "-" 12 12 1500 - "-" "-" "-" "-" "10.1.0.30:9001" ' +
        'outbound|9001||tcp-echo.default.svc.cluster.local 10.1.0.9:40001 10.96.0.9:9001 10.1.0.9:40000 - -\n',
    );
  });

  test("Istio's default JSON: typed numbers, null when missing, Istio's keys", () => {
    const i = httpInfo();
    const line = fmt(jsonFormatter(ISTIO_JSON_FORMAT)).format(
      logContext(i, {}, { 'x-envoy-upstream-service-time': '25' }),
    );
    assert.ok(line.endsWith('}\n'));
    assert.deepEqual(JSON.parse(line), {
      start_time: '2024-05-17T09:03:07.042Z',
      route_name: 'default',
      method: 'GET',
      path: '/productpage?u=normal',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      response_code_details: 'via_upstream',
      connection_termination_details: null,
      bytes_received: 0,
      bytes_sent: 5183,
      duration: 27,
      upstream_service_time: '25',
      x_forwarded_for: null,
      user_agent: 'curl/8.5.0',
      request_id: '7c9d2e0a-7e3b-4f5e-9b1c-1f2e3d4c5b6a',
      authority: 'productpage:9080',
      upstream_host: '10.1.0.20:9080',
      upstream_cluster: 'outbound|9080||productpage.default.svc.cluster.local',
      upstream_local_address: '10.1.0.9:40212',
      downstream_local_address: '10.96.0.7:9080',
      downstream_remote_address: '10.1.0.9:51234',
      requested_server_name: null,
      upstream_transport_failure_reason: null,
    });
    assert.deepEqual(Object.keys(JSON.parse(line) as object), Object.keys(ISTIO_JSON_FORMAT));
  });

  test('operators: alternatives, truncation, addresses, gRPC, metadata, rewritten path', () => {
    const i = httpInfo();
    i.grpcStatus = 14;
    i.metadata.set('envoy.filters.http.rbac', { shadow_effective_policy_id: 'p1' });
    const ctx: LogContext = logContext(i, {
      'x-envoy-original-path': '/original',
      ':path': '/rewritten',
      'x-custom': 'abcdefghij',
    });
    const f = fmt(
      textFormatter(
        '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:PATH)% %REQ(X-CUSTOM):4% %REQ(X-MISSING)% ' +
          '%REQ_WITHOUT_QUERY(:PATH)% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT% ' +
          '%UPSTREAM_REMOTE_PORT% %GRPC_STATUS% %GRPC_STATUS(SNAKE_STRING)% %GRPC_STATUS_NUMBER% ' +
          '%DYNAMIC_METADATA(envoy.filters.http.rbac:shadow_effective_policy_id)% %UPSTREAM_REQUEST_ATTEMPT_COUNT% ' +
          '%RESPONSE_FLAGS_LONG% %RESPONSE_DURATION%',
      ),
    );
    assert.equal(
      f.format(ctx),
      '/original /rewritten abcd - /rewritten 10.1.0.9 9080 9080 Unavailable UNAVAILABLE 14 p1 1 - 25',
    );
    const q = fmt(textFormatter('%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%'));
    assert.equal(q.format({ info: i }), '/productpage');
    i.responseFlags.add(RESPONSE_FLAGS.NO_HEALTHY_UPSTREAM);
    assert.equal(
      fmt(textFormatter('%RESPONSE_FLAGS_LONG%')).format({ info: i }),
      'NoHealthyUpstream',
    );
  });

  test('START_TIME with a strftime format', () => {
    assert.equal(formatStartTime('', START), '2024-05-17T09:03:07.042Z');
    assert.equal(
      formatStartTime('%Y/%m/%dT%H:%M:%S%z %s', START),
      '2024/05/17T09:03:07+0000 1715936587',
    );
    assert.equal(formatStartTime('%s.%3f', START), '1715936587.042');
    assert.equal(formatStartTime('%s.%6f', START), '1715936587.042000');
    assert.equal(formatStartTime('%H:%M:%E3S', START), '09:03:07.042');
    assert.equal(formatStartTime('%d %b %Y %%', START), '17 May 2024 %');
    assert.equal(
      fmt(textFormatter('%START_TIME(%s.%3f)%')).format({ info: httpInfo() }),
      '1715936587.042',
    );
  });

  test('UPSTREAM_METADATA: the chosen host metadata, scalars only, in both argument forms', () => {
    const ctx = {
      info: httpInfo(),
      upstreamHostMetadata: { istio: { workload: 'w;ns', port: 9080, nested: { a: 1 } } },
    };
    assert.equal(
      fmt(
        textFormatter('%UPSTREAM_METADATA(istio:workload)% %UPSTREAM_METADATA(istio:port)%'),
      ).format(ctx),
      'w;ns 9080',
    );
    assert.equal(
      fmt(textFormatter('%UPSTREAM_METADATA(["istio", "nested"])%')).format(ctx),
      '-',
      'a struct is not a value',
    );
    assert.equal(
      fmt(textFormatter('%UPSTREAM_METADATA(istio:workload)%')).format({ info: httpInfo() }),
      '-',
    );
  });

  test('omit_empty_values and nested JSON', () => {
    const i = httpInfo();
    const text = fmt(textFormatter('[%REQ(X-NONE)%][%ROUTE_NAME%]', true));
    assert.equal(text.format({ info: i }), '[][default]');
    const json = fmt(
      jsonFormatter(
        { a: '%REQ(X-NONE)%', b: { code: '%RESPONSE_CODE%', text: 'code=%RESPONSE_CODE%' }, c: 1 },
        true,
      ),
    );
    assert.equal(json.format({ info: i }), '{"b":{"code":200,"text":"code=200"},"c":1}\n');
  });

  test('configuration errors name the problem', () => {
    const bad = (f: string): string => {
      const r = textFormatter(f);
      assert.ok(!r.ok, f);
      return r.error;
    };
    assert.match(bad('%NOT_AN_OPERATOR%'), /Not supported field in StreamInfo: NOT_AN_OPERATOR/);
    assert.match(bad('100% sure'), /Couldn't find valid command at position 3/);
    assert.match(bad('%REQ%'), /REQ requires a header name/);
    assert.match(bad('%PROTOCOL(x)%'), /PROTOCOL takes no argument/);
    assert.match(bad('%GRPC_STATUS(WRONG)%'), /CAMEL_STRING, SNAKE_STRING or NUMBER/);
    assert.match(bad('%UPSTREAM_METADATA([1, 2])%'), /not a list of non-empty strings/);
    assert.match(bad('%UPSTREAM_METADATA(["a", )%'), /not a JSON array of strings/);
    const j = jsonFormatter({ a: { b: '%NOPE%' } });
    assert.ok(!j.ok);
    assert.match(j.error, /^a\.b: Not supported field in StreamInfo: NOPE/);
  });
});

describe('stream info', () => {
  test('response flags: a Set of short names, printed in Envoy order', () => {
    const f = new ResponseFlagSet();
    assert.equal(f.size, 0);
    assert.equal(formatResponseFlags(f), '-');
    f.add(RESPONSE_FLAGS.UPSTREAM_RETRY_LIMIT_EXCEEDED).add(RESPONSE_FLAGS.NO_HEALTHY_UPSTREAM);
    f.add(RESPONSE_FLAGS.UPSTREAM_RETRY_LIMIT_EXCEEDED);
    f.add(RESPONSE_FLAGS.DOWNSTREAM_REMOTE_RESET);
    assert.equal(f.size, 3);
    assert.ok(f.has('UH') && f.has('URX') && f.has('DR') && !f.has('UF'));
    assert.deepEqual([...f], ['UH', 'URX', 'DR']);
    assert.deepEqual(
      [...f.entries()],
      [
        ['UH', 'UH'],
        ['URX', 'URX'],
        ['DR', 'DR'],
      ],
    );
    const seen: string[] = [];
    f.forEach((v) => seen.push(v));
    assert.deepEqual(seen, ['UH', 'URX', 'DR']);
    assert.equal(formatResponseFlags(f), 'UH,URX,DR');
    // The same as a plain Set of the same flags.
    assert.equal(formatResponseFlags(new Set(['DR', 'URX', 'UH'] as const)), 'UH,URX,DR');
    assert.equal(f.delete('URX'), true);
    assert.equal(f.delete('URX'), false);
    assert.equal(formatResponseFlags(f), 'UH,DR');
    f.clear();
    assert.equal(f.size, 0);
    assert.equal(formatResponseFlags(f), '-');
  });

  test('one shape from creation; metadata created on first use', () => {
    const a = httpInfo();
    const b = newStreamInfo({
      protocol: 'TCP',
      listenerName: 'l',
      direction: 'inbound',
      downstreamRemoteAddress: '1.2.3.4:5',
      downstreamLocalAddress: '1.2.3.4:6',
    });
    // Every field exists (undefined until set) on a fresh record as on a filled one.
    assert.deepEqual(Object.keys(b), Object.keys(a));
    assert.ok(Object.keys(b).includes('durationMs') && b.durationMs === undefined);
    assert.equal(b.metadataSize, 0);
    assert.equal(b.metadataValue('k'), undefined);
    b.metadata.set('k', 1);
    assert.equal(b.metadataSize, 1);
    assert.equal(b.metadataValue('k'), 1);
    assert.equal(b.metadata.get('k'), 1);
    assert.deepEqual(Object.keys(b), Object.keys(a));
  });
});

describe('access loggers from xDS config', () => {
  test('file access log with text_format_source, json_format and no format (Istio default)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-al-'));
    try {
      const manager = new AccessLogManager({ flushIntervalMs: 60_000 });
      const textPath = join(dir, 'text.log');
      const jsonPath = join(dir, 'json.log');
      const defPath = join(dir, 'default.log');
      const cfg = (path: string, logFormat?: Record<string, unknown>): AccessLog => ({
        name: 'envoy.access_loggers.file',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path,
          ...(logFormat ? { logFormat } : {}),
        } as unknown as AnyMessage,
      });
      const text = manager.create(
        cfg(textPath, { textFormatSource: { inlineString: '%RESPONSE_CODE% %ROUTE_NAME%\n' } }),
      );
      const json = manager.create(cfg(jsonPath, { jsonFormat: { code: '%RESPONSE_CODE%' } }));
      const def = manager.create(cfg(defPath));
      assert.ok(text.ok && json.ok && def.ok);
      const ctx = { info: httpInfo() };
      text.value.log(ctx);
      json.value.log(ctx);
      def.value.log(ctx);
      await manager.close();
      assert.equal(await readFile(textPath, 'utf8'), '200 default\n');
      assert.equal(await readFile(jsonPath, 'utf8'), '{"code":200}\n');
      const d = await readFile(defPath, 'utf8');
      assert.ok(
        d.startsWith(
          '[2024-05-17T09:03:07.042Z] "GET /productpage?u=normal HTTP/1.1" 200 - via_upstream',
        ),
        d,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('stdout logger and filters; unsupported config is an error, not ignored', async () => {
    const written: string[] = [];
    const stdout = {
      write(chunk: string, cb?: (e?: Error | null) => void): boolean {
        written.push(chunk);
        cb?.();
        return true;
      },
    };
    const manager = new AccessLogManager({ stdout, flushIntervalMs: 60_000 });
    const logger = manager.create({
      name: 'envoy.access_loggers.stdout',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
        logFormat: { textFormatSource: { inlineString: '%RESPONSE_CODE% %RESPONSE_FLAGS%\n' } },
      } as unknown as AnyMessage,
      filter: { responseFlagFilter: { flags: ['NR'] } },
    } as AccessLog);
    assert.ok(logger.ok, logger.ok ? '' : logger.error);
    const ok = httpInfo();
    const nr = httpInfo();
    nr.responseCode = 404;
    nr.responseFlags.add(RESPONSE_FLAGS.NO_ROUTE_FOUND);
    logger.value.log({ info: ok });
    logger.value.log({ info: nr });
    await manager.close();
    assert.deepEqual(written, ['404 NR\n']);

    const errors = [
      manager.create({
        name: 'x',
        typedConfig: {
          '@type':
            'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
        },
      }),
      manager.create({ name: 'x' }),
      manager.create({
        name: 'x',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path: '/dev/stdout',
          logFormat: { textFormatSource: { inlineString: '%BAD%' } },
        } as unknown as AnyMessage,
      }),
      manager.create({
        name: 'x',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path: '/dev/stdout',
        } as unknown as AnyMessage,
        filter: { extensionFilter: { name: 'envoy.access_loggers.extension_filters.cel' } },
      } as AccessLog),
    ].map((r) => (r.ok ? '' : r.error));
    assert.match(
      errors[0] as string,
      /access logger type ".*HttpGrpcAccessLogConfig" is not supported/,
    );
    assert.match(errors[1] as string, /needs a typed_config/);
    assert.match(
      errors[2] as string,
      /accessLog\.typedConfig\.logFormat: Not supported field in StreamInfo: BAD/,
    );
    assert.match(
      errors[3] as string,
      /accessLog\.filter\.extensionFilter: access log filter "extensionFilter" is not supported/,
    );
  });
});

describe('sinks', () => {
  test('a file sink loses no line on close, batched writes in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-sink-'));
    try {
      const path = join(dir, 'a.log');
      const sink = fileSink(path, { flushIntervalMs: 60_000, maxBufferBytes: 4096 });
      const n = 20_000;
      for (let k = 0; k < n; k++) sink.write(`line ${k}\n`);
      await sink.close();
      sink.write('after close\n');
      const lines = (await readFile(path, 'utf8')).split('\n');
      assert.equal(lines.length, n + 1);
      assert.equal(lines[0], 'line 0');
      assert.equal(lines[n - 1], `line ${n - 1}`);
      assert.ok(lines.every((l, k) => k === n || l === `line ${k}`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the flush timer writes buffered lines; close waits for the stream', async () => {
    const chunks: string[] = [];
    let pending: (() => void) | undefined;
    const stream = {
      write(chunk: string, cb?: (e?: Error | null) => void): boolean {
        chunks.push(chunk);
        pending = () => cb?.();
        return true;
      },
    };
    const sink = streamSink(stream, { flushIntervalMs: 5 });
    sink.write('a\n');
    sink.write('b\n');
    assert.deepEqual(chunks, []);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(chunks, ['a\nb\n']);
    sink.write('c\n');
    let closed = false;
    const closing = sink.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(chunks, ['a\nb\n', 'c\n']);
    assert.equal(closed, false);
    pending?.();
    await closing;
    assert.equal(closed, true);
  });
});
