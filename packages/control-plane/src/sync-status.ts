// What each connected proxy was sent and acknowledged, in the shape istiod's /debug/syncz
// uses, so `trellis proxy-status` (istioctl proxy-status) can print it.
import { TYPE_URL } from '@trellis/envoy';
import type { ConnectionStatus, TypeStatus } from '@trellis/xds-server';

/** One xDS type's delivery state for a proxy. */
export interface TypeSync {
  /** Version last sent, absent if nothing was sent. */
  readonly sent?: string;
  /** Version last acknowledged. */
  readonly acked?: string;
  /** The last NACK, if the proxy rejected the last version it was sent. */
  readonly nack?: { readonly version: string; readonly message: string; readonly time: string };
  /** ISO time of the last send. */
  readonly sentAt?: string;
}

/** One proxy's sync status; field names follow istiod's /debug/syncz. */
export interface SyncStatus {
  readonly proxy: string;
  readonly node_id: string;
  readonly proxy_type: string;
  readonly cluster_id: string;
  readonly istio_version: string;
  readonly protocol: 'sotw' | 'delta';
  readonly connected_at: string;
  readonly proxyless: boolean;
  readonly types: Readonly<Record<'CDS' | 'LDS' | 'EDS' | 'RDS' | 'SDS', TypeSync>>;
}

const SHORT: Record<string, 'CDS' | 'LDS' | 'EDS' | 'RDS' | 'SDS'> = {
  [TYPE_URL.Cluster]: 'CDS',
  [TYPE_URL.Listener]: 'LDS',
  [TYPE_URL.ClusterLoadAssignment]: 'EDS',
  [TYPE_URL.RouteConfiguration]: 'RDS',
  [TYPE_URL.Secret]: 'SDS',
};

function typeSync(t: TypeStatus | undefined): TypeSync {
  if (!t) return {};
  const nack =
    t.lastNack && (!t.lastAcked || t.lastNack.time >= t.lastAcked.time)
      ? {
          version: t.lastNack.version,
          message: t.lastNack.message,
          time: new Date(t.lastNack.time).toISOString(),
        }
      : undefined;
  return {
    ...(t.lastSent
      ? { sent: t.lastSent.version, sentAt: new Date(t.lastSent.time).toISOString() }
      : {}),
    ...(t.lastAcked ? { acked: t.lastAcked.version } : {}),
    ...(nack ? { nack } : {}),
  };
}

/** Sync status of every connection, sorted by proxy id. */
export function syncStatuses(conns: readonly ConnectionStatus[], clusterId: string): SyncStatus[] {
  return conns
    .map((c) => {
      const byShort = new Map<string, TypeStatus>();
      for (const t of c.types) {
        const s = SHORT[t.typeUrl];
        if (s) byShort.set(s, t);
      }
      return {
        proxy: c.proxy.id,
        node_id: c.proxy.nodeId,
        proxy_type: c.proxy.type,
        cluster_id: c.proxy.clusterId ?? clusterId,
        istio_version: c.proxy.istioVersion ?? '',
        protocol: c.protocol,
        connected_at: new Date(c.connectedAt).toISOString(),
        proxyless: c.proxy.proxyless,
        types: {
          CDS: typeSync(byShort.get('CDS')),
          LDS: typeSync(byShort.get('LDS')),
          EDS: typeSync(byShort.get('EDS')),
          RDS: typeSync(byShort.get('RDS')),
          SDS: typeSync(byShort.get('SDS')),
        },
      };
    })
    .sort((a, b) => a.proxy.localeCompare(b.proxy) || a.node_id.localeCompare(b.node_id));
}

/** istioctl's words for one type: SYNCED, NOT SENT, STALE (sent but not acknowledged), NACKED. */
export function syncWord(t: TypeSync): 'SYNCED' | 'NOT SENT' | 'STALE' | 'NACKED' {
  if (t.sent === undefined) return 'NOT SENT';
  if (t.nack && t.nack.version === t.sent) return 'NACKED';
  return t.acked === t.sent ? 'SYNCED' : 'STALE';
}
