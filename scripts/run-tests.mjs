#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/test/**/*.test.js and samples/dist/test) with
// node's test runner.
// Usage: node scripts/run-tests.mjs [FILTER...]  (FILTER: substrings of the test file path)
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = join(import.meta.dirname, '..');
const filters = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
};
for (const pkg of readdirSync(join(root, 'packages')).sort())
  walk(join(root, 'packages', pkg, 'dist', 'test'));
walk(join(root, 'samples', 'dist', 'test'));
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  // --test-force-exit: a test file ends when its tests end. grpc-js-xds keeps its xDS client
  // (and a half-closed connection) for the life of the process, with no API to close it.
  [
    '--enable-source-maps',
    '--test',
    '--test-force-exit',
    '--test-concurrency=4',
    '--test-reporter=spec',
    ...chosen,
  ],
  { stdio: 'inherit', cwd: root },
);
process.exit(res.status ?? 1);
