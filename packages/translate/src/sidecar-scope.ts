// What a proxy may reach: Istio's SidecarScope (pilot/pkg/model/sidecar.go). Without a Sidecar
// resource a proxy sees every service and VirtualService exported to its namespace (`*/*`). A
// Sidecar narrows that per egress listener: `hosts` are `namespace/dnsName` (`.` is the Sidecar's
// own namespace, `*` any namespace; dnsName `*` or `*.suffix` or a name), a listener with a port
// keeps only that port of each service, and the services VirtualServices route to are added (the
// one in the proxy's namespace, else the first namespace alphabetically where it is visible).
// When several namespaces define one host, the one in the proxy's namespace wins. The Sidecar's
// outboundTrafficPolicy overrides the mesh default. Gateways always use the default scope.
import type {
  Destination,
  IstioEgressListener,
  IstioIngressListener,
  OutboundTrafficPolicy,
  SidecarPort,
  VirtualServiceSpec,
} from '@trellis/api';
import type {
  ConsolidatedDestinationRule,
  Service,
  SidecarConfig,
  Snapshot,
  VirtualServiceConfig,
} from '@trellis/registry';
import { hostMatches, hostSubsetOf, isExportedTo, parseProtocol } from '@trellis/registry';
import type { Proxy } from './proxy.js';
import { mergeDelegates, type DelegateLike } from './route-delegate.js';
import type { VirtualServiceLike } from './route.js';
import { DEFAULT_MESH_TRAFFIC, type MeshTrafficDefaults } from './sidecar-scope-options.js';

/** A VirtualService in a scope: resolved and with its delegates merged. */
export interface ScopedVirtualService extends VirtualServiceLike {
  /** The config it comes from (identity, gateways, raw spec). */
  readonly config: VirtualServiceConfig;
}

/** One egress listener of a scope: what the proxy reaches through it. */
export interface EgressListenerScope {
  /** The Sidecar egress listener; undefined for the default catch-all (every host of every namespace). */
  readonly listener?: IstioEgressListener;
  /** The listener's port, when it has one. */
  readonly port?: SidecarPort;
  /** Imported dnsNames by namespace (`*` for any namespace). */
  readonly hosts: ReadonlyMap<string, readonly string[]>;
  /** Services selected by `hosts` (trimmed to the listener port when it has one). */
  readonly services: readonly Service[];
  /** VirtualServices bound to `mesh` whose hosts `hosts` import. */
  readonly virtualServices: readonly ScopedVirtualService[];
}

/** The outbound traffic policy in effect. */
export interface EffectiveOutboundPolicy {
  readonly mode: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** ALLOW_ANY only: where unknown traffic goes instead of PassthroughCluster. */
  readonly egressProxy?: Destination;
}

/** The scope of one proxy. */
export interface SidecarScope {
  /** The Sidecar resource in effect (undefined: the default scope). */
  readonly sidecar?: SidecarConfig;
  /** The proxy's config namespace. */
  readonly namespace: string;
  readonly egressListeners: readonly EgressListenerScope[];
  /** Every service reachable through some listener (what CDS needs), one per host name. */
  readonly services: readonly Service[];
  /** `services` by host name. */
  readonly servicesByHostname: ReadonlyMap<string, Service>;
  readonly outboundTrafficPolicy: EffectiveOutboundPolicy;
  /** The Sidecar's ingress listeners (empty without a Sidecar or without ingress). */
  readonly ingress: readonly IstioIngressListener[];
  /** The DestinationRule the proxy applies to a host (workload selectors considered). */
  destinationRule(hostname: string): ConsolidatedDestinationRule | undefined;
}

const WILDCARD_NAMESPACE = '*';
const CURRENT_NAMESPACE = '.';

function parseHosts(hosts: readonly string[], namespace: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) continue;
    let ns = h.slice(0, slash);
    if (ns === CURRENT_NAMESPACE) ns = namespace;
    const list = out.get(ns);
    if (list) list.push(h.slice(slash + 1));
    else out.set(ns, [h.slice(slash + 1)]);
  }
  return out;
}

function needsPortMatch(l: IstioEgressListener | undefined): boolean {
  const n = l?.port?.number ?? 0;
  return n !== 0 && parseProtocol(l?.port?.protocol ?? '') !== 'HTTP_PROXY';
}

/** The service with only the listener's port; undefined when it does not have that port. */
function trimToPort(s: Service, port: number): Service | undefined {
  const p = s.ports.find((x) => x.port === port);
  if (!p) return undefined;
  return Object.freeze({ ...s, ports: Object.freeze([p]) });
}

