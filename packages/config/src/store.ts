// The config store interface: namespaced Kubernetes-shaped objects with resource versions,
// optimistic concurrency and ordered watches. The file backend implements it in the state
// directory; a Kubernetes API server backend can implement the same interface.
import type { KubeObject } from '@trellis/api';

/** A kind, identified as the API server does: by group and kind name (the version is not part of identity). */
export interface GroupKind {
  /** '' for the Kubernetes core group. */
  readonly group: string;
  readonly kind: string;
}

/** Identifies one object. `namespace` is absent for cluster-scoped kinds (Namespace). */
export interface ObjectKey extends GroupKind {
  readonly namespace?: string;
  readonly name: string;
}

export interface ListOptions {
  /** Only this namespace; all namespaces when absent. */
  readonly namespace?: string;
}

export interface ListResult {
  readonly items: readonly KubeObject[];
  /** The store's resource version at the time of the list; watch from here to miss nothing. */
  readonly resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  readonly type: WatchEventType;
  /**
   * The object after the change; for DELETED, the last state before deletion, whose
   * resourceVersion is the revision of the deletion (as the Kubernetes API server reports it).
   */
  readonly object: KubeObject;
}

export interface WatchOptions {
  /** Only this kind; every kind when absent. */
  readonly kind?: GroupKind;
  /** Only this namespace. */
  readonly namespace?: string;
  /**
   * Deliver every change after this resource version (from a previous list). When absent,
   * the watch starts with an ADDED event for each existing object, then follows changes.
   */
  readonly resourceVersion?: string;
}

export interface Watch {
  /** Stops delivery; no handler call happens after the returned promise resolves. */
  close(): Promise<void>;
}

export interface WatchHandlers {
  onEvent(event: WatchEvent): void;
  /**
   * The watch ended and cannot resume (e.g. `resourceVersion` is older than the store keeps:
   * the caller should list again and watch from the new version), or the store failed.
   */
  onError?(err: Error): void;
}

/** What every backend provides. All methods may reject with TrellisError subclasses. */
export interface ConfigStore {
  get(key: ObjectKey): Promise<KubeObject | undefined>;
  list(kind: GroupKind, opts?: ListOptions): Promise<ListResult>;
  /** Fails with AlreadyExistsError if the object exists. Sets uid, resourceVersion, generation, creationTimestamp. */
  create(object: KubeObject): Promise<KubeObject>;
  /**
   * Replaces an object. If `object.metadata.resourceVersion` is set and differs from the stored
   * one, fails with ConflictError (a stale update is refused, never merged). Fails with
   * NotFoundError if absent. Bumps generation when anything but metadata/status changes. An
   * object without `status` keeps the stored status (as with a status subresource). An update
   * that changes nothing returns the stored object without a new resource version.
   */
  update(object: KubeObject): Promise<KubeObject>;
  /**
   * Deletes and returns the last state (with the deletion's resourceVersion, as in WatchEvent);
   * NotFoundError if absent; ConflictError if `resourceVersion` is given and stale.
   */
  delete(key: ObjectKey, opts?: { readonly resourceVersion?: string }): Promise<KubeObject>;
  /** Every change, in the order the store made them. */
  watch(opts: WatchOptions, handlers: WatchHandlers): Promise<Watch>;
  close(): Promise<void>;
}

/** The key of an object. */
export function keyOf(o: KubeObject): ObjectKey {
  const slash = o.apiVersion.indexOf('/');
  const group = slash < 0 ? '' : o.apiVersion.slice(0, slash);
  return {
    group,
    kind: o.kind,
    name: o.metadata.name,
    ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}),
  };
}

/** `networking.istio.io/VirtualService/default/reviews`, for maps and messages. */
export function keyString(k: ObjectKey): string {
  return `${k.group}/${k.kind}/${k.namespace ?? ''}/${k.name}`;
}
