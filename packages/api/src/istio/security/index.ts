// Kinds of the security Istio API group.
import type { KindInfo } from '../../kinds/kind.js';

export const SECURITY_KINDS: readonly KindInfo[] = [];
