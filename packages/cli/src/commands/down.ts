// `trellis down`: stops the local runtime of the state directory (apps, sidecars, gateways, then
// the control plane), and cleans up what a killed run left: its processes and its Pods.
import { stopRuntime } from '@trellis/local';
import { UsageError } from '../args.js';
import type { Command } from '../command.js';
import { stateDirOf } from '../runtime-client.js';

export const downCommand: Command = {
  name: 'down',
  summary: 'Stop the local mesh started by trellis up',
  usage: 'trellis down',
  description:
    'Stops every workload (apps first, then their sidecars), the gateways and the control plane,\n' +
    'waits until all have exited and removes their Pods from the store. Processes left by a\n' +
    'runtime that was killed are stopped too. Nothing running is not an error.',
  flags: [],
  examples: ['trellis down', 'trellis down --state-dir /tmp/mesh'],
  async run(args, { io }) {
    if (args.positional.length > 0) throw new UsageError('down takes no arguments');
    const dir = stateDirOf(args, io);
    const r = await stopRuntime(dir);
    if (!r.daemon && r.leftovers.length === 0) {
      io.stdout(`no Trellis runtime is running in ${dir}\n`);
      return 0;
    }
    if (r.daemon) io.stdout(`Trellis stopped (${dir})\n`);
    if (r.leftovers.length > 0)
      io.stdout(
        `stopped ${r.leftovers.length} process${r.leftovers.length === 1 ? '' : 'es'} left by a previous run` +
          ` (${r.leftovers.map((p) => `${p.role} ${p.pod}`).join(', ')})\n`,
      );
    return 0;
  },
};
