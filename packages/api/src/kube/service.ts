// Service (core/v1): a stable name and ports in front of the pods its selector picks.
import {
  checkCidrOrIp,
  checkDns1123Label,
  checkDns1123Subdomain,
  checkIanaSvcName,
  checkQualifiedName,
  isIpAddress,
} from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import {
  bool,
  enumOf,
  int,
  intOrString,
  list,
  obj,
  req,
  str,
  type ObjectOf,
} from '../validation/schema.js';
import { labels } from '../istio/common.js';
import { kubeKind } from './kube-kind.js';
import { PROTOCOLS } from './pod-spec.js';

const keep = { unknownFields: 'keep' } as const;

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
/** core/v1 ServiceType */
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** targetPort: a port number, or the name of a container port (0 and "" default to `port`). */
function checkTargetPort(p: number | string, ctx: ValidationContext): void {
  if (typeof p === 'number') {
    if (p < 0 || p > 65535) ctx.error(`must be between 1 and 65535, not ${p}`);
  } else if (p !== '') checkIanaSvcName(p, ctx, 'target port name');
}

const servicePortFields = {
  name: str({ check: (n, ctx) => checkDns1123Label(n, ctx, 'port name') }),
  protocol: enumOf(PROTOCOLS),
  appProtocol: str({ check: (p, ctx) => checkQualifiedName(p, ctx, 'appProtocol') }),
  port: req(int({ min: 1, max: 65535 })),
  targetPort: intOrString({ check: checkTargetPort }),
  nodePort: int({ min: 0, max: 65535 }),
};
/** core/v1 ServicePort */
export type ServicePort = ObjectOf<typeof servicePortFields>;

function checkIp(ip: string, ctx: ValidationContext): void {
  if (!isIpAddress(ip)) ctx.error(`must be an IP address, not ${JSON.stringify(ip)}`);
}

const serviceSpecFields = {
  ports: list(obj(servicePortFields, keep)),
  selector: labels,
  type: enumOf(SERVICE_TYPES),
  clusterIP: str({
    check: (ip, ctx) => {
      if (ip !== '' && ip !== 'None') checkIp(ip, ctx);
    },
  }),
  clusterIPs: list(
    str({
      check: (ip, ctx) => {
        if (ip !== '' && ip !== 'None') checkIp(ip, ctx);
      },
    }),
    { maxItems: 2 },
  ),
  externalName: str(),
  externalIPs: list(str({ check: checkIp })),
  sessionAffinity: enumOf(['ClientIP', 'None'] as const),
  loadBalancerIP: str(),
  loadBalancerSourceRanges: list(str({ check: (r, ctx) => checkCidrOrIp(r, ctx) })),
  loadBalancerClass: str(),
  externalTrafficPolicy: enumOf(['Cluster', 'Local'] as const),
  internalTrafficPolicy: enumOf(['Cluster', 'Local'] as const),
  ipFamilies: list(enumOf(['IPv4', 'IPv6'] as const), { maxItems: 2, unique: true }),
  ipFamilyPolicy: enumOf(['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const),
  publishNotReadyAddresses: bool(),
  healthCheckNodePort: int({ min: 0, max: 65535 }),
  allocateLoadBalancerNodePorts: bool(),
};
/** core/v1 ServiceSpec */
export type ServiceSpec = ObjectOf<typeof serviceSpecFields>;
export const serviceSpec = obj(serviceSpecFields, { ...keep, check: checkService });

function checkService(spec: ServiceSpec, ctx: ValidationContext): void {
  const type = spec.type ?? 'ClusterIP';
  const headless = spec.clusterIP === 'None';
  const ports = spec.ports ?? [];
  if (ports.length === 0 && !headless && type !== 'ExternalName')
    ctx
      .field('ports')
      .error(
        'must have at least one port unless the Service is headless (clusterIP: None) or of type ExternalName',
      );
  const names = new Map<string, number>();
  const numbers = new Map<string, number>();
  ports.forEach((p, i) => {
    const c = ctx.at('ports', i);
    if (ports.length > 1) {
      if (!p.name) c.field('name').error('is required when the Service has more than one port');
      else {
        const first = names.get(p.name);
        if (first !== undefined)
          c.field('name').error(
            `port name ${JSON.stringify(p.name)} is already used by ports[${first}]`,
          );
        else names.set(p.name, i);
      }
    }
    if (p.port !== undefined) {
      const key = `${p.port}/${p.protocol ?? 'TCP'}`;
      const first = numbers.get(key);
      if (first !== undefined) c.error(`port ${key} is already declared by ports[${first}]`);
      else numbers.set(key, i);
    }
    if (p.nodePort && type !== 'NodePort' && type !== 'LoadBalancer')
      c.field('nodePort').error(
        `may only be set when type is NodePort or LoadBalancer, not ${type}`,
      );
  });
  if (type === 'ExternalName') {
    if (!spec.externalName)
      ctx.field('externalName').error('is required when type is ExternalName');
    else
      checkDns1123Subdomain(
        spec.externalName.replace(/\.$/, ''),
        ctx.field('externalName'),
        'externalName',
      );
    if (spec.clusterIP !== undefined && spec.clusterIP !== '')
      ctx.field('clusterIP').error('must not be set when type is ExternalName');
  } else if (headless && type !== 'ClusterIP') {
    ctx.field('clusterIP').error(`may only be None for a ClusterIP Service, not ${type}`);
  }
  if (spec.externalTrafficPolicy !== undefined && type !== 'NodePort' && type !== 'LoadBalancer')
    ctx
      .field('externalTrafficPolicy')
      .error(`may only be set when type is NodePort or LoadBalancer, not ${type}`);
}

export const SERVICE = kubeKind({
  group: '',
  kind: 'Service',
  plural: 'services',
  shortNames: ['svc'],
  nameRule: 'dns1035-label',
  fields: { spec: serviceSpec },
});
