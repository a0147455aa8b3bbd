// The servers a gateway proxy serves (Istio pilot/pkg/model/gateway.go MergeGateways): every
// server of every Gateway that selects the proxy, grouped by port. HTTP servers of a port share
// the route configuration `http.PORT`; an HTTPS server that terminates TLS has its own
// `https.PORT.PORTNAME.GATEWAY.NAMESPACE`; TLS/TCP servers become filter chains. A port serves
// either HTTP or TLS/TCP servers: a later server of the other kind is dropped, and so is a second
// plain TCP server. A TLS server (HTTPS, TLS) with a host an earlier server of the same port and
// bind serves is dropped too, and reported (Istio CheckDuplicates): Envoy rejects two filter
// chains with the same SNI match, so hosts compare without their namespace part. Servers come in
// order: Gateways oldest first, then as declared. Server hosts `./host` become `NAMESPACE/host`,
// `*/host` becomes `host`.
// A server port that is a port of the gateway's Service listens on the Service's targetPort.
import type { Server } from '@trellis/api';
import {
  isHttpProtocol,
  parseProtocol,
  type Protocol,
  type RegistryProblem,
} from '@trellis/registry';
import type { ProxyContext } from './sidecar-scope-context.js';

/** One server with the Gateway it comes from and what generation derived from it. */
export interface MergedServer {
  readonly server: Server;
  /** `namespace/name` of the Gateway. */
  readonly gateway: string;
  readonly gatewayName: string;
  readonly gatewayNamespace: string;
  /** Hosts with `./` and `*\/` resolved. */
  readonly hosts: readonly string[];
  readonly protocol: Protocol;
  /** The route configuration for HTTP and terminated HTTPS servers. */
  readonly routeName?: string;
  /** SNI names of a TLS/HTTPS server (namespaces stripped, sorted, unique). */
  readonly sniHosts: readonly string[];
}

/** The servers of one listening port. */
export interface GatewayPort {
  /** The port the proxy listens on. */
  readonly port: number;
  /** Bind address (`server.bind`), or '' for the wildcard. */
  readonly bind: string;
  readonly http: boolean;
  readonly servers: MergedServer[];
}

/** Every server of a gateway proxy. */
export interface MergedGateway {
  readonly ports: readonly GatewayPort[];
  /** Servers by route configuration name. */
  readonly serversByRouteName: ReadonlyMap<string, readonly MergedServer[]>;
  /** The servers left out, one problem each, on the Gateway that declares it. */
  readonly problems: readonly RegistryProblem[];
}

function sanitizeHosts(hosts: readonly string[], namespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) {
      out.push(h);
      continue;
    }
    const ns = h.slice(0, slash);
    const name = h.slice(slash + 1);
    if (ns === '.') out.push(`${namespace}/${name}`);
    else if (ns === '*') {
      if (name === '*') return ['*'];
      out.push(name);
    } else out.push(h);
  }
  return out;
}

/** Whether a server passes TLS through (PASSTHROUGH or AUTO_PASSTHROUGH). */
export function isPassthroughServer(s: Server): boolean {
  const m = s.tls?.mode;
  return m === 'PASSTHROUGH' || m === 'AUTO_PASSTHROUGH';
}

/** Istio gatewayRDSRouteName. */
function routeNameFor(
  s: Server,
  protocol: Protocol,
  port: number,
  gwName: string,
  gwNs: string,
): string | undefined {
  const bind = s.bind ? `.${s.bind}` : '';
  if (isHttpProtocol(protocol)) return `http.${port}${bind}`;
  if (protocol === 'HTTPS' && !isPassthroughServer(s))
    return `https.${s.port.number}.${s.port.name}.${gwName}.${gwNs}${bind}`;
  return undefined;
}

function sniHostsOf(s: Server, hosts: readonly string[]): string[] {
  if (!s.tls) return [];
  const out = new Set<string>();
  for (const h of hosts) {
    const slash = h.indexOf('/');
    out.add(slash >= 0 ? h.slice(slash + 1) : h);
  }
  return [...out].sort();
}

