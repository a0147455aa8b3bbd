// RE2 regular expressions (Envoy's `safe_regex`) on JavaScript's RegExp.
//
// Envoy compiles every `RegexMatcher.regex` with Google RE2. JavaScript's engine is a
// backtracking one with a different syntax, so a pattern is translated (RE2's `(?P<name>`,
// flag groups, `(?U)`, `\A`, `\z`, `\Q...\E`, POSIX classes) and RE2's limits are enforced:
// what RE2 rejects (lookaround, backreferences, repetition counts above 1000) is
// rejected here with a message, so a route the control plane could not have meant for
// Envoy is NACKed instead of matching differently.
import { type Result, err, ok } from '@trellis/core';

/** RE2's maximum repetition count (`a{1001}` is "bad repetition operator"). */
const MAX_REPEAT = 1000;

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** RE2's flags in force at a point of a pattern. */
interface Flags {
  /** Case-insensitive. */
  i: boolean;
  /** `^` and `$` at line ends too. */
  m: boolean;
  /** `.` matches `\n`. */
  s: boolean;
  /** Ungreedy: `x*` is lazy and `x*?` greedy. */
  U: boolean;
}

/** A flag group's letters (`i`, `-s`, `i-mU`...) applied to `f`; false when not flags. */
function applyFlags(f: Flags, spec: string): boolean {
  let on = true;
  for (const ch of spec) {
    if (ch === '-') {
      if (!on) return false;
      on = false;
    } else if (ch === 'i' || ch === 'm' || ch === 's' || ch === 'U') f[ch] = on;
    else return false;
  }
  return spec !== '' && spec !== '-';
}

