// ServiceEntry (networking.istio.io): adds a service to the registry: external APIs, VMs,
// or local processes, with hosts, ports, addresses and how endpoints are found.
// Semantics: https://istio.io/latest/docs/reference/config/networking/service-entry/
// The rules follow Istio's webhook (pilot/pkg/config/validation/validation.go).
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import { isIpAddress } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import { enumOf, list, obj, req, str, uint32, type ObjectOf } from '../../validation/schema.js';
import {
  checkExportTo,
  checkIstioDnsLabel,
  checkPortNumber,
  checkProtocol,
  fqdnProblem,
  ipOrCidr,
  isHttpProtocol,
  isTlsProtocol,
  networkingWorkloadSelector,
  objectNamespace,
  specOf,
  wildcardHostProblem,
} from '../common.js';
import { checkWorkloadEntry, workloadEntryShape } from './workload-entry.js';

const servicePortFields = {
  number: req(uint32({ check: checkPortNumber })),
  protocol: str({ maxLength: 256, check: checkProtocol }),
  name: req(str({ maxLength: 256, check: (n, ctx) => checkIstioDnsLabel(n, ctx, 'port name') })),
  targetPort: uint32({ check: checkPortNumber }),
};
/** istio.networking.v1.ServicePort: a port of a ServiceEntry, with its protocol and name. */
export type ServicePort = ObjectOf<typeof servicePortFields>;
export const servicePort = obj(servicePortFields);

export const SERVICE_ENTRY_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
export const SERVICE_ENTRY_RESOLUTIONS = [
  'NONE',
  'STATIC',
  'DNS',
  'DNS_ROUND_ROBIN',
  'DYNAMIC_DNS',
] as const;

const serviceEntryFields = {
  hosts: req(list(str(), { minItems: 1, maxItems: 256 })),
  addresses: list(ipOrCidr, { maxItems: 256 }),
  ports: list(servicePort, { maxItems: 256 }),
  location: enumOf(SERVICE_ENTRY_LOCATIONS),
  resolution: enumOf(SERVICE_ENTRY_RESOLUTIONS),
  endpoints: list(workloadEntryShape, { maxItems: 4096 }),
  workloadSelector: networkingWorkloadSelector,
  exportTo: list(str()),
  subjectAltNames: list(str()),
};
/** istio.networking.v1.ServiceEntry: the spec of a ServiceEntry. */
export type ServiceEntrySpec = ObjectOf<typeof serviceEntryFields>;
export const serviceEntrySpec = obj(serviceEntryFields, {
  oneOf: [{ fields: ['workloadSelector', 'endpoints'] }],
  check: checkServiceEntry,
});

/** Protocols Istio treats as TCP-level (no Host header to tell hosts apart). */
const TCP_PROTOCOLS = ['TCP', 'HTTPS', 'TLS', 'MONGO', 'REDIS', 'MYSQL'];

