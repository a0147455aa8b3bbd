// `trellis create namespace NAME`: the one imperative create kubectl users reach for.
import { errorCode } from '@trellis/core';
import { ValidationContext, checkDns1123Label } from '@trellis/api';
import { UsageError } from '../args.js';
import type { Command } from '../command.js';

export const createCommand: Command = {
  name: 'create',
  summary: 'Create a namespace',
  usage: 'trellis create namespace NAME',
  description: 'Creates a Namespace object (like kubectl create namespace).',
  flags: [],
  examples: ['trellis create namespace bookinfo'],
  async run(args, { io, openStore }) {
    const [what, name, ...rest] = args.positional;
    if (what !== 'namespace' && what !== 'ns')
      throw new UsageError('only `trellis create namespace NAME` is supported');
    if (!name || rest.length > 0) throw new UsageError('create namespace needs exactly one NAME');
    const ctx = new ValidationContext();
    checkDns1123Label(name, ctx, 'namespace');
    if (ctx.problems.length > 0) throw new UsageError(ctx.problems[0]!.message);
    const store = await openStore();
    try {
      await store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      io.stdout(`namespace/${name} created\n`);
      return 0;
    } catch (e) {
      if (errorCode(e) === 'TRELLIS_ALREADY_EXISTS') {
        io.stderr(`Error from server (AlreadyExists): namespaces "${name}" already exists\n`);
        return 1;
      }
      throw e;
    } finally {
      await store.close();
    }
  },
};