function selectServices(
  all: readonly Service[],
  namespace: string,
  hosts: ReadonlyMap<string, readonly string[]>,
  listener: IstioEgressListener | undefined,
): Service[] {
  const matchPort = needsPortMatch(listener);
  const port = listener?.port?.number ?? 0;
  const imported: Service[] = [];
  const wildcard = hosts.get(WILDCARD_NAMESPACE);
  for (const s of all) {
    const names = hosts.get(s.namespace) ?? wildcard;
    if (!names) continue;
    if (!names.some((h) => hostSubsetOf(s.hostname, h))) continue;
    const t = matchPort ? trimToPort(s, port) : s;
    if (t) imported.push(t);
  }
  // One namespace per host name: the proxy's namespace wins, else the first found.
  const chosen = new Map<string, string>();
  for (const s of imported) {
    if (!chosen.has(s.hostname) || s.namespace === namespace) chosen.set(s.hostname, s.namespace);
  }
  return imported.filter((s) => chosen.get(s.hostname) === s.namespace);
}

function selectVirtualServices(
  all: readonly ScopedVirtualService[],
  hosts: ReadonlyMap<string, readonly string[]>,
): ScopedVirtualService[] {
  const out: ScopedVirtualService[] = [];
  for (const vs of all) {
    const imported = [...(hosts.get(vs.namespace) ?? []), ...(hosts.get(WILDCARD_NAMESPACE) ?? [])];
    if (imported.some((ih) => (vs.spec.hosts ?? []).some((h) => hostMatches(h, ih)))) out.push(vs);
  }
  return out;
}

/** Every destination host of a VirtualService (HTTP, TLS, TCP routes and mirrors). */
export function virtualServiceDestinationHosts(spec: VirtualServiceSpec): string[] {
  const out = new Set<string>();
  for (const r of spec.http ?? []) {
    for (const d of r.route ?? []) out.add(d.destination.host);
    if (r.mirror) out.add(r.mirror.host);
    for (const m of r.mirrors ?? []) out.add(m.destination.host);
  }
  for (const r of spec.tls ?? []) for (const d of r.route) out.add(d.destination.host);
  for (const r of spec.tcp ?? []) for (const d of r.route) out.add(d.destination.host);
  return [...out];
}

/** The mesh VirtualServices a namespace sees, with delegates merged. */
export function scopedVirtualServices(
  snapshot: Snapshot,
  namespace: string,
  gateway = 'mesh',
): ScopedVirtualService[] {
  return snapshot.virtualServicesForGateway(namespace, gateway).map((config) => {
    const merged = mergeDelegates(
      config,
      (ns, name) => {
        const d = snapshot.virtualService(ns, name);
        return d && d.isDelegate ? { namespace: d.namespace, name: d.name, raw: d.raw } : undefined;
      },
      (d: DelegateLike, rootNs: string) =>
        isExportedTo(
          d.raw.exportTo ?? [],
          d.namespace,
          rootNs,
          snapshot.mesh.defaultVirtualServiceExportTo,
        ),
      snapshot.mesh.domainSuffix,
    );
    return { name: config.name, namespace: config.namespace, spec: merged.spec, config };
  });
}

/** The part of a scope that does not depend on the proxy's labels, per snapshot and key. */
type ScopeCore = Omit<SidecarScope, 'destinationRule'>;
const scopeCores = new WeakMap<Snapshot, Map<string, ScopeCore>>();
const defaultsKeys = new WeakMap<MeshTrafficDefaults, string>();

/**
 * Builds the scope of a proxy. Everything but the DestinationRule lookup (which looks at the
 * proxy's labels) depends only on the snapshot, the namespace, the Sidecar in effect and the
 * mesh defaults, so that part is computed once per snapshot for all the proxies that share them.
 */
export function buildSidecarScope(
  snapshot: Snapshot,
  proxy: Proxy,
  defaults: MeshTrafficDefaults = DEFAULT_MESH_TRAFFIC,
): SidecarScope {
  const namespace = proxy.namespace;
  const sidecar =
    proxy.type === 'sidecar' ? snapshot.sidecarFor(namespace, proxy.labels) : undefined;
  let dk = defaultsKeys.get(defaults);
  if (dk === undefined) {
    dk = JSON.stringify(defaults);
    defaultsKeys.set(defaults, dk);
  }
  const key = `${namespace}\u0000${sidecar ? `${sidecar.namespace}/${sidecar.name}` : ''}\u0000${dk}`;
  let cores = scopeCores.get(snapshot);
  if (!cores) {
    cores = new Map();
    scopeCores.set(snapshot, cores);
  }
  let core = cores.get(key);
  if (!core) {
    core = buildScopeCore(snapshot, namespace, sidecar, defaults);
    cores.set(key, core);
  }
  const byHost = core.servicesByHostname;
  const drCache = new Map<string, ConsolidatedDestinationRule | undefined>();
  return {
    ...core,
    destinationRule(hostname: string) {
      if (!drCache.has(hostname)) {
        const svc = byHost.get(hostname) ?? snapshot.serviceForHostname(hostname, namespace);
        drCache.set(
          hostname,
          snapshot.destinationRule(namespace, hostname, {
            ...(svc ? { serviceNamespace: svc.namespace } : {}),
            clientLabels: proxy.labels,
          }),
        );
      }
      return drCache.get(hostname);
    },
  };
}

