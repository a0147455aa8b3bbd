// `trellis proxy-config cluster|listener|route|endpoint|secret POD[.NS]`: what a proxy was sent,
// printed as istioctl proxy-config prints it, from the Envoy ConfigDump the control plane serves.
import { X509Certificate } from 'node:crypto';
import { stringify } from 'yaml';
import { UsageError, flagString } from '../args.js';
import type { Command } from '../command.js';
import { CONTROL_PLANE_FLAG, controlPlaneAddress, getJson } from '../control-plane-client.js';
import { renderTable } from '../printers.js';

type J = Record<string, unknown>;
const obj = (v: unknown): J =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const s = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';

/** The section of a ConfigDump with the given admin type suffix (`ClustersConfigDump`). */
function section(dump: unknown, type: string): J {
  return obj(arr(obj(dump).configs).find((c) => s(obj(c)['@type']).endsWith(`.${type}`)));
}

/** `/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews` → `reviews.default`. */
function istioConfigRef(metadata: unknown): string {
  const ref = s(obj(obj(obj(metadata).filterMetadata).istio).config);
  const m = /\/namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(ref);
  return m ? `${m[2]}.${m[1]}` : '';
}

interface Filters {
  readonly fqdn?: string;
  readonly port?: string;
  readonly subset?: string;
  readonly direction?: string;
  readonly name?: string;
  readonly cluster?: string;
}

export function clusterRows(dump: unknown, f: Filters): string[][] {
  const rows: string[][] = [];
  for (const entry of arr(section(dump, 'ClustersConfigDump').dynamicActiveClusters)) {
    const c = obj(obj(entry).cluster);
    const name = s(c.name);
    const parts = name.split('|');
    const [direction, port, subset, fqdn] =
      parts.length === 4
        ? [parts[0]!, parts[1]!, parts[2] || '-', parts[3]!]
        : ['-', '-', '-', name];
    const type = s(c.type) || s(obj(c.clusterType).name) || 'EDS';
    if (f.fqdn && !fqdn.includes(f.fqdn)) continue;
    if (f.port && port !== f.port) continue;
    if (f.subset && subset !== f.subset) continue;
    if (f.direction && direction !== f.direction) continue;
    rows.push([fqdn, port, subset, direction, type, istioConfigRef(c.metadata)]);
  }
  return rows.sort(
    (a, b) =>
      a[0]!.localeCompare(b[0]!) || a[1]!.localeCompare(b[1]!) || a[2]!.localeCompare(b[2]!),
  );
}

function describeMatch(m: J): string {
  const bits: string[] = [];
  if (m.serverNames) bits.push(`SNI: ${arr(m.serverNames).map(s).join(',')}`);
  if (m.transportProtocol) bits.push(`Trans: ${s(m.transportProtocol)}`);
  if (m.applicationProtocols) bits.push(`App: ${arr(m.applicationProtocols).map(s).join(',')}`);
  if (m.prefixRanges)
    bits.push(
      `Addr: ${arr(m.prefixRanges)
        .map((r) => `${s(obj(r).addressPrefix)}/${s(obj(r).prefixLen) || '32'}`)
        .join(',')}`,
    );
  if (m.destinationPort) bits.push(`Port: ${s(m.destinationPort)}`);
  return bits.length ? bits.join('; ') : 'ALL';
}

function describeDestination(chain: J): string {
  for (const filter of arr(chain.filters)) {
    const tc = obj(obj(filter).typedConfig);
    const type = s(tc['@type']);
    if (type.endsWith('HttpConnectionManager')) {
      if (tc.rds) return `Route: ${s(obj(tc.rds).routeConfigName)}`;
      if (tc.routeConfig) return `Inline Route: ${s(obj(tc.routeConfig).name)}`;
      return 'HTTP';
    }
    if (type.endsWith('TcpProxy')) {
      if (tc.cluster) return `Cluster: ${s(tc.cluster)}`;
      const wc = arr(obj(tc.weightedClusters).clusters);
      return `WeightedClusters: ${wc.map((c) => `${s(obj(c).name)} (${s(obj(c).weight)})`).join(', ')}`;
    }
  }
  return 'Non-HTTP/Non-TCP';
}

