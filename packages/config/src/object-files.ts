// Where each object lives on disk and how its file is read back and checked:
// objects/<group or _core>/<Kind>/<namespace or _cluster>/<name>.json, one pretty-printed object each.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { groupOf, type KubeObject } from '@trellis/api';
import { InvalidError, TrellisError, errorCode, errorMessage } from '@trellis/core';
import { isTempName } from './durable-fs.js';
import { keyString, type GroupKind, type ObjectKey } from './store.js';

/** The error code for an object or journal file that cannot be parsed or does not fit its place. */
export const STORE_CORRUPT = 'TRELLIS_STORE_CORRUPT';

/** Directory of the core ('') group: `_` cannot start a real API group, so it never collides. */
export const CORE_GROUP_DIR = '_core';
/** Directory of cluster-scoped objects: `_` cannot start a namespace name. */
export const CLUSTER_SCOPE_DIR = '_cluster';

const OBJECT_EXT = '.json';

/** Fails with InvalidError unless every part of the key can name a file safely. */
export function checkKey(key: ObjectKey): void {
  const problems = [
    ...segmentProblems('kind', key.kind, false),
    ...segmentProblems('name', key.name, false),
    ...(key.group === '' ? [] : segmentProblems('group', key.group, true)),
    ...(key.namespace === undefined ? [] : segmentProblems('namespace', key.namespace, true)),
  ];
  if (problems.length > 0) {
    throw new InvalidError(`cannot store ${keyString(key)}: ${problems.join('; ')}`, problems);
  }
}

function segmentProblems(what: string, s: string, noUnderscore: boolean): string[] {
  const shown = JSON.stringify(s);
  if (s === '') return [`${what} must not be empty`];
  if (s.length > 253) return [`${what} must be at most 253 characters, not ${s.length}`];
  if (s === '.' || s === '..') return [`${what} must not be ${shown}`];
  if (s.startsWith('.')) return [`${what} must not start with ".", found ${shown}`];
  if (noUnderscore && s.startsWith('_')) return [`${what} must not start with "_", found ${shown}`];
  // eslint-disable-next-line no-control-regex
  if (/[/\\%\u0000-\u001f]/.test(s)) {
    return [`${what} must not contain "/", "\\", "%" or control characters, found ${shown}`];
  }
  return [];
}

/** `objects/<group>/<Kind>` for a kind. */
export function kindDir(objectsDir: string, gk: GroupKind): string {
  return join(objectsDir, gk.group === '' ? CORE_GROUP_DIR : gk.group, gk.kind);
}

/** The directory of one namespace (or of the cluster scope) of a kind. */
export function scopeDir(objectsDir: string, gk: GroupKind, namespace: string | undefined): string {
  return join(kindDir(objectsDir, gk), namespace ?? CLUSTER_SCOPE_DIR);
}

/** The file of one object. */
export function objectPath(objectsDir: string, key: ObjectKey): string {
  return join(scopeDir(objectsDir, key, key.namespace), key.name + OBJECT_EXT);
}

/** An object as its file holds it. */
export function serializeObject(o: KubeObject): string {
  return JSON.stringify(o, null, 2) + '\n';
}

/** The stored object, or undefined if its file does not exist; TRELLIS_STORE_CORRUPT if unreadable. */
export async function readObjectFile(
  path: string,
  key: ObjectKey,
): Promise<KubeObject | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw new TrellisError(STORE_CORRUPT, `cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
  return parseObjectFile(path, text, key);
}

/** Parses and checks an object file's text against the key its place says it has. */
export function parseObjectFile(path: string, text: string, key: ObjectKey): KubeObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `not valid JSON (${errorMessage(e)})`);
  }
  const problem = objectShapeProblem(v);
  if (problem !== undefined) throw corrupt(path, problem);
  const o = v as KubeObject;
  const found = {
    group: groupOf(o.apiVersion),
    kind: o.kind,
    name: o.metadata.name,
    ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}),
  };
  if (keyString(found) !== keyString(key)) {
    throw corrupt(path, `holds ${keyString(found)} but its place is for ${keyString(key)}`);
  }
  return o;
}

/** Why a value is not a stored object (apiVersion, kind, metadata.name, numeric resourceVersion). */
export function objectShapeProblem(v: unknown, requireRevision = true): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o.apiVersion !== 'string' || o.apiVersion === '') return 'apiVersion is missing';
  if (typeof o.kind !== 'string' || o.kind === '') return 'kind is missing';
  const m = o.metadata;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'metadata is missing';
  const meta = m as Record<string, unknown>;
  if (typeof meta.name !== 'string' || meta.name === '') return 'metadata.name is missing';
  if (meta.namespace !== undefined && typeof meta.namespace !== 'string') {
    return 'metadata.namespace is not a string';
  }
  if (!requireRevision) return undefined;
  if (typeof meta.resourceVersion !== 'string' || !/^[1-9][0-9]*$/.test(meta.resourceVersion)) {
    return 'metadata.resourceVersion is not a revision number';
  }
  return undefined;
}

function corrupt(path: string, why: string): TrellisError {
  return new TrellisError(
    STORE_CORRUPT,
    `config store file ${path} is corrupt: ${why} (fix or remove the file)`,
  );
}

/** Names of the object files in a directory (temp files and others skipped); [] if it is absent. */
export async function listObjectNames(dir: string): Promise<string[]> {
  const entries = await readdirOrEmpty(dir);
  return entries
    .filter((n) => n.endsWith(OBJECT_EXT) && !isTempName(n) && !n.startsWith('.'))
    .map((n) => n.slice(0, -OBJECT_EXT.length))
    .sort();
}

/** The namespaces a kind has objects in (undefined for the cluster scope). */
export async function listScopes(
  objectsDir: string,
  gk: GroupKind,
): Promise<(string | undefined)[]> {
  const entries = await readdirOrEmpty(kindDir(objectsDir, gk));
  return entries
    .filter((n) => !n.startsWith('.'))
    .sort()
    .map((n) => (n === CLUSTER_SCOPE_DIR ? undefined : n));
}

/** Every kind with a directory under objects/. */
export async function listKinds(objectsDir: string): Promise<GroupKind[]> {
  const out: GroupKind[] = [];
  for (const g of (await readdirOrEmpty(objectsDir)).sort()) {
    if (g.startsWith('.')) continue;
    const group = g === CORE_GROUP_DIR ? '' : g;
    for (const kind of (await readdirOrEmpty(join(objectsDir, g))).sort()) {
      if (!kind.startsWith('.')) out.push({ group, kind });
    }
  }
  return out;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}
