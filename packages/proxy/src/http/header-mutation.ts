// request/response_headers_to_add and _to_remove of one level (route configuration, virtual
// host, route, weighted cluster), applied as Envoy's HeaderParser does: removals first, then
// additions in order with their append_action (APPEND_IF_EXISTS_OR_ADD by default; the
// deprecated `append: false` means OVERWRITE_IF_EXISTS_OR_ADD). Empty values are skipped unless
// keep_empty_value. Values are literal (`%%` is a percent sign); a value with one of Envoy's
// command operators (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(...)%...) is NACKed by xds/validate.
import type { HeaderAppendAction, HeaderValueOption } from '@trellis/envoy';
import type { HeaderMap } from './headers.js';

interface Addition {
  readonly key: string;
  readonly value: string;
  readonly action: HeaderAppendAction;
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
  ) {}

  static readonly EMPTY = new HeaderMutation([], []);

  get empty(): boolean {
    return this.removals.length === 0 && this.additions.length === 0;
  }

  static compile(
    add: readonly HeaderValueOption[] | undefined,
    remove: readonly string[] | undefined,
  ): HeaderMutation {
    if (!add?.length && !remove?.length) return HeaderMutation.EMPTY;
    const additions: Addition[] = [];
    for (const o of add ?? []) {
      const key = o.header?.key?.toLowerCase();
      if (!key) continue;
      let value =
        o.header?.value ??
        (o.header?.rawValue !== undefined
          ? Buffer.from(o.header.rawValue, 'base64').toString('latin1')
          : '');
      value = value.replaceAll('%%', '%');
      if (value === '' && !o.keepEmptyValue) continue;
      const action: HeaderAppendAction =
        o.appendAction ??
        (o.append === false ? 'OVERWRITE_IF_EXISTS_OR_ADD' : 'APPEND_IF_EXISTS_OR_ADD');
      additions.push({ key, value, action });
    }
    return new HeaderMutation(
      (remove ?? []).map((r) => r.toLowerCase()),
      additions,
    );
  }

  apply(target: HeaderTarget): void {
    for (const r of this.removals) target.remove(r);
    for (const a of this.additions) {
      const exists = target.get(a.key) !== undefined;
      switch (a.action) {
        case 'APPEND_IF_EXISTS_OR_ADD':
          if (exists) target.append(a.key, a.value);
          else target.set(a.key, a.value);
          break;
        case 'ADD_IF_ABSENT':
          if (!exists) target.set(a.key, a.value);
          break;
        case 'OVERWRITE_IF_EXISTS_OR_ADD':
          target.set(a.key, a.value);
          break;
        case 'OVERWRITE_IF_EXISTS':
          if (exists) target.set(a.key, a.value);
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
