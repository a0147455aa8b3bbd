// Kinds of the security.istio.io API group, and the message types the translation layer reads.
import type { KindInfo } from '../../kinds/kind.js';
import { AUTHORIZATION_POLICY } from './authorization-policy.js';
import { PEER_AUTHENTICATION } from './peer-authentication.js';
import { REQUEST_AUTHENTICATION } from './request-authentication.js';

export * from './authorization-policy.js';
export * from './peer-authentication.js';
export * from './request-authentication.js';
export * from './policy-target.js';

export const SECURITY_KINDS: readonly KindInfo[] = [
  PEER_AUTHENTICATION,
  AUTHORIZATION_POLICY,
  REQUEST_AUTHENTICATION,
];