export function listenerRows(dump: unknown, f: Filters): string[][] {
  const rows: string[][] = [];
  for (const entry of arr(section(dump, 'ListenersConfigDump').dynamicListeners)) {
    const l = obj(obj(obj(entry).activeState).listener);
    if (l.apiListener) {
      const hcm = obj(obj(l.apiListener).apiListener);
      rows.push([
        s(l.name),
        '-',
        'API listener (proxyless gRPC)',
        `Route: ${s(obj(hcm.rds).routeConfigName)}`,
      ]);
      continue;
    }
    const sock = obj(obj(l.address).socketAddress);
    const port = s(sock.portValue);
    if (f.port && port !== f.port) continue;
    const chains = [
      ...arr(l.filterChains).map(obj),
      ...(l.defaultFilterChain ? [obj(l.defaultFilterChain)] : []),
    ];
    for (const chain of chains)
      rows.push([
        s(sock.address),
        port,
        describeMatch(obj(chain.filterChainMatch)),
        describeDestination(chain),
      ]);
  }
  return rows;
}

function describeRouteMatch(m: J): string {
  if (m.prefix !== undefined) return s(m.prefix) === '/' ? '/*' : `${s(m.prefix)}*`;
  if (m.path !== undefined) return s(m.path);
  if (m.safeRegex) return s(obj(m.safeRegex).regex);
  if (m.pathSeparatedPrefix !== undefined) return `${s(m.pathSeparatedPrefix)}/*`;
  return '/*';
}

export function routeRows(dump: unknown, f: Filters): string[][] {
  const rows: string[][] = [];
  for (const entry of arr(section(dump, 'RoutesConfigDump').dynamicRouteConfigs)) {
    const rc = obj(obj(entry).routeConfig);
    const name = s(rc.name);
    if (f.name && name !== f.name) continue;
    for (const vh of arr(rc.virtualHosts).map(obj)) {
      const domains = arr(vh.domains).map(s);
      const dom =
        domains.length > 1 ? `${domains[0]} + ${domains.length - 1} more...` : (domains[0] ?? '');
      for (const r of arr(vh.routes).map(obj)) {
        rows.push([
          name,
          s(vh.name),
          dom,
          describeRouteMatch(obj(r.match)),
          istioConfigRef(r.metadata) || (r.directResponse ? '404' : ''),
        ]);
      }
    }
  }
  return rows;
}

export function endpointRows(dump: unknown, f: Filters): string[][] {
  const rows: string[][] = [];
  for (const entry of arr(section(dump, 'EndpointsConfigDump').dynamicEndpointConfigs)) {
    const cla = obj(obj(entry).endpointConfig);
    const cluster = s(cla.clusterName);
    if (f.cluster && cluster !== f.cluster) continue;
    for (const loc of arr(cla.endpoints).map(obj))
      for (const lb of arr(loc.lbEndpoints).map(obj)) {
        const sock = obj(obj(obj(lb.endpoint).address).socketAddress);
        const addr = `${s(sock.address)}:${s(sock.portValue)}`;
        if (f.port && s(sock.portValue) !== f.port) continue;
        rows.push([addr, s(lb.healthStatus) || 'HEALTHY', 'OK', cluster]);
      }
  }
  return rows.sort((a, b) => a[3]!.localeCompare(b[3]!) || a[0]!.localeCompare(b[0]!));
}

export function secretRows(dump: unknown): string[][] {
  const rows: string[][] = [];
  for (const entry of arr(section(dump, 'SecretsConfigDump').dynamicActiveSecrets).map(obj)) {
    const secret = obj(entry.secret);
    const tls = obj(secret.tlsCertificate);
    const vc = obj(secret.validationContext);
    const pem = s(obj(tls.certificateChain).inlineBytes) || s(obj(vc.trustedCa).inlineBytes);
    const type = secret.tlsCertificate ? 'Cert Chain' : 'CA';
    let serial = '';
    let notAfter = '';
    let notBefore = '';
    let valid = 'false';
    if (pem) {
      try {
        const text = /BEGIN CERTIFICATE/.test(pem)
          ? pem
          : Buffer.from(pem, 'base64').toString('utf8');
        const cert = new X509Certificate(text);
        serial = cert.serialNumber.toLowerCase();
        notAfter = new Date(cert.validTo).toISOString();
        notBefore = new Date(cert.validFrom).toISOString();
        valid = String(
          Date.now() >= Date.parse(cert.validFrom) && Date.now() <= Date.parse(cert.validTo),
        );
      } catch {
        valid = 'unreadable';
      }
    }
    rows.push([s(entry.name), type, 'ACTIVE', valid, serial, notAfter, notBefore]);
  }
  return rows;
}

const KINDS = {
  cluster: {
    aliases: ['cluster', 'clusters', 'c'],
    header: ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'],
    rows: clusterRows,
  },
  listener: {
    aliases: ['listener', 'listeners', 'l'],
    header: ['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION'],
    rows: listenerRows,
  },
  route: {
    aliases: ['route', 'routes', 'r'],
    header: ['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'],
    rows: routeRows,
  },
  endpoint: {
    aliases: ['endpoint', 'endpoints', 'ep'],
    header: ['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER'],
    rows: endpointRows,
  },
  secret: {
    aliases: ['secret', 'secrets', 's'],
    header: [
      'RESOURCE NAME',
      'TYPE',
      'STATUS',
      'VALID CERT',
      'SERIAL NUMBER',
      'NOT AFTER',
      'NOT BEFORE',
    ],
    rows: (d: unknown) => secretRows(d),
  },
  all: { aliases: ['all'], header: [], rows: () => [] },
} as const;

