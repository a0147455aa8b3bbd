#!/usr/bin/env node
// The simulated proxies: a separate process (forked by run.mjs, driven over its IPC channel)
// that opens P ADS streams to the control plane over real gRPC, one per proxy, each with an
// Istio sidecar node id for a real Pod of the generated mesh. Like an Envoy it subscribes to CDS
// and LDS (wildcard), then to EDS for the EDS clusters it received and to RDS for the route
// names in its listeners, and it ACKs every response at once. It records, per proxy and type,
// the version and the receive (and ACK) time of every response, and answers the run's
// questions: "has every proxy its initial config?" and "when did every proxy receive a new
// version of these types after this mark?".
//
// Protocols (`xdsMode`): 'sotw' (StreamAggregatedResources, every response the full set of a
// type) or 'delta' (DeltaAggregatedResources, as Envoy uses with Istio's delta xDS: wildcard
// `resource_names_subscribe: ['*']` for CDS and LDS, explicit subscribe/unsubscribe diffs for
// EDS and RDS, ACKs by response_nonce). A delta proxy keeps, per type, what it holds
// (name → version, applying removed_resources), so a response's version is its
// system_version_info and the resources it reports are the ones held after applying it.
//
// Channels: by default every proxy has its own gRPC channel, hence its own TCP connection and
// HTTP/2 session, as real sidecars do; the server then pays per-connection costs (flow control,
// socket writes) as it would in a mesh, and one slow stream cannot stall the others behind a
// shared connection window. `streamsPerChannel` > 1 multiplexes proxies over shared channels
// (fewer sockets, less realistic).
//
// Messages (parent → this process), each answered with { type: 'reply', id, ... }:
//   { type: 'start', id, xds, xdsMode, size, proxies, streamsPerChannel, keepResources, client }
//                                        (client: 'lite' — grpc-lite.mjs — or 'grpc-js')
//   { type: 'waitSynced', id, timeoutMs }
//   { type: 'arm', id, gc }                  baseline: the versions every proxy holds now
//                                        (gc: collect garbage first)
//   { type: 'await', id, arm, types, timeoutMs, settleMs }  every proxy has a new version
//                                        of each of types; then wait for settleMs of quiet
//   { type: 'check', id, proxy, typeUrl, needles: [hex...] }
//   { type: 'stats', id }
//   { type: 'stop', id }
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setInterval, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  TYPE_URL,
  adsServiceDefinition,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
} from '@trellis/envoy';
import { LiteChannel } from './grpc-lite.mjs';
import { proxyNode } from './model.mjs';
import {
  clusterEdsName,
  decodeDeltaResponse,
  decodeResponse,
  encodeDeltaRequest,
  encodeNames,
  encodeRequest,
  listenerRouteNames,
} from './xds-wire.mjs';

const CDS = TYPE_URL.Cluster;
const EDS = TYPE_URL.ClusterLoadAssignment;
const LDS = TYPE_URL.Listener;
const RDS = TYPE_URL.RouteConfiguration;
const SHORT = { [CDS]: 'CDS', [EDS]: 'EDS', [LDS]: 'LDS', [RDS]: 'RDS' };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

const AdsClient = grpc.makeGenericClientConstructor(
  {
    // Requests are encoded here (xds-wire.mjs, or the product's codec for the first one).
    StreamAggregatedResources: {
      ...adsServiceDefinition.StreamAggregatedResources,
      requestSerialize: (b) => b,
      responseDeserialize: decodeResponse,
    },
    DeltaAggregatedResources: {
      ...adsServiceDefinition.DeltaAggregatedResources,
      requestSerialize: (b) => b,
      responseDeserialize: decodeDeltaResponse,
    },
  },
  'AggregatedDiscoveryService',
);

/** The same ADS client over grpc-lite.mjs (the default; `client: 'grpc-js'` for the other). */
class LiteAdsClient extends LiteChannel {
  DeltaAggregatedResources() {
    return this.open('DeltaAggregatedResources', decodeDeltaResponse);
  }
  StreamAggregatedResources() {
    return this.open('StreamAggregatedResources', decodeResponse);
  }
}

