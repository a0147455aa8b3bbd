// The `trellis` verbs end to end over a real state directory: validate, apply, get, delete, create.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, writeFile, mkdir } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { openFileStore } from '@trellis/config';
import { withTempDir } from '@trellis/testing';
import { REPO_ROOT, trellis, npxTrellis } from './harness.js';

const VS = (name: string, host: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}${extra}
spec:
  hosts:
  - ${host}
  http:
  - route:
    - destination:
        host: ${host}
`;

const THREE_MISTAKES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
        port:
          number: 70000
    timeout: 3 seconds
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBINN
`;

test('npx trellis validate: a file with three mistakes prints three located errors and exits 1', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'three.yaml');
    await writeFile(file, THREE_MISTAKES);
    const r = await npxTrellis(['validate', '-f', file]);
    assert.equal(r.code, 1, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    assert.equal(errors.length, 3, r.stderr);
    assert.match(
      errors[0]!,
      /three\.yaml:14 VirtualService default\/reviews: spec\.http\[0\]\.route\[0\]\.destination\.port\.number: must be between 1 and 65535, not 70000/,
    );
    assert.match(
      errors[1]!,
      /three\.yaml:15 VirtualService default\/reviews: spec\.http\[0\]\.timeout: must be a duration/,
    );
    assert.match(
      errors[2]!,
      /three\.yaml:25 DestinationRule default\/reviews: spec\.trafficPolicy\.loadBalancer\.simple: must be one of/,
    );
    assert.match(r.stderr, /3 errors in 1 file/);
  });
});

test('validate: valid input exits 0; stdin works; missing file is a clear error', async () => {
  await withTempDir(async (dir) => {
    const ok = await trellis(dir, ['validate', '-f', '-'], { stdin: VS('a', 'a') });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /1 object valid in 1 file/);
    const missing = await trellis(dir, ['validate', '-f', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.yaml: no such file or directory/);
  });
});

test('apply: created, unchanged, configured; invalid batches apply nothing', async () => {
  await withTempDir(async (dir) => {
    const state = join(dir, 'state');
    const file = join(dir, 'vs.yaml');
    await writeFile(file, VS('reviews', 'reviews'));
    let r = await trellis(state, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io/reviews created\n');
    r = await trellis(state, ['apply', '-f', file]);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io/reviews unchanged\n');
    await writeFile(
      file,
      VS('reviews', 'reviews').replace('- route:', '- timeout: 3s\n    route:'),
    );
    r = await trellis(state, ['apply', '-f', file]);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io/reviews configured\n');

    // One bad object in a batch: nothing is applied, not even the good one.
    const batch = join(dir, 'batch.yaml');
    await writeFile(
      batch,
      VS('good', 'good') +
        '---\n' +
        VS('bad', 'bad').replace('host: bad\n', 'host: bad\n      weight: -1\n'),
    );
    r = await trellis(state, ['apply', '-f', batch]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /batch\.yaml:\d+ VirtualService default\/bad: spec\.http\[0\]\.route\[0\]\.weight/,
    );
    assert.match(r.stderr, /nothing was applied/);
    r = await trellis(state, ['get', 'vs', 'good']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /virtualservices\.networking\.istio\.io "good" not found/);
  });
});

test('apply: namespaces must exist or come in the same batch; -n must agree with the object', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'vs.yaml');
    await writeFile(file, VS('r', 'r'));
    let r = await trellis(dir, ['apply', '-f', file, '-n', 'bookinfo']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /namespace "bookinfo" not found/);
    r = await trellis(dir, ['create', 'namespace', 'bookinfo']);
    assert.equal(r.stdout, 'namespace/bookinfo created\n');
    r = await trellis(dir, ['apply', '-f', file, '-n', 'bookinfo']);
    assert.equal(r.code, 0, r.stderr);
    const nsBatch = join(dir, 'ns.yaml');
    await writeFile(
      nsBatch,
      VS('q', 'q', '\n  namespace: shop') +
        '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
    );
    r = await trellis(dir, ['apply', '-f', nsBatch]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      'namespace/shop created\nvirtualservice.networking.istio.io/q created\n',
    );
    r = await trellis(dir, ['apply', '-f', nsBatch, '-n', 'other']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /metadata\.namespace: the namespace from the object \("shop"\) does not match the namespace given with -n \("other"\)/,
    );
  });
});

