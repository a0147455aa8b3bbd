// The Kubernetes kinds the local mode needs.
import type { KindInfo } from '../kinds/kind.js';

export const KUBE_KINDS: readonly KindInfo[] = [];
