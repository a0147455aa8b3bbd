// RE2 regular expressions (Envoy's `safe_regex`) on JavaScript's RegExp.
//
// Envoy compiles every `RegexMatcher.regex` with Google RE2. JavaScript's engine is a
// backtracking one with a different syntax, so a pattern is translated (RE2's `(?P<name>`,
// leading flag groups, `\A`, `\z`, `\Q...\E`, POSIX classes) and RE2's limits are enforced:
// what RE2 rejects (lookaround, backreferences, repetition counts above 1000, `\C`) is
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

/** The JavaScript source and flags of an RE2 pattern, or why RE2 would reject it. */
export function translateRe2(pattern: string): Result<{ source: string; flags: string }> {
  let flags = '';
  let i = 0;
  // RE2 accepts flag groups anywhere; JavaScript (before RegExp modifiers) only as flags of
  // the whole expression, so only a leading `(?flags)` is supported.
  const lead = /^\(\?([imsU]+)\)/.exec(pattern);
  if (lead) {
    for (const f of lead[1] ?? '') {
      if (f === 'U') return err('the ungreedy flag (?U) is not supported');
      if (!flags.includes(f)) flags += f;
    }
    i = lead[0].length;
  }
  let out = '';
  let inClass = false;
  let unicode = false;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) return err('trailing backslash at end of expression');
      if (n === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        const lit = end < 0 ? pattern.slice(i + 2) : pattern.slice(i + 2, end);
        out += escapeLiteral(lit);
        i = end < 0 ? pattern.length : end + 2;
        continue;
      }
      if (n >= '1' && n <= '9') return err(`backreference \\${n} is not supported by RE2`);
      if (n === 'k') return err('named backreferences are not supported by RE2');
      if (n === 'C') return err('\\C (any byte) is not supported');
      if (!inClass && n === 'A') {
        out += '^';
        i += 2;
        continue;
      }
      if (!inClass && n === 'z') {
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
    if (inClass) {
      if (c === '[' && pattern[i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(pattern.slice(i));
        if (m) {
          const cls = POSIX_CLASSES[m[2] ?? ''];
          if (cls === undefined) return err(`invalid character class range [:${m[2]}:]`);
          if (m[1] === '^') return err(`negated POSIX class [:^${m[2]}:] is not supported`);
          out += cls;
          i += m[0].length;
          continue;
        }
      }
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      // A `]` right after `[` or `[^` is a literal in RE2.
      if (pattern[i] === '^') {
        out += '^';
        i++;
      }
      if (pattern[i] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (rest.startsWith('P=')) return err('named backreferences are not supported by RE2');
      if (rest.startsWith(':')) {
        out += '(?:';
        i += 3;
        continue;
      }
      if (rest.startsWith('<') && !rest.startsWith('<=') && !rest.startsWith('<!')) {
        out += '(?<';
        i += 3;
        continue;
      }
      if (/^(?:=|!|<=|<!)/.test(rest)) return err('lookaround assertions are not supported by RE2');
      return err(`flag groups are only supported at the start of the expression`);
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
        out += m[0];
        i += m[0].length;
        continue;
      }
    }
    out += c;
    i++;
  }
  if (inClass) return err('missing closing ]');
  if (unicode) flags += 'u';
  return ok({ source: out, flags });
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