/** A flag group anywhere but at the very start (or (?U) or (?-...) there). */
const LATER_FLAG_GROUP = /.\(\?[imsU-]+[:)]|^\(\?[imsU]*(?:U|-)[imsU-]*[:)]|^\(\?[imsU]+:/;

/** Both cases of an ASCII letter as a class body (`aA`), else the character escaped. */
function folded(c: string): string {
  const lower = c.toLowerCase();
  const upper = c.toUpperCase();
  if (lower === upper) return escapeLiteral(c);
  return `[${lower}${upper}]`;
}

/** The other-case ranges of `[from-to]` within a-z and A-Z (for a case-insensitive class). */
function foldedRange(from: number, to: number): string {
  let out = '';
  const add = (lo: number, hi: number, shift: number): void => {
    const a = Math.max(from, lo);
    const b = Math.min(to, hi);
    if (a <= b) out += `${String.fromCharCode(a + shift)}-${String.fromCharCode(b + shift)}`;
  };
  add(0x61, 0x7a, -0x20);
  add(0x41, 0x5a, 0x20);
  return out;
}

/**
 * The JavaScript source and flags of an RE2 pattern, or why RE2 would reject it. A pattern
 * whose only flag group leads it gets JavaScript's own flags; flag groups elsewhere (`(?i:...)`,
 * `a(?i)b`, `(?-i)`) and `(?U)` are carried out by rewriting what they cover: both cases of
 * each letter, `.` as any character, `^`/`$` at line ends, greedy and lazy quantifiers swapped.
 */
export function translateRe2(pattern: string): Result<{ source: string; flags: string }> {
  const explicit = LATER_FLAG_GROUP.test(pattern);
  let flags = '';
  let i = 0;
  let f: Flags = { i: false, m: false, s: false, U: false };
  if (!explicit) {
    const lead = /^\(\?([ims]+)\)/.exec(pattern);
    if (lead) {
      for (const c of lead[1] ?? '') if (!flags.includes(c)) flags += c;
      i = lead[0].length;
    }
  }
  const stack: Flags[] = [];
  let out = '';
  let unicode = false;
  /** A quantifier just emitted: RE2's `?` after it makes it lazy; (?U) swaps the two. */
  const quantifier = (q: string, at: number): number => {
    const lazy = pattern[at] === '?';
    out += q + (lazy !== f.U ? '?' : '');
    return lazy ? at + 1 : at;
  };
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) return err('trailing backslash at end of expression');
      if (n === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        const lit = end < 0 ? pattern.slice(i + 2) : pattern.slice(i + 2, end);
        out += f.i ? [...lit].map(folded).join('') : escapeLiteral(lit);
        i = end < 0 ? pattern.length : end + 2;
        continue;
      }
      if (n >= '1' && n <= '9') return err(`backreference \\${n} is not supported by RE2`);
      if (n === 'k') return err('named backreferences are not supported by RE2');
      if (n === 'C') {
        // Any byte: one character here (strings are text, not bytes).
        out += '[\\s\\S]';
        i += 2;
        continue;
      }
      if (n === 'A') {
        out += '^';
        i += 2;
        continue;
      }
      if (n === 'z') {
        out += '$';
        i += 2;
        continue;
      }
      if (n === 'p' || n === 'P') {
        unicode = true;
        const name = pattern[i + 2];
        if (name !== undefined && name !== '{') {
          // RE2's one-letter form `\pL` is `\p{L}` in JavaScript.
          out += `\\${n}{${name}}`;
          i += 3;
          continue;
        }
      }
      out += c + n;
      i += 2;
      continue;
    }
    if (c === '[') {
      const cls = translateClass(pattern, i, f.i);
      if (!cls.ok) return cls;
      out += cls.value.source;
      if (cls.value.unicode) unicode = true;
      i = cls.value.end;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2);
      const group = /^([imsU-]*)([:)])/.exec(rest);
      if (group && group[1] !== '') {
        const next = { ...f };
        if (!applyFlags(next, group[1] ?? '')) return err(`invalid flag group (?${group[0]}`);
        if (group[2] === ')') {
          // (?flags): to the end of the enclosing group.
          f = next;
        } else {
          stack.push(f);
          f = next;
          out += '(?:';
        }
        i += 2 + group[0].length;
        continue;
      }
      const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named && !rest.startsWith('<=') && !rest.startsWith('<!')) {
        // A capture group's name is copied as it is (never case-folded).
        stack.push(f);
        f = { ...f };
        out += `(?<${named[1]}>`;
        i += 2 + named[0].length;
        continue;
      }
      if (rest.startsWith('P=')) return err('named backreferences are not supported by RE2');
      if (rest.startsWith(':')) {
        stack.push(f);
        f = { ...f };
        out += '(?:';
        i += 3;
        continue;
      }
      if (/^(?:=|!|<=|<!)/.test(rest)) return err('lookaround assertions are not supported by RE2');
      return err(`invalid or unsupported group (?${rest.slice(0, 2)}`);
    }
    if (c === '(') {
      stack.push(f);
      f = { ...f };
      out += c;
      i++;
      continue;
    }
    if (c === ')') {
      f = stack.pop() ?? f;
      out += c;
      i++;
      continue;
    }
    if (c === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (m) {
        const min = Number(m[1]);
        const max = m[2] === undefined || m[2] === '' ? min : Number(m[2]);
        if (min > MAX_REPEAT || max > MAX_REPEAT)
          return err(`bad repetition operator ${m[0]}: RE2 allows counts up to ${MAX_REPEAT}`);
        if (m[2] !== undefined && m[2] !== '' && max < min)
          return err(`bad repetition operator ${m[0]}`);
        i = quantifier(m[0], i + m[0].length);
        continue;
      }
    }
    if (c === '*' || c === '+' || c === '?') {
      i = quantifier(c, i + 1);
      continue;
    }
    if (explicit && c === '.' && f.s) out += '[\\s\\S]';
    else if (explicit && c === '^' && f.m) out += '(?:^|(?<=\\n))';
    else if (explicit && c === '$' && f.m) out += '(?:$|(?=\\n))';
    else if (explicit && f.i && c.toLowerCase() !== c.toUpperCase()) out += folded(c);
    else out += c;
    i++;
  }
  if (unicode) flags += 'u';
  return ok({ source: out, flags });
}

/**
 * A bracket expression from `pattern[start] === '['`: POSIX classes (`[:digit:]`, negated
 * `[:^digit:]`), a leading `]` as a literal, and both cases of letters and ranges when `fold`.
 */
