// VirtualService HTTP rules → Envoy routes (Istio route.go BuildHTTPRoutesForVirtualService and
// translateRoute). One Envoy route per match condition (or one for a rule without matches);
// conditions that cannot apply to this proxy (port, sourceLabels, sourceNamespace, gateways) are
// dropped when generating; a catch-all route ends the list. Each route forwards (one cluster or
// weighted clusters, with rewrite, timeout, retries, mirrors, hash policy), redirects or answers
// directly, and carries header mutations, fault and CORS configs and a tracing decorator.
import type {
  Destination,
  HTTPMatchRequest,
  HTTPRetry,
  HTTPRoute,
  HTTPRouteDestination,
  VirtualServiceSpec,
} from '@trellis/api';
import type {
  ClusterWeight,
  HashPolicy,
  Metadata,
  RedirectAction,
  RedirectResponseCode,
  Route,
  RouteAction,
} from '@trellis/envoy';
import type { Service } from '@trellis/registry';
import { durationFromIstio, NO_TIMEOUT } from './http-duration.js';
import { parseSubsetKey, WELLKNOWN, outboundClusterName } from './listener-names.js';
import { translateCors } from './route-cors.js';
import { translateFault } from './route-fault.js';
import { translateHeaderOperations } from './route-headers.js';
import {
  isCatchAllMatch,
  matchAppliesToProxy,
  translateRouteMatch,
  type MatchSource,
  type RouteMatchWithMetadata,
} from './route-match.js';
import { mirrorPercent, mirrorPolicy, mirrorPolicyPercent } from './route-mirror.js';
import { translateRetryPolicy } from './route-retry.js';

/** A VirtualService as translation reads it: its identity and its (resolved) spec. */
export interface VirtualServiceLike {
  readonly name: string;
  readonly namespace: string;
  readonly spec: VirtualServiceSpec;
}

/** A route as generated (the RouteMatch may carry JWT claim matchers). */
export type GeneratedRoute = Route & { match?: RouteMatchWithMetadata };

/** What building routes needs to know besides the VirtualService. */
export interface HttpRouteContext {
  /** The client proxy (labels, namespace) and the gateways it serves (`mesh` for sidecars). */
  readonly source: MatchSource;
  /** The port the request arrives on (the service port, or the gateway server port). */
  readonly listenPort: number;
  /** The listener terminates TLS (a gateway HTTPS server): redirects default to https. */
  readonly isTls: boolean;
  /** The client is a proxyless gRPC client (timeouts go to max_stream_duration). */
  readonly proxylessGrpc: boolean;
  /** The service a destination host names, as the proxy sees it. */
  readonly lookupService: (host: string) => Service | undefined;
  /** The hash policy the DestinationRule of a destination asks for, if any. */
  readonly lookupHash: (dest: Destination) => HashPolicy | undefined;
  /** The mesh-wide default retry policy (MeshConfig `defaultHttpRetryPolicy`), if set. */
  readonly meshDefaultRetry?: HTTPRetry;
}

/** The `istio` filter metadata naming the config a resource came from. */
export function configMetadata(kind: string, namespace: string, name: string): Metadata {
  return {
    filterMetadata: {
      istio: { config: `/apis/networking.istio.io/v1/namespaces/${namespace}/${kind}/${name}` },
    },
  };
}

/**
 * Istio's GetDestinationCluster: `outbound|PORT|SUBSET|HOST` where PORT is the destination's port,
 * else the service's only port, else the listener port; an ExternalName alias points at the
 * name it aliases.
 */
export function destinationCluster(
  dest: Destination,
  service: Service | undefined,
  listenPort: number,
): string {
  if (dest.host === '') return 'UnknownService';
  const host = service?.externalName ?? dest.host;
  let port = listenPort;
  if (dest.port?.number !== undefined) port = dest.port.number;
  else if (service && service.ports.length === 1) port = service.ports[0]?.port ?? listenPort;
  return outboundClusterName(host, port, dest.subset ?? '');
}

/** Istio's GetRouteOperation: `host:port/path` for one cluster, else `vsName:port/path`. */
function routeOperation(route: GeneratedRoute, vsName: string, port: number): string {
  const m = route.match;
  let path = '/*';
  if (m?.prefix !== undefined) path = `${m.prefix}*`;
  else if (m?.path !== undefined) path = m.path;
  else if (m?.safeRegex?.regex !== undefined) path = m.safeRegex.regex;
  const key = route.route?.cluster !== undefined ? parseSubsetKey(route.route.cluster) : undefined;
  if (key) return `${key.host}:${key.port}${path}`;
  return `${vsName}:${port}${path}`;
}

/** Istio's setTimeout: the route timeout (0s = none) and the gRPC timeout header cap. */
function setTimeout(
  action: RouteAction,
  timeout: string | undefined,
  proxylessGrpc: boolean,
): void {
  action.timeout = durationFromIstio(timeout) ?? NO_TIMEOUT;
  if (proxylessGrpc) action.maxStreamDuration = { maxStreamDuration: action.timeout };
  else action.maxStreamDuration = { grpcTimeoutHeaderMax: action.timeout };
}

