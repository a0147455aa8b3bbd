// VirtualService header operations → Envoy header mutations (Istio route.go
// TranslateHeadersOperations): `set` overwrites (OVERWRITE_IF_EXISTS_OR_ADD), `add` appends
// (APPEND_IF_EXISTS_OR_ADD), each sorted by name, set before add; `remove` lists names. Pseudo
// headers and `host` cannot be mutated by Envoy: they are dropped, and a `:authority`/`host`
// value is returned as the authority to rewrite (the one from `set` wins over `add`).
import type { Headers } from '@trellis/api';
import type { HeaderValueOption } from '@trellis/envoy';

/** The header mutations of one `headers` block. */
export interface HeaderMutations {
  readonly requestHeadersToAdd: HeaderValueOption[];
  readonly requestHeadersToRemove: string[];
  readonly responseHeadersToAdd: HeaderValueOption[];
  readonly responseHeadersToRemove: string[];
  /** The authority to rewrite to ('' when not set). */
  readonly authority: string;
}

function isInternalHeader(name: string): boolean {
  return name.startsWith(':') || name.toLowerCase() === 'host';
}

function isAuthorityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return n === ':authority' || n === 'host';
}

function options(
  headers: Readonly<Record<string, string>> | undefined,
  append: boolean,
): { list: HeaderValueOption[]; authority: string } {
  let authority = '';
  const list: HeaderValueOption[] = [];
  const keys = Object.keys(headers ?? {}).sort();
  for (const key of keys) {
    const value = headers?.[key] ?? '';
    if (isAuthorityHeader(key)) authority = value;
    if (isInternalHeader(key)) continue;
    list.push({
      header: { key, value },
      appendAction: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD',
    });
  }
  return { list, authority };
}

/** Translates a `headers` block. */
export function translateHeaderOperations(h: Headers | undefined): HeaderMutations {
  const reqSet = options(h?.request?.set, false);
  const reqAdd = options(h?.request?.add, true);
  const respSet = options(h?.response?.set, false);
  const respAdd = options(h?.response?.add, true);
  return {
    requestHeadersToAdd: [...reqSet.list, ...reqAdd.list],
    requestHeadersToRemove: (h?.request?.remove ?? []).filter((k) => !isInternalHeader(k)),
    responseHeadersToAdd: [...respSet.list, ...respAdd.list],
    responseHeadersToRemove: (h?.response?.remove ?? []).filter((k) => !isInternalHeader(k)),
    authority: reqSet.authority !== '' ? reqSet.authority : reqAdd.authority,
  };
}