// Interned names and shared encoded name lists: 500 proxies mostly hold the same 3,000 names.
const interned = new Map();
const intern = (s) => {
  const x = interned.get(s);
  if (x !== undefined) return x;
  interned.set(s, s);
  return s;
};
const nameBlocks = new Map();
const namesBlock = (names, field = 3) => {
  const key = `${field}\n${names.join('\n')}`;
  let b = nameBlocks.get(key);
  if (!b) nameBlocks.set(key, (b = encodeNames(names, field)));
  return b;
};

/**
 * Delta: what a held resource is, shared by every proxy that holds the same name at the same
 * version: `{ version }`, plus for a Cluster its EDS name (`eds`) and for a Listener its RDS
 * route names (`routes`), so each resource version is peeked at once, not once per proxy.
 */
const heldRecords = new Map();
function heldRecord(typeUrl, name, version, value) {
  const key = `${typeUrl}\n${name}\n${version}`;
  let rec = heldRecords.get(key);
  if (rec) return rec;
  rec = { version: intern(version) };
  if (typeUrl === CDS) {
    const n = clusterEdsName(value);
    if (n !== undefined) rec.eds = intern(n);
  } else if (typeUrl === LDS) {
    const routes = new Set();
    listenerRouteNames(value, routes);
    rec.routes = [...routes].map(intern);
  }
  heldRecords.set(key, rec);
  return rec;
}

const sameNames = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Arms: baselines and first new responses, by arm id. */
const arms = new Map();
const counters = { responses: 0, bytes: 0, errors: 0, byType: {}, bytesByType: {} };

class SimProxy {
  constructor(p, node, client, keep, delta) {
    this.p = p;
    this.node = node;
    this.keep = keep;
    this.delta = delta;
    this.types = new Map();
    this.syncedAt = undefined;
    this.ended = undefined;
    this.call = delta ? client.DeltaAggregatedResources() : client.StreamAggregatedResources();
    this.call.on('data', (r) => (delta ? this.onDeltaResponse(r) : this.onResponse(r)));
    this.call.on('error', (e) => {
      counters.errors++;
      this.ended ??= e.message;
    });
    this.call.on('status', (s) => {
      this.ended ??= `stream ended: ${s.code} ${s.details}`;
    });
    this.state(CDS).names = null;
    this.state(LDS).names = null;
    if (delta) {
      // Wildcard subscriptions, explicit as Envoy sends them with Istio's delta xDS.
      const wildcard = ['*'];
      this.call.write(
        Buffer.from(
          encodeDeltaDiscoveryRequest({ node, typeUrl: CDS, resourceNamesSubscribe: wildcard }),
        ),
      );
      this.call.write(encodeDeltaRequest(LDS, namesBlock(wildcard, 3), undefined, ''));
    } else {
      this.call.write(Buffer.from(encodeDiscoveryRequest({ node, typeUrl: CDS })));
      this.call.write(encodeRequest('', undefined, LDS, ''));
    }
  }

  state(typeUrl) {
    let st = this.types.get(typeUrl);
    if (!st) {
      st = {
        typeUrl,
        names: [],
        block: undefined,
        version: '',
        nonce: '',
        subscribedAt: 0,
        history: [],
        last: undefined,
        // Delta: name → heldRecord, and (on the proxies that keep resources) name → bytes.
        held: new Map(),
        bodies: new Map(),
      };
      this.types.set(typeUrl, st);
    }
    return st;
  }

  onResponse(r) {
    const t = now();
    counters.responses++;
    counters.bytes += r.bytes;
    const short = SHORT[r.typeUrl] ?? r.typeUrl;
    counters.byType[short] = (counters.byType[short] ?? 0) + 1;
    counters.bytesByType[short] = (counters.bytesByType[short] ?? 0) + r.bytes;
    const st = this.state(r.typeUrl);
    st.version = r.versionInfo;
    st.nonce = r.nonce;
    let follow;
    if (r.typeUrl === CDS) {
      const eds = [];
      for (const v of r.resources) {
        const n = clusterEdsName(v);
        if (n !== undefined) eds.push(intern(n));
      }
      follow = [EDS, eds.sort()];
    } else if (r.typeUrl === LDS) {
      const routes = new Set();
      for (const v of r.resources) listenerRouteNames(v, routes);
      follow = [RDS, [...routes].map(intern).sort()];
    }
    // ACK at once (Envoy would first warm clusters and listeners; that is not measured here).
    this.call.write(encodeRequest(r.versionInfo, st.block, r.typeUrl, r.nonce));
    const rec = { v: r.versionInfo, t, a: now(), n: r.resources.length, b: r.bytes };
    st.history.push(rec);
    if (this.keep) st.last = r.resources;
    if (follow) this.subscribe(follow[0], follow[1]);
    for (const arm of arms.values()) arm.see(this, r.typeUrl, rec);
    if (this.syncedAt === undefined && this.isSynced()) this.syncedAt = rec.a;
  }

