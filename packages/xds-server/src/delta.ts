// Incremental (delta) ADS: the server tracks which version of each resource the proxy
// has, and sends only what changed plus the names that went away. A NACK undoes the
// versions the rejected response would have given the proxy, so they are sent again.
// A proxy in sync with a set the source shares among proxies is tracked by that set alone
// (no per-resource map), and an increment of that set is compared in its changed names only.
import { createHash } from 'node:crypto';
import {
  isWildcardType,
  type DeltaDiscoveryRequest,
  type EncodedAny,
  type Resource,
} from '@trellis/envoy';
import { Connection, StreamError, TypeState, type ConnectionContext } from './connection.js';
import {
  encodeDeltaResponse,
  encodeResourceEntries,
  frameMessage,
  type DeltaResponseOut,
} from './delta-wire.js';
import { NO_NAMES, shareNames, type NameSet } from './names.js';
import type { ProxyInfo } from './proxy-info.js';
import type { ResourceSet } from './resource-source.js';

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

/** The `resources` entries of each shared group (versions hashed from bytes), encoded once. */
const groupEntries = new WeakMap<ReadonlyMap<string, EncodedAny>, Buffer>();

function encodedGroup(group: ReadonlyMap<string, EncodedAny>): Buffer {
  let b = groupEntries.get(group);
  if (!b) {
    b = encodeResourceEntries(
      [...group.keys()].sort().map((name) => {
        const any = group.get(name) as EncodedAny;
        return { name, version: resourceVersion(any), resource: any };
      }),
    );
    groupEntries.set(group, b);
  }
  return b;
}

/** Resources at least this large are sent as cached entries (see entryBytes). */
const LARGE = 16 * 1024;

/** The encoded `resources` entry of a large resource, kept with it (one per name and version). */
const entries = new WeakMap<
  EncodedAny,
  { readonly name: string; readonly version: string; readonly bytes: Buffer }
>();

/**
 * A large resource sent to many proxies (a namespace's route configuration, ~0.7 MB with 1,000
 * virtual hosts) is encoded as a response entry once and written as the same bytes to each,
 * instead of being copied into every proxy's response.
 */
function entryBytes(r: Resource): Buffer | undefined {
  const any = r.resource;
  const name = r.name ?? '';
  const version = r.version ?? '';
  if (!any || any.value.byteLength < LARGE || r.ttl !== undefined || (r.aliases?.length ?? 0) > 0)
    return undefined;
  const known = entries.get(any);
  if (known && known.name === name && known.version === version) return known.bytes;
  const bytes = encodeResourceEntries([{ name, version, resource: any }]);
  entries.set(any, { name, version, bytes });
  return bytes;
}

/** A resource's version in a set: the source's, or a hash of its bytes. */
function versionIn(set: ResourceSet, name: string): string | undefined {
  const any = set.resources.get(name);
  if (any === undefined) return undefined;
  return set.versions?.get(name) ?? resourceVersion(any);
}

/**
 * A response not yet ACKed or NACKed: what it changed, as parallel arrays (a full push to
 * hundreds of proxies holds one per proxy until the ACKs arrive), so a NACK can undo it.
 */
interface PendingResponse {
  readonly seq: number;
  readonly version: string;
  readonly names: readonly string[];
  readonly before: readonly (string | undefined)[];
  readonly after: readonly (string | undefined)[];
  /** The whole of this set was sent to a proxy holding nothing (see wholeDiff). */
  readonly whole?: ResourceSet;
}

/**
 * Per-type state of a delta stream. What the proxy holds is kept in one of two forms:
 * - `held`: exactly the resources of this set that the subscription wants (the names or the
 *   wildcard, unchanged since), each at its version in the set. The set is the source's, shared
 *   with every proxy sent the same one, so a synced proxy costs no per-resource memory;
 * - otherwise `versions`: name → version, after a NACK, a subscription change or a reconnect
 *   with `initial_resource_versions`, until the next full comparison brings it back to `held`.
 */
export class DeltaTypeState extends TypeState {
  /** The subscribed names, shared with every stream subscribed to exactly these. */
  #names: NameSet = NO_NAMES;
  held: ResourceSet | undefined;
  /** What the proxy has when `held` is undefined: name → version. */
  readonly versions = new Map<string, string>();
  /** Subscribed names already reported as absent (sent in removed_resources). */
  readonly absentNotified = new Set<string>();
  /** Responses not yet ACKed or NACKed, by nonce. */
  readonly pending = new Map<string, PendingResponse>();
  seq = 0;

