// Waiting for SIGINT/SIGTERM: kept apart from command.ts so that long-running verbs (the proxy)
// do not load the API schemas command.ts needs.

/** Resolves on the first SIGINT or SIGTERM (foreground verbs: control-plane, proxy). */
export function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
