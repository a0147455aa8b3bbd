// Test helpers: a raw grpc-js ADS client, a fake resource source, a manual clock.
import * as grpc from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  decodeResource,
  encodeResource,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EncodedAny,
  type Node,
} from '@trellis/envoy';
import type { ProxyInfo, ResourceSet, ResourceSource } from '../src/index.js';

export const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

export function sidecarNode(
  pod = 'reviews-v1-abc',
  ns = 'default',
  extra: Record<string, unknown> = {},
): Node {
  return {
    id: `sidecar~10.1.2.3~${pod}.${ns}~${ns}.svc.cluster.local`,
    metadata: {
      NAMESPACE: ns,
      LABELS: { app: 'reviews', version: 'v1' },
      SERVICE_ACCOUNT: 'bookinfo-reviews',
      ...extra,
    },
  };
}

/** A manual clock. */
export class ManualClock {
  t = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Resources by type and name, the same for every proxy; one version counter per type. */
export class FakeSource implements ResourceSource {
  private readonly data = new Map<string, Map<string, EncodedAny>>();
  private readonly versions = new Map<string, number>();
  calls: { proxy: string; typeUrl: string; names: readonly string[] | undefined }[] = [];
  /** Called inside resources(), e.g. to advance a clock or block. */
  onCall: (() => void | Promise<void>) | undefined;

  set(typeUrl: string, name: string, obj: object): void {
    this.typeMap(typeUrl).set(name, encodeResource(typeUrl, obj));
    this.bump(typeUrl);
  }
  remove(typeUrl: string, name: string): void {
    this.typeMap(typeUrl).delete(name);
    this.bump(typeUrl);
  }
  version(typeUrl: string): string {
    return String(this.versions.get(typeUrl) ?? 0);
  }
  async resources(
    proxy: ProxyInfo,
    typeUrl: string,
    names: readonly string[] | undefined,
  ): Promise<ResourceSet> {
    this.calls.push({ proxy: proxy.nodeId, typeUrl, names });
    await this.onCall?.();
    const all = this.typeMap(typeUrl);
    const resources = new Map<string, EncodedAny>();
    for (const [n, r] of all) if (!names || names.includes(n)) resources.set(n, r);
    return { version: this.version(typeUrl), resources };
  }
  private typeMap(typeUrl: string): Map<string, EncodedAny> {
    let m = this.data.get(typeUrl);
    if (!m) this.data.set(typeUrl, (m = new Map<string, EncodedAny>()));
    return m;
  }
  private bump(typeUrl: string): void {
    this.versions.set(typeUrl, (this.versions.get(typeUrl) ?? 0) + 1);
  }
}

const AdsClient = grpc.makeGenericClientConstructor(
  adsServiceDefinition,
  'AggregatedDiscoveryService',
);

/** A stream with a queue of received messages and its final status. */
export class TestStream<Req, Res> {
  private readonly received: Res[] = [];
  private readonly waiters: ((r: Res) => void)[] = [];
  readonly status: Promise<grpc.StatusObject>;
  readonly call: grpc.ClientDuplexStream<Req, Res>;

  constructor(call: grpc.ClientDuplexStream<Req, Res>) {
    this.call = call;
    call.on('data', (r: Res) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.received.push(r);
    });
    this.status = new Promise((resolve) => call.on('status', resolve));
    call.on('error', () => undefined);
  }
  send(req: Req): void {
    this.call.write(req);
  }
  /** The next response (waits up to 5 s, then fails). */
  next(): Promise<Res> {
    const r = this.received.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response within 5s')), 5000);
      this.waiters.push((x) => {
        clearTimeout(timer);
        resolve(x);
      });
    });
  }
  /** Responses received and not yet taken. */
  get buffered(): number {
    return this.received.length;
  }
  cancel(): void {
    this.call.cancel();
  }
}

export class TestClient {
  private readonly client: grpc.Client;
  constructor(port: number) {
    this.client = new AdsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }
  sotw(): TestStream<DiscoveryRequest, DiscoveryResponse> {
    const c = this.client as unknown as {
      StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
    };
    return new TestStream(c.StreamAggregatedResources());
  }
  delta(): TestStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
    const c = this.client as unknown as {
      DeltaAggregatedResources(): grpc.ClientDuplexStream<
        DeltaDiscoveryRequest,
        DeltaDiscoveryResponse
      >;
    };
    return new TestStream(c.DeltaAggregatedResources());
  }
  close(): void {
    this.client.close();
  }
}

/** Names of the resources in a response (decoded). */
export function names(resources: readonly EncodedAny[] | undefined): string[] {
  return (resources ?? []).map((r) => {
    const d = decodeResource(r);
    return String(d.name ?? d.clusterName);
  });
}

/** Waits until `cond` holds, polling on the event loop (bounded). */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Records the server's ACK/NACK/connect hooks and lets a test wait for the next one. */
export class HookRecorder {
  readonly events: {
    kind: 'ack' | 'nack' | 'connect' | 'disconnect';
    typeUrl?: string;
    nodeId: string;
  }[] = [];
  private waiters: { pred: (e: HookRecorder['events'][number]) => boolean; resolve: () => void }[] =
    [];
  readonly hooks = {
    onAck: (p: ProxyInfo, typeUrl: string) => this.add({ kind: 'ack', typeUrl, nodeId: p.nodeId }),
    onNack: (p: ProxyInfo, typeUrl: string) =>
      this.add({ kind: 'nack', typeUrl, nodeId: p.nodeId }),
    onConnect: (s: { proxy: ProxyInfo }) => this.add({ kind: 'connect', nodeId: s.proxy.nodeId }),
    onDisconnect: (s: { proxy: ProxyInfo }) =>
      this.add({ kind: 'disconnect', nodeId: s.proxy.nodeId }),
  };
  private add(e: HookRecorder['events'][number]): void {
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(e)) return true;
      w.resolve();
      return false;
    });
  }
  /** Resolves at the next event of this kind (for this node, if given), failing after 5 s. */
  next(kind: HookRecorder['events'][number]['kind'], nodeId?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${kind} within 5s`)), 5000);
      this.waiters.push({
        pred: (e) => e.kind === kind && (nodeId === undefined || e.nodeId === nodeId),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/** A ClusterLoadAssignment with one endpoint, `ip:80`, encoded. */
export const cla = (name: string, ip: string): EncodedAny =>
  encodeResource(EDS, {
    clusterName: name,
    endpoints: [
      {
        lbEndpoints: [{ endpoint: { address: { socketAddress: { address: ip, portValue: 80 } } } }],
      },
    ],
  });
