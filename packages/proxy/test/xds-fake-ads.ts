// A small scriptable ADS server for the xDS client tests (the proxy may not import the real
// one): it records every request of every stream and sends whatever a test tells it to,
// state of the world or delta, with resources encoded by @trellis/envoy's strict encoder.
import * as grpc from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  encodeResource,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EncodedAny,
} from '@trellis/envoy';

/** Polls `fn` until it returns something truthy (real time; generous default deadline). */
export async function waitFor<T>(
  fn: () => T | undefined | null | false,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One ADS stream as the server sees it. */
export class FakeStream<Req, Res> {
  readonly requests: Req[] = [];
  #read = 0;
  #ended = false;
  readonly #call: grpc.ServerDuplexStream<Req, Res>;

  constructor(call: grpc.ServerDuplexStream<Req, Res>) {
    this.#call = call;
    call.on('data', (r: Req) => this.requests.push(r));
    call.on('end', () => {
      this.#ended = true;
    });
    call.on('error', () => {
      this.#ended = true;
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** The next request not yet read, in order. */
  async next(what = 'the next request'): Promise<Req> {
    await waitFor(() => this.requests.length > this.#read, what);
    return this.requests[this.#read++] as Req;
  }

  /** The first unread request matching `pred` (earlier non-matching ones stay unread). */
  async take(pred: (r: Req) => boolean, what: string): Promise<Req> {
    let found: Req | undefined;
    await waitFor(() => {
      for (let i = this.#read; i < this.requests.length; i++) {
        const r = this.requests[i] as Req;
        if (pred(r)) {
          this.requests.splice(i, 1);
          this.requests.splice(this.#read, 0, r);
          this.#read++;
          found = r;
          return true;
        }
      }
      return false;
    }, what);
    return found as Req;
  }

  /** Unread requests. */
  unread(): Req[] {
    return this.requests.slice(this.#read);
  }

  send(res: Res): void {
    this.#call.write(res);
  }
}

export type SotwStream = FakeStream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaStream = FakeStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/** The scriptable server. */
export class FakeAdsServer {
  readonly sotw: SotwStream[] = [];
  readonly delta: DeltaStream[] = [];
  #server: grpc.Server | undefined;
  port = 0;

  /** Listens on 127.0.0.1 (port 0 the first time; the same port again after `stop()`). */
  async start(): Promise<number> {
    const server = new grpc.Server();
    server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (
        call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
      ) => {
        this.sotw.push(new FakeStream(call));
      },
      DeltaAggregatedResources: (
        call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
      ) => {
        this.delta.push(new FakeStream(call));
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    this.#server = server;
    return this.port;
  }

  /** Kills every stream and stops listening (a control-plane crash). */
  stop(): void {
    this.#server?.forceShutdown();
    this.#server = undefined;
  }

  async sotwStream(n: number): Promise<SotwStream> {
    return waitFor(() => this.sotw[n], `SotW stream #${n}`);
  }

  async deltaStream(n: number): Promise<DeltaStream> {
    return waitFor(() => this.delta[n], `delta stream #${n}`);
  }
}

/** A SotW response of resources given in proto3-JSON form. */
export function sotwResponse(
  typeUrl: string,
  version: string,
  nonce: string,
  resources: readonly object[],
): DiscoveryResponse {
  return {
    typeUrl,
    versionInfo: version,
    nonce,
    resources: resources.map((r) => encodeResource(typeUrl, r)),
  };
}

/** A delta response: `[name, version, resource]` triples and removed names. */
export function deltaResponse(
  typeUrl: string,
  version: string,
  nonce: string,
  resources: readonly (readonly [string, string, object | EncodedAny])[],
  removed: readonly string[] = [],
): DeltaDiscoveryResponse {
  const r: DeltaDiscoveryResponse = {
    typeUrl,
    systemVersionInfo: version,
    nonce,
    resources: resources.map(([name, v, res]) => ({
      name,
      version: v,
      resource:
        'value' in res && res.value instanceof Uint8Array ? res : encodeResource(typeUrl, res),
    })),
  };
  if (removed.length > 0) r.removedResources = [...removed];
  return r;
}