function buildScopeCore(
  snapshot: Snapshot,
  namespace: string,
  sidecar: SidecarConfig | undefined,
  defaults: MeshTrafficDefaults,
): ScopeCore {
  const visible = snapshot.servicesVisibleFrom(namespace);
  const visibleByHost = new Map<string, Service[]>();
  for (const v of visible) {
    const l = visibleByHost.get(v.hostname);
    if (l) l.push(v);
    else visibleByHost.set(v.hostname, [v]);
  }
  const meshVs = scopedVirtualServices(snapshot, namespace);
  const egressConfigs: (IstioEgressListener | undefined)[] =
    sidecar && (sidecar.spec.egress?.length ?? 0) > 0
      ? [...(sidecar.spec.egress ?? [])]
      : [undefined];

  const listeners: EgressListenerScope[] = [];
  const services: Service[] = [];
  const added = new Map<string, number>();
  const addService = (s: Service | undefined): void => {
    if (!s) return;
    const i = added.get(s.hostname);
    if (i === undefined) {
      added.set(s.hostname, services.length);
      services.push(s);
      return;
    }
    const existing = services[i];
    if (!existing || existing.namespace !== s.namespace) return;
    const extra = s.ports.filter((p) => !existing.ports.some((q) => q.port === p.port));
    if (extra.length > 0)
      services[i] = Object.freeze({
        ...existing,
        ports: Object.freeze([...existing.ports, ...extra]),
      });
  };

  for (const l of egressConfigs) {
    const hosts = parseHosts(l ? l.hosts : ['*/*'], namespace);
    const ls: EgressListenerScope = {
      ...(l ? { listener: l } : {}),
      ...(l?.port ? { port: l.port } : {}),
      hosts,
      services: selectServices(visible, namespace, hosts, l),
      virtualServices: selectVirtualServices(meshVs, hosts),
    };
    listeners.push(ls);
    for (const s of ls.services) addService(s);
    const matchPort = needsPortMatch(l);
    for (const vs of ls.virtualServices) {
      for (const h of virtualServiceDestinationHosts(vs.spec)) {
        // The service in the proxy's namespace, else the first namespace alphabetically.
        const candidates = visibleByHost.get(h) ?? [];
        const s =
          candidates.find((x) => x.namespace === namespace) ??
          [...candidates].sort((a, b) => (a.namespace < b.namespace ? -1 : 1))[0];
        if (!s) continue;
        addService(matchPort ? trimToPort(s, l?.port?.number ?? 0) : s);
      }
    }
  }

  const byHost = new Map<string, Service>();
  for (const s of services) {
    const existing = byHost.get(s.hostname);
    if (existing && !(existing.origin !== 'Kubernetes' && s.origin === 'Kubernetes')) continue;
    byHost.set(s.hostname, s);
  }
  const policy: OutboundTrafficPolicy | undefined = sidecar?.spec.outboundTrafficPolicy;
  const mode = policy?.mode ?? (policy ? 'ALLOW_ANY' : defaults.outboundTrafficPolicy);
  const outboundTrafficPolicy: EffectiveOutboundPolicy =
    mode === 'ALLOW_ANY' && policy?.egressProxy
      ? { mode, egressProxy: policy.egressProxy }
      : { mode };
  return {
    ...(sidecar ? { sidecar } : {}),
    namespace,
    egressListeners: listeners,
    services,
    servicesByHostname: byHost,
    outboundTrafficPolicy,
    ingress: sidecar?.spec.ingress ?? [],
  };
}

/**
 * The egress listener that serves a route configuration for `port` (Istio
 * GetEgressListenerForRDS): the listener with that port, else the catch-all one.
 */
export function egressListenerForPort(
  scope: SidecarScope,
  port: number,
): EgressListenerScope | undefined {
  for (const e of scope.egressListeners) {
    if (!e.port) return e;
    if (port !== 0 && e.port.number === port) return e;
  }
  return undefined;
}
