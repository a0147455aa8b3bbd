// Every kind Trellis accepts, and lookup by the names users type (kind, plural, short name).
import type { KindInfo } from './kind.js';
import { resourceName } from './kind.js';
import { NETWORKING_KINDS } from '../istio/networking/index.js';
import { SECURITY_KINDS } from '../istio/security/index.js';
import { TELEMETRY_KINDS } from '../istio/telemetry/index.js';
import { EXTENSIONS_KINDS } from '../istio/extensions/index.js';
import { KUBE_KINDS } from '../kube/index.js';

export const ALL_KINDS: readonly KindInfo[] = [
  ...NETWORKING_KINDS,
  ...SECURITY_KINDS,
  ...TELEMETRY_KINDS,
  ...EXTENSIONS_KINDS,
  ...KUBE_KINDS,
];

/** Gateway API kinds: recognised so users get a clear "not supported yet", not "unknown kind". */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_KINDS = [
  'Gateway',
  'GatewayClass',
  'HTTPRoute',
  'GRPCRoute',
  'TCPRoute',
  'TLSRoute',
  'UDPRoute',
  'ReferenceGrant',
  'BackendTLSPolicy',
] as const;

const byGroupKind = new Map<string, KindInfo>();
const byName = new Map<string, KindInfo[]>();
for (const k of ALL_KINDS) {
  byGroupKind.set(`${k.group}/${k.kind}`, k);
  const names = new Set([
    k.kind.toLowerCase(),
    k.plural,
    k.singular,
    resourceName(k),
    ...k.shortNames,
  ]);
  if (k.group !== '') names.add(`${k.singular}.${k.group}`);
  for (const n of names) {
    const list = byName.get(n) ?? [];
    list.push(k);
    byName.set(n, list);
  }
}

/** The kind for a group and kind name, e.g. (`networking.istio.io`, `VirtualService`). */
export function kindByGroup(group: string, kind: string): KindInfo | undefined {
  return byGroupKind.get(`${group}/${kind}`);
}

/**
 * Resolves what a user typed on the command line: `virtualservice`, `virtualservices`, `vs`,
 * `VirtualService`, `virtualservices.networking.istio.io`. Istio kinds win over others of the
 * same short name (`gateway` is Istio's Gateway).
 */
export function resolveKind(name: string): KindInfo | undefined {
  const list = byName.get(name.toLowerCase());
  return list?.[0];
}

/** Every name a kind answers to, for help texts. */
export function kindNames(k: KindInfo): string[] {
  return [k.plural, k.singular, ...k.shortNames];
}