  /**
   * Delta: applies a response to what the proxy holds of its type (removed names first, then
   * the resources sent), ACKs it, and follows CDS and LDS with EDS and RDS subscriptions as the
   * state-of-the-world path does, from everything held rather than from the response alone.
   */
  onDeltaResponse(r) {
    const t = now();
    counters.responses++;
    counters.bytes += r.bytes;
    const short = SHORT[r.typeUrl] ?? r.typeUrl;
    counters.byType[short] = (counters.byType[short] ?? 0) + 1;
    counters.bytesByType[short] = (counters.bytesByType[short] ?? 0) + r.bytes;
    const st = this.state(r.typeUrl);
    st.version = r.versionInfo;
    st.nonce = r.nonce;
    for (const name of r.removed) {
      st.held.delete(name);
      st.bodies.delete(name);
    }
    for (const res of r.resources) {
      const name = intern(res.name);
      st.held.set(name, heldRecord(r.typeUrl, name, res.version, res.value));
      if (this.keep) st.bodies.set(name, res.value);
    }
    this.call.write(encodeDeltaRequest(r.typeUrl, undefined, undefined, r.nonce));
    let follow;
    if (r.typeUrl === CDS) {
      const eds = [];
      for (const rec of st.held.values()) if (rec.eds !== undefined) eds.push(rec.eds);
      follow = [EDS, eds.sort()];
    } else if (r.typeUrl === LDS) {
      const routes = new Set();
      for (const rec of st.held.values()) for (const n of rec.routes ?? []) routes.add(n);
      follow = [RDS, [...routes].sort()];
    }
    const rec = { v: r.versionInfo, t, a: now(), n: st.held.size, b: r.bytes };
    st.history.push(rec);
    if (follow) this.subscribe(follow[0], follow[1]);
    for (const arm of arms.values()) arm.see(this, r.typeUrl, rec);
    if (this.syncedAt === undefined && this.isSynced()) this.syncedAt = rec.a;
  }

  /** The resources a proxy keeps of a type (the last response's, or in delta all held). */
  kept(typeUrl) {
    const st = this.types.get(typeUrl);
    if (!st) return [];
    return this.delta ? [...st.bodies.values()] : (st.last ?? []);
  }

  /**
   * Changes the names of an EDS or RDS subscription: state of the world, a new request with the
   * last nonce; delta, a request subscribing the new names and unsubscribing the dropped ones
   * (which the proxy then no longer holds).
   */
  subscribe(typeUrl, names) {
    const st = this.state(typeUrl);
    if (st.subscribedAt > 0 ? sameNames(st.names, names) : names.length === 0) return;
    if (this.delta) {
      const had = new Set(st.names);
      const want = new Set(names);
      const add = names.filter((n) => !had.has(n));
      const drop = st.names.filter((n) => !want.has(n));
      for (const n of drop) {
        st.held.delete(n);
        st.bodies.delete(n);
      }
      st.names = names;
      // The server answers only subscriptions that add names: only they wait for a response.
      if (add.length > 0) st.subscribedAt = now();
      this.call.write(
        encodeDeltaRequest(
          typeUrl,
          add.length ? namesBlock(add, 3) : undefined,
          drop.length ? namesBlock(drop, 4) : undefined,
          '',
        ),
      );
      return;
    }
    st.names = names;
    st.block = namesBlock(names);
    st.subscribedAt = now();
    this.call.write(encodeRequest(st.version, st.block, typeUrl, st.nonce));
  }

