// How a replica's traffic reaches its sidecar, behind one interface (`CaptureMode`) so the
// controller and replicas do not care:
// - EXPLICIT (anywhere): every pod shares 127.0.0.1; the app is handed the sidecar's outbound
//   HTTP proxy as HTTP_PROXY & co., and peers dial the sidecar's inbound ports (the pod's
//   `trellis.io/inbound-ports`), which forward to the app's own ports (`trellis.io/app-ports`).
//   Every port is allocated.
// - TRANSPARENT (Linux as root): each pod has its own network namespace and IP (netns.ts); apps
//   listen on their containerPorts on 0.0.0.0, Services resolve to cluster IPs through the pod's
//   hosts file, and istio-iptables' rules redirect traffic to the sidecar's 15001/15006. The
//   sidecar runs as uid 1337 on Istio's own ports. Pods are Kubernetes-native (no annotations).
import type { TransparentNetwork } from './netns.js';
import { networkCheckVia, type ProbeCheck } from './readiness.js';
import type { CaptureModeName } from './runtime-files.js';
import { PROXY_GID, PROXY_UID } from './transparent.js';

/** The ports of one injected replica. */
export interface SidecarPorts {
  readonly admin: number;
  readonly status: number;
  /** The explicit-capture HTTP proxy port (0: none). */
  readonly httpProxy: number;
  /** containerPort -> sidecar inbound port (explicit capture only). */
  readonly inbound: ReadonlyMap<number, number>;
}

/** Istio's sidecar ports in a pod of its own (transparent capture). */
export const ISTIO_SIDECAR_PORTS: SidecarPorts = {
  admin: 15000,
  status: 15021,
  httpProxy: 0,
  inbound: new Map(),
};

export interface Command {
  readonly file: string;
  readonly args: readonly string[];
}

/** A pod's network (CRI's pod sandbox): its address, how its processes run, how it is probed. */
export interface PodSandbox {
  /** status.podIP */
  readonly ip: string;
  /** status.hostIP */
  readonly hostIP: string;
  /** The pod has its own network: apps listen on their containerPorts, the sidecar on Istio's. */
  readonly ownNetwork: boolean;
  /** The address apps bind (HOST). */
  readonly bindHost: string;
  /** The command as run in the pod (its network namespace; the sidecar as the proxy user). */
  exec(cmd: Command, as: 'app' | 'proxy'): Command;
  /**
   * The sidecar's `--access-log` for its log file. In a pod of its own the sidecar runs as the
   * proxy user, which may not reach the state directory: it writes to its stdout, the same file.
   */
  proxyAccessLog(file: string): string;
  /** The readiness check of this pod's containers (undefined: the default, 127.0.0.1). */
  readonly check: ProbeCheck | undefined;
  /** Removes the pod's network, once its processes have stopped. */
  release(): Promise<void>;
}

export interface CaptureMode {
  readonly name: CaptureModeName;
  /** The network of a new pod (gateways: the host's). */
  sandbox(pod: {
    readonly namespace: string;
    readonly name: string;
    readonly injected: boolean;
    readonly kind: 'workload' | 'gateway';
  }): Promise<PodSandbox>;
  /** Environment variables of an injected app. */
  appEnv(ports: SidecarPorts): Record<string, string>;
  /** Environment variables of the sidecar process. */
  sidecarEnv(): Record<string, string>;
  /** The pod's annotations describing where peers and the sidecar send traffic. */
  podAnnotations(
    injected: boolean,
    appPorts: ReadonlyMap<number, number>,
    sidecar: SidecarPorts | undefined,
  ): Record<string, string>;
}

const objectOf = (m: ReadonlyMap<number, number>): Record<string, number> =>
  Object.fromEntries([...m].map(([k, v]) => [String(k), v]));

/** Every pod on 127.0.0.1, processes run as they are. */
export function hostSandbox(ip = '127.0.0.1', check?: ProbeCheck): PodSandbox {
  return {
    ip,
    hostIP: ip,
    ownNetwork: false,
    bindHost: '127.0.0.1',
    exec: (cmd) => cmd,
    proxyAccessLog: (file) => file,
    check,
    release: () => Promise.resolve(),
  };
}

export const explicitCapture: CaptureMode = {
  name: 'explicit',
  sandbox: () => Promise.resolve(hostSandbox()),
  appEnv(ports) {
    const proxy = `http://127.0.0.1:${ports.httpProxy}`;
    return {
      HTTP_PROXY: proxy,
      http_proxy: proxy,
      HTTPS_PROXY: proxy,
      https_proxy: proxy,
      grpc_proxy: proxy,
      NO_PROXY: 'localhost,127.0.0.1',
      no_proxy: 'localhost,127.0.0.1',
    };
  },
  sidecarEnv() {
    // No capture listeners (NONE), and no per-service outbound listeners either: every sidecar
    // shares 127.0.0.1, so each binds only the ports allocated to it.
    return { ISTIO_META_INTERCEPTION_MODE: 'NONE', ISTIO_META_TRELLIS_CAPTURE: 'explicit' };
  },
  podAnnotations(injected, appPorts, sidecar) {
    if (!injected || !sidecar)
      return appPorts.size > 0
        ? { 'trellis.io/inbound-ports': JSON.stringify(objectOf(appPorts)) }
        : {};
    if (appPorts.size === 0) return {};
    return {
      'trellis.io/inbound-ports': JSON.stringify(objectOf(sidecar.inbound)),
      'trellis.io/app-ports': JSON.stringify(objectOf(appPorts)),
    };
  },
};

/** Transparent capture on `net`: a network namespace per workload pod; gateways on the host. */
export function transparentCapture(net: TransparentNetwork): CaptureMode {
  const { ip: ipTool, setpriv } = net.tools;
  return {
    name: 'transparent',
    async sandbox(pod) {
      // Gateways stay in the host's namespace (users reach them on 127.0.0.1); pods reach them
      // on the bridge address.
      if (pod.kind === 'gateway') return hostSandbox(net.hostIP, networkCheckVia('127.0.0.1'));
      const p = await net.addPod(pod);
      return {
        ip: p.ip,
        hostIP: net.hostIP,
        ownNetwork: true,
        bindHost: '0.0.0.0',
        exec: (cmd, as) => ({
          file: ipTool,
          args: [
            'netns',
            'exec',
            p.netns,
            ...(as === 'proxy'
              ? [
                  setpriv,
                  '--reuid',
                  String(PROXY_UID),
                  '--regid',
                  String(PROXY_GID),
                  '--clear-groups',
                ]
              : []),
            cmd.file,
            ...cmd.args,
          ],
        }),
        proxyAccessLog: () => '/dev/stdout',
        // From .0.2: not captured, so the probe reaches the app itself, as the kubelet's does.
        check: networkCheckVia(p.ip, net.probeIP),
        release: () => net.removePod(p),
      };
    },
    appEnv: () => ({}),
    sidecarEnv: () => ({ ISTIO_META_TRELLIS_CAPTURE: 'transparent' }),
    podAnnotations: () => ({}),
  };
}
