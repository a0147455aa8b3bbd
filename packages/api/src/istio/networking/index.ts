// Kinds of the networking.istio.io API group.
import type { KindInfo } from '../../kinds/kind.js';
import { GATEWAY } from './gateway.js';

export const NETWORKING_KINDS: readonly KindInfo[] = [GATEWAY];
