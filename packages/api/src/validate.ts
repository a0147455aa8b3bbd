// Validation of whole objects: apiVersion and kind, metadata, then the kind's own rules.
// `validateManifests` adds where each problem came from (file:line) and formats it.
import type { KindInfo } from './kinds/kind.js';
import { ALL_KINDS, GATEWAY_API_GROUP, GATEWAY_API_KINDS, kindByGroup } from './kinds/registry.js';
import { groupOf, versionOf, type KubeObject } from './object.js';
import {
  ValidationContext,
  formatPath,
  type Problem,
  type Severity,
} from './validation/problem.js';
import {
  checkDns1123Label,
  checkDns1123Subdomain,
  checkLabelValue,
  checkQualifiedName,
} from './validation/checks.js';
import { loadManifests, type LoadedObject, type SourceLocation } from './yaml/load.js';

export interface ObjectValidation {
  /** The kind, when apiVersion and kind name one Trellis knows. */
  readonly kind?: KindInfo;
  readonly problems: readonly Problem[];
}

const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Validates one object: apiVersion and kind, metadata, then the kind's own schema and checks. */
export function validateObject(raw: unknown): ObjectValidation {
  const ctx = new ValidationContext();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    ctx.error('must be an object with apiVersion, kind and metadata');
    return { problems: ctx.problems };
  }
  const o = raw as Record<string, unknown>;
  const { apiVersion, kind } = o;
  if (typeof apiVersion !== 'string' || apiVersion === '')
    ctx.field('apiVersion').error('is required');
  if (typeof kind !== 'string' || kind === '') ctx.field('kind').error('is required');
  if (
    typeof apiVersion !== 'string' ||
    typeof kind !== 'string' ||
    apiVersion === '' ||
    kind === ''
  )
    return { problems: ctx.problems };

  const group = groupOf(apiVersion);
  const version = versionOf(apiVersion);
  const info = kindByGroup(group, kind);
  if (!info) {
    if (group === GATEWAY_API_GROUP && (GATEWAY_API_KINDS as readonly string[]).includes(kind)) {
      ctx
        .field('kind')
        .error(
          `${kind} (${apiVersion}) is a Kubernetes Gateway API kind, which Trellis does not support yet; use Istio's Gateway and VirtualService (networking.istio.io)`,
        );
    } else {
      const sameName = groupsServing(kind);
      ctx
        .field('kind')
        .error(
          sameName.length > 0
            ? `kind ${kind} is not in API group ${JSON.stringify(group)}; Trellis serves it as ${sameName.join(' or ')}`
            : `unknown kind ${kind} (${apiVersion}); Trellis does not serve it`,
        );
    }
    return { problems: ctx.problems };
  }
  if (!info.versions.includes(version)) {
    ctx
      .field('apiVersion')
      .error(
        `${kind} is not served at version ${version}; served versions: ${info.versions.join(', ')}`,
      );
  }
  validateMetadata(o.metadata, info, ctx.field('metadata'));
  info.validate(o, ctx);
  return { kind: info, problems: ctx.problems };
}

function groupsServing(kind: string): string[] {
  return ALL_KINDS.filter((k) => k.kind === kind).map((k) => (k.group === '' ? 'v1' : k.group));
}

function validateMetadata(meta: unknown, info: KindInfo, ctx: ValidationContext): void {
  if (meta === null || meta === undefined) return ctx.error('is required (with at least a name)');
  if (typeof meta !== 'object' || Array.isArray(meta)) return ctx.typeError('must be an object');
  const m = meta as Record<string, unknown>;
  const name = m.name;
  if (name === undefined || name === null || name === '') {
    ctx
      .field('name')
      .error(m.generateName ? 'is required (generateName is not supported)' : 'is required');
  } else if (typeof name !== 'string') ctx.field('name').typeError('must be a string');
  else {
    const c = ctx.field('name');
    if (info.nameRule === 'dns1123-label') checkDns1123Label(name, c);
    else if (info.nameRule === 'dns1035-label') {
      if (name.length > 63 || !DNS1035_LABEL.test(name))
        c.error(
          `name ${JSON.stringify(name)} must be a DNS-1035 label: at most 63 lower-case letters, digits and '-', starting with a letter`,
        );
    } else checkDns1123Subdomain(name, c);
  }
  if (m.namespace !== undefined && m.namespace !== null) {
    const c = ctx.field('namespace');
    if (typeof m.namespace !== 'string') c.typeError('must be a string');
    else if (!info.namespaced) c.error(`${info.kind} is not namespaced; remove metadata.namespace`);
    else checkDns1123Label(m.namespace, c, 'namespace');
  }
  for (const field of ['labels', 'annotations'] as const) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    const c = ctx.field(field);
    if (typeof v !== 'object' || Array.isArray(v)) {
      c.typeError('must be a map of strings');
      continue;
    }
    for (const [k, val] of Object.entries(v)) {
      const kc = c.field(k);
      checkQualifiedName(k, kc, field === 'labels' ? 'label key' : 'annotation key');
      if (typeof val !== 'string')
        kc.typeError(`must be a string (quote numbers and booleans: "${String(val)}")`);
      else if (field === 'labels') checkLabelValue(val, kc);
    }
  }
}

