// Problems found while validating, each with a field path, and the context that collects them.

/** One step of a field path: an object field or map key (string) or a list index (number). */
export type PathSegment = string | number;

export type Severity = 'error' | 'warning';

/** One problem with an object, at a field path relative to the object's root. */
export interface Problem {
  readonly severity: Severity;
  readonly path: readonly PathSegment[];
  readonly message: string;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** Formats a path the way users read it: `spec.http[0].route[1].weight`, `labels["app.kubernetes.io/name"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Collects problems while walking a value. A context is a cursor at one path; `field`
 * and `index` make child cursors that share the same sink.
 */
export class ValidationContext {
  /** Problems that stop object-level checks from running (wrong types). */
  private readonly shared: { typeErrors: number; errors: number };

  constructor(
    readonly path: readonly PathSegment[] = [],
    readonly problems: Problem[] = [],
    shared?: { typeErrors: number; errors: number },
  ) {
    this.shared = shared ?? { typeErrors: 0, errors: 0 };
  }

  field(name: string): ValidationContext {
    return new ValidationContext([...this.path, name], this.problems, this.shared);
  }

  index(i: number): ValidationContext {
    return new ValidationContext([...this.path, i], this.problems, this.shared);
  }

  /** A child cursor several steps down, e.g. `ctx.at('tls', 'mode')`. */
  at(...segments: PathSegment[]): ValidationContext {
    return new ValidationContext([...this.path, ...segments], this.problems, this.shared);
  }

  error(message: string): void {
    this.shared.errors++;
    this.problems.push({ severity: 'error', path: this.path, message });
  }

  warn(message: string): void {
    this.problems.push({ severity: 'warning', path: this.path, message });
  }

  /** A type error: the value cannot be read as the schema says, so checks above it are skipped. */
  typeError(message: string): void {
    this.shared.typeErrors++;
    this.error(message);
  }

  /** How many type errors were reported so far (used to skip checks over ill-typed values). */
  get typeErrorCount(): number {
    return this.shared.typeErrors;
  }

  /** How many errors were reported so far through this context's sink. */
  get errorCount(): number {
    return this.shared.errors;
  }
}