const SECTION_OF: Record<string, string> = {
  cluster: 'ClustersConfigDump',
  listener: 'ListenersConfigDump',
  route: 'RoutesConfigDump',
  endpoint: 'EndpointsConfigDump',
  secret: 'SecretsConfigDump',
};

export const proxyConfigCommand: Command = {
  name: 'proxy-config',
  summary: 'Show the clusters, listeners, routes, endpoints or secrets a proxy was sent',
  usage:
    'trellis proxy-config cluster|listener|route|endpoint|secret|all POD[.NS] [filters] [-o json|yaml]',
  description:
    'Prints what the control plane sent a proxy, as istioctl proxy-config does. POD is the pod name;\n' +
    'NS defaults to "default". Filters: --fqdn, --port, --subset, --direction (clusters), --port\n' +
    '(listeners, endpoints), --name (routes), --cluster (endpoints).',
  flags: [
    CONTROL_PLANE_FLAG,
    {
      name: 'output',
      short: 'o',
      type: 'string',
      value: 'FORMAT',
      choices: ['json', 'yaml', 'short'],
      help: 'json or yaml for the raw config',
    },
    {
      name: 'fqdn',
      type: 'string',
      value: 'HOST',
      help: 'clusters whose service FQDN contains HOST',
    },
    { name: 'port', type: 'string', value: 'PORT', help: 'only this port' },
    { name: 'subset', type: 'string', value: 'NAME', help: 'clusters of this subset' },
    {
      name: 'direction',
      type: 'string',
      value: 'DIR',
      choices: ['inbound', 'outbound'],
      help: 'inbound or outbound clusters',
    },
    { name: 'name', type: 'string', value: 'NAME', help: 'the route configuration of this name' },
    { name: 'cluster', type: 'string', value: 'NAME', help: 'endpoints of this cluster' },
  ],
  examples: [
    'trellis proxy-config cluster productpage-v1-0',
    'trellis proxy-config route reviews-v1-0.default --name 9080',
    'trellis proxy-config listener istio-ingressgateway-0.istio-system -o json',
  ],
  async run(args, { io }) {
    const [kindArg, pod, ...rest] = args.positional;
    const kind = Object.entries(KINDS).find(([, k]) =>
      (k.aliases as readonly string[]).includes(kindArg ?? ''),
    )?.[0] as keyof typeof KINDS | undefined;
    if (!kind)
      throw new UsageError(
        `proxy-config needs a type: cluster, listener, route, endpoint, secret or all`,
      );
    if (!pod || rest.length > 0)
      throw new UsageError(`proxy-config ${kind} needs exactly one POD[.NS]`);
    const address = controlPlaneAddress(args, io);
    const { status, body } = await getJson(
      address,
      `/debug/config_dump?proxyID=${encodeURIComponent(pod)}`,
    );
    if (status !== 200) {
      io.stderr(`error: ${s(obj(body).error) || `the control plane answered ${status}`}\n`);
      return 1;
    }
    const output = flagString(args, 'output');
    if (output === 'json' || output === 'yaml' || kind === 'all') {
      const raw = kind === 'all' ? body : section(body, SECTION_OF[kind]!);
      io.stdout(
        output === 'yaml' ? stringify(raw, { lineWidth: 0 }) : JSON.stringify(raw, null, 2) + '\n',
      );
      return 0;
    }
    const filters: Filters = {
      ...(flagString(args, 'fqdn') !== undefined ? { fqdn: flagString(args, 'fqdn')! } : {}),
      ...(flagString(args, 'port') !== undefined ? { port: flagString(args, 'port')! } : {}),
      ...(flagString(args, 'subset') !== undefined ? { subset: flagString(args, 'subset')! } : {}),
      ...(flagString(args, 'direction') !== undefined
        ? { direction: flagString(args, 'direction')! }
        : {}),
      ...(flagString(args, 'name') !== undefined ? { name: flagString(args, 'name')! } : {}),
      ...(flagString(args, 'cluster') !== undefined
        ? { cluster: flagString(args, 'cluster')! }
        : {}),
    };
    const k = KINDS[kind];
    io.stdout(renderTable([[...k.header], ...k.rows(body, filters)]) + '\n');
    return 0;
  },
};
