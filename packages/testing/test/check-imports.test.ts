// The dependency-direction and import-cycle check (scripts/check-imports.mjs) catches what it should.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withTempDir } from '../src/index.js';

const SCRIPT = join(import.meta.dirname, '..', '..', '..', '..', 'scripts', 'check-imports.mjs');

async function pkg(
  root: string,
  name: string,
  deps: string[],
  files: Record<string, string>,
): Promise<void> {
  const dir = join(root, 'packages', name);
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({
      name: `@trellis/${name}`,
      dependencies: Object.fromEntries(deps.map((d) => [`@trellis/${d}`, '0.1.0'])),
    }),
  );
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, 'src', f), text);
}

function run(root: string): { status: number; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  return { status: r.status ?? -1, stderr: r.stderr };
}

test('check-imports passes a clean tree', async () => {
  await withTempDir(async (root) => {
    await pkg(root, 'core', [], { 'index.ts': 'export const x = 1;\n' });
    await pkg(root, 'api', ['core'], {
      'index.ts': "import { x } from '@trellis/core';\nexport const y = x;\n",
    });
    assert.equal(run(root).status, 0);
  });
});

test('check-imports reports an upward import, an undeclared dependency and a file cycle', async () => {
  await withTempDir(async (root) => {
    await pkg(root, 'core', [], {
      'index.ts':
        "// import { y } from '@trellis/api'; (a comment, not an import)\nimport { y } from '@trellis/api';\nexport const x = y;\n",
    });
    await pkg(root, 'api', [], {
      'index.ts':
        "import { x } from '@trellis/core';\nexport { a } from './a.js';\nexport const y = x;\n",
      'a.ts': "import { b } from './b.js';\nexport const a = b;\n",
      'b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    });
    const r = run(root);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /packages\/core\/src\/index\.ts: core may not import @trellis\/api/);
    assert.match(
      r.stderr,
      /packages\/api\/src\/index\.ts: imports @trellis\/core, which packages\/api\/package\.json does not declare/,
    );
    assert.match(
      r.stderr,
      /import cycle in api: packages\/api\/src\/a\.ts -> packages\/api\/src\/b\.ts/,
    );
    assert.equal((r.stderr.match(/may not import/g) ?? []).length, 1);
  });
});
