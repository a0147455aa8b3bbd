// The system side of TRANSPARENT capture (Linux, root, `ip` and `iptables`): one bridge per
// runtime (`trl<hash>`, a free 10.2xx.0.0/16, host side .0.1 for xDS and gateways, .0.2 the
// source of the runtime's readiness probes), and per pod a network namespace `<bridge>-<n>` with
// a veth pair (`<bridge>v<n>` on the bridge, `eth0` in the pod with the pod IP), loopback up, a
// default route via .0.1, /etc/netns/<netns>/{hosts,resolv.conf} (which `ip netns exec`
// bind-mounts over /etc) and, for injected pods, istio-iptables' nat rules. Everything created
// is recorded in runtime/network.json so that what a killed run left is removed by the next
// `up` or `down`.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TrellisError, errorMessage } from '@trellis/core';
import { readJson, removeFile, writeJsonAtomic } from './runtime-files.js';
import {
  IpAllocator,
  bridgeName,
  chooseSubnet,
  cidrsOverlap,
  hostVethName,
  hostsFile,
  iptablesRules,
  netnsName,
  resolvConf,
  subnetAddresses,
  type ServiceAddress,
} from './transparent.js';

/** Where `ip netns exec` finds a namespace's own hosts and resolv.conf. */
export const ETC_NETNS = '/etc/netns';

/** Absolute paths of the tools transparent capture runs. */
export interface NetTools {
  readonly ip: string;
  readonly iptablesRestore: string;
  readonly setpriv: string;
}

/** Transparent capture cannot run here: `missing` names what is missing. */
export class TransparentCaptureUnavailableError extends TrellisError {
  readonly missing: readonly string[];
  constructor(missing: readonly string[]) {
    const what = missing;
    super(
      'TRELLIS_TRANSPARENT_UNAVAILABLE',
      `--capture=transparent needs Linux, root, ip and iptables; missing: ${missing.join(', ')}` +
        (missing.some((m) => /ip |iptables|setpriv/.test(m + ' '))
          ? ' (on Debian/Ubuntu: apt-get install iptables iproute2 util-linux)'
          : '') +
        '; or use --capture=explicit (the default)',
    );
    this.name = 'TransparentCaptureUnavailableError';
    this.missing = what;
  }
}

