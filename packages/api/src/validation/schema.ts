// A small schema language for Istio and Kubernetes resources.
//
// A schema both validates an untrusted JSON value (reporting every problem with its field
// path) and gives the TypeScript type of a valid value (`Infer<typeof schema>`). Fields are
// optional unless wrapped in `req(...)`; `null` counts as absent, as in Kubernetes.
// Semantic checks attach with `check` options and run only over well-typed values.
import type { ValidationContext } from './problem.js';

/** A validator of one value that also carries the value's static type. */
export interface Schema<T, R extends boolean = boolean> {
  /** What the value is, for messages: 'a string', 'an integer', ... */
  readonly describe: string;
  readonly required: R;
  /** Validates a present (non-null) value. */
  validate(value: unknown, ctx: ValidationContext): void;
  /** Phantom field carrying the type; never set. */
  readonly __type?: T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySchema = Schema<any, boolean>;
export type Infer<S> = S extends Schema<infer T, boolean> ? T : never;

type Fields = Record<string, AnySchema>;
type RequiredKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends Schema<unknown, true> ? K : never;
}[keyof F];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<F extends Fields> = Simplify<
  { readonly [K in RequiredKeys<F>]: Infer<F[K]> } & {
    readonly [K in Exclude<keyof F, RequiredKeys<F>>]?: Infer<F[K]>;
  }
>;

