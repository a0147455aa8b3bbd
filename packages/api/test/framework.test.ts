// The validation framework itself: paths, locations, YAML loading, top-level object checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatPath,
  formatProblem,
  loadManifests,
  parseDuration,
  re2Problem,
  resolveKind,
  validateManifests,
} from '../src/index.js';
import { check } from './invalid-cases.js';

test('formatPath renders fields, indices and odd map keys', () => {
  assert.equal(
    formatPath(['spec', 'http', 0, 'route', 1, 'weight']),
    'spec.http[0].route[1].weight',
  );
  assert.equal(
    formatPath(['metadata', 'labels', 'app.kubernetes.io/name']),
    'metadata.labels["app.kubernetes.io/name"]',
  );
});

test('parseDuration accepts Go durations and rejects the rest', () => {
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('100ms'), 100);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('10'), undefined);
  assert.equal(parseDuration('1.5 s'), undefined);
  assert.equal(parseDuration(''), undefined);
  assert.equal(parseDuration('-1s'), undefined);
});

test('re2Problem rejects what RE2 cannot compile', () => {
  assert.equal(re2Problem('^/api/v[0-9]+/.*$'), undefined);
  assert.equal(re2Problem('(?P<ver>v[12])'), undefined);
  assert.equal(re2Problem('(?i)^/Foo'), undefined);
  assert.match(re2Problem('(a)\\1')!, /backreferences/);
  assert.match(re2Problem('foo(?=bar)')!, /lookahead/);
  assert.match(re2Problem('(?<!x)y')!, /lookbehind/);
  assert.match(re2Problem('a{1001}')!, /above 1000/);
  assert.match(re2Problem('a++')!, /possessive/);
  assert.match(re2Problem('(abc')!, /Unterminated group|missing/);
  assert.match(re2Problem('[abc')!, /missing closing/);
});

test('every problem is located at file:line of its field', () => {
  const yaml = [
    'apiVersion: networking.istio.io/v1',
    'kind: Gateway',
    'metadata:',
    '  name: gw',
    'spec:',
    '  selector:',
    '    istio: ingressgateway',
    '  servers:',
    '  - port:',
    '      number: 99999',
    '      name: http',
    '      protocol: HTTP',
    '    hosts:',
    '    - "*"',
    '    - "a.*.com"',
  ].join('\n');
  const r = validateManifests(yaml, 'gw.yaml');
  assert.deepEqual(r.problems.map(formatProblem), [
    'gw.yaml:10 Gateway default/gw: spec.servers[0].port.number: must be between 1 and 65535, not 99999',
    'gw.yaml:15 Gateway default/gw: spec.servers[0].hosts[1]: host "a.*.com": a wildcard is only allowed at the start of the host',
  ]);
  assert.equal(r.errorCount, 2);
  assert.equal(r.objects.length, 0);
});

test('multi-document YAML, JSON and kind: List are all read', () => {
  const gw = (n: string) =>
    `{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"${n}"},"spec":{"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["*"]}]}}`;
  const multi = `---\n${gw('a')}\n---\n# empty next\n---\n${gw('b')}\n`;
  assert.deepEqual(
    validateManifests(multi, 'm.yaml').objects.map((o) => o.object.metadata.name),
    ['a', 'b'],
  );
  const json = gw('c');
  assert.equal(validateManifests(json, 'c.json').objects[0]?.object.metadata.namespace, 'default');
  const listDoc = `apiVersion: v1\nkind: List\nitems:\n- ${gw('d')}\n- ${gw('e').replace('"number":80', '"number":0')}\n`;
  const r = validateManifests(listDoc, 'l.yaml');
  assert.deepEqual(
    r.objects.map((o) => o.object.metadata.name),
    ['d'],
  );
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]?.source?.line, 5);
  assert.equal(r.problems[0]?.path, 'spec.servers[0].port.number');
});

