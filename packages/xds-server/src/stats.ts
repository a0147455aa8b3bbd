// Counters and a push-time histogram (a core Prometheus histogram the control plane registers).
import { Histogram } from '@trellis/core';

/** Push-time buckets in seconds (Istio's pilot_xds_push_time buckets). */
export const PUSH_TIME_BUCKETS_S: readonly number[] = [0.01, 0.1, 1, 3, 5, 10, 20, 30];

/** Counters of the xDS server (by type short name where it matters). */
export class XdsStats {
  /** Responses sent, by type URL. */
  readonly pushes = new Map<string, number>();
  /** NACKs received, by type URL. */
  readonly nacks = new Map<string, number>();
  /** ACKs received, by type URL. */
  readonly acks = new Map<string, number>();
  /** Requests ignored because their nonce was stale. */
  staleNonces = 0;
  /** Streams refused (malformed node, missing type URL...). */
  rejectedStreams = 0;
  /** Errors thrown by the resource source. */
  sourceErrors = 0;
  /** Responses written straight to their HTTP/2 stream (shared bytes not copied; see server.ts). */
  directWrites = 0;
  /** Time from a push (or request) to its response being written, in seconds. */
  readonly pushTime: Histogram;
  constructor(buckets: readonly number[] = PUSH_TIME_BUCKETS_S) {
    this.pushTime = new Histogram(
      'pilot_xds_push_time',
      'Time from a push or request to its response being written, in seconds.',
      [],
      buckets,
    );
  }
  /** Increments a counter of a map. */
  static bump(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}
