// The listener manager (Envoy's LDS side): turns the Listener resources of a ProxyConfig into
// listening sockets and hands every accepted connection, after its listener filters, to the
// handler of the filter chain that matches it.
//
// - One net.Server per bound listener address (`bind_to_port: false` listeners get none: they
//   are reached by original destination from a `use_original_dst` listener, as Istio's
//   virtualOutbound 15001 reaches the per-service listeners, or through `dispatch()`).
// - Updates compare listeners by content: unchanged ones are untouched; a changed listener at
//   the same address keeps its socket (no connection is refused during the swap) and its old
//   version drains: its connections are told to drain and closed after the drain period. When
//   only filter chains changed (Envoy's in-place filter chain update) connections on chains
//   that did not change move to the new version and are not disturbed. Removed listeners
//   stop accepting at once and drain the same way.
// - A listener that cannot be applied (invalid, unsupported, address in use) is reported in
//   the result with a precise message — the caller NACKs — and its previous version, if any,
//   stays, as in Envoy.
// - Stats: listener.<address>.downstream_cx_total/_active/_destroy/_length_ms,
//   downstream_pre_cx_active/_timeout, downstream_listener_filter_remote_close,
//   no_filter_chain_match; listener_manager.listener_added/_modified/_removed/
//   _in_place_updated/_create_failure, total_listeners_active/_draining.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { FilterChain, Listener } from '@trellis/envoy';
import { deepEqual, errorMessage, systemTimers, type TimerApi } from '@trellis/core';
import type { Counter, Gauge, Histogram, StatsScope } from '../observability/stats-api.js';
import { newStreamInfo, RESPONSE_FLAGS, type StreamInfo } from '../stream-info.js';
import type { ProxyConfig } from '../xds/config.js';
import { ConnectionDrain } from './drain.js';
import { checkFilterChainMatches, FilterChainMatcher } from './filter-chain-match.js';
import { PIPE_PORT, formatAddress, normalizeIp, statAddress } from './ip.js';
import {
  compileListenerFilters,
  type CompiledListenerFilters,
  type InspectionState,
} from './listener-filters.js';
import {
  originalDestination as explicitOriginalDestination,
  type OriginalDestinationFn,
} from './original-dst.js';
import { SocketPeek, type PeekEvent } from './socket-peek.js';
import type {
  ConnectionHandler,
  ConnectionInfo,
  NetworkFilterFactory,
  SocketAddressPort,
} from './types.js';

/** Istio's default drain duration (pilot-agent's `--drain-time-s`; Envoy's own default is 600s). */
export const DEFAULT_DRAIN_TIME_MS = 45_000;
/** Envoy's local close reason for connections of a removed filter chain or listener. */
export const FILTER_CHAIN_REMOVED = 'filter_chain_is_being_removed';

export interface ListenerManagerOptions {
  /** Builds a filter chain's connection handler (see createNetworkFilterFactory). */
  readonly networkFilters: NetworkFilterFactory;
  /** The root stats scope. */
  readonly stats: StatsScope;
  /** How long connections of a modified or removed listener / filter chain may finish. */
  readonly drainTimeMs?: number;
  readonly timers?: TimerApi;
  /**
   * Reads an accepted socket's original destination. Default: the socket's local address
   * (explicit capture); transparent capture (SO_ORIGINAL_DST) plugs in here.
   */
  readonly originalDestination?: OriginalDestinationFn;
  /**
   * Listener-level access log: connections closed before reaching a filter chain (no
   * matching chain: NR, `filter_chain_not_found`; listener filter timeout or error).
   */
  readonly onListenerAccessLog?: (info: StreamInfo, listener: Listener) => void;
}

/** One listener that could not be applied, or was not on purpose. */
export interface ListenerError {
  readonly name: string;
  readonly message: string;
}

export interface ListenerUpdateResult {
  readonly added: readonly string[];
  readonly modified: readonly string[];
  readonly removed: readonly string[];
  /** Rejected listeners (their previous version, if any, stays): the NACK's error details. */
  readonly errors: readonly ListenerError[];
  /** Listeners skipped on purpose (api_listener; listeners stopped by drain()). */
  readonly ignored: readonly ListenerError[];
}

export interface ListenerStatus {
  readonly name: string;
  /** The configured address (port 0 in tests). */
  readonly address: SocketAddressPort;
  /** The address actually listened on; undefined for `bind_to_port: false`. */
  readonly bound: SocketAddressPort | undefined;
  readonly state: 'active' | 'draining';
  readonly connections: number;
}

