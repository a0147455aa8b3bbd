// Validation of the xDS resources the proxy receives, before any of them is applied.
//
// Three layers, every problem reported with its exact field path (proto names, as Envoy's
// own messages use), all problems at once (they become the NACK's error_detail):
// 1. decoding (field numbers the protos do not know included, wire-scan.ts) and
//    protoc-gen-validate rules (`@trellis/envoy`), as Envoy checks them;
// 2. the supported-fields table (supported-fields.ts): a field the proxy does not implement
//    is an error, never silently ignored;
// 3. semantic checks Envoy makes when it builds its runtime objects (a terminal filter last,
//    a route naming a cluster, regexes that compile, one listener per address, ...).
import { isIP } from 'node:net';
import { type Result, err, ok } from '@trellis/core';
import {
  TYPE_URL,
  XdsCodecError,
  decodeMessage,
  typeNameOf,
  verifyResource,
  type Cluster,
  type ClusterLoadAssignment,
  type EncodedAny,
  type FilterChain,
  type FilterChainMatch,
  type HttpConnectionManager,
  type Listener,
  type ResourceTypeUrl,
  type RetryPolicy,
  type Route,
  type RouteAction,
  type RouteConfiguration,
  type TcpProxy,
  type TransportSocket,
  type VirtualHost,
  type Address,
  type Secret,
  type DownstreamTlsContext,
  type UpstreamTlsContext,
} from '@trellis/envoy';
import { compileTlsContext, secretProblems } from '../tls/tls-context.js';
import { claProblems, lbConfigProblems } from '../upstream/lb/index.js';
import { translateRe2Substitution } from './re2.js';
import { unknownFields } from './wire-scan.js';
import {
  EXTENSION_NAMES,
  EXTENSION_TYPES,
  HTTP_FILTER_TYPES,
  HTTP_PROTOCOL_OPTIONS_KEY,
  SUPPORTED_FIELDS,
  type FieldRule,
} from './supported-fields.js';

/** The five resource types the proxy consumes. */
export type XdsResource = Listener | RouteConfiguration | Cluster | ClusterLoadAssignment | Secret;

/** The resource type URLs the proxy consumes (LDS, RDS, CDS, EDS and SDS). */
export type ProxyResourceTypeUrl = ResourceTypeUrl;

/** How problems name a resource of each type: `listener "0.0.0.0_9080": ...`. */
export const RESOURCE_LABEL: Readonly<Record<ProxyResourceTypeUrl, string>> = {
  [TYPE_URL.Listener]: 'listener',
  [TYPE_URL.RouteConfiguration]: 'route configuration',
  [TYPE_URL.Cluster]: 'cluster',
  [TYPE_URL.ClusterLoadAssignment]: 'load assignment',
  [TYPE_URL.Secret]: 'secret',
};

const MESSAGE_OF: Readonly<Record<ProxyResourceTypeUrl, string>> = {
  [TYPE_URL.Listener]: 'envoy.config.listener.v3.Listener',
  [TYPE_URL.RouteConfiguration]: 'envoy.config.route.v3.RouteConfiguration',
  [TYPE_URL.Cluster]: 'envoy.config.cluster.v3.Cluster',
  [TYPE_URL.ClusterLoadAssignment]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  [TYPE_URL.Secret]: 'envoy.extensions.transport_sockets.tls.v3.Secret',
};

/** Whether the proxy consumes resources of this type URL. */
export function isProxyResourceType(typeUrl: string): typeUrl is ProxyResourceTypeUrl {
  return Object.prototype.hasOwnProperty.call(MESSAGE_OF, typeUrl);
}

/** Options of validation. */
export interface ValidateOptions {
  /** Check protoc-gen-validate rules too, as Envoy does (default true). */
  readonly protoRules?: boolean;
}

type Json = Record<string, unknown>;
type Sink = (path: string, message: string) => void;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

function at(path: string, message: string): string {
  return path === '' ? message : `${path}: ${message}`;
}

// ---------------------------------------------------------------------------------------
// Field names: the table uses proto names; decoded resources use proto3-JSON names.

/** protoc's json_name: drop each underscore and upper-case the character after it. */
export function jsonFieldName(protoName: string): string {
  return protoName.replace(/_(.)/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '');
}

/** A JSON name back to the proto name (`filterChains` → `filter_chains`; a digit word stays joined: `consecutive5xx`). */
export function protoFieldName(jsonName: string): string {
  return jsonName.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

const PATH_TOKEN = /\["(?:[^"\\]|\\.)*"\]|\[\d+\]|[^.[\]]+/g;
// A path: a first segment, then `.name`, `[n]` or `["key"]` segments (unambiguous: no backtracking).
const PATH_PREFIX =
  /^((?:[A-Za-z_]\w*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])(?:\.[A-Za-z_]\w*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*): /;

