// Incremental (delta) ADS: the server tracks which version of each resource the proxy
// has, and sends only what changed plus the names that went away. A NACK undoes the
// versions the rejected response would have given the proxy, so they are sent again.
import { createHash } from 'node:crypto';
import {
  isWildcardType,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type EncodedAny,
  type Resource,
} from '@trellis/envoy';
import { Connection, StreamError, TypeState, type ConnectionContext } from './connection.js';
import type { ProxyInfo } from './proxy-info.js';

const INVALID_ARGUMENT = 3;

const hashes = new WeakMap<EncodedAny, string>();

/** A resource's version for delta xDS: a hash of its encoded bytes (cached per object). */
export function resourceVersion(any: EncodedAny): string {
  let v = hashes.get(any);
  if (v === undefined) {
    v = createHash('sha256').update(any.value).digest('base64url').slice(0, 16);
    hashes.set(any, v);
  }
  return v;
}

interface Change {
  readonly before: string | undefined;
  readonly after: string | undefined;
}

interface PendingResponse {
  readonly seq: number;
  readonly version: string;
  readonly changes: ReadonlyMap<string, Change>;
}

/** Per-type state of a delta stream. */
export class DeltaTypeState extends TypeState {
  /** What the proxy has: name → version (as far as the server knows). */
  readonly clientVersions = new Map<string, string>();
  /** Subscribed names already reported as absent (sent in removed_resources). */
  readonly absentNotified = new Set<string>();
  /** Responses not yet ACKed or NACKed, by nonce. */
  readonly pending = new Map<string, PendingResponse>();
  seq = 0;
}

/** An incremental ADS stream. */
export class DeltaConnection extends Connection<DeltaTypeState> {
  readonly protocol = 'delta' as const;
  private readonly send: (r: DeltaDiscoveryResponse) => Promise<void>;

  constructor(
    id: string,
    proxy: ProxyInfo,
    ctx: ConnectionContext,
    send: (r: DeltaDiscoveryResponse) => Promise<void>,
  ) {
    super(id, proxy, ctx);
    this.send = send;
  }

  /** The versions the server believes the proxy holds for a type (for tests and debugging). */
  clientVersions(typeUrl: string): ReadonlyMap<string, string> {
    return this.types.get(typeUrl)?.clientVersions ?? new Map();
  }

  /** Handles one request from the proxy (already serialised by the caller). */
  async handleRequest(req: DeltaDiscoveryRequest): Promise<void> {
    const typeUrl = req.typeUrl;
    if (!typeUrl)
      throw new StreamError(INVALID_ARGUMENT, 'type_url is required in every delta ADS request');
    const now = this.ctx.clock.now();
    let st = this.types.get(typeUrl);
    const first = st === undefined;
    st ??= new DeltaTypeState(typeUrl);
    this.types.set(typeUrl, st);

    const nonce = req.responseNonce ?? '';
    if (nonce !== '') this.acknowledge(st, nonce, req, now);

    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    if (first) {
      if (subscribe.length === 0 && isWildcardType(typeUrl)) st.wildcard = true;
      // Reconnect: the proxy says what it already has, so only differences are sent.
      for (const [name, version] of Object.entries(req.initialResourceVersions ?? {}))
        st.clientVersions.set(name, version);
    }
    let added = false;
    for (const name of subscribe) {
      if (name === '*') {
        if (!st.wildcard) added = true;
        st.wildcard = true;
      } else if (!st.names.has(name)) {
        st.names.add(name);
        added = true;
      }
    }
    for (const name of unsubscribe) {
      if (name === '*') {
        st.wildcard = false;
        for (const n of [...st.clientVersions.keys()])
          if (!st.names.has(n)) st.clientVersions.delete(n);
      } else {
        st.names.delete(name);
        st.absentNotified.delete(name);
        if (!st.wildcard) st.clientVersions.delete(name);
      }
    }
    if (first || added) await this.respond(st, first, now);
  }

  private acknowledge(
    st: DeltaTypeState,
    nonce: string,
    req: DeltaDiscoveryRequest,
    now: number,
  ): void {
    const p = st.pending.get(nonce);
    if (!p) {
      this.ctx.stats.staleNonces++;
      return;
    }
    // Responses are processed in order: this one settles every earlier one too.
    for (const [n, q] of st.pending) if (q.seq <= p.seq) st.pending.delete(n);
    if (req.errorDetail) {
      for (const [name, c] of p.changes) {
        if (st.clientVersions.get(name) !== c.after) continue; // changed again since
        if (c.before === undefined) st.clientVersions.delete(name);
        else st.clientVersions.set(name, c.before);
      }
      this.recordNack(st, {
        version: p.version,
        nonce,
        message: req.errorDetail.message ?? '',
        time: now,
      });
    } else {
      this.recordAck(st, { version: p.version, nonce, time: now });
    }
  }

  protected async respond(st: DeltaTypeState, force: boolean, requestedAt: number): Promise<void> {
    const names = st.wildcard ? undefined : [...st.names].sort();
    if (names && names.length === 0 && !force && st.clientVersions.size === 0) return;
    const set =
      names && names.length === 0
        ? {
            version: st.lastSent?.version ?? '',
            resources: new Map<string, EncodedAny>(),
            versions: undefined,
          }
        : await this.fetch(st.typeUrl, names);
    if (!set || this.closed) return;
    const wanted = (name: string): boolean => st.wildcard || st.names.has(name);
    const resources: Resource[] = [];
    const removed = new Set<string>();
    const changes = new Map<string, Change>();
    for (const name of [...set.resources.keys()].sort()) {
      if (!wanted(name)) continue;
      const any = set.resources.get(name) as EncodedAny;
      const version = set.versions?.get(name) ?? resourceVersion(any);
      const before = st.clientVersions.get(name);
      if (before === version) continue;
      resources.push({ name, version, resource: any });
      changes.set(name, { before, after: version });
    }
    for (const [name, before] of st.clientVersions) {
      if (!set.resources.has(name) || !wanted(name)) {
        removed.add(name);
        changes.set(name, { before, after: undefined });
      }
    }
    for (const name of st.names) {
      if (
        !set.resources.has(name) &&
        !st.clientVersions.has(name) &&
        !st.absentNotified.has(name)
      ) {
        removed.add(name); // tells the proxy a subscribed resource does not exist
        st.absentNotified.add(name);
      }
    }
    if (!force && resources.length === 0 && removed.size === 0) return;
    for (const [name, c] of changes) {
      if (c.after === undefined) {
        st.clientVersions.delete(name);
        if (st.names.has(name)) st.absentNotified.add(name);
      } else {
        st.clientVersions.set(name, c.after);
        st.absentNotified.delete(name);
      }
    }
    const nonce = this.ctx.nextNonce();
    st.pending.set(nonce, { seq: ++st.seq, version: set.version, changes });
    const removedResources = [...removed].sort();
    await this.send({
      systemVersionInfo: set.version,
      resources,
      typeUrl: st.typeUrl,
      removedResources,
      nonce,
      controlPlane: { identifier: this.ctx.controlPlaneId },
    });
    this.recordSent(
      st,
      {
        version: set.version,
        nonce,
        time: this.ctx.clock.now(),
        resources: resources.length,
        removed: removedResources.length,
      },
      requestedAt,
    );
  }
}
