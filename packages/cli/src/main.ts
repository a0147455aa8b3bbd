// The `trellis` command: global flags, verb dispatch, help, and the one place errors become exit codes.
import { errorMessage } from '@trellis/core';
import { UsageError, formatFlags, parseArgs, flagBool, flagString, type FlagSpec } from './args.js';
import type { Command, CommandContext } from './command.js';
import { processIo, type Io } from './io.js';

export const VERSION = '0.1.0';

/**
 * The verbs, in help order, each loaded only when used: a proxy process then loads the proxy and
 * not the control plane, the local runtime or the API schemas (less memory, faster start).
 */
const COMMANDS: readonly (readonly [string, () => Promise<Command>])[] = [
  ['demo', async () => (await import('./commands/demo.js')).demoCommand],
  ['validate', async () => (await import('./commands/validate.js')).validateCommand],
  ['apply', async () => (await import('./commands/apply.js')).applyCommand],
  ['get', async () => (await import('./commands/get.js')).getCommand],
  ['delete', async () => (await import('./commands/delete.js')).deleteCommand],
  ['create', async () => (await import('./commands/create.js')).createCommand],
  ['control-plane', async () => (await import('./commands/control-plane.js')).controlPlaneCommand],
  ['proxy', async () => (await import('./commands/proxy.js')).proxyCommand],
  ['proxy-status', async () => (await import('./commands/proxy-status.js')).proxyStatusCommand],
  ['proxy-config', async () => (await import('./commands/proxy-config.js')).proxyConfigCommand],
  ['up', async () => (await import('./commands/up.js')).upCommand],
  ['down', async () => (await import('./commands/down.js')).downCommand],
  ['status', async () => (await import('./commands/status.js')).statusCommand],
  ['logs', async () => (await import('./commands/logs.js')).logsCommand],
];

async function loadCommand(name: string | undefined): Promise<Command | undefined> {
  const entry = COMMANDS.find(([n]) => n === name);
  return entry ? await entry[1]() : undefined;
}

const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'state-dir',
    type: 'string',
    value: 'DIR',
    help: 'state directory (default $TRELLIS_STATE_DIR, else ./.trellis)',
  },
  { name: 'help', short: 'h', type: 'bool', help: 'show help' },
];

async function topHelp(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map(([, load]) => load()));
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "trellis: a service mesh that speaks Istio's configuration API",
    '',
    'Usage: trellis COMMAND [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
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
    const target = verb === 'help' ? await loadCommand(rest[0]) : undefined;
    io.stdout(target ? commandHelp(target) : await topHelp());
    return 0;
  }
  if (verb === 'version' || verb === '--version') {
    io.stdout(`trellis version ${VERSION}\n`);
    return 0;
  }
  const command = await loadCommand(verb);
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
      openStore: async () => {
        const { openFileStore, resolveStateDir } = await import('@trellis/config');
        return openFileStore(
          resolveStateDir({
            ...(flagString(args, 'state-dir') !== undefined
              ? { flag: flagString(args, 'state-dir') }
              : {}),
            env: io.env,
            cwd: io.cwd,
          }),
        );
      },
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
