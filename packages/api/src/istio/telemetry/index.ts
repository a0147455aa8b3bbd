// Kinds of the telemetry Istio API group.
import type { KindInfo } from '../../kinds/kind.js';

export const TELEMETRY_KINDS: readonly KindInfo[] = [];
