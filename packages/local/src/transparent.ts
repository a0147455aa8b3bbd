// The pure parts of TRANSPARENT capture (Linux, root): names of a runtime's bridge and its pods'
// network namespaces and veths, the choice of a free /16 for the bridge, pod IP allocation, the
// iptables rules istio-iptables installs in an injected pod (REDIRECT mode: outbound to 15001,
// inbound to 15006), and the /etc/hosts and resolv.conf a pod sees (Service names -> cluster IPs).
// The system side (ip, iptables-restore) is in netns.ts.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

/** The sidecar's uid and gid (Istio's istio-proxy user): its own traffic is never captured. */
export const PROXY_UID = 1337;
export const PROXY_GID = 1337;
/** Istio's capture ports. */
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_CAPTURE_PORT = 15006;
/** Inbound ports never redirected (istio-iptables: HBONE, Prometheus, health, merged metrics). */
export const INBOUND_EXCLUDED_PORTS: readonly number[] = [15008, 15090, 15021, 15020];
/** The service CIDR cluster IPs come from (never routed: only captured by sidecars). */
export const SERVICE_CIDR = '10.96.0.0/16';

// ---- names ----

/** `trl<6 hex of the state directory's hash>`: the bridge, and the prefix of everything else. */
export function bridgeName(stateDir: string): string {
  return `trl${createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 6)}`;
}

/** The network namespace of the pod with address index `n` (`<bridge>-<n>`). */
export function netnsName(bridge: string, n: number): string {
  return `${bridge}-${n}`;
}

/** The host end of the pod's veth pair (`<bridge>v<n>`, at most 15 characters). */
export function hostVethName(bridge: string, n: number): string {
  const name = `${bridge}v${n}`;
  if (name.length > 15) throw new Error(`interface name ${name} is longer than 15 characters`);
  return name;
}

// ---- IPv4 arithmetic ----

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

export function parseCidr(cidr: string): Cidr {
  const [ip = '', len = '32'] = cidr.split('/');
  const prefix = Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`bad CIDR ${cidr}`);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, prefix };
}

/** Whether two IPv4 CIDRs share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  const prefix = Math.min(x.prefix, y.prefix);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return (x.base & mask) >>> 0 === (y.base & mask) >>> 0;
}

// ---- the bridge's subnet ----

/** Candidate subnets: 10.200.0.0/16 .. 10.254.0.0/16. */
export const SUBNET_CANDIDATES = 55;

/**
 * A /16 for a runtime's bridge: 10.(200+k).0.0/16 overlapping none of `taken` (the CIDRs of
 * every address on this machine's interfaces, IPv6 ones ignored), probing from a k derived from
 * the bridge name so parallel runtimes rarely try the same one. Undefined when all are taken.
 */
export function chooseSubnet(
  bridge: string,
  taken: readonly string[],
  exclude: readonly string[] = [],
): string | undefined {
  const v4 = taken.filter((c) => !c.includes(':'));
  const start = parseInt(createHash('sha256').update(bridge).digest('hex').slice(0, 8), 16);
  for (let i = 0; i < SUBNET_CANDIDATES; i++) {
    const k = (start + i) % SUBNET_CANDIDATES;
    const subnet = `10.${200 + k}.0.0/16`;
    if (exclude.includes(subnet)) continue;
    if (!v4.some((t) => cidrsOverlap(t, subnet))) return subnet;
  }
  return undefined;
}

/** The addresses of a bridge subnet: .0.1 the host (xDS, gateways), .0.2 the probe source. */
export function subnetAddresses(subnet: string): { hostIP: string; probeIP: string } {
  const { base } = parseCidr(subnet);
  return { hostIP: intToIp(base + 1), probeIP: intToIp(base + 2) };
}

// ---- address allocation ----

/**
 * Hands out the addresses of a /16 (or any CIDR), skipping the first `reserved` host indexes,
 * sequentially (next-fit, wrapping around, as host-local IPAM does: a released address is not
 * reused at once, so a stale endpoint rarely points at a new pod).
 */
export class IpAllocator {
  readonly #base: number;
  readonly #first: number;
  readonly #last: number;
  readonly #inUse = new Set<number>();
  #next: number;

  constructor(cidr: string, reserved: number) {
    const { base, prefix } = parseCidr(cidr);
    this.#base = base;
    this.#first = reserved + 1;
    this.#last = 2 ** (32 - prefix) - 2; // no broadcast address
    this.#next = this.#first;
  }

