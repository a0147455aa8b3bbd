// Which Sidecar configures a workload: a matching workloadSelector in its namespace (oldest
// first), else the namespace default, else the root namespace default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from '../src/index.js';
import { istio } from './fixtures.js';

const sidecar = (
  ns: string,
  name: string,
  selector: Record<string, string> | undefined,
  created: string,
) =>
  istio(
    'Sidecar',
    ns,
    name,
    {
      ...(selector ? { workloadSelector: { labels: selector } } : {}),
      egress: [{ hosts: ['./*'] }],
    },
    { creationTimestamp: created },
  );

test('sidecar: selector match, then namespace default, then root default', () => {
  const snap = buildSnapshot(
    [
      sidecar('default', 'ns-default', undefined, '2024-01-01T00:00:00Z'),
      sidecar('default', 'reviews-new', { app: 'reviews' }, '2024-03-01T00:00:00Z'),
      sidecar('default', 'reviews-old', { app: 'reviews' }, '2024-02-01T00:00:00Z'),
      sidecar('default', 'ratings-v2', { app: 'ratings', version: 'v2' }, '2024-02-01T00:00:00Z'),
      sidecar('istio-system', 'mesh-default', undefined, '2024-01-01T00:00:00Z'),
      sidecar('istio-system', 'root-selector', { app: 'x' }, '2024-01-01T00:00:00Z'),
    ],
    { version: '1' },
  );
  const pick = (ns: string, labels: Record<string, string>) =>
    snap.sidecarFor(ns, labels)?.name ?? 'none';
  assert.equal(pick('default', { app: 'reviews', version: 'v1' }), 'reviews-old');
  assert.equal(pick('default', { app: 'ratings', version: 'v2' }), 'ratings-v2');
  assert.equal(pick('default', { app: 'ratings', version: 'v1' }), 'ns-default');
  assert.equal(pick('default', {}), 'ns-default');
  assert.equal(pick('other', { app: 'reviews' }), 'mesh-default');
  // A root-namespace Sidecar with a selector applies only to its own namespace's workloads.
  assert.equal(pick('other', { app: 'x' }), 'mesh-default');
  assert.equal(pick('istio-system', { app: 'x' }), 'root-selector');
  assert.equal(pick('istio-system', {}), 'mesh-default');
});

test('sidecar: no Sidecar anywhere means none (every service reachable)', () => {
  const snap = buildSnapshot([sidecar('a', 'only-a', undefined, '2024-01-01T00:00:00Z')], {
    version: '1',
  });
  assert.equal(snap.sidecarFor('b', { app: 'x' }), undefined);
  assert.equal(snap.sidecarFor('a', { app: 'x' })?.name, 'only-a');
});
