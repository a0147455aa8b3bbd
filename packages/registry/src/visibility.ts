// `exportTo`: which namespaces see a service, VirtualService, DestinationRule or ServiceEntry.
// Semantics (istio/istio pilot/pkg/model/push_context.go): `*` exports everywhere and wins over
// the rest; `~` exports nowhere; `.` (or the object's own namespace) keeps it in its namespace;
// other entries are namespace names. An empty list falls back to the mesh default
// (`defaultServiceExportTo`, `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo`),
// of which Istio honours only `.` and `*`.

/** Export to every namespace. */
export const EXPORT_PUBLIC = '*';
/** Export to the object's own namespace only. */
export const EXPORT_PRIVATE = '.';
/** Export to no namespace (ServiceEntry only). */
export const EXPORT_NONE = '~';

/**
 * Where an object is visible, resolved from exportTo and the default: every namespace, or a set
 * of namespaces (possibly empty).
 */
export type Visibility =
  | { readonly kind: 'public' }
  | { readonly kind: 'namespaces'; readonly namespaces: ReadonlySet<string> };

const PUBLIC: Visibility = Object.freeze({ kind: 'public' });

/**
 * Resolves `exportTo` of an object in `namespace` against the mesh default for its kind.
 */
export function visibilityOf(
  exportTo: readonly string[],
  namespace: string,
  defaultExportTo: readonly string[],
): Visibility {
  if (exportTo.length === 0) {
    if (defaultExportTo.includes(EXPORT_PRIVATE))
      return { kind: 'namespaces', namespaces: new Set([namespace]) };
    if (defaultExportTo.includes(EXPORT_PUBLIC)) return PUBLIC;
    return { kind: 'namespaces', namespaces: new Set() };
  }
  if (exportTo.includes(EXPORT_PUBLIC)) return PUBLIC;
  if (exportTo.includes(EXPORT_NONE)) return { kind: 'namespaces', namespaces: new Set() };
  const out = new Set<string>();
  for (const e of exportTo) out.add(e === EXPORT_PRIVATE ? namespace : e);
  return { kind: 'namespaces', namespaces: out };
}

/** Whether an object in `namespace` with `exportTo` is visible from `fromNamespace`. */
export function isExportedTo(
  exportTo: readonly string[],
  namespace: string,
  fromNamespace: string,
  defaultExportTo: readonly string[],
): boolean {
  const v = visibilityOf(exportTo, namespace, defaultExportTo);
  return v.kind === 'public' || v.namespaces.has(fromNamespace);
}

/**
 * Parses the Service annotation `networking.istio.io/exportTo`: a comma-separated list, each
 * entry trimmed, empty entries dropped.
 */
export function parseExportToAnnotation(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
