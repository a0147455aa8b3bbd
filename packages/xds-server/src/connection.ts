// One ADS stream and the bookkeeping both protocol variants share.
//
// A Connection serialises everything that touches its state (requests from the proxy and
// pushes from the server) on one promise chain, so responses of one type are written in
// order and nonces are never interleaved.
import { PUSH_ORDER } from '@trellis/envoy';
import { NO_NAMES } from './names.js';
import type { ProxyInfo } from './proxy-info.js';
import type { ResourceSet, ResourceSource } from './resource-source.js';
import { XdsStats } from './stats.js';

/** Milliseconds since the epoch; injected so tests control time. */
export interface Clock {
  now(): number;
}

/** The last response sent for a type. */
export interface SentRecord {
  readonly version: string;
  readonly nonce: string;
  readonly time: number;
  /** Number of resources in the response. */
  readonly resources: number;
  /** Delta only: number of names in removed_resources. */
  readonly removed?: number;
}

/** The last ACK received for a type. */
export interface AckRecord {
  readonly version: string;
  readonly nonce: string;
  readonly time: number;
}

/** The last NACK received for a type: the rejected version and the proxy's reason. */
export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly time: number;
}

/** Per-type state of a stream, as exposed for debugging (`/debug/syncz`). */
export interface TypeStatus {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  /** Explicitly subscribed names (sorted). */
  readonly names: readonly string[];
  readonly lastSent: SentRecord | undefined;
  readonly lastAcked: AckRecord | undefined;
  readonly lastNack: NackRecord | undefined;
}

/** One connected stream, as exposed for debugging. */
export interface ConnectionStatus {
  readonly connectionId: string;
  readonly proxy: ProxyInfo;
  readonly protocol: 'sotw' | 'delta';
  readonly connectedAt: number;
  readonly types: readonly TypeStatus[];
}

/** Callbacks for the control plane (metrics, logs, convergence tracking). */
export interface XdsServerHooks {
  onConnect?(status: ConnectionStatus): void;
  onDisconnect?(status: ConnectionStatus): void;
  onAck?(proxy: ProxyInfo, typeUrl: string, ack: AckRecord): void;
  onNack?(proxy: ProxyInfo, typeUrl: string, nack: NackRecord): void;
}

/** Log sink: level, message, structured fields. */
export type XdsLogger = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** What a connection needs from its server. */
export interface ConnectionContext {
  readonly source: ResourceSource;
  readonly stats: XdsStats;
  readonly clock: Clock;
  readonly hooks: XdsServerHooks;
  readonly log: XdsLogger;
  readonly controlPlaneId: string;
  nextNonce(): string;
}

/** Per-type state common to both variants. */
export class TypeState {
  readonly typeUrl: string;
  wildcard = false;
  #names: ReadonlySet<string> = NO_NAMES.set;
  /** Explicitly subscribed names: read-only, as streams share one set among equal subscriptions. */
  get names(): ReadonlySet<string> {
    return this.#names;
  }
  set names(names: ReadonlySet<string>) {
    this.#names = names;
  }
  lastSent: SentRecord | undefined;
  lastAcked: AckRecord | undefined;
  lastNack: NackRecord | undefined;
  constructor(typeUrl: string) {
    this.typeUrl = typeUrl;
  }
  status(): TypeStatus {
    return {
      typeUrl: this.typeUrl,
      wildcard: this.wildcard,
      names: [...this.names].sort(),
      lastSent: this.lastSent,
      lastAcked: this.lastAcked,
      lastNack: this.lastNack,
    };
  }
}

interface PendingPush {
  types: Set<string> | 'all';
  reasons: Set<string>;
  requestedAt: number;
  waiters: (() => void)[];
}

/** A request to end the stream with a gRPC status (bad input from the client). */
export class StreamError extends Error {
  readonly grpcCode: number;
  constructor(grpcCode: number, message: string) {
    super(message);
    this.grpcCode = grpcCode;
    this.name = 'StreamError';
  }
}

