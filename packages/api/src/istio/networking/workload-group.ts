// WorkloadGroup (networking.istio.io): a template for the WorkloadEntries of workloads that
// register themselves (VMs), with their metadata and a readiness probe.
// Semantics: https://istio.io/latest/docs/reference/config/networking/workload-group/
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import type { ValidationContext } from '../../validation/problem.js';
import { int, list, map, obj, req, str, uint32, type ObjectOf } from '../../validation/schema.js';
import { checkPortNumber, labels } from '../common.js';
import {
  UNIX_ADDRESS_PREFIX,
  unixAddressProblem,
  workloadEntryShape,
  type WorkloadEntrySpec,
} from './workload-entry.js';

const probePort = req(uint32({ check: checkPortNumber }));

/** A probe count or interval in seconds: an int32 that must not be negative. */
function seconds() {
  return int({ check: (n, ctx) => n < 0 && ctx.error(`must not be negative, not ${n}`) });
}

const httpHeaderFields = {
  name: str({
    check: (n, ctx) =>
      !/^[-_A-Za-z0-9]+$/.test(n) &&
      ctx.error(
        `invalid header name ${JSON.stringify(n)}: only letters, digits, '-' and '_' are allowed`,
      ),
  }),
  value: str(),
};
/** istio.networking.v1.HTTPHeader: a header sent with a readiness probe. */
export type HTTPHeader = ObjectOf<typeof httpHeaderFields>;

const httpGetFields = {
  path: str(),
  port: probePort,
  host: str(),
  scheme: str({
    check: (s, ctx) =>
      s !== '' &&
      s !== 'HTTP' &&
      s !== 'HTTPS' &&
      ctx.error(`must be "HTTP" or "HTTPS", not ${JSON.stringify(s)}`),
  }),
  httpHeaders: list(obj(httpHeaderFields)),
};
/** istio.networking.v1.HTTPHealthCheckConfig: an HTTP GET readiness probe. */
export type HTTPHealthCheckConfig = ObjectOf<typeof httpGetFields>;

const tcpSocketFields = { host: str(), port: probePort };
/** istio.networking.v1.TCPHealthCheckConfig: a TCP connect readiness probe. */
export type TCPHealthCheckConfig = ObjectOf<typeof tcpSocketFields>;

const execFields = { command: req(list(str({ nonEmpty: true }), { minItems: 1 })) };
/** istio.networking.v1.ExecHealthCheckConfig: a command whose exit status is the readiness. */
export type ExecHealthCheckConfig = ObjectOf<typeof execFields>;

const grpcFields = { port: uint32({ check: checkPortNumber }), service: str() };
/** istio.networking.v1.GrpcHealthCheckConfig: a gRPC health check readiness probe. */
export type GrpcHealthCheckConfig = ObjectOf<typeof grpcFields>;

const readinessProbeFields = {
  initialDelaySeconds: seconds(),
  timeoutSeconds: seconds(),
  periodSeconds: seconds(),
  successThreshold: seconds(),
  failureThreshold: seconds(),
  httpGet: obj(httpGetFields),
  tcpSocket: obj(tcpSocketFields),
  exec: obj(execFields),
  grpc: obj(grpcFields),
};
/** istio.networking.v1.ReadinessProbe: how the agent on the workload checks readiness. */
export type ReadinessProbe = ObjectOf<typeof readinessProbeFields>;
export const readinessProbe = obj(readinessProbeFields, {
  oneOf: [{ fields: ['httpGet', 'tcpSocket', 'exec', 'grpc'], required: true }],
});

const metadataFields = { labels, annotations: map(str()) };
/** istio.networking.v1.WorkloadGroup.ObjectMeta: labels and annotations for generated entries. */
export type WorkloadGroupObjectMeta = ObjectOf<typeof metadataFields>;

/** The template: a WorkloadEntry whose address is filled in when a workload registers. */
function checkTemplate(t: WorkloadEntrySpec, ctx: ValidationContext): void {
  const address = t.address ?? '';
  if (!address.startsWith(UNIX_ADDRESS_PREFIX)) return;
  const p = unixAddressProblem(address);
  if (p) ctx.field('address').error(p);
  if (t.ports && Object.keys(t.ports).length > 0)
    ctx.field('ports').error('must not be set for a Unix domain socket address');
}

const workloadGroupFields = {
  metadata: obj(metadataFields),
  template: req(workloadEntryShape),
  probe: readinessProbe,
};
/** istio.networking.v1.WorkloadGroup: the spec of a WorkloadGroup. */
export type WorkloadGroupSpec = ObjectOf<typeof workloadGroupFields>;
export const workloadGroupSpec = obj(workloadGroupFields, {
  check: (wg, ctx) => {
    const template = wg.template as WorkloadEntrySpec | undefined;
    if (template) checkTemplate(template, ctx.field('template'));
  },
});

export const WORKLOAD_GROUP = istioKind({
  group: 'networking.istio.io',
  kind: 'WorkloadGroup',
  versions: NETWORKING_VERSIONS,
  plural: 'workloadgroups',
  shortNames: ['wg'],
  spec: workloadGroupSpec,
});