export type Check<T> = (value: T, ctx: ValidationContext) => void;

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'object':
      return 'an object';
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)})`;
    case 'number':
      return `a number (${value})`;
    case 'boolean':
      return `a boolean (${value})`;
    default:
      return typeof value;
  }
}

/** Reports a type mismatch as `must be a string, not a number (3)`. */
function mismatch(ctx: ValidationContext, describe: string, value: unknown): void {
  ctx.typeError(`must be ${describe}, not ${typeName(value)}`);
}

/**
 * Runs a semantic check. A check may meet an object whose nested required field is missing
 * (already reported); if it throws then, the value's own errors explain it and the throw is
 * dropped. A throw over a value with no errors is a bug in the check and propagates.
 */
function runCheck<T>(
  check: Check<T>,
  value: T,
  ctx: ValidationContext,
  errorsBefore: number,
): void {
  try {
    check(value, ctx);
  } catch (e) {
    if (ctx.errorCount === errorsBefore) throw e;
  }
}

/** Marks a schema as a required field of its object. */
export function req<T>(schema: Schema<T>): Schema<T, true> {
  return { ...schema, validate: schema.validate.bind(schema), required: true };
}

/** Adds a semantic check to any schema; it runs only if the value is well typed. */
export function refine<T, R extends boolean>(schema: Schema<T, R>, check: Check<T>): Schema<T, R> {
  return {
    describe: schema.describe,
    required: schema.required,
    validate(value, ctx) {
      const before = ctx.typeErrorCount;
      const errorsBefore = ctx.errorCount;
      schema.validate(value, ctx);
      if (ctx.typeErrorCount === before) runCheck(check, value as T, ctx, errorsBefore);
    },
  };
}

export interface StringOptions {
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly nonEmpty?: boolean;
  readonly check?: Check<string>;
}

export function str(opts: StringOptions = {}): Schema<string, false> {
  return {
    describe: 'a string',
    required: false,
    validate(value, ctx) {
      if (typeof value !== 'string') return mismatch(ctx, 'a string', value);
      if (opts.nonEmpty && value === '') return ctx.error('must not be empty');
      if (opts.minLength !== undefined && value.length < opts.minLength)
        return ctx.error(`must be at least ${opts.minLength} characters`);
      if (opts.maxLength !== undefined && value.length > opts.maxLength)
        return ctx.error(`must be at most ${opts.maxLength} characters`);
      opts.check?.(value, ctx);
    },
  };
}

export function bool(): Schema<boolean, false> {
  return {
    describe: 'a boolean',
    required: false,
    validate(value, ctx) {
      if (typeof value !== 'boolean') mismatch(ctx, 'a boolean (true or false)', value);
    },
  };
}

export interface NumberOptions {
  readonly min?: number;
  readonly max?: number;
  readonly check?: Check<number>;
}

function rangeCheck(value: number, opts: NumberOptions, ctx: ValidationContext): boolean {
  const { min, max } = opts;
  if (min !== undefined && max !== undefined && (value < min || value > max)) {
    ctx.error(`must be between ${min} and ${max}, not ${value}`);
    return false;
  }
  if (min !== undefined && value < min) {
    ctx.error(`must be at least ${min}, not ${value}`);
    return false;
  }
  if (max !== undefined && value > max) {
    ctx.error(`must be at most ${max}, not ${value}`);
    return false;
  }
  return true;
}

/** An integer; defaults to the int32 range unless `min`/`max` say otherwise. */
export function int(opts: NumberOptions = {}): Schema<number, false> {
  return {
    describe: 'an integer',
    required: false,
    validate(value, ctx) {
      if (typeof value !== 'number' || !Number.isInteger(value))
        return mismatch(ctx, 'an integer', value);
      const bounded = { min: opts.min ?? -2147483648, max: opts.max ?? 2147483647 };
      if (rangeCheck(value, { ...opts, ...bounded }, ctx)) opts.check?.(value, ctx);
    },
  };
}

/** A protobuf uint32: 0..4294967295 unless narrowed. */
export function uint32(opts: NumberOptions = {}): Schema<number, false> {
  return int({ ...opts, min: opts.min ?? 0, max: opts.max ?? 4294967295 });
}

/** A protobuf int64/uint64 given as a number (JavaScript's safe range). */
export function int64(opts: NumberOptions = {}): Schema<number, false> {
  return int({
    ...opts,
    min: opts.min ?? Number.MIN_SAFE_INTEGER,
    max: opts.max ?? Number.MAX_SAFE_INTEGER,
  });
}

/** A floating-point number (double). */
export function num(opts: NumberOptions = {}): Schema<number, false> {
  return {
    describe: 'a number',
    required: false,
    validate(value, ctx) {
      if (typeof value !== 'number' || !Number.isFinite(value))
        return mismatch(ctx, 'a number', value);
      if (rangeCheck(value, opts, ctx)) opts.check?.(value, ctx);
    },
  };
}

/** One of a fixed set of strings (protobuf enums are written by name in YAML). */
export function enumOf<const V extends readonly string[]>(values: V): Schema<V[number], false> {
  return {
    describe: 'one of ' + values.join(', '),
    required: false,
    validate(value, ctx) {
      if (typeof value !== 'string')
        return mismatch(ctx, `a string, one of: ${values.join(', ')}`, value);
      if (!values.includes(value))
        ctx.error(`must be one of: ${values.join(', ')}; not ${JSON.stringify(value)}`);
    },
  };
}

/** An integer or a string, like Kubernetes' IntOrString (`targetPort: 9080` or `targetPort: http`). */
export function intOrString(
  opts: { check?: Check<number | string> } = {},
): Schema<number | string, false> {
  return {
    describe: 'an integer or a string',
    required: false,
    validate(value, ctx) {
      if (typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))) {
        opts.check?.(value, ctx);
      } else mismatch(ctx, 'an integer or a string', value);
    },
  };
}

export interface ListOptions<T> {
  readonly minItems?: number;
  readonly maxItems?: number;
  /** Report duplicate items (compared as JSON). */
  readonly unique?: boolean;
  readonly check?: Check<readonly T[]>;
}

export function list<T>(item: Schema<T>, opts: ListOptions<T> = {}): Schema<readonly T[], false> {
  return {
    describe: `a list of ${item.describe.replace(/^an? /, '')}s`,
    required: false,
    validate(value, ctx) {
      if (!Array.isArray(value)) return mismatch(ctx, 'a list', value);
      if (opts.minItems !== undefined && value.length < opts.minItems)
        ctx.error(
          opts.minItems === 1
            ? 'must have at least one item'
            : `must have at least ${opts.minItems} items`,
        );
      if (opts.maxItems !== undefined && value.length > opts.maxItems)
        ctx.error(`must have at most ${opts.maxItems} items`);
      const before = ctx.typeErrorCount;
      const errorsBefore = ctx.errorCount;
      const seen = new Map<string, number>();
      value.forEach((v: unknown, i) => {
        const c = ctx.index(i);
        if (v === null || v === undefined) return c.typeError(`must be ${item.describe}, not null`);
        item.validate(v, c);
        if (opts.unique) {
          const key = JSON.stringify(v);
          const first = seen.get(key);
          if (first !== undefined) c.error(`duplicate of item [${first}]`);
          else seen.set(key, i);
        }
      });
      if (ctx.typeErrorCount === before && opts.check)
        runCheck(opts.check, value as T[], ctx, errorsBefore);
    },
  };
}

export interface MapOptions<T> {
  readonly key?: Check<string>;
  readonly check?: Check<Readonly<Record<string, T>>>;
}

/** A map with string keys (protobuf `map<string, T>`, Kubernetes labels). */
export function map<T>(
  value: Schema<T>,
  opts: MapOptions<T> = {},
): Schema<Readonly<Record<string, T>>, false> {
  return {
    describe: 'a map',
    required: false,
    validate(v, ctx) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return mismatch(ctx, 'a map', v);
      const before = ctx.typeErrorCount;
      const errorsBefore = ctx.errorCount;
      for (const [k, item] of Object.entries(v)) {
        const c = ctx.field(k);
        opts.key?.(k, c);
        if (item === null || item === undefined) {
          // Kubernetes keeps `key: null` in maps as an empty value only for strings.
          c.typeError(`must be ${value.describe}, not null`);
          continue;
        }
        value.validate(item, c);
      }
      if (ctx.typeErrorCount === before && opts.check)
        runCheck(opts.check, v as Record<string, T>, ctx, errorsBefore);
    },
  };
}

/** Any JSON value (protobuf `Struct`/`Value`, or fields Trellis keeps without reading). */
export function anyValue(): Schema<unknown, false> {
  return { describe: 'a value', required: false, validate() {} };
}

export interface OneOf {
  readonly fields: readonly string[];
  /** Exactly one must be set (otherwise at most one). */
  readonly required?: boolean;
}

export interface ObjectOptions<T> {
  /** Groups of fields of which at most (or, when required, exactly) one may be set. */
  readonly oneOf?: readonly OneOf[];
  /** What to do with fields the schema does not name: Istio specs reject them, Kubernetes objects keep them. */
  readonly unknownFields?: 'error' | 'keep';
  readonly check?: Check<T>;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return bestDist <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** An object with named fields. */
export function obj<F extends Fields>(
  fields: F,
  opts: ObjectOptions<ObjectOf<F>> = {},
): Schema<ObjectOf<F>, false> & { readonly fields: F } {
  const names = Object.keys(fields);
  return {
    describe: 'an object',
    required: false,
    fields,
    validate(value, ctx) {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        return mismatch(ctx, 'an object', value);
      const record = value as Record<string, unknown>;
      const before = ctx.typeErrorCount;
      const errorsBefore = ctx.errorCount;
      // A missing required field skips this object's own checks; ancestors' checks still run
      // and must tolerate it (runCheck catches what they do not).
      let missingRequired = false;
      for (const name of names) {
        const schema = fields[name]!;
        const v = record[name];
        if (v === null || v === undefined) {
          if (schema.required) {
            ctx.field(name).error('is required');
            missingRequired = true;
          }
          continue;
        }
        schema.validate(v, ctx.field(name));
      }
      if ((opts.unknownFields ?? 'error') === 'error') {
        for (const k of Object.keys(record)) {
          if (k in fields) continue;
          const hint = closest(k, names);
          ctx.field(k).error(hint ? `unknown field; did you mean "${hint}"?` : 'unknown field');
        }
      }
      for (const group of opts.oneOf ?? []) {
        const set = group.fields.filter((f) => record[f] !== null && record[f] !== undefined);
        const list = group.fields.map((f) => `"${f}"`).join(', ');
        if (set.length > 1)
          ctx.error(
            `only one of ${list} may be set; found ${set.map((f) => `"${f}"`).join(' and ')}`,
          );
        else if (set.length === 0 && group.required) ctx.error(`one of ${list} must be set`);
      }
      if (ctx.typeErrorCount === before && !missingRequired && opts.check)
        runCheck(opts.check, record as ObjectOf<F>, ctx, errorsBefore);
    },
  };
}
