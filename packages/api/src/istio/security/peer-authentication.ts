// PeerAuthentication (security.istio.io): which mutual TLS mode a workload accepts, per port if needed.
// Semantics: https://istio.io/latest/docs/reference/config/security/peer_authentication/
import { istioKind, SECURITY_VERSIONS } from '../../kinds/istio-kind.js';
import type { ValidationContext } from '../../validation/problem.js';
import { enumOf, map, obj, type ObjectOf } from '../../validation/schema.js';
import { istioTypeWorkloadSelector } from '../common.js';
import { hasSelectorLabels } from './policy-target.js';

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
/** istio.security.v1beta1.PeerAuthentication.MutualTLS.Mode */
export type MutualTlsMode = (typeof MTLS_MODES)[number];

const mutualTlsFields = { mode: enumOf(MTLS_MODES) };
/** istio.security.v1beta1.PeerAuthentication.MutualTLS: the mTLS mode for a workload or a port. */
export type MutualTls = ObjectOf<typeof mutualTlsFields>;
export const mutualTls = obj(mutualTlsFields);

/** A portLevelMtls key: a port number from 1 to 65535, written as a map key. */
function checkPortKey(key: string, ctx: ValidationContext): void {
  const n = /^\d+$/.test(key) ? Number(key) : NaN;
  if (!(n >= 1 && n <= 65535))
    ctx.error(`key must be a port number between 1 and 65535, not ${JSON.stringify(key)}`);
}

const peerAuthenticationFields = {
  selector: istioTypeWorkloadSelector,
  mtls: mutualTls,
  portLevelMtls: map(mutualTls, { key: checkPortKey }),
};
/** istio.security.v1beta1.PeerAuthentication: the spec of a PeerAuthentication. */
export type PeerAuthenticationSpec = ObjectOf<typeof peerAuthenticationFields>;
export const peerAuthenticationSpec = obj(peerAuthenticationFields, {
  check: checkPeerAuthentication,
});

function checkPeerAuthentication(spec: PeerAuthenticationSpec, ctx: ValidationContext): void {
  if (spec.portLevelMtls === undefined) return;
  const c = ctx.field('portLevelMtls');
  if (Object.keys(spec.portLevelMtls).length === 0) c.error('must name at least one port when set');
  else if (!hasSelectorLabels(spec.selector))
    c.error(
      'requires a selector with matchLabels: a mesh-wide or namespace-wide policy cannot set port-level mTLS',
    );
}

export const PEER_AUTHENTICATION = istioKind({
  group: 'security.istio.io',
  kind: 'PeerAuthentication',
  versions: SECURITY_VERSIONS,
  plural: 'peerauthentications',
  shortNames: ['pa'],
  spec: peerAuthenticationSpec,
});