function findTool(name: string, path: string): string | undefined {
  const dirs = [...path.split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const f = join(d, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The tools, or what is missing (Linux, root, `ip`, `iptables-restore`, `setpriv`). */
export function transparentPrerequisites(
  env: Readonly<Record<string, string | undefined>> = process.env,
): { tools: NetTools; missing: [] } | { tools?: undefined; missing: string[] } {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push(`Linux (this is ${process.platform})`);
  else if (process.getuid?.() !== 0) missing.push('root (run as root, e.g. with sudo)');
  const path = env.PATH ?? '';
  const ip = findTool('ip', path);
  const iptablesRestore = findTool('iptables-restore', path);
  const setpriv = findTool('setpriv', path);
  if (!ip) missing.push('ip (package iproute2)');
  if (!iptablesRestore) missing.push('iptables (package iptables)');
  if (!setpriv) missing.push('setpriv (package util-linux)');
  if (missing.length > 0 || !ip || !iptablesRestore || !setpriv) return { missing };
  return { tools: { ip, iptablesRestore, setpriv }, missing: [] };
}

/** Runs a command; rejects with its stderr. */
export function runTool(file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(file, [...args], {
      stdio: [input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
    p.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
    p.once('error', reject);
    p.once('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new Error(`${[file, ...args].join(' ')} failed (exit ${code}): ${err.trim() || out}`),
        );
    });
    if (p.stdin) {
      // A tool that exits without reading its input must not crash the runtime (EPIPE).
      p.stdin.on('error', () => undefined);
      p.stdin.end(input);
    }
  });
}

/** runtime/network.json: what this runtime created. */
interface NetworkRecord {
  readonly bridge: string;
  readonly subnet?: string;
  readonly netns: readonly string[];
}

export function networkFile(runtimeDir: string): string {
  return join(runtimeDir, 'network.json');
}

/** One pod's network. */
export interface PodNetwork {
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly hostVeth: string;
  readonly injected: boolean;
}

/** IPv4 CIDRs of every address on this machine's interfaces (`ip -j -4 addr`). */
async function interfaceCidrs(ip: string): Promise<{ ifname: string; cidr: string }[]> {
  const links = JSON.parse(await runTool(ip, ['-j', '-4', 'addr', 'show'])) as {
    ifname?: string;
    addr_info?: { local?: string; prefixlen?: number }[];
  }[];
  const out: { ifname: string; cidr: string }[] = [];
  for (const l of links)
    for (const a of l.addr_info ?? [])
      if (l.ifname && a.local) out.push({ ifname: l.ifname, cidr: `${a.local}/${a.prefixlen}` });
  return out;
}

/**
 * Removes what a runtime of `stateDir` left: network namespaces `<bridge>-*`, their
 * /etc/netns directories, and links (veths, the bridge) named `<bridge>*`. Only runs when the
 * state directory records a network (runtime/network.json) or `force` is set. Returns what
 * was removed.
 */
export async function removeNetworkLeftovers(
  stateDir: string,
  runtimeDir: string,
  force = false,
): Promise<string[]> {
  const file = networkFile(runtimeDir);
  const record = readJson(file) as Partial<NetworkRecord> | undefined;
  if (!record && !force) return [];
  const { tools } = transparentPrerequisites();
  if (!tools) return [];
  const bridge = typeof record?.bridge === 'string' ? record.bridge : bridgeName(stateDir);
  const removed: string[] = [];
  const netns = new Set<string>(Array.isArray(record?.netns) ? record.netns : []);
  try {
    for (const line of (await runTool(tools.ip, ['netns', 'list'])).split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (name.startsWith(`${bridge}-`)) netns.add(name);
    }
  } catch {
    // no /run/netns yet
  }
  for (const ns of netns)
    try {
      await runTool(tools.ip, ['netns', 'del', ns]);
      removed.push(`netns ${ns}`);
    } catch {
      // already gone
    }
  try {
    for (const d of readdirSync(ETC_NETNS))
      if (d.startsWith(`${bridge}-`)) rmSync(join(ETC_NETNS, d), { recursive: true, force: true });
  } catch {
    // no /etc/netns
  }
  try {
    const links = JSON.parse(await runTool(tools.ip, ['-j', 'link', 'show'])) as {
      ifname?: string;
    }[];
    // veths first, the bridge last
    const names = links
      .map((l) => l.ifname ?? '')
      .filter((n) => n.startsWith(bridge))
      .sort((a, b) => b.length - a.length);
    for (const n of names)
      try {
        await runTool(tools.ip, ['link', 'del', n]);
        removed.push(`link ${n}`);
      } catch {
        // gone with its peer
      }
  } catch {
    // ignore
  }
  removeFile(file);
  return removed;
}

export interface NetworkOptions {
  readonly stateDir: string;
  readonly runtimeDir: string;
  readonly tools: NetTools;
  readonly log: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    f?: Record<string, unknown>,
  ) => void;
}

/** A runtime's bridge and its pods' network namespaces. */
export class TransparentNetwork {
  readonly tools: NetTools;
  readonly bridge: string;
  readonly subnet: string;
  /** The host's address on the bridge (xDS, gateways). */
  readonly hostIP: string;
  /** Source address of the runtime's readiness probes (not captured). */
  readonly probeIP: string;
  readonly #file: string;
  readonly #ips: IpAllocator;
  readonly #pods = new Map<string, PodNetwork>();
  readonly #log: NetworkOptions['log'];
  #services: readonly ServiceAddress[] = [];
  #closed = false;

  private constructor(o: NetworkOptions, bridge: string, subnet: string) {
    this.tools = o.tools;
    this.bridge = bridge;
    this.subnet = subnet;
    const a = subnetAddresses(subnet);
    this.hostIP = a.hostIP;
    this.probeIP = a.probeIP;
    this.#file = networkFile(o.runtimeDir);
    this.#ips = new IpAllocator(subnet, 2);
    this.#log = o.log;
  }

  /** Creates the bridge on a free /16 (leftovers of this state directory removed first). */
  static async create(o: NetworkOptions): Promise<TransparentNetwork> {
    const { ip } = o.tools;
    const bridge = bridgeName(o.stateDir);
    await removeNetworkLeftovers(o.stateDir, o.runtimeDir, true);
    writeJsonAtomic(networkFile(o.runtimeDir), { bridge, netns: [] } satisfies NetworkRecord);
    await runTool(ip, ['link', 'add', bridge, 'type', 'bridge']);
    try {
      // Bridged pod-to-pod traffic must not go through the host's iptables (br_netfilter).
      await runTool(ip, ['link', 'set', bridge, 'type', 'bridge', 'nf_call_iptables', '0']).catch(
        () => undefined,
      );
      const exclude: string[] = [];
      for (let attempt = 0; ; attempt++) {
        const taken = (await interfaceCidrs(ip)).map((c) => c.cidr);
        const subnet = chooseSubnet(bridge, taken, exclude);
        if (!subnet)
          throw new TrellisError(
            'TRELLIS_NO_SUBNET',
            'no free subnet among 10.200.0.0/16 .. 10.254.0.0/16 for the pod network',
          );
        const { hostIP, probeIP } = subnetAddresses(subnet);
        await runTool(ip, ['addr', 'add', `${hostIP}/16`, 'dev', bridge]);
        await runTool(ip, ['addr', 'add', `${probeIP}/16`, 'dev', bridge]);
        // A runtime starting at the same time may have picked the same subnet: the bridge
        // with the smaller name keeps it, the other picks again.
        const rivals = (await interfaceCidrs(ip)).filter(
          (c) => c.ifname !== bridge && cidrsOverlap(c.cidr, subnet),
        );
        if (rivals.length > 0 && (attempt > 20 || rivals.some((r) => r.ifname < bridge))) {
          if (attempt > 20)
            throw new TrellisError('TRELLIS_NO_SUBNET', `subnet ${subnet} is taken`);
          await runTool(ip, ['addr', 'flush', 'dev', bridge]);
          exclude.push(subnet);
          continue;
        }
        await runTool(ip, ['link', 'set', bridge, 'up']);
        const net = new TransparentNetwork(o, bridge, subnet);
        net.#record();
        return net;
      }
    } catch (e) {
      await runTool(ip, ['link', 'del', bridge]).catch(() => undefined);
      removeFile(networkFile(o.runtimeDir));
      throw e;
    }
  }

  #record(): void {
    if (this.#closed) return;
    writeJsonAtomic(this.#file, {
      bridge: this.bridge,
      subnet: this.subnet,
      netns: [...this.#pods.values()].map((p) => p.netns),
    } satisfies NetworkRecord);
  }

  get pods(): readonly PodNetwork[] {
    return [...this.#pods.values()];
  }

  /** Creates the pod's namespace, veth, address, routes, name files and (injected) iptables. */
  async addPod(req: {
    readonly namespace: string;
    readonly name: string;
    readonly injected: boolean;
  }): Promise<PodNetwork> {
    if (this.#closed) throw new Error('the pod network is closed');
    const { ip: ipTool } = this.tools;
    const { ip, index } = this.#ips.allocate();
    const pod: PodNetwork = {
      namespace: req.namespace,
      name: req.name,
      ip,
      netns: netnsName(this.bridge, index),
      hostVeth: hostVethName(this.bridge, index),
      injected: req.injected,
    };
    this.#pods.set(pod.netns, pod);
    this.#record();
    try {
      await runTool(ipTool, ['netns', 'add', pod.netns]);
      const etc = join(ETC_NETNS, pod.netns);
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, 'hosts'), hostsFile(pod, this.#services));
      writeFileSync(join(etc, 'resolv.conf'), resolvConf(pod.namespace));
      await runTool(ipTool, [
        'link',
        'add',
        pod.hostVeth,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        pod.netns,
      ]);
      await runTool(ipTool, ['link', 'set', pod.hostVeth, 'master', this.bridge, 'up']);
      const n = ['-n', pod.netns];
      await runTool(ipTool, [...n, 'link', 'set', 'lo', 'up']);
      await runTool(ipTool, [...n, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
      await runTool(ipTool, [...n, 'link', 'set', 'eth0', 'up']);
      await runTool(ipTool, [...n, 'route', 'add', 'default', 'via', this.hostIP]);
      if (req.injected)
        await runTool(
          ipTool,
          ['netns', 'exec', pod.netns, this.tools.iptablesRestore],
          iptablesRules({ probeSource: this.probeIP }),
        );
      return pod;
    } catch (e) {
      await this.removePod(pod);
      throw new Error(
        `cannot set up the network of pod ${req.namespace}/${req.name}: ${errorMessage(e)}`,
      );
    }
  }

  /** Deletes the pod's namespace (its veth goes with it) and name files; frees its address. */
  async removePod(pod: PodNetwork): Promise<void> {
    if (!this.#pods.has(pod.netns)) return;
    await runTool(this.tools.ip, ['netns', 'del', pod.netns]).catch((e: unknown) =>
      this.#log('warn', 'cannot delete network namespace', {
        netns: pod.netns,
        error: errorMessage(e),
      }),
    );
    await runTool(this.tools.ip, ['link', 'del', pod.hostVeth]).catch(() => undefined);
    rmSync(join(ETC_NETNS, pod.netns), { recursive: true, force: true });
    this.#pods.delete(pod.netns);
    this.#ips.release(pod.ip);
    this.#record();
  }

  /** The Services with cluster IPs: every pod's /etc/hosts is rewritten in place. */
  setServices(services: readonly ServiceAddress[]): void {
    this.#services = services;
    for (const pod of this.#pods.values()) {
      try {
        // Same inode (truncate + write): the file is bind-mounted over /etc/hosts in the pod.
        writeFileSync(join(ETC_NETNS, pod.netns, 'hosts'), hostsFile(pod, services));
      } catch (e) {
        this.#log('warn', 'cannot rewrite hosts file', {
          netns: pod.netns,
          error: errorMessage(e),
        });
      }
    }
  }

  /** Removes every pod network, then the bridge and the record. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const p of [...this.#pods.values()]) await this.removePod(p);
    this.#closed = true;
    await runTool(this.tools.ip, ['link', 'del', this.bridge]).catch((e: unknown) =>
      this.#log('warn', 'cannot delete the bridge', {
        bridge: this.bridge,
        error: errorMessage(e),
      }),
    );
    removeFile(this.#file);
  }
}
