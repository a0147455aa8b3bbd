// The messages between the multi-process tests and store.worker.ts, and the crash test's
// self-checking payload.
import { createHash } from 'node:crypto';
import type { JournalLimits } from '../src/index.js';

export type WorkerTask =
  /** Read-modify-write a counter in a ConfigMap `increments` times, retrying on conflict. */
  | {
      readonly mode: 'counter';
      readonly dir: string;
      readonly name: string;
      readonly increments: number;
    }
  /** Create, update and delete `count` times over a few ConfigMaps. */
  | {
      readonly mode: 'churn';
      readonly dir: string;
      readonly prefix: string;
      readonly count: number;
      readonly journal?: JournalLimits;
    }
  /** Update `objects` ConfigMaps with hashed payloads forever (until SIGKILLed). */
  | {
      readonly mode: 'crash';
      readonly dir: string;
      readonly objects: number;
      readonly payloadBytes: number;
      readonly journal: JournalLimits;
    }
  /** Take the store lock and keep it until killed. */
  | { readonly mode: 'hold-lock'; readonly dir: string };

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'locked' }
  | { readonly type: 'done'; readonly conflicts: number; readonly lastRev: string }
  | { readonly type: 'error'; readonly message: string };

/** The hash a crash-test object carries over its own content. */
export function payloadHash(name: string, seq: string, payload: string): string {
  return createHash('sha256').update(`${name}\n${seq}\n${payload}`).digest('hex');
}

/** The namespace of the crash test's objects. */
export const CRASH_NAMESPACE = 'crash';
