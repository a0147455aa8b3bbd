// Defensive readers for stored objects. The store validates what it accepts, but the registry
// never trusts shape: a malformed field is read as absent, never as a crash.
import type { Labels } from './model.js';

export type Json = Readonly<Record<string, unknown>>;

export function asObject(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

export function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function asNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function asBool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

export function asArray(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? (v as readonly unknown[]) : [];
}

/** A map of strings (labels, annotations, selectors); non-string values are dropped. */
export function asLabels(v: unknown): Labels {
  const o = asObject(v);
  if (!o) return EMPTY_LABELS;
  let clean = true;
  for (const k in o) if (typeof o[k] !== 'string') clean = false;
  if (clean) return o as Labels;
  const out: Record<string, string> = {};
  for (const k in o) {
    const s = o[k];
    if (typeof s === 'string') out[k] = s;
  }
  return out;
}

/** A map of port numbers (WorkloadEntry `ports`); non-numbers are dropped. */
export function asPortMap(v: unknown): Readonly<Record<string, number>> {
  const o = asObject(v);
  const out: Record<string, number> = {};
  if (!o) return out;
  for (const k in o) {
    const n = asNumber(o[k]);
    if (n !== undefined && Number.isInteger(n) && n > 0 && n <= 65535) out[k] = n;
  }
  return out;
}

export const EMPTY_LABELS: Labels = Object.freeze({});

/** `obj.a.b.c` read step by step through objects. */
export function path(v: unknown, ...keys: string[]): unknown {
  let cur: unknown = v;
  for (const k of keys) {
    const o = asObject(cur);
    if (!o) return undefined;
    cur = o[k];
  }
  return cur;
}
