// VirtualService HTTP match conditions → Envoy RouteMatch (Istio route.go TranslateRouteMatch):
// uri exact/prefix/regex as the path specifier (case sensitivity from ignoreUriCase), headers and
// withoutHeaders as header matchers sorted by name, then :method, :authority and :scheme, query
// parameters; a regex of "*" (or an empty match) means "present"; JWT claim "headers"
// (`@request.auth.claims.x`) become dynamic metadata matchers on Istio's authn metadata.
// Static conditions (port, sourceLabels, sourceNamespace, gateways) are decided when
// generating, in `matchAppliesToProxy`.
import type { HTTPMatchRequest, StringMatch } from '@trellis/api';
import type {
  HeaderMatcher,
  QueryParameterMatcher,
  RouteMatch,
  StringMatcher,
} from '@trellis/envoy';
import type { Labels } from '@trellis/registry';

/** `envoy.type.matcher.v3.MetadataMatcher` (JWT claim routing). */
export interface MetadataMatcher {
  filter: string;
  path: { key: string }[];
  value: { listMatch: { oneOf: { stringMatch: StringMatcher } } };
  invert?: boolean;
}

/** A RouteMatch with the `dynamicMetadata` field Istio uses for JWT claim routing. */
export type RouteMatchWithMetadata = RouteMatch & { dynamicMetadata?: MetadataMatcher[] };

/** An Istio StringMatch as an Envoy StringMatcher; undefined when it sets nothing. */
export function toStringMatcher(m: StringMatch | undefined): StringMatcher | undefined {
  if (!m) return undefined;
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { safeRegex: { regex: m.regex } };
  return undefined;
}

/** Istio's rule: an empty StringMatch, or the regex `*`, means "the header is present". */
function isPresentMatch(m: StringMatch | undefined): boolean {
  if (!m) return true;
  if (m.exact === undefined && m.prefix === undefined && m.regex === undefined) return true;
  return m.regex === '*';
}

/** A header condition. */
export function headerMatcher(name: string, m: StringMatch | undefined): HeaderMatcher {
  if (isPresentMatch(m)) return { name, presentMatch: true };
  const sm = toStringMatcher(m);
  return sm ? { name, stringMatch: sm } : { name };
}

function queryParameterMatcher(name: string, m: StringMatch | undefined): QueryParameterMatcher {
  if (isPresentMatch(m)) return { name, presentMatch: true };
  const sm = toStringMatcher(m);
  return sm ? { name, stringMatch: sm } : { name };
}

const JWT_CLAIM_PREFIX = '@request.auth.claims';

/** The claim path of a JWT claim "header" (`@request.auth.claims.a.b` or `[a][b]`), or undefined. */
export function jwtClaimPath(name: string): string[] | undefined {
  if (!name.startsWith(JWT_CLAIM_PREFIX)) return undefined;
  const rest = name.slice(JWT_CLAIM_PREFIX.length);
  if (rest.startsWith('.')) {
    const parts = rest.slice(1).split('.');
    return parts.every((p) => p !== '') ? parts : undefined;
  }
  if (rest.startsWith('[') && rest.endsWith(']')) {
    const parts = rest.slice(1, -1).split('][');
    return parts.every((p) => p !== '' && !p.includes('[') && !p.includes(']')) ? parts : undefined;
  }
  return undefined;
}

function metadataMatcher(claims: string[], m: StringMatch | undefined): MetadataMatcher {
  const sm = toStringMatcher(m) ?? { safeRegex: { regex: '.+' } };
  return {
    filter: 'istio_authn',
    path: [{ key: 'request.auth.claims' }, ...claims.map((key) => ({ key }))],
    value: { listMatch: { oneOf: { stringMatch: sm } } },
  };
}

