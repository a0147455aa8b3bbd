// The proxy's ADS client: one gRPC stream to the xDS server carrying CDS, EDS, LDS, RDS and
// SDS, incremental (delta, preferred) or state of the world.
//
// It subscribes as Envoy does — CDS and LDS wildcard, EDS for the EDS clusters of CDS, RDS for
// the route configurations the listeners' connection managers name, SDS for the secrets the
// listeners' and clusters' TLS contexts name (not the `file-cert:` / `file-root:` names, which
// the proxy resolves itself, as Istio's agent does) — validates every
// response completely before using any of it (validate.ts), ACKs or NACKs it with the
// version and nonce, and applies accepted updates in Envoy's warming order: a CDS update
// takes effect once the EDS of its new clusters arrived (or their initial fetch timeout
// passed; `0s` waits forever), an LDS update once its RDS arrived (and, as Envoy initializes,
// not before the first CDS update was applied). Secrets never hold warming back: a listener or
// cluster is applied without them, and its connections fail until they arrive (a secret from
// the control plane may never come, e.g. the workload certificate without a CA); a secret that
// arrives or changes is a new configuration of its own. Each applied update is a
// new immutable ProxyConfig handed to `onConfig`; nothing is ever half-applied. A rejected
// update leaves the last good configuration of its type in place; so does a lost stream,
// which is re-established with jittered exponential backoff, resubscribing with what the
// client holds (delta: initial_resource_versions).
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { systemTimers, deepFreeze, type TimerApi } from '@trellis/core';
import {
  TYPE_URL,
  adsServiceDefinition,
  type Cluster,
  type ClusterLoadAssignment,
  type ConfigSource,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EncodedAny,
  type Listener,
  type RouteConfiguration,
  type Secret,
} from '@trellis/envoy';
import { referencedSecrets } from '../tls/tls-context.js';
import { durationMs } from '../duration.js';
import type { StatsScope } from '../observability/stats-api.js';
import { JitteredBackoff, type BackoffOptions } from './backoff.js';
import type { Bootstrap } from './bootstrap.js';
import { EMPTY_CONFIG, type ProxyConfig } from './config.js';
import {
  RESOURCE_LABEL,
  checkListenerSet,
  decodeXdsResource,
  edsServiceName,
  nackMessage,
  rdsNames,
  referencedClusters,
  type ProxyResourceTypeUrl,
  type ValidateOptions,
  type XdsResource,
} from './validate.js';

/** The parts of a ProxyConfig, one per xDS type. */
export type ConfigType = 'listeners' | 'routes' | 'clusters' | 'endpoints' | 'secrets';

/** The ADS variant: incremental (delta) or state of the world. */
export type XdsProtocol = 'delta' | 'sotw';

/** Where the client logs (connects, disconnects, NACKs, warming timeouts). */
export interface XdsLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A logger that drops everything. */
export const SILENT_XDS_LOGGER: XdsLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Options of an AdsClient. */
export interface AdsClientOptions {
  readonly bootstrap: Bootstrap;
  /** Default `delta`. */
  readonly protocol?: XdsProtocol;
  /**
   * Called with each new configuration and the parts whose resources changed (empty when only
   * versions changed). A resource that did not change is the same object as before (`===`).
   */
  readonly onConfig: (config: ProxyConfig, changed: readonly ConfigType[]) => void;
  readonly log?: XdsLogger;
  /** Clock and timers for backoff and warming (default: Node's timers). */
  readonly timers?: TimerApi;
  /** Wall clock for status timestamps (default Date.now). */
  readonly wallClock?: () => number;
  /** Reconnect backoff (default 500 ms base, 30 s cap). */
  readonly backoff?: BackoffOptions;
  /**
   * How long a warming cluster or listener waits for its EDS or RDS when its ConfigSource sets
   * no `initial_fetch_timeout` (Envoy's default: 15 s). 0 waits forever, as `0s` does.
   */
  readonly initialFetchTimeoutMs?: number;
  readonly validation?: ValidateOptions;
  /** Default: insecure (plaintext, Istio's port 15010). */
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  /** Envoy's xDS stats (`control_plane.connected_state`, `cluster_manager.cds.update_*`, ...). */
  readonly stats?: StatsScope;
}

/** The last rejected update of a type. */
export interface XdsNack {
  /** The version the server sent (and the client rejected). */
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  /** Wall-clock ms. */
  readonly at: number;
}