export interface DrainOptions {
  /** Only listeners whose traffic_direction is INBOUND (admin `/drain_listeners?inboundonly`). */
  readonly inboundOnly?: boolean;
}

interface ListenerStats {
  /** `listener.<address>`. */
  readonly scope: StatsScope;
  readonly cxTotal: Counter;
  readonly cxActive: Gauge;
  readonly cxDestroy: Counter;
  readonly cxLength: Histogram;
  readonly preCxActive: Gauge;
  readonly preCxTimeout: Counter;
  readonly filterRemoteClose: Counter;
  readonly noFilterChainMatch: Counter;
}

interface ChainEntry {
  readonly chain: FilterChain;
  readonly handler: ConnectionHandler;
}

interface BoundSocket {
  readonly server: Server;
  readonly address: SocketAddressPort;
  owner: ActiveListener | undefined;
}

interface ActiveConnection {
  readonly socket: Socket;
  readonly info: StreamInfo;
  readonly drain: ConnectionDrain;
  readonly stats: ListenerStats;
  entry: ChainEntry;
  listener: ActiveListener;
}

interface PendingSocket {
  readonly socket: Socket;
  abort(): void;
}

interface PreparedListener {
  readonly name: string;
  readonly config: Listener;
  readonly address: SocketAddressPort;
  readonly bind: boolean;
  readonly filters: CompiledListenerFilters;
  readonly chains: ReadonlyMap<FilterChain, ChainEntry>;
  readonly matcher: FilterChainMatcher;
  /** Entry of the previous version → entry of this one, for chains that did not change. */
  readonly carried: ReadonlyMap<ChainEntry, ChainEntry>;
}

class ActiveListener {
  readonly connections = new Set<ActiveConnection>();
  readonly pending = new Set<PendingSocket>();
  draining = false;
  drainTimer: unknown;
  drainDeadline = 0;
  drainWaiters: (() => void)[] = [];

  constructor(
    readonly p: PreparedListener,
    readonly bound: BoundSocket | undefined,
    readonly stats: ListenerStats,
  ) {}

  get name(): string {
    return this.p.name;
  }

  get config(): Listener {
    return this.p.config;
  }

  /** The address connections are matched against for hand-off: the bound one when bound. */
  get reachAddress(): SocketAddressPort {
    return this.bound?.address ?? this.p.address;
  }
}

const noop = (): void => {};
const EMPTY_BUFFER = Buffer.alloc(0);

function addrKey(a: SocketAddressPort): string {
  return `${a.address}|${a.port}`;
}

function direction(l: Listener): StreamInfo['direction'] {
  return l.trafficDirection === 'INBOUND'
    ? 'inbound'
    : l.trafficDirection === 'OUTBOUND'
      ? 'outbound'
      : 'unspecified';
}

/** The socket address of a listener, or undefined with problems explaining why. */
function listenerAddress(l: Listener, problems: string[]): SocketAddressPort | undefined {
  const a = l.address;
  if (!a) {
    problems.push('address: required');
    return undefined;
  }
  if (a.pipe) {
    // A Unix domain socket: the path (`@name` is Linux's abstract namespace), port PIPE_PORT.
    const path = a.pipe.path ?? '';
    if (path === '') {
      problems.push('address.pipe.path: required');
      return undefined;
    }
    return { address: path, port: PIPE_PORT };
  }
  if (a.envoyInternalAddress) {
    problems.push('address.envoyInternalAddress: internal listeners are not supported');
    return undefined;
  }
  const sa = a.socketAddress;
  if (!sa) {
    problems.push('address.socketAddress: required');
    return undefined;
  }
  if (sa.protocol === 'UDP')
    problems.push('address.socketAddress.protocol: UDP listeners are not supported');
  if (sa.namedPort !== undefined) problems.push('address.socketAddress.namedPort: not supported');
  if (sa.resolverName !== undefined)
    problems.push('address.socketAddress.resolverName: not supported');
  const ip = normalizeIp(sa.address ?? '');
  if (isIP(ip) === 0) {
    problems.push(`address.socketAddress.address: malformed IP address '${sa.address ?? ''}'`);
    return undefined;
  }
  const port = sa.portValue ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(`address.socketAddress.portValue: must be in [0, 65535], got ${port}`);
    return undefined;
  }
  return { address: ip, port };
}

