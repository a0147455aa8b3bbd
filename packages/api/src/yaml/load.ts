// Reads YAML or JSON manifests (multi-document, `kind: List`) into plain objects, keeping
// for each object a way to turn a field path back into the file:line it came from.
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document,
  type Node,
} from 'yaml';
import type { PathSegment } from '../validation/problem.js';

export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** One object read from a manifest, with where it came from. */
export interface LoadedObject {
  readonly value: unknown;
  /** Where the object starts. */
  readonly source: SourceLocation;
  /** The location of a field path inside the object (the nearest existing ancestor if absent). */
  locate(path: readonly PathSegment[]): SourceLocation;
}

/** A problem reading the file itself (syntax), before any object exists. */
export interface LoadProblem {
  readonly source: SourceLocation;
  readonly message: string;
}

export interface LoadResult {
  readonly objects: LoadedObject[];
  readonly problems: LoadProblem[];
}

const MAX_ALIASES = 1000;

/** Parses every document of a YAML or JSON text; JSON is read as the YAML subset it is. */
export function loadManifests(text: string, file: string): LoadResult {
  const lineCounter = new LineCounter();
  const objects: LoadedObject[] = [];
  const problems: LoadProblem[] = [];
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, {
      lineCounter,
      uniqueKeys: true,
      prettyErrors: false,
    }) as Document.Parsed[];
  } catch (e) {
    problems.push({
      source: { file, line: 1, column: 1 },
      message: `cannot parse: ${(e as Error).message}`,
    });
    return { objects, problems };
  }
  if (!Array.isArray(docs)) docs = [docs];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        problems.push({
          source: at(e.pos[0]),
          message: `YAML syntax error: ${firstLine(e.message)}`,
        });
      }
      continue;
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && (root.value === null || root.value === undefined)))
      continue; // empty document
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      problems.push({
        source: at(root.range?.[0] ?? 0),
        message: `cannot read document: ${(e as Error).message}`,
      });
      continue;
    }
    const start = at(root.range?.[0] ?? 0);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problems.push({
        source: start,
        message: 'a document must be an object with apiVersion, kind and metadata',
      });
      continue;
    }
    const record = value as Record<string, unknown>;
    if (
      typeof record.kind === 'string' &&
      record.kind.endsWith('List') &&
      Array.isArray(record.items)
    ) {
      record.items.forEach((item: unknown, i) => {
        const prefix: PathSegment[] = ['items', i];
        objects.push({
          value: item,
          source: locateIn(root, prefix, at),
          locate: (path) => locateIn(root, [...prefix, ...path], at),
        });
      });
      continue;
    }
    objects.push({ value, source: start, locate: (path) => locateIn(root, path, at) });
  }
  return { objects, problems };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/** Walks the YAML node tree along a path, returning the line of the deepest key or item found. */
function locateIn(
  root: Node | null,
  path: readonly PathSegment[],
  at: (offset: number) => SourceLocation,
): SourceLocation {
  let node: unknown = root;
  let offset = root?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => (isScalar(p.key) ? String(p.key.value) : p.key) === String(seg),
      );
      if (!pair) break;
      const keyNode = pair.key as Node | null;
      if (keyNode?.range) offset = keyNode.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      if (item.range) offset = item.range[0];
      node = item;
    } else break;
  }
  return at(offset);
}
