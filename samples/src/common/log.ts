// Log lines of the samples: one line per event on stdout, prefixed with the time and the app name.

/** Writes one line `<ISO time> <app> <message>` to stdout. */
export function logLine(app: string, message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${app} ${message}\n`);
}

/** Writes one line to stderr (startup failures, bad arguments). */
export function logError(app: string, message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${app} error: ${message}\n`);
}
