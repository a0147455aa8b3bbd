// Service cluster IPs in TRANSPARENT capture: the runtime does the API server's allocator's job.
// A Service stored without spec.clusterIP gets one from the service CIDR (10.96.0.0/16: never
// routed, only captured by sidecars), written into the store (spec.clusterIP and clusterIPs),
// stable per namespace/name across runs (the table is kept in runtime/cluster-ips.json).
// Headless Services (clusterIP: None) and ExternalName Services are left alone. The Services
// with an address are reported to the pod network, which writes them into every pod's hosts file.
import type { KubeObject } from '@trellis/api';
import { ConflictError, NotFoundError, errorMessage } from '@trellis/core';
import type { ConfigStore, Watch, WatchEvent } from '@trellis/config';
import { readJson, writeJsonAtomic } from './runtime-files.js';
import {
  IpAllocator,
  SERVICE_CIDR,
  ipToInt,
  parseCidr,
  type ServiceAddress,
} from './transparent.js';

/** namespace/name -> cluster IP, persisted. */
export class ClusterIpTable {
  readonly #file: string;
  readonly #ips: IpAllocator;
  readonly #byKey = new Map<string, string>();
  readonly #cidr: string;

  constructor(file: string, cidr = SERVICE_CIDR) {
    this.#file = file;
    this.#cidr = cidr;
    // .1 .. .9 stay free (Kubernetes gives .1 to the `kubernetes` Service, .10 to DNS).
    this.#ips = new IpAllocator(cidr, 9);
    const v = readJson(file) as { clusterIPs?: Record<string, unknown> } | undefined;
    for (const [k, ip] of Object.entries(v?.clusterIPs ?? {}))
      if (typeof ip === 'string' && this.inRange(ip)) {
        this.#byKey.set(k, ip);
        this.#ips.reserve(ip);
      }
  }

  inRange(ip: string): boolean {
    try {
      const { base, prefix } = parseCidr(this.#cidr);
      const i = ipToInt(ip) - base;
      return i > 0 && i < 2 ** (32 - prefix) - 1;
    } catch {
      return false;
    }
  }

  /** The Service's address: the one it had before, else the next free one. */
  ipFor(namespace: string, name: string): string {
    const key = `${namespace}/${name}`;
    const known = this.#byKey.get(key);
    if (known) return known;
    const { ip } = this.#ips.allocate();
    this.#byKey.set(key, ip);
    this.#flush();
    return ip;
  }

  /** A Service that chose its own address in our range: nobody else gets it. */
  claim(namespace: string, name: string, ip: string): void {
    if (!this.inRange(ip)) return;
    const key = `${namespace}/${name}`;
    if (this.#byKey.get(key) === ip) return;
    this.#byKey.set(key, ip);
    this.#ips.reserve(ip);
    this.#flush();
  }

  #flush(): void {
    writeJsonAtomic(this.#file, { clusterIPs: Object.fromEntries([...this.#byKey].sort()) });
  }
}

interface ServiceSpecLike {
  clusterIP?: unknown;
  clusterIPs?: unknown;
  type?: unknown;
}

export interface ServiceAddressOptions {
  readonly store: ConfigStore;
  readonly table: ClusterIpTable;
  /** Every Service with a cluster IP, after each change. */
  readonly onChange: (services: readonly ServiceAddress[]) => void;
  readonly log: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    f?: Record<string, unknown>,
  ) => void;
}

/** Watches Services: assigns missing cluster IPs and reports the addresses. */
export class ServiceAddressController {
  readonly #o: ServiceAddressOptions;
  readonly #services = new Map<string, ServiceAddress>();
  #watch: Watch | undefined;
  #scheduled = false;
  #closed = false;

  constructor(o: ServiceAddressOptions) {
    this.#o = o;
  }

  get services(): readonly ServiceAddress[] {
    return [...this.#services.values()];
  }

  async start(): Promise<void> {
    const list = await this.#o.store.list({ group: '', kind: 'Service' });
    for (const s of list.items) await this.#apply(s);
    this.#notify();
    this.#watch = await this.#o.store.watch(
      { resourceVersion: list.resourceVersion },
      {
        onEvent: (e) => void this.#onEvent(e),
        onError: (err) => {
          this.#o.log('warn', 'Service watch failed; listing again', { error: err.message });
          void this.#watch?.close().then(() => (this.#closed ? undefined : this.start()));
        },
      },
    );
  }

  async #onEvent(e: WatchEvent): Promise<void> {
    if (e.object.kind !== 'Service' || e.object.apiVersion !== 'v1') return;
    if (e.type === 'DELETED') this.#services.delete(keyOfService(e.object));
    else await this.#apply(e.object);
    this.#notify();
  }

  async #apply(svc: KubeObject): Promise<void> {
    const ns = svc.metadata.namespace ?? 'default';
    const key = `${ns}/${svc.metadata.name}`;
    const spec = (svc.spec ?? {}) as ServiceSpecLike;
    const current = typeof spec.clusterIP === 'string' ? spec.clusterIP : '';
    if (current === 'None' || spec.type === 'ExternalName') {
      this.#services.delete(key);
      return;
    }
    if (current !== '') {
      this.#o.table.claim(ns, svc.metadata.name, current);
      this.#services.set(key, { namespace: ns, name: svc.metadata.name, clusterIP: current });
      return;
    }
    const ip = this.#o.table.ipFor(ns, svc.metadata.name);
    this.#services.set(key, { namespace: ns, name: svc.metadata.name, clusterIP: ip });
    try {
      await this.#o.store.update({
        ...svc,
        spec: { ...(svc.spec ?? {}), clusterIP: ip, clusterIPs: [ip] },
      });
    } catch (e) {
      // A newer version is on its way (it gets its address when its event arrives).
      if (e instanceof ConflictError || e instanceof NotFoundError) return;
      this.#o.log('warn', 'cannot assign a cluster IP', { service: key, error: errorMessage(e) });
    }
  }

  #notify(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (!this.#closed) this.#o.onChange(this.services);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#watch?.close();
  }
}

function keyOfService(o: KubeObject): string {
  return `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
}
