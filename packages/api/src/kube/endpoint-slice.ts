// EndpointSlice (discovery.k8s.io/v1): a set of endpoints of a Service (named by the label
// `kubernetes.io/service-name`). The registry takes a Service's endpoints from its slices when it
// has any. Validation follows Kubernetes' (pkg/apis/discovery/validation); unknown fields are kept.
import type { KindInfo } from '../kinds/kind.js';
import {
  checkDns1123Label,
  checkDns1123Subdomain,
  checkLabelValue,
  checkQualifiedName,
} from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import {
  anyValue,
  bool,
  enumOf,
  int,
  list,
  map,
  obj,
  req,
  str,
  type ObjectOf,
} from '../validation/schema.js';
import { isIP } from 'node:net';
import { PROTOCOLS } from './pod-spec.js';

const keep = { unknownFields: 'keep' } as const;

export const ENDPOINT_SLICE_ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;
/** discovery/v1 AddressType */
export type EndpointSliceAddressType = (typeof ENDPOINT_SLICE_ADDRESS_TYPES)[number];

const conditionsFields = { ready: bool(), serving: bool(), terminating: bool() };
/** discovery/v1 EndpointConditions: absent `ready` means ready. */
export type EndpointConditions = ObjectOf<typeof conditionsFields>;

const objectReferenceFields = {
  kind: str(),
  namespace: str(),
  name: str(),
  uid: str(),
  apiVersion: str(),
  resourceVersion: str(),
  fieldPath: str(),
};
/** core/v1 ObjectReference (an endpoint's `targetRef`, usually its Pod). */
export type ObjectReference = ObjectOf<typeof objectReferenceFields>;

const forZoneFields = { name: req(str({ check: (z, ctx) => checkLabelValue(z, ctx) })) };
const hintsFields = {
  forZones: list(obj(forZoneFields, keep), { maxItems: 8, check: uniqueNames('zone') }),
  forNodes: list(obj({ name: req(str()) }, keep), { maxItems: 8, check: uniqueNames('node') }),
};
/** discovery/v1 EndpointHints */
export type EndpointHints = ObjectOf<typeof hintsFields>;

const endpointFields = {
  addresses: req(list(str(), { minItems: 1, maxItems: 100 })),
  conditions: obj(conditionsFields, keep),
  hostname: str({ check: (h, ctx) => checkDns1123Label(h, ctx, 'hostname') }),
  targetRef: obj(objectReferenceFields, keep),
  nodeName: str({ check: (n, ctx) => checkDns1123Subdomain(n, ctx, 'node name') }),
  zone: str(),
  hints: obj(hintsFields, keep),
  deprecatedTopology: map(str()),
};
/** discovery/v1 Endpoint: one backend (its addresses, readiness and the object behind it). */
export type SliceEndpoint = ObjectOf<typeof endpointFields>;

const endpointPortFields = {
  name: str(),
  protocol: enumOf(PROTOCOLS),
  port: int({ min: 0, max: 65535 }),
  appProtocol: str({ check: (p, ctx) => checkQualifiedName(p, ctx, 'appProtocol') }),
};
/** discovery/v1 EndpointPort: a port every endpoint of the slice serves (named as the Service port). */
export type EndpointPort = ObjectOf<typeof endpointPortFields>;

const endpointSliceFields = {
  apiVersion: anyValue(),
  kind: anyValue(),
  metadata: anyValue(),
  addressType: req(enumOf(ENDPOINT_SLICE_ADDRESS_TYPES)),
  endpoints: list(obj(endpointFields, keep), { maxItems: 1000 }),
  ports: list(obj(endpointPortFields, keep), { check: checkPorts }),
};
/** discovery/v1 EndpointSlice (the whole object: it has no `spec`). */
export type EndpointSlice = ObjectOf<typeof endpointSliceFields>;

const endpointSlice = obj(endpointSliceFields, { ...keep, check: checkEndpointSlice });

function uniqueNames(what: string) {
  return (items: readonly { readonly name?: string }[], ctx: ValidationContext): void => {
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      if (item.name === undefined) return;
      const first = seen.get(item.name);
      if (first !== undefined)
        ctx
          .at(i, 'name')
          .error(`${what} ${JSON.stringify(item.name)} is already listed at [${first}]`);
      else seen.set(item.name, i);
    });
  };
}

/** Port names are DNS labels (or empty) and unique; an unnamed port counts once too. */
function checkPorts(ports: readonly EndpointPort[], ctx: ValidationContext): void {
  const seen = new Map<string, number>();
  ports.forEach((p, i) => {
    const name = p.name ?? '';
    if (name !== '') checkDns1123Label(name, ctx.at(i, 'name'), 'port name');
    const first = seen.get(name);
    if (first !== undefined)
      ctx
        .at(i, 'name')
        .error(
          name === ''
            ? `only one port may be unnamed; ports[${first}] is unnamed too`
            : `port name ${JSON.stringify(name)} is already used by ports[${first}]`,
        );
    else seen.set(name, i);
  });
}

/**
 * Addresses must be of the slice's address type; an IP may not be unspecified (0.0.0.0, ::).
 * Unlike Kubernetes, loopback addresses are accepted: local mode runs every workload on
 * 127.0.0.1.
 */
function checkEndpointSlice(slice: EndpointSlice, ctx: ValidationContext): void {
  const type = slice.addressType;
  slice.endpoints?.forEach((e, i) => {
    (e.addresses as readonly string[] | undefined)?.forEach((a, j) => {
      const c = ctx.at('endpoints', i, 'addresses', j);
      if (type === 'IPv4' && isIP(a) !== 4)
        c.error(`must be an IPv4 address (addressType is IPv4), not ${JSON.stringify(a)}`);
      else if (type === 'IPv6' && isIP(a) !== 6)
        c.error(`must be an IPv6 address (addressType is IPv6), not ${JSON.stringify(a)}`);
      else if (type !== 'FQDN' && UNSPECIFIED.test(a))
        c.error(`must not be the unspecified address ${a}`);
      else if (type === 'FQDN') {
        const before = c.errorCount;
        checkDns1123Subdomain(a, c, 'address');
        if (c.errorCount === before && !a.includes('.'))
          c.error(
            `address ${JSON.stringify(a)} must be a fully qualified domain name (at least two labels)`,
          );
      }
    });
  });
}

const UNSPECIFIED = /^(0\.0\.0\.0|::|(0{1,4}:){7}0{1,4})$/;

export const ENDPOINT_SLICE: KindInfo = {
  group: 'discovery.k8s.io',
  kind: 'EndpointSlice',
  versions: ['v1'],
  plural: 'endpointslices',
  singular: 'endpointslice',
  shortNames: [],
  namespaced: true,
  support: 'supported',
  nameRule: 'dns1123-subdomain',
  validate(object, ctx) {
    endpointSlice.validate(object, ctx);
  },
};
