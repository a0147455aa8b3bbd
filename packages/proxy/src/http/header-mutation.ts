// request/response_headers_to_add and _to_remove of one level (route configuration, virtual
// host, route, weighted cluster), applied as Envoy's HeaderParser does: removals first, then
// additions in order with their append_action (APPEND_IF_EXISTS_OR_ADD by default; the
// deprecated `append: false` means OVERWRITE_IF_EXISTS_OR_ADD). Values are Envoy's header format
// strings: literal text (`%%` for a percent sign) with command operators
// (`%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`, `%REQ(x)%`, `%START_TIME(%s)%`,
// `%UPSTREAM_METADATA(["ns", "key"])%`...), evaluated per request by the access log's formatter
// (observability/access-log.ts). A value that comes out empty adds nothing unless
// keep_empty_value.
import type { HeaderAppendAction, HeaderValueOption } from '@trellis/envoy';
import { compileHeaderValue, type HeaderValueFormatter } from '../observability/access-log.js';
import type { LogContext } from '../observability/log-context.js';
import type { HeaderMap } from './headers.js';

interface Addition {
  readonly key: string;
  /** The text, or the formatter of a value with command operators. */
  readonly value: string | HeaderValueFormatter;
  readonly action: HeaderAppendAction;
  readonly keepEmpty: boolean;
}

/** The header setter a mutation works through (a RequestHeaders or a plain map). */
export interface HeaderTarget {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  remove(name: string): void;
}

export class HeaderMutation {
  constructor(
    private readonly removals: readonly string[],
    private readonly additions: readonly Addition[],
  ) {
    this.dynamic = additions.some((a) => typeof a.value !== 'string');
  }

  static readonly EMPTY = new HeaderMutation([], []);

  /** Some value has command operators (apply() then needs the stream's context). */
  readonly dynamic: boolean;

  get empty(): boolean {
    return this.removals.length === 0 && this.additions.length === 0;
  }

  /**
   * Compiles a level's additions and removals. A value whose format string does not parse is
   * refused by xDS validation (xds/supported-fields.ts) before it gets here; should one arrive
   * anyway, it is added as the text it is.
   */
  static compile(
    add: readonly HeaderValueOption[] | undefined,
    remove: readonly string[] | undefined,
  ): HeaderMutation {
    if (!add?.length && !remove?.length) return HeaderMutation.EMPTY;
    const additions: Addition[] = [];
    for (const o of add ?? []) {
      const key = o.header?.key?.toLowerCase();
      if (!key) continue;
      const raw =
        o.header?.value ??
        (o.header?.rawValue !== undefined
          ? Buffer.from(o.header.rawValue, 'base64').toString('latin1')
          : '');
      const compiled = compileHeaderValue(raw);
      const value = compiled.ok ? compiled.value : raw;
      const keepEmpty = o.keepEmptyValue === true;
      if (value === '' && !keepEmpty) continue;
      const action: HeaderAppendAction =
        o.appendAction ??
        (o.append === false ? 'OVERWRITE_IF_EXISTS_OR_ADD' : 'APPEND_IF_EXISTS_OR_ADD');
      additions.push({ key, value, action, keepEmpty });
    }
    return new HeaderMutation(
      (remove ?? []).map((r) => r.toLowerCase()),
      additions,
    );
  }

  /** Applies the mutation; `ctx` gives the stream to values with command operators. */
  apply(target: HeaderTarget, ctx?: () => LogContext): void {
    for (const r of this.removals) target.remove(r);
    let context: LogContext | undefined;
    for (const a of this.additions) {
      let value: string;
      if (typeof a.value === 'string') value = a.value;
      else {
        if (ctx === undefined) continue;
        context ??= ctx();
        value = a.value.format(context);
        if (value === '' && !a.keepEmpty) continue;
      }
      const exists = target.get(a.key) !== undefined;
      switch (a.action) {
        case 'APPEND_IF_EXISTS_OR_ADD':
          if (exists) target.append(a.key, value);
          else target.set(a.key, value);
          break;
        case 'ADD_IF_ABSENT':
          if (!exists) target.set(a.key, value);
          break;
        case 'OVERWRITE_IF_EXISTS_OR_ADD':
          target.set(a.key, value);
          break;
        case 'OVERWRITE_IF_EXISTS':
          if (exists) target.set(a.key, value);
          break;
      }
    }
  }
}

/** A HeaderTarget over a plain header map (responses). */
export function mapTarget(map: HeaderMap): HeaderTarget {
  return {
    get: (n) => {
      const v = map[n];
      return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
    },
    set: (n, v) => {
      map[n] = v;
    },
    append: (n, v) => {
      const cur = map[n];
      map[n] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
    },
    remove: (n) => {
      delete map[n];
    },
  };
}
