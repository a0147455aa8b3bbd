// State-of-the-world ADS: every response carries the full set of subscribed resources of
// its type, with a version and a nonce. A request that echoes the latest nonce is an ACK
// (or, with error_detail, a NACK); one echoing an older nonce is stale and ignored.
//
// Envoy repeats its whole subscription in every request (thousands of EDS names in every ACK),
// and the proxies of a mesh mostly subscribe to the same names: identical subscriptions are kept
// once, shared by every stream that sent them (see `Subscription`).
import { createHash } from 'node:crypto';
import {
  encodeResourceEntries,
  isWildcardType,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EncodedAny,
} from '@trellis/envoy';
import { Connection, StreamError, TypeState, type ConnectionContext } from './connection.js';
import { shareNames, type NameSet } from './names.js';
import type { ProxyInfo } from './proxy-info.js';
import type { ResourceSet } from './resource-source.js';

const INVALID_ARGUMENT = 3;

/**
 * The resource names of a request, immutable and shared: every stream whose last request named
 * the same list (byte for byte) holds the same object, so 500 proxies subscribed to the same
 * 3,000 EDS names keep one copy of the names, their set and their encoding instead of 500.
 */
export class Subscription {
  /** The names other than `*` (shared with every stream subscribed to them). */
  readonly explicit: NameSet;
  /** The request named `*`. */
  readonly star: boolean;
  /** The request named nothing (the legacy wildcard for LDS and CDS). */
  readonly empty: boolean;
  /** The encoded resource_names entries (see DiscoveryRequest.resourceNamesRaw), if known. */
  readonly raw: Buffer | undefined;
  constructor(requested: readonly string[], raw: Buffer | undefined) {
    this.star = requested.includes('*');
    this.empty = requested.length === 0;
    this.explicit = shareNames(this.star ? requested.filter((n) => n !== '*') : requested);
    this.raw = raw;
  }
  /** Whether `raw` is this subscription's encoding. */
  sameBytes(raw: Uint8Array | undefined): boolean {
    if (raw === undefined || this.raw === undefined) return false;
    return this.raw.equals(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  }
}

/** Subscriptions in use, by a digest of their encoding (or of their names); weakly held. */
const subscriptions = new Map<string, WeakRef<Subscription>>();
const dropSubscription = new FinalizationRegistry<string>((key) => {
  if (subscriptions.get(key)?.deref() === undefined) subscriptions.delete(key);
});
const EMPTY = new Subscription([], undefined);

/** The shared Subscription of a request's names (decoded only when not already known). */
function subscriptionOf(req: DiscoveryRequest): Subscription {
  const raw = req.resourceNamesRaw;
  let key: string;
  if (raw !== undefined) key = `b${createHash('sha256').update(raw).digest('base64')}`;
  else {
    const names = req.resourceNames ?? [];
    if (names.length === 0) return EMPTY;
    key = `n${createHash('sha256').update(names.join('\0')).digest('base64')}`;
  }
  const known = subscriptions.get(key)?.deref();
  if (known && (raw === undefined || known.sameBytes(raw))) return known;
  // Copied: the raw entries are a view of the whole request message.
  const sub = new Subscription(
    req.resourceNames ?? [],
    raw === undefined ? undefined : Buffer.from(raw),
  );
  subscriptions.set(key, new WeakRef(sub));
  dropSubscription.register(sub, key);
  return sub;
}

/** Per-type state of a SotW stream. */
export class SotwTypeState extends TypeState {
  /** Subscribed by sending no names (the legacy wildcard of LDS/CDS). */
  legacyWildcard = false;
  /** The names of the last request (shared with other streams; `names` is its explicit set). */
  subscription: Subscription | undefined;
  /** The subscribed names, sorted (shared with every stream of the same subscription). */
  sortedNames(): readonly string[] {
    return this.subscription?.explicit.sorted ?? [];
  }
}

/** A state-of-the-world ADS stream. */
export class SotwConnection extends Connection<SotwTypeState> {
  readonly protocol = 'sotw' as const;
  private readonly send: (r: DiscoveryResponse) => Promise<void>;

  constructor(
    id: string,
    proxy: ProxyInfo,
    ctx: ConnectionContext,
    send: (r: DiscoveryResponse) => Promise<void>,
  ) {
    super(id, proxy, ctx);
    this.send = send;
  }

  /** Handles one request from the proxy (already serialised by the caller). */
  async handleRequest(req: DiscoveryRequest): Promise<void> {
    const typeUrl = req.typeUrl;
    if (!typeUrl)
      throw new StreamError(INVALID_ARGUMENT, 'type_url is required in every ADS request');
    const nonce = req.responseNonce ?? '';
    const now = this.ctx.clock.now();
    let st = this.types.get(typeUrl);

    if (req.errorDetail) {
      // NACK: the proxy rejected the response with this nonce and keeps its previous config.
      if (st?.lastSent && nonce === st.lastSent.nonce) {
        this.recordNack(st, {
          version: st.lastSent.version,
          nonce,
          message: req.errorDetail.message ?? '',
          time: now,
        });
      } else {
        this.ctx.stats.staleNonces++;
      }
      return;
    }

    // An ACK repeating the subscription byte for byte needs no names decoded, nor hashed.
    const last = st?.subscription;
    const sub = last?.sameBytes(req.resourceNamesRaw) ? last : subscriptionOf(req);

    if (!st || nonce === '' || !st.lastSent) {
      // A first request for this type on this stream (a new subscription, a reconnect
      // carrying a nonce of an earlier server, or a re-request): always answered.
      const initial = !st;
      st ??= new SotwTypeState(typeUrl);
      this.types.set(typeUrl, st);
      this.subscribe(st, sub, initial);
      await this.respond(st, true, now);
      return;
    }

    if (nonce !== st.lastSent.nonce) {
      this.ctx.stats.staleNonces++;
      return;
    }

    this.recordAck(st, { version: req.versionInfo ?? '', nonce, time: now });
    // An ACK may also change the subscription (e.g. new RDS names): answer only then.
    if (this.subscribe(st, sub, false)) await this.respond(st, true, now);
  }

