// Table-driven invalid-object tests: each case is a YAML object and the exact errors it must get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateManifests, type LocatedProblem } from '../src/index.js';

export interface InvalidCase {
  /** What is wrong, as the test title. */
  readonly name: string;
  /** One YAML document (an object); namespace defaults to `default`. */
  readonly yaml: string;
  /** Every error expected, exactly, as `path: message` (order does not matter). */
  readonly errors: readonly string[];
  /** Warnings expected, exactly, when given. */
  readonly warnings?: readonly string[];
}

/** `spec.hosts: is required` for each problem of a severity. */
export function problemLines(
  problems: readonly LocatedProblem[],
  severity: 'error' | 'warning',
): string[] {
  return problems
    .filter((p) => p.severity === severity)
    .map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
}

/** Validates a YAML text and returns `path: message` for its errors and warnings. */
export function check(yaml: string): { errors: string[]; warnings: string[] } {
  const r = validateManifests(yaml, 'case.yaml');
  return {
    errors: problemLines(r.problems, 'error'),
    warnings: problemLines(r.problems, 'warning'),
  };
}

/** Registers one node:test per case. */
export function runInvalidCases(suite: string, cases: readonly InvalidCase[]): void {
  for (const c of cases) {
    test(`${suite}: ${c.name}`, () => {
      const { errors, warnings } = check(c.yaml);
      assert.deepEqual([...errors].sort(), [...c.errors].sort());
      if (c.warnings) assert.deepEqual([...warnings].sort(), [...c.warnings].sort());
    });
  }
}

/** Asserts a YAML text validates with no errors (warnings allowed). */
export function assertValid(yaml: string): void {
  const { errors } = check(yaml);
  assert.deepEqual(errors, []);
}