/** Rewrites the path of a `path: message` problem from JSON names to proto names. */
export function protoNamesInProblem(problem: string): string {
  const m = PATH_PREFIX.exec(problem);
  if (!m) return problem;
  const path = m[1] ?? '';
  const rewritten = (path.match(PATH_TOKEN) ?? [])
    .map((t) => (t.startsWith('[') ? t : '.' + protoFieldName(t)))
    .join('')
    .replace(/^\./, '');
  return `${rewritten}: ${problem.slice(m[0].length)}`;
}

// ---------------------------------------------------------------------------------------
// Layer 2: the supported-fields table

interface RowInfo {
  readonly byJson: ReadonlyMap<string, { readonly proto: string; readonly rule: FieldRule }>;
}
const rows = new Map<string, RowInfo>();

function rowInfo(message: string): RowInfo {
  let info = rows.get(message);
  if (!info) {
    const row = SUPPORTED_FIELDS[message];
    if (!row) throw new Error(`supported-fields table has no row for ${message}`);
    info = {
      byJson: new Map(
        Object.entries(row).map(([proto, rule]) => [jsonFieldName(proto), { proto, rule }]),
      ),
    };
    rows.set(message, info);
  }
  return info;
}

function shortMessage(name: string): string {
  const parts = name.split('.');
  // Keep nested names (`Cluster.EdsClusterConfig`): the trailing upper-case parts.
  let i = parts.length - 1;
  while (i > 0 && /^[A-Z]/.test(parts[i - 1] ?? '')) i--;
  return parts.slice(i).join('.');
}

function checkMessage(message: string, obj: Json, path: string, sink: Sink): void {
  const info = rowInfo(message);
  for (const [key, value] of Object.entries(obj)) {
    if (key === '@type') continue;
    const f = info.byJson.get(key);
    const p = join(path, f?.proto ?? protoFieldName(key));
    if (!f) {
      sink(
        p,
        `field ${shortMessage(message)}.${protoFieldName(key)} is not implemented by the Trellis proxy`,
      );
      continue;
    }
    checkRule(f.rule, value, p, obj, sink);
  }
}

function checkRule(rule: FieldRule, value: unknown, path: string, parent: Json, sink: Sink): void {
  if (rule === true) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkRule(rule, v, `${path}[${i}]`, parent, sink));
    return;
  }
  if (typeof rule === 'string') {
    if (isObject(value)) checkMessage(rule, value, path, sink);
    return;
  }
  if ('map' in rule) {
    if (isObject(value))
      for (const [k, v] of Object.entries(value))
        checkRule(rule.map, v, `${path}[${JSON.stringify(k)}]`, parent, sink);
    return;
  }
  if ('enum' in rule) {
    if (!rule.enum.includes(value as string))
      sink(
        path,
        `${String(value)} is not implemented by the Trellis proxy (supported: ${rule.enum.join(', ')})`,
      );
    return;
  }
  if ('any' in rule) {
    if (!isObject(value)) return;
    const url = typeof value['@type'] === 'string' ? value['@type'] : '';
    const name = typeNameOf(url);
    if (rule.any.includes(name)) {
      checkMessage(name, value, path, sink);
    } else if (!(rule.optionalIf && parent[jsonFieldName(rule.optionalIf)] === true)) {
      const hint = rule.optionalIf ? `; set ${rule.optionalIf} to have it skipped` : '';
      sink(
        path,
        `type ${url} is not implemented by the Trellis proxy here (supported: ${rule.any
          .map(shortMessage)
          .join(', ')})${hint}`,
      );
    }
    return;
  }
  const problem = rule.check(value);
  if (problem !== undefined) sink(path, problem);
}

/**
 * Checks a decoded message (proto3-JSON) against the supported-fields table: every field set
 * that the proxy does not implement, with its path. `message` is a full message name.
 */
export function checkSupportedFields(message: string, obj: Json, path = ''): string[] {
  const out: string[] = [];
  checkMessage(message, obj, path, (p, m) => out.push(at(p, m)));
  return out;
}

// ---------------------------------------------------------------------------------------
// Layer 3: semantic checks

function typeOf(any: unknown): string | undefined {
  return isObject(any) && typeof any['@type'] === 'string' ? typeNameOf(any['@type']) : undefined;
}