  /** Has CDS and LDS, and EDS and RDS for the names they named. */
  isSynced() {
    for (const t of [CDS, LDS]) if (!this.types.get(t)?.history.length) return false;
    for (const t of [EDS, RDS]) {
      const st = this.types.get(t);
      if (!st) return false;
      if (st.names.length === 0) continue;
      const last = st.history[st.history.length - 1];
      if (!last || last.t < st.subscribedAt) return false;
    }
    return true;
  }

  close() {
    this.call.cancel();
  }
}

/** Collects, per proxy and type, the first response whose version differs from the baseline. */
class Arm {
  constructor(proxies) {
    this.at = now();
    this.baseline = proxies.map((p) => {
      const m = new Map();
      for (const [t, st] of p.types) m.set(t, st.version);
      return m;
    });
    this.first = proxies.map(() => new Map());
    /** Proxies with a first new response, by type (so `missing` is not a walk of all proxies). */
    this.reached = new Map();
    this.after = {};
    this.waiter = undefined;
    this.lastSeen = this.at;
  }
  see(proxy, typeUrl, rec) {
    this.lastSeen = rec.a;
    const short = SHORT[typeUrl] ?? typeUrl;
    this.after[short] = (this.after[short] ?? 0) + 1;
    const firsts = this.first[proxy.p];
    if (firsts.has(typeUrl) || this.baseline[proxy.p].get(typeUrl) === rec.v) return;
    firsts.set(typeUrl, rec);
    this.reached.set(typeUrl, (this.reached.get(typeUrl) ?? 0) + 1);
    this.waiter?.();
  }
  /** Proxy × type pairs still without a new version (checked on every response: O(types)). */
  missing(types) {
    let n = 0;
    for (const t of types) n += this.first.length - (this.reached.get(t) ?? 0);
    return n;
  }
  /** Every type that reached any proxy (required ones first), with arrival times. */
  summary(required) {
    const types = [...required];
    for (const f of this.first) for (const t of f.keys()) if (!types.includes(t)) types.push(t);
    const out = { byType: {}, responsesAfterArm: this.after, missing: this.missing(required) };
    for (const t of types) {
      const recv = [];
      const ack = [];
      const versions = new Set();
      for (const f of this.first) {
        const r = f.get(t);
        if (!r) continue;
        recv.push(r.t - this.at);
        ack.push(r.a - this.at);
        versions.add(r.v);
      }
      recv.sort((a, b) => a - b);
      out.byType[SHORT[t]] = {
        proxies: recv.length,
        versions: [...versions],
        firstRecvAt: recv.length ? this.at + recv[0] : undefined,
        lastRecvAt: recv.length ? this.at + recv[recv.length - 1] : undefined,
        lastAckAt: ack.length ? this.at + Math.max(...ack) : undefined,
        medianRecvAt: recv.length ? this.at + recv[Math.floor(recv.length / 2)] : undefined,
      };
    }
    return out;
  }
}

let proxies = [];
let clients = [];

function waitFor(cond, timeoutMs, register) {
  return new Promise((resolve) => {
    if (cond()) return resolve(true);
    let timer;
    const done = (ok) => {
      clearTimeout(timer);
      register(undefined);
      resolve(ok);
    };
    timer = setTimeout(() => done(cond()), timeoutMs);
    register(() => {
      if (cond()) done(true);
    });
  });
}

let syncWaiter;

