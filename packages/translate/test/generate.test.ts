// generate() as a whole: deterministic output, per-type generators that agree with it, RDS names.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generate, generateListeners, generateRoutes, routeNamesOf } from '../src/index.js';
import { bookinfoObjects, gatewayProxy, loadSample, proxyForPod, snapshotOf } from './fixtures.js';

const NET = 'samples/bookinfo/networking';

describe('generate', () => {
  const objects = bookinfoObjects(
    loadSample(`${NET}/destination-rule-all.yaml`),
    loadSample(`${NET}/virtual-service-reviews-jason-v2-v3.yaml`),
    loadSample(`${NET}/bookinfo-gateway.yaml`),
  );

  test('same inputs, same bytes, whatever the order of the objects', () => {
    const a = snapshotOf(objects);
    const b = snapshotOf([...objects].reverse());
    const pa = proxyForPod(a, objects, 'productpage-v1-0');
    const pb = proxyForPod(b, objects, 'productpage-v1-0');
    assert.equal(JSON.stringify(generate(a, pa)), JSON.stringify(generate(b, pb)));
    assert.equal(
      JSON.stringify(generate(a, gatewayProxy(a, objects))),
      JSON.stringify(generate(b, gatewayProxy(b, objects))),
    );
  });

  test('per-type generators agree with generate(); RDS names come from the listeners', () => {
    const snapshot = snapshotOf(objects);
    const proxy = proxyForPod(snapshot, objects, 'reviews-v1-0');
    const all = generate(snapshot, proxy);
    assert.deepEqual(generateListeners(snapshot, proxy), all.listeners);
    assert.deepEqual(generateRoutes(snapshot, proxy), all.routes);
    assert.deepEqual(routeNamesOf(all.listeners), ['80', '9080']); // 80: the ingress gateway's http2 port
    assert.deepEqual(
      generateRoutes(snapshot, proxy, ['9080', 'no-such-route']).map((r) => [
        r.name,
        r.virtualHosts?.length,
      ]),
      [
        ['9080', 5],
        ['no-such-route', 0],
      ],
    );
    assert.deepEqual(
      generateListeners(snapshot, proxy, ['virtualInbound']).map((l) => l.name),
      ['virtualInbound'],
    );
  });
});