function checkServiceEntry(se: ServiceEntrySpec, ctx: ValidationContext): void {
  const resolution = se.resolution ?? 'NONE';
  // Required fields may be missing here (reported already); read them defensively.
  const hosts = (se.hosts as readonly string[] | undefined) ?? [];
  hosts.forEach((h, i) => {
    const c = ctx.at('hosts', i);
    if (h === '*') return c.error('"*" is not allowed: a ServiceEntry host must name a service');
    const p = wildcardHostProblem(h);
    if (p) c.error(p);
    else if (h.includes('*') && !h.startsWith('*.'))
      c.warn(`partial wildcard host ${JSON.stringify(h)} is not supported; use "*.<domain>"`);
  });

  if (
    (se.addresses ?? []).some((a) => a.includes('/')) &&
    resolution !== 'NONE' &&
    resolution !== 'STATIC'
  )
    ctx
      .field('addresses')
      .error(`CIDR ranges are allowed only with resolution NONE or STATIC, not ${resolution}`);

  const names = new Map<string, number>();
  const numbers = new Map<number, number>();
  se.ports?.forEach((p, i) => {
    if (p.name == null || p.number == null) return; // reported as required
    const firstName = names.get(p.name);
    if (firstName !== undefined)
      ctx
        .at('ports', i, 'name')
        .error(`port name ${JSON.stringify(p.name)} is already used by ports[${firstName}]`);
    else names.set(p.name, i);
    const firstNumber = numbers.get(p.number);
    if (firstNumber !== undefined)
      ctx
        .at('ports', i, 'number')
        .error(`port ${p.number} is already used by ports[${firstNumber}]`);
    else numbers.set(p.number, i);
  });
  const servicePorts: ReadonlySet<string> = new Set(names.keys());
  const endpoints = se.endpoints ?? [];

  switch (resolution) {
    case 'NONE':
      if (se.endpoints) ctx.field('endpoints').error('must not be set when resolution is NONE');
      if (se.workloadSelector)
        ctx.field('workloadSelector').warn('has no effect when resolution is NONE');
      break;
    case 'STATIC':
      endpoints.forEach((e, i) =>
        checkWorkloadEntry(e, ctx.at('endpoints', i), { servicePorts, allowFqdn: false }),
      );
      if (endpoints.length === 0 && !se.workloadSelector)
        ctx.warn(
          'resolution is STATIC but there are no endpoints and no workloadSelector, so the service has no endpoints (unless WorkloadEntries are added)',
        );
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0)
        hosts.forEach((h, i) => {
          if (h !== '*' && wildcardHostProblem(h) === undefined && fqdnProblem(h) !== undefined)
            ctx
              .at('hosts', i)
              .error(
                `must be a fully qualified domain name (no wildcard) when resolution is ${resolution} and no endpoints are given`,
              );
        });
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
        ctx
          .field('endpoints')
          .error('must have at most one endpoint when resolution is DNS_ROUND_ROBIN');
      endpoints.forEach((e, i) => checkDnsEndpoint(e, servicePorts, ctx.at('endpoints', i)));
      if (se.workloadSelector)
        ctx.field('workloadSelector').warn(`has no effect when resolution is ${resolution}`);
      if ((se.addresses?.length ?? 0) > 0 && hosts.length > 1) {
        const tcp = se.ports?.some((p) => TCP_PROTOCOLS.includes((p.protocol ?? '').toUpperCase()));
        if (tcp)
          ctx
            .field('hosts')
            .warn('with addresses and a TCP port, only one host can be told apart; list one host');
      }
      break;
    case 'DYNAMIC_DNS':
      break;
  }

  if (resolution !== 'NONE' && hosts.length > 1) {
    const i = (se.ports ?? []).findIndex((p) => {
      const proto = p.protocol ?? '';
      return !isHttpProtocol(proto) && !isTlsProtocol(proto);
    });
    if (i >= 0)
      ctx
        .at('ports', i)
        .error(
          `with more than one host and resolution ${resolution}, every port must be HTTP- or TLS-based so the hosts can be told apart (by Host header or SNI)`,
        );
  }
}

function checkDnsEndpoint(
  e: { readonly address?: string; readonly ports?: Readonly<Record<string, number>> },
  servicePorts: ReadonlySet<string>,
  ctx: ValidationContext,
): void {
  const address = e.address ?? '';
  if (!isIpAddress(address) && fqdnProblem(address) !== undefined)
    ctx
      .field('address')
      .error(
        `must be an IP address or a fully qualified domain name, not ${JSON.stringify(address)}`,
      );
  for (const name of Object.keys(e.ports ?? {}))
    if (!servicePorts.has(name))
      ctx
        .at('ports', name)
        .error(`port name ${JSON.stringify(name)} is not one of the ServiceEntry's ports`);
}

export const SERVICE_ENTRY = istioKind({
  group: 'networking.istio.io',
  kind: 'ServiceEntry',
  versions: NETWORKING_VERSIONS,
  plural: 'serviceentries',
  shortNames: ['se'],
  spec: serviceEntrySpec,
  check: (object, ctx) => {
    const spec = specOf<ServiceEntrySpec>(object);
    if (spec?.exportTo)
      checkExportTo(spec.exportTo, objectNamespace(object), ctx.at('spec', 'exportTo'), {
        allowNone: true,
      });
  },
});