const REDIRECT_CODES: Readonly<Record<number, RedirectResponseCode>> = {
  0: 'MOVED_PERMANENTLY',
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/** Istio's ApplyRedirect; undefined for a redirect code Envoy cannot send (the route is dropped). */
function redirectAction(
  r: NonNullable<HTTPRoute['redirect']>,
  port: number,
  isTls: boolean,
): RedirectAction | undefined {
  const code = REDIRECT_CODES[r.redirectCode ?? 0];
  if (code === undefined) return undefined;
  const out: RedirectAction = {};
  if (r.authority) out.hostRedirect = r.authority;
  if (r.uri) out.pathRedirect = r.uri;
  if (r.scheme) out.schemeRedirect = r.scheme;
  if (r.port !== undefined || r.derivePort !== undefined) {
    let portRedirect = 0;
    if (r.derivePort === 'FROM_REQUEST_PORT') portRedirect = port;
    else if (r.port !== undefined) portRedirect = r.port;
    const scheme = r.scheme ? r.scheme : isTls ? 'https' : 'http';
    if ((portRedirect === 80 && scheme === 'http') || (portRedirect === 443 && scheme === 'https'))
      portRedirect = 0;
    if (portRedirect !== 0) out.portRedirect = portRedirect;
  }
  out.responseCode = code;
  return out;
}

/** Appends header mutations to a route or cluster weight (empty lists are left out). */
function addHeaderMutations(
  target: {
    requestHeadersToAdd?: Route['requestHeadersToAdd'];
    requestHeadersToRemove?: string[];
    responseHeadersToAdd?: Route['responseHeadersToAdd'];
    responseHeadersToRemove?: string[];
  },
  m: ReturnType<typeof translateHeaderOperations>,
): void {
  if (m.requestHeadersToAdd.length > 0)
    target.requestHeadersToAdd = [...(target.requestHeadersToAdd ?? []), ...m.requestHeadersToAdd];
  if (m.requestHeadersToRemove.length > 0)
    target.requestHeadersToRemove = [
      ...(target.requestHeadersToRemove ?? []),
      ...m.requestHeadersToRemove,
    ];
  if (m.responseHeadersToAdd.length > 0)
    target.responseHeadersToAdd = [
      ...(target.responseHeadersToAdd ?? []),
      ...m.responseHeadersToAdd,
    ];
  if (m.responseHeadersToRemove.length > 0)
    target.responseHeadersToRemove = [
      ...(target.responseHeadersToRemove ?? []),
      ...m.responseHeadersToRemove,
    ];
}

/** The forwarding action of a rule (Istio applyHTTPRouteDestination). */
function routeAction(
  out: GeneratedRoute,
  rule: HTTPRoute,
  authorityFromHeaders: string,
  ctx: HttpRouteContext,
): RouteAction {
  const action: RouteAction = {};
  let authority = authorityFromHeaders;
  if (rule.rewrite) {
    const re = rule.rewrite.uriRegexRewrite;
    if (re)
      action.regexRewrite = { pattern: { regex: re.match ?? '' }, substitution: re.rewrite ?? '' };
    else if (rule.rewrite.uri) action.prefixRewrite = rule.rewrite.uri;
    if (rule.rewrite.authority) authority = rule.rewrite.authority;
  }
  const mirrors = [];
  if (rule.mirror) {
    const pct = mirrorPercent(rule);
    if (pct)
      mirrors.push(
        mirrorPolicy(
          destinationCluster(rule.mirror, ctx.lookupService(rule.mirror.host), ctx.listenPort),
          pct,
        ),
      );
  }
  for (const m of rule.mirrors ?? []) {
    const pct = mirrorPolicyPercent(m);
    if (pct)
      mirrors.push(
        mirrorPolicy(
          destinationCluster(m.destination, ctx.lookupService(m.destination.host), ctx.listenPort),
          pct,
        ),
      );
  }
  const dests = rule.route ?? [];
  const hashes: HashPolicy[] = [];
  let consistentHash = false;
  if (dests.length === 1) {
    const d = dests[0] as HTTPRouteDestination;
    action.cluster = destinationCluster(
      d.destination,
      ctx.lookupService(d.destination.host),
      ctx.listenPort,
    );
    if (d.headers) {
      const ops = translateHeaderOperations(d.headers);
      addHeaderMutations(out, ops);
      if (ops.authority !== '' && authority === '') authority = ops.authority;
    }
    const h = ctx.lookupHash(d.destination);
    if (h) {
      hashes.push(h);
      consistentHash = true;
    }
  } else {
    const clusters: ClusterWeight[] = [];
    for (const d of dests) {
      if ((d.weight ?? 0) === 0) continue;
      const cw: ClusterWeight = {
        name: destinationCluster(
          d.destination,
          ctx.lookupService(d.destination.host),
          ctx.listenPort,
        ),
        weight: d.weight ?? 0,
      };
      if (d.headers) {
        const ops = translateHeaderOperations(d.headers);
        addHeaderMutations(cw, ops);
        if (ops.authority !== '') cw.hostRewriteLiteral = ops.authority;
      }
      clusters.push(cw);
      const h = ctx.lookupHash(d.destination);
      if (h) hashes.push(h);
    }
    action.weightedClusters = { clusters };
  }
  if (authority !== '') action.hostRewriteLiteral = authority;
  setTimeout(action, rule.timeout, ctx.proxylessGrpc);
  const retry = translateRetryPolicy(rule.retries, consistentHash, ctx.meshDefaultRetry);
  if (retry) action.retryPolicy = retry;
  if (mirrors.length > 0) action.requestMirrorPolicies = mirrors;
  if (hashes.length > 0) action.hashPolicy = hashes;
  return action;
}

/**
 * One Envoy route for an HTTP rule and one of its match conditions (undefined: the rule has
 * none); undefined when the condition cannot apply to this proxy.
 */
export function translateRoute(
  vs: VirtualServiceLike,
  rule: HTTPRoute,
  match: HTTPMatchRequest | undefined,
  ctx: HttpRouteContext,
): GeneratedRoute | undefined {
  if (!matchAppliesToProxy(match, ctx.source, ctx.listenPort)) return undefined;
  let name = rule.name ?? '';
  if (match?.name) name = `${name}.${match.name}`;
  const out: GeneratedRoute = {};
  if (name !== '') out.name = name;
  out.match = translateRouteMatch(match);
  out.metadata = configMetadata('virtual-service', vs.namespace, vs.name);
  if (match?.statPrefix) out.statPrefix = match.statPrefix;
  let authority = '';
  if (rule.headers) {
    const ops = translateHeaderOperations(rule.headers);
    addHeaderMutations(out, ops);
    authority = ops.authority;
  }
  if (rule.redirect) {
    const r = redirectAction(rule.redirect, ctx.listenPort, ctx.isTls);
    if (!r) return undefined;
    out.redirect = r;
  } else if (rule.directResponse) {
    const body = rule.directResponse.body;
    out.directResponse = { status: rule.directResponse.status };
    if (body?.string !== undefined) out.directResponse.body = { inlineString: body.string };
    else if (body?.bytes !== undefined) out.directResponse.body = { inlineBytes: body.bytes };
  } else {
    out.route = routeAction(out, rule, authority, ctx);
  }
  out.decorator = { operation: routeOperation(out, vs.name, ctx.listenPort) };
  const fault = translateFault(rule.fault);
  if (fault || rule.corsPolicy) {
    out.typedPerFilterConfig = {};
    if (fault) out.typedPerFilterConfig[WELLKNOWN.fault] = fault;
    if (rule.corsPolicy) out.typedPerFilterConfig[WELLKNOWN.cors] = translateCors(rule.corsPolicy);
  }
  return out;
}

/**
 * The routes of a VirtualService for one listener port (Istio BuildHTTPRoutesForVirtualService);
 * empty when no rule applies. Generation stops after a catch-all route.
 */
export function buildHttpRoutesForVirtualService(
  vs: VirtualServiceLike,
  ctx: HttpRouteContext,
): GeneratedRoute[] {
  const out: GeneratedRoute[] = [];
  let catchAll = false;
  for (const rule of vs.spec.http ?? []) {
    const matches = rule.match ?? [];
    if (matches.length === 0) {
      const r = translateRoute(vs, rule, undefined, ctx);
      if (r) out.push(r);
      catchAll = true;
    } else {
      for (const m of matches) {
        const r = translateRoute(vs, rule, m, ctx);
        if (!r) continue;
        out.push(r);
        if (isCatchAllMatch(r.match)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}

/**
 * The route of a service port without a VirtualService (Istio BuildDefaultHTTPOutboundRoute):
 * everything to `cluster`, no timeout, the default retry policy.
 */
export function defaultOutboundRoute(
  cluster: string,
  operation: string,
  hash: HashPolicy | undefined,
  proxylessGrpc: boolean,
  meshDefaultRetry?: HTTPRetry,
): GeneratedRoute {
  const action: RouteAction = { cluster };
  setTimeout(action, undefined, proxylessGrpc);
  // Istio keeps the previous_hosts predicate here even with a hash policy.
  const retry = translateRetryPolicy(undefined, false, meshDefaultRetry);
  if (retry) action.retryPolicy = retry;
  if (hash) action.hashPolicy = [hash];
  return {
    name: 'default',
    match: { prefix: '/' },
    decorator: { operation },
    route: action,
  };
}

/** Istio's SortVHostRoutes: catch-all routes move to the end, the others keep their order. */
export function sortVirtualHostRoutes(routes: readonly GeneratedRoute[]): GeneratedRoute[] {
  const normal = routes.filter((r) => !isCatchAllMatch(r.match));
  const all = routes.filter((r) => isCatchAllMatch(r.match));
  return [...normal, ...all];
}
