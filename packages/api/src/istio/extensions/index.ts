// Kinds of the extensions Istio API group.
import type { KindInfo } from '../../kinds/kind.js';

export const EXTENSIONS_KINDS: readonly KindInfo[] = [];
