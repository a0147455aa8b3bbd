#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by package and by function,
// so a benchmark report can say where the control plane's CPU went.
//
//   node bench/control-plane/profile-summary.mjs FILE.cpuprofile [--top 25] [--last SECONDS]
// (--last: only the final SECONDS of the profile, e.g. the changes after the initial sync)
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** Where a script URL belongs: `@trellis/<pkg>`, a node_modules package, `node:internal`, ... */
function owner(url) {
  if (!url) return '(native code, V8 built-ins)';
  const pkg = /\/packages\/([^/]+)\/dist\//.exec(url);
  if (pkg) return `@trellis/${pkg[1]}`;
  const nm = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return 'node (built-in)';
  return url;
}

/**
 * Self time per package and per function (ms, and % of the busy, non-idle time), from a
 * parsed profile.
 * @returns {{ busyMs: number, idleMs: number, byPackage: {name: string, ms: number, pct: number}[],
 *             byFunction: {name: string, ms: number, pct: number}[] }}
 */
export function summarizeProfile(profile, top = 25, lastSeconds = Infinity) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  // Sample times (µs) from the start, to keep only the final `lastSeconds`.
  let t = 0;
  const times = timeDeltas.map((d) => (t += d));
  const from = t - lastSeconds * 1e6;
  for (let i = 0; i < samples.length; i++) {
    if ((times[i] ?? 0) < from) continue;
    // timeDeltas[i] is the time before sample i; attribute the following interval to it.
    const dt = (timeDeltas[i + 1] ?? 0) / 1000;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const byPackage = new Map();
  const byFunction = new Map();
  let total = 0;
  let idleMs = 0;
  for (const [id, ms] of self) {
    const n = nodes.get(id);
    if (!n) continue;
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') {
      idleMs += ms;
      continue;
    }
    const special = name === '(program)' || name === '(garbage collector)';
    const pkg = special ? name : owner(cf.url);
    const file = cf.url ? cf.url.replace(/^.*\/(packages|node_modules)\//, '') : '';
    const fn = special ? name : `${name} ${file}:${cf.lineNumber + 1}`;
    total += ms;
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  }
  const rows = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({
        name,
        ms: Math.round(ms),
        pct: total ? Math.round((1000 * ms) / total) / 10 : 0,
      }));
  return {
    busyMs: Math.round(total),
    idleMs: Math.round(idleMs),
    byPackage: rows(byPackage),
    byFunction: rows(byFunction),
  };
}

/** Reads and summarises a .cpuprofile file. */
export async function summarizeProfileFile(path, top = 25, lastSeconds = Infinity) {
  return summarizeProfile(JSON.parse(await readFile(path, 'utf8')), top, lastSeconds);
}

/** The summary as text lines. */
export function formatProfileSummary(s) {
  const out = [
    `CPU profile: ${(s.busyMs / 1000).toFixed(1)} s busy, ${(s.idleMs / 1000).toFixed(1)} s idle`,
    '  by package (self, % of busy):',
  ];
  for (const r of s.byPackage) out.push(`    ${String(r.pct).padStart(5)}%  ${r.name}`);
  out.push('  by function (self, % of busy):');
  for (const r of s.byFunction) out.push(`    ${String(r.pct).padStart(5)}%  ${r.name}`);
  return out.join('\n');
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, last: { type: 'string' } },
  });
  const last = values.last === undefined ? Infinity : Number(values.last);
  for (const p of positionals)
    console.log(formatProfileSummary(await summarizeProfileFile(p, Number(values.top), last)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
