// Kinds of the telemetry.istio.io API group, and the message types the translation layer reads.
import type { KindInfo } from '../../kinds/kind.js';
import { TELEMETRY } from './telemetry.js';

export * from './telemetry.js';

export const TELEMETRY_KINDS: readonly KindInfo[] = [TELEMETRY];
