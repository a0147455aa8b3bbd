// The sleep sample: a process that does nothing until it is stopped, so the mesh has a client
// workload to run `trellis-sample curl` from (Istio's sleep/curl pods run `sleep infinity`).
import { logLine } from './common/log.js';
import { UsageError } from './common/args.js';

/** Idles for `seconds` (default forever), or until SIGTERM/SIGINT; resolves with the exit code. */
export function runSleep(args: readonly string[]): Promise<number> {
  const arg = args[0] ?? 'infinity';
  if (args.length > 1) throw new UsageError('sleep takes at most one argument: SECONDS|infinity');
  const seconds = arg === 'infinity' ? Infinity : Number(arg);
  if (!(seconds >= 0)) throw new UsageError(`bad duration ${JSON.stringify(arg)}`);
  logLine('sleep', seconds === Infinity ? 'sleeping until stopped' : `sleeping ${seconds}s`);
  return new Promise((resolve) => {
    // A repeating timer keeps the event loop alive (a single timer cannot exceed ~24.8 days).
    const started = Date.now();
    const tick = setInterval(
      () => {
        if (Date.now() - started >= seconds * 1000) finish(0, 'done');
      },
      Math.min(60_000, Math.max(1, seconds * 1000)),
    );
    const finish = (code: number, why: string) => {
      clearInterval(tick);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      logLine('sleep', why);
      resolve(code);
    };
    const onTerm = () => finish(0, 'received SIGTERM, stopping');
    const onInt = () => finish(0, 'received SIGINT, stopping');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}