test('YAML syntax errors and non-object documents are located errors', () => {
  const r = loadManifests('a: 1\nb: [1, 2\nc: 3\n', 'bad.yaml');
  assert.ok(r.problems.length >= 1);
  assert.equal(r.problems[0]?.source.file, 'bad.yaml');
  assert.match(r.problems[0].message, /^YAML syntax error/);
  const dup = loadManifests('a: 1\na: 2\n', 'dup.yaml');
  assert.match(dup.problems[0]!.message, /unique|duplicate/i);
  assert.equal(dup.problems[0]!.source.line, 2);
  const scalar = validateManifests('just a string\n', 's.yaml');
  assert.equal(scalar.errorCount, 1);
  assert.match(scalar.problems[0]!.message, /must be an object/);
});

test('apiVersion, kind and metadata are checked for every object', () => {
  assert.deepEqual(check('kind: Gateway\nmetadata: {name: a}\n').errors, [
    'apiVersion: is required',
  ]);
  assert.deepEqual(
    check('apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: a}\n').errors,
    ['apiVersion: Gateway is not served at version v2; served versions: v1alpha3, v1beta1, v1'],
  );
  assert.deepEqual(
    check('apiVersion: foo.example.com/v1\nkind: Widget\nmetadata: {name: a}\n').errors,
    ['kind: unknown kind Widget (foo.example.com/v1); Trellis does not serve it'],
  );
  assert.deepEqual(
    check('apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: a}\n')
      .errors,
    [
      "kind: HTTPRoute (gateway.networking.k8s.io/v1) is a Kubernetes Gateway API kind, which Trellis does not support yet; use Istio's Gateway and VirtualService (networking.istio.io)",
    ],
  );
  assert.deepEqual(
    check(
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: Bad_Name, namespace: x.y, labels: {app: 3}}\n',
    ).errors,
    [
      "metadata.name: name \"Bad_Name\" must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit",
      'metadata.namespace: namespace "x.y" must be a DNS-1123 label: lower-case letters, digits and \'-\', starting and ending with a letter or digit',
      'metadata.labels.app: must be a string (quote numbers and booleans: "3")',
    ],
  );
});

test('unknown fields are errors in Istio specs, with a suggestion', () => {
  const yaml =
    'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\nspec:\n  selectr: {istio: ingressgateway}\n';
  assert.deepEqual(check(yaml).errors, ['spec.selectr: unknown field; did you mean "selector"?']);
});

test('kinds resolve by name, plural, short name and full resource name', () => {
  for (const n of ['gateway', 'gateways', 'gw', 'Gateway', 'gateways.networking.istio.io']) {
    assert.equal(resolveKind(n)?.kind, 'Gateway', n);
  }
  assert.equal(resolveKind('nosuchkind'), undefined);
});

test('checks: a missing required field skips only its own object; a buggy check over clean input throws', async () => {
  const { obj, req, str, list, ValidationContext } = await import('../src/index.js');
  const item = obj(
    { name: req(str()), image: req(str()) },
    { check: (v, c) => c.field('name').error(`own check saw ${v.name}`) },
  );
  const parent = obj({
    items: list(item, {
      check: (items, c) => {
        const names = items.map((i) => i.name);
        if (new Set(names).size !== names.length) c.error('duplicate names');
      },
    }),
  });
  const ctx = new ValidationContext();
  parent.validate({ items: [{ name: 'a' }, { name: 'a', image: 'x' }] }, ctx);
  assert.deepEqual(
    ctx.problems.map((p) => `${formatPath(p.path)}: ${p.message}`),
    ['items[0].image: is required', 'items[1].name: own check saw a', 'items: duplicate names'],
  );
  const buggy = obj(
    { a: str() },
    {
      check: () => {
        throw new Error('bug in a check');
      },
    },
  );
  assert.throws(() => buggy.validate({ a: 'fine' }, new ValidationContext()), /bug in a check/);
  const tolerated = obj({ a: req(obj({ b: req(str()) })) }, { check: (v) => void v.a.b.length });
  const c2 = new ValidationContext();
  tolerated.validate({ a: {} }, c2);
  assert.deepEqual(
    c2.problems.map((p) => formatPath(p.path)),
    ['a.b'],
  );
});