/** The config type of a filter: its typed_config's, else the one Envoy finds by name. */
function extensionType(name: string | undefined, typedConfig: unknown): string | undefined {
  return typeOf(typedConfig) ?? (name !== undefined ? EXTENSION_NAMES[name] : undefined);
}

/** The HTTP filters of a connection manager that the proxy runs (optional unknown ones skipped). */
export function effectiveHttpFilters(
  hcm: HttpConnectionManager,
): { readonly index: number; readonly type: string }[] {
  const out: { index: number; type: string }[] = [];
  (hcm.httpFilters ?? []).forEach((f, index) => {
    const type = extensionType(f.name, f.typedConfig);
    if (type !== undefined && HTTP_FILTER_TYPES.includes(type)) out.push({ index, type });
  });
  return out;
}

function checkAddress(a: Address | undefined, path: string, sink: Sink, ipOnly: boolean): void {
  if (!a) {
    sink(path, 'is required');
    return;
  }
  if (a.socketAddress) {
    const s = a.socketAddress;
    const p = join(path, 'socket_address');
    if (!s.address) sink(join(p, 'address'), 'is required');
    else if (ipOnly && isIP(s.address) === 0)
      sink(join(p, 'address'), `must be an IP address, not "${s.address}"`);
  } else if (a.pipe) {
    if (!a.pipe.path) sink(join(path, 'pipe.path'), 'is required');
  } else {
    sink(path, 'needs a socket_address or a pipe');
  }
}

function checkTransportSocket(
  ts: TransportSocket | undefined,
  path: string,
  side: 'upstream' | 'downstream',
  sink: Sink,
): void {
  if (!ts) return;
  const type = extensionType(ts.name, ts.typedConfig);
  const allowed: readonly string[] =
    side === 'upstream'
      ? [EXTENSION_TYPES.upstreamTls, EXTENSION_TYPES.rawBuffer]
      : [EXTENSION_TYPES.downstreamTls, EXTENSION_TYPES.rawBuffer];
  if (type === undefined) sink(path, `transport socket "${ts.name ?? ''}" needs a typed_config`);
  else if (!allowed.includes(type))
    sink(
      join(path, 'typed_config'),
      `a ${side} transport socket must be ${allowed.map(shortMessage).join(' or ')}, not ${shortMessage(type)}`,
    );
  else if (type === EXTENSION_TYPES.upstreamTls || type === EXTENSION_TYPES.downstreamTls) {
    // Envoy's checks when it builds the TLS context (certificates, SDS sources, inline PEM,
    // SAN matchers, versions, ciphers, curves).
    const problems: string[] = [];
    compileTlsContext(
      (ts.typedConfig ?? {}) as UpstreamTlsContext | DownstreamTlsContext,
      side,
      problems,
      join(path, 'typed_config'),
    );
    for (const p of problems) sink('', p);
  }
}

/** A canonical key of a filter chain match (arrays sorted, defaults dropped). */
function matchKey(m: FilterChainMatch | undefined): string {
  if (!m) return '{}';
  const norm: Json = {};
  for (const [k, v] of Object.entries(m).sort(([a], [b]) => a.localeCompare(b))) {
    if (Array.isArray(v)) {
      if (v.length === 0) continue;
      norm[k] = v.map((x) => JSON.stringify(x)).sort();
    } else if (!(k === 'sourceType' && v === 'ANY')) {
      norm[k] = v;
    }
  }
  return JSON.stringify(norm);
}

function checkFilterChain(fc: FilterChain, path: string, sink: Sink): void {
  const filters = fc.filters ?? [];
  if (filters.length === 0) sink(join(path, 'filters'), 'must have at least one network filter');
  filters.forEach((f, i) => {
    const p = `${path}.filters[${i}]`;
    const type = typeOf(f.typedConfig);
    if (type === undefined) {
      sink(join(p, 'typed_config'), `is required (network filter "${f.name ?? ''}")`);
      return;
    }
    const terminal =
      type === EXTENSION_TYPES.httpConnectionManager || type === EXTENSION_TYPES.tcpProxy;
    const last = i === filters.length - 1;
    if (terminal && !last)
      sink(p, `terminal filter ${shortMessage(type)} must be the last network filter`);
    if (!terminal && last)
      sink(
        p,
        'the last network filter must be a terminal filter (http_connection_manager or tcp_proxy)',
      );
    if (type === EXTENSION_TYPES.httpConnectionManager)
      checkHcm(f.typedConfig as HttpConnectionManager, join(p, 'typed_config'), sink);
    else if (type === EXTENSION_TYPES.tcpProxy)
      checkTcpProxy(f.typedConfig as TcpProxy, join(p, 'typed_config'), sink);
  });
  checkTransportSocket(fc.transportSocket, join(path, 'transport_socket'), 'downstream', sink);
}