function sortedEntries<V>(m: Readonly<Record<string, V>> | undefined): [string, V][] {
  return Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The RouteMatch of one HTTP match condition (or of none: every path). `gatewaySemantics`
 * turns non-root prefixes into `pathSeparatedPrefix` (Kubernetes Gateway API only).
 */
export function translateRouteMatch(
  match: HTTPMatchRequest | undefined,
  gatewaySemantics = false,
): RouteMatchWithMetadata {
  const out: RouteMatchWithMetadata = { prefix: '/' };
  if (!match) return out;
  const headers: HeaderMatcher[] = [];
  const metadata: MetadataMatcher[] = [];
  for (const [name, m] of sortedEntries(match.headers)) {
    const claims = jwtClaimPath(name);
    if (claims) metadata.push(metadataMatcher(claims, m));
    else headers.push(headerMatcher(name, m));
  }
  for (const [name, m] of sortedEntries(match.withoutHeaders)) {
    const claims = jwtClaimPath(name);
    if (claims) {
      metadata.push({ ...metadataMatcher(claims, m), invert: true });
      continue;
    }
    const h = headerMatcher(name, m);
    h.invertMatch = true;
    if (!isPresentMatch(m)) h.treatMissingHeaderAsEmpty = true;
    headers.push(h);
  }
  headers.sort((a, b) =>
    (a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0,
  );
  const uri = match.uri;
  if (uri) {
    delete out.prefix;
    if (uri.exact !== undefined) out.path = uri.exact;
    else if (uri.prefix !== undefined) {
      if (gatewaySemantics && uri.prefix !== '/')
        out.pathSeparatedPrefix = uri.prefix.replace(/\/$/, '');
      else out.prefix = uri.prefix;
    } else if (uri.regex !== undefined) out.safeRegex = { regex: uri.regex };
    else out.prefix = '/';
  }
  out.caseSensitive = !(match.ignoreUriCase ?? false);
  if (match.method) headers.push(headerMatcher(':method', match.method));
  if (match.authority) headers.push(headerMatcher(':authority', match.authority));
  if (match.scheme) headers.push(headerMatcher(':scheme', match.scheme));
  if (headers.length > 0) out.headers = headers;
  const query = sortedEntries(match.queryParams).map(([n, m]) => queryParameterMatcher(n, m));
  if (query.length > 0) out.queryParameters = query;
  if (metadata.length > 0) out.dynamicMetadata = metadata;
  return out;
}

/** Istio's IsCatchAllRoute: path `/` (or regex `.*`) with no header, query or metadata condition. */
export function isCatchAllMatch(m: RouteMatchWithMetadata | undefined): boolean {
  if (!m) return false;
  const pathAll = m.prefix === '/' || m.pathSeparatedPrefix === '/' || m.safeRegex?.regex === '.*';
  return (
    pathAll &&
    (m.headers?.length ?? 0) === 0 &&
    (m.queryParameters?.length ?? 0) === 0 &&
    (m.dynamicMetadata?.length ?? 0) === 0
  );
}

/** Who is generating: the labels and namespace of the client proxy, the gateways it serves. */
export interface MatchSource {
  readonly labels: Labels;
  readonly namespace: string;
  /** `mesh` for sidecars; `namespace/name` of the Gateways a gateway proxy serves. */
  readonly gateways: ReadonlySet<string>;
}

/**
 * Istio's sourceMatchHTTP plus the port check of translateRoute: whether a match condition can
 * apply to requests this proxy sends on `listenPort`. `gateways` in the match win over
 * sourceLabels/sourceNamespace (those are then not checked), as in Istio.
 */
export function matchAppliesToProxy(
  match: HTTPMatchRequest | undefined,
  source: MatchSource,
  listenPort: number,
): boolean {
  if (!match) return true;
  if ((match.port ?? 0) !== 0 && match.port !== listenPort) return false;
  const gateways = match.gateways ?? [];
  if (gateways.length > 0) return gateways.some((g) => source.gateways.has(g));
  for (const [k, v] of Object.entries(match.sourceLabels ?? {}))
    if (source.labels[k] !== v) return false;
  return !match.sourceNamespace || match.sourceNamespace === source.namespace;
}
