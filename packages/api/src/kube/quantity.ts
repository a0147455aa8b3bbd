// Kubernetes resource quantities (`500m`, `128Mi`, `1.5`, `2e3`): parsing and a schema for them.
import type { ValidationContext } from '../validation/problem.js';
import type { Check, Schema } from '../validation/schema.js';

const QUANTITY =
  /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const SUFFIX: Readonly<Record<string, number>> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The value of a quantity (`500m` → 0.5, `1Ki` → 1024), or undefined if it is not one. */
export function parseQuantity(q: string | number): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  const m = QUANTITY.exec(q);
  if (!m) return undefined;
  const base = Number(m[1]);
  const suffix = m[2];
  if (suffix === undefined) return base;
  if (suffix[0] === 'e' || suffix[0] === 'E') return base * 10 ** Number(suffix.slice(1));
  return base * SUFFIX[suffix]!;
}

/** A quantity, written as a string (`500m`) or a YAML number (`1`, `0.5`); never negative here. */
export function quantity(
  opts: { check?: Check<string | number> } = {},
): Schema<string | number, false> {
  return {
    describe: 'a quantity',
    required: false,
    validate(value: unknown, ctx: ValidationContext) {
      if (typeof value !== 'string' && typeof value !== 'number') {
        ctx.typeError(`must be a quantity such as "500m", "128Mi" or 1`);
        return;
      }
      const n = parseQuantity(value);
      if (n === undefined)
        return ctx.error(
          `must be a quantity such as "500m", "128Mi" or "1", not ${JSON.stringify(value)}`,
        );
      if (n < 0) return ctx.error(`must not be negative, not ${JSON.stringify(value)}`);
      opts.check?.(value, ctx);
    },
  };
}
