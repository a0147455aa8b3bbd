// State-of-the-world ADS: every response carries the full set of subscribed resources of
// its type, with a version and a nonce. A request that echoes the latest nonce is an ACK
// (or, with error_detail, a NACK); one echoing an older nonce is stale and ignored.
import {
  encodeResourceEntries,
  isWildcardType,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EncodedAny,
} from '@trellis/envoy';
import { Connection, StreamError, TypeState, type ConnectionContext } from './connection.js';
import type { ProxyInfo } from './proxy-info.js';
import type { ResourceSet } from './resource-source.js';

const INVALID_ARGUMENT = 3;

/** Per-type state of a SotW stream. */
export class SotwTypeState extends TypeState {
  /** Subscribed by sending no names (the legacy wildcard of LDS/CDS). */
  legacyWildcard = false;
  #sorted: readonly string[] | undefined;
  /** The names of the last request, as sent. */
  lastRequestNames: readonly string[] | undefined;
  /** Their encoded form (see DiscoveryRequest.resourceNamesRaw). */
  lastNamesRaw: Uint8Array | undefined;
  /** The subscribed names, sorted (kept until the subscription changes: EDS has thousands). */
  sortedNames(): readonly string[] {
    return (this.#sorted ??= [...this.names].sort());
  }
  namesChanged(): void {
    this.#sorted = undefined;
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
    // An ACK repeating the subscription byte for byte needs no names decoded.
    const raw = req.resourceNamesRaw;
    const last = st?.lastNamesRaw;
    const repeat =
      raw !== undefined &&
      last !== undefined &&
      Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).equals(last);
    const names = repeat ? (st?.lastRequestNames ?? []) : (req.resourceNames ?? []);

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

    if (!st || nonce === '' || !st.lastSent) {
      // A first request for this type on this stream (a new subscription, a reconnect
      // carrying a nonce of an earlier server, or a re-request): always answered.
      const initial = !st;
      st ??= new SotwTypeState(typeUrl);
      this.types.set(typeUrl, st);
      st.lastNamesRaw = raw;
      this.subscribe(st, names, initial);
      await this.respond(st, true, now);
      return;
    }

    if (nonce !== st.lastSent.nonce) {
      this.ctx.stats.staleNonces++;
      return;
    }

    this.recordAck(st, { version: req.versionInfo ?? '', nonce, time: now });
    // An ACK may also change the subscription (e.g. new RDS names): answer only then.
    st.lastNamesRaw = raw;
    if (this.subscribe(st, names, false)) await this.respond(st, true, now);
  }

  /** Applies a request's resource names; returns whether the subscription changed. */
  private subscribe(st: SotwTypeState, names: readonly string[], initial: boolean): boolean {
    // Envoy repeats its whole EDS subscription (thousands of names) in every ACK, in the same
    // order: an identical list is recognised without hashing a single name.
    // The list kept is the first of the identical ones, its names shared with every other
    // proxy's (interned): hundreds of proxies repeating thousands of names would otherwise
    // each hold their own copies.
    const last = st.lastRequestNames;
    if (!initial && last && sameList(last, names) && !(names.length === 0 && !st.legacyWildcard))
      return false;
    names = names.map(intern);
    st.lastRequestNames = names;
    const star = names.includes('*');
    const explicit = star ? names.filter((n) => n !== '*') : names;
    const legacy =
      names.length === 0 && isWildcardType(st.typeUrl) && (initial || st.legacyWildcard);
    const wildcard = star || legacy;
    let changed = wildcard !== st.wildcard || explicit.length !== st.names.size;
    if (!changed) for (const n of explicit) if (!st.names.has(n)) changed = true;
    st.wildcard = wildcard;
    st.legacyWildcard = legacy;
    if (changed) {
      st.names.clear();
      for (const n of explicit) st.names.add(n);
      st.namesChanged();
    }
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

/** Resource names seen in subscriptions, one string object per name (bounded). */
const interned = new Map<string, string>();
const MAX_INTERNED = 1_000_000;

function intern(name: string): string {
  const known = interned.get(name);
  if (known !== undefined) return known;
  if (interned.size < MAX_INTERNED) interned.set(name, name);
  return name;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