  override get names(): ReadonlySet<string> {
    return this.#names.set;
  }
  override set names(names: ReadonlySet<string>) {
    this.#names = shareNames(names);
  }

  /** The subscribed names, sorted (shared, as the set is). */
  sortedNames(): readonly string[] {
    return this.#names.sorted;
  }

  wants(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** The version of a resource the proxy holds, if any. */
  holding(name: string): string | undefined {
    const h = this.held;
    if (h === undefined) return this.versions.get(name);
    return this.wants(name) ? versionIn(h, name) : undefined;
  }

  /** Every held resource (name → version), without changing the form it is kept in. */
  *holdings(): Generator<[string, string]> {
    const h = this.held;
    if (h === undefined) {
      yield* this.versions;
      return;
    }
    for (const name of h.resources.keys())
      if (this.wants(name)) yield [name, versionIn(h, name) as string];
  }

  /** Switches to the per-resource form (before the subscription or a held version changes). */
  materialize(): void {
    if (this.held === undefined) return;
    this.versions.clear();
    for (const [n, v] of this.holdings()) this.versions.set(n, v);
    this.held = undefined;
  }

  /** The proxy now holds exactly `set` as the subscription wants it. */
  holdSet(set: ResourceSet): void {
    this.held = set;
    this.versions.clear();
  }
}

/**
 * One increment of a set (from the version `from`) as a response, built once and sent as the
 * same bytes, with the same nonce, to every proxy that holds `from` and subscribes to every
 * changed name: an endpoint change pushed to hundreds of proxies is encoded once, as istiod's
 * nonces are per push. Nonces need only be unique within a stream, and a stream is sent a given
 * step at most once (it then holds the new set).
 */
interface SharedStep {
  readonly from: string;
  readonly version: string;
  /** Resources sent; 0: the step changes nothing for such a proxy (nothing is sent). */
  readonly count: number;
  readonly names: readonly string[];
  readonly before: readonly (string | undefined)[];
  readonly after: readonly (string | undefined)[];
  readonly nonce: string;
  readonly response: DeltaResponseOut;
}

/** Shared steps per server (its nonces and identifier), per set, by the version stepped from. */
const sharedSteps = new WeakMap<ConnectionContext, WeakMap<ResourceSet, SharedStep[]>>();

/** An incremental ADS stream. */
export class DeltaConnection extends Connection<DeltaTypeState> {
  readonly protocol = 'delta' as const;
  private readonly send: (r: DeltaResponseOut) => Promise<void>;

  constructor(
    id: string,
    proxy: ProxyInfo,
    ctx: ConnectionContext,
    send: (r: DeltaResponseOut) => Promise<void>,
  ) {
    super(id, proxy, ctx);
    this.send = send;
  }