  /** The next free address and its index in the subnet (for names). */
  allocate(): { ip: string; index: number } {
    const size = this.#last - this.#first + 1;
    for (let i = 0; i < size; i++) {
      const index = this.#first + ((this.#next - this.#first + i) % size);
      if (this.#inUse.has(index)) continue;
      this.#inUse.add(index);
      this.#next = index + 1 > this.#last ? this.#first : index + 1;
      return { ip: intToIp(this.#base + index), index };
    }
    throw new Error('no free address left in the subnet');
  }

  /** Marks an address as taken (a persisted allocation). */
  reserve(ip: string): void {
    this.#inUse.add(ipToInt(ip) - this.#base);
  }

  release(ip: string): void {
    this.#inUse.delete(ipToInt(ip) - this.#base);
  }

  has(ip: string): boolean {
    return this.#inUse.has(ipToInt(ip) - this.#base);
  }
}

// ---- iptables ----

export interface IptablesOptions {
  /** Source of the runtime's readiness probes: reaches the apps directly. */
  readonly probeSource: string;
  readonly proxyUid?: number;
  readonly proxyGid?: number;
  readonly inboundPort?: number;
  readonly outboundPort?: number;
  readonly excludeInboundPorts?: readonly number[];
}

/**
 * The nat table of an injected pod as `iptables-restore` input, as istio-iptables writes it in
 * REDIRECT mode: every inbound TCP connection to 15006 (but Istio's own ports and the runtime's
 * probes), every outbound one to 15001 (but the proxy's own, and loopback), and the proxy's
 * connections to its own pod's address back to 15006 (unless bound to 127.0.0.6, the inbound
 * passthrough source).
 */
export function iptablesRules(o: IptablesOptions): string {
  const uid = o.proxyUid ?? PROXY_UID;
  const gid = o.proxyGid ?? PROXY_GID;
  const lines = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':ISTIO_INBOUND - [0:0]',
    ':ISTIO_IN_REDIRECT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    '-A PREROUTING -p tcp -j ISTIO_INBOUND',
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    ...(o.excludeInboundPorts ?? INBOUND_EXCLUDED_PORTS).map(
      (p) => `-A ISTIO_INBOUND -p tcp -m tcp --dport ${p} -j RETURN`,
    ),
    `-A ISTIO_INBOUND -s ${o.probeSource}/32 -p tcp -j RETURN`,
    '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    `-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort ?? INBOUND_CAPTURE_PORT}`,
    '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
    `-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner ${uid} -j ISTIO_IN_REDIRECT`,
    `-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner ${uid} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --uid-owner ${uid} -j RETURN`,
    `-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner ${gid} -j ISTIO_IN_REDIRECT`,
    `-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner ${gid} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --gid-owner ${gid} -j RETURN`,
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort ?? OUTBOUND_CAPTURE_PORT}`,
    'COMMIT',
  ];
  return lines.join('\n') + '\n';
}

// ---- name resolution ----

export interface ServiceAddress {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
}

/** The names a pod in `podNamespace` resolves a Service by. */
export function serviceNames(s: ServiceAddress, podNamespace: string): string[] {
  const fq = [`${s.name}.${s.namespace}`, `${s.name}.${s.namespace}.svc`];
  fq.push(`${s.name}.${s.namespace}.svc.cluster.local`);
  return s.namespace === podNamespace ? [s.name, ...fq] : fq;
}

/**
 * A pod's /etc/hosts: localhost, the pod's own name, and every Service's cluster IP with its
 * names relative to the pod's namespace (what cluster DNS would answer).
 */
export function hostsFile(
  pod: { readonly namespace: string; readonly name: string; readonly ip: string },
  services: readonly ServiceAddress[],
): string {
  const lines = [
    `# Trellis: /etc/hosts of pod ${pod.namespace}/${pod.name}, rewritten when Services change`,
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${pod.ip}\t${pod.name}`,
  ];
  const sorted = [...services].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name),
  );
  for (const s of sorted) lines.push(`${s.clusterIP}\t${serviceNames(s, pod.namespace).join(' ')}`);
  return lines.join('\n') + '\n';
}

/** A pod's resolv.conf: Kubernetes' search path (no name server: names come from /etc/hosts). */
export function resolvConf(namespace: string): string {
  return (
    `# Trellis: names resolve from /etc/hosts (Service names -> cluster IPs)\n` +
    `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local\n` +
    `options ndots:5\n`
  );
}