function checkHcm(h: HttpConnectionManager, path: string, sink: Sink): void {
  if (!h.rds && !h.routeConfig) sink(path, 'needs rds or route_config');
  if (h.rds) {
    if (!h.rds.configSource?.ads)
      sink(join(path, 'rds.config_source'), 'must be ads: the proxy fetches routes only over ADS');
    if (!h.rds.routeConfigName) sink(join(path, 'rds.route_config_name'), 'is required');
  }
  if (h.routeConfig) checkRouteConfig(h.routeConfig, join(path, 'route_config'), sink, true);
  const filters = h.httpFilters ?? [];
  filters.forEach((f, i) => {
    const type = extensionType(f.name, f.typedConfig);
    if (f.typedConfig === undefined && type === undefined && f.isOptional !== true)
      sink(
        `${path}.http_filters[${i}]`,
        `HTTP filter "${f.name ?? ''}" has no typed_config and is not one the Trellis proxy implements`,
      );
  });
  const effective = effectiveHttpFilters(h);
  effective.forEach((f, i) => {
    const isRouter = f.type === EXTENSION_TYPES.router;
    const last = i === effective.length - 1;
    if (isRouter && !last)
      sink(`${path}.http_filters[${f.index}]`, 'the router filter must be the last HTTP filter');
    if (!isRouter && last)
      sink(
        `${path}.http_filters[${f.index}]`,
        'the last HTTP filter must be the router (envoy.filters.http.router)',
      );
  });
  const upgrades = new Map<string, number>();
  (h.upgradeConfigs ?? []).forEach((u, i) => {
    const p = `${path}.upgrade_configs[${i}].upgrade_type`;
    const t = (u.upgradeType ?? '').toLowerCase();
    if (t === '') sink(p, 'is required');
    const prev = upgrades.get(t);
    if (prev !== undefined) sink(p, `duplicates upgrade_configs[${prev}] ("${u.upgradeType}")`);
    else upgrades.set(t, i);
  });
}

function checkTcpProxy(t: TcpProxy, path: string, sink: Sink): void {
  if (t.cluster === undefined && t.weightedClusters === undefined)
    sink(path, 'references no cluster (set cluster or weighted_clusters)');
  if (t.cluster === '') sink(join(path, 'cluster'), 'must not be empty');
  if (t.weightedClusters) {
    const clusters = t.weightedClusters.clusters ?? [];
    if (clusters.length === 0)
      sink(join(path, 'weighted_clusters.clusters'), 'must name at least one cluster');
    clusters.forEach((c, i) => {
      if (!c.name) sink(`${path}.weighted_clusters.clusters[${i}].name`, 'is required');
    });
  }
}

/** The retry_on conditions Envoy knows (router and gRPC ones). */
const RETRY_ON = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

function checkRetryPolicy(r: RetryPolicy | undefined, path: string, sink: Sink): void {
  if (r?.retryPriority !== undefined) {
    // previous_priorities is the one retry priority; its update_frequency must be above 0.
    const every = Number(
      (r.retryPriority.typedConfig as { updateFrequency?: number } | undefined)?.updateFrequency ??
        0,
    );
    if (!(every > 0))
      sink(
        join(path, 'retry_priority'),
        'needs a PreviousPrioritiesConfig typed_config with update_frequency > 0',
      );
  }
  if (!r?.retryOn) return;
  for (const token of r.retryOn.split(',')) {
    const t = token.trim();
    if (t !== '' && !RETRY_ON.has(t))
      sink(join(path, 'retry_on'), `unknown retry condition "${t}"`);
  }
}

