// What `trellis status` shows, as the daemon's API returns it: the daemon, its components
// (control plane, gateways) and every workload pod, each with the sidecar's xDS sync state
// summarised the way `trellis proxy-status` words it (SYNCED / STALE / NOT SENT / NACKED).
import { syncWord, type SyncStatus } from '@trellis/control-plane';
import type { DaemonInfo } from './runtime-files.js';
import type { ReplicaStatusView } from './replica.js';

export interface PodStatusRow extends ReplicaStatusView {
  /** Sidecar or gateway sync state; `-` for pods without a proxy. */
  readonly sync: string;
}

export interface ComponentRow {
  readonly namespace: string;
  readonly name: string;
  readonly ready: string;
  readonly status: string;
  readonly restarts: number;
  readonly ports: Readonly<Record<string, number>>;
}

export interface StatusReport {
  readonly daemon: DaemonInfo;
  readonly stateDir: string;
  readonly components: readonly ComponentRow[];
  readonly gateways: readonly PodStatusRow[];
  readonly pods: readonly PodStatusRow[];
}

/** One word for a proxy: the worst of its CDS, LDS, EDS and RDS states. */
export function syncSummary(s: SyncStatus | undefined): string {
  if (!s) return 'NOT CONNECTED';
  const words = (['CDS', 'LDS', 'EDS', 'RDS'] as const).map((t) => syncWord(s.types[t]));
  if (words.includes('NACKED')) return 'NACKED';
  if (words.includes('STALE')) return 'STALE';
  if (words.every((w) => w === 'NOT SENT')) return 'NOT SENT';
  return 'SYNCED';
}

/** `app:9080=41234 inbound:9080=41235 proxy=41236 admin=41237` */
export function formatPorts(ports: Readonly<Record<string, number>>): string {
  const entries = Object.entries(ports);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(' ');
}
