// What every `trellis` verb provides, and helpers they share.
import type { ConfigStore } from '@trellis/config';
import type { KindInfo } from '@trellis/api';
import { formatProblem, type LocatedProblem } from '@trellis/api';
import type { FlagSpec, ParsedArgs } from './args.js';
import type { Io } from './io.js';

export interface CommandContext {
  readonly io: Io;
  /** Opens the config store of the state directory (`--state-dir`, TRELLIS_STATE_DIR, ./.trellis). */
  readonly openStore: () => Promise<ConfigStore>;
}

export interface Command {
  readonly name: string;
  /** One line for `trellis --help`. */
  readonly summary: string;
  /** `trellis apply -f FILE|DIR|- [-R] [-n NS]` */
  readonly usage: string;
  readonly description: string;
  readonly flags: readonly FlagSpec[];
  readonly examples: readonly string[];
  run(args: ParsedArgs, ctx: CommandContext): Promise<number>;
}

/** kubectl's name for an object in messages: `virtualservice.networking.istio.io/reviews`, `service/reviews`. */
export function qualifiedName(kind: KindInfo, name: string): string {
  return `${kind.singular}${kind.group ? '.' + kind.group : ''}/${name}`;
}

/** kubectl's resource name: `virtualservices.networking.istio.io`, `services`. */
export function resourceOf(kind: KindInfo): string {
  return kind.group ? `${kind.plural}.${kind.group}` : kind.plural;
}

/** Prints problems (errors and warnings) to stderr, one per line. */
export function printProblems(problems: readonly LocatedProblem[], io: Io): void {
  for (const p of problems)
    io.stderr((p.severity === 'error' ? 'error: ' : '') + formatProblem(p) + '\n');
}

export const NAMESPACE_FLAG: FlagSpec = {
  name: 'namespace',
  short: 'n',
  type: 'string',
  value: 'NS',
  help: 'namespace for objects that do not name one (default "default")',
};

export const FILE_FLAG: FlagSpec = {
  name: 'filename',
  short: 'f',
  type: 'strings',
  value: 'FILE|DIR|-',
  help: 'a YAML or JSON file, a directory of them, or - for standard input (repeatable)',
};

export const RECURSIVE_FLAG: FlagSpec = {
  name: 'recursive',
  short: 'R',
  type: 'bool',
  help: 'read directories given with -f recursively',
};

export { untilSignal } from './signals.js';