function checkRouteAction(a: RouteAction, path: string, sink: Sink): void {
  if (a.cluster === undefined && a.clusterHeader === undefined && a.weightedClusters === undefined)
    sink(path, 'references no cluster (set cluster, cluster_header or weighted_clusters)');
  if (a.cluster === '') sink(join(path, 'cluster'), 'must not be empty');
  if (a.weightedClusters) {
    const p = join(path, 'weighted_clusters');
    const clusters = a.weightedClusters.clusters ?? [];
    if (clusters.length === 0) sink(join(p, 'clusters'), 'must name at least one cluster');
    let sum = 0;
    clusters.forEach((c, i) => {
      if (!c.name && !c.clusterHeader) sink(`${p}.clusters[${i}].name`, 'is required');
      sum += c.weight ?? 0;
    });
    if (clusters.length > 0 && sum === 0) sink(join(p, 'clusters'), 'weights add up to 0');
    const total = a.weightedClusters.totalWeight;
    if (total !== undefined && total !== 0 && total !== sum)
      sink(join(p, 'total_weight'), `is ${total} but the weights add up to ${sum}`);
  }
  if (a.prefixRewrite !== undefined && a.regexRewrite !== undefined)
    sink(path, 'cannot specify both prefix_rewrite and regex_rewrite');
  if (a.regexRewrite?.substitution !== undefined) {
    const r = translateRe2Substitution(a.regexRewrite.substitution);
    if (!r.ok) sink(join(path, 'regex_rewrite.substitution'), r.error);
  }
  checkRetryPolicy(a.retryPolicy, join(path, 'retry_policy'), sink);
  (a.requestMirrorPolicies ?? []).forEach((m, i) => {
    if (!m.cluster && !m.clusterHeader)
      sink(`${path}.request_mirror_policies[${i}].cluster`, 'is required');
  });
  (a.hashPolicy ?? []).forEach((h, i) => {
    if (!h.header && !h.cookie && !h.connectionProperties && !h.queryParameter && !h.filterState)
      sink(
        `${path}.hash_policy[${i}]`,
        'needs header, cookie, connection_properties or query_parameter',
      );
  });
}

/** Envoy's default `max_direct_response_body_size_bytes`. */
const DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096;

function checkRoute(r: Route, path: string, maxBody: number, sink: Sink): void {
  const actions = [r.route, r.redirect, r.directResponse, r.nonForwardingAction].filter(
    (x) => x !== undefined,
  ).length;
  if (actions === 0) sink(path, 'has no action (route, redirect or direct_response)');
  const m = r.match;
  if (!m) sink(join(path, 'match'), 'is required');
  else if (
    m.prefix === undefined &&
    m.path === undefined &&
    m.safeRegex === undefined &&
    m.pathSeparatedPrefix === undefined &&
    m.connectMatcher === undefined
  )
    sink(join(path, 'match'), 'needs prefix, path, safe_regex or path_separated_prefix');
  if (r.route) checkRouteAction(r.route, join(path, 'route'), sink);
  const body = r.directResponse?.body;
  if (body) {
    const size =
      body.inlineString !== undefined
        ? Buffer.byteLength(body.inlineString)
        : body.inlineBytes !== undefined
          ? Buffer.from(body.inlineBytes, 'base64').length
          : 0;
    if (size > maxBody)
      sink(join(path, 'direct_response.body'), `is ${size} bytes; the maximum is ${maxBody}`);
  }
}

function checkVirtualHost(vh: VirtualHost, path: string, maxBody: number, sink: Sink): void {
  (vh.domains ?? []).forEach((d, i) => {
    const star = d.indexOf('*');
    if (
      d === '' ||
      (star >= 0 && d !== '*' && star !== 0 && star !== d.length - 1) ||
      (star >= 0 && d.indexOf('*', star + 1) >= 0)
    )
      sink(`${path}.domains[${i}]`, `invalid domain "${d}": a wildcard may only start or end it`);
  });
  checkRetryPolicy(vh.retryPolicy, join(path, 'retry_policy'), sink);
  (vh.routes ?? []).forEach((r, i) => checkRoute(r, `${path}.routes[${i}]`, maxBody, sink));
}

function checkRouteConfig(rc: RouteConfiguration, path: string, sink: Sink, inline: boolean): void {
  if (!inline && !rc.name) sink(join(path, 'name'), 'is required');
  const maxBody = rc.maxDirectResponseBodySizeBytes ?? DEFAULT_MAX_DIRECT_RESPONSE_BODY;
  const domains = new Map<string, string>();
  (rc.virtualHosts ?? []).forEach((vh, i) => {
    const p = `${path === '' ? '' : path + '.'}virtual_hosts[${i}]`;
    checkVirtualHost(vh, p, maxBody, sink);
    (vh.domains ?? []).forEach((d, j) => {
      const key = d.toLowerCase();
      const prev = domains.get(key);
      if (prev !== undefined)
        sink(`${p}.domains[${j}]`, `duplicate domain "${d}" (also in virtual host "${prev}")`);
      else domains.set(key, vh.name ?? `#${i}`);
    });
  });
}

