#!/usr/bin/env node
// Checks the dependency direction between packages and finds import cycles.
//
// Layers (a package may import only the packages listed for it):
//   core, api <- config, registry <- translate <- xds-server <- control-plane
//   proxy depends on core and envoy (the xDS types) only.
//   samples (the stand-alone sample apps in samples/) import node built-ins only.
// Source files never import @trellis/testing; tests may. A relative import never leaves
// its package. Cycles are reported between packages and between files of one package.
//
// Usage: node scripts/check-imports.mjs [ROOT]   (exit 1 with every violation listed)
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, dirname, relative, resolve, sep } from 'node:path';

export const ALLOWED = {
  core: [],
  envoy: ['core'],
  api: ['core'],
  config: ['core', 'api'],
  registry: ['core', 'api', 'config'],
  translate: ['core', 'api', 'envoy', 'registry'],
  ca: ['core'],
  'xds-server': ['core', 'api', 'envoy', 'config', 'registry', 'translate', 'ca'],
  proxy: ['core', 'envoy'],
  kube: ['core', 'api', 'config', 'registry'],
  'control-plane': [
    'core',
    'api',
    'envoy',
    'config',
    'registry',
    'translate',
    'xds-server',
    'ca',
    'kube',
  ],
  local: ['core', 'api', 'config', 'control-plane', 'proxy', 'ca', 'kube'],
  dashboard: ['core'],
  cli: [
    'core',
    'api',
    'envoy',
    'config',
    'registry',
    'translate',
    'xds-server',
    'ca',
    'control-plane',
    'proxy',
    'kube',
    'local',
    'dashboard',
  ],
  testing: null, // anything below it
  e2e: null, // end-to-end tests: anything
  samples: [], // stand-alone apps, as real services would be: node built-ins only
};

/** Packages that may import node built-ins (`node:...`) only: no npm package, no @trellis. */
const BUILTINS_ONLY = new Set(['samples']);

/** Directories checked outside packages/ (name -> path relative to the root). */
const EXTRA_PACKAGES = { samples: 'samples' };

const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'fixtures') continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Strips comments so that imports mentioned in prose are not counted. */
function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Finds strongly connected components with more than one node (or a self-loop). */
export function findCycles(graph) {
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const idx = new Map();
  const low = new Map();
  const cycles = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return cycles;
}

export function checkImports(root) {
  const problems = [];
  const pkgsDir = join(root, 'packages');
  const pkgDirs = new Map(
    readdirSync(pkgsDir)
      .filter((n) => existsSync(join(pkgsDir, n, 'package.json')))
      .map((n) => [n, join(pkgsDir, n)]),
  );
  for (const [name, dir] of Object.entries(EXTRA_PACKAGES)) {
    if (existsSync(join(root, dir, 'package.json'))) pkgDirs.set(name, join(root, dir));
  }
  const pkgs = [...pkgDirs.keys()];
  const pkgGraph = new Map();
  for (const pkg of pkgs) {
    const pkgDir = pkgDirs.get(pkg);
    const pkgRel = relative(root, pkgDir);
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    const declared = new Set(Object.keys(manifest.dependencies ?? {}));
    if (!(pkg in ALLOWED))
      problems.push(`${pkgRel}: not in the layer table of scripts/check-imports.mjs`);
    const allowed = ALLOWED[pkg] === null ? pkgs.filter((p) => p !== pkg) : (ALLOWED[pkg] ?? []);
    pkgGraph.set(pkg, new Set());
    const fileGraph = new Map();
    const files = [...walk(join(pkgDir, 'src'), []), ...walk(join(pkgDir, 'test'), [])];
    for (const file of files) {
      const rel = relative(root, file);
      const isTest = relative(pkgDir, file).startsWith('test' + sep);
      const text = stripComments(readFileSync(file, 'utf8'));
      fileGraph.set(file, new Set());
      for (const m of text.matchAll(IMPORT_RE)) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
          if (!target.startsWith(pkgDir + sep)) {
            problems.push(
              `${rel}: relative import '${spec}' leaves package ${pkg}; import @trellis/<name> instead`,
            );
            continue;
          }
          if (!isTest && relative(pkgDir, target).startsWith('test' + sep)) {
            problems.push(`${rel}: source imports test file '${spec}'`);
          }
          fileGraph.get(file).add(target);
        } else if (BUILTINS_ONLY.has(pkg) && !spec.startsWith('node:')) {
          problems.push(`${rel}: ${pkg} imports node built-ins only ('node:...'), not '${spec}'`);
        } else if (spec.startsWith('@trellis/')) {
          const dep = spec.slice('@trellis/'.length).split('/')[0];
          if (dep === pkg) {
            problems.push(
              `${rel}: imports its own package by name ('${spec}'); use a relative import`,
            );
            continue;
          }
          if (dep === 'testing' && !isTest) {
            problems.push(`${rel}: source code imports @trellis/testing (only tests may)`);
            continue;
          }
          if (dep === 'testing' && isTest) continue;
          if (!allowed.includes(dep)) {
            problems.push(
              `${rel}: ${pkg} may not import @trellis/${dep} (allowed: ${allowed.join(', ') || 'none'})`,
            );
          } else if (!declared.has(`@trellis/${dep}`)) {
            problems.push(
              `${rel}: imports @trellis/${dep}, which ${pkgRel}/package.json does not declare`,
            );
          }
          pkgGraph.get(pkg).add(dep);
        }
      }
    }
    for (const cycle of findCycles(fileGraph)) {
      problems.push(`import cycle in ${pkg}: ${cycle.map((f) => relative(root, f)).join(' -> ')}`);
    }
  }
  for (const cycle of findCycles(pkgGraph))
    problems.push(`package import cycle: ${cycle.join(' -> ')}`);
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..'));
  const problems = checkImports(root);
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(`check-imports: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log('check-imports: dependency direction and cycles OK');
}
