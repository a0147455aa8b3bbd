// The Envoy v3 protos, loaded once (lazily) into one shared protobufjs Root.
//
// The .proto files come from @grpc/grpc-js-xds, which vendors the Envoy API, the cncf/xds
// (udpa, xds) protos, googleapis and protoc-gen-validate. Only the files listed in
// PROTO_FILES are parsed (their imports follow); every resource, filter and extension
// config Trellis generates or reads must be reachable from them.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

/** The proto files parsed into the shared Root (imports are followed). */
export const PROTO_FILES: readonly string[] = [
  // Discovery (ADS, state of the world and delta).
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  // The five resource types.
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  // Network filters.
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  // Listener filters.
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto',
  // HTTP filters.
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/grpc_stats/v3/config.proto',
  'envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/stateful_session/v3/stateful_session.proto',
  'envoy/extensions/http/stateful_session/cookie/v3/cookie.proto',
  'envoy/extensions/http/stateful_session/header/v3/header.proto',
  'envoy/extensions/filters/http/wasm/v3/wasm.proto',
  // Transport sockets, upstream options, retries, request ids.
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/transport_sockets/internal_upstream/v3/internal_upstream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/request_id/uuid/v3/uuid.proto',
  // Load-balancing policies (Cluster.load_balancing_policy).
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3/client_side_weighted_round_robin.proto',
  'envoy/extensions/load_balancing_policies/pick_first/v3/pick_first.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  // Access logs and tracing.
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  // Opaque configs (Istio's stats and metadata-exchange filters are TypedStructs).
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
  // Admin and status (config_dump for the debug endpoints, CSDS for proxy-status).
  'envoy/admin/v3/config_dump.proto',
  'envoy/service/status/v3/csds.proto',
];

/** How long the shared Root took to load, and what it holds. */
export interface ProtoLoadStats {
  readonly millis: number;
  readonly files: number;
  readonly types: number;
}

let root: protobuf.Root | undefined;
let stats: ProtoLoadStats | undefined;

/** The directories that hold the vendored protos, in lookup order. */
export function protoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
  const deps = join(pkg, 'deps');
  const dirs = ['envoy-api', 'xds', 'cncf-xds', 'udpa', 'googleapis', 'protoc-gen-validate']
    .map((d) => join(deps, d))
    .filter((d) => existsSync(d));
  // google/protobuf/descriptor.proto (imported by the annotation protos) ships with protobufjs.
  dirs.push(protobufjsDir);
  return dirs;
}

/** The shared Root with every file of PROTO_FILES loaded and resolved (loaded on first use). */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const started = performance.now();
  const dirs = protoIncludeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin: string, target: string): string => {
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    // protobufjs knows the common google/protobuf files without a path.
    return target;
  };
  r.loadSync(PROTO_FILES as string[], { keepCase: false });
  r.resolveAll();
  let types = 0;
  const count = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) types++;
      if (nested instanceof protobuf.Namespace) count(nested);
    }
  };
  count(r);
  stats = { millis: performance.now() - started, files: r.files.length, types };
  root = r;
  return r;
}

/** Load statistics of the shared Root (loads it if needed). */
export function protoLoadStats(): ProtoLoadStats {
  envoyRoot();
  return stats as ProtoLoadStats;
}

const typeCache = new Map<string, protobuf.Type | null>();

/** The message type with this fully qualified name (no leading dot), or undefined. */
export function findMessageType(fullName: string): protobuf.Type | undefined {
  const cached = typeCache.get(fullName);
  if (cached !== undefined) return cached ?? undefined;
  let found: protobuf.Type | null = null;
  try {
    const t = envoyRoot().lookup('.' + fullName);
    if (t instanceof protobuf.Type) found = t;
  } catch {
    found = null;
  }
  typeCache.set(fullName, found);
  return found ?? undefined;
}

/** Like findMessageType, but a missing type is a bug: throws. */
export function messageType(fullName: string): protobuf.Type {
  const t = findMessageType(fullName);
  if (!t) throw new Error(`proto message type ${fullName} is not loaded`);
  return t;
}
