#!/usr/bin/env node
// Writes the benchmark's mesh into a fresh state directory through the real file-backed config
// store: N services (Service + VirtualService + DestinationRule with subsets v1/v2) spread over
// a few namespaces, and E ready Pods per service with distinct IPs. The pods are only data: no
// process listens on their addresses.
//
//   node bench/control-plane/generate.mjs --dir DIR [--services 1000] [--endpoints 10] [--namespaces 10]
import { mkdir, readdir } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { openFileStore } from '@trellis/config';
import {
  destinationRuleObject,
  namespaceObject,
  podObject,
  serviceObject,
  virtualServiceObject,
} from './model.mjs';

/**
 * Generates the mesh into `dir` (which must be empty or absent). Returns the object count and
 * how long it took.
 * @param {{dir: string, services: number, endpoints: number, namespaces: number,
 *          onProgress?: (done: number, total: number) => void}} opts
 */
export async function generate(opts) {
  const size = {
    services: opts.services,
    endpoints: opts.endpoints,
    namespaces: Math.min(opts.namespaces, opts.services),
  };
  await mkdir(opts.dir, { recursive: true });
  if ((await readdir(opts.dir)).length > 0)
    throw new Error(`${opts.dir} is not empty: the benchmark needs a fresh state directory`);
  const started = performance.now();
  const store = await openFileStore(opts.dir);
  const total = size.namespaces + size.services * (3 + size.endpoints);
  let done = 0;
  const put = async (o) => {
    await store.create(o);
    done++;
    if (opts.onProgress && done % 1000 === 0) opts.onProgress(done, total);
  };
  try {
    for (let n = 0; n < size.namespaces; n++) await put(namespaceObject(n));
    for (let i = 0; i < size.services; i++) {
      await put(serviceObject(size, i));
      await put(destinationRuleObject(size, i));
      await put(virtualServiceObject(size, i));
      for (let j = 0; j < size.endpoints; j++) await put(podObject(size, i, j));
    }
  } finally {
    await store.close();
  }
  return { size, objects: done, ms: performance.now() - started };
}

async function main() {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      services: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '10' },
      namespaces: { type: 'string', default: '10' },
    },
  });
  if (!values.dir) throw new Error('--dir DIR is required');
  const r = await generate({
    dir: values.dir,
    services: Number(values.services),
    endpoints: Number(values.endpoints),
    namespaces: Number(values.namespaces),
    onProgress: (d, t) => process.stderr.write(`  ${d}/${t} objects\r`),
  });
  console.log(
    `wrote ${r.objects} objects (${r.size.services} services × ${r.size.endpoints} endpoints ` +
      `in ${r.size.namespaces} namespaces) to ${values.dir} in ${(r.ms / 1000).toFixed(1)} s`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
