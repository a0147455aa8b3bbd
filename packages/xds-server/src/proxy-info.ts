// Who is on the other end of a stream: the Istio node id and metadata, parsed once.
import { type Result, ok, err } from '@trellis/core';
import { NODE_METADATA, parseNodeId, type Node, type NodeType } from '@trellis/envoy';

/** A connected proxy as the control plane sees it (from its first request's Node). */
export interface ProxyInfo {
  /** The full node id, e.g. `sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local`. */
  readonly nodeId: string;
  /** `sidecar` for a workload's proxy, `router` for a gateway. */
  readonly type: NodeType;
  readonly ip: string;
  /** Every IP of the workload (metadata INSTANCE_IPS, else the node id's IP). */
  readonly ips: readonly string[];
  /** `POD.NAMESPACE` from the node id. */
  readonly id: string;
  /** The pod (or workload entry) name: metadata NAME, else the first part of the id. */
  readonly podName: string;
  readonly namespace: string;
  readonly dnsDomain: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string | undefined;
  readonly workloadName: string | undefined;
  readonly clusterId: string | undefined;
  readonly istioVersion: string | undefined;
  /** Metadata GENERATOR (`grpc` for proxyless gRPC clients). */
  readonly generator: string | undefined;
  /** A proxyless gRPC client (GENERATOR: grpc): it gets API listeners, not socket listeners. */
  readonly proxyless: boolean;
  /** The whole node metadata, as sent. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

function optString(meta: Record<string, unknown>, key: string): Result<string | undefined> {
  const v = meta[key];
  if (v === undefined || v === null || v === '') return ok(undefined);
  if (typeof v !== 'string') return err(`node metadata ${key} must be a string, not ${typeof v}`);
  return ok(v);
}

/**
 * Parses a Node into a ProxyInfo. The error says exactly what is wrong (it becomes the
 * INVALID_ARGUMENT status of the stream).
 */
export function parseProxyInfo(node: Node | undefined): Result<ProxyInfo> {
  if (!node || node.id === undefined || node.id === '')
    return err('the first request of a stream must carry a node with an id');
  const parsed = parseNodeId(node.id);
  if (!parsed.ok) return parsed;
  const { type, ip, id, domain } = parsed.value;
  const meta = node.metadata ?? {};
  const problems: string[] = [];
  const get = (key: string): string | undefined => {
    const r = optString(meta, key);
    if (!r.ok) {
      problems.push(r.error);
      return undefined;
    }
    return r.value;
  };
  const labelsRaw = meta[NODE_METADATA.labels];
  const labels: Record<string, string> = {};
  if (labelsRaw !== undefined && labelsRaw !== null) {
    if (typeof labelsRaw !== 'object' || Array.isArray(labelsRaw)) {
      problems.push(`node metadata LABELS must be an object of strings`);
    } else {
      for (const [k, v] of Object.entries(labelsRaw as Record<string, unknown>)) {
        if (typeof v !== 'string') problems.push(`node metadata LABELS.${k} must be a string`);
        else labels[k] = v;
      }
    }
  }
  const dot = id.indexOf('.');
  const idNamespace = dot >= 0 ? id.slice(dot + 1) : '';
  const domainNamespace = domain.split('.')[0] ?? '';
  const namespace = get(NODE_METADATA.namespace) ?? (idNamespace || domainNamespace);
  const podName = get(NODE_METADATA.podName) ?? (dot >= 0 ? id.slice(0, dot) : id);
  const instanceIps = get(NODE_METADATA.instanceIps);
  const serviceAccount = get(NODE_METADATA.serviceAccount);
  const workloadName = get(NODE_METADATA.workloadName);
  const clusterId = get(NODE_METADATA.clusterId);
  const istioVersion = get(NODE_METADATA.istioVersion);
  const generator = get(NODE_METADATA.generator);
  if (problems.length > 0) return err(problems.join('; '));
  if (namespace === '')
    return err(
      `cannot tell the namespace of node "${node.id}": set metadata NAMESPACE or use POD.NAMESPACE`,
    );
  return ok({
    nodeId: node.id,
    type,
    ip,
    ips: instanceIps
      ? instanceIps
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [ip],
    id,
    podName,
    namespace,
    dnsDomain: domain,
    labels,
    serviceAccount,
    workloadName,
    clusterId,
    istioVersion,
    generator,
    proxyless: generator === 'grpc',
    metadata: meta,
  });
}
