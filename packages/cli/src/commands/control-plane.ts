// `trellis control-plane`: runs the control plane (istiod's role) until SIGINT or SIGTERM.
import { setFlagsFromString } from 'node:v8';
import { ControlPlane } from '@trellis/control-plane';
import { UsageError, flagString } from '../args.js';
import type { Command } from '../command.js';
import { untilSignal } from '../signals.js';

function intFlag(
  v: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(
      `--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`,
    );
  return n;
}

export const controlPlaneCommand: Command = {
  name: 'control-plane',
  summary: 'Run the control plane: watch config, translate it, serve xDS',
  usage: 'trellis control-plane [--xds-address HOST:PORT] [--monitoring-address HOST:PORT]',
  description:
    "Watches the state directory's config, builds Envoy configuration for every connected proxy and\n" +
    'serves it over xDS (ADS, state of the world and delta). Monitoring on 15014: /ready, /metrics,\n' +
    '/debug/syncz, /debug/configz, /debug/registryz, /debug/config_dump?proxyID=POD.NS.\n' +
    'Runs in the foreground until interrupted.',
  flags: [
    {
      name: 'xds-address',
      type: 'string',
      value: 'HOST:PORT',
      help: 'xDS listen address (default 127.0.0.1:15010)',
    },
    {
      name: 'monitoring-address',
      type: 'string',
      value: 'HOST:PORT',
      help: 'monitoring listen address (default 127.0.0.1:15014)',
    },
    {
      name: 'debounce-quiet',
      type: 'string',
      value: 'MS',
      help: 'push after this long without config changes (default 100)',
    },
    {
      name: 'debounce-max',
      type: 'string',
      value: 'MS',
      help: 'push at the latest this long after a change (default 10000)',
    },
    {
      name: 'eds-debounce',
      type: 'string',
      value: 'true|false',
      help: "whether endpoint-only changes wait for the debounce too (default true; Istio's PILOT_ENABLE_EDS_DEBOUNCE)",
    },
  ],
  examples: [
    'trellis control-plane',
    'trellis control-plane --xds-address 127.0.0.1:0 --monitoring-address 127.0.0.1:0',
  ],
  async run(args, { io, openStore }) {
    if (args.positional.length > 0) throw new UsageError('control-plane takes no arguments');
    const monitoring = flagString(args, 'monitoring-address') ?? '127.0.0.1:15014';
    const colon = monitoring.lastIndexOf(':');
    const monitoringPort = intFlag(
      colon < 0 ? undefined : monitoring.slice(colon + 1),
      'monitoring-address port',
      0,
      65535,
    );
    if (colon < 0 || monitoringPort === undefined)
      throw new UsageError('--monitoring-address must be HOST:PORT');
    const quietMs = intFlag(flagString(args, 'debounce-quiet'), 'debounce-quiet', 0, 60_000);
    const maxMs = intFlag(flagString(args, 'debounce-max'), 'debounce-max', 0, 600_000);
    const edsFlag = flagString(args, 'eds-debounce') ?? io.env.PILOT_ENABLE_EDS_DEBOUNCE;
    if (edsFlag !== undefined && edsFlag !== 'true' && edsFlag !== 'false')
      throw new UsageError(`--eds-debounce must be true or false, not '${edsFlag}'`);
    const eds = edsFlag === undefined ? undefined : edsFlag === 'true';
    // After a full collection V8 may let the heap grow to several times what survived before
    // collecting again; translation leaves a lot of short-lived garbage, so at 1,000 services
    // that is hundreds of MB of dead objects. Growing by at most half keeps the resident size
    // near the live data, for about 15% more CPU in full pushes (BENCHMARKS.md).
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    const store = await openStore();
    let cp: ControlPlane;
    try {
      cp = await ControlPlane.start({
        store,
        xdsAddress: flagString(args, 'xds-address') ?? '127.0.0.1:15010',
        monitoringHost: monitoring.slice(0, colon),
        monitoringPort,
        ...(quietMs !== undefined || maxMs !== undefined || eds !== undefined
          ? {
              debounce: {
                ...(quietMs !== undefined ? { quietMs } : {}),
                ...(maxMs !== undefined ? { maxMs } : {}),
                ...(eds !== undefined ? { eds } : {}),
              },
            }
          : {}),
        log: (level, message, fields) =>
          io.stderr(
            `${new Date().toISOString()} ${level} ${message}${fields ? ' ' + JSON.stringify(fields) : ''}\n`,
          ),
      });
    } catch (e) {
      await store.close();
      throw e;
    }
    const host = monitoring.slice(0, colon);
    io.stdout(
      `control plane ready: xDS on ${(flagString(args, 'xds-address') ?? '127.0.0.1:15010').replace(/:\d+$/, '')}:${cp.xdsPort}, ` +
        `monitoring on http://${host}:${cp.monitoringPort}\n`,
    );
    await untilSignal();
    io.stderr('control plane stopping\n');
    await cp.close();
    await store.close();
    return 0;
  },
};

/** V8's heap growth after a full garbage collection, in percent of what survived it. */
const HEAP_GROWING_PERCENT = 50;
