// Every field declared by the TypeScript interfaces exists in the proto message named at
// the start of the interface's JSDoc, under its proto3-JSON name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { messageType } from '../src/index.js';
import { typeInfo } from '../src/proto-info.js';

const srcDir = join(fileURLToPath(import.meta.url), '..', '..', '..', 'src');
const FILES = [
  'core.ts',
  'matcher.ts',
  'listener.ts',
  'route.ts',
  'cluster.ts',
  'endpoint.ts',
  'tls.ts',
  'http-filters.ts',
];

test('interface fields match the protos', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of FILES) {
    const text = readFileSync(join(srcDir, file), 'utf8');
    const re =
      /\/\*\*\s*`([\w.]+)`[^*]*(?:\*(?!\/)[^*]*)*\*\/\s*export interface (\w+)[^{]*\{([\s\S]*?)\n\}/g;
    for (const m of text.matchAll(re)) {
      const [, protoName = '', iface = '', body = ''] = m;
      const info = typeInfo(messageType(protoName));
      for (const line of body.split('\n')) {
        const f = /^ {2}(\w+)\??:/.exec(line);
        if (!f?.[1]) continue;
        checked++;
        if (!info.byJsonName.has(f[1]))
          problems.push(`${file}: ${iface}.${f[1]} is not a field of ${protoName}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 300, `only ${checked} fields checked`);
});