test('get: tables, -A, -o yaml/json/name, short names, not found', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'objs.yaml');
    await writeFile(
      file,
      VS('reviews', 'reviews') +
        '---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n',
    );
    assert.equal((await trellis(dir, ['apply', '-f', file])).code, 0);
    const later = Date.now() + 5 * 60_000;
    let r = await trellis(dir, ['get', 'vs'], { now: later });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n')[0]!.split(/\s{2,}/), [
      'NAME',
      'GATEWAYS',
      'HOSTS',
      'AGE',
    ]);
    assert.match(r.stdout.split('\n')[1]!, /^reviews\s+\["reviews"\]\s+5m/);
    r = await trellis(dir, ['get', 'destinationrules', '-A']);
    assert.deepEqual(r.stdout.split('\n')[0]!.split(/\s{2,}/), [
      'NAMESPACE',
      'NAME',
      'HOST',
      'AGE',
    ]);
    assert.match(r.stdout, /default\s+reviews\s+reviews/);
    r = await trellis(dir, ['get', 'virtualservice.networking.istio.io', 'reviews', '-o', 'yaml']);
    assert.match(r.stdout, /^apiVersion: networking\.istio\.io\/v1\nkind: VirtualService\n/);
    assert.match(r.stdout, /resourceVersion: "\d+"/);
    r = await trellis(dir, ['get', 'vs', '-o', 'json']);
    const list = JSON.parse(r.stdout) as { kind: string; items: { metadata: { name: string } }[] };
    assert.equal(list.kind, 'List');
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      ['reviews'],
    );
    r = await trellis(dir, ['get', 'vs,dr', '-o', 'name']);
    assert.equal(
      r.stdout,
      'virtualservice.networking.istio.io/reviews\ndestinationrule.networking.istio.io/reviews\n',
    );
    r = await trellis(dir, ['get', 'gw']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, 'No resources found in default namespace.\n');
    r = await trellis(dir, ['get', 'widgets']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /doesn't have a resource type "widgets"/);
  });
});

test('delete: by file and by name; missing objects are reported, others still deleted', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'two.yaml');
    await writeFile(file, VS('a', 'a') + '---\n' + VS('b', 'b'));
    await trellis(dir, ['apply', '-f', file]);
    let r = await trellis(dir, ['delete', 'vs', 'a', 'zzz']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io "a" deleted\n');
    assert.match(r.stderr, /virtualservices\.networking\.istio\.io "zzz" not found/);
    r = await trellis(dir, ['delete', '-f', file, '--ignore-not-found']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io "b" deleted\n');
    r = await trellis(dir, ['get', 'vs']);
    assert.match(r.stderr, /No resources found/);
  });
});

test('usage errors: unknown command, unknown flag, missing values, --help everywhere', async () => {
  await withTempDir(async (dir) => {
    let r = await trellis(dir, ['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    r = await trellis(dir, ['apply', '--frobnicate', '-f', 'x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown flag --frobnicate for 'trellis apply'/);
    r = await trellis(dir, ['get', 'vs', '-o', 'xml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"xml" is not one of yaml, json, wide, name/);
    r = await trellis(dir, ['apply']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /apply needs -f/);
    r = await trellis(dir, ['control-plane', '--eds-debounce', 'sometimes']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--eds-debounce must be true or false, not 'sometimes'/);
    for (const verb of ['validate', 'apply', 'get', 'delete', 'create']) {
      r = await trellis(dir, [verb, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`Usage: trellis ${verb}`));
    }
    r = await trellis(dir, ['--help']);
    assert.match(r.stdout, /Commands:/);
  });
});

test('apply -R reads directories recursively; without -R only the top level', async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'm', 'sub'), { recursive: true });
    await writeFile(join(dir, 'm', 'a.yaml'), VS('a', 'a'));
    await writeFile(join(dir, 'm', 'sub', 'b.yml'), VS('b', 'b'));
    await writeFile(join(dir, 'm', 'notes.txt'), 'not a manifest');
    let r = await trellis(join(dir, 's1'), ['apply', '-f', join(dir, 'm')]);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io/a created\n');
    r = await trellis(join(dir, 's2'), ['apply', '-R', '-f', join(dir, 'm')]);
    assert.equal(
      r.stdout,
      'virtualservice.networking.istio.io/a created\nvirtualservice.networking.istio.io/b created\n',
    );
  });
});

