// The one object model: Kubernetes-shaped resources (apiVersion, kind, metadata, spec).

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Opaque version set by the store; changes on every write. */
  readonly resourceVersion?: string;
  /** Incremented by the store when anything but metadata changes. */
  readonly generation?: number;
  readonly uid?: string;
  readonly creationTimestamp?: string;
  readonly [field: string]: unknown;
}

/** A resource as stored: unknown fields are kept, never dropped. */
export interface KubeObject<Spec = unknown> {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly spec?: Spec;
  readonly [field: string]: unknown;
}

/** The API group of an apiVersion (`networking.istio.io/v1` → `networking.istio.io`, `v1` → ``). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** The version part of an apiVersion. */
export function versionOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
}

/** `VirtualService default/reviews`, for messages. */
export function describeObject(o: {
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
}): string {
  const kind = typeof o.kind === 'string' ? o.kind : '<no kind>';
  const name = typeof o.metadata?.name === 'string' ? o.metadata.name : '<no name>';
  const ns = typeof o.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  return `${kind} ${ns}${name}`;
}
