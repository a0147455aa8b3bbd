// Table columns for `trellis get`, following the printer columns of Istio's CRDs and kubectl's
// built-in printers, and the AGE format kubectl uses.
import type { KindInfo, KubeObject } from '@trellis/api';

export interface Column {
  readonly header: string;
  /** Only with -o wide. */
  readonly wide?: boolean;
  value(o: KubeObject): string;
}

type Json = Record<string, unknown> | undefined;
const spec = (o: KubeObject): Json => o.spec as Json;
const field = (v: Json, ...path: string[]): unknown => {
  let cur: unknown = v;
  for (const p of path)
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
};
/** Go-template-ish rendering of lists, as kubectl shows `["a","b"]`. */
const listOf = (v: unknown): string => (Array.isArray(v) ? JSON.stringify(v) : str(v));
/** A scalar as text; objects as JSON; absent as ''. */
function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? '';
}

function servicePorts(o: KubeObject): string {
  const ports = field(spec(o), 'ports');
  if (!Array.isArray(ports) || ports.length === 0) return '<none>';
  return ports
    .map(
      (p: Record<string, unknown>) =>
        `${str(p.port)}${p.nodePort ? ':' + str(p.nodePort) : ''}/${str(p.protocol ?? 'TCP')}`,
    )
    .join(',');
}

function selectorText(sel: unknown): string {
  if (!sel || typeof sel !== 'object') return '<none>';
  const entries = Object.entries(sel as Record<string, unknown>);
  return entries.length ? entries.map(([k, v]) => `${k}=${str(v)}`).join(',') : '<none>';
}

const COLUMNS: Record<string, readonly Column[]> = {
  'networking.istio.io/VirtualService': [
    { header: 'GATEWAYS', value: (o) => listOf(field(spec(o), 'gateways')) },
    { header: 'HOSTS', value: (o) => listOf(field(spec(o), 'hosts')) },
  ],
  'networking.istio.io/DestinationRule': [
    { header: 'HOST', value: (o) => str(field(spec(o), 'host')) },
  ],
  'networking.istio.io/ServiceEntry': [
    { header: 'HOSTS', value: (o) => listOf(field(spec(o), 'hosts')) },
    { header: 'LOCATION', value: (o) => str(field(spec(o), 'location')) },
    { header: 'RESOLUTION', value: (o) => str(field(spec(o), 'resolution')) },
  ],
  'networking.istio.io/WorkloadEntry': [
    { header: 'ADDRESS', value: (o) => str(field(spec(o), 'address')) },
  ],
  'security.istio.io/PeerAuthentication': [
    { header: 'MODE', value: (o) => str(field(spec(o), 'mtls', 'mode')) },
  ],
  'security.istio.io/AuthorizationPolicy': [
    { header: 'ACTION', value: (o) => str(field(spec(o), 'action')) },
  ],
  '/Service': [
    { header: 'TYPE', value: (o) => str(field(spec(o), 'type') ?? 'ClusterIP') },
    { header: 'CLUSTER-IP', value: (o) => str(field(spec(o), 'clusterIP') ?? '<none>') },
    { header: 'PORT(S)', value: servicePorts },
    { header: 'SELECTOR', wide: true, value: (o) => selectorText(field(spec(o), 'selector')) },
  ],
  'apps/Deployment': [
    { header: 'REPLICAS', value: (o) => str(field(spec(o), 'replicas') ?? 1) },
    {
      header: 'CONTAINERS',
      wide: true,
      value: (o) => {
        const cs = field(spec(o), 'template', 'spec', 'containers');
        return Array.isArray(cs)
          ? cs.map((c: Record<string, unknown>) => str(c.name)).join(',')
          : '';
      },
    },
    {
      header: 'SELECTOR',
      wide: true,
      value: (o) => selectorText(field(spec(o), 'selector', 'matchLabels')),
    },
  ],
  '/Secret': [
    { header: 'TYPE', value: (o) => str(o.type ?? 'Opaque') },
    {
      header: 'DATA',
      value: (o) =>
        String(Object.keys({ ...(o.data as object), ...(o.stringData as object) }).length),
    },
  ],
  '/ConfigMap': [
    {
      header: 'DATA',
      value: (o) =>
        String(Object.keys({ ...(o.data as object), ...(o.binaryData as object) }).length),
    },
  ],
  '/Namespace': [{ header: 'STATUS', value: () => 'Active' }],
};

/** The columns after NAME (and before AGE) for a kind. */
export function columnsFor(kind: KindInfo, wide: boolean): readonly Column[] {
  const cols = COLUMNS[`${kind.group}/${kind.kind}`] ?? [];
  return cols.filter((c) => wide || !c.wide);
}

/** kubectl's human duration: `45s`, `12m`, `5h`, `3d`, `2y`. */
export function formatAge(createdIso: string | undefined, now: number): string {
  if (!createdIso) return '<unknown>';
  const t = Date.parse(createdIso);
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** Renders rows as kubectl does: upper-case headers, columns separated by three spaces. */
export function renderTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}