test('two trellis apply processes at the same time both succeed', async () => {
  await withTempDir(async (dir) => {
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    let docsA = '';
    let docsB = '';
    for (let i = 0; i < 20; i++) {
      docsA += VS(`a${i}`, `a${i}`) + '---\n';
      docsB += VS(`b${i}`, `b${i}`) + '---\n';
    }
    // Both also write the same object, so their writes really contend.
    docsA += VS('shared', 'one');
    docsB += VS('shared', 'two');
    await writeFile(a, docsA);
    await writeFile(b, docsB);
    const env = { TRELLIS_STATE_DIR: join(dir, 'state') };
    const [ra, rb] = await Promise.all([
      npxTrellis(['apply', '-f', a], env),
      npxTrellis(['apply', '-f', b], env),
    ]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    const r = await npxTrellis(['get', 'vs', '-o', 'name'], env);
    assert.equal(r.stdout.trim().split('\n').length, 41);
  });
});

test('apply keeps a cluster IP the server assigned, as kubectl apply does', async () => {
  await withTempDir(async (dir) => {
    const state = join(dir, 'state');
    const file = join(dir, 'svc.yaml');
    const svc =
      'apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n';
    await writeFile(file, svc);
    assert.equal((await trellis(state, ['apply', '-f', file])).code, 0);
    // The allocator (the local runtime in transparent mode) writes spec.clusterIP.
    const store = await openFileStore(state);
    try {
      const cur = await store.get({
        group: '',
        kind: 'Service',
        namespace: 'default',
        name: 'reviews',
      });
      assert.ok(cur);
      await store.update({
        ...cur,
        spec: { ...(cur.spec as object), clusterIP: '10.96.0.7', clusterIPs: ['10.96.0.7'] },
      });
    } finally {
      await store.close();
    }
    let r = await trellis(state, ['apply', '-f', file]);
    assert.equal(r.stdout, 'service/reviews unchanged\n');
    await writeFile(file, svc.replace('port: 9080', 'port: 9081'));
    r = await trellis(state, ['apply', '-f', file]);
    assert.equal(r.stdout, 'service/reviews configured\n');
    r = await trellis(state, ['get', 'service', 'reviews', '-o', 'json']);
    const got = JSON.parse(r.stdout) as { spec: { clusterIP?: string; ports: { port: number }[] } };
    assert.equal(got.spec.clusterIP, '10.96.0.7');
    assert.equal(got.spec.ports[0]?.port, 9081);
  });
});

test('logs -f prints the log, then what is appended, until interrupted', async () => {
  await withTempDir(async (dir) => {
    const state = join(dir, 'state');
    const podLogs = join(state, 'logs', 'default', 'hello-0123456789-abcde');
    await mkdir(podLogs, { recursive: true });
    const log = join(podLogs, 'app.log');
    await writeFile(log, 'first\n');
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'packages', 'cli', 'bin', 'trellis.js'), 'logs', 'hello', '-f'],
      { env: { ...process.env, TRELLIS_STATE_DIR: state }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const waitFor = async (text: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!out.includes(text)) {
        assert.ok(Date.now() < deadline, `no "${text}" in ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFor('first\n');
    await appendFile(log, 'second\n');
    await waitFor('second\n');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(out, 'first\nsecond\n');
  });
});
