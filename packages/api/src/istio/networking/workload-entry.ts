// WorkloadEntry (networking.istio.io): a workload outside Kubernetes (a VM, a local process)
// with its address, ports and labels. Its shape is also a ServiceEntry endpoint and a
// WorkloadGroup template.
// Semantics: https://istio.io/latest/docs/reference/config/networking/workload-entry/
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import { isIpAddress } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import { map, obj, str, uint32, type ObjectOf } from '../../validation/schema.js';
import { checkIstioDnsLabel, checkPortNumber, fqdnProblem, labels } from '../common.js';

/** The prefix of a Unix domain socket address. */
export const UNIX_ADDRESS_PREFIX = 'unix://';

/** A Unix socket path after `unix://`: absolute and not a directory, or abstract (`@name`). */
export function unixAddressProblem(address: string): string | undefined {
  const path = address.slice(UNIX_ADDRESS_PREFIX.length);
  if (path === '') return 'a unix:// address needs a socket path';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/') || path.endsWith('/'))
    return `${JSON.stringify(path)} must be an absolute path to a socket file (or an abstract "@name")`;
  return undefined;
}

const workloadEntryFields = {
  address: str({ maxLength: 256 }),
  ports: map(uint32({ check: checkPortNumber }), {
    key: (name, ctx) => checkIstioDnsLabel(name, ctx, 'port name'),
  }),
  labels,
  network: str({ maxLength: 2048 }),
  locality: str({ maxLength: 2048 }),
  weight: uint32(),
  serviceAccount: str({ maxLength: 253 }),
};
/** istio.networking.v1.WorkloadEntry: a workload's address, named ports, labels and identity. */
export type WorkloadEntrySpec = ObjectOf<typeof workloadEntryFields>;
/** The WorkloadEntry shape without rules that depend on where it is used. */
export const workloadEntryShape = obj(workloadEntryFields);

export interface WorkloadEntryRules {
  /** Port names the enclosing ServiceEntry declares (endpoint ports must use them). */
  readonly servicePorts?: ReadonlySet<string>;
  /** Whether a DNS name is allowed as address (not for STATIC ServiceEntry endpoints). */
  readonly allowFqdn: boolean;
}

/** Istio's WorkloadEntry rules: an address (or a network), IP/FQDN/Unix socket, declared ports. */
export function checkWorkloadEntry(
  we: WorkloadEntrySpec,
  ctx: ValidationContext,
  rules: WorkloadEntryRules,
): void {
  const address = we.address ?? '';
  if (address === '') {
    if (!we.network) return ctx.field('address').error('is required unless network is set');
    ctx
      .field('address')
      .warn(`is not set; the workload is reached through network ${JSON.stringify(we.network)}`);
  }
  const unix = address.startsWith(UNIX_ADDRESS_PREFIX);
  if (unix) {
    const p = unixAddressProblem(address);
    if (p) ctx.field('address').error(p);
    if (we.ports && Object.keys(we.ports).length > 0)
      ctx.field('ports').error('must not be set for a Unix domain socket address');
  } else if (address !== '' && !isIpAddress(address)) {
    if (!rules.allowFqdn)
      ctx
        .field('address')
        .error(`must be an IP address (or unix:// socket) here, not ${JSON.stringify(address)}`);
    else if (fqdnProblem(address) !== undefined)
      ctx
        .field('address')
        .error(
          `must be an IP address, a fully qualified domain name or a unix:// socket, not ${JSON.stringify(address)}`,
        );
  }
  if (rules.servicePorts) {
    for (const name of Object.keys(we.ports ?? {}))
      if (!rules.servicePorts.has(name))
        ctx
          .at('ports', name)
          .error(`port name ${JSON.stringify(name)} is not one of the ServiceEntry's ports`);
    if (unix && rules.servicePorts.size !== 1)
      ctx.error('a Unix domain socket endpoint needs exactly one ServiceEntry port');
  }
}

/** A standalone WorkloadEntry spec (FQDN addresses allowed, ports not tied to a service). */
export const workloadEntrySpec = obj(workloadEntryFields, {
  check: (we, ctx) => checkWorkloadEntry(we, ctx, { allowFqdn: true }),
});

export const WORKLOAD_ENTRY = istioKind({
  group: 'networking.istio.io',
  kind: 'WorkloadEntry',
  versions: NETWORKING_VERSIONS,
  plural: 'workloadentries',
  shortNames: ['we'],
  spec: workloadEntrySpec,
});