/** A problem placed in a file and an object, ready to print. */
export interface LocatedProblem {
  readonly severity: Severity;
  readonly message: string;
  /** Field path inside the object, formatted (`spec.http[0].timeout`); '' for file-level problems. */
  readonly path: string;
  readonly source?: SourceLocation;
  /** `VirtualService default/reviews` */
  readonly object?: string;
}

/** `bookinfo.yaml:14 VirtualService default/reviews: spec.http[0].route[1].weight: must be between 0 and 100` */
export function formatProblem(p: LocatedProblem): string {
  const where = p.source ? `${p.source.file}:${p.source.line} ` : '';
  const what = p.object ? `${p.object}: ` : '';
  const path = p.path ? `${p.path}: ` : '';
  const sev = p.severity === 'warning' ? 'warning: ' : '';
  return `${where}${sev}${what}${path}${p.message}`;
}

/** One object read from a manifest and validated. */
export interface ManifestObject {
  readonly object: KubeObject;
  readonly kind: KindInfo;
  readonly source: SourceLocation;
}

export interface ManifestValidation {
  /** Objects without errors (they may have warnings), namespace defaulted. */
  readonly objects: readonly ManifestObject[];
  readonly problems: readonly LocatedProblem[];
  readonly errorCount: number;
}

export interface ValidateOptions {
  /** Namespace given to namespaced objects that have none (`-n`); default `default`. */
  readonly namespace?: string;
  /** Whether `namespace` was given explicitly (then a different metadata.namespace is an error, as kubectl does). */
  readonly namespaceExplicit?: boolean;
}

/** Loads and validates a manifest text, returning the valid objects and every located problem. */
export function validateManifests(
  text: string,
  file: string,
  opts: ValidateOptions = {},
): ManifestValidation {
  const loaded = loadManifests(text, file);
  const problems: LocatedProblem[] = loaded.problems.map((p) => ({
    severity: 'error' as const,
    message: p.message,
    path: '',
    source: p.source,
  }));
  const objects: ManifestObject[] = [];
  for (const lo of loaded.objects) {
    const r = validateLoaded(lo, opts);
    problems.push(...r.problems);
    if (r.object) objects.push(r.object);
  }
  return { objects, problems, errorCount: problems.filter((p) => p.severity === 'error').length };
}

/** Validates one loaded object; returns it (namespace defaulted) when it has no errors. */
export function validateLoaded(
  lo: LoadedObject,
  opts: ValidateOptions = {},
): { object?: ManifestObject; problems: LocatedProblem[] } {
  const { kind, problems } = validateObject(lo.value);
  const raw = lo.value as Record<string, unknown> & {
    metadata?: { namespace?: unknown; name?: unknown };
  };
  const defaultNs = opts.namespace ?? 'default';
  let ns = typeof raw?.metadata?.namespace === 'string' ? raw.metadata.namespace : undefined;
  const out: LocatedProblem[] = [];
  if (kind?.namespaced && opts.namespaceExplicit && ns !== undefined && ns !== defaultNs) {
    out.push({
      severity: 'error',
      path: 'metadata.namespace',
      message: `the namespace from the object (${JSON.stringify(ns)}) does not match the namespace given with -n (${JSON.stringify(defaultNs)})`,
      source: lo.locate(['metadata', 'namespace']),
    });
  }
  if (kind?.namespaced && ns === undefined) ns = defaultNs;
  const desc =
    raw && typeof raw === 'object'
      ? `${typeof raw.kind === 'string' ? raw.kind : '<no kind>'} ${ns ? ns + '/' : ''}${typeof raw.metadata?.name === 'string' ? raw.metadata.name : '<no name>'}`
      : undefined;
  for (const p of problems) {
    out.push({
      severity: p.severity,
      message: p.message,
      path: formatPath(p.path),
      source: lo.locate(p.path),
      ...(desc ? { object: desc } : {}),
    });
  }
  const hasErrors = out.some((p) => p.severity === 'error');
  if (hasErrors || !kind) return { problems: out };
  const object = (
    kind.namespaced ? { ...raw, metadata: { ...raw.metadata, namespace: ns } } : raw
  ) as KubeObject;
  return { object: { object, kind, source: lo.source }, problems: out };
}