  /** The versions the server believes the proxy holds for a type (for tests and debugging). */
  clientVersions(typeUrl: string): ReadonlyMap<string, string> {
    const st = this.types.get(typeUrl);
    return st ? new Map(st.holdings()) : new Map();
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
        st.versions.set(name, version);
    }
    // What the proxy holds is read through the subscription: switch to the per-resource form
    // before the subscription changes.
    if (subscribe.length > 0 || unsubscribe.length > 0) st.materialize();
    let added = false;
    if (subscribe.length > 0 || unsubscribe.length > 0) {
      // The set held is shared with other streams: changed on a copy, then shared again.
      const names = new Set(st.names);
      for (const name of subscribe) {
        if (name === '*') {
          if (!st.wildcard) added = true;
          st.wildcard = true;
        } else if (!names.has(name)) {
          names.add(name);
          added = true;
        }
      }
      for (const name of unsubscribe) {
        if (name === '*') {
          st.wildcard = false;
          for (const n of [...st.versions.keys()]) if (!names.has(n)) st.versions.delete(n);
        } else {
          names.delete(name);
          st.absentNotified.delete(name);
          if (!st.wildcard) st.versions.delete(name);
        }
      }
      st.names = names;
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
      st.materialize();
      if (p.whole)
        for (const name of p.whole.resources.keys())
          if (st.versions.get(name) === versionIn(p.whole, name)) st.versions.delete(name);
      for (let i = 0; i < p.names.length; i++) {
        const name = p.names[i] as string;
        if (st.versions.get(name) !== p.after[i]) continue; // changed again since
        const before = p.before[i];
        if (before === undefined) st.versions.delete(name);
        else st.versions.set(name, before);
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
    const names = st.wildcard ? undefined : st.sortedNames();
    if (names && names.length === 0 && !force && (st.held !== undefined || st.versions.size === 0))
      return;
    const set: ResourceSet | undefined =
      names && names.length === 0
        ? { version: st.lastSent?.version ?? '', resources: new Map<string, EncodedAny>() }
        : await this.fetch(st.typeUrl, names);
    if (!set || this.closed) return;
    const held = st.held;
    // The proxy was given this very set: nothing to compare.
    if (!force && held && held.version === set.version && held.resources === set.resources) return;
    const inc = set.incremental;
    if (!force && held && inc && held.version === inc.from) {
      const step = this.sharedStep(st, held, set, inc.changed);
      if (step) {
        st.holdSet(set);
        if (st.absentNotified.size > 0) for (const n of step.names) st.absentNotified.delete(n);
        if (step.count === 0) return;
        st.pending.set(step.nonce, {
          seq: ++st.seq,
          version: step.version,
          names: step.names,
          before: step.before,
          after: step.after,
        });
        await this.send(step.response);
        this.recordSent(
          st,
          {
            version: step.version,
            nonce: step.nonce,
            time: this.ctx.clock.now(),
            resources: step.count,
            removed: 0,
          },
          requestedAt,
        );
        return;
      }
    }
    const whole = wholeDiff(st, set);
    const diff =
      whole ??
      (!force && held && inc && held.version === inc.from
        ? stepDiff(st, held, set, inc.changed)
        : undefined) ??
      fullDiff(st, set);
    // Either way the proxy now holds (or is being sent) exactly the set as subscribed.
    for (const name of diff.removed) if (st.names.has(name)) st.absentNotified.add(name);
    for (const r of diff.resources) st.absentNotified.delete(r.name ?? '');
    if (whole && st.absentNotified.size > 0)
      for (const name of set.resources.keys()) st.absentNotified.delete(name);
    for (const name of diff.absent) st.absentNotified.add(name);
    st.holdSet(set);
    const removedResources = [...diff.removed, ...diff.absent].sort();
    const count = whole ? set.resources.size : diff.resources.length;
    if (!force && count === 0 && removedResources.length === 0) return;
    const nonce = this.ctx.nextNonce();
    st.pending.set(nonce, {
      seq: ++st.seq,
      version: set.version,
      names: diff.names,
      before: diff.before,
      after: diff.after,
      ...(whole ? { whole: set } : {}),
    });
    // The whole set: its shared groups go as their entries, encoded once for every proxy; large
    // resources go as their cached entries too.
    const small: Resource[] = [];
    const encoded: Buffer[] = whole ? (set.groups ?? []).map(encodedGroup) : [];
    for (const r of diff.resources) {
      const b = entryBytes(r);
      if (b) encoded.push(b);
      else small.push(r);
    }
    await this.send({
      systemVersionInfo: set.version,
      resources: small,
      ...(encoded.length > 0 ? { encodedResources: encoded } : {}),
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
        resources: count,
        removed: removedResources.length,
      },
      requestedAt,
    );
  }
  /**
   * The shared response for stepping from `held` to `set` (an increment of it in `changed`), when
   * it is the same for every proxy holding `held`: the proxy subscribes to every changed name.
   * Undefined otherwise (the response is then built for this proxy alone).
   */
  private sharedStep(
    st: DeltaTypeState,
    held: ResourceSet,
    set: ResourceSet,
    changed: ReadonlySet<string>,
  ): SharedStep | undefined {
    if (!st.wildcard) for (const n of changed) if (!st.names.has(n)) return undefined;
    let bySet = sharedSteps.get(this.ctx);
    if (!bySet) sharedSteps.set(this.ctx, (bySet = new WeakMap()));
    let steps = bySet.get(set);
    const known = steps?.find((x) => x.from === held.version);
    if (known) return known;
    const d = stepDiff(st, held, set, changed);
    if (!d) return undefined;
    const small: Resource[] = [];
    const encoded: Buffer[] = [];
    for (const r of d.resources) {
      const b = entryBytes(r);
      if (b) encoded.push(b);
      else small.push(r);
    }
    const nonce = this.ctx.nextNonce();
    const head: DeltaResponseOut = {
      systemVersionInfo: set.version,
      resources: small,
      ...(encoded.length > 0 ? { encodedResources: encoded } : {}),
      typeUrl: st.typeUrl,
      removedResources: [],
      nonce,
      controlPlane: { identifier: this.ctx.controlPlaneId },
    };
    const step: SharedStep = {
      from: held.version,
      version: set.version,
      count: d.resources.length,
      names: d.names,
      before: d.before,
      after: d.after,
      nonce,
      response: { ...head, framed: frameMessage(encodeDeltaResponse(head)) },
    };
    if (!steps) bySet.set(set, (steps = []));
    steps.push(step);
    return step;
  }
}

/** What a response changes for one proxy. */
interface Diff {
  /** Resources to send, sorted by name. */
  readonly resources: Resource[];
  /** Names the proxy holds and must drop. */
  readonly removed: string[];
  /** Subscribed names that do not exist, not yet reported. */
  readonly absent: string[];
  /** Every name changed, with the versions before and after (undefined: not held). */
  readonly names: string[];
  readonly before: (string | undefined)[];
  readonly after: (string | undefined)[];
}

function emptyDiff(): Diff {
  return { resources: [], removed: [], absent: [], names: [], before: [], after: [] };
}

function change(
  d: Diff,
  name: string,
  before: string | undefined,
  after: string | undefined,
): void {
  d.names.push(name);
  d.before.push(before);
  d.after.push(after);
}

const byName = (a: Resource, b: Resource): number => {
  const x = a.name ?? '';
  const y = b.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * The proxy holds `held` and `set` is an increment of it: only the changed names are compared.
 * Undefined when a changed name is missing from the set (not an increment after all).
 */
function stepDiff(
  st: DeltaTypeState,
  held: ResourceSet,
  set: ResourceSet,
  changed: ReadonlySet<string>,
): Diff | undefined {
  const d = emptyDiff();
  for (const name of changed) {
    if (!st.wants(name)) continue;
    const any = set.resources.get(name);
    if (any === undefined) return undefined;
    const version = set.versions?.get(name) ?? resourceVersion(any);
    const before = versionIn(held, name);
    if (before === version) continue;
    d.resources.push({ name, version, resource: any });
    change(d, name, before, version);
  }
  d.resources.sort(byName);
  return d;
}

/**
 * A proxy that holds nothing and wants every resource of a grouped set (a new proxy, the initial
 * sync of a mesh) is sent the whole set: no per-resource comparison, no per-resource objects.
 * The Diff lists nothing but the subscribed names that do not exist; undefined otherwise.
 */
function wholeDiff(st: DeltaTypeState, set: ResourceSet): Diff | undefined {
  if (st.held !== undefined || st.versions.size > 0) return undefined;
  if (!set.groups || set.versions !== undefined || set.resources.size === 0) return undefined;
  if (!st.wildcard)
    for (const name of set.resources.keys()) if (!st.names.has(name)) return undefined;
  const d = emptyDiff();
  for (const name of st.names) {
    if (!set.resources.has(name) && !st.absentNotified.has(name)) d.absent.push(name);
  }
  return d;
}

/** Compares everything the proxy holds with the set. */
function fullDiff(st: DeltaTypeState, set: ResourceSet): Diff {
  const d = emptyDiff();
  for (const [name, any] of set.resources) {
    if (!st.wants(name)) continue;
    const version = set.versions?.get(name) ?? resourceVersion(any);
    const before = st.holding(name);
    if (before === version) continue;
    d.resources.push({ name, version, resource: any });
    change(d, name, before, version);
  }
  d.resources.sort(byName);
  for (const [name, before] of st.holdings()) {
    if (!set.resources.has(name) || !st.wants(name)) {
      d.removed.push(name);
      change(d, name, before, undefined);
    }
  }
  for (const name of st.names) {
    if (!set.resources.has(name) && st.holding(name) === undefined && !st.absentNotified.has(name))
      d.absent.push(name); // tells the proxy a subscribed resource does not exist
  }
  return d;
}
