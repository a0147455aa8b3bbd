// `trellis validate`: checks manifests and reports every problem with file:line, object and field.
import { UsageError, flagBool, flagString, flagStrings } from '../args.js';
import {
  FILE_FLAG,
  NAMESPACE_FLAG,
  RECURSIVE_FLAG,
  printProblems,
  type Command,
} from '../command.js';
import { readBatch } from '../manifests.js';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check Istio and Kubernetes manifests without applying them',
  usage: 'trellis validate -f FILE|DIR|- [-R]',
  description:
    'Validates every object in the given files against the schema and the semantic rules of its kind.\n' +
    'Every problem is reported at once with its file:line, object and field path. Exits 0 when there\n' +
    'are no errors (warnings allowed), 1 otherwise.',
  flags: [FILE_FLAG, RECURSIVE_FLAG, NAMESPACE_FLAG],
  examples: [
    'trellis validate -f samples/bookinfo/networking/',
    'cat vs.yaml | trellis validate -f -',
  ],
  async run(args, { io }) {
    const inputs = [...flagStrings(args, 'filename'), ...args.positional];
    if (inputs.length === 0) throw new UsageError('validate needs -f FILE|DIR|-');
    const ns = flagString(args, 'namespace');
    const batch = await readBatch(
      inputs,
      {
        recursive: flagBool(args, 'recursive'),
        validate: { namespace: ns ?? 'default', namespaceExplicit: ns !== undefined },
      },
      io,
    );
    printProblems(batch.problems, io);
    const files = `${batch.files.length} file${batch.files.length === 1 ? '' : 's'}`;
    const warn = batch.warningCount
      ? `, ${batch.warningCount} warning${batch.warningCount === 1 ? '' : 's'}`
      : '';
    if (batch.errorCount > 0) {
      io.stderr(
        `${batch.errorCount} error${batch.errorCount === 1 ? '' : 's'}${warn} in ${files}\n`,
      );
      return 1;
    }
    io.stdout(
      `${batch.objects.length} object${batch.objects.length === 1 ? '' : 's'} valid in ${files}${warn}\n`,
    );
    return 0;
  },
};
