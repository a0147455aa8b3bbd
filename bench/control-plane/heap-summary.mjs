#!/usr/bin/env node
// Summarises a V8 .heapsnapshot (from `run.mjs --heap-snapshot`, `node --heapsnapshot-signal` or
// v8.writeHeapSnapshot): what holds the memory. Prints self size by constructor, and the objects
// retaining the most (retained size from the dominator tree, as the DevTools "Retained size"
// column) with the chain of objects that retain them.
//
//   node --max-old-space-size=8192 bench/control-plane/heap-summary.mjs FILE.heapsnapshot [--top 30]
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: node bench/control-plane/heap-summary.mjs FILE.heapsnapshot [--top 30]');
  process.exit(2);
}
const TOP = Number(values.top);
const MB = (b) => `${(b / 1048576).toFixed(1)} MB`;

const snap = JSON.parse(await readFile(file, 'utf8'));
const meta = snap.snapshot.meta;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const nTypes = meta.node_types[0];
const eTypes = meta.edge_types[0];
const N_TYPE = meta.node_fields.indexOf('type');
const N_NAME = meta.node_fields.indexOf('name');
const N_SELF = meta.node_fields.indexOf('self_size');
const N_EDGES = meta.node_fields.indexOf('edge_count');
const E_TYPE = meta.edge_fields.indexOf('type');
const E_NAME = meta.edge_fields.indexOf('name_or_index');
const E_TO = meta.edge_fields.indexOf('to_node');
const { nodes, edges, strings } = snap;
const count = nodes.length / NF;
const WEAK = eTypes.indexOf('weak');
const SHORTCUT = eTypes.indexOf('shortcut');

// Edges of node i: firstEdge[i] .. firstEdge[i + 1] (in edge-field units).
const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) {
  firstEdge[i] = e;
  e += nodes[i * NF + N_EDGES] * EF;
  firstEdge[i + 1] = e;
}
const typeOf = (i) => nTypes[nodes[i * NF + N_TYPE]];
const selfOf = (i) => nodes[i * NF + N_SELF];
function label(i) {
  const t = typeOf(i);
  const name = strings[nodes[i * NF + N_NAME]];
  if (t === 'object' || t === 'closure' || t === 'native') return name.slice(0, 60);
  if (t === 'string' || t === 'concatenated string' || t === 'sliced string') return '(string)';
  return `(${t}) ${name.slice(0, 40)}`;
}
function edgeName(e) {
  const t = eTypes[edges[e + E_TYPE]];
  const n = edges[e + E_NAME];
  return t === 'element' || t === 'hidden' ? `[${n}]` : String(strings[n]).slice(0, 40);
}
const followed = (e) => {
  const t = edges[e + E_TYPE];
  return t !== WEAK && t !== SHORTCUT;
};

// Self size by constructor.
const byClass = new Map();
let total = 0;
for (let i = 0; i < count; i++) {
  const s = selfOf(i);
  total += s;
  const k = label(i);
  const c = byClass.get(k) ?? { n: 0, size: 0 };
  c.n++;
  c.size += s;
  byClass.set(k, c);
}
console.log(`${file}: ${count} nodes, ${MB(total)} self size in total\n`);
console.log('self size by constructor:');
for (const [k, c] of [...byClass].sort((a, b) => b[1].size - a[1].size).slice(0, TOP))
  console.log(`  ${MB(c.size).padStart(10)}  ${String(c.n).padStart(9)}  ${k}`);

// Dominators (Cooper, Harvey and Kennedy's iterative algorithm over a reverse postorder).
const order = new Int32Array(count).fill(-1); // node -> postorder index
const post = new Int32Array(count); // postorder index -> node
let n = 0;
{
  const stack = new Int32Array(count);
  const cursor = new Uint32Array(count);
  let sp = 0;
  stack[sp++] = 0;
  order[0] = -2;
  cursor[0] = firstEdge[0];
  while (sp > 0) {
    const v = stack[sp - 1];
    let pushed = false;
    while (cursor[v] < firstEdge[v + 1]) {
      const e = cursor[v];
      cursor[v] += EF;
      if (!followed(e)) continue;
      const w = edges[e + E_TO] / NF;
      if (order[w] !== -1) continue;
      order[w] = -2;
      cursor[w] = firstEdge[w];
      stack[sp++] = w;
      pushed = true;
      break;
    }
    if (!pushed) {
      sp--;
      order[v] = n;
      post[n++] = v;
    }
  }
}
// Predecessors in CSR form, by postorder index.
const predCount = new Uint32Array(n + 1);
for (let v = 0; v < count; v++) {
  if (order[v] < 0) continue;
  for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += EF) {
    if (!followed(e)) continue;
    const w = edges[e + E_TO] / NF;
    if (order[w] >= 0) predCount[order[w] + 1]++;
  }
}
for (let k = 0; k < n; k++) predCount[k + 1] += predCount[k];
const preds = new Int32Array(predCount[n]);
{
  const fill = predCount.slice(0, n);
  for (let v = 0; v < count; v++) {
    if (order[v] < 0) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += EF) {
      if (!followed(e)) continue;
      const w = edges[e + E_TO] / NF;
      if (order[w] >= 0) preds[fill[order[w]]++] = order[v];
    }
  }
}
const idom = new Int32Array(n).fill(-1);
const root = n - 1; // the root is last in postorder
idom[root] = root;
for (let changed = true; changed;) {
  changed = false;
  for (let b = root - 1; b >= 0; b--) {
    let d = -1;
    for (let p = predCount[b]; p < predCount[b + 1]; p++) {
      let x = preds[p];
      if (idom[x] === -1) continue;
      if (d === -1) {
        d = x;
        continue;
      }
      let y = d;
      while (x !== y) {
        while (x < y) x = idom[x];
        while (y < x) y = idom[y];
      }
      d = x;
    }
    if (d !== -1 && idom[b] !== d) {
      idom[b] = d;
      changed = true;
    }
  }
}
const retained = new Float64Array(n);
for (let b = 0; b < n; b++) retained[b] += selfOf(post[b]);
for (let b = 0; b < root; b++) if (idom[b] >= 0) retained[idom[b]] += retained[b];

// The edge by which the dominator reaches a node (for the chains printed).
function via(b) {
  const d = post[idom[b]];
  const w = post[b];
  for (let e = firstEdge[d]; e < firstEdge[d + 1]; e += EF)
    if (edges[e + E_TO] / NF === w) return edgeName(e);
  return '…';
}
function chain(b) {
  const parts = [];
  for (let x = b, k = 0; x !== root && k < 8; x = idom[x], k++)
    parts.push(`${label(post[x])} ←${via(x)}`);
  return parts.join(' · ');
}

// The largest retainers: objects retaining much whose dominator retains little more than them
// (a dominator chain prints only its deepest big node).
console.log(`\nlargest retainers (retained size, self size, object, dominated by):`);
const big = [];
for (let b = 0; b < root; b++) if (retained[b] > total / 200) big.push(b);
big.sort((a, c) => retained[c] - retained[a]);
const shown = [];
for (const b of big) {
  // Skip an object when a child it dominates retains nearly all of it (print the child).
  let child = false;
  for (const c of big)
    if (idom[c] === b && retained[c] > 0.9 * retained[b]) {
      child = true;
      break;
    }
  if (child) continue;
  shown.push(b);
  if (shown.length >= TOP) break;
}
for (const b of shown)
  console.log(
    `  ${MB(retained[b]).padStart(10)}  ${MB(selfOf(post[b])).padStart(9)}  ${chain(b).slice(0, 400)}`,
  );