/** What the admin endpoint shows about one xDS type. */
export interface XdsTypeStatus {
  readonly typeUrl: string;
  readonly short: 'CDS' | 'EDS' | 'LDS' | 'RDS' | 'SDS';
  /** Last version accepted (ACKed) from the server. */
  readonly version: string;
  /** Version in the applied ProxyConfig (behind `version` while warming). */
  readonly appliedVersion: string;
  /** Last nonce received on the current stream. */
  readonly nonce: string;
  /** Wall-clock ms of the last accepted update. */
  readonly lastUpdateAt: number | undefined;
  readonly resources: number;
  /** `*` for wildcard types, else the subscribed names. */
  readonly subscribed: '*' | readonly string[];
  /** Resources this type's pending update waits for (CDS: EDS names, LDS: RDS names). */
  readonly warmingOn: readonly string[];
  readonly acks: number;
  readonly nacks: number;
  readonly lastNack: XdsNack | undefined;
}

/** The client's state for the admin endpoint. */
export interface AdsClientStatus {
  readonly protocol: XdsProtocol;
  readonly server: string;
  readonly connected: boolean;
  /** The first CDS and LDS updates have been applied. */
  readonly synced: boolean;
  readonly connectAttempts: number;
  readonly lastConnectedAt: number | undefined;
  readonly lastDisconnectedAt: number | undefined;
  readonly lastError: string | undefined;
  /** Delay of the pending reconnect, when one is scheduled. */
  readonly retryInMs: number | undefined;
  readonly types: { readonly [K in ConfigType]: XdsTypeStatus };
}

interface Kind {
  readonly type: ConfigType;
  readonly typeUrl: ProxyResourceTypeUrl;
  readonly short: 'CDS' | 'EDS' | 'LDS' | 'RDS' | 'SDS';
  readonly wildcard: boolean;
}

/** In Istio's push order: clusters before endpoints, listeners before routes. */
const KINDS: readonly Kind[] = [
  { type: 'clusters', typeUrl: TYPE_URL.Cluster, short: 'CDS', wildcard: true },
  { type: 'endpoints', typeUrl: TYPE_URL.ClusterLoadAssignment, short: 'EDS', wildcard: false },
  { type: 'listeners', typeUrl: TYPE_URL.Listener, short: 'LDS', wildcard: true },
  { type: 'routes', typeUrl: TYPE_URL.RouteConfiguration, short: 'RDS', wildcard: false },
  { type: 'secrets', typeUrl: TYPE_URL.Secret, short: 'SDS', wildcard: false },
];

const INVALID_ARGUMENT = 3;

/** An accepted resource. */
interface Held {
  readonly name: string;
  readonly resource: XdsResource;
  /** Hash of its encoded bytes: an identical resource is not decoded again. */
  readonly key: string;
  /** Delta: the server's version of this resource. */
  readonly version: string;
}

/** Per-type state: accepted resources, subscription, stream position, warming. */
class TypeState {
  readonly kind: Kind;
  held = new Map<string, Held>();
  byKey = new Map<string, Held>();
  version = '';
  /** Bumped on each accepted update. */
  generation = 0;
  /** EDS and RDS: the names to subscribe to. */
  wanted = new Set<string>();
  /** Subscribed names the server said do not exist (delta). */
  readonly absent = new Set<string>();
  /** Latest nonce on the current stream. */
  nonce = '';
  /** What the server was told on the current stream (undefined: not yet requested). */
  sent: Set<string> | undefined;
  /** Warming: timers of names awaited by a dependent update, and names whose wait timed out. */
  readonly warmTimers = new Map<string, unknown>();
  readonly timedOut = new Set<string>();
  lastUpdateAt: number | undefined;
  lastNack: XdsNack | undefined;
  acks = 0;
  nacks = 0;

  constructor(kind: Kind) {
    this.kind = kind;
  }

  setHeld(held: Map<string, Held>): void {
    this.held = held;
    this.byKey = new Map([...held.values()].map((h) => [h.key, h]));
  }
}

type AnyRequest = DiscoveryRequest | DeltaDiscoveryRequest;
type AnyResponse = DiscoveryResponse | DeltaDiscoveryResponse;

function hashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url');
}

