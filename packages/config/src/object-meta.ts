// The metadata a store owns: uid, creationTimestamp, resourceVersion and generation, set on
// create and carried over on update, and the checks done before a write.
import { randomUUID } from 'node:crypto';
import { describeObject, type KubeObject, type ObjectMeta } from '@trellis/api';
import { ConflictError, InvalidError, deepEqual } from '@trellis/core';
import { objectShapeProblem } from './object-files.js';

/** A JSON copy of a caller's object (so freezing or storing it never touches theirs). */
export function copyInput(o: KubeObject): KubeObject {
  const copy = JSON.parse(JSON.stringify(o ?? null)) as unknown;
  const problem = objectShapeProblem(copy, false);
  if (problem !== undefined) {
    throw new InvalidError(`cannot store ${describeObject(o ?? {})}: ${problem}`, [problem]);
  }
  return copy as KubeObject;
}

/** The object as `create` stores it: fresh uid, creationTimestamp, generation 1. */
export function forCreate(o: KubeObject, rev: number, now: Date): KubeObject {
  const metadata: ObjectMeta = {
    ...o.metadata,
    uid: randomUUID(),
    creationTimestamp: isoSeconds(now),
    resourceVersion: String(rev),
    generation: 1,
  };
  return { ...o, metadata };
}

/**
 * The object as `update` stores it: uid and creationTimestamp kept, generation bumped only if
 * something other than metadata and status changed, the stored status kept if none is given.
 */
export function forUpdate(current: KubeObject, desired: KubeObject, rev: number): KubeObject {
  const gen = current.metadata.generation ?? 1;
  const { uid, creationTimestamp } = current.metadata;
  // uid and creationTimestamp come from the stored object (absent if it lacked them).
  const { uid: _uid, creationTimestamp: _created, ...rest } = desired.metadata;
  const metadata: ObjectMeta = {
    ...rest,
    ...(uid !== undefined ? { uid } : {}),
    ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
    resourceVersion: String(rev),
    generation: specChanged(current, desired) ? gen + 1 : gen,
  };
  // Like a status subresource: an update that carries no status keeps the stored one.
  const status = desired.status === undefined ? current.status : desired.status;
  return { ...desired, metadata, ...(status !== undefined ? { status } : {}) };
}

/**
 * Whether anything generation-worthy changed: every top-level field except apiVersion, kind
 * (the same object may be written through another version), metadata and status.
 */
export function specChanged(a: KubeObject, b: KubeObject): boolean {
  return !deepEqual(body(a), body(b));
}

function body(o: KubeObject): Record<string, unknown> {
  const { apiVersion: _v, kind: _k, metadata: _m, status: _s, ...rest } = o;
  return rest;
}

/** Refuses a write whose resourceVersion or uid precondition does not match the stored object. */
export function checkPreconditions(
  current: KubeObject,
  want: { readonly resourceVersion?: string | undefined; readonly uid?: string | undefined },
  verb: 'update' | 'delete',
): void {
  const stored = current.metadata.resourceVersion;
  if (
    want.resourceVersion !== undefined &&
    want.resourceVersion !== '' &&
    want.resourceVersion !== stored
  ) {
    throw new ConflictError(
      `cannot ${verb} ${describeObject(current)}: it was modified since it was read ` +
        `(the ${verb} is based on resource version ${want.resourceVersion}, the current one is ${stored ?? 'unknown'}); ` +
        'read it again and retry',
    );
  }
  if (
    want.uid !== undefined &&
    want.uid !== '' &&
    current.metadata.uid !== undefined &&
    want.uid !== current.metadata.uid
  ) {
    throw new ConflictError(
      `cannot ${verb} ${describeObject(current)}: it was deleted and re-created since it was read ` +
        `(the ${verb} is for uid ${want.uid}, the current one is ${current.metadata.uid})`,
    );
  }
}

/** `2024-05-01T12:00:00Z`: Kubernetes timestamps have second precision. */
function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