function translateClass(
  pattern: string,
  start: number,
  fold: boolean,
): Result<{ source: string; end: number; unicode: boolean }> {
  let i = start + 1;
  let negated = false;
  if (pattern[i] === '^') {
    negated = true;
    i++;
  }
  let body = '';
  let unicode = false;
  /** Negated POSIX classes in this bracket (JavaScript has no way to nest them). */
  const excluded: string[] = [];
  let first = true;
  for (;;) {
    const c = pattern[i];
    if (c === undefined) return err('missing closing ]');
    if (c === ']' && !first) break;
    first = false;
    if (c === '[' && pattern[i + 1] === ':') {
      const m = /^\[:(\^?)([a-z]+):\]/.exec(pattern.slice(i));
      if (m) {
        const cls = POSIX_CLASSES[m[2] ?? ''];
        if (cls === undefined) return err(`invalid character class range [:${m[2]}:]`);
        if (m[1] === '^') excluded.push(cls);
        else body += cls;
        i += m[0].length;
        continue;
      }
    }
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) return err('trailing backslash at end of expression');
      if (n === 'p' || n === 'P') unicode = true;
      body += c + n;
      i += 2;
      continue;
    }
    // A range of single characters, or one character.
    if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      const to = pattern[i + 2] as string;
      if (to === '\\' || to === '[') {
        body += escapeClassChar(c);
        i++;
        continue;
      }
      body += `${escapeClassChar(c)}-${escapeClassChar(to)}`;
      if (fold) body += foldedRange(c.charCodeAt(0), to.charCodeAt(0));
      i += 3;
      continue;
    }
    body += escapeClassChar(c);
    if (fold && c.toLowerCase() !== c.toUpperCase())
      body += escapeClassChar(c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());
    i++;
  }
  const end = i + 1;
  if (excluded.length === 0) return ok({ source: `[${negated ? '^' : ''}${body}]`, end, unicode });
  // [a[:^digit:]] is "a, or not a digit"; [^a[:^digit:]] is "a digit, and not a".
  const parts = excluded.map((x) => `[${negated ? '' : '^'}${x}]`);
  if (!negated)
    return ok({
      source: `(?:${[...(body ? [`[${body}]`] : []), ...parts].join('|')})`,
      end,
      unicode,
    });
  const not = body ? `(?![${body}])` : '';
  const last = parts.pop() as string;
  return ok({ source: `(?:${not}${parts.map((p) => `(?=${p})`).join('')}${last})`, end, unicode });
}

/** A character inside a JavaScript class: `]`, `\\`, `^` and `-` escaped. */
function escapeClassChar(c: string): string {
  return c === ']' || c === '\\' || c === '^' || c === '-' || c === '[' ? `\\${c}` : c;
}

/**
 * Compiles an RE2 pattern. `anchored` (the default) makes it match whole strings only, as
 * Envoy's `safe_regex` matchers do (RE2::FullMatch); rewrites use the unanchored form.
 */
export function compileRe2(
  pattern: string,
  options: { readonly anchored?: boolean; readonly global?: boolean } = {},
): Result<RegExp> {
  const t = translateRe2(pattern);
  if (!t.ok) return t;
  const anchored = options.anchored ?? true;
  const source = anchored ? `^(?:${t.value.source})$` : t.value.source;
  const flags = t.value.flags + (options.global ? 'g' : '');
  try {
    return ok(new RegExp(source, flags));
  } catch (e) {
    // V8 says `Invalid regular expression: /<source>/<flags>: <reason>`: keep the reason.
    const msg = e instanceof Error ? (e.message.split(': ').pop() ?? e.message) : String(e);
    return err(`invalid regular expression "${pattern}": ${msg}`);
  }
}

/**
 * Translates an RE2 substitution (`\1` for a capture group, `\\` for a backslash) into
 * JavaScript's `String.prototype.replace` form (`$1`, with `$` escaped as `$$`).
 */
export function translateRe2Substitution(substitution: string): Result<string> {
  let out = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i] as string;
    if (c === '$') {
      out += '$$';
    } else if (c === '\\') {
      const n = substitution[i + 1];
      if (n !== undefined && n >= '0' && n <= '9') {
        out += n === '0' ? '$&' : `$${n}`;
        i++;
      } else if (n === '\\') {
        out += '\\';
        i++;
      } else {
        return err(`invalid rewrite pattern: "\\${n ?? ''}" (use \\0-\\9 or \\\\)`);
      }
    } else {
      out += c;
    }
  }
  return ok(out);
}