/** The order types are pushed in: Istio's (CDS, EDS, LDS, RDS, SDS), then any others. */
export function pushOrder(typeUrls: Iterable<string>): string[] {
  const rank = (t: string): number => {
    const i = (PUSH_ORDER as readonly string[]).indexOf(t);
    return i < 0 ? PUSH_ORDER.length : i;
  };
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Base of the SotW and delta connections. */
export abstract class Connection<S extends TypeState = TypeState> {
  readonly id: string;
  readonly proxy: ProxyInfo;
  readonly connectedAt: number;
  abstract readonly protocol: 'sotw' | 'delta';
  protected readonly ctx: ConnectionContext;
  protected readonly types = new Map<string, S>();
  private chain: Promise<void> = Promise.resolve();
  private pending: PendingPush | undefined;
  /** Set by the push queue while this connection waits for a push slot. */
  queued = false;
  closed = false;

  constructor(id: string, proxy: ProxyInfo, ctx: ConnectionContext) {
    this.id = id;
    this.proxy = proxy;
    this.ctx = ctx;
    this.connectedAt = ctx.clock.now();
  }

  /** Runs `task` after every earlier task of this connection. */
  enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => (this.closed ? undefined : task()));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Records a push for this connection; returns a promise settled once it was sent. */
  addPush(typeUrls: 'all' | readonly string[], reason: string): Promise<void> {
    const now = this.ctx.clock.now();
    const p = (this.pending ??= {
      types: new Set(),
      reasons: new Set(),
      requestedAt: now,
      waiters: [],
    });
    if (typeUrls === 'all') p.types = 'all';
    else if (p.types !== 'all') for (const t of typeUrls) p.types.add(t);
    p.reasons.add(reason);
    return new Promise((resolve) => p.waiters.push(resolve));
  }

  /** Whether a push is waiting to run. */
  hasPendingPush(): boolean {
    return this.pending !== undefined;
  }

  /** Sends the pending push (called by the push queue, at most `limit` at once). */
  async runPendingPush(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    try {
      await this.enqueue(async () => {
        const subscribed = [...this.types.keys()];
        const wanted =
          p.types === 'all'
            ? subscribed
            : subscribed.filter((t) => (p.types as Set<string>).has(t));
        for (const typeUrl of pushOrder(wanted)) {
          if (this.closed) return;
          const st = this.types.get(typeUrl);
          if (st) await this.respond(st, false, p.requestedAt);
        }
      });
    } catch (e) {
      this.ctx.log('warn', 'push failed', { connection: this.id, error: String(e) });
    } finally {
      for (const w of p.waiters) w();
    }
  }

  /** Ends the connection's bookkeeping; pending push waiters are released. */
  close(): void {
    this.closed = true;
    const p = this.pending;
    this.pending = undefined;
    if (p) for (const w of p.waiters) w();
  }

  /**
   * Whether every type sent at or after `since` and every type sent at all is acknowledged at
   * the version sent, and something was sent since then: the proxy has converged on a change
   * made at `since`. Cheap: no copies (it runs on every ACK).
   */
  convergedSince(since: number): boolean {
    let sentSince = false;
    for (const st of this.types.values()) {
      const sent = st.lastSent;
      if (!sent) continue;
      if (st.lastAcked?.version !== sent.version) return false;
      if (sent.time >= since) sentSince = true;
    }
    return sentSince;
  }

  status(): ConnectionStatus {
    return {
      connectionId: this.id,
      proxy: this.proxy,
      protocol: this.protocol,
      connectedAt: this.connectedAt,
      types: pushOrder(this.types.keys()).map((t) => (this.types.get(t) as S).status()),
    };
  }

  /** Asks the source; a failure is logged and counted, and nothing is sent. */
  protected async fetch(
    typeUrl: string,
    names: readonly string[] | undefined,
  ): Promise<ResourceSet | undefined> {
    try {
      return await this.ctx.source.resources(this.proxy, typeUrl, names);
    } catch (e) {
      this.ctx.stats.sourceErrors++;
      this.ctx.log('error', 'resource source failed', {
        connection: this.id,
        typeUrl,
        error: e instanceof Error ? e.message : String(e),
      });
      return undefined;
    }
  }

  protected recordSent(st: S, record: SentRecord, requestedAt: number): void {
    st.lastSent = record;
    XdsStats.bump(this.ctx.stats.pushes, st.typeUrl);
    this.ctx.stats.pushTime.observe({}, Math.max(0, this.ctx.clock.now() - requestedAt) / 1000);
  }

  protected recordAck(st: S, ack: AckRecord): void {
    st.lastAcked = ack;
    XdsStats.bump(this.ctx.stats.acks, st.typeUrl);
    this.ctx.hooks.onAck?.(this.proxy, st.typeUrl, ack);
  }

  protected recordNack(st: S, nack: NackRecord): void {
    st.lastNack = nack;
    XdsStats.bump(this.ctx.stats.nacks, st.typeUrl);
    this.ctx.log('warn', 'proxy rejected config', {
      connection: this.id,
      typeUrl: st.typeUrl,
      version: nack.version,
      message: nack.message,
    });
    this.ctx.hooks.onNack?.(this.proxy, st.typeUrl, nack);
  }

  /** Computes and sends the response for one type (`force`: even if nothing changed). */
  protected abstract respond(st: S, force: boolean, requestedAt: number): Promise<void>;
}