async function handle(msg) {
  switch (msg.type) {
    case 'start': {
      const perChannel = Math.max(1, msg.streamsPerChannel ?? 1);
      const mode = msg.xdsMode ?? 'sotw';
      if (mode !== 'sotw' && mode !== 'delta') throw new Error(`unknown xdsMode ${mode}`);
      const delta = mode === 'delta';
      const options = {
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
        // Each channel its own subchannel, hence its own connection, unless shared on purpose.
        'grpc.use_local_subchannel_pool': 1,
        'grpc.keepalive_time_ms': 60_000,
      };
      for (let p = 0; p < msg.proxies; p++) {
        if (p % perChannel === 0)
          clients.push(
            msg.client === 'grpc-js'
              ? new AdsClient(msg.xds, grpc.credentials.createInsecure(), options)
              : new LiteAdsClient(msg.xds),
          );
        const client = clients[clients.length - 1];
        const keep = p < (msg.keepResources ?? 1);
        proxies.push(new SimProxy(p, proxyNode(msg.size, p), client, keep, delta));
      }
      return {
        channels: clients.length,
        startedAt: now(),
        xdsMode: delta ? 'delta' : 'sotw',
        client: msg.client === 'grpc-js' ? 'grpc-js' : 'lite',
      };
    }
    case 'waitSynced': {
      const ok = await waitFor(
        () => proxies.every((p) => p.syncedAt !== undefined),
        msg.timeoutMs,
        (fn) => (syncWaiter = fn),
      );
      const synced = proxies.filter((p) => p.syncedAt !== undefined);
      const ended = proxies.filter((p) => p.ended !== undefined);
      return {
        ok,
        synced: synced.length,
        lastSyncedAt: synced.length ? Math.max(...synced.map((p) => p.syncedAt)) : undefined,
        firstSyncedAt: synced.length ? Math.min(...synced.map((p) => p.syncedAt)) : undefined,
        ended: ended.length,
        endedReasons: [...new Set(ended.map((p) => p.ended))].slice(0, 5),
        resources: Object.fromEntries(
          [...(proxies[0]?.types ?? new Map())].map(([t, st]) => [
            SHORT[t],
            st.history[st.history.length - 1]?.n ?? 0,
          ]),
        ),
        responseBytes: Object.fromEntries(
          [...(proxies[0]?.types ?? new Map())].map(([t, st]) => [
            SHORT[t],
            st.history[st.history.length - 1]?.b ?? 0,
          ]),
        ),
      };
    }
    case 'arm': {
      // Collect this process's garbage before the change, not during it (run.mjs --proxies-gc):
      // 500 simulated proxies share one heap here, so one of its major collections would stall
      // them all at once, which no real mesh of separate proxies does.
      if (msg.gc && typeof globalThis.gc === 'function') globalThis.gc();
      const arm = new Arm(proxies);
      arms.set(msg.id, arm);
      return { at: arm.at };
    }
    case 'await': {
      const arm = arms.get(msg.arm);
      if (!arm) throw new Error(`no arm ${msg.arm}`);
      const types = msg.types.map((s) => Object.keys(SHORT).find((t) => SHORT[t] === s));
      const ok = await waitFor(
        () => arm.missing(types) === 0,
        msg.timeoutMs,
        (fn) => (arm.waiter = fn),
      );
      // Then until no response arrived for settleMs: other types the change pushed.
      while (ok && msg.settleMs > 0 && now() - arm.lastSeen < msg.settleMs)
        await sleep(msg.settleMs - (now() - arm.lastSeen) + 1);
      arms.delete(msg.arm);
      return { ok, armedAt: arm.at, ...arm.summary(types) };
    }
    case 'check': {
      const p = proxies[msg.proxy];
      const typeUrl = Object.keys(SHORT).find((t) => SHORT[t] === msg.typeUrl);
      const last = p?.kept(typeUrl) ?? [];
      return {
        found: msg.needles.map((hex) => {
          const needle = Buffer.from(hex, 'hex');
          return last.some((v) =>
            Buffer.from(v.buffer, v.byteOffset, v.byteLength).includes(needle),
          );
        }),
      };
    }
    case 'stats': {
      const cpu = process.cpuUsage();
      return {
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        rssBytes: process.memoryUsage().rss,
        ...counters,
        ended: proxies.filter((p) => p.ended !== undefined).length,
      };
    }
    case 'stop': {
      for (const p of proxies) p.close();
      for (const c of clients) c.close();
      proxies = [];
      clients = [];
      setTimeout(() => process.exit(0), 50);
      return {};
    }
    default:
      throw new Error(`unknown message ${JSON.stringify(msg.type)}`);
  }
}

// Wake the sync waiter as proxies become synced (checked at most every 5 ms).
setInterval(() => syncWaiter?.(), 5).unref();

if (!process.send) {
  console.error('proxies.mjs is driven by run.mjs over an IPC channel (child_process.fork)');
  process.exit(2);
}
process.on('message', (msg) => {
  handle(msg).then(
    (r) => process.send({ type: 'reply', id: msg.id, ...r }),
    (e) => process.send({ type: 'reply', id: msg.id, error: String(e?.stack ?? e) }),
  );
});
process.on('disconnect', () => process.exit(0));
