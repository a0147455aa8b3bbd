// Envoy's StringMatcher (exact / prefix / suffix / contains with ignore_case, safe_regex as a
// full match), compiled once into a predicate.
import type { StringMatcher } from '@trellis/envoy';
import { compileRe2 } from '../xds/re2.js';

export type StringPredicate = (value: string) => boolean;

const NEVER: StringPredicate = () => false;

/** A predicate for `m`; a matcher the validator should have refused never matches. */
export function compileStringMatcher(m: StringMatcher): StringPredicate {
  const ic = m.ignoreCase === true;
  if (m.exact !== undefined) {
    const e = ic ? m.exact.toLowerCase() : m.exact;
    return ic ? (v) => v.toLowerCase() === e : (v) => v === e;
  }
  if (m.prefix !== undefined) {
    const p = ic ? m.prefix.toLowerCase() : m.prefix;
    return ic ? (v) => v.toLowerCase().startsWith(p) : (v) => v.startsWith(p);
  }
  if (m.suffix !== undefined) {
    const s = ic ? m.suffix.toLowerCase() : m.suffix;
    return ic ? (v) => v.toLowerCase().endsWith(s) : (v) => v.endsWith(s);
  }
  if (m.contains !== undefined) {
    const c = ic ? m.contains.toLowerCase() : m.contains;
    return ic ? (v) => v.toLowerCase().includes(c) : (v) => v.includes(c);
  }
  if (m.safeRegex?.regex !== undefined) {
    const re = compileRe2(m.safeRegex.regex);
    if (!re.ok) return NEVER;
    const r = re.value;
    return (v) => r.test(v);
  }
  return NEVER;
}