/** The gateway Service port → targetPort mapping of the proxy's workload. */
function targetPortMap(ctx: ProxyContext): Map<number, number> {
  const out = new Map<number, number>();
  const w = ctx.workload;
  if (!w) return out;
  for (const ep of ctx.snapshot.registry.endpointsOfWorkload(w.kind, w.namespace, w.name))
    if (!out.has(ep.servicePort) && ep.targetPort > 0) out.set(ep.servicePort, ep.targetPort);
  return out;
}

/** `server NAME (port N)`: a server by its name (else its port's) and declared port. */
function describeServer(s: MergedServer): string {
  const bind = s.server.bind ? `, bind ${s.server.bind}` : '';
  return `server ${s.server.name || s.server.port.name} (port ${s.server.port.number}${bind})`;
}

/** Why `s` is left out: its hosts `taken` are served on the same port already (by `owners`). */
function duplicateHostProblem(
  s: MergedServer,
  taken: readonly string[],
  owners: ReadonlyMap<string, MergedServer>,
): RegistryProblem {
  const byOwner = new Map<MergedServer, string[]>();
  for (const h of taken) {
    const o = owners.get(h);
    if (!o) continue;
    const l = byOwner.get(o);
    if (l) l.push(h);
    else byOwner.set(o, [h]);
  }
  const reasons = [...byOwner].map(
    ([o, hosts]) =>
      `${hosts.length > 1 ? 'hosts' : 'host'} ${hosts.join(', ')} ${hosts.length > 1 ? 'are' : 'is'} already served by Gateway ${o.gateway} ${describeServer(o)}`,
  );
  return {
    object: { kind: 'Gateway', namespace: s.gatewayNamespace, name: s.gatewayName },
    message: `${describeServer(s)} is ignored: ${reasons.join('; ')}`,
  };
}

/** Merges the servers of the Gateways that select the proxy. */
export function mergeGateways(ctx: ProxyContext): MergedGateway {
  const gateways = ctx.snapshot.gatewaysFor(ctx.proxy.namespace, ctx.proxy.labels);
  const targets = targetPortMap(ctx);
  const ports = new Map<string, GatewayPort>();
  const byRoute = new Map<string, MergedServer[]>();
  // SNI host → the TLS server that serves it, per bind and port.
  const tlsHosts = new Map<string, Map<string, MergedServer>>();
  const problems: RegistryProblem[] = [];
  for (const gw of gateways) {
    for (const server of gw.spec.servers ?? []) {
      const protocol = parseProtocol(server.port.protocol);
      const port = targets.get(server.port.number) ?? server.port.number;
      const hosts = sanitizeHosts(server.hosts, gw.namespace);
      const routeName = routeNameFor(server, protocol, port, gw.name, gw.namespace);
      const merged: MergedServer = {
        server,
        gateway: gw.ref,
        gatewayName: gw.name,
        gatewayNamespace: gw.namespace,
        hosts,
        protocol,
        ...(routeName !== undefined ? { routeName } : {}),
        sniHosts: sniHostsOf(server, hosts),
      };
      const key = `${server.bind ?? ''}\u0000${port}`;
      const http = isHttpProtocol(protocol);
      const existing = ports.get(key);
      if (existing) {
        if (existing.http !== http) continue;
        if (!http && !server.tls && existing.servers.some((s) => !s.server.tls)) continue;
      }
      if (!http && server.tls) {
        const owners = tlsHosts.get(key) ?? new Map<string, MergedServer>();
        const taken = merged.sniHosts.filter((h) => owners.has(h));
        if (taken.length > 0) {
          problems.push(duplicateHostProblem(merged, taken, owners));
          continue;
        }
        for (const h of merged.sniHosts) owners.set(h, merged);
        tlsHosts.set(key, owners);
      }
      if (existing) existing.servers.push(merged);
      else ports.set(key, { port, bind: server.bind ?? '', http, servers: [merged] });
      if (routeName !== undefined) {
        const l = byRoute.get(routeName);
        if (l) l.push(merged);
        else byRoute.set(routeName, [merged]);
      }
    }
  }
  const sorted = [...ports.values()].sort(
    (a, b) => a.port - b.port || (a.bind < b.bind ? -1 : a.bind > b.bind ? 1 : 0),
  );
  return { ports: sorted, serversByRouteName: byRoute, problems };
}