/** Whether two versions of a listener differ only in their filter chains. */
function filterChainOnlyChange(a: Listener, b: Listener): boolean {
  const strip = (l: Listener): Listener => {
    const { filterChains: _fc, defaultFilterChain: _dfc, ...rest } = l;
    return rest;
  };
  return deepEqual(strip(a), strip(b));
}

function bindServer(
  address: SocketAddressPort,
  ipv6Only: boolean,
  mode: number | undefined,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true });
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve(server);
    };
    if (address.port === PIPE_PORT) {
      const path = address.address;
      if (path.startsWith('@')) {
        server.listen({ path: `\0${path.slice(1)}` }, done);
        return;
      }
      // A socket file left by an earlier process is replaced, as Envoy does.
      try {
        if (lstatSync(path).isSocket()) unlinkSync(path);
      } catch {
        /* absent */
      }
      server.listen({ path }, () => {
        try {
          if (mode !== undefined) chmodSync(path, mode);
        } catch {
          /* the socket works without its mode */
        }
        done();
      });
      return;
    }
    server.listen(
      { host: address.address, port: address.port, ...(ipv6Only ? { ipv6Only: true } : {}) },
      done,
    );
  });
}

function bindErrorMessage(address: SocketAddressPort, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'EADDRINUSE'
      ? 'Address already in use'
      : code === 'EACCES'
        ? 'Permission denied'
        : code === 'EADDRNOTAVAIL'
          ? 'Cannot assign requested address'
          : errorMessage(err);
  return `cannot bind '${formatAddress(address.address, address.port)}': ${why}${code ? ` (${code})` : ''}`;
}