  /** Applies a request's resource names; returns whether the subscription changed. */
  private subscribe(st: SotwTypeState, sub: Subscription, initial: boolean): boolean {
    // Envoy repeats its whole EDS subscription (thousands of names) in every ACK, in the same
    // order: an identical list is the same shared Subscription, recognised at once.
    const last = st.subscription;
    st.subscription = sub;
    if (!initial && last === sub && !(sub.empty && !st.legacyWildcard)) return false;
    const legacy = sub.empty && isWildcardType(st.typeUrl) && (initial || st.legacyWildcard);
    const wildcard = sub.star || legacy;
    // Equal name sets are the same shared object.
    const changed = wildcard !== st.wildcard || st.names !== sub.explicit.set;
    st.wildcard = wildcard;
    st.legacyWildcard = legacy;
    st.names = sub.explicit.set;
    return changed;
  }

  protected async respond(st: SotwTypeState, force: boolean, requestedAt: number): Promise<void> {
    const names = st.wildcard ? undefined : st.sortedNames();
    if (names && names.length === 0 && !force) return;
    const set =
      names && names.length === 0
        ? { version: st.lastSent?.version ?? '', resources: new Map<string, EncodedAny>() }
        : await this.fetch(st.typeUrl, names);
    if (!set || this.closed) return;
    const last = st.lastSent;
    // A push that changes nothing for this proxy is not sent.
    if (!force && last && last.version === set.version) return;
    const body = responseBody(set, names, incrementalFrom(st, set, force), names && st.names);
    const nonce = this.ctx.nextNonce();
    await this.send({
      versionInfo: set.version,
      ...body,
      typeUrl: st.typeUrl,
      nonce,
      controlPlane: { identifier: this.ctx.controlPlaneId },
    });
    this.recordSent(
      st,
      { version: set.version, nonce, time: this.ctx.clock.now(), resources: body.count },
      requestedAt,
    );
  }
}

/**
 * The changed names, when the proxy holds the version the set is an increment of (sent and not
 * rejected) and the response may be partial; undefined means a full response.
 */
function incrementalFrom(
  st: SotwTypeState,
  set: ResourceSet,
  force: boolean,
): ReadonlySet<string> | undefined {
  const inc = set.incremental;
  const last = st.lastSent;
  if (force || !inc || !last || isWildcardType(st.typeUrl)) return undefined;
  if (last.version !== inc.from || st.lastNack?.nonce === last.nonce) return undefined;
  return inc.changed;
}

/** Sets known to hold exactly the names of a (stable, sorted) subscription array. */
const covered = new WeakMap<ReadonlyMap<string, EncodedAny>, WeakSet<readonly string[]>>();

/** Encoded `resources` entries of each shared group, computed once per group. */
const groupBytes = new WeakMap<ReadonlyMap<string, EncodedAny>, Buffer>();

function encodedGroup(group: ReadonlyMap<string, EncodedAny>): Buffer {
  let b = groupBytes.get(group);
  if (!b) {
    b = encodeResourceEntries([...group.keys()].sort().map((n) => group.get(n) as EncodedAny));
    groupBytes.set(group, b);
  }
  return b;
}

/** Whether `names` (sorted, distinct) is exactly the set's names (remembered per pair). */
function coversAll(set: ResourceSet, names: readonly string[]): boolean {
  if (names.length !== set.resources.size) return false;
  if (covered.get(set.resources)?.has(names)) return true;
  for (const n of names) if (!set.resources.has(n)) return false;
  let known = covered.get(set.resources);
  if (!known) covered.set(set.resources, (known = new WeakSet()));
  known.add(names);
  return true;
}

/** The resources of a response: shared groups as pre-encoded bytes where possible. */
function responseBody(
  set: ResourceSet,
  names: readonly string[] | undefined,
  changed: ReadonlySet<string> | undefined,
  subscribed: ReadonlySet<string> | undefined,
): { resources: EncodedAny[]; encodedResources?: Buffer[]; count: number } {
  if (changed) {
    const resources: EncodedAny[] = [];
    for (const n of [...changed].sort()) {
      if (subscribed && !subscribed.has(n)) continue;
      const r = set.resources.get(n);
      if (r) resources.push(r);
    }
    // Everything changed: the full response is the same and its shared bytes are encoded once.
    const all = resources.length === set.resources.size && set.groups !== undefined;
    if (!all) return { resources, count: resources.length };
  }
  if (set.groups && (!names || coversAll(set, names))) {
    return {
      resources: [],
      encodedResources: set.groups.map(encodedGroup),
      count: set.resources.size,
    };
  }
  const resources: EncodedAny[] = [];
  for (const n of names ?? [...set.resources.keys()].sort()) {
    const r = set.resources.get(n);
    if (r) resources.push(r);
  }
  return { resources, count: resources.length };
}
