// `trellis delete`: removes the objects named in manifests, or by kind and name.
import { errorCode, errorMessage } from '@trellis/core';
import { keyOf } from '@trellis/config';
import type { KindInfo } from '@trellis/api';
import { UsageError, flagBool, flagString, flagStrings } from '../args.js';
import {
  FILE_FLAG,
  NAMESPACE_FLAG,
  RECURSIVE_FLAG,
  printProblems,
  resourceOf,
  type Command,
} from '../command.js';
import { readBatch } from '../manifests.js';
import { resolveKindOrThrow } from './get.js';

interface Target {
  readonly kind: KindInfo;
  readonly namespace?: string;
  readonly name: string;
}

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete objects named in manifests or by kind and name',
  usage:
    'trellis delete -f FILE|DIR|- [-R] | trellis delete KIND NAME... [-n NS] | trellis delete KIND --all [-n NS]',
  description:
    'Deletes each object and prints `<kind>.<group> "<name>" deleted`. An object that does not exist is\n' +
    'an error (exit 1) unless --ignore-not-found is given; the others are still deleted.',
  flags: [
    FILE_FLAG,
    RECURSIVE_FLAG,
    NAMESPACE_FLAG,
    { name: 'all', type: 'bool', help: 'delete every object of KIND in the namespace' },
    { name: 'ignore-not-found', type: 'bool', help: 'treat objects that do not exist as deleted' },
  ],
  examples: [
    'trellis delete -f virtual-service-all-v1.yaml',
    'trellis delete vs reviews -n bookinfo',
  ],
  async run(args, { io, openStore }) {
    const files = flagStrings(args, 'filename');
    const nsFlag = flagString(args, 'namespace');
    const ns = nsFlag ?? 'default';
    const ignoreMissing = flagBool(args, 'ignore-not-found');
    const targets: Target[] = [];
    const store = await openStore();
    try {
      if (files.length > 0) {
        if (args.positional.length > 0)
          throw new UsageError('give either -f FILE or KIND NAME, not both');
        const batch = await readBatch(
          files,
          {
            recursive: flagBool(args, 'recursive'),
            validate: { namespace: ns, namespaceExplicit: nsFlag !== undefined },
          },
          io,
        );
        const errors = batch.problems.filter((p) => p.severity === 'error');
        if (errors.length > 0) {
          printProblems(errors, io);
          io.stderr(
            `${errors.length} error${errors.length === 1 ? '' : 's'}: nothing was deleted\n`,
          );
          return 1;
        }
        for (const m of batch.objects) {
          const k = keyOf(m.object);
          targets.push({
            kind: m.kind,
            name: k.name,
            ...(k.namespace ? { namespace: k.namespace } : {}),
          });
        }
      } else {
        const [kindArg, ...names] = args.positional;
        if (!kindArg) throw new UsageError('delete needs -f FILE or KIND NAME');
        const kind = resolveKindOrThrow(kindArg);
        const namespace = kind.namespaced ? { namespace: ns } : {};
        if (flagBool(args, 'all')) {
          if (names.length > 0) throw new UsageError('--all cannot be combined with names');
          const list = await store.list({ group: kind.group, kind: kind.kind }, namespace);
          for (const o of list.items) targets.push({ kind, name: o.metadata.name, ...namespace });
        } else {
          if (names.length === 0) throw new UsageError(`delete ${kindArg} needs a NAME (or --all)`);
          for (const name of names) targets.push({ kind, name, ...namespace });
        }
      }
      let status = 0;
      for (const t of targets) {
        const display = `${t.kind.singular}${t.kind.group ? '.' + t.kind.group : ''} "${t.name}"`;
        try {
          await store.delete({
            group: t.kind.group,
            kind: t.kind.kind,
            name: t.name,
            ...(t.namespace ? { namespace: t.namespace } : {}),
          });
          io.stdout(`${display} deleted\n`);
        } catch (e) {
          if (errorCode(e) === 'TRELLIS_NOT_FOUND') {
            if (ignoreMissing) continue;
            io.stderr(
              `Error from server (NotFound): ${resourceOf(t.kind)} "${t.name}" not found\n`,
            );
          } else io.stderr(`error: deleting ${display}: ${errorMessage(e)}\n`);
          status = 1;
        }
      }
      return status;
    } finally {
      await store.close();
    }
  },
};