/** Manages the proxy's listeners. One instance per proxy. */
export class ListenerManager {
  readonly #opts: ListenerManagerOptions;
  readonly #timers: TimerApi;
  readonly #drainTimeMs: number;
  readonly #originalDestination: OriginalDestinationFn;
  readonly #active = new Map<string, ActiveListener>();
  readonly #draining = new Set<ActiveListener>();
  #byAddress = new Map<string, ActiveListener>();
  #queue: Promise<unknown> = Promise.resolve();
  #stopped: 'all' | 'inbound' | undefined;
  #nextConnectionId = 1;
  readonly #mgr: {
    readonly added: Counter;
    readonly modified: Counter;
    readonly removed: Counter;
    readonly inPlace: Counter;
    readonly createFailure: Counter;
    readonly active: Gauge;
    readonly draining: Gauge;
  };

  constructor(opts: ListenerManagerOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
    this.#drainTimeMs = opts.drainTimeMs ?? DEFAULT_DRAIN_TIME_MS;
    this.#originalDestination = opts.originalDestination ?? explicitOriginalDestination;
    const m = opts.stats.scope('listener_manager');
    this.#mgr = {
      added: m.counter('listener_added'),
      modified: m.counter('listener_modified'),
      removed: m.counter('listener_removed'),
      inPlace: m.counter('listener_in_place_updated'),
      createFailure: m.counter('listener_create_failure'),
      active: m.gauge('total_listeners_active'),
      draining: m.gauge('total_listeners_draining'),
    };
  }

  /**
   * Applies the listeners of `config`. Updates are serialized. Resolves once new sockets are
   * bound and the new versions take connections.
   */
  update(config: ProxyConfig): Promise<ListenerUpdateResult> {
    const run = this.#queue.then(() => this.#update(config));
    this.#queue = run.catch(noop);
    return run;
  }

  /**
   * Checks every listener of `config` without binding anything (invalid settings,
   * unsupported filters, overlapping filter chains, duplicate addresses). Bind failures are
   * only known to update().
   */
  validate(config: ProxyConfig): ListenerError[] {
    const errors: ListenerError[] = [];
    const seen = new Map<string, string>();
    for (const [name, l] of config.listeners) {
      if (l.apiListener) continue;
      const old = this.#active.get(name);
      if (old && deepEqual(old.config, l)) {
        seen.set(addrKey(old.p.address), name);
        continue;
      }
      const p = this.#prepare(name, l, old);
      if (Array.isArray(p)) {
        errors.push({ name, message: p.join('; ') });
        continue;
      }
      if (p.address.port !== 0) {
        const other = seen.get(addrKey(p.address));
        if (other !== undefined) errors.push({ name, message: this.#duplicateMessage(p, other) });
        else seen.set(addrKey(p.address), name);
      }
    }
    return errors;
  }

  /** Where a listener actually listens (the bound port of a port-0 listener). */
  boundAddress(name: string): SocketAddressPort | undefined {
    return this.#active.get(name)?.bound?.address;
  }

  /** Active and draining listeners, for the admin endpoint and tests. */
  listeners(): ListenerStatus[] {
    const out: ListenerStatus[] = [];
    const add = (l: ActiveListener, state: ListenerStatus['state']): void => {
      out.push({
        name: l.name,
        address: l.p.address,
        bound: l.bound?.address,
        state,
        connections: l.connections.size,
      });
    };
    for (const l of this.#active.values()) add(l, 'active');
    for (const l of this.#draining) add(l, 'draining');
    return out;
  }

  /**
   * Handles `socket` as if it had been redirected to `destination` (explicit capture: the
   * tunnel of an HTTP `CONNECT`): the listener for that address — exact, else the wildcard
   * address of its port — runs its listener filters and filter chains. Returns false, leaving
   * the socket alone, when no listener has that address. Bytes the caller already read from
   * the socket (the `head` of node:http's 'connect' event) must be unshifted back first.
   */
  dispatch(socket: Socket, destination: SocketAddressPort): boolean {
    const dst = { address: normalizeIp(destination.address), port: destination.port };
    const target = this.#findByAddress(dst);
    if (!target) return false;
    this.#handleSocket(target, socket, dst);
    return true;
  }

  /**
   * Drains for shutdown (SIGTERM, admin /drain_listeners): the listeners stop accepting,
   * their connections are told to drain and are closed when `ms` has passed. Resolves when
   * every such connection is closed. Later updates leave the drained listeners stopped.
   */
  drain(ms: number = this.#drainTimeMs, opts: DrainOptions = {}): Promise<void> {
    const inboundOnly = opts.inboundOnly === true;
    if (!inboundOnly) this.#stopped = 'all';
    else this.#stopped ??= 'inbound';
    const waits: Promise<void>[] = [];
    for (const l of [...this.#draining]) {
      if (inboundOnly && l.config.trafficDirection !== 'INBOUND') continue;
      waits.push(this.#startDraining(l, ms));
    }
    for (const [name, l] of [...this.#active]) {
      if (inboundOnly && l.config.trafficDirection !== 'INBOUND') continue;
      this.#active.delete(name);
      this.#release(l);
      waits.push(this.#startDraining(l, ms));
    }
    this.#rebuildIndex();
    return Promise.all(waits).then(noop);
  }

  /** Closes every socket and listener at once (tests, fatal shutdown). */
  async close(): Promise<void> {
    this.#stopped = 'all';
    const servers: Server[] = [];
    for (const l of [...this.#active.values(), ...this.#draining]) {
      if (l.bound && !servers.includes(l.bound.server)) servers.push(l.bound.server);
      if (l.bound) l.bound.owner = undefined;
      if (l.drainTimer !== undefined) this.#timers.clearTimeout(l.drainTimer);
      for (const p of [...l.pending]) p.abort();
      for (const c of [...l.connections]) c.socket.destroy();
      this.#finishDraining(l);
    }
    this.#active.clear();
    this.#rebuildIndex();
    this.#updateGauges();
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  // ---- updates

  #duplicateMessage(p: PreparedListener, other: string): string {
    return `error adding listener '${formatAddress(p.address.address, p.address.port)}': listener '${p.name}' has duplicate address as existing listener '${other}'`;
  }

  #prepare(
    name: string,
    l: Listener,
    old: ActiveListener | undefined,
  ): PreparedListener | string[] {
    const problems: string[] = [];
    const address = listenerAddress(l, problems);
    problems.push(...checkFilterChainMatches(l));
    const filters = compileListenerFilters(l, this.#opts.stats, problems);
    const inPlace = old !== undefined && filterChainOnlyChange(old.config, l);
    const chains = new Map<FilterChain, ChainEntry>();
    const carried = new Map<ChainEntry, ChainEntry>();
    const build = (chain: FilterChain, path: string): void => {
      if (inPlace) {
        for (const e of old.p.chains.values()) {
          if (deepEqual(e.chain, chain)) {
            const entry = { chain, handler: e.handler };
            chains.set(chain, entry);
            carried.set(e, entry);
            return;
          }
        }
      }
      try {
        chains.set(chain, { chain, handler: this.#opts.networkFilters(chain, l) });
      } catch (err) {
        problems.push(`${path}: ${errorMessage(err)}`);
      }
    };
    (l.filterChains ?? []).forEach((c, i) => build(c, `filterChains[${i}]`));
    if (l.defaultFilterChain) build(l.defaultFilterChain, 'defaultFilterChain');
    if (problems.length > 0 || !address) return problems;
    return {
      name,
      config: l,
      address,
      bind: l.bindToPort !== false,
      filters,
      chains,
      matcher: new FilterChainMatcher(l.filterChains ?? [], l.defaultFilterChain),
      carried,
    };
  }

  #listenerStats(p: PreparedListener, bound: BoundSocket | undefined): ListenerStats {
    const a = bound?.address ?? p.address;
    const s = this.#opts.stats
      .scope('listener')
      .scope(p.config.statPrefix || statAddress(a.address, a.port));
    return {
      scope: s,
      cxTotal: s.counter('downstream_cx_total'),
      cxActive: s.gauge('downstream_cx_active'),
      cxDestroy: s.counter('downstream_cx_destroy'),
      cxLength: s.histogram('downstream_cx_length_ms'),
      preCxActive: s.gauge('downstream_pre_cx_active'),
      preCxTimeout: s.counter('downstream_pre_cx_timeout'),
      filterRemoteClose: s.counter('downstream_listener_filter_remote_close'),
      noFilterChainMatch: s.counter('no_filter_chain_match'),
    };
  }

  async #update(config: ProxyConfig): Promise<ListenerUpdateResult> {
    const added: string[] = [];
    const modified: string[] = [];
    const removed: string[] = [];
    const errors: ListenerError[] = [];
    const ignored: ListenerError[] = [];
    if (this.#stopped === 'all') {
      ignored.push({ name: '*', message: 'listeners are stopped (drained)' });
      return { added, modified, removed, errors, ignored };
    }

    // 1. Prepare what changed; unchanged and rejected listeners keep their current version.
    const prepared = new Map<string, PreparedListener>();
    const keep = new Set<string>();
    for (const [name, l] of config.listeners) {
      if (l.apiListener) {
        ignored.push({
          name,
          message: 'api_listener is for proxyless gRPC clients; not served by the proxy',
        });
        continue;
      }
      if (this.#stopped === 'inbound' && l.trafficDirection === 'INBOUND') {
        ignored.push({ name, message: 'inbound listeners are stopped (drained)' });
        continue;
      }
      const old = this.#active.get(name);
      if (old && deepEqual(old.config, l)) {
        keep.add(name);
        continue;
      }
      const p = this.#prepare(name, l, old);
      if (Array.isArray(p)) {
        errors.push({ name, message: p.join('; ') });
        if (old) keep.add(name);
        continue;
      }
      prepared.set(name, p);
    }

    // 2. Duplicate addresses: listeners that keep their address hold it first.
    const holders = new Map<string, string>();
    for (const name of keep) {
      const l = this.#active.get(name);
      if (l && l.p.address.port !== 0) holders.set(addrKey(l.p.address), name);
    }
    for (const [name, p] of [...prepared]) {
      if (p.address.port === 0) continue;
      const k = addrKey(p.address);
      const other = holders.get(k);
      if (other !== undefined) {
        errors.push({ name, message: this.#duplicateMessage(p, other) });
        prepared.delete(name);
        if (this.#active.has(name)) keep.add(name);
      } else {
        holders.set(k, name);
      }
    }

    // 3. Sockets: reuse the one at the same address (the listener's own, or one whose owner
    //    goes away or moves), else bind a new one.
    const sockets = new Map<string, BoundSocket>();
    const taken = new Set<BoundSocket>();
    // A socket is free to take when its owner is removed, or moves to another address.
    const releasing = (b: BoundSocket): boolean => {
      const owner = b.owner;
      if (!owner || keep.has(owner.name)) return !owner;
      const next = prepared.get(owner.name);
      return !next || !next.bind || addrKey(next.address) !== addrKey(owner.p.address);
    };
    const toBind: PreparedListener[] = [];
    for (const [name, p] of prepared) {
      if (!p.bind) continue;
      const old = this.#active.get(name);
      if (old?.bound && addrKey(old.p.address) === addrKey(p.address)) {
        sockets.set(name, old.bound);
        taken.add(old.bound);
        continue;
      }
      if (p.address.port !== 0) {
        const other = this.#findBound(p.address);
        if (other && !taken.has(other) && releasing(other)) {
          sockets.set(name, other);
          taken.add(other);
          continue;
        }
      }
      toBind.push(p);
    }
    const binds = await Promise.all(
      toBind.map(async (p) => {
        try {
          const ipv6Only =
            p.address.address.includes(':') && p.config.address?.socketAddress?.ipv4Compat !== true;
          const server = await bindServer(p.address, ipv6Only, p.config.address?.pipe?.mode);
          const a = server.address();
          const actual =
            a && typeof a === 'object'
              ? { address: normalizeIp(a.address), port: a.port }
              : p.address;
          const bound: BoundSocket = { server, address: actual, owner: undefined };
          server.on('connection', (s: Socket) => this.#accept(bound, s));
          server.on('error', noop);
          return { p, bound };
        } catch (err) {
          return { p, error: bindErrorMessage(p.address, err) };
        }
      }),
    );
    for (const b of binds) {
      if (b.bound) sockets.set(b.p.name, b.bound);
      else {
        this.#mgr.createFailure.inc();
        errors.push({ name: b.p.name, message: b.error ?? 'bind failed' });
        prepared.delete(b.p.name);
        if (this.#active.has(b.p.name)) keep.add(b.p.name);
      }
    }
    if (this.#allStopped()) {
      // drain() ran while binding: nothing new may accept.
      for (const b of binds) b.bound?.server.close();
      return { added, modified, removed, errors, ignored };
    }

    // 4. Commit.
    for (const [name, p] of prepared) {
      const bound = sockets.get(name);
      const next = new ActiveListener(p, bound, this.#listenerStats(p, bound));
      const old = this.#active.get(name);
      this.#active.set(name, next);
      if (bound) bound.owner = next;
      if (!old) {
        added.push(name);
        this.#mgr.added.inc();
        continue;
      }
      modified.push(name);
      this.#mgr.modified.inc();
      if (old.bound && old.bound !== bound && !taken.has(old.bound)) this.#closeBound(old.bound);
      if (filterChainOnlyChange(old.config, p.config)) {
        this.#mgr.inPlace.inc();
        for (const c of [...old.connections]) {
          const entry = p.carried.get(c.entry);
          if (!entry) continue;
          old.connections.delete(c);
          c.entry = entry;
          c.listener = next;
          next.connections.add(c);
        }
      }
      void this.#startDraining(old, this.#drainTimeMs);
    }
    for (const [name, l] of [...this.#active]) {
      if (prepared.has(name) || keep.has(name)) continue;
      this.#active.delete(name);
      removed.push(name);
      this.#mgr.removed.inc();
      if (l.bound && l.bound.owner === l && !taken.has(l.bound)) this.#closeBound(l.bound);
      else if (l.bound && l.bound.owner === l) l.bound.owner = undefined;
      void this.#startDraining(l, this.#drainTimeMs);
    }
    this.#rebuildIndex();
    this.#updateGauges();
    return { added, modified, removed, errors, ignored };
  }

  #allStopped(): boolean {
    return this.#stopped === 'all';
  }

  #findBound(a: SocketAddressPort): BoundSocket | undefined {
    for (const l of this.#active.values()) {
      if (l.bound && addrKey(l.p.address) === addrKey(a)) return l.bound;
    }
    return undefined;
  }

  #closeBound(b: BoundSocket): void {
    b.owner = undefined;
    b.server.close();
  }

  /** Stops a listener accepting (drain / removal). */
  #release(l: ActiveListener): void {
    if (l.bound && l.bound.owner === l) this.#closeBound(l.bound);
  }

  #rebuildIndex(): void {
    const m = new Map<string, ActiveListener>();
    for (const l of this.#active.values()) m.set(addrKey(l.reachAddress), l);
    this.#byAddress = m;
  }

  #updateGauges(): void {
    this.#mgr.active.set(this.#active.size);
    this.#mgr.draining.set(this.#draining.size);
  }

  #findByAddress(a: SocketAddressPort): ActiveListener | undefined {
    const exact = this.#byAddress.get(addrKey(a));
    if (exact) return exact;
    const wildcard = a.address.includes(':') ? '::' : '0.0.0.0';
    return this.#byAddress.get(addrKey({ address: wildcard, port: a.port }));
  }

  // ---- draining

  #startDraining(l: ActiveListener, ms: number): Promise<void> {
    const done = this.#whenDrained(l);
    if (!l.draining) {
      l.draining = true;
      this.#draining.add(l);
      this.#updateGauges();
      for (const c of l.connections) c.drain.start();
    }
    if (!this.#draining.has(l)) return done;
    if (l.connections.size === 0 && l.pending.size === 0) {
      this.#finishDraining(l);
      return done;
    }
    // A later, shorter drain (SIGTERM during a listener update) brings the deadline forward.
    const deadline = this.#timers.now() + ms;
    if (l.drainTimer !== undefined) {
      if (deadline >= l.drainDeadline) return done;
      this.#timers.clearTimeout(l.drainTimer);
    }
    l.drainDeadline = deadline;
    l.drainTimer = this.#timers.setTimeout(() => {
      l.drainTimer = undefined;
      for (const p of [...l.pending]) p.abort();
      for (const c of [...l.connections]) {
        c.info.downstreamLocalCloseReason ??= FILTER_CHAIN_REMOVED;
        c.socket.destroy();
      }
      this.#finishDraining(l);
    }, ms);
    return done;
  }

  #whenDrained(l: ActiveListener): Promise<void> {
    if (l.draining && !this.#draining.has(l)) return Promise.resolve();
    return new Promise((resolve) => l.drainWaiters.push(resolve));
  }

  #checkDrained(l: ActiveListener): void {
    if (l.draining && l.connections.size === 0 && l.pending.size === 0) this.#finishDraining(l);
  }

  #finishDraining(l: ActiveListener): void {
    if (l.drainTimer !== undefined) {
      this.#timers.clearTimeout(l.drainTimer);
      l.drainTimer = undefined;
    }
    l.draining = true;
    this.#draining.delete(l);
    this.#updateGauges();
    const waiters = l.drainWaiters;
    l.drainWaiters = [];
    for (const w of waiters) w();
  }

  // ---- connections

  #accept(bound: BoundSocket, socket: Socket): void {
    const l = bound.owner;
    if (!l || l.draining) {
      socket.destroy();
      return;
    }
    this.#handleSocket(l, socket, undefined);
  }

  #emitListenerLog(l: ActiveListener, info: StreamInfo): void {
    info.durationMs = performance.now() - info.startMono;
    this.#opts.onListenerAccessLog?.(info, l.config);
  }

  /**
   * Runs the listener filters of `first` (and, after an original-destination hand-off, of the
   * listener for that destination), then creates the connection on the listener that ends up
   * with it. `forced` is an original destination given by dispatch() (already handed off).
   */
  #handleSocket(
    first: ActiveListener,
    socket: Socket,
    forced: SocketAddressPort | undefined,
  ): void {
    socket.on('error', noop);
    const startTime = Date.now();
    const startMono = performance.now();
    // A Unix domain socket's connections have no IP addresses: both ends are the path.
    const pipe = first.p.address.port === PIPE_PORT ? first.p.address : undefined;
    const remote: SocketAddressPort = pipe ?? {
      address: normalizeIp(socket.remoteAddress ?? ''),
      port: socket.remotePort ?? 0,
    };
    const accepted: SocketAddressPort = forced ??
      pipe ?? {
        address: normalizeIp(socket.localAddress ?? ''),
        port: socket.localPort ?? 0,
      };
    const state: InspectionState = {
      local: accepted,
      restored: forced !== undefined,
      transportProtocol: undefined,
      serverName: undefined,
      applicationProtocols: [],
    };
    const original = forced ? () => forced : () => this.#originalDestination(socket);
    let current = first;
    let index = 0;
    let handedOff = forced !== undefined;
    let timer: unknown;
    let finished = false;
    let peek: SocketPeek | undefined;

    const pending: PendingSocket = {
      socket,
      abort: () => finish('abort'),
    };
    const enter = (l: ActiveListener): void => {
      l.pending.add(pending);
      l.stats.preCxActive.inc();
    };
    const leave = (l: ActiveListener): void => {
      l.pending.delete(pending);
      l.stats.preCxActive.dec();
    };
    const stopTimer = (): void => {
      if (timer !== undefined) this.#timers.clearTimeout(timer);
      timer = undefined;
    };
    const startTimer = (): void => {
      const ms = current.p.filters.timeoutMs;
      if (timer !== undefined || ms === undefined) return;
      timer = this.#timers.setTimeout(() => {
        timer = undefined;
        current.stats.preCxTimeout.inc();
        finish(current.p.filters.continueOnTimeout ? 'done' : 'timeout');
      }, ms);
    };
    const finish = (outcome: 'done' | 'reject' | 'timeout' | 'eof' | 'error' | 'abort'): void => {
      if (finished) return;
      finished = true;
      stopTimer();
      peek?.release();
      leave(current);
      const l = current;
      if (outcome === 'done' && !socket.destroyed) {
        this.#newConnection(l, socket, state, remote, startTime, startMono);
      } else {
        if (outcome === 'eof') l.stats.filterRemoteClose.inc();
        socket.destroy();
        const info = newStreamInfo(
          {
            protocol: 'TCP',
            listenerName: l.name,
            direction: direction(l.config),
            downstreamRemoteAddress: formatAddress(remote.address, remote.port),
            downstreamLocalAddress: formatAddress(state.local.address, state.local.port),
          },
          startTime,
          startMono,
        );
        if (state.serverName) info.requestedServerName = state.serverName;
        this.#emitListenerLog(l, info);
      }
      this.#checkDrained(l);
    };
    const advance = (): void => {
      if (finished) return;
      const data = peek?.data ?? EMPTY_BUFFER;
      for (;;) {
        const filters = current.p.filters.filters;
        if (index >= filters.length) {
          if (!handedOff && current.config.useOriginalDst && state.restored) {
            handedOff = true;
            const target = this.#findByAddress(state.local);
            if (target && target !== current) {
              stopTimer();
              leave(current);
              this.#checkDrained(current);
              current = target;
              enter(current);
              index = 0;
              continue;
            }
          }
          finish('done');
          return;
        }
        const f = filters[index];
        if (f === undefined || f.disabled?.(state.local.port)) {
          index++;
          continue;
        }
        const r = f.inspect(data, state, original);
        if (r === 'reject') {
          finish('reject');
          return;
        }
        if (r === 'continue') {
          startTimer();
          peek ??= new SocketPeek(socket, onPeek);
          peek.read();
          return;
        }
        index++;
      }
    };
    const onPeek = (e: PeekEvent): void => {
      if (e === 'data') advance();
      else finish(e);
    };
    enter(current);
    advance();
  }

  #newConnection(
    l: ActiveListener,
    socket: Socket,
    state: InspectionState,
    remote: SocketAddressPort,
    startTime: number,
    startMono: number,
  ): void {
    const transportProtocol = state.transportProtocol ?? 'raw_buffer';
    const chain = l.p.matcher.select({
      destinationAddress: state.local.address,
      destinationPort: state.local.port,
      sourceAddress: remote.address,
      sourcePort: remote.port,
      serverName: state.serverName,
      transportProtocol,
      applicationProtocols: state.applicationProtocols,
    });
    const info = newStreamInfo(
      {
        protocol: 'TCP',
        listenerName: l.name,
        direction: direction(l.config),
        downstreamRemoteAddress: formatAddress(remote.address, remote.port),
        downstreamLocalAddress: formatAddress(state.local.address, state.local.port),
      },
      startTime,
      startMono,
    );
    const connectionId = this.#nextConnectionId++;
    info.connectionId = connectionId;
    if (state.serverName) info.requestedServerName = state.serverName;
    const entry = chain ? l.p.chains.get(chain) : undefined;
    if (!chain || !entry) {
      l.stats.noFilterChainMatch.inc();
      info.responseFlags.add(RESPONSE_FLAGS.NO_ROUTE_FOUND);
      info.responseCodeDetails = 'filter_chain_not_found';
      socket.destroy();
      this.#emitListenerLog(l, info);
      return;
    }
    if (chain.name) info.filterChainName = chain.name;
    const drain = new ConnectionDrain();
    const conn: ActiveConnection = { socket, info, drain, stats: l.stats, entry, listener: l };
    l.connections.add(conn);
    l.stats.cxTotal.inc();
    l.stats.cxActive.inc();
    if (l.draining) drain.start();
    socket.once('close', () => {
      const owner = conn.listener;
      owner.connections.delete(conn);
      conn.stats.cxActive.dec();
      conn.stats.cxDestroy.inc();
      conn.stats.cxLength.record(performance.now() - startMono);
      this.#checkDrained(owner);
    });
    const connInfo: ConnectionInfo = {
      id: connectionId,
      listener: l.config,
      listenerName: l.name,
      filterChain: chain,
      local: state.local,
      remote,
      requestedServerName: state.serverName,
      transportProtocol,
      applicationProtocols: state.applicationProtocols,
      streamInfo: info,
      drain,
      listenerStats: l.stats.scope,
    };
    try {
      entry.handler(socket, connInfo);
    } catch {
      socket.destroy();
    }
  }
}
