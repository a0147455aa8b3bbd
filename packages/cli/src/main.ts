// The `trellis` command: global flags, verb dispatch, help, and the one place errors become exit codes.
import { errorMessage } from '@trellis/core';
import { openFileStore, resolveStateDir } from '@trellis/config';
import { UsageError, formatFlags, parseArgs, flagBool, flagString, type FlagSpec } from './args.js';
import type { Command, CommandContext } from './command.js';
import { processIo, type Io } from './io.js';
import { applyCommand } from './commands/apply.js';
import { createCommand } from './commands/create.js';
import { deleteCommand } from './commands/delete.js';
import { getCommand } from './commands/get.js';
import { validateCommand } from './commands/validate.js';
import { controlPlaneCommand } from './commands/control-plane.js';
import { proxyCommand } from './commands/proxy.js';
import { proxyConfigCommand } from './commands/proxy-config.js';
import { proxyStatusCommand } from './commands/proxy-status.js';
import { upCommand } from './commands/up.js';
import { downCommand } from './commands/down.js';
import { statusCommand } from './commands/status.js';
import { logsCommand } from './commands/logs.js';
import { demoCommand } from './commands/demo.js';

export const VERSION = '0.1.0';

const COMMANDS: readonly Command[] = [
  demoCommand,
  validateCommand,
  applyCommand,
  getCommand,
  deleteCommand,
  createCommand,
  controlPlaneCommand,
  proxyCommand,
  proxyStatusCommand,
  proxyConfigCommand,
  upCommand,
  downCommand,
  statusCommand,
  logsCommand,
];

const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'state-dir',
    type: 'string',
    value: 'DIR',
    help: 'state directory (default $TRELLIS_STATE_DIR, else ./.trellis)',
  },
  { name: 'help', short: 'h', type: 'bool', help: 'show help' },
];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "trellis: a service mesh that speaks Istio's configuration API",
    '',
    'Usage: trellis COMMAND [flags]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'version'.padEnd(width)}  Print the version`,
    '',
    'Global flags:',
    formatFlags(GLOBAL_FLAGS),
    '',
    "Run 'trellis COMMAND --help' for a command's flags and examples.",
    '',
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [
    c.summary,
    '',
    `Usage: ${c.usage}`,
    '',
    c.description,
    '',
    'Flags:',
    formatFlags([...c.flags, ...GLOBAL_FLAGS]),
    '',
    'Examples:',
    ...c.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}

/** Runs the CLI with arguments (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    const target = verb === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.stdout(target ? commandHelp(target) : topHelp());
    return 0;
  }
  if (verb === 'version' || verb === '--version') {
    io.stdout(`trellis version ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === verb);
  if (!command) {
    io.stderr(`error: unknown command "${verb}" for "trellis"\nRun 'trellis --help' for usage.\n`);
    return 2;
  }
  try {
    const args = parseArgs(rest, [...command.flags, ...GLOBAL_FLAGS], `trellis ${command.name}`);
    if (flagBool(args, 'help')) {
      io.stdout(commandHelp(command));
      return 0;
    }
    const ctx: CommandContext = {
      io,
      openStore: () =>
        openFileStore(
          resolveStateDir({
            ...(flagString(args, 'state-dir') !== undefined
              ? { flag: flagString(args, 'state-dir') }
              : {}),
            env: io.env,
            cwd: io.cwd,
          }),
        ),
    };
    return await command.run(args, ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\nRun 'trellis ${command.name} --help' for usage.\n`);
      return 2;
    }
    io.stderr(`error: ${errorMessage(e)}\n`);
    return 1;
  }
}
