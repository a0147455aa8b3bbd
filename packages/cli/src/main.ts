// The `trellis` command: parses the verb and dispatches to its handler.

/** Runs the CLI with arguments (without node and script); resolves to the exit code. */
export function main(argv: readonly string[]): Promise<number> {
  process.stdout.write(`trellis: ${argv.join(' ')}\n`);
  return Promise.resolve(0);
}