function sameEntries<K, V>(a: ReadonlyMap<K, V>, b: ReadonlyMap<K, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

const EMPTY_SECRETS: ReadonlyMap<string, Secret> = new Map();

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** An ADS client: `start()`, then configurations arrive through `onConfig`. */
export class AdsClient {
  readonly #opts: AdsClientOptions;
  readonly #protocol: XdsProtocol;
  readonly #timers: TimerApi;
  readonly #wall: () => number;
  readonly #log: XdsLogger;
  readonly #backoff: JitteredBackoff;
  readonly #types: { readonly [K in ConfigType]: TypeState };
  readonly #byUrl = new Map<string, TypeState>();

  #config: ProxyConfig = EMPTY_CONFIG;
  readonly #appliedGeneration = { clusters: 0, listeners: 0 };
  #synced = false;
  readonly #syncWaiters: { resolve: (c: ProxyConfig) => void; reject: (e: Error) => void }[] = [];

  #started = false;
  #closed = false;
  #client: grpc.Client | undefined;
  #call: grpc.ClientDuplexStream<AnyRequest, AnyResponse> | undefined;
  #stream = 0;
  #nodeSent = false;
  #connected = false;
  #retryTimer: unknown;
  #retryInMs: number | undefined;
  #connectAttempts = 0;
  #lastConnectedAt: number | undefined;
  #lastDisconnectedAt: number | undefined;
  #lastError: string | undefined;

  constructor(options: AdsClientOptions) {
    this.#opts = options;
    this.#protocol = options.protocol ?? 'delta';
    this.#timers = options.timers ?? systemTimers;
    this.#wall = options.wallClock ?? Date.now;
    this.#log = options.log ?? SILENT_XDS_LOGGER;
    this.#backoff = new JitteredBackoff(options.backoff);
    const types = {} as Record<ConfigType, TypeState>;
    for (const k of KINDS) {
      const st = new TypeState(k);
      types[k.type] = st;
      this.#byUrl.set(k.typeUrl, st);
    }
    this.#types = types;
  }

  /** Opens the ADS stream (and keeps reopening it until `close()`). */
  start(): void {
    if (this.#closed) throw new Error('AdsClient is closed');
    if (this.#started) return;
    this.#started = true;
    this.#connect();
  }

  /** Closes the stream for good; the last configuration stays readable through `config()`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== undefined) this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retryInMs = undefined;
    for (const st of Object.values(this.#types)) this.#clearWarming(st);
    this.#teardown();
    for (const w of this.#syncWaiters.splice(0))
      w.reject(new Error('AdsClient closed before the first configuration'));
  }

  /** The configuration applied last. */
  config(): ProxyConfig {
    return this.#config;
  }

  /**
   * Accepted clusters and listeners not applied yet because they wait for their EDS or RDS
   * (Envoy's `dynamic_warming_clusters` / `dynamic_warming_listeners` in config_dump).
   */
  warming(): {
    readonly clusters: ReadonlyMap<string, Cluster>;
    readonly listeners: ReadonlyMap<string, Listener>;
  } {
    const pending = <T>(type: 'clusters' | 'listeners'): Map<string, T> => {
      const out = new Map<string, T>();
      const st = this.#types[type];
      if (st.generation === this.#appliedGeneration[type]) return out;
      const applied: ReadonlyMap<string, unknown> = this.#config[type];
      for (const [name, h] of st.held)
        if (applied.get(name) !== h.resource) out.set(name, h.resource as T);
      return out;
    };
    return { clusters: pending<Cluster>('clusters'), listeners: pending<Listener>('listeners') };
  }

  /** Resolves once the first CDS and LDS updates have been applied. */
  whenSynced(): Promise<ProxyConfig> {
    if (this.#synced) return Promise.resolve(this.#config);
    if (this.#closed) return Promise.reject(new Error('AdsClient is closed'));
    return new Promise((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
  }

  status(): AdsClientStatus {
    const waiting = {
      clusters: [...this.#missing('clusters').keys()],
      listeners: [...this.#missing('listeners').keys()],
    };
    const typeStatus = (st: TypeState): XdsTypeStatus => ({
      typeUrl: st.kind.typeUrl,
      short: st.kind.short,
      version: st.version,
      appliedVersion: this.#config.versions[st.kind.type] ?? '',
      nonce: st.nonce,
      lastUpdateAt: st.lastUpdateAt,
      resources: st.held.size,
      subscribed: st.kind.wildcard ? '*' : [...st.wanted].sort(),
      warmingOn:
        st.kind.type === 'clusters' || st.kind.type === 'listeners'
          ? waiting[st.kind.type].sort()
          : [],
      acks: st.acks,
      nacks: st.nacks,
      lastNack: st.lastNack,
    });
    const t = this.#types;
    return {
      protocol: this.#protocol,
      server: this.#opts.bootstrap.xdsAddress,
      connected: this.#connected,
      synced: this.#synced,
      connectAttempts: this.#connectAttempts,
      lastConnectedAt: this.#lastConnectedAt,
      lastDisconnectedAt: this.#lastDisconnectedAt,
      lastError: this.#lastError,
      retryInMs: this.#retryInMs,
      types: {
        clusters: typeStatus(t.clusters),
        endpoints: typeStatus(t.endpoints),
        listeners: typeStatus(t.listeners),
        routes: typeStatus(t.routes),
        secrets: typeStatus(t.secrets),
      },
    };
  }

  // -------------------------------------------------------------------------------------
  // Stream lifecycle

  #connect(): void {
    this.#retryTimer = undefined;
    this.#retryInMs = undefined;
    if (this.#closed) return;
    this.#connectAttempts++;
    const id = ++this.#stream;
    const { bootstrap } = this.#opts;
    const client = new grpc.Client(
      bootstrap.xdsAddress,
      this.#opts.credentials ?? grpc.credentials.createInsecure(),
      this.#opts.channelOptions ?? {},
    );
    const method =
      this.#protocol === 'delta'
        ? adsServiceDefinition.DeltaAggregatedResources
        : adsServiceDefinition.StreamAggregatedResources;
    const call = client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize as (b: Buffer) => AnyResponse,
    );
    this.#client = client;
    this.#call = call;
    this.#nodeSent = false;
    for (const st of Object.values(this.#types)) {
      st.nonce = '';
      st.sent = undefined;
    }
    this.#log.debug(`xDS: opening ${this.#protocol} ADS stream to ${bootstrap.xdsAddress}`);
    call.on('metadata', () => {
      if (id === this.#stream) this.#up(false);
    });
    call.on('data', (resp: AnyResponse) => {
      if (id !== this.#stream || this.#closed) return;
      this.#up(true);
      try {
        if (this.#protocol === 'delta') this.#onDelta(resp as DeltaDiscoveryResponse);
        else this.#onSotw(resp as DiscoveryResponse);
      } catch (e) {
        // A bug, not bad input (bad input is NACKed): keep the stream, say it loudly.
        this.#log.error(
          `xDS: failed to process a response: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
        );
      }
    });
    call.on('error', (e: Error) => {
      if (id === this.#stream) this.#lastError = e.message;
    });
    call.on('status', (s: grpc.StatusObject) => {
      if (id === this.#stream) this.#down(s);
    });
    for (const k of KINDS) this.#sendInitial(this.#types[k.type]);
    this.#watchChannel(client, id);
  }

  /** Marks the stream connected once its channel is READY (the server may stay silent). */
  #watchChannel(client: grpc.Client, id: number): void {
    const channel = client.getChannel();
    const check = (): void => {
      if (id !== this.#stream) return;
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) {
        this.#up(false);
        return;
      }
      if (state === grpc.connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(state, Date.now() + 60_000, () => check());
    };
    check();
  }

  #up(gotResponse: boolean): void {
    if (gotResponse) this.#backoff.reset();
    if (this.#connected) return;
    this.#connected = true;
    this.#lastConnectedAt = this.#wall();
    this.#opts.stats?.gauge('control_plane.connected_state').set(1);
    this.#log.info(`xDS: connected to ${this.#opts.bootstrap.xdsAddress} (${this.#protocol})`);
  }

  #down(s: grpc.StatusObject): void {
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#lastDisconnectedAt = this.#wall();
    this.#lastError = `${grpc.status[s.code] ?? s.code}: ${s.details}`;
    this.#opts.stats?.gauge('control_plane.connected_state').set(0);
    this.#teardown();
    if (this.#closed) return;
    const delay = this.#backoff.next();
    this.#retryInMs = delay;
    const what = wasConnected ? 'lost the ADS stream' : 'could not open the ADS stream';
    this.#log.warn(
      `xDS: ${what} to ${this.#opts.bootstrap.xdsAddress} (${this.#lastError}); keeping the last configuration, retrying in ${delay} ms`,
    );
    this.#retryTimer = this.#timers.setTimeout(() => this.#connect(), delay);
  }

  #teardown(): void {
    const call = this.#call;
    const client = this.#client;
    this.#call = undefined;
    this.#client = undefined;
    this.#stream++;
    this.#connected = false;
    if (call) {
      call.removeAllListeners('data');
      call.on('error', () => undefined);
      call.cancel();
    }
    client?.close();
  }

  #write(req: AnyRequest): void {
    const call = this.#call;
    if (!call) return;
    if (!this.#nodeSent) {
      req.node = this.#opts.bootstrap.node;
      this.#nodeSent = true;
    }
    try {
      call.write(req);
    } catch (e) {
      this.#log.error(`xDS: cannot send a request: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** The first request of a type on a new stream: the subscription and what is held. */
  #sendInitial(st: TypeState): void {
    if (!st.kind.wildcard && st.wanted.size === 0) return;
    const names = st.kind.wildcard ? [] : [...st.wanted].sort();
    st.sent = new Set(names);
    if (this.#protocol === 'sotw') {
      const req: DiscoveryRequest = { typeUrl: st.kind.typeUrl, resourceNames: names };
      if (st.version !== '') req.versionInfo = st.version;
      this.#write(req);
      return;
    }
    const req: DeltaDiscoveryRequest = { typeUrl: st.kind.typeUrl, resourceNamesSubscribe: names };
    const versions: Record<string, string> = {};
    for (const h of st.held.values())
      if (h.version !== '' && (st.kind.wildcard || st.wanted.has(h.name)))
        versions[h.name] = h.version;
    if (Object.keys(versions).length > 0) req.initialResourceVersions = versions;
    this.#write(req);
  }

  /** Tells the server about a changed EDS or RDS subscription. */
  #syncSubscription(st: TypeState): void {
    if (!this.#call || st.kind.wildcard) return;
    if (st.sent === undefined) {
      this.#sendInitial(st);
      return;
    }
    if (sameSet(st.sent, st.wanted)) return;
    if (this.#protocol === 'sotw') {
      const req: DiscoveryRequest = {
        typeUrl: st.kind.typeUrl,
        resourceNames: [...st.wanted].sort(),
      };
      if (st.version !== '') req.versionInfo = st.version;
      if (st.nonce !== '') req.responseNonce = st.nonce;
      this.#write(req);
    } else {
      const subscribe = [...st.wanted].filter((n) => !st.sent?.has(n)).sort();
      const unsubscribe = [...st.sent].filter((n) => !st.wanted.has(n)).sort();
      const req: DeltaDiscoveryRequest = { typeUrl: st.kind.typeUrl };
      if (subscribe.length > 0) req.resourceNamesSubscribe = subscribe;
      if (unsubscribe.length > 0) req.resourceNamesUnsubscribe = unsubscribe;
      this.#write(req);
    }
    st.sent = new Set(st.wanted);
  }

  // -------------------------------------------------------------------------------------
  // Responses

  #onSotw(resp: DiscoveryResponse): void {
    const typeUrl = resp.typeUrl ?? '';
    const nonce = resp.nonce ?? '';
    const version = resp.versionInfo ?? '';
    const st = this.#byUrl.get(typeUrl);
    if (!st) {
      this.#rejectUnknownType(typeUrl, nonce);
      return;
    }
    st.nonce = nonce;
    this.#typeStats(st)?.counter('update_attempt').inc();
    const decoded = this.#decodeAll(
      st,
      (resp.resources ?? []).map((any, i) => ({ any, what: `resources[${i}]` })),
    );
    let next = decoded.problems.length === 0 ? decoded.resources : undefined;
    if (next && !st.kind.wildcard) {
      // EDS and RDS: a response carries some of the subscribed resources; absence is not removal.
      const merged = new Map(st.held);
      for (const [n, h] of next) merged.set(n, h);
      next = merged;
    }
    const problems = next ? [...decoded.problems, ...this.#crossCheck(st, next)] : decoded.problems;
    if (!next || problems.length > 0) {
      this.#nack(st, version, nonce, problems);
      const req: DiscoveryRequest = {
        typeUrl,
        responseNonce: nonce,
        resourceNames: st.kind.wildcard ? [] : [...st.wanted].sort(),
        errorDetail: { code: INVALID_ARGUMENT, message: nackMessage(problems) },
      };
      if (st.version !== '') req.versionInfo = st.version;
      this.#write(req);
      if (st.sent) st.sent = new Set(st.kind.wildcard ? [] : st.wanted);
      return;
    }
    this.#accept(st, next, version);
    const ack: DiscoveryRequest = {
      typeUrl,
      responseNonce: nonce,
      resourceNames: st.kind.wildcard ? [] : [...st.wanted].sort(),
    };
    if (version !== '') ack.versionInfo = version;
    this.#write(ack);
    if (st.sent) st.sent = new Set(st.kind.wildcard ? [] : st.wanted);
    this.#afterAccept();
  }

  #onDelta(resp: DeltaDiscoveryResponse): void {
    const typeUrl = resp.typeUrl ?? '';
    const nonce = resp.nonce ?? '';
    const version = resp.systemVersionInfo ?? '';
    const st = this.#byUrl.get(typeUrl);
    if (!st) {
      this.#rejectUnknownType(typeUrl, nonce);
      return;
    }
    st.nonce = nonce;
    this.#typeStats(st)?.counter('update_attempt').inc();
    const items: { any: EncodedAny; what: string; name?: string; version?: string }[] = [];
    const problems: string[] = [];
    const keep = new Map<string, Held>();
    (resp.resources ?? []).forEach((r, i) => {
      const what = `resources[${i}]${r.name !== undefined ? ` ("${r.name}")` : ''}`;
      if (r.resource) {
        items.push({
          any: r.resource,
          what,
          ...(r.name !== undefined ? { name: r.name } : {}),
          ...(r.version !== undefined ? { version: r.version } : {}),
        });
        return;
      }
      // A resource without a body refreshes one the client holds (a TTL heartbeat).
      const held = r.name !== undefined ? st.held.get(r.name) : undefined;
      if (held) keep.set(held.name, held);
      else problems.push(`${what}: has no resource`);
    });
    const decoded = this.#decodeAll(st, items);
    problems.push(...decoded.problems);
    const next = new Map(st.held);
    const removed = resp.removedResources ?? [];
    if (problems.length === 0) {
      for (const name of removed) next.delete(name);
      for (const [n, h] of decoded.resources) next.set(n, h);
      for (const [n, h] of keep) next.set(n, h);
      problems.push(...this.#crossCheck(st, next));
    }
    if (problems.length > 0) {
      this.#nack(st, version, nonce, problems);
      this.#write({
        typeUrl,
        responseNonce: nonce,
        errorDetail: { code: INVALID_ARGUMENT, message: nackMessage(problems) },
      });
      return;
    }
    for (const name of removed) if (st.wanted.has(name)) st.absent.add(name);
    for (const name of decoded.resources.keys()) st.absent.delete(name);
    this.#accept(st, next, version);
    this.#write({ typeUrl, responseNonce: nonce });
    this.#afterAccept();
  }

  #rejectUnknownType(typeUrl: string, nonce: string): void {
    const message =
      typeUrl === ''
        ? 'response has no type_url'
        : `type ${typeUrl} was not subscribed to: the Trellis proxy consumes only CDS, EDS, LDS, RDS and SDS`;
    this.#log.warn(`xDS: rejected a response (nonce ${nonce}): ${message}`);
    const errorDetail = { code: INVALID_ARGUMENT, message };
    if (this.#protocol === 'sotw') {
      this.#write({ typeUrl, responseNonce: nonce, errorDetail });
    } else {
      this.#write({ typeUrl, responseNonce: nonce, errorDetail });
    }
  }

  #decodeAll(
    st: TypeState,
    items: readonly { any: EncodedAny; what: string; name?: string; version?: string }[],
  ): { resources: Map<string, Held>; problems: string[] } {
    const resources = new Map<string, Held>();
    const where = new Map<string, string>();
    const problems: string[] = [];
    const label = RESOURCE_LABEL[st.kind.typeUrl];
    for (const item of items) {
      const key = item.any.typeUrl === st.kind.typeUrl ? hashOf(item.any.value) : '';
      let held = key !== '' ? st.byKey.get(key) : undefined;
      if (!held) {
        const r = decodeXdsResource(st.kind.typeUrl, item.any, item.what, this.#opts.validation);
        if (!r.ok) {
          problems.push(...r.error);
          continue;
        }
        held = { name: r.value.name, resource: deepFreeze(r.value.resource), key, version: '' };
      }
      if (item.name !== undefined && item.name !== held.name) {
        problems.push(`${item.what}: is named "${item.name}" but holds ${label} "${held.name}"`);
        continue;
      }
      const prev = where.get(held.name);
      if (prev !== undefined) {
        problems.push(`${item.what}: duplicates ${label} "${held.name}" of ${prev}`);
        continue;
      }
      where.set(held.name, item.what);
      const version = item.version ?? '';
      resources.set(held.name, held.version === version ? held : { ...held, version });
    }
    return { resources, problems };
  }

  /** Checks across resources: listener addresses, validate_clusters. */
  #crossCheck(st: TypeState, next: ReadonlyMap<string, Held>): string[] {
    if (st.kind.type === 'listeners')
      return checkListenerSet([...next.values()].map((h) => h.resource as Listener));
    if (st.kind.type !== 'routes') return [];
    const problems: string[] = [];
    for (const h of next.values()) {
      const rc = h.resource as RouteConfiguration;
      if (rc.validateClusters !== true) continue;
      for (const c of referencedClusters(rc))
        if (!this.#types.clusters.held.has(c) && !this.#config.clusters.has(c))
          problems.push(
            `route configuration "${h.name}": references unknown cluster "${c}" (validate_clusters is set)`,
          );
    }
    return problems;
  }

  #nack(st: TypeState, version: string, nonce: string, problems: readonly string[]): void {
    st.nacks++;
    const message = nackMessage(problems);
    st.lastNack = { version, nonce, message, at: this.#wall() };
    this.#typeStats(st)?.counter('update_rejected').inc();
    this.#log.warn(
      `xDS: rejected ${st.kind.short} update version "${version}" (nonce ${nonce}), keeping version "${st.version}":\n${message}`,
    );
  }

  #accept(st: TypeState, next: Map<string, Held>, version: string): void {
    st.acks++;
    st.setHeld(next);
    st.version = version;
    st.generation++;
    st.lastUpdateAt = this.#wall();
    this.#typeStats(st)?.counter('update_success').inc();
    this.#log.debug(`xDS: accepted ${st.kind.short} version "${version}" (${next.size} resources)`);
  }

  /** Envoy's update stats of CDS and LDS (`cluster_manager.cds.*`, `listener_manager.lds.*`). */
  #typeStats(st: TypeState): StatsScope | undefined {
    const s = this.#opts.stats;
    if (!s) return undefined;
    if (st.kind.type === 'clusters') return s.scope('cluster_manager.cds');
    if (st.kind.type === 'listeners') return s.scope('listener_manager.lds');
    return undefined;
  }

  #afterAccept(): void {
    this.#updateWanted();
    this.#reconcile();
  }

  /** EDS follows the clusters (held and applied), RDS the listeners. */
  #updateWanted(): void {
    const eds = new Set<string>();
    const clusters = [
      ...[...this.#types.clusters.held.values()].map((h) => h.resource as Cluster),
      ...this.#config.clusters.values(),
    ];
    for (const c of clusters) {
      const n = edsServiceName(c);
      if (n !== undefined) eds.add(n);
    }
    const rds = new Set<string>();
    const listeners = [
      ...[...this.#types.listeners.held.values()].map((h) => h.resource as Listener),
      ...this.#config.listeners.values(),
    ];
    for (const l of listeners) for (const n of rdsNames(l)) rds.add(n);
    const sds = new Set<string>();
    for (const r of [...clusters, ...listeners]) for (const n of referencedSecrets(r)) sds.add(n);
    for (const [st, names] of [
      [this.#types.endpoints, eds],
      [this.#types.routes, rds],
      [this.#types.secrets, sds],
    ] as const) {
      if (sameSet(st.wanted, names)) continue;
      st.wanted = names;
      for (const n of [...st.absent]) if (!names.has(n)) st.absent.delete(n);
      this.#syncSubscription(st);
    }
  }

  // -------------------------------------------------------------------------------------
  // Warming and applying

  /** What the held update of CDS or LDS still waits for: dependency name → timeout (ms, 0 = none). */
  #missing(type: 'clusters' | 'listeners'): Map<string, number> {
    const st = this.#types[type];
    const out = new Map<string, number>();
    if (st.generation === this.#appliedGeneration[type]) return out;
    const dep = type === 'clusters' ? this.#types.endpoints : this.#types.routes;
    const applied: ReadonlyMap<string, unknown> =
      type === 'clusters' ? this.#config.clusters : this.#config.listeners;
    const need = (name: string, source: ConfigSource | undefined): void => {
      if (dep.held.has(name) || dep.absent.has(name) || dep.timedOut.has(name) || out.has(name))
        return;
      out.set(name, this.#fetchTimeout(source));
    };
    for (const [name, h] of st.held) {
      if (applied.get(name) === h.resource) continue;
      if (type === 'clusters') {
        const c = h.resource as Cluster;
        const n = edsServiceName(c);
        if (n !== undefined) need(n, c.edsClusterConfig?.edsConfig);
      } else {
        const l = h.resource as Listener;
        for (const n of rdsNames(l)) need(n, rdsSource(l, n));
      }
    }
    return out;
  }

  #fetchTimeout(source: ConfigSource | undefined): number {
    const fromSource = durationMs(source?.initialFetchTimeout);
    if (fromSource !== undefined) return Math.max(0, fromSource);
    return Math.max(0, this.#opts.initialFetchTimeoutMs ?? 15_000);
  }

  #armWarming(dep: TypeState, missing: ReadonlyMap<string, number>): void {
    for (const [name, t] of dep.warmTimers)
      if (!missing.has(name)) {
        this.#timers.clearTimeout(t);
        dep.warmTimers.delete(name);
      }
    for (const [name, ms] of missing) {
      if (ms === 0 || dep.warmTimers.has(name)) continue;
      const t = this.#timers.setTimeout(() => {
        dep.warmTimers.delete(name);
        if (this.#closed) return;
        dep.timedOut.add(name);
        this.#log.warn(
          `xDS: ${dep.kind.short} resource "${name}" did not arrive within ${ms} ms (initial fetch timeout); applying without it`,
        );
        this.#reconcile();
      }, ms);
      dep.warmTimers.set(name, t);
    }
  }

  #clearWarming(dep: TypeState): void {
    for (const t of dep.warmTimers.values()) this.#timers.clearTimeout(t);
    dep.warmTimers.clear();
    dep.timedOut.clear();
  }

  /** Applies what is warm and hands a new configuration out when anything changed. */
  #reconcile(): void {
    if (this.#closed) return;
    const cur = this.#config;
    const t = this.#types;
    let clusters = cur.clusters;
    let listeners = cur.listeners;
    let clustersVersion = cur.versions.clusters;
    let listenersVersion = cur.versions.listeners;

    if (t.clusters.generation !== this.#appliedGeneration.clusters) {
      const missing = this.#missing('clusters');
      if (missing.size === 0) {
        clusters = new Map([...t.clusters.held].map(([n, h]) => [n, h.resource as Cluster]));
        clustersVersion = t.clusters.version;
        this.#appliedGeneration.clusters = t.clusters.generation;
        this.#clearWarming(t.endpoints);
      } else {
        this.#armWarming(t.endpoints, missing);
      }
    }
    // Envoy's initialization order: listeners wait for the first clusters to be warm.
    const clustersReady = this.#appliedGeneration.clusters > 0;
    if (clustersReady && t.listeners.generation !== this.#appliedGeneration.listeners) {
      const missing = this.#missing('listeners');
      if (missing.size === 0) {
        listeners = new Map([...t.listeners.held].map(([n, h]) => [n, h.resource as Listener]));
        listenersVersion = t.listeners.version;
        this.#appliedGeneration.listeners = t.listeners.generation;
        this.#clearWarming(t.routes);
      } else {
        this.#armWarming(t.routes, missing);
      }
    }

    const endpoints = new Map<string, ClusterLoadAssignment>();
    for (const c of clusters.values()) {
      const n = edsServiceName(c);
      const h = n !== undefined ? t.endpoints.held.get(n) : undefined;
      if (n !== undefined && h) endpoints.set(n, h.resource as ClusterLoadAssignment);
    }
    const routes = new Map<string, RouteConfiguration>();
    for (const l of listeners.values())
      for (const n of rdsNames(l)) {
        const h = t.routes.held.get(n);
        if (h) routes.set(n, h.resource as RouteConfiguration);
      }

    // Secrets: every one held that something references (they do not warm anything).
    const secrets = new Map<string, Secret>();
    for (const [n, h] of t.secrets.held)
      if (t.secrets.wanted.has(n)) secrets.set(n, h.resource as Secret);
    const curSecrets = cur.secrets ?? EMPTY_SECRETS;

    const changed: ConfigType[] = [];
    if (!sameEntries(listeners, cur.listeners)) changed.push('listeners');
    if (!sameEntries(routes, cur.routes)) changed.push('routes');
    if (!sameEntries(clusters, cur.clusters)) changed.push('clusters');
    if (!sameEntries(endpoints, cur.endpoints)) changed.push('endpoints');
    if (!sameEntries(secrets, curSecrets)) changed.push('secrets');
    const versions = {
      listeners: listenersVersion,
      routes: t.routes.version,
      clusters: clustersVersion,
      endpoints: t.endpoints.version,
      secrets: t.secrets.version,
    };
    const sameVersions = (Object.keys(versions) as ConfigType[]).every(
      (k) => versions[k] === (cur.versions[k] ?? ''),
    );
    const becameSynced =
      !this.#synced &&
      this.#appliedGeneration.clusters > 0 &&
      this.#appliedGeneration.listeners > 0;
    // Before the first full configuration, a new version alone is not worth a configuration.
    if (changed.length === 0 && !becameSynced && (sameVersions || !this.#synced)) {
      this.#prune();
      return;
    }

    const next: ProxyConfig = Object.freeze({
      listeners: changed.includes('listeners') ? listeners : cur.listeners,
      routes: changed.includes('routes') ? routes : cur.routes,
      clusters: changed.includes('clusters') ? clusters : cur.clusters,
      endpoints: changed.includes('endpoints') ? endpoints : cur.endpoints,
      secrets: changed.includes('secrets') ? secrets : curSecrets,
      versions: Object.freeze(versions),
    });
    this.#config = next;
    if (changed.includes('clusters') || changed.includes('listeners')) this.#updateWanted();
    this.#prune();
    if (changed.length > 0)
      this.#log.info(
        `xDS: applied ${changed.join(', ')} (listeners ${next.listeners.size}, routes ${next.routes.size}, clusters ${next.clusters.size}, endpoints ${next.endpoints.size}, secrets ${secrets.size})`,
      );
    try {
      this.#opts.onConfig(next, changed);
    } catch (e) {
      this.#log.error(
        `xDS: onConfig failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      );
    }
    if (becameSynced) {
      this.#synced = true;
      for (const w of this.#syncWaiters.splice(0)) w.resolve(next);
    }
  }

  /** Drops EDS, RDS and SDS resources nothing subscribes to or uses any more. */
  #prune(): void {
    for (const [st, used] of [
      [this.#types.endpoints, this.#config.endpoints],
      [this.#types.routes, this.#config.routes],
      [this.#types.secrets, this.#config.secrets ?? EMPTY_SECRETS],
    ] as const) {
      let dropped = false;
      const next = new Map(st.held);
      for (const name of st.held.keys())
        if (!st.wanted.has(name) && !used.has(name)) {
          next.delete(name);
          dropped = true;
        }
      if (dropped) st.setHeld(next);
    }
  }
}

/** The RDS config source of a route configuration name in a listener. */
function rdsSource(l: Listener, name: string): ConfigSource | undefined {
  const chains = [
    ...(l.filterChains ?? []),
    ...(l.defaultFilterChain ? [l.defaultFilterChain] : []),
  ];
  for (const fc of chains)
    for (const f of fc.filters ?? []) {
      const rds = (
        f.typedConfig as
          { rds?: { routeConfigName?: string; configSource?: ConfigSource } } | undefined
      )?.rds;
      if (rds?.routeConfigName === name) return rds.configSource;
    }
  return undefined;
}
