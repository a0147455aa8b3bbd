// Command-line flag parsing, kubectl-shaped: `-n NS`, `--namespace=NS`, `-f a -f b`, `-A`, `--` ends flags.
import { TrellisError } from '@trellis/core';

export type FlagType = 'bool' | 'string' | 'strings';

export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: FlagType;
  readonly help: string;
  /** Shown in help as `--name VALUE`. */
  readonly value?: string;
  /** Allowed values of a string flag. */
  readonly choices?: readonly string[];
}

export interface ParsedArgs {
  readonly positional: readonly string[];
  readonly flags: ReadonlyMap<string, boolean | string | readonly string[]>;
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends TrellisError {
  constructor(message: string) {
    super('TRELLIS_USAGE', message);
    this.name = 'UsageError';
  }
}

export function parseArgs(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  command: string,
): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags = new Map<string, boolean | string | string[]>();
  const positional: string[] = [];
  const set = (spec: FlagSpec, value: string | undefined, display: string): void => {
    if (spec.type === 'bool') {
      if (value === undefined || value === 'true') flags.set(spec.name, true);
      else if (value === 'false') flags.set(spec.name, false);
      else
        throw new UsageError(
          `flag ${display} takes no value (or =true/=false), got ${JSON.stringify(value)}`,
        );
      return;
    }
    if (value === undefined) throw new UsageError(`flag ${display} needs a value`);
    if (spec.choices && !spec.choices.includes(value))
      throw new UsageError(
        `flag ${display}: ${JSON.stringify(value)} is not one of ${spec.choices.join(', ')}`,
      );
    if (spec.type === 'strings') {
      const prev = flags.get(spec.name);
      flags.set(spec.name, [...(Array.isArray(prev) ? prev : []), value]);
    } else flags.set(spec.name, value);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag --${name} for '${command}'`);
      let value = eq < 0 ? undefined : a.slice(eq + 1);
      if (value === undefined && spec.type !== 'bool') value = argv[++i];
      set(spec, value, `--${name}`);
    } else if (a.startsWith('-') && a.length > 1 && a !== '-') {
      const eq = a.indexOf('=');
      const body = eq < 0 ? a.slice(1) : a.slice(1, eq);
      // Bundled booleans (-AR) or one short flag with an attached value (-ndefault, -n=default).
      for (let j = 0; j < body.length; j++) {
        const ch = body[j]!;
        const spec = byShort.get(ch);
        if (!spec) throw new UsageError(`unknown flag -${ch} for '${command}'`);
        if (spec.type === 'bool') {
          set(spec, j === body.length - 1 && eq >= 0 ? a.slice(eq + 1) : undefined, `-${ch}`);
          continue;
        }
        const rest = body.slice(j + 1);
        const value = rest !== '' ? rest : eq >= 0 ? a.slice(eq + 1) : argv[++i];
        set(spec, value, `-${ch}`);
        break;
      }
    } else positional.push(a);
  }
  return { positional, flags };
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagStrings(args: ParsedArgs, name: string): readonly string[] {
  const v = args.flags.get(name);
  return Array.isArray(v) ? (v as readonly string[]) : [];
}

export function flagBool(args: ParsedArgs, name: string): boolean {
  return args.flags.get(name) === true;
}

/** Help text for a command's flags, aligned. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names =
      (s.short ? `-${s.short}, ` : '    ') +
      `--${s.name}` +
      (s.type === 'bool' ? '' : ` ${s.value ?? 'VALUE'}`);
    return [names, s.help] as const;
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([n, h]) => `  ${n.padEnd(width)}  ${h}`).join('\n');
}
