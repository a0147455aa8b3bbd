// Error classes with stable codes, so callers and tests match on `code`, not on messages.

/** Every error Trellis raises on purpose carries a stable, upper-case code. */
export class TrellisError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TrellisError';
  }
}

/** Optimistic-concurrency failure: the object changed since the caller read it. */
export class ConflictError extends TrellisError {
  constructor(message: string) {
    super('TRELLIS_CONFLICT', message);
    this.name = 'ConflictError';
  }
}

/** The named object does not exist. */
export class NotFoundError extends TrellisError {
  constructor(message: string) {
    super('TRELLIS_NOT_FOUND', message);
    this.name = 'NotFoundError';
  }
}

/** Creating an object that already exists. */
export class AlreadyExistsError extends TrellisError {
  constructor(message: string) {
    super('TRELLIS_ALREADY_EXISTS', message);
    this.name = 'AlreadyExistsError';
  }
}

/** Input that failed validation; `problems` holds every located message. */
export class InvalidError extends TrellisError {
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = []) {
    super('TRELLIS_INVALID', message);
    this.name = 'InvalidError';
    this.problems = problems;
  }
}

/** Returns the `code` of a TrellisError or a Node system error, if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** A message for any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
