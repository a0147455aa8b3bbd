// Prints how long the registry controller's per-change work takes (next snapshot + diff) on the
// control-plane benchmark's mesh, built in memory with the same shapes as
// bench/control-plane/model.mjs: N Services, each with a VirtualService and a DestinationRule,
// and E ready Pods per Service, over a few namespaces. Not a test: it asserts nothing.
//
//   npx tsc -b && node packages/registry/dist/test/snapshot-timing.js [services] [endpoints] [namespaces]
import { performance } from 'node:perf_hooks';
import type { KubeObject } from '@trellis/api';
import { deepFreeze } from '@trellis/core';
import { buildSnapshot, diffSnapshots, updateSnapshot, type Snapshot } from '../src/index.js';

const [services = 1000, endpoints = 10, namespaces = 10] = process.argv.slice(2).map(Number);

const ns = (i: number): string => `bench-${i % namespaces}`;
const key = (o: KubeObject): string =>
  `${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function podObject(i: number, j: number, ready = true): KubeObject {
  const k = i * endpoints + j + 1;
  const ip = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `svc-${i}-${j}`,
      namespace: ns(i),
      labels: { app: `svc-${i}`, version: j % 2 === 0 ? 'v1' : 'v2' },
    },
    spec: {
      serviceAccountName: `svc-${i}`,
      containers: [
        { name: 'app', image: 'bench/app:1', ports: [{ name: 'http', containerPort: 9080 }] },
      ],
    },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  };
}

function virtualService(i: number, v1Weight: number): KubeObject {
  const host = `svc-${i}`;
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: host, namespace: ns(i) },
    spec: {
      hosts: [host],
      http: [
        {
          route: [
            { destination: { host, subset: 'v1' }, weight: v1Weight },
            { destination: { host, subset: 'v2' }, weight: 100 - v1Weight },
          ],
        },
      ],
    },
  };
}

const objects = new Map<string, KubeObject>();
const put = (o: KubeObject): string => {
  const k = key(o);
  objects.set(k, deepFreeze(o));
  return k;
};
for (let n = 0; n < namespaces; n++)
  put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `bench-${n}` } });
for (let i = 0; i < services; i++) {
  const name = `svc-${i}`;
  put({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns(i), labels: { app: name } },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
  });
  put({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: ns(i) },
    spec: {
      host: name,
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  });
  put(virtualService(i, 90));
  for (let j = 0; j < endpoints; j++) put(podObject(i, j));
}

let version = 0;
const t = performance.now();
let snap: Snapshot = buildSnapshot([...objects.values()], { version: String(++version) });
console.log(`${objects.size} objects; first snapshot ${(performance.now() - t).toFixed(1)} ms`);

type Mode = 'updateSnapshot' | 'buildSnapshot(previous)' | 'from scratch';
const results = new Map<string, number[]>();
function step(label: string, mode: Mode, change: () => string[]): void {
  const keys = change();
  const opts = { version: String(++version) };
  const start = performance.now();
  const next =
    mode === 'updateSnapshot'
      ? updateSnapshot(snap, new Map(keys.map((k) => [k, objects.get(k)])), opts)
      : buildSnapshot([...objects.values()], opts, mode === 'from scratch' ? undefined : snap);
  diffSnapshots(snap, next);
  const ms = performance.now() - start;
  snap = next;
  const name = `${label.padEnd(16)} ${mode}`;
  results.set(name, [...(results.get(name) ?? []), ms]);
}

const modes: Mode[] = ['updateSnapshot', 'buildSnapshot(previous)', 'from scratch'];
for (const mode of modes) {
  const rounds = mode === 'from scratch' ? 5 : 40;
  for (let r = 0; r < rounds; r++) {
    const i = (r * 37) % services;
    step('pod not ready', mode, () => [put(podObject(i, 3, false))]);
    step('pod ready', mode, () => [put(podObject(i, 3, true))]);
    step('VirtualService', mode, () => [put(virtualService(i, 50 + (r % 40)))]);
  }
}
console.log('next snapshot + diff, median (max) over the rounds:');
for (const [name, list] of results) {
  const sorted = [...list].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  console.log(`  ${name}  ${median.toFixed(2)} ms (${sorted[sorted.length - 1]!.toFixed(2)} ms)`);
}