function checkLoadAssignment(
  cla: ClusterLoadAssignment,
  path: string,
  sink: Sink,
  opts: { readonly ipOnly: boolean; readonly inline: boolean },
): void {
  if (!opts.inline && !cla.clusterName) sink(join(path, 'cluster_name'), 'is required');
  (cla.endpoints ?? []).forEach((le, i) => {
    (le.lbEndpoints ?? []).forEach((lb, j) => {
      const p = `${path === '' ? '' : path + '.'}endpoints[${i}].lb_endpoints[${j}].endpoint`;
      if (!lb.endpoint) {
        sink(p, 'is required');
        return;
      }
      checkAddress(lb.endpoint.address, join(p, 'address'), sink, opts.ipOnly);
      const s = lb.endpoint.address?.socketAddress;
      if (s && !s.portValue) sink(join(p, 'address.socket_address.port_value'), 'is required');
    });
  });
}

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function checkCluster(c: Cluster, sink: Sink): void {
  if (!c.name) sink('name', 'is required');
  const type = c.type ?? 'STATIC';
  if (type === 'EDS') {
    if (!c.edsClusterConfig) sink('eds_cluster_config', 'is required for an EDS cluster');
    else if (!c.edsClusterConfig.edsConfig?.ads)
      sink(
        'eds_cluster_config.eds_config',
        'must be ads: the proxy fetches endpoints only over ADS',
      );
  }
  if (type === 'ORIGINAL_DST') {
    if (c.lbPolicy !== 'CLUSTER_PROVIDED')
      sink(
        'lb_policy',
        `must be CLUSTER_PROVIDED for an ORIGINAL_DST cluster, not ${c.lbPolicy ?? 'ROUND_ROBIN'}`,
      );
    if (c.loadAssignment) sink('load_assignment', 'must not be set for an ORIGINAL_DST cluster');
  } else if (c.lbPolicy === 'CLUSTER_PROVIDED') {
    sink('lb_policy', `CLUSTER_PROVIDED is only valid for ORIGINAL_DST clusters, not ${type}`);
  }
  if (c.loadAssignment && type !== 'EDS') {
    checkLoadAssignment(c.loadAssignment, 'load_assignment', sink, {
      ipOnly: type === 'STATIC',
      inline: true,
    });
    if (type === 'LOGICAL_DNS') {
      const n = (c.loadAssignment.endpoints ?? []).reduce(
        (s, le) => s + (le.lbEndpoints?.length ?? 0),
        0,
      );
      if (n !== 1)
        sink('load_assignment', `a LOGICAL_DNS cluster needs exactly one endpoint, not ${n}`);
    }
  }
  if ((type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && !c.loadAssignment)
    sink('load_assignment', `is required for a ${type} cluster`);
  const maglev = c.maglevLbConfig?.tableSize;
  if (maglev !== undefined && !isPrime(Number(maglev)))
    sink('maglev_lb_config.table_size', `must be a prime number, not ${maglev}`);
  const ring = c.ringHashLbConfig;
  if (ring?.minimumRingSize !== undefined && ring.maximumRingSize !== undefined) {
    if (Number(ring.minimumRingSize) > Number(ring.maximumRingSize))
      sink(
        'ring_hash_lb_config',
        `minimum_ring_size (${ring.minimumRingSize}) is above maximum_ring_size (${ring.maximumRingSize})`,
      );
  }
  checkTransportSocket(c.transportSocket, 'transport_socket', 'upstream', sink);
  (c.transportSocketMatches ?? []).forEach((m, i) => {
    const p = `transport_socket_matches[${i}]`;
    if (!m.transportSocket) sink(join(p, 'transport_socket'), 'is required');
    checkTransportSocket(m.transportSocket, join(p, 'transport_socket'), 'upstream', sink);
  });
  for (const [key, opts] of Object.entries(c.typedExtensionProtocolOptions ?? {})) {
    const p = `typed_extension_protocol_options[${JSON.stringify(key)}]`;
    if (key !== HTTP_PROTOCOL_OPTIONS_KEY)
      sink(
        p,
        `unknown protocol options "${key}" (the proxy reads only ${HTTP_PROTOCOL_OPTIONS_KEY})`,
      );
    const o = opts as unknown as Json;
    if (!o.explicitHttpConfig && !o.useDownstreamProtocolConfig && !o.autoConfig)
      sink(p, 'needs explicit_http_config, use_downstream_protocol_config or auto_config');
  }
}

function checkListener(l: Listener, sink: Sink): void {
  if (!l.name) sink('name', 'is required');
  if (l.apiListener) {
    const hcm = l.apiListener.apiListener;
    if (typeOf(hcm) === EXTENSION_TYPES.httpConnectionManager)
      checkHcm(hcm as HttpConnectionManager, 'api_listener.api_listener', sink);
    return;
  }
  checkAddress(l.address, 'address', sink, true);
  const chains = l.filterChains ?? [];
  if (chains.length === 0 && !l.defaultFilterChain)
    sink('filter_chains', 'a listener needs at least one filter chain or a default_filter_chain');
  const seen = new Map<string, number>();
  chains.forEach((fc, i) => {
    checkFilterChain(fc, `filter_chains[${i}]`, sink);
    const key = matchKey(fc.filterChainMatch);
    const prev = seen.get(key);
    if (prev !== undefined)
      sink(
        `filter_chains[${i}].filter_chain_match`,
        `is the same as filter_chains[${prev}]'s: multiple filter chains with the same matching rules`,
      );
    else seen.set(key, i);
  });
  if (l.defaultFilterChain) checkFilterChain(l.defaultFilterChain, 'default_filter_chain', sink);
  (l.listenerFilters ?? []).forEach((f, i) => {
    if (f.typedConfig === undefined && extensionType(f.name, undefined) === undefined)
      sink(
        `listener_filters[${i}]`,
        `listener filter "${f.name ?? ''}" has no typed_config and is not one the Trellis proxy implements`,
      );
  });
}

// ---------------------------------------------------------------------------------------
// Entry points

/** A resource's name: `name`, or `cluster_name` for a load assignment. */
export function resourceName(typeUrl: ProxyResourceTypeUrl, resource: object): string {
  const r = resource as Json;
  const n = typeUrl === TYPE_URL.ClusterLoadAssignment ? r.clusterName : r.name;
  return typeof n === 'string' ? n : '';
}

/**
 * Validates a decoded resource (proto3-JSON, with or without `@type`): unsupported fields and
 * semantic problems, as `path: message` relative to the resource. Empty when it is usable.
 * Protoc-gen-validate rules are checked separately (decodeXdsResource does both).
 */
export function validateResource(typeUrl: ProxyResourceTypeUrl, resource: object): string[] {
  const out: string[] = [];
  const sink: Sink = (p, m) => out.push(at(p, m));
  const json = resource as Json;
  checkMessage(MESSAGE_OF[typeUrl], json, '', sink);
  switch (typeUrl) {
    case TYPE_URL.Listener:
      checkListener(json, sink);
      break;
    case TYPE_URL.RouteConfiguration:
      checkRouteConfig(json, '', sink, false);
      break;
    case TYPE_URL.Cluster:
      checkCluster(json, sink);
      balancerProblems(json, out);
      break;
    case TYPE_URL.ClusterLoadAssignment:
      checkLoadAssignment(json, '', sink, {
        ipOnly: false,
        inline: false,
      });
      addUnreported(out, claProblems(json).map(protoNamesInProblem));
      break;
    case TYPE_URL.Secret:
      for (const p of secretProblems(json)) sink('', p);
      break;
  }
  return out;
}

// Cluster fields the load balancers read: once one is reported, the balancers' view adds nothing.
const LB_FIELD =
  /^(?:lb_policy|load_balancing_policy|round_robin_lb_config|least_request_lb_config|ring_hash_lb_config|maglev_lb_config|common_lb_config)\b/;

/** What the load balancers (upstream/lb) cannot honour in a cluster and its own assignment. */
function balancerProblems(c: Cluster, out: string[]): void {
  if (!out.some((p) => LB_FIELD.test(p))) addUnreported(out, lbConfigProblems(c));
  if (c.loadAssignment && (c.type ?? 'STATIC') !== 'EDS')
    addUnreported(
      out,
      claProblems(c.loadAssignment).map((p) => protoNamesInProblem(`load_assignment.${p}`)),
    );
}

/** Adds the problems whose field (or a field within or around it) has none reported yet. */
function addUnreported(out: string[], problems: readonly string[]): void {
  const pathOf = (p: string): string => {
    const i = p.indexOf(': ');
    return i < 0 ? '' : p.slice(0, i);
  };
  const within = (a: string, b: string): boolean =>
    a === b || a.startsWith(`${b}.`) || a.startsWith(`${b}[`);
  const reported = out.map(pathOf);
  for (const p of problems) {
    const path = pathOf(p);
    if (!reported.some((r) => within(r, path) || within(path, r))) out.push(p);
  }
}

/** A validated, decoded resource. */
export interface DecodedResource<T extends XdsResource = XdsResource> {
  readonly name: string;
  readonly resource: T;
}

/**
 * Decodes one resource of a response and validates it completely. Problems are prefixed with
 * the resource (`listener "0.0.0.0_9080": filter_chains[0]...`), or with `what` when the
 * resource cannot even be read.
 */
export function decodeXdsResource(
  typeUrl: ProxyResourceTypeUrl,
  any: EncodedAny,
  what: string,
  options: ValidateOptions = {},
): Result<DecodedResource, string[]> {
  const label = RESOURCE_LABEL[typeUrl];
  if (any.typeUrl !== typeUrl)
    return err([`${what}: has type "${any.typeUrl}" in a response of type "${typeUrl}"`]);
  let json: Json;
  // protobufjs reads a Node Buffer leniently (a string running past the end is cut short,
  // not an error): decode from a plain Uint8Array view, which it bounds-checks.
  const bytes = Buffer.isBuffer(any.value)
    ? new Uint8Array(any.value.buffer, any.value.byteOffset, any.value.byteLength)
    : any.value;
  try {
    json = decodeMessage(typeUrl, bytes);
  } catch (e) {
    const problems = e instanceof XdsCodecError ? e.problems : [String(e)];
    return err(problems.map((p) => `${what}: cannot decode ${label}: ${protoNamesInProblem(p)}`));
  }
  const name = resourceName(typeUrl, json);
  const problems: string[] = unknownFields(MESSAGE_OF[typeUrl], bytes);
  if (options.protoRules !== false)
    for (const p of verifyResource(typeUrl, json).errors) problems.push(protoNamesInProblem(p));
  problems.push(...validateResource(typeUrl, json));
  if (name === '' && !problems.some((p) => /^(name|cluster_name): /.test(p)))
    problems.push(
      `${typeUrl === TYPE_URL.ClusterLoadAssignment ? 'cluster_name' : 'name'}: is required`,
    );
  if (problems.length > 0) {
    const who = name === '' ? what : `${label} "${name}"`;
    return err(problems.map((p) => `${who}: ${p}`));
  }
  return ok({ name, resource: json });
}

/** Checks a whole set of listeners: no two may listen on the same address (API listeners have no socket). */
export function checkListenerSet(listeners: Iterable<Listener>): string[] {
  const out: string[] = [];
  const byAddress = new Map<string, string>();
  for (const l of listeners) {
    if (l.apiListener) continue;
    const s = l.address?.socketAddress;
    const key = s ? `${s.address ?? ''}:${s.portValue ?? 0}` : l.address?.pipe?.path;
    if (key === undefined) continue;
    const prev = byAddress.get(key);
    if (prev !== undefined)
      out.push(`listener "${l.name ?? ''}": address ${key} is also used by listener "${prev}"`);
    else byAddress.set(key, l.name ?? '');
  }
  return out;
}

/** The clusters a route configuration references (route actions, weighted clusters, mirrors). */
export function referencedClusters(rc: RouteConfiguration): Set<string> {
  const out = new Set<string>();
  for (const vh of rc.virtualHosts ?? [])
    for (const r of vh.routes ?? []) {
      const a = r.route;
      if (!a) continue;
      if (a.cluster) out.add(a.cluster);
      for (const c of a.weightedClusters?.clusters ?? []) if (c.name) out.add(c.name);
      for (const m of a.requestMirrorPolicies ?? []) if (m.cluster) out.add(m.cluster);
    }
  return out;
}

/** The RDS names a listener's HTTP connection managers fetch. */
export function rdsNames(l: Listener): string[] {
  const out: string[] = [];
  const visit = (any: unknown): void => {
    if (typeOf(any) !== EXTENSION_TYPES.httpConnectionManager) return;
    const name = (any as HttpConnectionManager).rds?.routeConfigName;
    if (name && !out.includes(name)) out.push(name);
  };
  const chains = [
    ...(l.filterChains ?? []),
    ...(l.defaultFilterChain ? [l.defaultFilterChain] : []),
  ];
  for (const fc of chains) for (const f of fc.filters ?? []) visit(f.typedConfig);
  visit(l.apiListener?.apiListener);
  return out;
}

/** The EDS resource name of a cluster (`eds_cluster_config.service_name`, else its name), if EDS. */
export function edsServiceName(c: Cluster): string | undefined {
  if (c.type !== 'EDS') return undefined;
  const s = c.edsClusterConfig?.serviceName;
  return s !== undefined && s !== '' ? s : (c.name ?? '');
}

/** Joins problems into a NACK message, capped so that it stays readable. */
export function nackMessage(problems: readonly string[], max = 25): string {
  const shown = problems.slice(0, max).join('\n');
  return problems.length > max ? `${shown}\n... and ${problems.length - max} more` : shown;
}
