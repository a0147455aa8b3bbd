// `trellis get`: lists or shows objects as tables, YAML, JSON or names, kubectl-shaped.
import { stringify } from 'yaml';
import { ALL_KINDS, resolveKind, type KindInfo, type KubeObject } from '@trellis/api';
import { UsageError, flagBool, flagString } from '../args.js';
import { NAMESPACE_FLAG, qualifiedName, resourceOf, type Command } from '../command.js';
import { columnsFor, formatAge, renderTable } from '../printers.js';

export function resolveKindOrThrow(name: string): KindInfo {
  const kind = resolveKind(name);
  if (!kind) {
    throw new UsageError(
      `the server doesn't have a resource type "${name}"; known types: ${[...new Set(ALL_KINDS.map((k) => k.plural))].sort().join(', ')}`,
    );
  }
  return kind;
}

export const getCommand: Command = {
  name: 'get',
  summary: 'List objects of a kind, or show named ones',
  usage: 'trellis get KIND[,KIND...] [NAME...] [-n NS | -A] [-o yaml|json|wide|name]',
  description:
    'KIND is a kind, plural or short name as Istio and Kubernetes define them: virtualservice,\n' +
    'virtualservices, vs, destinationrules, dr, gw, se, we, wg, pa, ap, ra, svc, deploy, po, cm, ns ...',
  flags: [
    NAMESPACE_FLAG,
    { name: 'all-namespaces', short: 'A', type: 'bool', help: 'list across all namespaces' },
    {
      name: 'output',
      short: 'o',
      type: 'string',
      value: 'FORMAT',
      choices: ['yaml', 'json', 'wide', 'name'],
      help: 'output format: yaml, json, wide or name',
    },
  ],
  examples: [
    'trellis get virtualservices -A',
    'trellis get vs reviews -n bookinfo -o yaml',
    'trellis get dr,vs',
  ],
  async run(args, { io, openStore }) {
    const [kindArg, ...names] = args.positional;
    if (!kindArg) throw new UsageError('get needs a KIND, e.g. trellis get virtualservices');
    const kinds = kindArg.split(',').filter(Boolean).map(resolveKindOrThrow);
    const allNs = flagBool(args, 'all-namespaces');
    const nsFlag = flagString(args, 'namespace');
    if (allNs && nsFlag) throw new UsageError('use either -n NS or -A, not both');
    if (allNs && names.length > 0)
      throw new UsageError('a NAME cannot be combined with -A; use -n NS');
    const ns = nsFlag ?? 'default';
    const output = flagString(args, 'output');
    const store = await openStore();
    let status = 0;
    const found: { kind: KindInfo; object: KubeObject }[] = [];
    try {
      for (const kind of kinds) {
        if (names.length > 0) {
          for (const name of names) {
            const key = {
              group: kind.group,
              kind: kind.kind,
              name,
              ...(kind.namespaced ? { namespace: ns } : {}),
            };
            const o = await store.get(key);
            if (o) found.push({ kind, object: o });
            else {
              io.stderr(`Error from server (NotFound): ${resourceOf(kind)} "${name}" not found\n`);
              status = 1;
            }
          }
        } else {
          const list = await store.list(
            { group: kind.group, kind: kind.kind },
            kind.namespaced && !allNs ? { namespace: ns } : {},
          );
          const sorted = [...list.items].sort(
            (a, b) =>
              (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
              a.metadata.name.localeCompare(b.metadata.name),
          );
          for (const o of sorted) found.push({ kind, object: o });
        }
      }
    } finally {
      await store.close();
    }

    if (output === 'yaml' || output === 'json') {
      const single = names.length === 1 && kinds.length === 1;
      const doc = single
        ? found[0]?.object
        : {
            apiVersion: 'v1',
            kind: 'List',
            items: found.map((f) => f.object),
            metadata: { resourceVersion: '' },
          };
      if (doc)
        io.stdout(
          output === 'json'
            ? JSON.stringify(doc, null, 2) + '\n'
            : stringify(doc, { lineWidth: 0 }),
        );
      return status;
    }
    if (output === 'name') {
      for (const f of found) io.stdout(qualifiedName(f.kind, f.object.metadata.name) + '\n');
      return status;
    }
    if (found.length === 0) {
      if (names.length === 0)
        io.stderr(
          allNs || kinds.every((k) => !k.namespaced)
            ? 'No resources found\n'
            : `No resources found in ${ns} namespace.\n`,
        );
      return status;
    }
    const wide = output === 'wide';
    const now = io.now();
    const blocks: string[] = [];
    for (const kind of kinds) {
      const items = found.filter((f) => f.kind === kind);
      if (items.length === 0) continue;
      const cols = columnsFor(kind, wide);
      const showNs = allNs && kind.namespaced;
      const header = [
        ...(showNs ? ['NAMESPACE'] : []),
        'NAME',
        ...cols.map((c) => c.header),
        'AGE',
      ];
      const rows = items.map(({ object }) => [
        ...(showNs ? [object.metadata.namespace ?? ''] : []),
        kinds.length > 1 ? qualifiedName(kind, object.metadata.name) : object.metadata.name,
        ...cols.map((c) => c.value(object)),
        formatAge(object.metadata.creationTimestamp, now),
      ]);
      blocks.push(renderTable([header, ...rows]));
    }
    io.stdout(blocks.join('\n\n') + '\n');
    return status;
  },
};
